// Tests of weft_tcp_sendfile() and weft_tcp_writev(): real connections on
// 127.0.0.1 and files in a temporary directory.
//
// Proves: a file of several MB reaches a slow reader intact (checksum), from
// an offset; a range past the end of the file gives UV_EOF; a send to a
// peer that does not read is ended by a deadline, by cancelling its task and
// by closing the connection from another task, each leaving no libuv handle
// behind; bytes of a write queued before the send go first; writev sends its
// buffers in order, empty ones and many ones included.

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "closures.h"
#include "support.h"
#include "weft.h"

namespace {

// A temporary file filled with a pattern, removed at the end of the scope.
struct TempFile {
  std::string path;
  std::string data;
  explicit TempFile(size_t size) {
    char tmpl[] = "/tmp/weft-sendfile-XXXXXX";
    int fd = mkstemp(tmpl);
    path = tmpl;
    data.resize(size);
    uint32_t x = 2463534242u;
    for (size_t i = 0; i < size; i++) {
      x ^= x << 13;
      x ^= x >> 17;
      x ^= x << 5;
      data[i] = static_cast<char>(x);
    }
    size_t off = 0;
    while (fd >= 0 && off < size) {
      ssize_t n = write(fd, data.data() + off, size - off);
      if (n <= 0) break;
      off += static_cast<size_t>(n);
    }
    if (fd >= 0) close(fd);
  }
  ~TempFile() { unlink(path.c_str()); }
};

uint64_t fnv1a(const std::string &s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char ch : s) {
    h ^= ch;
    h *= 1099511628211ull;
  }
  return h;
}

// The number of poll handles (what a send waits with) on the calling
// executor's loop, closing ones too.
size_t loop_handles() {
  size_t n = 0;
  uv_walk(
      weft_loop(),
      [](uv_handle_t *h, void *arg) {
        if (uv_handle_get_type(h) == UV_POLL) ++*static_cast<size_t *>(arg);
      },
      &n);
  return n;
}

// A connected pair on loopback: *server is the accepted side.
int connect_pair(weft_tcp **client, weft_tcp **server) {
  weft_tcp *l = nullptr;
  int r = weft_tcp_listen("127.0.0.1", 0, 0, 0, &l);
  if (r < 0) return r;
  Tasks t;
  int ar = 1;
  t.spawn(0, [&] { return ar = weft_tcp_accept(l, server); });
  r = weft_tcp_connect("127.0.0.1", weft_tcp_local_port(l), client);
  t.join();
  weft_tcp_close(l);
  return r < 0 ? r : ar;
}

// Reads until the end of the stream or an error; pause_ms between reads.
std::string read_all(weft_tcp *c, int64_t pause_ms, ssize_t *last) {
  std::string got;
  std::vector<char> buf(64 * 1024);
  for (;;) {
    ssize_t n = weft_tcp_read(c, buf.data(), buf.size());
    if (n <= 0) {
      *last = n;
      break;
    }
    got.append(buf.data(), static_cast<size_t>(n));
    if (pause_ms > 0) weft_sleep(pause_ms);
  }
  return got;
}

}  // namespace

TEST_CASE("sendfile: several MB from an offset reach a slow reader intact", "[sendfile]") {
  TempFile f(6 * 1024 * 1024 + 123);
  const int64_t offset = 1000;
  const size_t len = f.data.size() - 1000 - 77;
  int send_rc = 1, handles_before = -1, handles_after = -2;
  ssize_t last = 1;
  std::string got;
  int rc = run(1, [&] {
    weft_tcp *a = nullptr, *b = nullptr;
    if (connect_pair(&a, &b) < 0) return -1;
    int fd = open(f.path.c_str(), O_RDONLY);
    Tasks t;
    t.spawn(0, [&] {
      handles_before = static_cast<int>(loop_handles());
      send_rc = weft_tcp_sendfile(b, fd, offset, len);
      handles_after = static_cast<int>(loop_handles());
      weft_tcp_shutdown(b);
      return 0;
    });
    // Reading in pieces with pauses makes the sender wait for the socket.
    t.spawn(0, [&] {
      got = read_all(a, 2, &last);
      return 0;
    });
    t.join();
    close(fd);
    weft_tcp_close(a);
    weft_tcp_close(b);
    return 0;
  });
  REQUIRE(rc == 0);
  CHECK(send_rc == 0);
  CHECK(last == 0);
  CHECK(handles_after == handles_before);
  REQUIRE(got.size() == len);
  CHECK(fnv1a(got) == fnv1a(f.data.substr(offset, len)));
}

