/* test_framework.c: unit tests of the web framework (framework/wf.h).
 *
 * Each test builds a small app and drives whole requests through it with
 * wf_app_serve_memory(): the bytes a client would send go in, the bytes the
 * server would write come out, and no socket is involved. A plain C
 * program: CHECK records a failure and goes on, main's exit code says
 * whether any failed.
 */
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zlib.h>

#include "wf.h"
#include "wf_internal.h" /* wf__accepts_gzip */

#include "tests/check.h" /* CHECK, from apps/common */

#ifdef _WIN32
#include <windows.h>

#include "win_support.h" /* mkdtemp, from tests/ */
#define mkdir(path, mode) _mkdir(path)
/* symlink(2): a file link, -1 unless it can be read through (creating one
 * needs a privilege on Windows; Wine 8 makes one it cannot open). */
static int symlink(const char *target, const char *link) {
  if (!CreateSymbolicLinkA(link, target, 0)) return -1;
  if (_access(link, 4) == 0) return 0;
  DeleteFileA(link);
  return -1;
}
#endif

/* ---- Helpers
 * ------------------------------------------------------------------ */

/* A parsed response: status, the header block and the body. */
typedef struct response {
  char *raw;
  size_t raw_len;
  int status;
  const char *headers; /* from the status line to the blank line */
  size_t headers_len;
  const char *body;
  size_t body_len;
} response;

/* Serves raw request bytes through app and parses the first response. */
static response serve(wf_app *app, const char *raw) {
  response r;
  memset(&r, 0, sizeof r);
  int rc = wf_app_serve_memory(app, raw, strlen(raw), &r.raw, &r.raw_len);
  if (rc < 0 || r.raw == NULL) {
    fprintf(stderr, "[%s] serve failed: %s\n", check_case, weft_strerror(rc));
    return r;
  }
  sscanf(r.raw, "HTTP/1.%*d %d", &r.status); /* NOLINT(cert-err34-c): a status of 0 fails the test */
  const char *end = strstr(r.raw, "\r\n\r\n");
  if (end != NULL) {
    r.headers = r.raw;
    r.headers_len = (size_t)(end - r.raw) + 2;
    r.body = end + 4;
    r.body_len = r.raw_len - (size_t)(r.body - r.raw);
  }
  return r;
}

/* A GET of target with extra header lines (each ending in \r\n). */
static response get(wf_app *app, const char *target, const char *extra) {
  char req[2048];
  snprintf(req, sizeof req,
           "GET %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n%s\r\n", target,
           extra != NULL ? extra : "");
  return serve(app, req);
}

/* A request of any method with a body. */
static response request(wf_app *app, const char *method, const char *target,
                        const char *extra, const char *body) {
  char req[8192];
  snprintf(req, sizeof req,
           "%s %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
           "Content-Length: %zu\r\n%s\r\n%s",
           method, target, strlen(body), extra != NULL ? extra : "", body);
  return serve(app, req);
}

/* The value of header name in r (copied into a static buffer), or NULL. */
static const char *header(const response *r, const char *name) {
  static char value[1024];
  size_t n = strlen(name);
  const char *p = r->headers;
  if (p == NULL) return NULL;
  const char *end = r->headers + r->headers_len;
  while (p < end) {
    const char *eol = strstr(p, "\r\n");
    if (eol == NULL || eol > end) break;
    if ((size_t)(eol - p) > n && strncasecmp(p, name, n) == 0 && p[n] == ':') {
      const char *v = p + n + 1;
      while (*v == ' ') v++;
      size_t len = (size_t)(eol - v);
      if (len >= sizeof value) len = sizeof value - 1;
      memcpy(value, v, len);
      value[len] = '\0';
      return value;
    }
    p = eol + 2;
  }
  return NULL;
}

/* Whether the body of r is exactly text. */
static int body_is(const response *r, const char *text) {
  return r->body != NULL && r->body_len == strlen(text) &&
         memcmp(r->body, text, r->body_len) == 0;
}

/* Whether the body of r contains text. */
static int body_has(const response *r, const char *text) {
  return r->body != NULL && strstr(r->body, text) != NULL;
}

static void done(response *r) { free(r->raw); }

/* ---- Handlers
 * ------------------------------------------------------------------- */

/* Answers its argument as text. */
static int say(wf_ctx *c, void *arg) { return wf_text(c, 200, arg); }

/* Answers the named parameters in arg ("id" or "id,name"). */
static int echo_params(wf_ctx *c, void *arg) {
  char names[64];
  snprintf(names, sizeof names, "%s", (const char *)arg);
  wf_status(c, 200);
  for (char *save, *n = strtok_r(names, ",", &save); n != NULL;
       n = strtok_r(NULL, ",", &save)) {
    const char *v = wf_param(c, n);
    wf_printf(c, "%s=[%s];", n, v != NULL ? v : "(null)");
  }
  return 0;
}

/* ---- Router
 * ------------------------------------------------------------------- */

