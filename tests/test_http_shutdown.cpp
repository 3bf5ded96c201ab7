// Tests of stopping HTTP server connections for a graceful shutdown
// (weft_http_serve_opts.stop and weft_http_stop_idle()): real connections on
// 127.0.0.1, the server side served with weft_http_serve_conn_opts().
//
// Proves: a keep-alive connection waiting for its next request closes as
// soon as the stop is set and weft_http_stop_idle() runs on its executor,
// also when the stop is set from another executor; a request in flight
// when the stop comes gets its whole response, with Connection: close, and
// then the connection closes, leaving pipelined requests behind it
// unanswered; a connection that has not sent anything yet closes at once;
// without weft_http_stop_idle(), an idle connection answers its next
// request with Connection: close. Every wait is bounded far below the idle
// timeout, so a connection that does not close fails the test instead of
// passing late.

#include <catch2/catch.hpp>

#include "http_support.h"

#ifdef WEFT_TEST_HAVE_HTTP

#include <functional>
#include <string>

#include "closures.h"
#include "net_support.h"

namespace {

// What one test records; asserted after the runtime returns.
struct Shutdown {
  weft_event *stop = nullptr;
  weft_event *started = nullptr; // set by /slow when it begins
  weft_event *release = nullptr; // /slow returns once it is set
  int listen_rc = 1;
  int connect_rc = 1;
  int serve_rc = 1;
  int handled = 0;
  std::string reply;   // every byte the client read, to the end of stream
  ssize_t read_rc = 1; // the client's last read: 0 at a clean end
  weft_tcp *listener = nullptr;
};

int handler(const weft_http_request *req, weft_http_response *res, void *ctx) {
  auto *s = static_cast<Shutdown *>(ctx);
  s->handled++;
  const char *path = weft_http_request_path(req);
  if (strcmp(path, "/slow") == 0) {
    weft_event_set(s->started);
    int r = weft_event_wait(s->release);
    if (r != 0) return r;
  }
  std::string body = std::string("done ") + path + "\n";
  return weft_http_response_body(res, body.data(), body.size());
}

// Serves the accepted connection c with the stop event, records the
// result in s->serve_rc and closes c.
int serve_with_stop(Shutdown *s, weft_tcp *c) {
  weft_http_serve_opts opts{};
  opts.stop = s->stop;
  s->serve_rc = weft_http_serve_conn_opts(c, &opts, handler, s);
  weft_tcp_close(c);
  return 0;
}

// Accepts one connection on s->listener and serves it with the stop event.
int serve_one(Shutdown *s) {
  weft_tcp *c = nullptr;
  int r = weft_tcp_accept(s->listener, &c);
  if (r < 0) return s->serve_rc = r;
  return serve_with_stop(s, c);
}

// Reads until the end of the stream, or an error, within ms.
void read_to_end(weft_tcp *c, Shutdown *s, int64_t ms) {
  weft_scope bound;
  weft_scope_enter(&bound, weft_test_ms(ms));
  s->reply += read_all(c, 0, &s->read_rc);
  weft_scope_leave(&bound);
}

// Reads until the reply holds the text `until`, within 5 s; false when the
// stream ended or the time ran out first.
bool read_until(weft_tcp *c, Shutdown *s, const std::string &until) {
  weft_scope bound;
  weft_scope_enter(&bound, weft_test_ms(5000));
  char buf[4096];
  bool ok = true;
  while (s->reply.find(until) == std::string::npos) {
    ssize_t n = weft_tcp_read(c, buf, sizeof buf);
    if (n <= 0) {
      ok = false;
      break;
    }
    s->reply.append(buf, (size_t)n);
  }
  weft_scope_leave(&bound);
  return ok;
}

// Sets up the events and the listener; false when something failed.
bool setup(Shutdown &s) {
  s.stop = weft_event_new();
  s.started = weft_event_new();
  s.release = weft_event_new();
  s.listen_rc = weft_tcp_listen("127.0.0.1", 0, 0, 0, &s.listener);
  return s.stop && s.started && s.release && s.listen_rc == 0;
}

void close_all(Shutdown &s) {
  if (s.listener) weft_tcp_close(s.listener);
  if (s.stop) weft_event_free(s.stop);
  if (s.started) weft_event_free(s.started);
  if (s.release) weft_event_free(s.release);
}

// Sends GET /a on c and reads until its whole answer is in s->reply;
// false when the stream ended or 5 s passed first.
bool get_first(weft_tcp *c, Shutdown *s) {
  static const char get[] = "GET /a HTTP/1.1\r\nHost: x\r\n\r\n";
  weft_tcp_write(c, get, sizeof get - 1);
  return read_until(c, s, "done /a\n");
}

// One served connection in a runtime of one executor: sets up, serves one
// connection with the stop event (set first when stop_first), connects,
// hands the client end to client, then closes it, lets a held /slow go,
// and joins the server. Returns the runtime's result.
int session(Shutdown &s, bool stop_first,
            const std::function<void(weft_tcp *)> &client) {
  return run(1, [&] {
    if (!setup(s)) return 0;
    if (stop_first) weft_event_set(s.stop);
    Tasks t(WEFT_COLLECT);
    t.spawn(0, [&] { return serve_one(&s); });
    weft_tcp *c = nullptr;
    s.connect_rc =
        weft_tcp_connect("127.0.0.1", weft_tcp_local_port(s.listener), &c);
    if (s.connect_rc == 0) {
      client(c);
      weft_tcp_close(c);
    }
    weft_event_set(s.release);
    t.join();
    close_all(s);
    return 0;
  });
}

// What every test asserts once the runtime has returned: it ran, the
// client connected, the server ended without an error and the client read
// to a clean end of the stream.
void check_clean_end(int rc, const Shutdown &s) {
  REQUIRE(rc == 0);
  REQUIRE(s.connect_rc == 0);
  CHECK(s.serve_rc == 0);
  CHECK(s.read_rc == 0);
}

} // namespace

