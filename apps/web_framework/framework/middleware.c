/* middleware.c: the ready-made middleware: logging, error recovery,
 * request ids, CORS, body size limit and deadlines.
 *
 * Each keeps its settings in memory owned by the app, written once when it
 * is made and only read while serving.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "wf_internal.h"

/* ---- Logging
 * ------------------------------------------------------------------ */

/* s as a logfmt value: as it is when it needs no quoting, else quoted with
 * '"' and '\' escaped and control bytes shown as '?'. In the arena. */
static const char *logfmt_value(wf_ctx *c, const char *s) {
  size_t extra = 0;
  int quote = *s == '\0';
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if (*p <= ' ' || *p == '"' || *p == '=' || *p == '\\' || *p >= 0x7f)
      quote = 1;
    if (*p == '"' || *p == '\\') extra++;
  }
  if (!quote) return s;
  size_t len = strlen(s);
  char *out = wf_alloc(c, len + extra + 3);
  if (out == NULL) return "\"?\"";
  char *o = out;
  *o++ = '"';
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if (*p == '"' || *p == '\\') *o++ = '\\';
    *o++ = *p < ' ' || *p == 0x7f ? '?' : (char)*p; /* NOLINT(bugprone-narrowing-conversions): char in, char out */
  }
  *o++ = '"';
  *o = '\0';
  return out;
}

/* Logs one line per request once the rest of the chain has answered. */
static int logger_fn(wf_ctx *c, void *arg) {
  (void)arg;
  if (!weft_log_enabled(WEFT_LOG_INFO)) return wf_next(c);
  uint64_t start = weft_now_ns();
  int rc = wf_next(c);
  double ms = (double)(weft_now_ns() - start) / 1e6;
  int status = rc < 0 ? 500 : wf_get_status(c);
  const char *agent = wf_header(c, "User-Agent");
  weft_log(WEFT_LOG_INFO, "request",
           "method=%s path=%s status=%d bytes=%llu duration_ms=%.3f "
           "request_id=%s client=%s user_agent=%s",
           logfmt_value(c, wf_method(c)), logfmt_value(c, wf_path(c)), status,
           (unsigned long long)wf__response_bytes(c), ms,
           logfmt_value(c, wf_request_id(c)), logfmt_value(c, c->client),
           logfmt_value(c, agent != NULL ? agent : "-"));
  return rc;
}

wf_middleware wf_logger(wf_app *app) {
  (void)app;
  return (wf_middleware){logger_fn, NULL};
}

/* ---- Recovering from handler errors
 * ------------------------------------------------ */

/* Turns a failed chain into a 500 JSON answer, logged with the error. */
static int recover_fn(wf_ctx *c, void *arg) {
  (void)arg;
  int rc = wf_next(c);
  if (rc >= 0) return rc;
  const char *route = wf_route_pattern(c);
  weft_log(WEFT_LOG_ERROR, "handler failed",
           "method=%s path=%s route=%s error=%s request_id=%s",
           logfmt_value(c, wf_method(c)), logfmt_value(c, wf_path(c)),
           logfmt_value(c, route != NULL ? route : "-"),
           logfmt_value(c, weft_strerror(rc)),
           logfmt_value(c, wf_request_id(c)));
  /* A body already streamed cannot be replaced: the connection then ends
   * the response by closing. */
  if (weft_http_response_is_streaming(c->res)) return rc;
  weft_http_response_remove_header(c->res, "Content-Encoding");
  if (wf_error(c, 500, "internal server error") < 0) return rc;
  return 0;
}

wf_middleware wf_recover(wf_app *app) {
  (void)app;
  return (wf_middleware){recover_fn, NULL};
}

/* ---- Request ids
 * ------------------------------------------------------------------ */

/* Whether id is 1 to 128 bytes of [A-Za-z0-9._:-]: safe to log and echo. */
static int sane_request_id(const char *id) {
  size_t n = 0;
  for (; id[n]; n++) {
    char ch = id[n];
    if (n >= 128) return 0;
    if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
          (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == ':' ||
          ch == '-'))
      return 0;
  }
  return n > 0;
}

