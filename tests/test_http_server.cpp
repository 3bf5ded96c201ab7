// Tests of the HTTP/1.1 server module (runtime/ext/http): real connections
// on 127.0.0.1, a server task that accepts one connection and serves it with
// weft_http_serve_conn(), and a client task that writes raw bytes and reads
// the raw response until the server closes the connection.
//
// Proves: requests and responses (GET, HEAD, POST with a length and a chunked
// body, 404), keep-alive and pipelining in order, HTTP/1.0, every limit
// (431, 413, 408, idle close, requests per connection), and that requests
// which could be read two ways are refused with 400 and the connection
// closed. Built only with the module (llhttp); without it, one test says so.

#include <catch2/catch.hpp>

#include "http_support.h"

#ifdef WEFT_TEST_HAVE_HTTP

#include <string>
#include <vector>

#include "closures.h"
#include "net_support.h"

namespace {

// What the handler saw of one request.
struct Seen {
  std::string method, target, path, query, body, x_test;
  int version = 0;
  size_t headers = 0;
  int keep_alive = -1;
  int inject_rc = 1;  // adding a header with CRLF in its value
  int length_rc = 1;  // adding Content-Length by hand
};

struct Exchange {
  // Set by the test.
  weft_http_limits limits{};
  std::vector<std::string> pieces;  // written in turn
  int64_t pause_ms = 0;             // between pieces
  bool shutdown_after = false;      // half-close once everything is written
  int64_t read_delay_ms = 0;        // before the client starts reading

