// Tests of the libcurl client module (runtime/ext/curl): real requests on
// 127.0.0.1 to a server inside the test, which accepts connections on port 0
// and serves each with weft_http_serve_conn() on a task of its own, counting
// the connections it accepted.
//
// Proves: GET and POST round trips, 200 concurrent requests from 50 tasks on
// one executor, keep-alive reuse, the caller's deadline, a group's
// cancellation and weft_curl_free() stopping transfers (the client usable
// afterwards), libcurl's own timeout, refused connections, malformed URLs and
// refused schemes, the body limit, redirects, an easy handle used twice at
// once, and one client per executor on two executors. Built only with the
// module (libcurl) and the HTTP server module; without them, one test says so.

#include <catch2/catch.hpp>

#if defined(__has_include)
#if __has_include(<weft_curl.h>) && __has_include(<weft_http.h>)
#define WEFT_TEST_HAVE_CURL 1
#endif
#endif

#ifdef WEFT_TEST_HAVE_CURL

#include <stdlib.h>
#include <string.h>

#include <string>
#include <vector>

#include "closures.h"
#include "curl_support.h"
#include "net_support.h"
#include "support.h"
#include "weft.h"
#include "weft_curl.h"
#include "weft_http.h"

namespace {

// The server: a LoopbackServer that serves each connection with
// weft_http_serve_conn() and handler(), counting what it saw.
struct Server : LoopbackServer {
  int requests = 0;      // requests handled
  int slow_started = 0;  // requests to /slow that reached the handler
};

// Routes: /hello, /echo (the method and body back), /slow (waits until the
// server stops), /big?n=N (N bytes), /redirect (to /hello), anything else 404.
int handler(const weft_http_request *req, weft_http_response *res, void *ctx) {
  auto *srv = static_cast<Server *>(ctx);
  srv->requests++;
  std::string path = weft_http_request_path(req);
  if (path == "/hello") {
    weft_http_response_header(res, "Content-Type", "text/plain");
    return weft_http_response_body(res, "hello\n", 6);
  }
  if (path == "/echo") {
    size_t len = 0;
    const char *body =
        static_cast<const char *>(weft_http_request_body(req, &len));
    std::string out = std::string(weft_http_request_method(req)) + " " +
                      std::string(body, len);
    return weft_http_response_body(res, out.data(), out.size());
  }
  if (path == "/slow") {
    srv->slow_started++;
    int r = weft_sleep(weft_test_ms(60000));
    if (r < 0) return r;
    return weft_http_response_body(res, "late\n", 5);
  }
  if (path == "/big") {
    std::string q = weft_http_request_query(req);
    size_t n = q.rfind("n=", 0) == 0 ? strtoul(q.c_str() + 2, nullptr, 10) : 0;
    std::string big(n, 'b');
    return weft_http_response_body(res, big.data(), big.size());
  }
  if (path == "/redirect") {
    weft_http_response_status(res, 302);
    weft_http_response_header(res, "Location", "/hello");
    return 0;
  }
  weft_http_response_status(res, 404);
  return weft_http_response_body(res, "no\n", 3);
}

// Serves one connection of srv with handler().
void serve_http(Server *srv, weft_tcp *tcp) {
  weft_http_serve_conn(tcp, nullptr, handler, srv);
}

// Starts srv (see LoopbackServer::start). Returns 0 or an error.
int server_start(Server *srv) {
  return srv->start([srv](weft_tcp *tcp) { serve_http(srv, tcp); });
}

// Runs body(server, client) on one executor with a server and a client
// started around it; returns body's result or the first setup error.
int with_server(const std::function<int(Server &, weft_curl *)> &body,
                int executors = 1) {
  return run(executors, [&]() -> int {
    Server srv;
    return with_curl_client(
        srv, [&srv](weft_tcp *tcp) { serve_http(&srv, tcp); },
        [&](weft_curl *c) { return body(srv, c); });
  });
}

// GETs "/" of 127.0.0.1:port with c; returns weft_curl_get()'s result and
// puts libcurl's code in *code.
int get_root(weft_curl *c, int port, CURLcode *code) {
  std::string u = "http://127.0.0.1:" + std::to_string(port) + "/";
  weft_curl_result res;
  int r = weft_curl_get(c, u.c_str(), 0, &res);
  *code = res.code;
  weft_curl_result_free(&res);
  return r;
}

size_t append_body(char *data, size_t size, size_t n, void *userp) {
  static_cast<std::string *>(userp)->append(data, size * n);
  return size * n;
}

} // namespace