static void test_router(void) {
  check_case = "router";
  wf_app *app = wf_app_new(NULL);
  wf_group *root = wf_root(app);
  CHECK(wf_get(root, "/", say, "root") == 0);
  CHECK(wf_get(root, "/users", say, "users") == 0);
  CHECK(wf_get(root, "/users/me", say, "me") == 0);
  CHECK(wf_get(root, "/users/:id", echo_params, "id") == 0);
  CHECK(wf_put(root, "/users/:id", say, "put") == 0);
  CHECK(wf_get(root, "/users/:id/posts/:post", echo_params, "id,post") == 0);
  CHECK(wf_get(root, "/files/*path", echo_params, "path") == 0);
  CHECK(wf_get(root, "/files/special", say, "special") == 0);
  CHECK(wf_route(root, "HEAD", "/onlyhead", say, "h") == 0);
  /* Bad patterns and duplicates. */
  CHECK(wf_get(root, "nolead", say, "x") == UV_EINVAL);
  CHECK(wf_get(root, "/a/*rest/more", say, "x") == UV_EINVAL);
  CHECK(wf_get(root, "/a/:", say, "x") == UV_EINVAL);
  CHECK(wf_get(root, "/users/:name/x", say, "x") == UV_EINVAL);
  CHECK(wf_get(root, "/users/:id", say, "x") == UV_EEXIST);
  CHECK(wf_route(root, "BAD METHOD", "/x", say, "x") == UV_EINVAL);

  wf_group *api = wf_group_new(root, "/api/v1/");
  CHECK(api != NULL);
  CHECK(wf_get(api, "/", say, "api root") == 0);
  CHECK(wf_get(api, "/items/:id", echo_params, "id") == 0);
  wf_group *admin = wf_group_new(api, "/admin");
  CHECK(wf_post(admin, "/reset", say, "reset") == 0);
  CHECK(wf_group_new(root, "/:bad") == NULL);

  response r = get(app, "/", NULL);
  CHECK(r.status == 200 && body_is(&r, "root"));
  done(&r);
  r = get(app, "/users", NULL);
  CHECK(r.status == 200 && body_is(&r, "users"));
  done(&r);
  /* Static segments win over parameters. */
  r = get(app, "/users/me", NULL);
  CHECK(body_is(&r, "me"));
  done(&r);
  r = get(app, "/users/42", NULL);
  CHECK(body_is(&r, "id=[42];"));
  done(&r);
  /* Parameters are percent-decoded; %00 stays as it is. */
  r = get(app, "/users/a%20b%2Fc%00", NULL);
  CHECK(body_is(&r, "id=[a b/c%00];"));
  done(&r);
  r = get(app, "/users/7/posts/x%41", NULL);
  CHECK(body_is(&r, "id=[7];post=[xA];"));
  done(&r);
  /* Wildcards take the rest, slashes included, or nothing. */
  r = get(app, "/files/a/b/c.txt", NULL);
  CHECK(body_is(&r, "path=[a/b/c.txt];"));
  done(&r);
  r = get(app, "/files/special", NULL);
  CHECK(body_is(&r, "special"));
  done(&r);
  r = get(app, "/files/", NULL);
  CHECK(body_is(&r, "path=[];"));
  done(&r);
  r = get(app, "/files", NULL);
  CHECK(body_is(&r, "path=[];"));
  done(&r);
  /* Backtracking: "me" is static, but "me/posts/1" is only under :id. */
  r = get(app, "/users/me/posts/1", NULL);
  CHECK(body_is(&r, "id=[me];post=[1];"));
  done(&r);
  /* Query strings do not take part in routing. */
  r = get(app, "/users/5?x=1", NULL);
  CHECK(body_is(&r, "id=[5];"));
  done(&r);
  /* 404, 405 with Allow, OPTIONS answered with Allow. */
  r = get(app, "/nothing/here", NULL);
  CHECK(r.status == 404 && body_has(&r, "\"error\":\"not found\""));
  done(&r);
  r = get(app, "/users/", NULL);
  CHECK(r.status == 404);
  done(&r);
  r = request(app, "DELETE", "/users/5", NULL, "");
  CHECK(r.status == 405);
  CHECK(header(&r, "Allow") != NULL &&
        strcmp(header(&r, "Allow"), "GET, PUT, HEAD, OPTIONS") == 0);
  done(&r);
  r = request(app, "OPTIONS", "/users/5", NULL, "");
  CHECK(r.status == 204 && header(&r, "Allow") != NULL);
  done(&r);
  /* HEAD falls back to GET: headers only. */
  r = serve(app,
            "HEAD /users/me HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
  CHECK(r.status == 200 && r.body_len == 0);
  CHECK(header(&r, "Content-Length") != NULL &&
        strcmp(header(&r, "Content-Length"), "2") == 0);
  done(&r);
  r = get(app, "/onlyhead", NULL);
  CHECK(r.status == 405);
  done(&r);
  /* Groups. */
  r = get(app, "/api/v1", NULL);
  CHECK(body_is(&r, "api root"));
  done(&r);
  r = get(app, "/api/v1/items/9", NULL);
  CHECK(body_is(&r, "id=[9];"));
  done(&r);
  r = request(app, "POST", "/api/v1/admin/reset", NULL, "");
  CHECK(body_is(&r, "reset"));
  done(&r);
  /* Frozen now: nothing can be added. */
  CHECK(wf_get(root, "/late", say, "x") == UV_EBUSY);
  CHECK(wf_use(app, wf_logger(app)) == UV_EBUSY);
  CHECK(wf_group_new(root, "/late") == NULL);
  wf_app_free(app);
}

/* ---- Request API
 * ------------------------------------------------------------- */

static int show_query(wf_ctx *c, void *arg) {
  (void)arg;
  const char *vals[4];
  size_t n = wf_query_all(c, "tag", vals, 4);
  wf_status(c, 200);
  wf_printf(c, "q=[%s] empty=[%s] missing=%s tags=%zu", wf_query(c, "q"),
            wf_query(c, "empty") ? wf_query(c, "empty") : "(null)",
            wf_query(c, "missing") ? "yes" : "no", n);
  for (size_t i = 0; i < n && i < 4; i++) wf_printf(c, " [%s]", vals[i]);
  wf_printf(c, " count=%zu", wf_query_count(c));
  return 0;
}

static int show_cookies(wf_ctx *c, void *arg) {
  (void)arg;
  const char *a = wf_cookie(c, "a"), *b = wf_cookie(c, "b"),
             *q = wf_cookie(c, "quoted"), *x = wf_cookie(c, "x");
  wf_status(c, 200);
  return wf_printf(c, "a=%s b=%s quoted=%s x=%s ua=%s", a ? a : "-",
                   b ? b : "-", q ? q : "-", x ? x : "-",
                   wf_header(c, "USER-AGENT") ? wf_header(c, "user-agent")
                                              : "-");
}

static int parse_json(wf_ctx *c, void *arg) {
  (void)arg;
  cJSON *doc = wf_body_json(c);
  if (doc == NULL) return 0;
  const cJSON *name = cJSON_GetObjectItemCaseSensitive(doc, "name");
  return wf_jsonf(
      c, 201, "{\"hello\":%s}",
      wf_json_escape(c, cJSON_IsString(name) ? name->valuestring : "?"));
}

static int set_things(wf_ctx *c, void *arg) {
  (void)arg;
  wf_cookie_opts o = {.max_age = 60, .http_only = 1, .same_site = "Lax"};
  CHECK(wf_set_cookie(c, "sid", "abc123", &o) == 0);
  CHECK(wf_set_cookie(c, "bad name", "x", NULL) == UV_EINVAL);
  CHECK(wf_set_cookie(c, "n", "bad;value", NULL) == UV_EINVAL);
  CHECK(wf_set_local(c, "k", (void *)"v") == 0);
  CHECK(strcmp(wf_local(c, "k"), "v") == 0);
  CHECK(wf_local(c, "none") == NULL);
  CHECK(wf_add_header(c, "X-A", "1") == 0);
  CHECK(wf_set_header(c, "X-A", "2") == 0);
  return wf_redirect(c, 303, "/elsewhere");
}

static int stream(wf_ctx *c, void *arg) {
  (void)arg;
  int rc = wf_stream_start(c, 200, "text/plain");
  for (int i = 0; rc == 0 && i < 3; i++) rc = wf_stream_printf(c, "part%d;", i);
  return rc;
}

static int big_alloc(wf_ctx *c, void *arg) {
  (void)arg;
  /* Past the first arena block: extra blocks, freed after the request. */
  char *p = wf_alloc(c, 100000);
  if (p == NULL) return UV_ENOMEM;
  memset(p, 'x', 100000);
  char *s = wf_sprintf(c, "%.*s", 5000, p);
  return wf_text(c, 200, s != NULL && strlen(s) == 5000 ? "ok" : "bad");
}

static void test_request_api(void) {
  check_case = "request_api";
  wf_app_opts opts = {.json_max_depth = 8};
  wf_app *app = wf_app_new(&opts);
  wf_get(wf_root(app), "/q", show_query, NULL);
  wf_get(wf_root(app), "/cookies", show_cookies, NULL);
  wf_post(wf_root(app), "/json", parse_json, NULL);
  wf_get(wf_root(app), "/things", set_things, NULL);
  wf_get(wf_root(app), "/stream", stream, NULL);
  wf_get(wf_root(app), "/big", big_alloc, NULL);

  response r = get(app, "/q?q=a+b%21&tag=x&empty&tag=y%2Cz&=novalue&&", NULL);
  CHECK(body_is(&r, "q=[a b!] empty=[] missing=no tags=2 [x] [y,z] count=5"));
  done(&r);
  r = get(app, "/q", NULL);
  CHECK(body_is(&r, "q=[(null)] empty=[(null)] missing=no tags=0 count=0"));
  done(&r);

  r = get(app, "/cookies",
          "Cookie: a=1; b=two\r\nUser-Agent: tester\r\n"
          "Cookie: quoted=\"v\" ;x=\r\n");
  CHECK(body_is(&r, "a=1 b=two quoted=v x= ua=tester"));
  done(&r);

  r = request(app, "POST", "/json", "Content-Type: application/json\r\n",
              "{\"name\":\"W\\\"eft\"}");
  CHECK(r.status == 201 && body_is(&r, "{\"hello\":\"W\\\"eft\"}"));
  done(&r);
  r = request(app, "POST", "/json", NULL, "{\"name\": [1, 2,]}");
  CHECK(r.status == 400 && body_has(&r, "invalid JSON") &&
        body_has(&r, "line 1") && body_has(&r, "request_id"));
  done(&r);
  r = request(app, "POST", "/json", NULL, "");
  CHECK(r.status == 400 && body_has(&r, "empty"));
  done(&r);
  /* Deeper than json_max_depth: refused before cJSON recurses. */
  r = request(app, "POST", "/json", NULL, "[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]");
  CHECK(r.status == 400 && body_has(&r, "invalid JSON"));
  done(&r);

  r = get(app, "/things", NULL);
  CHECK(r.status == 303);
  CHECK(header(&r, "Location") &&
        strcmp(header(&r, "Location"), "/elsewhere") == 0);
  CHECK(header(&r, "Set-Cookie") &&
        strcmp(header(&r, "Set-Cookie"),
               "sid=abc123; Path=/; Max-Age=60; HttpOnly; SameSite=Lax") == 0);
  CHECK(header(&r, "X-A") && strcmp(header(&r, "X-A"), "2") == 0);
  done(&r);

  r = get(app, "/stream", NULL);
  CHECK(r.status == 200);
  CHECK(header(&r, "Transfer-Encoding") &&
        strcasecmp(header(&r, "Transfer-Encoding"), "chunked") == 0);
  CHECK(body_has(&r, "part0;") && body_has(&r, "part2;"));
  done(&r);

  r = get(app, "/big", NULL);
  CHECK(body_is(&r, "ok"));
  done(&r);
  wf_app_free(app);
}

/* ---- Middleware -------------------------------------------------------------
 */

static char trace[256];

static void note(const char *s) {
  strncat(trace, s, sizeof trace - strlen(trace) - 1);
}

/* Notes its name before and after the rest of the chain. */
static int tracer(wf_ctx *c, void *arg) {
  const char *name = arg;
  char buf[32];
  snprintf(buf, sizeof buf, "%s>", name);
  note(buf);
  int rc = wf_next(c);
  snprintf(buf, sizeof buf, "<%s", name);
  note(buf);
  return rc;
}

/* Answers 401 itself unless the request carries a token. */
static int guard(wf_ctx *c, void *arg) {
  (void)arg;
  note("guard ");
  if (wf_header(c, "X-Token") == NULL) return wf_error(c, 401, "no token");
  return wf_next(c);
}

static int traced(wf_ctx *c, void *arg) {
  (void)arg;
  note("handler ");
  CHECK(strcmp(wf_route_pattern(c), "/g/h") == 0);
  return wf_text(c, 200, "ok");
}

static int failing(wf_ctx *c, void *arg) {
  (void)arg;
  wf_text(c, 200, "half done");
  return UV_EIO;
}

static int slow(wf_ctx *c, void *arg) {
  (void)arg;
  int rc = weft_sleep(5000);
  if (rc < 0) return rc;
  return wf_text(c, 200, "slow");
}

static int show_id(wf_ctx *c, void *arg) {
  (void)arg;
  return wf_text(c, 200, wf_request_id(c));
}

static void test_middleware(void) {
  check_case = "middleware";
  wf_app *app = wf_app_new(NULL);
  wf_group *g = wf_group_new(wf_root(app), "/g");
  wf_group *inner = wf_group_new(g, "");
  CHECK(wf_use(app, (wf_middleware){tracer, "a"}) == 0);
  CHECK(wf_group_use(g, (wf_middleware){tracer, "g"}) == 0);
  CHECK(wf_group_use(inner, (wf_middleware){guard, NULL}) == 0);
  CHECK(wf_use(app, (wf_middleware){tracer, "b"}) == 0);
  CHECK(wf_use(app, (wf_middleware){NULL, NULL}) == UV_ENOMEM);
  wf_get(inner, "/h", traced, NULL);
  wf_get(wf_root(app), "/plain", say, "plain");

  trace[0] = '\0';
  response r = get(app, "/g/h", "X-Token: t\r\n");
  CHECK(r.status == 200);
  CHECK(strcmp(trace, "a>b>g>guard handler <g<b<a") == 0);
  done(&r);
  trace[0] = '\0';
  r = get(app, "/g/h", NULL);
  CHECK(r.status == 401 && body_has(&r, "no token"));
  CHECK(strcmp(trace, "a>b>g>guard <g<b<a") == 0);
  done(&r);
  /* Unrouted requests pass through the app's middleware only. */
  trace[0] = '\0';
  r = get(app, "/missing", NULL);
  CHECK(r.status == 404 && strcmp(trace, "a>b><b<a") == 0);
  done(&r);
  wf_app_free(app);

  /* Error recovery, request ids, body limit, timeout. */
  app = wf_app_new(NULL);
  CHECK(wf_use(app, wf_request_id_mw(app)) == 0);
  CHECK(wf_use(app, wf_logger(app)) == 0);
  CHECK(wf_use(app, wf_recover(app)) == 0);
  wf_get(wf_root(app), "/fail", failing, NULL);
  wf_get(wf_root(app), "/id", show_id, NULL);
  wf_group *limited = wf_group_new(wf_root(app), "/small");
  wf_group_use(limited, wf_body_limit(app, 4));
  wf_post(limited, "/", say, "fits");
  wf_group *timed = wf_group_new(wf_root(app), "/timed");
  wf_group_use(timed, wf_timeout(app, 30, 504));
  wf_get(timed, "/slow", slow, NULL);
  wf_get(timed, "/fast", say, "fast");

  weft_log_set_level(WEFT_LOG_INFO);
  r = get(app, "/fail", "X-Request-Id: abc-123\r\n");
  weft_log_set_level(WEFT_LOG_OFF);
  CHECK(r.status == 500);
  CHECK(body_is(
      &r, "{\"error\":\"internal server error\",\"request_id\":\"abc-123\"}"));
  CHECK(header(&r, "X-Request-Id") &&
        strcmp(header(&r, "X-Request-Id"), "abc-123") == 0);
  CHECK(header(&r, "Content-Type") &&
        strcmp(header(&r, "Content-Type"), "application/json") == 0);
  done(&r);
  r = get(app, "/id", "X-Request-Id: bad id with spaces\r\n");
  CHECK(r.status == 200 && r.body_len == 20);
  CHECK(header(&r, "X-Request-Id") && r.body &&
        strncmp(header(&r, "X-Request-Id"), r.body, 20) == 0);
  done(&r);
  r = get(app, "/id", NULL);
  CHECK(r.status == 200 && r.body_len == 20);
  done(&r);
  r = request(app, "POST", "/small", NULL, "12345");
  CHECK(r.status == 413 && body_has(&r, "too large"));
  done(&r);
  r = request(app, "POST", "/small", NULL, "1234");
  CHECK(r.status == 200 && body_is(&r, "fits"));
  done(&r);
  r = get(app, "/timed/slow", NULL);
  CHECK(r.status == 504 && body_has(&r, "timed out"));
  done(&r);
  r = get(app, "/timed/fast", NULL);
  CHECK(r.status == 200 && body_is(&r, "fast"));
  done(&r);
  wf_app_free(app);
}

static void test_cors(void) {
  check_case = "cors";
  wf_app *app = wf_app_new(NULL);
  const char *origins[] = {"https://good.example"};
  wf_cors_opts o = {.origins = origins,
                    .n_origins = 1,
                    .max_age = 60,
                    .expose_headers = "X-Total"};
  CHECK(wf_use(app, wf_cors(app, &o)) == 0);
  wf_get(wf_root(app), "/data", say, "data");

  response r =
      serve(app, "OPTIONS /data HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
                 "Origin: https://good.example\r\n"
                 "Access-Control-Request-Method: GET\r\n"
                 "Access-Control-Request-Headers: X-Custom\r\n\r\n");
  CHECK(r.status == 204);
  CHECK(header(&r, "Access-Control-Allow-Origin") &&
        strcmp(header(&r, "Access-Control-Allow-Origin"),
               "https://good.example") == 0);
  CHECK(header(&r, "Access-Control-Allow-Headers") &&
        strcmp(header(&r, "Access-Control-Allow-Headers"), "X-Custom") == 0);
  CHECK(header(&r, "Access-Control-Max-Age") &&
        strcmp(header(&r, "Access-Control-Max-Age"), "60") == 0);
  CHECK(header(&r, "Access-Control-Allow-Methods") != NULL);
  done(&r);
  r = get(app, "/data", "Origin: https://good.example\r\n");
  CHECK(r.status == 200 && body_is(&r, "data"));
  CHECK(header(&r, "Access-Control-Allow-Origin") != NULL);
  CHECK(header(&r, "Vary") && strcmp(header(&r, "Vary"), "Origin") == 0);
  CHECK(header(&r, "Access-Control-Expose-Headers") != NULL);
  done(&r);
  r = get(app, "/data", "Origin: https://evil.example\r\n");
  CHECK(r.status == 200 && header(&r, "Access-Control-Allow-Origin") == NULL);
  done(&r);
  r = serve(app, "OPTIONS /data HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
                 "Origin: https://evil.example\r\n"
                 "Access-Control-Request-Method: GET\r\n\r\n");
  CHECK(r.status == 403);
  done(&r);
  wf_app_free(app);

  /* Any origin. */
  app = wf_app_new(NULL);
  wf_use(app, wf_cors(app, NULL));
  wf_get(wf_root(app), "/data", say, "data");
  r = get(app, "/data", "Origin: https://any.example\r\n");
  CHECK(header(&r, "Access-Control-Allow-Origin") &&
        strcmp(header(&r, "Access-Control-Allow-Origin"), "*") == 0);
  done(&r);
  wf_app_free(app);
}

/* ---- gzip -------------------------------------------------------------------
 */

static char big_text[8192];

static int big(wf_ctx *c, void *arg) {
  return wf_send(c, 200, arg, big_text, strlen(big_text));
}

/* Gunzips in[0..len) and compares it with expected. */
static int gunzip_equals(const char *in, size_t len, const char *expected) {
  size_t want = strlen(expected);
  char *out = malloc(want + 16);
  z_stream zs;
  memset(&zs, 0, sizeof zs);
  int ok = 0;
  if (out != NULL && inflateInit2(&zs, 15 + 16) == Z_OK) {
    zs.next_in = (Bytef *)(uintptr_t)in; /* NOLINT(performance-no-int-to-ptr): zlib's input is not const */
    zs.avail_in = (uInt)len;
    zs.next_out = (Bytef *)out;
    zs.avail_out = (uInt)(want + 16);
    ok = inflate(&zs, Z_FINISH) == Z_STREAM_END && zs.total_out == want &&
         memcmp(out, expected, want) == 0;
    inflateEnd(&zs);
  }
  free(out);
  return ok;
}

static void test_gzip(void) {
  check_case = "gzip";
  for (size_t i = 0; i + 1 < sizeof big_text; i++)
    big_text[i] = "weft web framework "[i % 19];
  big_text[sizeof big_text - 1] = '\0';
  CHECK(wf__accepts_gzip("gzip"));
  CHECK(wf__accepts_gzip("deflate, gzip;q=0.5"));
  CHECK(!wf__accepts_gzip("gzip;q=0"));
  CHECK(!wf__accepts_gzip("gzip; q=0.000, br"));
  CHECK(wf__accepts_gzip("*"));
  CHECK(!wf__accepts_gzip("*;q=0"));
  CHECK(!wf__accepts_gzip("gzip;q=0, *"));
  CHECK(!wf__accepts_gzip("identity"));
  CHECK(!wf__accepts_gzip(NULL));
  CHECK(wf__accepts_gzip("GZIP ; Q=1"));

  wf_app *app = wf_app_new(NULL);
  wf_use(app, wf_gzip(app, NULL));
  wf_get(wf_root(app), "/text", big, "text/html; charset=utf-8");
  wf_get(wf_root(app), "/image", big, "image/png");
  wf_get(wf_root(app), "/small", say, "small");

  response r = get(app, "/text", "Accept-Encoding: br, gzip\r\n");
  CHECK(r.status == 200);
  CHECK(header(&r, "Content-Encoding") &&
        strcmp(header(&r, "Content-Encoding"), "gzip") == 0);
  CHECK(header(&r, "Vary") &&
        strcmp(header(&r, "Vary"), "Accept-Encoding") == 0);
  CHECK(r.body_len < strlen(big_text) / 4);
  CHECK(gunzip_equals(r.body, r.body_len, big_text));
  done(&r);
  r = get(app, "/text", "Accept-Encoding: gzip;q=0\r\n");
  CHECK(header(&r, "Content-Encoding") == NULL);
  CHECK(header(&r, "Vary") != NULL && r.body_len == strlen(big_text));
  done(&r);
  r = get(app, "/text", NULL);
  CHECK(header(&r, "Content-Encoding") == NULL &&
        r.body_len == strlen(big_text));
  done(&r);
  r = get(app, "/image", "Accept-Encoding: gzip\r\n");
  CHECK(header(&r, "Content-Encoding") == NULL && header(&r, "Vary") == NULL);
  done(&r);
  r = get(app, "/small", "Accept-Encoding: gzip\r\n");
  CHECK(header(&r, "Content-Encoding") == NULL && body_is(&r, "small"));
  done(&r);
  wf_app_free(app);
}

/* ---- Static files
 * ---------------------------------------------------------------- */

/* Writes text to dir/name. */
static void write_file(const char *dir, const char *name, const char *text) {
  char path[1024];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "w");
  if (f == NULL) return;
  fputs(text, f);
  fclose(f);
}

