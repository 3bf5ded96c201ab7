/* weft_plain: the HTTP server of the HTTP benchmark (bench/http/run.sh).
 *
 * It answers the two TechEmpower tests that measure the server itself rather
 * than a database or a template engine:
 *
 *   GET /plaintext   200 "Hello, World!" as text/plain
 *   GET /json        200 {"message":"Hello, World!"} as application/json,
 *                    the object serialised again for every request, as the
 *                    rules of that test ask
 *
 * and 404 to anything else. Every response carries Server and Date headers
 * (weft_http writes Date). The server is apps/common's app_server_run(): a
 * listener per executor with SO_REUSEPORT, one task per connection running
 * weft_http_serve_conn(), "listening on HOST:PORT" once it accepts, and a
 * clean exit on SIGINT or SIGTERM, like every weft server.
 *
 *   weft_plain --listen 127.0.0.1:0 --executors 1
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <weft.h>
#include <weft_http.h>

#include "config.h"
#include "server.h"
#include "stats.h"

typedef struct plain_config {
  app_listen_list listen;
  int64_t executors;
  int64_t max_connections;
  int64_t max_requests;
  int64_t backlog;
  int log_level;
} plain_config;

static const app_option plain_options[] = {
    APP_OPTION_LISTEN(plain_config, listen, "127.0.0.1:8080"),
    APP_OPTION_EXECUTORS(plain_config, executors, "1"),
    APP_OPTION_INT(plain_config, max_connections, "100000", 0, 10000000,
                   "connections served at once (0: no limit)"),
    APP_OPTION_INT(plain_config, max_requests, "1000", 1, UINT32_MAX,
                   "requests per keep-alive connection, as nginx's "
                   "keepalive_requests (the last is answered with "
                   "Connection: close)"),
    APP_OPTION_INT(plain_config, backlog, "4096", 1, 65535,
                   "connections the kernel queues for each listener"),
    APP_OPTION_LOG_LEVEL(plain_config, log_level),
};

static const app_spec plain_spec = APP_SPEC(
    "weft_plain",
    "The server of the HTTP benchmark: GET /plaintext and GET /json as in "
    "the TechEmpower tests, on weft_http and apps/common's server.",
    plain_options);

typedef struct plain_server {
  weft_http_limits limits;
} plain_server;

/* Writes {"message":"<text>"} into out (cap bytes), escaping what JSON
 * needs escaped. Returns the length, or 0 when it does not fit. The object
 * is built for every request on purpose: that is the work the test
 * measures, and a constant string would skip it. */
static size_t json_message(char *out, size_t cap, const char *text) {
  static const char head[] = "{\"message\":\"";
  static const char hex[] = "0123456789abcdef";
  size_t n = sizeof head - 1;
  if (cap < n + 3) return 0;
  memcpy(out, head, n);
  for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
    /* The worst case of one character is six bytes (\u00XX), plus "}. */
    if (cap - n < 6 + 3) return 0;
    if (*p == '"' || *p == '\\') {
      out[n++] = '\\';
      out[n++] = (char)*p;
    } else if (*p < 0x20) {
      memcpy(out + n, "\\u00", 4);
      out[n + 4] = hex[*p >> 4];
      out[n + 5] = hex[*p & 15];
      n += 6;
    } else {
      out[n++] = (char)*p;
    }
  }
  out[n++] = '"';
  out[n++] = '}';
  return n;
}

/* Answers one request: /plaintext, /json, or 404. */
static int plain_handle(const weft_http_request *req, weft_http_response *res,
                        void *ctx) {
  (void)ctx;
  const char *path = weft_http_request_path(req);
  int r = weft_http_response_header(res, "Server", "weft");
  if (r != 0) return r;
  if (strcmp(path, "/plaintext") == 0) {
    r = weft_http_response_header(res, "Content-Type", "text/plain");
    if (r == 0) r = weft_http_response_body(res, "Hello, World!", 13);
    return r;
  }
  if (strcmp(path, "/json") == 0) {
    char body[64];
    size_t len = json_message(body, sizeof body, "Hello, World!");
    r = weft_http_response_header(res, "Content-Type", "application/json");
    if (r == 0) r = weft_http_response_body(res, body, len);
    return r;
  }
  weft_http_response_status(res, 404);
  r = weft_http_response_header(res, "Content-Type", "text/plain");
  if (r == 0) r = weft_http_response_body(res, "Not Found\n", 10);
  return r;
}

/* Serves one connection (an app_conn_fn). */
static int plain_connection(weft_tcp *conn, void *ctx) {
  plain_server *ps = ctx;
  /* A shutdown closes idle keep-alive connections at once. */
  weft_http_serve_opts so = {.limits = &ps->limits,
                             .stop = app_server_stop_event()};
  return weft_http_serve_conn_opts(conn, &so, plain_handle, NULL);
}

/* The server's on_stop hook: closes this executor's idle connections. */
static void plain_stop_idle(void *ctx) {
  (void)ctx;
  weft_http_stop_idle(app_server_stop_event());
}

typedef struct plain_run {
  const plain_config *cfg;
  int result;
} plain_run;

/* The root task: runs the server until SIGINT or SIGTERM. */
static int plain_main(void *arg) {
  plain_run *run = arg;
  const plain_config *cfg = run->cfg;
  plain_server ps;
  weft_http_limits_default(&ps.limits);
  ps.limits.max_requests = (uint32_t)cfg->max_requests;
  app_stats *stats = app_stats_new("weft_plain");
  if (stats == NULL) return UV_ENOMEM;
  app_server_opts o = {
      .listen = &cfg->listen,
      .backlog = (int)cfg->backlog,
      .max_connections = cfg->max_connections,
      .shutdown_grace_ms = 1000,
      .stats_interval_ms = 0,
      /* Small responses are written whole: Nagle would only delay them. */
      .nodelay = 1,
      .handler = plain_connection,
      .ctx = &ps,
      .on_stop = plain_stop_idle,
      .stats = stats,
  };
  run->result = app_server_run(&o);
  app_stats_free(stats);
  return run->result;
}

int main(int argc, char **argv) {
  plain_config cfg;
  int rc = app_config_load(&plain_spec, &cfg, argc, argv);
  if (rc != APP_RUN) return rc;
  plain_run run = {.cfg = &cfg};
  weft_opts opts = {.executors = (int)cfg.executors};
  int err = weft_main_opts(&opts, plain_main, &run);
  app_config_free(&plain_spec, &cfg);
  if (err < 0) {
    fprintf(stderr, "weft_plain: %s\n", weft_strerror(err));
    return 1;
  }
  return 0;
}
