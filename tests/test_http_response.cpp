// Tests of the response side of the HTTP/1.1 server module: streamed
// (chunked) bodies, file bodies, HEAD, reading a response back, and serving
// a byte buffer (weft_http_serve_memory). Real connections on 127.0.0.1 with
// a raw client that writes bytes and reads the raw reply, as
// test_http_server.cpp does, and temporary files.
//
// Proves: a chunked body is framed as RFC 9112 says and the connection stays
// usable after it; HTTP/1.0 gets the body until the connection closes; HEAD
// gets the head only (with the length of a file); a file range goes out
// exactly, small or large, to a slow reader too (checksum); a file response
// is refused when it cannot be met; middleware can read the response back;
// a buffer with pipelined requests is answered in order, and garbage,
// truncated and random input is answered or refused without harm. Built
// only with the module (llhttp); without it, one test says so.

#include <catch2/catch.hpp>

#include "http_support.h"

#ifdef WEFT_TEST_HAVE_HTTP

#include <fcntl.h>
#include <unistd.h>

#include <functional>
#include <string>
#include <vector>

#include "closures.h"
#include "net_support.h"

namespace {

using Handler = std::function<int(const weft_http_request *, weft_http_response *)>;

int call_handler(const weft_http_request *req, weft_http_response *res, void *ctx) {
  return (*static_cast<Handler *>(ctx))(req, res);
}

// A temporary file of size printable bytes, removed at the end of the scope.
struct TextFile : TempFile {
  explicit TextFile(size_t size) : TempFile(text(size), "weft-http-file") {}
  static std::string text(size_t size) {
    std::string data(size, '\0');
    for (size_t i = 0; i < size; i++) data[i] = static_cast<char>('A' + (i * 7 + i / 251) % 58);
    return data;
  }
};

// One connection: the client writes request, half-closes, and reads the
// reply until the server closes (pausing read_pause_ms between reads).
struct Exchange {
  std::string request;
  int64_t read_pause_ms = 0;
  weft_http_limits limits{};
  int serve_rc = 1;
  std::string reply;
};

int exchange(Exchange &x, Handler h) {
  return run(1, [&] {
    return serve_one_conn(
        [&](weft_tcp *c) {
          x.serve_rc = weft_http_serve_conn(c, &x.limits, call_handler, &h);
          return 0;
        },
        [&](int port) {
          weft_tcp *c = nullptr;
          int r = weft_tcp_connect("127.0.0.1", port, &c);
          if (r != 0) return r;
          weft_tcp_write(c, x.request.data(), x.request.size());
          weft_tcp_shutdown(c);
          x.reply = read_all(c, x.read_pause_ms);
          weft_tcp_close(c);
          return 0;
        });
  });
}

// Runs exchange(x) with a handler that counts its calls in *calls, starts a
// streamed body and writes parts; the handler returns the last write's
// result, or fail (a handler error after the start) when fail is not 0.
int exchange_stream(Exchange &x, int *calls, const std::vector<std::string> &parts, int fail = 0) {
  return exchange(x, [&](const weft_http_request *, weft_http_response *res) {
    ++*calls;
    int r = weft_http_response_start(res);
    for (const std::string &p : parts) r = weft_http_response_write(res, p.data(), p.size());
    return fail != 0 ? fail : r;
  });
}

// Serves bytes with weft_http_serve_memory() in a runtime of its own.
struct Memory {
  int rc = 1;
  std::string out;
};

Memory serve_memory(const std::string &in, Handler h, const weft_http_limits *limits = nullptr) {
  Memory m;
  run(1, [&] {
    m.rc = serve_memory_into(in, limits, call_handler, &h, &m.out);
    return 0;
  });
  return m;
}

// The part of a reply after its first blank line.
std::string body_of(const std::string &reply) {
  size_t p = reply.find("\r\n\r\n");
  return p == std::string::npos ? "" : reply.substr(p + 4);
}

const char kGetClose[] = "GET /s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";

}  // namespace

