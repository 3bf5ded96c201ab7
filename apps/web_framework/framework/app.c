/* app.c: the application object, groups, routes, the middleware chain and
 * serving.
 *
 * Everything is built before serving starts; wf_app_freeze() then flattens
 * each route's group middleware into one array and registers its metrics,
 * so that a request only reads the app: a tree lookup, one call per chain
 * element, a counter and a histogram update.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "wf_internal.h"

/* One connection's state: the app and the arena reused by its requests. */
typedef struct wf_conn {
  wf_app *app;
  wf_arena arena;
  char client[72]; /* the peer's address, for the access log */
} wf_conn;

/* ---- Building ------------------------------------------------------------ */

void *wf__app_own(wf_app *app, size_t size, void (*free_fn)(void *)) {
  /* The object follows the header, aligned as malloc aligns. */
  size_t head = (sizeof(wf_owned) + 15) & ~(size_t)15;
  wf_owned *o = calloc(1, head + size);
  if (o == NULL) return NULL;
  o->free_fn = free_fn;
  o->next = app->owned;
  app->owned = o;
  return (char *)o + head;
}

/* Makes a group with full prefix (copied). Returns NULL when out of memory. */
static wf_group *group_make(wf_app *app, wf_group *parent, const char *prefix,
                            size_t len) {
  wf_group *g = calloc(1, sizeof *g);
  if (g == NULL) return NULL;
  g->prefix = malloc(len + 1);
  if (g->prefix == NULL) {
    free(g);
    return NULL;
  }
  memcpy(g->prefix, prefix, len);
  g->prefix[len] = '\0';
  g->app = app;
  g->parent = parent;
  g->next_all = app->groups;
  app->groups = g;
  return g;
}

wf_app *wf_app_new(const wf_app_opts *opts) {
  wf_app *app = calloc(1, sizeof *app);
  if (app == NULL) return NULL;
  if (opts != NULL) app->opts = *opts;
  if (app->opts.arena_bytes == 0) app->opts.arena_bytes = 4096;
  if (app->opts.json_max_depth <= 0) app->opts.json_max_depth = 32;
  if (app->opts.metrics_prefix == NULL) app->opts.metrics_prefix = "wf_http";
  app->limits = app->opts.limits;
  app->root_node = calloc(1, sizeof(wf_node));
  app->root = group_make(app, NULL, "", 0);
  if (app->root_node == NULL || app->root == NULL) {
    wf_app_free(app);
    return NULL;
  }
  return app;
}

/* Frees a route and what it holds; any field may still be NULL. */
static void entry_free(wf_entry *r) {
  free(r->method);
  free(r->pattern);
  free(r->chain);
  free(r);
}

void wf_app_free(wf_app *app) {
  if (app == NULL) return;
  wf__router_free(app->root_node);
  for (wf_entry *r = app->routes, *next; r != NULL; r = next) {
    next = r->next_all;
    entry_free(r);
  }
  for (wf_group *g = app->groups, *next; g != NULL; g = next) {
    next = g->next_all;
    free(g->prefix);
    free(g->mw);
    free(g);
  }
  size_t head = (sizeof(wf_owned) + 15) & ~(size_t)15;
  for (wf_owned *o = app->owned, *next; o != NULL; o = next) {
    next = o->next;
    if (o->free_fn != NULL) o->free_fn((char *)o + head);
    free(o);
  }
  free(app->mw);
  free(app);
}

wf_group *wf_root(wf_app *app) { return app->root; }

/* Appends mw to the array *list of *n. */
static int mw_append(wf_middleware **list, size_t *n, wf_middleware mw) {
  if (mw.fn == NULL) return UV_ENOMEM;
  wf_middleware *grown = realloc(*list, (*n + 1) * sizeof *grown);
  if (grown == NULL) return UV_ENOMEM;
  grown[(*n)++] = mw;
  *list = grown;
  return 0;
}

int wf_use(wf_app *app, wf_middleware mw) {
  if (app->frozen) return UV_EBUSY;
  return mw_append(&app->mw, &app->n_mw, mw);
}

int wf_group_use(wf_group *g, wf_middleware mw) {
  if (g->app->frozen) return UV_EBUSY;
  return mw_append(&g->mw, &g->n_mw, mw);
}

wf_group *wf_group_new(wf_group *parent, const char *prefix) {
  if (parent == NULL || prefix == NULL || parent->app->frozen) return NULL;
  size_t len = strlen(prefix);
  /* A trailing slash would make "/api" + "/x" read "/api//x". */
  while (len > 0 && prefix[len - 1] == '/') len--;
  if (len > 0 && prefix[0] != '/') return NULL;
  for (size_t i = 0; i < len; i++)
    if ((prefix[i] == ':' || prefix[i] == '*') && prefix[i - 1] == '/')
      return NULL;
  size_t plen = strlen(parent->prefix);
  char *full = malloc(plen + len + 1);
  if (full == NULL) return NULL;
  memcpy(full, parent->prefix, plen);
  memcpy(full + plen, prefix, len); /* NOLINT(bugprone-not-null-terminated-result): the length is passed on */
  wf_group *g = group_make(parent->app, parent, full, plen + len);
  free(full);
  return g;
}