TEST_CASE("GET and POST round trips", "[curl]") {
  weft_curl_result hello{}, missing{};
  int get_rc = 1, missing_rc = 1, post_rc = 1;
  CURLcode post_code = CURLE_FAILED_INIT;
  long post_status = 0;
  std::string post_body;
  int rc = with_server([&](Server &srv, weft_curl *c) -> int {
    get_rc = weft_curl_get(c, srv.url("/hello").c_str(), 0, &hello);
    missing_rc = weft_curl_get(c, srv.url("/nothing").c_str(), 0, &missing);

    CURL *easy = curl_easy_init();
    if (easy == nullptr) return UV_ENOMEM;
    std::string u = srv.url("/echo");
    curl_easy_setopt(easy, CURLOPT_URL, u.c_str());
    curl_easy_setopt(easy, CURLOPT_POSTFIELDS, "ping=1&x=y");
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, append_body);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, &post_body);
    post_rc = weft_curl_perform(c, easy, &post_code);
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &post_status);
    curl_easy_cleanup(easy);
    return 0;
  });
  REQUIRE(rc == 0);
  CHECK(get_rc == 0);
  CHECK(hello.status == 200);
  CHECK(std::string(hello.body) == "hello\n");
  CHECK(hello.body_len == 6);
  CHECK(hello.truncated == 0);
  REQUIRE(hello.content_type != nullptr);
  CHECK(std::string(hello.content_type) == "text/plain");
  REQUIRE(hello.effective_url != nullptr);
  CHECK(std::string(hello.effective_url).find("/hello") != std::string::npos);
  CHECK(hello.code == CURLE_OK);
  CHECK(hello.total_us >= hello.connect_us);
  // A 404 is a response like any other.
  CHECK(missing_rc == 0);
  CHECK(missing.status == 404);
  CHECK(std::string(missing.body) == "no\n");
  CHECK(post_rc == 0);
  CHECK(post_code == CURLE_OK);
  CHECK(post_status == 200);
  CHECK(post_body == "POST ping=1&x=y");
  weft_curl_result_free(&hello);
  weft_curl_result_free(&missing);
  weft_curl_result_free(&missing); // twice is harmless
}

TEST_CASE("200 concurrent requests from 50 tasks on one executor", "[curl]") {
  int ok = 0, failed = 0, accepted = 0, requests = 0;
  int rc = with_server([&](Server &srv, weft_curl *c) -> int {
    std::string u = srv.url("/echo");
    Tasks tasks(WEFT_COLLECT);
    for (int t = 0; t < 50; t++) {
      tasks.spawn(0, [&, u]() -> int {
        for (int i = 0; i < 4; i++) {
          weft_curl_result r;
          int e = weft_curl_get(c, u.c_str(), 0, &r);
          if (e == 0 && r.status == 200 && strcmp(r.body, "GET ") == 0)
            ok++;
          else
            failed++;
          weft_curl_result_free(&r);
        }
        return 0;
      });
    }
    int j = tasks.join();
    accepted = srv.accepted;
    requests = srv.requests;
    return j;
  });
  REQUIRE(rc == 0);
  CHECK(ok == 200);
  CHECK(failed == 0);
  CHECK(requests == 200);
  // Connections are reused: never more than the transfers at once.
  CHECK(accepted >= 1);
  CHECK(accepted <= 50);
}

TEST_CASE("sequential requests reuse one kept-alive connection", "[curl]") {
  int ok = 0, accepted = 0;
  int rc = with_server([&](Server &srv, weft_curl *c) -> int {
    for (int i = 0; i < 20; i++) {
      weft_curl_result r;
      if (weft_curl_get(c, srv.url("/hello").c_str(), 0, &r) == 0 &&
          r.status == 200)
        ok++;
      weft_curl_result_free(&r);
    }
    accepted = srv.accepted;
    return 0;
  });
  REQUIRE(rc == 0);
  CHECK(ok == 20);
  CHECK(accepted == 1);
}

