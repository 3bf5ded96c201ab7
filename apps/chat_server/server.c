/* server.c: the chat server's listeners and its HTTP side.
 *
 * One app_server (apps/common/server.h) serves every address: those of
 * --listen speak the line protocol, those of --http-listen speak HTTP (the
 * web page at /, the WebSocket at /ws, /healthz and /metrics). Next to it,
 * each executor runs a janitor task (see conn.h), and the room directory
 * runs in the root's group.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <weft_http.h>
#include <weft_ws.h>

#include "auth.h"
#include "chat.h"
#include "cluster.h"
#include "conn.h"
#include "nicks.h"
#include "room.h"
#include "server.h"
#include "store.h"
#include "web_page.h"

chat_server *chat_srv;

/* ---- HTTP ------------------------------------------------------------------ */

static int serve_ws(const weft_http_request *req, weft_http_response *res) {
  const chat_config *cfg = chat_srv->cfg;
  weft_ws_limits limits;
  weft_ws_limits_default(&limits);
  /* Up to twice --max-line is read, so that a message over the limit gets
   * the too_large error rather than a bare close. */
  limits.max_message_bytes = (size_t)cfg->max_line * 2 + 4096;
  limits.max_frame_bytes = limits.max_message_bytes;
  /* Requests are small, and a connection keeps its read buffer for life:
   * a large message is read straight into its own buffer anyway. */
  limits.read_buffer_bytes = 1024;
  if (cfg->idle_timeout > 0) {
    limits.idle_timeout_ms = cfg->idle_timeout;
    limits.ping_interval_ms = cfg->idle_timeout / 2 > 0 ? cfg->idle_timeout / 2 : 1;
  } else {
    limits.idle_timeout_ms = -1;
  }
  weft_ws *ws;
  if (weft_ws_upgrade(req, res, &limits, &ws) != 0) return 0;
  chat_conn_serve_ws(ws);
  weft_ws_free(ws);
  return 0;
}

static int serve_healthz(weft_http_response *res) {
  char body[256];
  int n = snprintf(body, sizeof body,
                   "{\"status\":\"ok\",\"sessions\":%lld,\"rooms\":%lld,"
                   "\"store\":\"%s\",\"redis\":\"%s\"}\n",
                   (long long)app_gauge_value(chat_srv->sessions),
                   (long long)chat_rooms_count(),
                   chat_srv->cfg->store ? "on" : "off",
                   !chat_srv->cluster ? "off" : chat_cluster_up() ? "up" : "down");
  weft_http_response_header(res, "Content-Type", "application/json");
  weft_http_response_header(res, "Cache-Control", "no-store");
  return weft_http_response_body(res, body, (size_t)n);
}

static int serve_metrics(weft_http_response *res) {
  char *text = weft_metrics_prometheus();
  if (text == NULL) return UV_ENOMEM;
  weft_http_response_header(res, "Content-Type", "text/plain; version=0.0.4");
  int r = weft_http_response_body(res, text, strlen(text));
  free(text);
  return r;
}

static int http_handler(const weft_http_request *req, weft_http_response *res,
                        void *ctx) {
  (void)ctx;
  const char *path = weft_http_request_path(req);
  const char *method = weft_http_request_method(req);
  if (app_server_stopping()) weft_http_response_close(res);
  int get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
  if (strcmp(path, "/ws") == 0 && strcmp(method, "GET") == 0)
    return serve_ws(req, res);
  if (get && (strcmp(path, "/") == 0 || strcmp(path, "/index.html") == 0)) {
    weft_http_response_header(res, "Content-Type", "text/html; charset=utf-8");
    weft_http_response_header(res, "Cache-Control", "no-cache");
    return weft_http_response_body(res, chat_web_page, sizeof chat_web_page);
  }
  if (get && strcmp(path, "/healthz") == 0) return serve_healthz(res);
  if (get && strcmp(path, "/metrics") == 0) return serve_metrics(res);
  int known = strcmp(path, "/") == 0 || strcmp(path, "/index.html") == 0 ||
              strcmp(path, "/healthz") == 0 || strcmp(path, "/metrics") == 0;
  weft_http_response_status(res, known ? 405 : 404);
  weft_http_response_header(res, "Content-Type", "text/plain");
  return weft_http_response_body(res, known ? "method not allowed\n" : "not found\n",
                                 known ? 19 : 10);
}

static int http_conn(weft_tcp *conn, void *ctx) {
  (void)ctx;
  weft_http_serve_opts so = {.stop = app_server_stop_event()};
  return weft_http_serve_conn_opts(conn, &so, http_handler, NULL);
}

/* The server's on_stop hook, on every executor. */
static void on_stop(void *ctx) {
  (void)ctx;
  chat_conns_stop_executor();
  weft_http_stop_idle(app_server_stop_event());
}

/* ---- The root -------------------------------------------------------------- */

