/* routes.c: the example application's middleware and routes.
 *
 *   GET  /                     302 to /static/index.html
 *   GET  /plaintext            "Hello, World!" as text/plain
 *   GET  /json                 {"message":"Hello, World!"}
 *   GET  /healthz              {"status":"ok"} (503 while stopping)
 *   GET  /metrics              Prometheus text of every metric
 *   GET  /api/hello/:name      {"hello": name}: a decoded path parameter
 *   POST /api/echo             the request body back, chunked or not
 *   GET  /api/slow?ms=N        answers after N ms (for shutdown and timeouts)
 *   GET  /api/fail             a handler error, answered 500 by wf_recover
 *   ...  /api/items[/:id]      the items resource (items.c)
 *   GET  /static/...           files of static_dir (wildcard route)
 *
 * Every request passes, in this order: wf_request_id_mw (X-Request-Id taken
 * or made, so that every answer below carries it), wf_logger (one line per
 * request, after the answer), wf_recover (a handler's error becomes a 500
 * JSON answer, logged), wf_cors (when origins are configured), wf_gzip
 * (when enabled). Routes under /api also run under wf_timeout.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <weft.h>

#include "webapp.h"

struct webapp {
  const webapp_config *cfg;
  wf_app *app;
  items_store *store;
  int static_served; /* the static folder was found: / leads to it */
};

/* GET /plaintext: the TechEmpower plaintext test's answer. */
static int route_plaintext(wf_ctx *c, void *arg) {
  (void)arg;
  return wf_send(c, 200, "text/plain", "Hello, World!", 13);
}

/* GET /json: the TechEmpower JSON test's answer. */
static int route_json(wf_ctx *c, void *arg) {
  (void)arg;
  return wf_jsonf(c, 200, "{\"message\":\"Hello, World!\"}");
}

/* GET /: the demo page when files are served, a pointer to it otherwise. */
static int route_index(wf_ctx *c, void *arg) {
  const webapp *w = arg;
  /* Only to a folder that is there: a redirect to a 404 helps nobody. */
  if (w->static_served) return wf_redirect(c, 302, "/static/index.html");
  return wf_text(c, 200, "web_framework: see /plaintext, /json, /api/items\n");
}

/* GET /api/hello/:name: shows a path parameter, decoded, and an optional
 * ?greeting= query parameter. */
static int route_hello(wf_ctx *c, void *arg) {
  (void)arg;
  const char *greeting = wf_query(c, "greeting");
  const char *name = wf_json_escape(c, wf_param(c, "name"));
  const char *word = wf_json_escape(c, greeting != NULL ? greeting : "hello");
  if (name == NULL || word == NULL) return UV_ENOMEM;
  return wf_jsonf(c, 200, "{\"greeting\":%s,\"hello\":%s}", word, name);
}

/* POST /api/echo: the body back with the request's Content-Type. The body
 * arrives whole (decoded when it was sent chunked) and bounded by
 * max_body_bytes. */
static int route_echo(wf_ctx *c, void *arg) {
  (void)arg;
  size_t len;
  const void *body = wf_body(c, &len);
  const char *type = wf_header(c, "Content-Type");
  return wf_send(c, 200, type != NULL ? type : "application/octet-stream", body,
                 len);
}

/* GET /api/slow?ms=N: waits N milliseconds (at most slow_max_ms), then
 * answers. The wait ends early when the server's grace period runs out or
 * the /api timeout fires; the handler then returns the cancellation. */
static int route_slow(wf_ctx *c, void *arg) {
  const webapp *w = arg;
  const char *text = wf_query(c, "ms");
  char *end = NULL;
  long ms = text != NULL ? strtol(text, &end, 10) : -1;
  if (text == NULL || *text == '\0' || *end != '\0' || ms < 0 ||
      ms > w->cfg->slow_max_ms) {
    const char *msg = wf_sprintf(c, "ms must be an integer from 0 to %lld",
                                 (long long)w->cfg->slow_max_ms);
    return wf_error(c, 400, msg != NULL ? msg : "bad ms");
  }
  /* Logged so that a test knows the request is in flight. */
  weft_log(WEFT_LOG_INFO, "slow request started", "ms=%ld request_id=%s", ms,
           wf_request_id(c));
  int rc = weft_sleep(ms);
  if (rc < 0) return rc;
  return wf_jsonf(c, 200, "{\"slept_ms\":%ld}", ms);
}

/* GET /api/fail: a handler that fails, to show wf_recover's answer. */
static int route_fail(wf_ctx *c, void *arg) {
  (void)c;
  (void)arg;
  return UV_EIO;
}