TEST_CASE("the caller's deadline stops a slow transfer", "[curl]") {
  int slow_rc = 1, leave_rc = 1, after_rc = 1;
  long after_status = 0;
  int64_t took = -1;
  CURLcode slow_code = CURLE_OK;
  int rc = with_server([&](Server &srv, weft_curl *c) -> int {
    weft_curl_result r;
    weft_scope s;
    int64_t start = weft_now();
    weft_scope_enter(&s, 200);
    slow_rc = weft_curl_get(c, srv.url("/slow").c_str(), 0, &r);
    leave_rc = weft_scope_leave(&s);
    took = weft_now() - start;
    slow_code = r.code;
    weft_curl_result_free(&r);
    // The client is still fine.
    after_rc = weft_curl_get(c, srv.url("/hello").c_str(), 0, &r);
    after_status = r.status;
    weft_curl_result_free(&r);
    return 0;
  });
  REQUIRE(rc == 0);
  CHECK(slow_rc == UV_ETIMEDOUT);
  CHECK(slow_code == CURLE_ABORTED_BY_CALLBACK);
  CHECK(leave_rc == UV_ETIMEDOUT);
  CHECK(took >= 150);
  CHECK(took < weft_test_ms(10000)); // far below the server's 60 s
  CHECK(after_rc == 0);
  CHECK(after_status == 200);
}

TEST_CASE("cancelling a group stops its transfers", "[curl]") {
  int rcs[3] = {1, 1, 1};
  int join_rc = 1, saw_all = 0, after_rc = 1;
  int rc = with_server([&](Server &srv, weft_curl *c) -> int {
    std::string u = srv.url("/slow");
    Tasks tasks(WEFT_COLLECT);
    for (int i = 0; i < 3; i++)
      tasks.spawn(0, [&, u, i]() -> int {
        weft_curl_result r;
        rcs[i] = weft_curl_get(c, u.c_str(), 0, &r);
        weft_curl_result_free(&r);
        return 0;
      });
    // Cancel only once every request has reached the server: mid-transfer.
    saw_all = wait_until([&] { return srv.slow_started == 3; }, 10000);
    tasks.cancel();
    join_rc = tasks.join();
    weft_curl_result r;
    after_rc = weft_curl_get(c, srv.url("/hello").c_str(), 0, &r);
    weft_curl_result_free(&r);
    return 0;
  });
  REQUIRE(rc == 0);
  CHECK(saw_all);
  CHECK(join_rc == 0);
  for (int r : rcs) CHECK(r == UV_ECANCELED);
  CHECK(after_rc == 0);
}

TEST_CASE("a scope cancelled before the call starts nothing", "[curl]") {
  int perform_rc = 1, get_rc = 1;
  CURLcode code = CURLE_OK;
  size_t body_len = 1;
  int requests = -1;
  int rc = with_server([&](Server &srv, weft_curl *c) -> int {
    weft_scope s;
    weft_scope_enter(&s, -1);
    weft_scope_cancel(&s);
    CURL *easy = curl_easy_init();
    std::string u = srv.url("/hello");
    curl_easy_setopt(easy, CURLOPT_URL, u.c_str());
    perform_rc = weft_curl_perform(c, easy, &code);
    curl_easy_cleanup(easy);
    weft_curl_result r;
    get_rc = weft_curl_get(c, u.c_str(), 0, &r);
    body_len = r.body != nullptr ? r.body_len : 99;
    weft_curl_result_free(&r);
    weft_scope_leave(&s);
    requests = srv.requests;
    return 0;
  });
  REQUIRE(rc == 0);
  CHECK(perform_rc == UV_ECANCELED);
  CHECK(code == CURLE_ABORTED_BY_CALLBACK);
  CHECK(get_rc == UV_ECANCELED);
  CHECK(body_len == 0);
  CHECK(requests == 0);
}

