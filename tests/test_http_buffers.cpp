// Tests of how an HTTP server connection grows its buffers
// (runtime/ext/http/http_conn.c): a request starts in small buffers (a read
// buffer on the task's stack, a workspace of a few KiB) and the part a
// larger request needs grows, up to the limits, and shrinks again before
// the next request. Served from memory (weft_http_serve_memory()), so every
// byte is checked without a socket.
//
// Proves: header sections and header counts past the workspace's sizes are
// read whole, up to the limits (which still answer 431 past them); trailer
// fields that grow the arena after the headers leave the request's strings
// intact; a large body read in growing pieces arrives intact; a large
// request followed by small ones on the same connection is answered in
// order.

#include <catch2/catch.hpp>

#include "http_support.h"

#ifdef WEFT_TEST_HAVE_HTTP

#include <string>
#include <vector>

namespace {

// What the handler saw of each request.
struct Seen {
  std::string target, path, query, body;
  std::vector<std::pair<std::string, std::string>> headers;
};

struct Memory {
  std::string in;
  weft_http_limits limits{};
  int rc = 1;
  std::string out;
  std::vector<Seen> seen;
};

int record(const weft_http_request *req, weft_http_response *res, void *ctx) {
  auto *m = static_cast<Memory *>(ctx);
  Seen s;
  s.target = weft_http_request_target(req);
  s.path = weft_http_request_path(req);
  s.query = weft_http_request_query(req);
  s.body = request_body(req);
  for (size_t i = 0; i < weft_http_request_header_count(req); i++) {
    const char *name = nullptr, *value = nullptr;
    weft_http_request_header_at(req, i, &name, &value);
    s.headers.emplace_back(name, value);
  }
  m->seen.push_back(s);
  return weft_http_response_body(res, "ok", 2);
}

int serve_root(void *arg) {
  auto *m = static_cast<Memory *>(arg);
  m->rc = serve_memory_into(m->in, &m->limits, record, m, &m->out);
  return 0;
}

void serve(Memory &m) { REQUIRE(run_bounded(serve_root, &m) == 0); }

// A header value of n bytes that differs from one header to the next.
std::string value_of(size_t i, size_t n) {
  std::string v(n, 'a');
  for (size_t k = 0; k < n; k++) v[k] = static_cast<char>('a' + (i * 7 + k) % 26);
  return v;
}

}  // namespace

TEST_CASE("http buffers: a header section past the workspace is read whole",
          "[http][buffers]") {
  Memory m;
  std::string req = "GET /long/path?x=1&y=2 HTTP/1.1\r\nHost: h\r\n";
  // About 7 KiB of headers: under the 8 KiB limit, over the 4 KiB workspace.
  for (size_t i = 0; i < 10; i++)
    req += "X-Long-" + std::to_string(i) + ": " + value_of(i, 680) + "\r\n";
  req += "\r\n";
  m.in = req + "GET /next HTTP/1.1\r\nHost: h\r\n\r\n";
  serve(m);
  CHECK(m.rc == 0);
  CHECK(count(m.out, "HTTP/1.1 200 OK\r\n") == 2);
  REQUIRE(m.seen.size() == 2);
  CHECK(m.seen[0].target == "/long/path?x=1&y=2");
  CHECK(m.seen[0].path == "/long/path");
  CHECK(m.seen[0].query == "x=1&y=2");
  REQUIRE(m.seen[0].headers.size() == 11);
  bool intact = true;
  for (size_t i = 0; i < 10; i++) {
    const auto &h = m.seen[0].headers[i + 1];
    if (h.first != "X-Long-" + std::to_string(i) || h.second != value_of(i, 680)) intact = false;
  }
  CHECK(intact);
  // The request after it starts small again and is read as well.
  CHECK(m.seen[1].path == "/next");
  CHECK(m.seen[1].headers.size() == 1);
}