/* Whether s is a non-empty HTTP token (a valid method). */
static int is_token(const char *s) {
  if (*s == '\0') return 0;
  for (; *s; s++) {
    unsigned char ch = (unsigned char)*s;
    if (ch <= 32 || ch >= 127 || strchr("\"(),/:;<=>?@[\\]{}", ch) != NULL)
      return 0;
  }
  return 1;
}

int wf_route(wf_group *g, const char *method, const char *pattern,
             wf_handler handler, void *arg) {
  if (g == NULL || method == NULL || pattern == NULL || handler == NULL)
    return UV_EINVAL;
  wf_app *app = g->app;
  if (app->frozen) return UV_EBUSY;
  if (!is_token(method) || pattern[0] != '/') return UV_EINVAL;
  wf_entry *r = calloc(1, sizeof *r);
  if (r == NULL) return UV_ENOMEM;
  size_t plen = strlen(g->prefix);
  /* "/" in a group means the group's own path. */
  const char *rest = (plen > 0 && strcmp(pattern, "/") == 0) ? "" : pattern;
  size_t rlen = strlen(rest);
  r->pattern = malloc(plen + rlen + 1);
  r->method = strdup(method);
  int rc = UV_ENOMEM;
  if (r->pattern == NULL || r->method == NULL) goto fail;
  memcpy(r->pattern, g->prefix, plen);
  memcpy(r->pattern + plen, rest, rlen + 1);
  r->handler = handler;
  r->arg = arg;
  r->group = g;
  rc = wf__router_add(app->root_node, r);
  if (rc < 0) goto fail;
  r->next_all = app->routes;
  app->routes = r;
  return 0;
fail:
  entry_free(r);
  return rc;
}

int wf_get(wf_group *g, const char *pattern, wf_handler handler, void *arg) {
  return wf_route(g, "GET", pattern, handler, arg);
}
int wf_post(wf_group *g, const char *pattern, wf_handler handler, void *arg) {
  return wf_route(g, "POST", pattern, handler, arg);
}
int wf_put(wf_group *g, const char *pattern, wf_handler handler, void *arg) {
  return wf_route(g, "PUT", pattern, handler, arg);
}
int wf_patch(wf_group *g, const char *pattern, wf_handler handler, void *arg) {
  return wf_route(g, "PATCH", pattern, handler, arg);
}
int wf_delete(wf_group *g, const char *pattern, wf_handler handler, void *arg) {
  return wf_route(g, "DELETE", pattern, handler, arg);
}

/* ---- Freezing ------------------------------------------------------------ */

/* Flattens the middleware of r's groups, outermost first, into r->chain. */
static int route_chain(wf_entry *r) {
  size_t n = 0;
  for (wf_group *g = r->group; g != NULL; g = g->parent) n += g->n_mw;
  free(r->chain);
  r->chain = NULL;
  r->n_chain = n;
  if (n == 0) return 0;
  r->chain = malloc(n * sizeof *r->chain);
  if (r->chain == NULL) return UV_ENOMEM;
  size_t end = n;
  for (wf_group *g = r->group; g != NULL; g = g->parent) {
    if (g->n_mw == 0) continue;
    end -= g->n_mw;
    memcpy(r->chain + end, g->mw, g->n_mw * sizeof *g->mw);
  }
  return 0;
}

static const char *const status_classes[6] = {"other", "1xx", "2xx",
                                              "3xx",   "4xx", "5xx"};

/* Registers the app's metrics: per route, per status class, and one series
 * for requests no route matched. Failures leave NULL handles, which the
 * metrics functions ignore. */
static void register_metrics(wf_app *app) {
  const char *p = app->opts.metrics_prefix;
  snprintf(app->metric_requests, sizeof app->metric_requests,
           "%s_requests_total", p);
  snprintf(app->metric_latency, sizeof app->metric_latency,
           "%s_request_duration_seconds", p);
  char responses[96];
  snprintf(responses, sizeof responses, "%s_responses_total", p);
  static const char req_help[] = "HTTP requests served, by route";
  static const char lat_help[] = "Time to make a response, by route";
  for (wf_entry *r = app->routes; r != NULL; r = r->next_all) {
    char label[512];
    snprintf(label, sizeof label, "%s %s", r->method, r->pattern);
    r->requests = weft_metrics_counter_labeled(app->metric_requests, req_help,
                                               "route", label);
    r->latency = weft_metrics_histogram_labeled(app->metric_latency, lat_help,
                                                1e-9, "route", label);
  }
  app->unmatched_requests = weft_metrics_counter_labeled(
      app->metric_requests, req_help, "route", "unmatched");
  app->unmatched_latency = weft_metrics_histogram_labeled(
      app->metric_latency, lat_help, 1e-9, "route", "unmatched");
  for (int i = 0; i < 6; i++)
    app->status_class[i] = weft_metrics_counter_labeled(
        responses, "HTTP responses, by status class", "code",
        status_classes[i]);
}