/* Takes the client's X-Request-Id when sane, makes one otherwise, and
 * echoes it in the response. */
static int request_id_fn(wf_ctx *c, void *arg) {
  (void)arg;
  const char *id = wf_header(c, "X-Request-Id");
  if (id != NULL && sane_request_id(id)) c->request_id = id;
  int rc = weft_http_response_header(c->res, "X-Request-Id", wf_request_id(c));
  if (rc < 0) return rc;
  return wf_next(c);
}

wf_middleware wf_request_id_mw(wf_app *app) {
  (void)app;
  return (wf_middleware){request_id_fn, NULL};
}

/* ---- CORS
 * -------------------------------------------------------------------------- */

typedef struct cors {
  char **origins; /* NULL when any origin is allowed */
  size_t n_origins;
  char *methods;
  char *headers; /* NULL: echo the request's */
  char *expose;  /* NULL: none */
  int credentials;
  char max_age[24];
} cors;

/* Frees what a cors holds (the struct itself is the app's). */
static void cors_free(void *p) {
  cors *s = p;
  for (size_t i = 0; i < s->n_origins; i++) free(s->origins[i]);
  free(s->origins);
  free(s->methods);
  free(s->headers);
  free(s->expose);
}

/* Whether origin may make requests. */
static int cors_allowed(const cors *s, const char *origin) {
  if (s->origins == NULL) return 1;
  for (size_t i = 0; i < s->n_origins; i++)
    if (strcasecmp(s->origins[i], origin) == 0) return 1;
  return 0;
}

/* Adds Access-Control-Allow-Origin (and Vary when it depends on the
 * origin) and Access-Control-Allow-Credentials. */
static int cors_origin_headers(wf_ctx *c, const cors *s, const char *origin) {
  int echo = s->origins != NULL || s->credentials;
  int rc = weft_http_response_header(c->res, "Access-Control-Allow-Origin",
                                     echo ? origin : "*");
  if (rc == 0 && echo) rc = weft_http_response_header(c->res, "Vary", "Origin");
  if (rc == 0 && s->credentials)
    rc = weft_http_response_header(c->res, "Access-Control-Allow-Credentials",
                                   "true");
  return rc;
}

/* Answers preflight requests and marks the others' responses. */
static int cors_fn(wf_ctx *c, void *arg) {
  const cors *s = arg;
  const char *origin = wf_header(c, "Origin");
  if (origin == NULL) return wf_next(c);
  const char *want = wf_header(c, "Access-Control-Request-Method");
  int preflight = want != NULL && strcmp(wf_method(c), "OPTIONS") == 0;
  if (!cors_allowed(s, origin)) {
    if (preflight) return wf_error(c, 403, "origin not allowed");
    return wf_next(c);
  }
  int rc = cors_origin_headers(c, s, origin);
  if (rc < 0) return rc;
  if (!preflight) {
    if (s->expose != NULL)
      rc = weft_http_response_header(c->res, "Access-Control-Expose-Headers",
                                     s->expose);
    return rc < 0 ? rc : wf_next(c);
  }
  const char *headers = s->headers;
  if (headers == NULL) {
    headers = wf_header(c, "Access-Control-Request-Headers");
    if (headers != NULL)
      rc = weft_http_response_header(c->res, "Vary",
                                     "Access-Control-Request-Headers");
  }
  if (rc == 0)
    rc = weft_http_response_header(c->res, "Access-Control-Allow-Methods",
                                   s->methods);
  if (rc == 0 && headers != NULL && *headers != '\0')
    rc = weft_http_response_header(c->res, "Access-Control-Allow-Headers",
                                   headers);
  if (rc == 0)
    rc =
        weft_http_response_header(c->res, "Access-Control-Max-Age", s->max_age);
  if (rc == 0) rc = wf_status(c, 204);
  if (rc == 0) rc = weft_http_response_body(c->res, "", 0);
  return rc;
}