TEST_CASE("http buffers: the most headers allowed are kept, one more is 431",
          "[http][buffers]") {
  auto request = [](size_t n) {
    std::string req = "GET / HTTP/1.1\r\nHost: h\r\n";
    for (size_t i = 1; i < n; i++)
      req += "X-" + std::to_string(i) + ": v" + std::to_string(i) + "\r\n";
    return req + "\r\n";
  };
  Memory ok;
  ok.in = request(100);  // the default limit, past the workspace's 64
  serve(ok);
  CHECK(ok.rc == 0);
  REQUIRE(ok.seen.size() == 1);
  REQUIRE(ok.seen[0].headers.size() == 100);
  CHECK(ok.seen[0].headers[99].first == "X-99");
  CHECK(ok.seen[0].headers[99].second == "v99");
  CHECK(ok.seen[0].headers[64].second == "v64");

  Memory over;
  over.in = request(101);
  serve(over);
  CHECK(over.rc == 0);
  CHECK(over.seen.empty());
  CHECK(over.out.find("HTTP/1.1 431 ") == 0);

  // A header section just over its limit is refused too.
  Memory big;
  big.in = "GET / HTTP/1.1\r\nHost: h\r\nX-Big: " + std::string(8200, 'b') + "\r\n\r\n";
  serve(big);
  CHECK(big.seen.empty());
  CHECK(big.out.find("HTTP/1.1 431 ") == 0);
}

TEST_CASE("http buffers: trailers that grow the arena keep the request's strings",
          "[http][buffers]") {
  Memory m;
  std::string req = "POST /up?name=t HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n";
  req += "X-Fill: " + value_of(1, 3000) + "\r\n\r\n";
  req += "5\r\nhello\r\n0\r\n";
  // Trailer fields are counted against the header bytes but not kept; these
  // take the arena past its first size after the target was copied in.
  req += "X-Trailer-A: " + value_of(2, 1500) + "\r\n";
  req += "X-Trailer-B: " + value_of(3, 1500) + "\r\n\r\n";
  m.in = req;
  serve(m);
  CHECK(m.rc == 0);
  CHECK(count(m.out, "HTTP/1.1 200 OK\r\n") == 1);
  REQUIRE(m.seen.size() == 1);
  CHECK(m.seen[0].target == "/up?name=t");
  CHECK(m.seen[0].path == "/up");
  CHECK(m.seen[0].query == "name=t");
  CHECK(m.seen[0].body == "hello");
  REQUIRE(m.seen[0].headers.size() == 3);
  CHECK(m.seen[0].headers[2].first == "X-Fill");
  CHECK(m.seen[0].headers[2].second == value_of(1, 3000));
}

TEST_CASE("http buffers: a large body arrives intact between small requests",
          "[http][buffers]") {
  Memory m;
  std::string body(300 * 1024, 'x');
  for (size_t i = 0; i < body.size(); i++) body[i] = static_cast<char>('0' + i % 43);
  m.in = "GET /a HTTP/1.1\r\nHost: h\r\n\r\n";
  m.in += "POST /b HTTP/1.1\r\nHost: h\r\nContent-Length: " + std::to_string(body.size()) +
          "\r\n\r\n" + body;
  m.in += "GET /c HTTP/1.1\r\nHost: h\r\n\r\n";
  serve(m);
  CHECK(m.rc == 0);
  CHECK(count(m.out, "HTTP/1.1 200 OK\r\n") == 3);
  REQUIRE(m.seen.size() == 3);
  CHECK(m.seen[0].path == "/a");
  CHECK(m.seen[1].path == "/b");
  CHECK(m.seen[1].body.size() == body.size());
  CHECK(m.seen[1].body == body);
  CHECK(m.seen[2].path == "/c");

  // The same with reads of a few bytes at a time.
  Memory small;
  small.in = m.in;
  small.limits.read_buffer_bytes = 5;
  serve(small);
  CHECK(small.rc == 0);
  REQUIRE(small.seen.size() == 3);
  CHECK(small.seen[1].body == body);
}

#else

TEST_CASE("http buffers: the module is not built", "[http]") {
  WARN("weft_http was not built (llhttp missing): its tests are skipped");
}

#endif