TEST_CASE("http stop: an idle keep-alive connection closes when stopped",
          "[http][stop]") {
  Shutdown s;
  int rc = session(s, false, [&](weft_tcp *c) {
    // The first answer comes; the connection then waits for the next request.
    if (get_first(c, &s)) {
      weft_yield();
      weft_event_set(s.stop);
      weft_http_stop_idle(s.stop);
      // Far below the 60 s idle timeout: only the stop can close it.
      read_to_end(c, &s, 5000);
    }
  });
  check_clean_end(rc, s);
  CHECK(s.handled == 1);
  CHECK(count(s.reply, "HTTP/1.1 200 OK\r\n") == 1);
  // The response was made before the stop: it kept the connection open.
  CHECK(s.reply.find("Connection: close") == std::string::npos);
}

TEST_CASE(
    "http stop: a stop set on another executor reaches an idle connection",
    "[http][stop]") {
  Shutdown s;
  weft_event *listening = weft_event_new();
  int port = 0;
  int rc = run(2, [&] {
    if (listening == nullptr || !setup(s)) return 0;
    Tasks t(WEFT_COLLECT);
    // The connection is served on executor 2, with a listener of its own
    // there, as a server with a listener per executor does; a task there
    // closes its idle connections once the stop is set, as
    // apps/common/server.c's on_stop hook does.
    t.spawn(2, [&] {
      weft_tcp *l = nullptr;
      int r = weft_tcp_listen("127.0.0.1", 0, 0, 0, &l);
      if (r == 0) port = weft_tcp_local_port(l);
      weft_event_set(listening);
      if (r != 0) return s.serve_rc = r;
      weft_tcp *c = nullptr;
      r = weft_tcp_accept(l, &c);
      weft_tcp_close(l);
      if (r < 0) return s.serve_rc = r;
      return serve_with_stop(&s, c);
    });
    t.spawn(2, [&] {
      int r = weft_event_wait(s.stop);
      if (r == 0) weft_http_stop_idle(s.stop);
      return 0;
    });
    weft_tcp *c = nullptr;
    weft_event_wait(listening);
    s.connect_rc = port > 0 ? weft_tcp_connect("127.0.0.1", port, &c) : -1;
    if (s.connect_rc == 0) {
      if (get_first(c, &s)) {
        weft_sleep(20);
        weft_event_set(s.stop);
        read_to_end(c, &s, 5000);
      }
      weft_tcp_close(c);
    }
    // Whatever happened, nothing is left waiting.
    weft_event_set(s.stop);
    weft_event_set(s.release);
    t.join();
    close_all(s);
    return 0;
  });
  if (listening) weft_event_free(listening);
  check_clean_end(rc, s);
  CHECK(count(s.reply, "HTTP/1.1 200 OK\r\n") == 1);
}

TEST_CASE(
    "http stop: a request in flight is answered whole, with Connection: close",
    "[http][stop]") {
  Shutdown s;
  int rc = session(s, false, [&](weft_tcp *c) {
    // Two pipelined requests: the stop comes while the first is handled.
    static const char two[] = "GET /slow HTTP/1.1\r\nHost: x\r\n\r\nGET "
                              "/after HTTP/1.1\r\nHost: x\r\n\r\n";
    weft_tcp_write(c, two, sizeof two - 1);
    weft_scope bound;
    weft_scope_enter(&bound, weft_test_ms(5000));
    int waited = weft_event_wait(s.started);
    weft_scope_leave(&bound);
    if (waited == 0) {
      weft_event_set(s.stop);
      weft_http_stop_idle(s.stop); // the connection is not idle: no effect
      weft_event_set(s.release);
      read_to_end(c, &s, 5000);
    }
  });
  check_clean_end(rc, s);
  CHECK(s.handled == 1);
  CHECK(count(s.reply, "HTTP/1.1 200 OK\r\n") == 1);
  CHECK(s.reply.find("Connection: close\r\n") != std::string::npos);
  // The whole body, and nothing after it.
  REQUIRE(s.reply.size() >= 11);
  CHECK(s.reply.compare(s.reply.size() - 11, 11, "done /slow\n") == 0);
}

TEST_CASE("http stop: a connection that sent nothing closes at once",
          "[http][stop]") {
  Shutdown s;
  int rc = session(s, true, [&](weft_tcp *c) {
    // Far below the 10 s the first byte is given.
    read_to_end(c, &s, 5000);
  });
  check_clean_end(rc, s);
  CHECK(s.reply.empty());
  CHECK(s.handled == 0);
}

TEST_CASE("http stop: without stop_idle the next request is the last",
          "[http][stop]") {
  Shutdown s;
  int rc = session(s, false, [&](weft_tcp *c) {
    if (get_first(c, &s)) {
      weft_event_set(s.stop);
      static const char next[] = "GET /b HTTP/1.1\r\nHost: x\r\n\r\n";
      weft_tcp_write(c, next, sizeof next - 1);
      read_to_end(c, &s, 5000);
    }
  });
  check_clean_end(rc, s);
  CHECK(s.handled == 2);
  CHECK(count(s.reply, "HTTP/1.1 200 OK\r\n") == 2);
  CHECK(count(s.reply, "Connection: close\r\n") == 1);
  CHECK(s.reply.compare(s.reply.size() - 8, 8, "done /b\n") == 0);
}

#else

TEST_CASE("http stop: the module is not built", "[http]") {
  WARN("weft_http was not built (llhttp missing): its tests are skipped");
}

#endif