/* The connection limits of the configuration; its 0 timeouts mean none. */
static void webapp_limits(const webapp_config *cfg, weft_http_limits *l) {
  weft_http_limits_default(l);
  l->max_header_bytes = (size_t)cfg->max_header_bytes;
  l->max_headers = (size_t)cfg->max_headers;
  l->max_body_bytes = (size_t)cfg->max_body_bytes;
  l->header_timeout_ms =
      cfg->header_timeout_ms > 0 ? cfg->header_timeout_ms : -1;
  l->body_timeout_ms = cfg->body_timeout_ms > 0 ? cfg->body_timeout_ms : -1;
  l->idle_timeout_ms = cfg->idle_timeout_ms > 0 ? cfg->idle_timeout_ms : -1;
  l->write_timeout_ms = cfg->write_timeout_ms > 0 ? cfg->write_timeout_ms : -1;
  l->max_requests = (uint32_t)cfg->max_requests_per_connection;
}

/* Adds the app's middleware in the order the file comment gives. */
static int webapp_middleware(webapp *w) {
  const webapp_config *cfg = w->cfg;
  wf_app *app = w->app;
  int rc;
  if ((rc = wf_use(app, wf_request_id_mw(app))) < 0) return rc;
  if (cfg->access_log && (rc = wf_use(app, wf_logger(app))) < 0) return rc;
  if ((rc = wf_use(app, wf_recover(app))) < 0) return rc;
  if (cfg->cors_origins.n > 0) {
    wf_cors_opts cors = {.origins =
                             (const char *const *)cfg->cors_origins.items,
                         .n_origins = cfg->cors_origins.n,
                         .expose_headers = "X-Request-Id, Location"};
    if ((rc = wf_use(app, wf_cors(app, &cors))) < 0) return rc;
  }
  if (cfg->gzip) {
    wf_gzip_opts gz = {.min_bytes = (size_t)cfg->gzip_min_bytes};
    if ((rc = wf_use(app, wf_gzip(app, &gz))) < 0) return rc;
  }
  return 0;
}

/* Adds every route. */
static int webapp_routes(webapp *w) {
  const webapp_config *cfg = w->cfg;
  wf_group *root = wf_root(w->app);
  int rc;
  if ((rc = wf_get(root, "/", route_index, w)) < 0 ||
      (rc = wf_get(root, "/plaintext", route_plaintext, NULL)) < 0 ||
      (rc = wf_get(root, "/json", route_json, NULL)) < 0 ||
      (rc = wf_get(root, "/healthz", wf_healthz_handler, NULL)) < 0 ||
      (rc = wf_get(root, "/metrics", wf_metrics_handler, NULL)) < 0)
    return rc;

  wf_group *api = wf_group_new(root, "/api");
  if (api == NULL) return UV_ENOMEM;
  if (cfg->request_timeout_ms > 0 &&
      (rc = wf_group_use(api,
                         wf_timeout(w->app, cfg->request_timeout_ms, 503))) < 0)
    return rc;
  if ((rc = wf_get(api, "/hello/:name", route_hello, NULL)) < 0 ||
      (rc = wf_post(api, "/echo", route_echo, NULL)) < 0 ||
      (rc = wf_get(api, "/slow", route_slow, w)) < 0 ||
      (rc = wf_get(api, "/fail", route_fail, NULL)) < 0 ||
      (rc = items_routes(api, w->store)) < 0)
    return rc;

  if (cfg->static_dir != NULL && cfg->static_dir[0] != '\0') {
    rc = wf_static(root, "/static", cfg->static_dir, NULL);
    if (rc == UV_ENOENT) {
      /* A missing folder should not stop the API: say so, why, and go on. */
      struct stat st;
      const char *why = stat(cfg->static_dir, &st) != 0 ? strerror(errno)
                        : !S_ISDIR(st.st_mode)          ? "not a directory"
                                                        : "cannot be opened";
      weft_log(WEFT_LOG_WARN, "static files disabled",
               "static_dir=\"%s\" error=\"%s\"", cfg->static_dir, why);
    } else if (rc < 0) {
      return rc;
    } else {
      w->static_served = 1;
    }
  }
  return 0;
}

webapp *webapp_build(const webapp_config *cfg) {
  webapp *w = calloc(1, sizeof *w);
  if (w == NULL) return NULL;
  w->cfg = cfg;
  w->store = items_store_new((size_t)cfg->max_items);
  wf_app_opts opts = {0};
  webapp_limits(cfg, &opts.limits);
  opts.data = w;
  w->app = w->store != NULL ? wf_app_new(&opts) : NULL;
  int rc = w->app != NULL ? 0 : UV_ENOMEM;
  if (rc == 0) rc = webapp_middleware(w);
  if (rc == 0) rc = webapp_routes(w);
  if (rc == 0) rc = wf_app_freeze(w->app);
  if (rc < 0) {
    weft_log(WEFT_LOG_ERROR, "cannot build the application", "error=%s",
             weft_strerror(rc));
    webapp_free(w);
    return NULL;
  }
  return w;
}

wf_app *webapp_app(webapp *w) { return w->app; }

void webapp_reset(webapp *w) { items_store_clear(w->store); }

void webapp_free(webapp *w) {
  if (w == NULL) return;
  if (w->app != NULL) wf_app_free(w->app);
  items_store_free(w->store);
  free(w);
}