TEST_CASE("freeing a client stops the transfers still in flight", "[curl]") {
  int got = 1, saw = 0;
  int rc = run(1, [&]() -> int {
    Server srv;
    int r = server_start(&srv);
    weft_curl *c = weft_curl_new(nullptr);
    if (r != 0 || c == nullptr) {
      weft_curl_free(c);
      srv.stop();
      return r != 0 ? r : UV_ENOMEM;
    }
    std::string u = srv.url("/slow");
    Tasks tasks;
    tasks.spawn(0, [&, u]() -> int {
      weft_curl_result res;
      got = weft_curl_get(c, u.c_str(), 0, &res);
      weft_curl_result_free(&res);
      return 0;
    });
    saw = wait_until([&] { return srv.slow_started == 1; }, 10000);
    weft_curl_free(c);
    int j = tasks.join();
    srv.stop();
    return j;
  });
  REQUIRE(rc == 0);
  CHECK(saw);
  CHECK(got == UV_ECANCELED);
}

TEST_CASE("one easy handle in two transfers at once is UV_EBUSY", "[curl]") {
  int first = 1, second = 1;
  CURLcode second_code = CURLE_OK;
  int rc = with_server([&](Server &srv, weft_curl *c) -> int {
    CURL *easy = curl_easy_init();
    std::string u = srv.url("/hello");
    std::string body;
    curl_easy_setopt(easy, CURLOPT_URL, u.c_str());
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, append_body);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, &body);
    Tasks tasks(WEFT_COLLECT);
    tasks.spawn(0, [&]() -> int {
      return first = weft_curl_perform(c, easy, nullptr);
    });
    tasks.spawn(0, [&]() -> int {
      second = weft_curl_perform(c, easy, &second_code);
      return 0;
    });
    int j = tasks.join();
    // The handle is the caller's again and can be reused.
    if (j == 0) j = weft_curl_perform(c, easy, nullptr);
    curl_easy_cleanup(easy);
    return j;
  });
  REQUIRE(rc == 0);
  CHECK(first == 0);
  CHECK(second == UV_EBUSY);
  CHECK(second_code == CURLE_FAILED_INIT);
}

TEST_CASE("localhost goes through libcurl's resolver", "[curl]") {
  int get_rc = 1;
  long status = 0;
  int rc = with_server([&](Server &srv, weft_curl *c) -> int {
    std::string u = "http://localhost:" + std::to_string(srv.port) + "/hello";
    weft_curl_result r;
    get_rc = weft_curl_get(c, u.c_str(), 0, &r);
    status = r.status;
    weft_curl_result_free(&r);
    return 0;
  });
  REQUIRE(rc == 0);
  CHECK(get_rc == 0);
  CHECK(status == 200);
}

TEST_CASE("libcurl's own timeout is UV_ETIMEDOUT", "[curl]") {
  int perform_rc = 1;
  CURLcode code = CURLE_OK;
  int rc = with_server([&](Server &srv, weft_curl *c) -> int {
    CURL *easy = curl_easy_init();
    std::string u = srv.url("/slow");
    curl_easy_setopt(easy, CURLOPT_URL, u.c_str());
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, 200L);
    perform_rc = weft_curl_perform(c, easy, &code);
    curl_easy_cleanup(easy);
    return 0;
  });
  REQUIRE(rc == 0);
  CHECK(perform_rc == UV_ETIMEDOUT);
  CHECK(code == CURLE_OPERATION_TIMEDOUT);
}

TEST_CASE("a closed port is UV_ECONNREFUSED", "[curl]") {
  int get_rc = 1;
  CURLcode code = CURLE_OK;
  int rc = run(1, [&]() -> int {
    weft_tcp *l = nullptr;
    int r = weft_tcp_listen("127.0.0.1", 0, 0, 0, &l);
    if (r < 0) return r;
    int port = weft_tcp_local_port(l);
    weft_tcp_close(l);
    weft_curl *c = weft_curl_new(nullptr);
    if (c == nullptr) return UV_ENOMEM;
    get_rc = get_root(c, port, &code);
    weft_curl_free(c);
    return 0;
  });
  REQUIRE(rc == 0);
  CHECK(get_rc == UV_ECONNREFUSED);
  CHECK(code == CURLE_COULDNT_CONNECT);
}