TEST_CASE("sendfile: a range past the end of the file gives UV_EOF", "[sendfile]") {
  TempFile f(5000);
  int send_rc = 1, bad_rc = 1;
  std::string got;
  ssize_t last = 1;
  int rc = run(1, [&] {
    weft_tcp *a = nullptr, *b = nullptr;
    if (connect_pair(&a, &b) < 0) return -1;
    int fd = open(f.path.c_str(), O_RDONLY);
    send_rc = weft_tcp_sendfile(b, fd, 4000, 2000);
    bad_rc = weft_tcp_sendfile(b, -1, 0, 10);
    weft_tcp_close(b);
    got = read_all(a, 0, &last);
    close(fd);
    weft_tcp_close(a);
    return 0;
  });
  REQUIRE(rc == 0);
  CHECK(send_rc == UV_EOF);
  CHECK(bad_rc == UV_EINVAL);
  // The part of the range the file has went out.
  CHECK(got == f.data.substr(4000));
}

TEST_CASE("sendfile: a deadline ends a send to a peer that does not read", "[sendfile]") {
  TempFile f(16 * 1024 * 1024);
  int send_rc = 1, write_rc = 1, handles_before = -1, handles_after = -2;
  int64_t took = -1;
  int rc = run(1, [&] {
    weft_tcp *a = nullptr, *b = nullptr;
    if (connect_pair(&a, &b) < 0) return -1;
    int fd = open(f.path.c_str(), O_RDONLY);
    handles_before = static_cast<int>(loop_handles());
    weft_scope s;
    int64_t start = weft_now();
    weft_scope_enter(&s, 200);
    send_rc = weft_tcp_sendfile(b, fd, 0, f.data.size());
    weft_scope_leave(&s);
    took = weft_now() - start;
    handles_after = static_cast<int>(loop_handles());
    // Cut short, the connection is closed, as after a cancelled write.
    write_rc = weft_tcp_write(b, "x", 1);
    close(fd);
    weft_tcp_close(a);
    weft_tcp_close(b);
    return 0;
  });
  REQUIRE(rc == 0);
  CHECK(send_rc == UV_ETIMEDOUT);
  CHECK(took < weft_test_ms(5000));
  CHECK(write_rc == UV_ECANCELED);
  CHECK(handles_after == handles_before);
}

TEST_CASE("sendfile: cancelling the sending task, or closing its connection, stops it",
          "[sendfile]") {
  TempFile f(16 * 1024 * 1024);
  int cancelled_rc = 1, closed_rc = 1;
  int handles_before = -1, handles_after = -2;
  int rc = run(1, [&] {
    int fd = open(f.path.c_str(), O_RDONLY);
    weft_tcp *a = nullptr, *b = nullptr;
    if (connect_pair(&a, &b) < 0) return -1;
    handles_before = static_cast<int>(loop_handles());
    {
      Tasks t(WEFT_COLLECT);
      t.spawn(0, [&] { return cancelled_rc = weft_tcp_sendfile(b, fd, 0, f.data.size()); });
      weft_sleep(50);
      t.cancel();
      t.join();
    }
    handles_after = static_cast<int>(loop_handles());
    weft_tcp_close(a);
    weft_tcp_close(b);

    // Closed by another task while it waits for the peer.
    if (connect_pair(&a, &b) < 0) return -1;
    {
      Tasks t(WEFT_COLLECT);
      t.spawn(0, [&] { return closed_rc = weft_tcp_sendfile(b, fd, 0, f.data.size()); });
      weft_sleep(50);
      weft_tcp_close(b);
      t.join();
    }
    weft_tcp_close(a);
    close(fd);
    return 0;
  });
  REQUIRE(rc == 0);
  CHECK(cancelled_rc == UV_ECANCELED);
  CHECK(handles_after == handles_before);
  CHECK(closed_rc == UV_ECANCELED);
}