static void test_static(void) {
  check_case = "static";
  char base[] = "/tmp/wf_test_XXXXXX";
  if (mkdtemp(base) == NULL) {
    CHECK(!"mkdtemp");
    return;
  }
  char root[256], sub[256], path[600];
  snprintf(root, sizeof root, "%s/root", base);
  snprintf(sub, sizeof sub, "%s/root/sub", base);
  mkdir(root, 0755);
  mkdir(sub, 0755);
  write_file(base, "secret.txt", "secret");
  write_file(root, "hello.txt", "0123456789");
  write_file(root, "index.html", "<h1>index</h1>");
  write_file(root, ".hidden", "hidden");
  write_file(sub, "index.html", "sub index");
  write_file(root, "style.css", "body{}");
  snprintf(path, sizeof path, "%s/secret.txt", base);
  char link[600];
  snprintf(link, sizeof link, "%s/escape.txt", root);
  int have_link = symlink(path, link) == 0;
#ifdef _WIN32
  if (!have_link) fprintf(stderr, "  no file links here: not served through\n");
#else
  CHECK(have_link);
#endif

  wf_app *app = wf_app_new(NULL);
  CHECK(wf_static(wf_root(app), "/static", root, NULL) == 0);
  CHECK(wf_static(wf_root(app), "/none", "/definitely/not/here", NULL) ==
        UV_ENOENT);

  response r = get(app, "/static/hello.txt", NULL);
  CHECK(r.status == 200 && body_is(&r, "0123456789"));
  CHECK(header(&r, "Content-Type") &&
        strcmp(header(&r, "Content-Type"), "text/plain; charset=utf-8") == 0);
  CHECK(header(&r, "Accept-Ranges") != NULL);
  CHECK(header(&r, "Last-Modified") != NULL);
  char etag[128] = "";
  if (header(&r, "ETag") != NULL)
    snprintf(etag, sizeof etag, "%s", header(&r, "ETag"));
  CHECK(etag[0] == '"');
  char modified[64] = "";
  if (header(&r, "Last-Modified") != NULL)
    snprintf(modified, sizeof modified, "%s", header(&r, "Last-Modified"));
  done(&r);

  char extra[256];
  snprintf(extra, sizeof extra, "If-None-Match: \"x\", %s\r\n", etag);
  r = get(app, "/static/hello.txt", extra);
  CHECK(r.status == 304 && r.body_len == 0);
  CHECK(header(&r, "ETag") && strcmp(header(&r, "ETag"), etag) == 0);
  done(&r);
  snprintf(extra, sizeof extra, "If-Modified-Since: %s\r\n", modified);
  r = get(app, "/static/hello.txt", extra);
  CHECK(r.status == 304);
  done(&r);
  r = get(app, "/static/hello.txt", "If-None-Match: \"other\"\r\n");
  CHECK(r.status == 200);
  done(&r);

  r = get(app, "/static/hello.txt", "Range: bytes=2-5\r\n");
  CHECK(r.status == 206 && body_is(&r, "2345"));
  CHECK(header(&r, "Content-Range") &&
        strcmp(header(&r, "Content-Range"), "bytes 2-5/10") == 0);
  done(&r);
  r = get(app, "/static/hello.txt", "Range: bytes=7-\r\n");
  CHECK(r.status == 206 && body_is(&r, "789"));
  done(&r);
  r = get(app, "/static/hello.txt", "Range: bytes=-3\r\n");
  CHECK(r.status == 206 && body_is(&r, "789"));
  done(&r);
  r = get(app, "/static/hello.txt", "Range: bytes=5-100\r\n");
  CHECK(r.status == 206 && body_is(&r, "56789"));
  done(&r);
  r = get(app, "/static/hello.txt", "Range: bytes=10-\r\n");
  CHECK(r.status == 416);
  CHECK(header(&r, "Content-Range") &&
        strcmp(header(&r, "Content-Range"), "bytes */10") == 0);
  done(&r);
  r = get(app, "/static/hello.txt", "Range: bytes=0-1,4-5\r\n");
  CHECK(r.status == 200 && body_is(&r, "0123456789"));
  done(&r);
  r = get(app, "/static/hello.txt", "Range: bytes=5-2\r\n");
  CHECK(r.status == 200);
  done(&r);
  r = get(app, "/static/hello.txt",
          "Range: bytes=2-5\r\nIf-Range: \"stale\"\r\n");
  CHECK(r.status == 200);
  done(&r);

  r = get(app, "/static/", NULL);
  CHECK(r.status == 200 && body_is(&r, "<h1>index</h1>"));
  CHECK(header(&r, "Content-Type") &&
        strncmp(header(&r, "Content-Type"), "text/html", 9) == 0);
  done(&r);
  r = get(app, "/static/sub", NULL);
  CHECK(r.status == 301 && header(&r, "Location") &&
        strcmp(header(&r, "Location"), "/static/sub/") == 0);
  done(&r);
  r = get(app, "/static/sub/", NULL);
  CHECK(r.status == 200 && body_is(&r, "sub index"));
  done(&r);
  r = get(app, "/static/style.css", NULL);
  CHECK(header(&r, "Content-Type") &&
        strcmp(header(&r, "Content-Type"), "text/css; charset=utf-8") == 0);
  done(&r);

  /* Climbing out, hidden files, links out of the root, missing files. */
  const char *refused[] = {"/static/../secret.txt",
                           "/static/%2e%2e/secret.txt",
                           "/static/sub/..%2f..%2fsecret.txt",
                           "/static/.hidden",
                           "/static/escape.txt",
                           "/static/nope.txt",
                           "/static/hello.txt/x"};
  for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
    r = get(app, refused[i], NULL);
    if (r.status != 404) fprintf(stderr, "  %s -> %d\n", refused[i], r.status);
    CHECK(r.status == 404 && !body_has(&r, "secret"));
    done(&r);
  }
  wf_app_free(app);

  /* With links followed, the link out of the root is served. */
  app = wf_app_new(NULL);
  wf_static_opts so = {.follow_symlinks = 1, .max_age = 30};
  wf_static(wf_root(app), "/", root, &so);
  r = get(app, have_link ? "/escape.txt" : "/hello.txt", NULL);
  CHECK(r.status == 200 && body_is(&r, have_link ? "secret" : "0123456789"));
  CHECK(header(&r, "Cache-Control") &&
        strcmp(header(&r, "Cache-Control"), "max-age=30") == 0);
  done(&r);
  r = get(app, "/", NULL);
  CHECK(r.status == 200 && body_is(&r, "<h1>index</h1>"));
  done(&r);
  wf_app_free(app);

  unlink(link);
  snprintf(path, sizeof path, "%s/index.html", sub);
  unlink(path);
  rmdir(sub);
  const char *names[] = {"hello.txt", "index.html", ".hidden", "style.css"};
  for (size_t i = 0; i < 4; i++) {
    snprintf(path, sizeof path, "%s/%s", root, names[i]);
    unlink(path);
  }
  rmdir(root);
  snprintf(path, sizeof path, "%s/secret.txt", base);
  unlink(path);
  rmdir(base);
}