TEST_CASE("a server that closes without answering is UV_EOF", "[curl]") {
  int get_rc = 1;
  CURLcode code = CURLE_OK;
  int rc = run(1, [&]() -> int {
    weft_curl *c = weft_curl_new(nullptr);
    if (c == nullptr) return UV_ENOMEM;
    int r = serve_one_conn(
        // Reads the request, then hangs up.
        [](weft_tcp *conn) {
          char buf[1024];
          weft_tcp_read(conn, buf, sizeof buf);
          return 0;
        },
        [&](int port) {
          get_rc = get_root(c, port, &code);
          return 0;
        });
    weft_curl_free(c);
    return r;
  });
  REQUIRE(rc == 0);
  CHECK(get_rc == UV_EOF);
  CHECK(code == CURLE_GOT_NOTHING);
}

TEST_CASE("bad URLs and arguments are errors, not crashes", "[curl]") {
  const char *bad[] = {"",
                       "http://[::1",
                       "http://127.0.0.1:99999/",
                       "http://",
                       "ftp://127.0.0.1/",
                       "file:///etc/passwd",
                       "gopher://127.0.0.1/"};
  std::vector<int> rcs;
  std::vector<size_t> lens;
  int null_url = 1, null_client = 1, null_out = 1, null_easy = 1, ok_after = 1;
  int bad_opts = 0;
  int rc = run(1, [&]() -> int {
    weft_curl *c = weft_curl_new(nullptr);
    if (c == nullptr) return UV_ENOMEM;
    for (const char *u : bad) {
      weft_curl_result r;
      rcs.push_back(weft_curl_get(c, u, 0, &r));
      lens.push_back(r.body != nullptr ? r.body_len : 99);
      weft_curl_result_free(&r);
    }
    weft_curl_result r;
    null_url = weft_curl_get(c, nullptr, 0, &r);
    weft_curl_result_free(&r);
    null_client = weft_curl_get(nullptr, "http://127.0.0.1/", 0, &r);
    weft_curl_result_free(&r);
    null_out = weft_curl_get(c, "http://127.0.0.1/", 0, nullptr);
    null_easy = weft_curl_perform(c, nullptr, nullptr);
    weft_curl_opts o{};
    o.max_connections = -1;
    weft_curl *b = weft_curl_new(&o);
    bad_opts = b == nullptr;
    weft_curl_free(b);
    weft_curl_free(nullptr);
    // Nothing above broke the client.
    Server srv;
    int s = server_start(&srv);
    if (s == 0) {
      ok_after = weft_curl_get(c, srv.url("/hello").c_str(), 0, &r);
      weft_curl_result_free(&r);
    }
    weft_curl_free(c);
    srv.stop();
    return s;
  });
  REQUIRE(rc == 0);
  REQUIRE(rcs.size() == sizeof bad / sizeof bad[0]);
  for (size_t i = 0; i < rcs.size(); i++) {
    INFO("url '" << bad[i] << "' gave " << weft_err_name(rcs[i]));
    CHECK(rcs[i] < 0);
    CHECK(lens[i] == 0);
  }
  // Schemes other than http and https are refused, not fetched.
  CHECK(rcs[4] == UV_EINVAL);
  CHECK(rcs[5] == UV_EINVAL);
  CHECK(null_url == UV_EINVAL);
  CHECK(null_client == UV_EINVAL);
  CHECK(null_out == UV_EINVAL);
  CHECK(null_easy == UV_EINVAL);
  CHECK(bad_opts);
  CHECK(ok_after == 0);
}

TEST_CASE("weft_curl_get bounds the body", "[curl]") {
  int cut_rc = 1, full_rc = 1, exact_rc = 1;
  weft_curl_result cut{}, full{}, exact{};
  int rc = with_server([&](Server &srv, weft_curl *c) -> int {
    cut_rc = weft_curl_get(c, srv.url("/big?n=100000").c_str(), 1000, &cut);
    full_rc = weft_curl_get(c, srv.url("/big?n=100000").c_str(), 0, &full);
    exact_rc = weft_curl_get(c, srv.url("/big?n=5000").c_str(), 5000, &exact);
    return 0;
  });
  REQUIRE(rc == 0);
  CHECK(cut_rc == UV_EFBIG);
  CHECK(cut.truncated);
  CHECK(cut.body_len == 1000);
  CHECK(strlen(cut.body) == 1000);
  CHECK(cut.status == 200);
  CHECK(full_rc == 0);
  CHECK(full.body_len == 100000);
  CHECK(full.truncated == 0);
  CHECK(std::string(full.body) == std::string(100000, 'b'));
  CHECK(exact_rc == 0);
  CHECK(exact.body_len == 5000);
  CHECK(exact.truncated == 0);
  weft_curl_result_free(&cut);
  weft_curl_result_free(&full);
  weft_curl_result_free(&exact);
}