TEST_CASE("sendfile: bytes written before the send go first", "[sendfile]") {
  TempFile f(1024 * 1024);
  const std::string before(32 * 1024 * 1024, 'w');
  int write_rc = 1, send_rc = 1, busy_rc = 1;
  std::string got;
  ssize_t last = 1;
  int rc = run(1, [&] {
    weft_tcp *a = nullptr, *b = nullptr;
    if (connect_pair(&a, &b) < 0) return -1;
    int fd = open(f.path.c_str(), O_RDONLY);
    Tasks t;
    // The peer is not reading yet, so this write stays queued in libuv.
    t.spawn(0, [&] { return write_rc = weft_tcp_write(b, before.data(), before.size()); });
    yield_n(3);
    t.spawn(0, [&] {
      send_rc = weft_tcp_sendfile(b, fd, 0, f.data.size());
      return 0;
    });
    yield_n(3);
    // While the file goes out, another write would land inside it.
    busy_rc = weft_tcp_write(b, "x", 1);
    t.spawn(0, [&] {
      got = read_all(a, 0, &last);
      return 0;
    });
    wait_until([&] { return send_rc != 1 && write_rc != 1; }, 10000);
    weft_tcp_shutdown(b);
    t.join();
    close(fd);
    weft_tcp_close(a);
    weft_tcp_close(b);
    return 0;
  });
  REQUIRE(rc == 0);
  CHECK(write_rc == 0);
  CHECK(send_rc == 0);
  CHECK(busy_rc == UV_EBUSY);
  REQUIRE(got.size() == before.size() + f.data.size());
  CHECK(got.compare(0, before.size(), before) == 0);
  CHECK(fnv1a(got.substr(before.size())) == fnv1a(f.data));
}

TEST_CASE("writev: buffers go out in order, empty and many ones included", "[sendfile]") {
  std::string expect;
  std::vector<std::string> parts;
  for (int i = 0; i < 40; i++)
    parts.push_back(i % 7 == 3 ? "" : std::string(1 + i * 997, char('a' + i % 26)));
  for (auto &p : parts) expect += p;
  int small_rc = 1, many_rc = 1, empty_rc = 1;
  std::string got;
  ssize_t last = 1;
  int rc = run(1, [&] {
    weft_tcp *a = nullptr, *b = nullptr;
    if (connect_pair(&a, &b) < 0) return -1;
    Tasks t;
    t.spawn(0, [&] {
      got = read_all(a, 0, &last);
      return 0;
    });
    std::vector<uv_buf_t> bufs;
    for (auto &p : parts)
      bufs.push_back(uv_buf_init(const_cast<char *>(p.data()), static_cast<unsigned>(p.size())));
    small_rc = weft_tcp_writev(b, bufs.data(), 3);
    many_rc = weft_tcp_writev(b, bufs.data() + 3, bufs.size() - 3);
    empty_rc = weft_tcp_writev(b, nullptr, 0);
    weft_tcp_shutdown(b);
    t.join();
    weft_tcp_close(a);
    weft_tcp_close(b);
    return 0;
  });
  REQUIRE(rc == 0);
  CHECK(small_rc == 0);
  CHECK(many_rc == 0);
  CHECK(empty_rc == 0);
  CHECK(last == 0);
  CHECK(got == expect);
}
