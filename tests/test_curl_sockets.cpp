// Tests of how the libcurl client module (runtime/ext/curl) watches sockets
// across transfers: a kept-alive socket stays watched between transfers (no
// poll handle made and closed per request), and is forgotten only when
// libcurl closes it. The server is a raw weft_tcp loop on 127.0.0.1 port 0
// that answers each request with a fixed response, so that the test decides
// exactly when a connection closes.
//
// Proves: a server that closes every connection after its response (the
// next socket usually gets the same descriptor number as the one just
// closed) is served request after request; a server that closes a
// kept-alive connection while it is idle costs the next request nothing but
// a new connection; the same with two transfers at once on two idle
// connections; and many requests over a few kept-alive connections open no
// more connections than there are tasks.

#include <catch2/catch.hpp>

#if defined(__has_include)
#if __has_include(<weft_curl.h>)
#define WEFT_TEST_HAVE_CURL 1
#endif
#endif

#ifdef WEFT_TEST_HAVE_CURL

#include <string.h>

#include <string>

#include "closures.h"
#include "curl_support.h"
#include "net_support.h"
#include "support.h"
#include "weft.h"
#include "weft_curl.h"

namespace {

// What the raw server does after each response.
enum class After {
  keep,       // waits for the next request on the connection
  close,      // closes the connection at once ("Connection: close")
  idle_close, // closes it a moment later, while the client holds it idle
};

// A LoopbackServer whose connections raw_serve() answers.
struct RawServer : LoopbackServer {
  After after = After::keep;
  int answered = 0;
};

// Reads requests (each ends with an empty line; they have no body) and
// answers each with a 5-byte body, then does what srv->after says.
void raw_serve(RawServer *srv, weft_tcp *tcp) {
  std::string in;
  char buf[2048];
  for (;;) {
    size_t end = in.find("\r\n\r\n");
    if (end == std::string::npos) {
      ssize_t n = weft_tcp_read(tcp, buf, sizeof buf);
      if (n <= 0) break;
      in.append(buf, (size_t)n);
      continue;
    }
    in.erase(0, end + 4);
    const char *resp =
        srv->after == After::close
            ? "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: "
              "close\r\n\r\nhello"
            : "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
    if (weft_tcp_write(tcp, resp, strlen(resp)) != 0) break;
    srv->answered++;
    if (srv->after == After::close) break;
    if (srv->after == After::idle_close) {
      weft_sleep(20);
      break;
    }
  }
}

size_t count_body(char *data, size_t size, size_t n, void *userp) {
  (void)data;
  *static_cast<size_t *>(userp) += size * n;
  return size * n;
}

// Makes `rounds` GETs of the server's "/" with one easy handle, each after
// `pause_ms`; returns how many got a 200 with the 5-byte body.
int get_rounds(weft_curl *c, int port, int rounds, int64_t pause_ms) {
  CURL *e = curl_easy_init();
  if (e == nullptr) return -1;
  std::string u = "http://127.0.0.1:" + std::to_string(port) + "/";
  size_t bytes = 0;
  curl_easy_setopt(e, CURLOPT_URL, u.c_str());
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, count_body);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, &bytes);
  int ok = 0;
  for (int i = 0; i < rounds; i++) {
    if (pause_ms > 0) weft_sleep(pause_ms);
    bytes = 0;
    long status = 0;
    if (weft_curl_perform(c, e, nullptr) == 0 &&
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status) == CURLE_OK &&
        status == 200 && bytes == 5)
      ok++;
  }
  curl_easy_cleanup(e);
  return ok;
}

// Runs body(server, client) with a raw server doing `after`.
int with_raw_server(After after,
                    const std::function<int(RawServer &, weft_curl *)> &body) {
  return run(1, [&]() -> int {
    RawServer srv;
    srv.after = after;
    return with_curl_client(
        srv, [&srv](weft_tcp *tcp) { raw_serve(&srv, tcp); },
        [&](weft_curl *c) { return body(srv, c); });
  });
}

} // namespace

TEST_CASE("a connection per request: descriptors come back at once", "[curl]") {
  int ok = 0, accepted = 0;
  int rc = with_raw_server(After::close, [&](RawServer &srv, weft_curl *c) {
    ok = get_rounds(c, srv.port, 50, 0);
    accepted = srv.accepted;
    return 0;
  });
  REQUIRE(rc == 0);
  CHECK(ok == 50);
  CHECK(accepted == 50);
}

TEST_CASE("a kept-alive connection closed while idle is replaced", "[curl]") {
  int ok = 0, accepted = 0;
  int rc =
      with_raw_server(After::idle_close, [&](RawServer &srv, weft_curl *c) {
        // Each pause outlasts the server's 20 ms: every request after the first
        // finds its connection closed by the peer.
        ok = get_rounds(c, srv.port, 10, 60);
        accepted = srv.accepted;
        return 0;
      });
  REQUIRE(rc == 0);
  CHECK(ok == 10);
  CHECK(accepted == 10);
}

TEST_CASE("two transfers at once, idle connections closed under both",
          "[curl]") {
  int ok = 0, accepted = 0;
  int rc =
      with_raw_server(After::idle_close, [&](RawServer &srv, weft_curl *c) {
        // Rounds in lockstep: two transfers at once, then a pause that outlasts
        // the server's 20 ms, so both idle connections are closed before
        // either is wanted again (never while a request is on its way).
        for (int round = 0; round < 5; round++) {
          int got[2] = {0, 0};
          Tasks tasks;
          for (int t = 0; t < 2; t++)
            tasks.spawn(0, [&, t]() -> int {
              got[t] = get_rounds(c, srv.port, 1, 0);
              return 0;
            });
          int j = tasks.join();
          if (j != 0) return j;
          ok += got[0] + got[1];
          weft_sleep(60);
        }
        accepted = srv.accepted;
        return 0;
      });
  REQUIRE(rc == 0);
  CHECK(ok == 10);
  CHECK(accepted == 10);
}

TEST_CASE("kept-alive sockets are reused, not reopened", "[curl]") {
  int ok[4] = {0, 0, 0, 0}, accepted = 0, answered = 0;
  int rc = with_raw_server(After::keep, [&](RawServer &srv, weft_curl *c) {
    Tasks tasks;
    for (int t = 0; t < 4; t++)
      tasks.spawn(0, [&, t]() -> int {
        ok[t] = get_rounds(c, srv.port, 100, 0);
        return 0;
      });
    int j = tasks.join();
    accepted = srv.accepted;
    answered = srv.answered;
    return j;
  });
  REQUIRE(rc == 0);
  for (int t = 0; t < 4; t++) CHECK(ok[t] == 100);
  CHECK(answered == 400);
  CHECK(accepted <= 4);
}

#else

TEST_CASE("weft_curl module not built (socket tests)", "[curl]") {
  WARN("weft_curl.h not found: the libcurl client module is not built");
}

#endif