static void register_counters(chat_server *s) {
  app_stats *st = s->stats;
  s->messages = app_stats_counter(st, "messages");
  s->delivered = app_stats_counter(st, "delivered");
  s->dms = app_stats_counter(st, "dms");
  s->errors = app_stats_counter(st, "errors");
  s->slow_consumers = app_stats_counter(st, "slow_consumers");
  s->rate_limited = app_stats_counter(st, "rate_limited");
  s->sessions = app_stats_gauge(st, "sessions");
  app_stats_rate(st, "messages_per_s", s->messages);
  app_stats_rate(st, "delivered_per_s", s->delivered);
  s->m_messages = weft_metrics_counter("chat_messages_total", "Room messages said");
  s->m_delivered = weft_metrics_counter("chat_delivered_total",
                                        "Copies of messages queued for members");
  s->m_dms = weft_metrics_counter("chat_dms_total", "Direct messages sent");
  s->m_errors = weft_metrics_counter("chat_errors_total", "Error replies sent");
  s->m_slow = weft_metrics_counter("chat_slow_consumers_total",
                                   "Connections cut off as slow consumers");
  s->m_sessions = weft_metrics_gauge("chat_sessions", "Connections that said hello");
  s->m_rooms = weft_metrics_gauge("chat_rooms", "Rooms");
}

int chat_server_run(void *arg) {
  chat_start *start = arg;
  const chat_config *cfg = start->cfg;
  chat_server srv;
  memset(&srv, 0, sizeof srv);
  srv.cfg = cfg;
  srv.auth = start->auth;
  srv.n_exec = weft_executor_count();
  srv.stats = app_stats_new("chat_server");
  if (srv.stats == NULL || chat_conns_init(srv.n_exec) != 0) {
    chat_conns_free();
    app_stats_free(srv.stats);
    return UV_ENOMEM;
  }
  register_counters(&srv);
  chat_srv = &srv;

  /* Every address in one server: the line protocol first, then HTTP. */
  size_t n_tcp = cfg->listen.n, n_http = cfg->http_listen.n, n = n_tcp + n_http;
  app_addr *addrs = calloc(n, sizeof *addrs);
  app_conn_fn *handlers = calloc(n, sizeof *handlers);
  const char **protocols = calloc(n, sizeof *protocols);
  srv.janitors = calloc((size_t)srv.n_exec, sizeof *srv.janitors);
  weft_group *helpers = weft_group_open(WEFT_COLLECT);
  int err = 0;
  if (addrs == NULL || handlers == NULL || protocols == NULL ||
      srv.janitors == NULL || helpers == NULL)
    err = UV_ENOMEM;
  for (size_t i = 0; err == 0 && i < n; i++) {
    int tcp = i < n_tcp;
    addrs[i] = tcp ? cfg->listen.addrs[i] : cfg->http_listen.addrs[i - n_tcp];
    handlers[i] = tcp ? chat_conn_serve_tcp : http_conn;
    protocols[i] = tcp ? "tcp" : "http";
  }
  for (int k = 0; err == 0 && k < srv.n_exec; k++) {
    /* A producer never waits for a janitor: room for every connection
     * a cut-off can name at once is plenty. */
    srv.janitors[k] = weft_chan_new(sizeof(chat_conn *), 4096, WEFT_CHAN_MPMC);
    weft_task_opts topts = {.name = "janitor", .executor = k + 1};
    if (srv.janitors[k] == NULL ||
        weft_spawn_opts(helpers, &topts, chat_janitor_task, srv.janitors[k]) != 0)
      err = UV_ENOMEM;
    weft_task_opts sopts = {.name = "starter", .executor = k + 1};
    if (err == 0 && weft_spawn_opts(helpers, &sopts, chat_writer_starter_task,
                                    (void *)(intptr_t)(k + 1)) != 0) /* NOLINT(performance-no-int-to-ptr): an executor number as the argument */
      err = UV_ENOMEM;
  }
  if (err == 0 && cfg->store != NULL) {
    char why[512];
    err = chat_store_open(cfg->store, &srv.store, why, sizeof why);
    if (err != 0) {
      fprintf(stderr, "chat_server: --store: %s\n", why);
      start->bad_option = 1;
    } else {
      weft_log(WEFT_LOG_INFO, "history store open", "path=%s", cfg->store);
    }
  }
  if (err == 0 && cfg->redis != NULL) {
    char why[512];
    err = chat_cluster_start(helpers, cfg->redis, why, sizeof why);
    if (err != 0) {
      fprintf(stderr, "chat_server: --redis: %s\n", why);
      start->bad_option = 1;
    } else {
      srv.cluster = 1;
    }
  }
  if (err == 0) err = chat_rooms_start(helpers);

  if (err == 0) {
    app_listen_list all = {.n = n, .addrs = addrs};
    app_server_opts o = {
        .listen = &all,
        .backlog = (int)cfg->backlog,
        .max_connections = cfg->max_connections,
        .shutdown_grace_ms = cfg->shutdown_grace_ms,
        .stats_interval_ms = cfg->stats_interval_ms,
        .nodelay = 1,
        .handler = chat_conn_serve_tcp,
        .handlers = handlers,
        .protocols = protocols,
        .on_stop = on_stop,
        .stats = srv.stats,
    };
    err = app_server_run(&o);
  }

  chat_rooms_stop();
  chat_cluster_stop();
  for (int k = 0; k < srv.n_exec && srv.janitors != NULL; k++)
    if (srv.janitors[k] != NULL) weft_chan_close(srv.janitors[k]);
  chat_conns_stop_starters();
  if (helpers != NULL) weft_group_join(helpers);
  chat_rooms_free();
  chat_cluster_free();
  chat_nicks_free();
  chat_store_close(srv.store);
  for (int k = 0; k < srv.n_exec && srv.janitors != NULL; k++)
    if (srv.janitors[k] != NULL) weft_chan_free(srv.janitors[k]);
  free(srv.janitors);
  free(addrs);
  free(handlers);
  free(protocols);
  chat_conns_free();
  app_stats_free(srv.stats);
  chat_srv = NULL;
  return err;
}