int wf_app_freeze(wf_app *app) {
  if (app->frozen) return 0;
  for (wf_entry *r = app->routes; r != NULL; r = r->next_all)
    if (route_chain(r) < 0) return UV_ENOMEM;
  if (wf__router_freeze(app->root_node) < 0) return UV_ENOMEM;
  if (!app->opts.no_metrics) register_metrics(app);
  app->frozen = 1;
  return 0;
}

/* ---- The chain ----------------------------------------------------------- */

/* Answers a request no route took: 404, or for a path routed with other
 * methods 405 with Allow (204 with Allow for OPTIONS). */
static int answer_unrouted(wf_ctx *c) {
  if (c->node == NULL) return wf_error(c, 404, "not found");
  int rc = wf_set_header(c, "Allow", c->node->allow);
  if (rc < 0) return rc;
  if (strcmp(wf_method(c), "OPTIONS") == 0) {
    wf_status(c, 204);
    return weft_http_response_body(c->res, "", 0);
  }
  return wf_error(c, 405, "method not allowed");
}

int wf_next(wf_ctx *c) {
  const wf_app *app = c->app;
  size_t i = c->pos++;
  if (i < app->n_mw) return app->mw[i].fn(c, app->mw[i].arg);
  i -= app->n_mw;
  const wf_entry *r = c->route;
  if (r == NULL) return i == 0 ? answer_unrouted(c) : 0;
  if (i < r->n_chain) return r->chain[i].fn(c, r->chain[i].arg);
  if (i == r->n_chain) return r->handler(c, r->arg);
  /* Called once too often by a middleware: nothing is left to run. */
  return 0;
}

/* The path of a target in absolute form ("http://host/a/b" is "/a/b", and
 * "http://host" is "/"), which RFC 9112 (section 3.2.2) says a server must
 * accept; any other target as it is. */
static const char *wf__origin_path(const char *target) {
  size_t skip = 0;
  if (strncasecmp(target, "http://", 7) == 0)
    skip = 7;
  else if (strncasecmp(target, "https://", 8) == 0)
    skip = 8;
  if (skip == 0) return target;
  const char *slash = strchr(target + skip, '/');
  return slash != NULL ? slash : "/";
}

/* Serves one request: routes it, runs the chain, records the metrics and
 * gives the request's memory back. A weft_http_handler. */
static int handle_request(const weft_http_request *req, weft_http_response *res,
                          void *arg) {
  wf_conn *conn = arg;
  wf_app *app = conn->app;
  wf_ctx c;
  /* Only the fields read before being written are set: the parameter and
   * local tables are large and filled as needed. */
  c.app = app;
  c.req = req;
  c.res = res;
  c.arena = &conn->arena;
  c.pos = 0;
  c.n_params = 0;
  c.query_parsed = 0;
  c.n_query = 0;
  c.query = NULL;
  c.cookies_parsed = 0;
  c.n_cookies = 0;
  c.cookies = NULL;
  c.json = NULL;
  c.request_id = NULL;
  c.n_locals = 0;
  c.file_bytes = 0;
  c.stream_bytes = 0;
  c.client = conn->client[0] != '\0' ? conn->client : "-";
  int metrics = !app->opts.no_metrics;
  uint64_t start = metrics ? weft_now_ns() : 0;
  c.path = wf__origin_path(weft_http_request_path(req));
  c.path_len = strlen(c.path);
  c.node = wf__router_match(app->root_node, c.path, c.path_len, &c);
  c.route = c.node != NULL ? wf__router_method(c.node, wf_method(&c)) : NULL;

  int rc = wf_next(&c);

  /* Once a shutdown has begun, keep-alive connections end after the
   * response in flight, so that the drain does not wait on idle clients. */
  if (app_server_stopping()) weft_http_response_close(res);
  if (metrics) {
    uint64_t ns = weft_now_ns() - start;
    if (c.route != NULL) {
      weft_counter_inc(c.route->requests);
      weft_histogram_record(c.route->latency, ns);
    } else {
      weft_counter_inc(app->unmatched_requests);
      weft_histogram_record(app->unmatched_latency, ns);
    }
    int status = rc < 0 ? 500 : weft_http_response_get_status(res);
    int cls = status >= 100 && status < 600 ? status / 100 : 0;
    weft_counter_inc(app->status_class[cls]);
  }
  if (c.json != NULL) cJSON_Delete(c.json);
  wf__arena_reset(&conn->arena);
  return rc;
}