  // Recorded.
  int connect_rc = 1;
  int write_rc = 0;
  int serve_rc = 1;
  int64_t serve_ms = -1;  // how long weft_http_serve_conn() ran
  ssize_t read_rc = 1;
  std::string reply;
  int64_t closed_after_ms = -1;  // from the last write to end of stream
  std::vector<Seen> seen;
};

int handler(const weft_http_request *req, weft_http_response *res, void *ctx) {
  auto *x = static_cast<Exchange *>(ctx);
  Seen s;
  s.method = weft_http_request_method(req);
  s.target = weft_http_request_target(req);
  s.path = weft_http_request_path(req);
  s.query = weft_http_request_query(req);
  s.version = weft_http_request_version(req);
  s.headers = weft_http_request_header_count(req);
  s.body = request_body(req);
  // Header names are looked up without regard to case.
  const char *xt = weft_http_request_header(req, "x-TEST");
  if (xt) s.x_test = xt;
  s.keep_alive = weft_http_request_keep_alive(req);
  s.inject_rc = weft_http_response_header(res, "X-Evil", "a\r\nSet-Cookie: b");
  s.length_rc = weft_http_response_header(res, "content-length", "0");
  x->seen.push_back(s);

  if (s.path == "/missing") {
    weft_http_response_status(res, 404);
    return weft_http_response_body(res, "no such thing\n", 14);
  }
  if (s.path == "/fail") return UV_EIO;
  if (s.path == "/big") {
    std::string big(16 * 1024 * 1024, 'z');
    return weft_http_response_body(res, big.data(), big.size());
  }
  if (s.path == "/close") weft_http_response_header(res, "Connection", "close");
  weft_http_response_header(res, "Content-Type", "text/plain");
  std::string out = s.method + " " + s.path;
  if (!s.query.empty()) out += " q=" + s.query;
  if (!s.body.empty()) out += " body=" + s.body;
  out += "\n";
  return weft_http_response_body(res, out.data(), out.size());
}

// The client side of x on a server at port: connects, writes the pieces
// (pausing between them), half-closes when asked, and reads the reply to
// the end of the stream. Returns the connect error or 0.
int client(Exchange &x, int port) {
  weft_tcp *c = nullptr;
  x.connect_rc = weft_tcp_connect("127.0.0.1", port, &c);
  if (x.connect_rc != 0) return x.connect_rc;
  for (size_t i = 0; i < x.pieces.size() && x.write_rc == 0; i++) {
    if (i > 0 && x.pause_ms > 0) weft_sleep(x.pause_ms);
    x.write_rc = weft_tcp_write(c, x.pieces[i].data(), x.pieces[i].size());
  }
  int64_t sent = weft_now();
  if (x.shutdown_after) weft_tcp_shutdown(c);
  if (x.read_delay_ms > 0) weft_sleep(x.read_delay_ms);
  x.reply = read_all(c, 0, &x.read_rc);
  x.closed_after_ms = weft_now() - sent;
  weft_tcp_close(c);
  return 0;
}

// Runs one exchange within 10 s: a task accepts one connection and serves
// it with handler while the client side runs. The caller asserts on what
// it recorded.
void run(Exchange &x) {
  int rc = run(1, [&] {
    weft_scope bound;
    weft_scope_enter(&bound, weft_test_ms(10000));
    int r = serve_one_conn(
        [&](weft_tcp *c) {
          int64_t start = weft_now();
          x.serve_rc = weft_http_serve_conn(c, &x.limits, handler, &x);
          x.serve_ms = weft_now() - start;
          return 0;
        },
        [&](int port) { return client(x, port); });
    weft_scope_leave(&bound);
    return r;
  });
  REQUIRE(rc == 0);
  REQUIRE(x.connect_rc == 0);
}

// One parsed response.
struct Response {
  int status = 0;
  std::string head;  // status line and headers
  std::string body;
};

std::string lower(std::string s) {
  for (auto &ch : s) ch = (char)tolower((unsigned char)ch);
  return s;
}

// The value of header name in a response head, or "".
std::string header_of(const Response &r, const std::string &name) {
  std::string h = lower(r.head);
  std::string key = "\r\n" + lower(name) + ": ";
  size_t at = h.find(key);
  if (at == std::string::npos) return "";
  size_t start = at + key.size();
  size_t end = r.head.find("\r\n", start);
  return r.head.substr(start, end - start);
}

// Splits a stream of responses, taking bodies by Content-Length (head_only:
// the responses to HEAD have none). Stops at anything it cannot parse.
std::vector<Response> parse(const std::string &s, bool head_only = false) {
  std::vector<Response> out;
  size_t pos = 0;
  while (pos < s.size()) {
    size_t end = s.find("\r\n\r\n", pos);
    if (end == std::string::npos || s.compare(pos, 9, "HTTP/1.1 ") != 0) break;
    Response r;
    r.head = s.substr(pos, end + 2 - pos);
    r.status = atoi(s.c_str() + pos + 9);
    std::string cl = header_of(r, "Content-Length");
    size_t len = (cl.empty() || head_only) ? 0 : (size_t)atol(cl.c_str());
    pos = end + 4;
    if (pos + len > s.size()) break;
    r.body = s.substr(pos, len);
    pos += len;
    out.push_back(r);
  }
  return out;
}

// Runs x and parses its reply, which must hold exactly n responses.
std::vector<Response> run_parse(Exchange &x, size_t n) {
  run(x);
  auto rs = parse(x.reply);
  REQUIRE(rs.size() == n);
  return rs;
}

// Runs x, whose reply must be exactly one response, with the given status;
// returns that response.
Response run_one(Exchange &x, int status) {
  auto rs = run_parse(x, 1);
  CHECK(rs[0].status == status);
  return rs[0];
}

}  // namespace

TEST_CASE("http: a simple GET", "[http]") {
  Exchange x;
  x.pieces = {"GET /hello?name=weft HTTP/1.1\r\nHost: a\r\nX-Test: yes\r\n\r\n"};
  x.shutdown_after = true;
  Response r = run_one(x, 200);
  CHECK(x.serve_rc == 0);
  CHECK(x.read_rc == 0);
  CHECK(r.body == "GET /hello q=name=weft\n");
  CHECK(header_of(r, "Content-Length") == std::to_string(r.body.size()));
  CHECK(header_of(r, "Content-Type") == "text/plain");
  CHECK(!header_of(r, "Date").empty());
  REQUIRE(x.seen.size() == 1);
  CHECK(x.seen[0].method == "GET");
  CHECK(x.seen[0].target == "/hello?name=weft");
  CHECK(x.seen[0].path == "/hello");
  CHECK(x.seen[0].query == "name=weft");
  CHECK(x.seen[0].version == 11);
  CHECK(x.seen[0].headers == 2);
  CHECK(x.seen[0].x_test == "yes");
}