/* ---- Metrics and health
 * -------------------------------------------------------- */

static void test_metrics(void) {
  check_case = "metrics";
  wf_app_opts o = {.metrics_prefix = "wftest_http"};
  wf_app *app = wf_app_new(&o);
  wf_get(wf_root(app), "/hello/:name", say, "hi");
  wf_get(wf_root(app), "/metrics", wf_metrics_handler, NULL);
  wf_get(wf_root(app), "/healthz", wf_healthz_handler, NULL);
  response r = get(app, "/hello/x", NULL);
  done(&r);
  r = get(app, "/hello/y", NULL);
  done(&r);
  r = get(app, "/nowhere", NULL);
  done(&r);
  r = get(app, "/healthz", NULL);
  CHECK(r.status == 200 && body_is(&r, "{\"status\":\"ok\"}"));
  done(&r);
  r = get(app, "/metrics", NULL);
  CHECK(r.status == 200);
  CHECK(header(&r, "Content-Type") &&
        strncmp(header(&r, "Content-Type"), "text/plain; version=0.0.4", 25) ==
            0);
  CHECK(
      body_has(&r, "wftest_http_requests_total{route=\"GET /hello/:name\"} 2"));
  CHECK(body_has(&r, "wftest_http_requests_total{route=\"unmatched\"} 1"));
  CHECK(body_has(&r, "wftest_http_request_duration_seconds_count{route=\"GET "
                     "/hello/:name\"} 2"));
  CHECK(body_has(&r, "wftest_http_responses_total{code=\"2xx\"}"));
  CHECK(body_has(&r, "wftest_http_responses_total{code=\"4xx\"} 1"));
  done(&r);
  wf_app_free(app);
}