TEST_CASE("http: a streamed body is sent in chunks", "[http][stream]") {
  Exchange x;
  x.request = kGetClose;
  int start_rc = 1, w1 = 1, w2 = 1, w0 = 1, late_header = 1, late_status = 1, late_body = 1;
  int late_remove = 1, streaming = -1, again = 1;
  int rc = exchange(x, [&](const weft_http_request *, weft_http_response *res) {
    weft_http_response_header(res, "Content-Type", "text/plain");
    start_rc = weft_http_response_start(res);
    streaming = weft_http_response_is_streaming(res);
    again = weft_http_response_start(res);
    late_header = weft_http_response_header(res, "X-Late", "1");
    late_status = weft_http_response_status(res, 404);
    late_body = weft_http_response_body(res, "x", 1);
    late_remove = weft_http_response_remove_header(res, "Content-Type");
    w1 = weft_http_response_write(res, "hello ", 6);
    weft_sleep(5);
    w0 = weft_http_response_write(res, "", 0);
    w2 = weft_http_response_write(res, std::string(300, 'z').data(), 300);
    return 0;
  });
  REQUIRE(rc == 0);
  CHECK(x.serve_rc == 0);
  CHECK(start_rc == 0);
  CHECK(streaming == 1);
  CHECK(again == UV_EINVAL);
  CHECK(late_header == UV_EINVAL);
  CHECK(late_status == UV_EINVAL);
  CHECK(late_body == UV_EINVAL);
  CHECK(late_remove == UV_EINVAL);
  CHECK(w1 == 0);
  CHECK(w0 == 0);
  CHECK(w2 == 0);
  CHECK(x.reply.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
  CHECK(x.reply.find("Transfer-Encoding: chunked\r\n") != std::string::npos);
  CHECK(x.reply.find("Content-Type: text/plain\r\n") != std::string::npos);
  CHECK(x.reply.find("Content-Length") == std::string::npos);
  CHECK(x.reply.find("X-Late") == std::string::npos);
  CHECK(body_of(x.reply) == "6\r\nhello \r\n12c\r\n" + std::string(300, 'z') + "\r\n0\r\n\r\n");
}

TEST_CASE("http: the connection goes on after a streamed body, and a buffered body leads it",
          "[http][stream]") {
  Exchange x;
  x.request =
      "GET /stream HTTP/1.1\r\nHost: x\r\n\r\n"
      "GET /plain HTTP/1.1\r\nHost: x\r\n\r\n";
  int rc = exchange(x, [&](const weft_http_request *req, weft_http_response *res) {
    if (strcmp(weft_http_request_path(req), "/stream") == 0) {
      weft_http_response_body(res, "first,", 6);
      weft_http_response_start(res);
      return weft_http_response_write(res, "second", 6);
    }
    return weft_http_response_body(res, "plain", 5);
  });
  REQUIRE(rc == 0);
  CHECK(x.serve_rc == 0);
  std::string expect_first = "6\r\nfirst,\r\n6\r\nsecond\r\n0\r\n\r\n";
  size_t p = x.reply.find(expect_first);
  REQUIRE(p != std::string::npos);
  std::string rest = x.reply.substr(p + expect_first.size());
  CHECK(rest.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
  CHECK(rest.find("Content-Length: 5\r\n") != std::string::npos);
  CHECK(body_of(rest) == "plain");
}

TEST_CASE("http: HTTP/1.0 gets a streamed body until the connection closes", "[http][stream]") {
  Exchange x;
  x.request = "GET /s HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /never HTTP/1.0\r\n\r\n";
  int calls = 0;
  int rc = exchange_stream(x, &calls, {"abc", "def"});
  REQUIRE(rc == 0);
  CHECK(calls == 1);
  CHECK(x.reply.find("Transfer-Encoding") == std::string::npos);
  CHECK(x.reply.find("Connection: close\r\n") != std::string::npos);
  CHECK(body_of(x.reply) == "abcdef");
}

TEST_CASE("http: a handler error after the start cuts the body short", "[http][stream]") {
  Exchange x;
  x.request = "GET /s HTTP/1.1\r\nHost: x\r\n\r\nGET /never HTTP/1.1\r\nHost: x\r\n\r\n";
  int calls = 0;
  int rc = exchange_stream(x, &calls, {"part"}, UV_EIO);
  REQUIRE(rc == 0);
  CHECK(calls == 1);
  // No last chunk: the client can tell the body is incomplete.
  CHECK(body_of(x.reply) == "4\r\npart\r\n");
}

TEST_CASE("http: HEAD gets the head of a streamed or a file response only", "[http][head]") {
  TextFile f(50000);
  Exchange x;
  x.request =
      "HEAD /stream HTTP/1.1\r\nHost: x\r\n\r\n"
      "HEAD /file HTTP/1.1\r\nHost: x\r\n\r\n"
      "HEAD /buffered HTTP/1.1\r\nHost: x\r\n\r\n"
      "GET /file HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  int write_rc = 1, file_rc = 1;
  int rc = exchange(x, [&](const weft_http_request *req, weft_http_response *res) {
    std::string path = weft_http_request_path(req);
    if (path == "/stream") {
      weft_http_response_start(res);
      write_rc = weft_http_response_write(res, "dropped", 7);
      return 0;
    }
    if (path == "/file") {
      int fd = f.open_ro();
      int r = weft_http_response_file(res, fd, 100, 40000);
      if (strcmp(weft_http_request_method(req), "HEAD") == 0) file_rc = r;
      return r;
    }
    return weft_http_response_body(res, "twelve bytes", 12);
  });
  REQUIRE(rc == 0);
  CHECK(x.serve_rc == 0);
  CHECK(write_rc == 0);
  CHECK(file_rc == 0);
  CHECK(x.reply.find("dropped") == std::string::npos);
  CHECK(x.reply.find("twelve") == std::string::npos);
  CHECK(count(x.reply, "HTTP/1.1 200 OK\r\n") == 4);
  CHECK(count(x.reply, "Transfer-Encoding: chunked\r\n") == 1);
  CHECK(count(x.reply, "Content-Length: 40000\r\n") == 2);
  CHECK(count(x.reply, "Content-Length: 12\r\n") == 1);
  // Only the GET's body follows the last head.
  size_t last = x.reply.rfind("HTTP/1.1 200 OK\r\n");
  CHECK(body_of(x.reply.substr(last)) == f.data.substr(100, 40000));
  // The heads before it have no bodies behind them.
  CHECK(x.reply.size() - body_of(x.reply.substr(last)).size() < 1000);
}

TEST_CASE("http: a file range is sent exactly, small and large", "[http][file]") {
  TextFile f(3 * 1024 * 1024 + 17);
  struct Case {
    int64_t offset, len;
  };
  for (Case k : {Case{0, 0}, Case{5, 1000}, Case{0, 16 * 1024}, Case{1, 16 * 1024 + 1},
                 Case{17, 3 * 1024 * 1024}}) {
    CAPTURE(k.offset, k.len);
    Exchange x;
    x.request = kGetClose;
    int file_rc = 1, has_file = -1;
    size_t body_len = 99;
    int rc = exchange(x, [&](const weft_http_request *, weft_http_response *res) {
      weft_http_response_body(res, "replaced", 8);
      file_rc = weft_http_response_file(res, f.open_ro(), k.offset, k.len);
      has_file = weft_http_response_has_file(res);
      weft_http_response_get_body(res, &body_len);
      return 0;
    });
    REQUIRE(rc == 0);
    CHECK(x.serve_rc == 0);
    CHECK(file_rc == 0);
    CHECK(has_file == 1);
    CHECK(body_len == 0);
    CHECK(x.reply.find("Content-Length: " + std::to_string(k.len) + "\r\n") != std::string::npos);
    std::string body = body_of(x.reply);
    REQUIRE(body.size() == static_cast<size_t>(k.len));
    CHECK(body == f.data.substr(static_cast<size_t>(k.offset), static_cast<size_t>(k.len)));
  }
}

TEST_CASE("http: a large file reaches a slow reader intact", "[http][file]") {
  TextFile f(8 * 1024 * 1024);
  Exchange x;
  x.request = kGetClose;
  x.read_pause_ms = 1;
  int rc = exchange(x, [&](const weft_http_request *, weft_http_response *res) {
    return weft_http_response_file(res, f.open_ro(), 0, static_cast<int64_t>(f.data.size()));
  });
  REQUIRE(rc == 0);
  CHECK(x.serve_rc == 0);
  std::string body = body_of(x.reply);
  REQUIRE(body.size() == f.data.size());
  CHECK(fnv1a(body) == fnv1a(f.data));
}

TEST_CASE("http: a file response that cannot be met is refused", "[http][file]") {
  TextFile f(1000);
  Exchange x;
  x.request = kGetClose;
  int past_end = 1, negative = 1, bad_fd = 1, fd_open_after = 0;
  int rc = exchange(x, [&](const weft_http_request *, weft_http_response *res) {
    int fd = f.open_ro();
    past_end = weft_http_response_file(res, fd, 500, 501);
    negative = weft_http_response_file(res, fd, -1, 10);
    bad_fd = weft_http_response_file(res, -1, 0, 10);
    // Refused, the descriptor is still the caller's.
    fd_open_after = fcntl(fd, F_GETFD) != -1;
    close(fd);
    return weft_http_response_body(res, "ok", 2);
  });
  REQUIRE(rc == 0);
  CHECK(past_end == UV_EINVAL);
  CHECK(negative == UV_EINVAL);
  CHECK(bad_fd == UV_EINVAL);
  CHECK(fd_open_after == 1);
  CHECK(body_of(x.reply) == "ok");
}

TEST_CASE("http: a response can be read back and changed", "[http][readback]") {
  Exchange x;
  x.request = kGetClose;
  int status = 0, removed = -1, removed_none = -1, streaming = -1, has_file = -1;
  std::string ct, first_x, after_remove, body;
  bool missing_null = false, removed_null = false;
  int rc = exchange(x, [&](const weft_http_request *, weft_http_response *res) {
    weft_http_response_status(res, 201);
    weft_http_response_header(res, "Content-Type", "text/html");
    weft_http_response_header(res, "X-Multi", "one");
    weft_http_response_header(res, "Vary", "Accept");
    weft_http_response_header(res, "x-multi", "two");
    weft_http_response_body(res, "abc", 3);
    weft_http_response_append(res, "def", 3);
    status = weft_http_response_get_status(res);
    ct = weft_http_response_get_header(res, "content-type");
    first_x = weft_http_response_get_header(res, "X-MULTI");
    missing_null = weft_http_response_get_header(res, "X-None") == nullptr;
    removed = weft_http_response_remove_header(res, "X-Multi");
    removed_none = weft_http_response_remove_header(res, "X-Multi");
    removed_null = weft_http_response_get_header(res, "x-multi") == nullptr;
    after_remove = weft_http_response_get_header(res, "Vary");
    size_t len = 0;
    const char *b = static_cast<const char *>(weft_http_response_get_body(res, &len));
    body.assign(b, len);
    streaming = weft_http_response_is_streaming(res);
    has_file = weft_http_response_has_file(res);
    // What middleware does: replace the body and a header.
    weft_http_response_remove_header(res, "Content-Type");
    weft_http_response_header(res, "Content-Type", "text/plain");
    return weft_http_response_body(res, "ABCDEF", 6);
  });
  REQUIRE(rc == 0);
  CHECK(status == 201);
  CHECK(ct == "text/html");
  CHECK(first_x == "one");
  CHECK(missing_null);
  CHECK(removed == 2);
  CHECK(removed_none == 0);
  CHECK(removed_null);
  CHECK(after_remove == "Accept");
  CHECK(body == "abcdef");
  CHECK(streaming == 0);
  CHECK(has_file == 0);
  CHECK(x.reply.rfind("HTTP/1.1 201 Created\r\n", 0) == 0);
  CHECK(x.reply.find("X-Multi") == std::string::npos);
  CHECK(x.reply.find("Vary: Accept\r\n") != std::string::npos);
  CHECK(count(x.reply, "Content-Type:") == 1);
  CHECK(x.reply.find("Content-Type: text/plain\r\n") != std::string::npos);
  CHECK(body_of(x.reply) == "ABCDEF");
}

TEST_CASE("http: a streamed body to a client that does not read ends with the write timeout",
          "[http][stream]") {
  int last_rc = 0;
  int64_t took = -1;
  int serve_rc = 1;
  std::string big(256 * 1024, 'q');
  Handler h = [&](const weft_http_request *, weft_http_response *res) {
    int64_t start = weft_now();
    int r = weft_http_response_start(res);
    while (r == 0) r = weft_http_response_write(res, big.data(), big.size());
    last_rc = r;
    took = weft_now() - start;
    return r;
  };
  weft_http_limits lim{};
  lim.write_timeout_ms = 200;
  int rc = run(1, [&] {
    return serve_one_conn(
        [&](weft_tcp *c) {
          serve_rc = weft_http_serve_conn(c, &lim, call_handler, &h);
          return 0;
        },
        [&](int port) {
          weft_tcp *c = nullptr;
          int r = weft_tcp_connect("127.0.0.1", port, &c);
          if (r != 0) return r;
          const char req[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
          weft_tcp_write(c, req, sizeof req - 1);
          // Never reads; waits for the server to give up.
          wait_until([&] { return last_rc != 0; }, 10000);
          weft_tcp_close(c);
          return 0;
        });
  });
  REQUIRE(rc == 0);
  CHECK(last_rc == UV_ETIMEDOUT);
  CHECK(took < weft_test_ms(5000));
  CHECK(serve_rc == 0);
}

TEST_CASE("http: serve_memory answers pipelined requests in order", "[http][memory]") {
  std::string in =
      "GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
      "POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
      "GET /c HTTP/1.1\r\nHost: x\r\n\r\n"
      "GET /d HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
  std::vector<std::string> seen;
  TextFile f(100);
  Memory m = serve_memory(in, [&](const weft_http_request *req, weft_http_response *res) {
    seen.push_back(std::string(weft_http_request_path(req)) + ":" + request_body(req));
    std::string path = weft_http_request_path(req);
    if (path == "/c") {
      weft_http_response_start(res);
      return weft_http_response_write(res, "streamed", 8);
    }
    if (path == "/d") return weft_http_response_file(res, f.open_ro(), 10, 20);
    std::string out = "you asked for " + path;
    return weft_http_response_body(res, out.data(), out.size());
  });
  CHECK(m.rc == 0);
  REQUIRE(seen.size() == 4);
  CHECK(seen[0] == "/a:");
  CHECK(seen[1] == "/b:hello");
  CHECK(seen[2] == "/c:");
  CHECK(seen[3] == "/d:abc");
  CHECK(count(m.out, "HTTP/1.1 200 OK\r\n") == 4);
  size_t a = m.out.find("you asked for /a");
  size_t b = m.out.find("you asked for /b");
  size_t c = m.out.find("8\r\nstreamed\r\n0\r\n\r\n");
  size_t d = m.out.find(f.data.substr(10, 20));
  CHECK(a != std::string::npos);
  CHECK(a < b);
  CHECK(b < c);
  CHECK(c < d);
  CHECK(d != std::string::npos);
  CHECK(m.out.size() == d + 20);
}

TEST_CASE("http: serve_memory refuses garbage and takes any input", "[http][memory]") {
  int calls = 0;
  Handler h = [&](const weft_http_request *, weft_http_response *res) {
    calls++;
    return weft_http_response_body(res, "ok", 2);
  };
  Memory garbage = serve_memory("\x01\x02 not http at all\r\n\r\n", h);
  CHECK(garbage.rc == 0);
  CHECK(garbage.out.rfind("HTTP/1.1 400 Bad Request\r\n", 0) == 0);
  CHECK(garbage.out.find("Connection: close\r\n") != std::string::npos);

  Memory empty = serve_memory("", h);
  CHECK(empty.rc == 0);
  CHECK(empty.out.empty());

  // A good request, then garbage: the first is answered, then 400.
  Memory mixed = serve_memory(
      "GET / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost : x\r\n\r\n", h);
  CHECK(mixed.rc == 0);
  CHECK(mixed.out.find("HTTP/1.1 200 OK\r\n") == 0);
  CHECK(mixed.out.find("HTTP/1.1 400 Bad Request\r\n") != std::string::npos);

  // Every prefix of a pipelined stream: complete requests answered, no harm.
  const std::string stream =
      "GET /1 HTTP/1.1\r\nHost: x\r\n\r\n"
      "POST /2 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nwxyz\r\n0\r\n\r\n"
      "GET /3 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  size_t answered_full = 0;
  bool bad = false;
  for (size_t n = 0; n <= stream.size(); n++) {
    calls = 0;
    Memory m = serve_memory(stream.substr(0, n), h);
    if (m.rc != 0 || count(m.out, "HTTP/1.1 200 OK\r\n") != static_cast<size_t>(calls)) bad = true;
    if (n == stream.size()) answered_full = static_cast<size_t>(calls);
  }
  CHECK_FALSE(bad);
  CHECK(answered_full == 3);

  // Random bytes, and random mutations of a good stream, with small reads.
  weft_http_limits lim{};
  lim.read_buffer_bytes = 7;
  uint32_t x = 12345;
  auto next = [&] {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return x;
  };
  bool failed = false;
  for (int i = 0; i < 300; i++) {
    std::string in = stream;
    if (i % 2 == 0) {
      in.resize(next() % 200);
      for (char &ch : in) ch = static_cast<char>(next());
    } else {
      for (int k = 0; k < 3; k++) in[next() % in.size()] = static_cast<char>(next());
    }
    Memory m = serve_memory(in, h, &lim);
    if (m.rc != 0) failed = true;
  }
  CHECK_FALSE(failed);
}

TEST_CASE("http: serve_memory checks its arguments", "[http][memory]") {
  int no_out = 1, no_handler = 1, outside = 1;
  char *out = reinterpret_cast<char *>(1);
  size_t len = 1;
  outside = weft_http_serve_memory("x", 1, nullptr, call_handler, nullptr, &out, &len);
  CHECK(outside == WEFT_ENOTASK);
  CHECK(out == nullptr);
  run(1, [&] {
    no_out = weft_http_serve_memory("x", 1, nullptr, call_handler, nullptr, nullptr, &len);
    char *o = nullptr;
    no_handler = weft_http_serve_memory("x", 1, nullptr, nullptr, nullptr, &o, &len);
    free(o);
    return 0;
  });
  CHECK(no_out == UV_EINVAL);
  CHECK(no_handler == UV_EINVAL);
}

#else

TEST_CASE("http: the module was not built (llhttp not found)", "[http]") { SUCCEED("skipped"); }

#endif