TEST_CASE("weft_curl_get follows redirects", "[curl]") {
  int get_rc = 1;
  weft_curl_result r{};
  int rc = with_server([&](Server &srv, weft_curl *c) -> int {
    get_rc = weft_curl_get(c, srv.url("/redirect").c_str(), 0, &r);
    return 0;
  });
  REQUIRE(rc == 0);
  CHECK(get_rc == 0);
  CHECK(r.status == 200);
  CHECK(r.redirects == 1);
  CHECK(std::string(r.body) == "hello\n");
  REQUIRE(r.effective_url != nullptr);
  CHECK(std::string(r.effective_url).find("/hello") != std::string::npos);
  weft_curl_result_free(&r);
}

TEST_CASE("two executors, one client each", "[curl]") {
  int ok[2] = {0, 0};
  int wrong_exec = 1, on_exec[2] = {0, 0};
  int rc = with_server(
      [&](Server &srv, weft_curl *c) -> int {
        std::string u = srv.url("/hello");
        Tasks tasks(WEFT_COLLECT);
        for (int e = 1; e <= 2; e++) {
          tasks.spawn(e, [&, u, e]() -> int {
            on_exec[e - 1] = weft_executor_id();
            weft_curl *mine = weft_curl_new(nullptr);
            if (mine == nullptr) return UV_ENOMEM;
            Tasks inner(WEFT_COLLECT);
            for (int t = 0; t < 5; t++)
              inner.spawn(0, [&, u, e]() -> int {
                for (int i = 0; i < 8; i++) {
                  weft_curl_result r;
                  if (weft_curl_get(mine, u.c_str(), 0, &r) == 0 &&
                      r.status == 200)
                    ok[e - 1]++;
                  weft_curl_result_free(&r);
                }
                return 0;
              });
            int j = inner.join();
            // A client belongs to its executor: the other one's is refused.
            if (e == 2) {
              CURL *easy = curl_easy_init();
              curl_easy_setopt(easy, CURLOPT_URL, u.c_str());
              wrong_exec = weft_curl_perform(c, easy, nullptr);
              curl_easy_cleanup(easy);
            }
            weft_curl_free(mine);
            return j;
          });
        }
        return tasks.join();
      },
      2);
  REQUIRE(rc == 0);
  CHECK(on_exec[0] == 1);
  CHECK(on_exec[1] == 2);
  CHECK(ok[0] == 40);
  CHECK(ok[1] == 40);
  CHECK(wrong_exec == UV_EINVAL);
}

TEST_CASE("weft_curl_error maps libcurl's codes", "[curl]") {
  CHECK(weft_curl_error(CURLE_OK) == 0);
  CHECK(weft_curl_error(CURLE_COULDNT_CONNECT) == UV_ECONNREFUSED);
  CHECK(weft_curl_error(CURLE_COULDNT_RESOLVE_HOST) == UV_EAI_NONAME);
  CHECK(weft_curl_error(CURLE_OPERATION_TIMEDOUT) == UV_ETIMEDOUT);
  CHECK(weft_curl_error(CURLE_URL_MALFORMAT) == UV_EINVAL);
  CHECK(weft_curl_error(CURLE_TOO_MANY_REDIRECTS) == UV_ELOOP);
  CHECK(weft_curl_error(CURLE_SSL_CONNECT_ERROR) == UV_EPROTO);
  CHECK(weft_curl_error(CURLE_GOT_NOTHING) == UV_EOF);
  CHECK(weft_curl_error(CURLE_FTP_COULDNT_RETR_FILE) == UV_EIO);
}

TEST_CASE("weft_curl_new needs a task", "[curl]") {
  CHECK(weft_curl_new(nullptr) == nullptr);
}

#else

TEST_CASE("weft_curl module not built", "[curl]") {
  WARN("runtime/ext/curl was not built (libcurl or the HTTP module missing)");
}

#endif