TEST_CASE("http: keep-alive serves two requests on one connection", "[http]") {
  Exchange x;
  x.pieces = {"GET /one HTTP/1.1\r\nHost: a\r\n\r\n",
              "GET /two HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"};
  x.pause_ms = 50;
  auto rs = run_parse(x, 2);
  CHECK(x.serve_rc == 0);
  CHECK(rs[0].body == "GET /one\n");
  CHECK(header_of(rs[0], "Connection").empty());
  CHECK(rs[1].body == "GET /two\n");
  CHECK(header_of(rs[1], "Connection") == "close");
  CHECK(x.read_rc == 0);
}

TEST_CASE("http: pipelined requests in one write are answered in order", "[http]") {
  Exchange x;
  x.pieces = {"GET /1 HTTP/1.1\r\nHost: a\r\n\r\n"
              "POST /2 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc"
              "GET /3 HTTP/1.1\r\nHost: a\r\n\r\n"};
  x.shutdown_after = true;
  auto rs = run_parse(x, 3);
  CHECK(x.serve_rc == 0);
  CHECK(rs[0].body == "GET /1\n");
  CHECK(rs[1].body == "POST /2 body=abc\n");
  CHECK(rs[2].body == "GET /3\n");
}

TEST_CASE("http: POST bodies with Content-Length and chunked", "[http]") {
  Exchange x;
  x.pieces = {"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\nhello",
              " world"
              "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
              "4\r\nWiki\r\n5\r\npedia\r\n0\r\n\r\n"};
  x.pause_ms = 20;
  x.shutdown_after = true;
  auto rs = run_parse(x, 2);
  CHECK(x.serve_rc == 0);
  CHECK(rs[0].body == "POST /echo body=hello world\n");
  CHECK(rs[1].body == "POST /echo body=Wikipedia\n");
  REQUIRE(x.seen.size() == 2);
  CHECK(x.seen[1].body == "Wikipedia");
}

TEST_CASE("http: Expect: 100-continue gets 100 Continue before the body", "[http]") {
  Exchange x;
  x.pieces = {"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n"
              "Expect: 100-continue\r\n\r\n",
              "data"};
  x.pause_ms = 100;
  x.shutdown_after = true;
  run(x);
  CHECK(x.serve_rc == 0);
  const std::string cont = "HTTP/1.1 100 Continue\r\n\r\n";
  REQUIRE(x.reply.compare(0, cont.size(), cont) == 0);
  auto rs = parse(x.reply.substr(cont.size()));
  REQUIRE(rs.size() == 1);
  CHECK(rs[0].body == "POST /echo body=data\n");
}

TEST_CASE("http: HEAD is answered with the length and without a body", "[http]") {
  Exchange x;
  x.pieces = {"HEAD /thing HTTP/1.1\r\nHost: a\r\n\r\n"
              "GET /after HTTP/1.1\r\nHost: a\r\n\r\n"};
  x.shutdown_after = true;
  run(x);
  auto rs = parse(x.reply, true);
  REQUIRE(rs.size() >= 1);
  CHECK(rs[0].status == 200);
  CHECK(header_of(rs[0], "Content-Length") == std::to_string(strlen("HEAD /thing\n")));
  // The next response starts right after the head of the first.
  size_t second = x.reply.find("\r\n\r\n") + 4;
  auto rest = parse(x.reply.substr(second));
  REQUIRE(rest.size() == 1);
  CHECK(rest[0].body == "GET /after\n");
}

TEST_CASE("http: a 404 from the handler, then a 500 that closes", "[http]") {
  Exchange x;
  x.pieces = {"GET /missing HTTP/1.1\r\nHost: a\r\n\r\n"
              "GET /fail HTTP/1.1\r\nHost: a\r\n\r\n"
              "GET /never HTTP/1.1\r\nHost: a\r\n\r\n"};
  auto rs = run_parse(x, 2);
  CHECK(x.serve_rc == 0);
  CHECK(rs[0].status == 404);
  CHECK(rs[0].body == "no such thing\n");
  CHECK(rs[1].status == 500);
  CHECK(header_of(rs[1], "Connection") == "close");
  CHECK(x.seen.size() == 2);
  CHECK(x.read_rc == 0);
}

TEST_CASE("http: HTTP/1.0 closes unless it asks for keep-alive", "[http]") {
  Exchange x;
  x.pieces = {"GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
              "GET /b HTTP/1.0\r\n\r\n"
              "GET /c HTTP/1.0\r\n\r\n"};
  auto rs = run_parse(x, 2);
  CHECK(x.serve_rc == 0);
  CHECK(header_of(rs[0], "Connection") == "keep-alive");
  CHECK(header_of(rs[1], "Connection") == "close");
  REQUIRE(x.seen.size() == 2);
  CHECK(x.seen[1].version == 10);
}