/* strdup() that passes NULL through; sets *failed when memory runs out. */
static char *dup_or_null(const char *s, int *failed) {
  if (s == NULL) return NULL;
  char *d = strdup(s);
  if (d == NULL) *failed = 1;
  return d;
}

wf_middleware wf_cors(wf_app *app, const wf_cors_opts *opts) {
  wf_middleware none = {NULL, NULL};
  wf_cors_opts defaults = {0};
  if (opts == NULL) opts = &defaults;
  cors *s = wf__app_own(app, sizeof *s, cors_free);
  if (s == NULL) return none;
  int failed = 0;
  int any = opts->origins == NULL || opts->n_origins == 0;
  for (size_t i = 0; !any && i < opts->n_origins; i++)
    if (strcmp(opts->origins[i], "*") == 0) any = 1;
  if (!any) {
    s->origins = calloc(opts->n_origins, sizeof *s->origins);
    if (s->origins == NULL) return none;
    s->n_origins = opts->n_origins;
    for (size_t i = 0; i < opts->n_origins; i++)
      s->origins[i] = dup_or_null(opts->origins[i], &failed);
  }
  s->methods = dup_or_null(
      opts->methods ? opts->methods : "GET, HEAD, POST, PUT, PATCH, DELETE",
      &failed);
  s->headers = dup_or_null(opts->headers, &failed);
  s->expose = dup_or_null(opts->expose_headers, &failed);
  s->credentials = opts->allow_credentials != 0;
  snprintf(s->max_age, sizeof s->max_age, "%lld",
           (long long)(opts->max_age > 0 ? opts->max_age : 600));
  if (failed) return none;
  return (wf_middleware){cors_fn, s};
}

/* ---- Body size limit
 * ------------------------------------------------------------ */

/* Answers 413 for bodies over the limit kept in arg. */
static int body_limit_fn(wf_ctx *c, void *arg) {
  const size_t *max = arg;
  size_t len;
  wf_body(c, &len);
  if (len > *max) return wf_error(c, 413, "request body too large");
  return wf_next(c);
}

wf_middleware wf_body_limit(wf_app *app, size_t max_bytes) {
  size_t *max = wf__app_own(app, sizeof *max, NULL);
  if (max == NULL) return (wf_middleware){NULL, NULL};
  *max = max_bytes;
  return (wf_middleware){body_limit_fn, max};
}

/* ---- Deadlines
 * ---------------------------------------------------------------- */

typedef struct timeout_opts {
  int64_t ms;
  int status;
} timeout_opts;

/* Runs the rest of the chain under a deadline and answers for it when the
 * deadline fires. */
static int timeout_fn(wf_ctx *c, void *arg) {
  const timeout_opts *t = arg;
  weft_scope scope;
  weft_scope_enter(&scope, t->ms);
  int rc = wf_next(c);
  int fired = weft_scope_leave(&scope);
  if (fired != UV_ETIMEDOUT || weft_http_response_is_streaming(c->res))
    return rc;
  weft_log(WEFT_LOG_WARN, "request timed out",
           "method=%s path=%s timeout_ms=%lld request_id=%s",
           logfmt_value(c, wf_method(c)), logfmt_value(c, wf_path(c)),
           (long long)t->ms, logfmt_value(c, wf_request_id(c)));
  weft_http_response_remove_header(c->res, "Content-Encoding");
  int erc = wf_error(c, t->status, "request timed out");
  return erc < 0 ? erc : 0;
}

wf_middleware wf_timeout(wf_app *app, int64_t timeout_ms, int status) {
  timeout_opts *t = wf__app_own(app, sizeof *t, NULL);
  if (t == NULL || timeout_ms < 0) return (wf_middleware){NULL, NULL};
  t->ms = timeout_ms;
  t->status = status >= 500 && status <= 599 ? status : 503;
  return (wf_middleware){timeout_fn, t};
}