/* ---- Pipelining: the arena and the context are reused between requests
 * ---------- */

static void test_keep_alive(void) {
  check_case = "keep_alive";
  wf_app *app = wf_app_new(NULL);
  wf_get(wf_root(app), "/q", show_query, NULL);
  char *out = NULL;
  size_t len = 0;
  const char *in =
      "GET /q?q=1&tag=a HTTP/1.1\r\nHost: t\r\n\r\n"
      "GET /q?q=2 HTTP/1.1\r\nHost: t\r\n\r\n"
      "GET /q?q=3&tag=b&tag=c HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
  CHECK(wf_app_serve_memory(app, in, strlen(in), &out, &len) == 0);
  CHECK(out != NULL &&
        strstr(out, "q=[1] empty=[(null)] missing=no tags=1 [a] count=2"));
  CHECK(out != NULL &&
        strstr(out, "q=[2] empty=[(null)] missing=no tags=0 count=1"));
  CHECK(out != NULL &&
        strstr(out, "q=[3] empty=[(null)] missing=no tags=2 [b] [c] count=3"));
  free(out);
  wf_app_free(app);
}

static int run_all(void *arg) {
  (void)arg;
  test_router();
  test_request_api();
  test_middleware();
  test_cors();
  test_gzip();
  test_static();
  test_metrics();
  test_keep_alive();
  return 0;
}

int main(void) {
  /* Quiet, but for the lines the middleware test asks for. */
  weft_log_set_level(WEFT_LOG_OFF);
  /* Every test serves its requests from inside run_all's task, a few
   * frames deeper than a connection's task ever is: under ASan, whose
   * frames are several times larger, 64 KiB is not enough for that. */
  weft_opts opts = {.stack_size = 256 * 1024};
  int rc = weft_main_opts(&opts, run_all, NULL);
  if (rc != 0) {
    fprintf(stderr, "weft_main: %s\n", weft_strerror(rc));
    return 1;
  }
  if (check_report() != 0) return 1;
  printf("all framework tests passed\n");
  return 0;
}