/* ---- Serving ------------------------------------------------------------- */

/* Freezes app (if it is not yet) and readies wc to serve one connection
 * of it. Returns 0, or UV_ENOMEM from the freezing. */
static int conn_init(wf_conn *wc, wf_app *app) {
  int rc = wf_app_freeze(app);
  if (rc < 0) return rc;
  memset(wc, 0, sizeof *wc);
  wc->app = app;
  wc->arena.first_size = app->opts.arena_bytes;
  return 0;
}

int wf_app_serve_conn(weft_tcp *conn, void *arg) {
  wf_app *app = arg;
  wf_conn wc;
  int rc = conn_init(&wc, app);
  if (rc < 0) return rc;
  struct sockaddr_storage peer;
  char ip[64];
  if (weft_tcp_peername(conn, &peer) == 0) {
    if (peer.ss_family == AF_INET &&
        uv_ip4_name((struct sockaddr_in *)&peer, ip, sizeof ip) == 0)
      snprintf(wc.client, sizeof wc.client, "%s:%d", ip,
               ntohs(((struct sockaddr_in *)&peer)->sin_port));
    else if (peer.ss_family == AF_INET6 &&
             uv_ip6_name((struct sockaddr_in6 *)&peer, ip, sizeof ip) == 0)
      snprintf(wc.client, sizeof wc.client, "[%s]:%d", ip,
               ntohs(((struct sockaddr_in6 *)&peer)->sin6_port));
  }
  /* Once a shutdown begins, an idle keep-alive connection closes at once
   * and one in the middle of a request closes after its response. */
  weft_http_serve_opts so = {.limits = &app->limits,
                             .stop = app_server_stop_event()};
  rc = weft_http_serve_conn_opts(conn, &so, handle_request, &wc);
  wf__arena_free(&wc.arena);
  return rc;
}

/* The server's on_stop hook: closes this executor's idle connections. */
static void app_stop_idle(void *ctx) {
  (void)ctx;
  weft_http_stop_idle(app_server_stop_event());
}

int wf_app_serve_memory(wf_app *app, const void *in, size_t len, char **out,
                        size_t *out_len) {
  wf_conn wc;
  int rc = conn_init(&wc, app);
  if (rc < 0) return rc;
  rc = weft_http_serve_memory(in, len, &app->limits, handle_request, &wc, out,
                              out_len);
  wf__arena_free(&wc.arena);
  return rc;
}

/* A connection past max_connections: a 503 rather than a silent close. The
 * request is read (and dropped) until the client closes, for a second at
 * most, so that closing does not reset the connection before the client has
 * read the answer. */
static void app_reject(weft_tcp *conn, void *ctx) {
  (void)ctx;
  static const char body[] = "{\"error\":\"too many connections\"}";
  char head[256];
  int n = snprintf(head, sizeof head,
                   "HTTP/1.1 503 Service Unavailable\r\n"
                   "Content-Type: application/json\r\n"
                   "Content-Length: %zu\r\nRetry-After: 1\r\n"
                   "Connection: close\r\n\r\n%s",
                   sizeof body - 1, body);
  weft_scope s;
  weft_scope_enter(&s, 1000);
  if (n > 0 && weft_tcp_write(conn, head, (size_t)n) == 0 &&
      weft_tcp_shutdown(conn) == 0) {
    char drop[4096];
    while (weft_tcp_read(conn, drop, sizeof drop) > 0) {
    }
  }
  weft_scope_leave(&s);
}

int wf_app_serve(wf_app *app, const app_server_opts *server) {
  if (app == NULL || server == NULL) return UV_EINVAL;
  int rc = wf_app_freeze(app);
  if (rc < 0) return rc;
  app_server_opts o = *server;
  o.handler = wf_app_serve_conn;
  o.ctx = app;
  o.on_stop = app_stop_idle;
  o.on_reject = app_reject;
  return app_server_run(&o);
}

/* ---- Ready-made handlers ------------------------------------------------- */

int wf_metrics_handler(wf_ctx *c, void *arg) {
  (void)arg;
  char *text = weft_metrics_prometheus();
  if (text == NULL) return UV_ENOMEM;
  int rc = wf_send(c, 200, "text/plain; version=0.0.4; charset=utf-8", text,
                   strlen(text));
  free(text);
  return rc;
}

int wf_healthz_handler(wf_ctx *c, void *arg) {
  (void)arg;
  if (app_server_stopping())
    return wf_jsonf(c, 503, "{\"status\":\"stopping\"}");
  return wf_jsonf(c, 200, "{\"status\":\"ok\"}");
}