TEST_CASE("http: Connection: close from the handler closes", "[http]") {
  Exchange x;
  x.pieces = {"GET /close HTTP/1.1\r\nHost: a\r\n\r\n"
              "GET /never HTTP/1.1\r\nHost: a\r\n\r\n"};
  auto rs = run_parse(x, 1);
  CHECK(header_of(rs[0], "Connection") == "close");
  CHECK(x.seen.size() == 1);
  CHECK(x.read_rc == 0);
}

TEST_CASE("http: too many header bytes is 431", "[http][limits]") {
  Exchange x;
  x.limits.max_header_bytes = 1024;
  x.pieces = {"GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + std::string(2000, 'a') + "\r\n\r\n"};
  Response r = run_one(x, 431);
  CHECK(header_of(r, "Connection") == "close");
  CHECK(x.seen.empty());
  CHECK(x.read_rc == 0);
}

TEST_CASE("http: a target longer than the header bytes is 414", "[http][limits]") {
  Exchange x;
  x.limits.max_header_bytes = 512;
  x.pieces = {"GET /" + std::string(600, 'p') + " HTTP/1.1\r\nHost: a\r\n\r\n"};
  Response r = run_one(x, 414);
  CHECK(header_of(r, "Connection") == "close");
  CHECK(x.seen.empty());
}

TEST_CASE("http: a target within the limit with headers past it is 431",
          "[http][limits]") {
  Exchange x;
  x.limits.max_header_bytes = 512;
  x.pieces = {"GET /" + std::string(400, 'p') + " HTTP/1.1\r\nHost: a\r\nX-B: " +
              std::string(200, 'b') + "\r\n\r\n"};
  run_one(x, 431);
  CHECK(x.seen.empty());
}

TEST_CASE("http: too many headers is 431", "[http][limits]") {
  Exchange x;
  x.limits.max_headers = 5;
  std::string req = "GET / HTTP/1.1\r\nHost: a\r\n";
  for (int i = 0; i < 10; i++) req += "X-H" + std::to_string(i) + ": v\r\n";
  x.pieces = {req + "\r\n"};
  run_one(x, 431);
  CHECK(x.seen.empty());
}

TEST_CASE("http: a body over the limit is 413, by length and chunked", "[http][limits]") {
  Exchange a;
  a.limits.max_body_bytes = 100;
  a.pieces = {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1000\r\n\r\n" +
              std::string(1000, 'b')};
  run_one(a, 413);
  CHECK(a.seen.empty());

  Exchange b;
  b.limits.max_body_bytes = 100;
  std::string chunk(60, 'c');
  b.pieces = {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
              "3c\r\n" + chunk + "\r\n3c\r\n" + chunk + "\r\n0\r\n\r\n"};
  run_one(b, 413);
  CHECK(b.seen.empty());
}

TEST_CASE("http: a slow request line gets 408 and the connection closes", "[http][limits]") {
  Exchange x;
  x.limits.header_timeout_ms = weft_test_ms(200);
  x.pieces = {"GET /slo"};
  run_one(x, 408);
  CHECK(x.serve_rc == 0);
  CHECK(x.read_rc == 0);
  CHECK(x.closed_after_ms >= weft_test_ms(150));
  CHECK(x.seen.empty());
}

TEST_CASE("http: an idle keep-alive connection is closed", "[http][limits]") {
  Exchange x;
  x.limits.idle_timeout_ms = weft_test_ms(150);
  x.pieces = {"GET / HTTP/1.1\r\nHost: a\r\n\r\n"};
  Response r = run_one(x, 200);
  CHECK(x.serve_rc == 0);
  CHECK(header_of(r, "Connection").empty());
  CHECK(x.read_rc == 0);
  CHECK(x.closed_after_ms >= weft_test_ms(100));
}

TEST_CASE("http: requests per connection are limited", "[http][limits]") {
  Exchange x;
  x.limits.max_requests = 2;
  x.pieces = {"GET /1 HTTP/1.1\r\nHost: a\r\n\r\n"
              "GET /2 HTTP/1.1\r\nHost: a\r\n\r\n"
              "GET /3 HTTP/1.1\r\nHost: a\r\n\r\n"};
  auto rs = run_parse(x, 2);
  CHECK(header_of(rs[0], "Connection").empty());
  CHECK(header_of(rs[1], "Connection") == "close");
  CHECK(x.seen.size() == 2);
}

namespace {

// Sends one request that must be refused with 400 before the handler sees
// it, and checks that the connection was closed.
void expect_400(const std::string &request) {
  Exchange x;
  x.pieces = {request};
  Response r = run_one(x, 400);
  CHECK(x.serve_rc == 0);
  CHECK(header_of(r, "Connection") == "close");
  CHECK(x.read_rc == 0);
  CHECK(x.seen.empty());
}

}  // namespace

TEST_CASE("http: Content-Length with Transfer-Encoding is 400", "[http][smuggling]") {
  expect_400("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n"
             "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /x HTTP/1.1\r\nHost: a\r\n\r\n");
}

TEST_CASE("http: two Content-Length headers are 400", "[http][smuggling]") {
  expect_400("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc");
}

TEST_CASE("http: a bare CR is 400", "[http][smuggling]") {
  expect_400("GET / HTTP/1.1\r\nHost: a\rX-Evil: 1\r\n\r\n");
}

TEST_CASE("http: whitespace before a header's colon is 400", "[http][smuggling]") {
  expect_400("GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n");
}

TEST_CASE("http: a folded header line is 400", "[http][smuggling]") {
  expect_400("GET / HTTP/1.1\r\nHost: a\r\nX-A: one\r\n two\r\n\r\n");
}

TEST_CASE("http: a header with an empty value is kept", "[http]") {
  // RFC 9110 allows an empty field value, with or without the space.
  Exchange x;
  x.pieces = {"GET / HTTP/1.1\r\nX-Test:\r\nHost: a\r\nX-Other: \r\n\r\n"};
  x.shutdown_after = true;
  run_one(x, 200);
  REQUIRE(x.seen.size() == 1);
  CHECK(x.seen[0].headers == 3);
  CHECK(x.seen[0].x_test.empty());
}

TEST_CASE("http: an invalid header character is 400", "[http][smuggling]") {
  expect_400(std::string("GET / HTTP/1.1\r\nHost: a\r\nX-A: b\x01c\r\n\r\n"));
}

TEST_CASE("http: HTTP/1.1 without Host is 400", "[http]") {
  expect_400("GET / HTTP/1.1\r\nX-A: b\r\n\r\n");
}

TEST_CASE("http: headers a handler may not write are refused", "[http]") {
  Exchange x;
  x.pieces = {"GET / HTTP/1.1\r\nHost: a\r\n\r\n"};
  x.shutdown_after = true;
  run(x);
  REQUIRE(x.seen.size() == 1);
  CHECK(x.seen[0].inject_rc == UV_EINVAL);
  CHECK(x.seen[0].length_rc == UV_EINVAL);
  CHECK(x.seen[0].keep_alive == 1);
  CHECK(x.reply.find("X-Evil") == std::string::npos);
}

TEST_CASE("http: an upgrade request is answered and the connection closed", "[http]") {
  Exchange x;
  x.pieces = {"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\n"
              "Upgrade: websocket\r\n\r\n\x81\x05hello"};
  Response r = run_one(x, 200);
  CHECK(x.serve_rc == 0);
  CHECK(header_of(r, "Connection") == "close");
  REQUIRE(x.seen.size() == 1);
  CHECK(x.seen[0].keep_alive == 0);
  CHECK(x.read_rc == 0);
}

TEST_CASE("http: a client that does not read is dropped after the write timeout",
          "[http][limits]") {
  Exchange x;
  x.limits.write_timeout_ms = weft_test_ms(200);
  x.pieces = {"GET /big HTTP/1.1\r\nHost: a\r\n\r\n"};
  x.read_delay_ms = weft_test_ms(1500);
  run(x);
  CHECK(x.serve_rc == 0);
  CHECK(x.serve_ms >= weft_test_ms(150));
  CHECK(x.serve_ms < weft_test_ms(1400));
  // The client gets part of the response at most, then the end.
  CHECK(x.reply.size() < 16u * 1024 * 1024);
}

#else

TEST_CASE("http: the module is not built", "[http]") {
  WARN("weft_http skipped: llhttp (node-llhttp) not found at configure time");
}

#endif
