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

#include <functional>
#include <string>
#include <vector>

#include "closures.h"
#include "net_support.h"
#include "support.h"
#include "weft.h"

namespace {

// size bytes of a xorshift sequence: binary, and different at every offset.
std::string noise(size_t size) {
  std::string data(size, '\0');
  uint32_t x = 2463534242u;
  for (size_t i = 0; i < size; i++) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    data[i] = static_cast<char>(x);
  }
  return data;
}

// A temporary file of size bytes of noise, removed at the end of the scope.
struct NoiseFile : TempFile {
  explicit NoiseFile(size_t size) : TempFile(noise(size), "weft-sendfile") {}
};

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

// Runs body(a, b, fd) as the root task with a connected pair on loopback
// (b the accepted side) and f open for reading as fd (-1 when f is NULL);
// closes all three afterwards. body may close a or b itself if it sets the
// pointer to NULL or to a new connection. Returns -1 if the pair could not be made, else body's result.
int run_pair(const TempFile *f, const std::function<int(weft_tcp *&a, weft_tcp *&b, int fd)> &body) {
  return run(1, [&] {
    weft_tcp *a = nullptr, *b = nullptr;
    if (connect_pair(&a, &b) < 0) return -1;
    int fd = f != nullptr ? f->open_ro() : -1;
    int r = body(a, b, fd);
    if (fd >= 0) close(fd);
    weft_tcp_close(a);
    weft_tcp_close(b);
    return r;
  });
}

}  // namespace

TEST_CASE("sendfile: several MB from an offset reach a slow reader intact", "[sendfile]") {
  NoiseFile f(6 * 1024 * 1024 + 123);
  const int64_t offset = 1000;
  const size_t len = f.data.size() - 1000 - 77;
  int send_rc = 1, handles_before = -1, handles_after = -2;
  ssize_t last = 1;
  std::string got;
  int rc = run_pair(&f, [&](weft_tcp *&a, weft_tcp *&b, int fd) {
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
  NoiseFile f(5000);
  int send_rc = 1, bad_rc = 1;
  std::string got;
  ssize_t last = 1;
  int rc = run_pair(&f, [&](weft_tcp *&a, weft_tcp *&b, int fd) {
    send_rc = weft_tcp_sendfile(b, fd, 4000, 2000);
    bad_rc = weft_tcp_sendfile(b, -1, 0, 10);
    weft_tcp_close(b);
    b = nullptr;
    got = read_all(a, 0, &last);
    return 0;
  });
  REQUIRE(rc == 0);
  CHECK(send_rc == UV_EOF);
  CHECK(bad_rc == UV_EINVAL);
  // The part of the range the file has went out.
  CHECK(got == f.data.substr(4000));
}

TEST_CASE("sendfile: a deadline ends a send to a peer that does not read", "[sendfile]") {
  NoiseFile f(16 * 1024 * 1024);
  int send_rc = 1, write_rc = 1, handles_before = -1, handles_after = -2;
  int64_t took = -1;
  int rc = run_pair(&f, [&](weft_tcp *&, weft_tcp *&b, int fd) {
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
  NoiseFile f(16 * 1024 * 1024);
  int cancelled_rc = 1, closed_rc = 1;
  int handles_before = -1, handles_after = -2;
  int rc = run_pair(&f, [&](weft_tcp *&a, weft_tcp *&b, int fd) {
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
      b = nullptr;
      t.join();
    }
    return 0;
  });
  REQUIRE(rc == 0);
  CHECK(cancelled_rc == UV_ECANCELED);
  CHECK(handles_after == handles_before);
  CHECK(closed_rc == UV_ECANCELED);
}

TEST_CASE("sendfile: bytes written before the send go first", "[sendfile]") {
  NoiseFile f(1024 * 1024);
  const std::string before(32 * 1024 * 1024, 'w');
  int write_rc = 1, send_rc = 1, busy_rc = 1;
  std::string got;
  ssize_t last = 1;
  int rc = run_pair(&f, [&](weft_tcp *&a, weft_tcp *&b, int fd) {
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
  int rc = run_pair(nullptr, [&](weft_tcp *&a, weft_tcp *&b, int) {
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
    return 0;
  });
  REQUIRE(rc == 0);
  CHECK(small_rc == 0);
  CHECK(many_rc == 0);
  CHECK(empty_rc == 0);
  CHECK(last == 0);
  CHECK(got == expect);
}
