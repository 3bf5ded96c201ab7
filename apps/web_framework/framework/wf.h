/* wf.h: a small web framework on weft_http.
 *
 * An application builds one wf_app at start-up (routes, groups, middleware),
 * then serves it from every executor. Once serving starts the app is frozen:
 * it is only read, by every executor at once, without locks.
 *
 *   static int hello(wf_ctx *c, void *arg) {
 *     (void)arg;
 *     return wf_text(c, 200, "hello\n");
 *   }
 *   static int user(wf_ctx *c, void *arg) {
 *     (void)arg;
 *     return wf_jsonf(c, 200, "{\"id\":\"%s\"}", wf_param(c, "id"));
 *   }
 *   ...
 *   wf_app *app = wf_app_new(NULL);
 *   wf_use(app, wf_request_id_mw(app));
 *   wf_use(app, wf_logger(app));
 *   wf_use(app, wf_recover(app));
 *   wf_get(wf_root(app), "/hello", hello, NULL);
 *   wf_group *api = wf_group_new(wf_root(app), "/api");
 *   wf_get(api, "/users/:id", user, NULL);
 *   wf_static(wf_root(app), "/static", "./public", NULL);
 *   wf_get(wf_root(app), "/metrics", wf_metrics_handler, NULL);
 *   ...
 *   app_server_opts server = {...};          // apps/common/server.h
 *   int rc = wf_app_serve(app, &server);     // in weft_main's root task
 *   wf_app_free(app);
 *
 * Requests go through the app's middleware first, in the order wf_use()
 * added them (an onion: each one calls wf_next() to run the rest, and sees
 * the response once wf_next() returns; one that does not call wf_next()
 * answers the request itself). The route is looked up before the first
 * middleware runs, so every middleware can read wf_route_pattern(). Then
 * the middleware of the route's groups (outer group first) runs, then the
 * handler. A request that matches no route is answered 404, or 405 with an
 * Allow header when the path matches with another method; both still pass
 * through the app's middleware (logging, CORS preflight).
 *
 * Patterns are made of segments between slashes: a static segment matches
 * itself, ":name" matches any one non-empty segment, "*name" (last segment
 * only) matches the rest of the path, slashes included, possibly empty.
 * Static segments win over parameters, parameters over wildcards. A HEAD
 * request is served by the GET route when there is no HEAD route. Paths are
 * matched as sent (not decoded); parameter values are percent-decoded.
 *
 * Memory for a request (decoded parameters, query and cookie tables, text
 * built with wf_printf and friends) comes from a per-connection arena that
 * is reset after every request: whatever wf_alloc() returns is valid until
 * the handler chain returns.
 *
 * All functions returning int return 0 or a negative weft/libuv error.
 */
#ifndef WF_H
#define WF_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>
#include <weft.h>
#include <weft_http.h>

#include "server.h"

/* Format checking of the printf-like calls: C99's formats (%zu, %lld) on
 * mingw-w64, which builds with __USE_MINGW_ANSI_STDIO, not msvcrt's. */
#if defined(__MINGW32__)
#define WF_PRINTF_FORMAT(fmt, args)                                            \
  __attribute__((format(gnu_printf, fmt, args)))
#elif defined(__GNUC__)
#define WF_PRINTF_FORMAT(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define WF_PRINTF_FORMAT(fmt, args)
#endif

#ifdef __cplusplus
extern "C" {
#endif

/** The application: routes, groups, middleware (opaque). */
typedef struct wf_app wf_app;

/** A set of routes under a common prefix, with its own middleware (opaque). */
typedef struct wf_group wf_group;

/** One request being served: request, response and per-request state
 * (opaque; valid only while the handler chain runs). */
typedef struct wf_ctx wf_ctx;

/**
 * Handles a request. Answers through c (wf_text, wf_json, ...). Returns 0,
 * or a negative error: wf_recover() turns it into a 500 JSON answer; with no
 * wf_recover() in the chain the connection answers 500 and closes.
 */
typedef int (*wf_handler)(wf_ctx *c, void *arg);

/**
 * A middleware function: does its part, calls wf_next(c) to run the rest of
 * the chain (or answers itself and does not), and returns what the chain
 * returned (or its own error).
 */
typedef int (*wf_middleware_fn)(wf_ctx *c, void *arg);

/** A middleware: its function and argument. fn NULL means "could not be
 * made" (out of memory, bad options); wf_use() then fails with UV_ENOMEM. */
typedef struct wf_middleware {
  wf_middleware_fn fn;
  void *arg;
} wf_middleware;

/* ---- The application ------------------------------------------------------
 */

/**
 * Options of wf_app_new(). Zero everywhere means the defaults.
 *
 * Unless no_metrics is set, the framework records into the weft metrics
 * registry (PREFIX is metrics_prefix):
 *   PREFIX_requests_total{route="GET /users/:id"}      requests per route
 *   PREFIX_request_duration_seconds{route="..."}        time to answer
 *   PREFIX_responses_total{code="2xx"}                  per status class
 * with route="unmatched" for requests no route took (404, 405).
 */
typedef struct wf_app_opts {
  weft_http_limits
      limits; /**< connection limits; 0 fields: weft_http defaults */
  size_t
      arena_bytes; /**< per-connection arena kept between requests; 0: 4 KiB */
  int json_max_depth; /**< nesting accepted by wf_body_json(); 0: 32 */
  int no_metrics;     /**< non-zero: no per-route counters and histograms */
  const char
      *metrics_prefix; /**< metric names start with this; NULL: "wf_http" */
  void *data;          /**< the application's own pointer, see wf_app_data() */
} wf_app_opts;

/** Makes an application; opts may be NULL. Returns NULL when memory runs out.
 */
wf_app *wf_app_new(const wf_app_opts *opts);

/** Frees app, its routes, groups and middleware. Not while it is serving. */
void wf_app_free(wf_app *app);

/** The root group (prefix ""), which every route and group descends from. */
wf_group *wf_root(wf_app *app);

/**
 * Adds a middleware around every request (routed or not). Returns 0,
 * UV_ENOMEM (mw.fn is NULL, or memory ran out) or UV_EBUSY once frozen.
 */
int wf_use(wf_app *app, wf_middleware mw);

/**
 * Freezes app: builds every route's chain and its metrics. After it, app
 * is read-only and routes, groups and middleware can no longer be added
 * (UV_EBUSY). wf_app_serve() and the wf_app_serve_* functions freeze the
 * app themselves. Returns 0 or UV_ENOMEM. Call before sharing app between
 * executors; idempotent.
 */
int wf_app_freeze(wf_app *app);

/**
 * Serves app on the addresses and with the settings of *server
 * (apps/common/server.h; its handler and ctx are ignored and replaced) until
 * SIGINT or SIGTERM: stops accepting, lets in-flight requests finish
 * (keep-alive connections close after their current response), then
 * returns 0. Call from the root task of weft_main_opts(). Returns 0 or an
 * error.
 */
int wf_app_serve(wf_app *app, const app_server_opts *server);

/**
 * Serves HTTP/1.1 on one accepted connection until it ends (an app_conn_fn:
 * pass app as ctx). Freezes app first. Returns as weft_http_serve_conn().
 */
int wf_app_serve_conn(weft_tcp *conn, void *app);

/**
 * Serves the bytes in[0..len) as if a client had sent them on one
 * connection and returns everything the server would have written in *out
 * (malloc'ed; the caller frees it) and *out_len. For tests and fuzzing;
 * call in a weft task. Returns as weft_http_serve_conn().
 */
int wf_app_serve_memory(wf_app *app, const void *in, size_t len, char **out,
                        size_t *out_len);

/* ---- Groups and routes ----------------------------------------------------
 */

/**
 * Makes a group under parent whose routes start with prefix ("/api"; ""
 * for none; no parameters). Freed with the app. Returns NULL when prefix is
 * bad, memory runs out or the app is frozen.
 */
wf_group *wf_group_new(wf_group *parent, const char *prefix);

/**
 * Adds a middleware that runs for the routes of g and of its subgroups,
 * after the app's middleware and the outer groups' middleware, in the order
 * added (whether before or after the routes). Returns as wf_use().
 */
int wf_group_use(wf_group *g, wf_middleware mw);

/**
 * Routes method (any token: "GET", "POST", ...) on g's prefix + pattern to
 * handler(c, arg). Returns 0, UV_EINVAL for a bad method or pattern (no
 * leading '/', a wildcard before the last segment, an empty parameter name,
 * two parameters of different names at the same place), UV_EEXIST when the
 * same method and pattern is already routed, UV_ENOMEM, or UV_EBUSY once
 * frozen.
 */
int wf_route(wf_group *g, const char *method, const char *pattern,
             wf_handler handler, void *arg);

/** wf_route() with method GET. */
int wf_get(wf_group *g, const char *pattern, wf_handler handler, void *arg);
/** wf_route() with method POST. */
int wf_post(wf_group *g, const char *pattern, wf_handler handler, void *arg);
/** wf_route() with method PUT. */
int wf_put(wf_group *g, const char *pattern, wf_handler handler, void *arg);
/** wf_route() with method PATCH. */
int wf_patch(wf_group *g, const char *pattern, wf_handler handler, void *arg);
/** wf_route() with method DELETE. */
int wf_delete(wf_group *g, const char *pattern, wf_handler handler, void *arg);

/* ---- Running the chain ----------------------------------------------------
 */

/** Runs the rest of the chain (next middleware, or the handler, or the 404 /
 * 405 answer). For middleware. Returns what the rest returned. */
int wf_next(wf_ctx *c);

/* ---- The request ----------------------------------------------------------
 */

/** The method ("GET"). */
const char *wf_method(const wf_ctx *c);

/** The path as sent, without the query string ("/users/a%20b"). */
const char *wf_path(const wf_ctx *c);

/** The matched route's pattern with its group prefixes ("/api/users/:id"),
 * or NULL when no route matched. */
const char *wf_route_pattern(const wf_ctx *c);

/** The percent-decoded value of route parameter (or wildcard) name, or NULL. */
const char *wf_param(wf_ctx *c, const char *name);

/** The value of the first query parameter named key (decoded; '+' is a
 * space), "" for a key without '=', or NULL when absent. */
const char *wf_query(wf_ctx *c, const char *key);

/**
 * Stores up to max values of query key, in order, in values[] and returns
 * how many the query has (may be more than max).
 */
size_t wf_query_all(wf_ctx *c, const char *key, const char **values,
                    size_t max);

/** The number of query parameters; the i-th (decoded) in *key and *value.
 * wf_query_at returns 0 or UV_EINVAL when i is out of range. */
size_t wf_query_count(wf_ctx *c);
int wf_query_at(wf_ctx *c, size_t i, const char **key, const char **value);

/** The value of the first request header named name (any case), or NULL. */
const char *wf_header(const wf_ctx *c, const char *name);

/** The value of cookie name from the Cookie header(s), or NULL. Quotes
 * around a value are removed. */
const char *wf_cookie(wf_ctx *c, const char *name);

/** The request body (never NULL; NUL-terminated, *len without the NUL). */
const void *wf_body(const wf_ctx *c, size_t *len);

/**
 * Parses the body as JSON, refusing nesting deeper than the app's
 * json_max_depth before cJSON recurses. The tree belongs to c (freed after
 * the request). On an empty or bad body it answers 400 with a JSON body
 * naming the fault and its position ({"error":"invalid JSON: ... at line 1
 * column 7","request_id":"..."}) and returns NULL: the handler then just
 * returns 0.
 */
cJSON *wf_body_json(wf_ctx *c);

/** The request id: the one the wf_request_id_mw() middleware took or
 * made, or one made on first use. Never NULL. */
const char *wf_request_id(wf_ctx *c);

/** The underlying weft_http request and response, for what wf does not wrap. */
const weft_http_request *wf_http_request(const wf_ctx *c);
weft_http_response *wf_http_response(wf_ctx *c);

/** The app's data pointer (wf_app_opts.data). */
void *wf_app_data(const wf_ctx *c);

/** Keeps value under key (a static string, compared by pointer or text) for
 * later middleware and the handler of this request. Returns 0 or UV_ENOMEM. */
int wf_set_local(wf_ctx *c, const char *key, void *value);
/** The value kept under key, or NULL. */
void *wf_local(const wf_ctx *c, const char *key);

/** n bytes from the request's arena (aligned to 16), freed after the
 * request. NULL when memory runs out. */
void *wf_alloc(wf_ctx *c, size_t n);

/** A NUL-terminated copy in the arena of the formatted text, or NULL. */
char *wf_sprintf(wf_ctx *c, const char *fmt, ...) WF_PRINTF_FORMAT(2, 3);

/* ---- The response ---------------------------------------------------------
 */

/** Sets the status code. Returns 0 or UV_EINVAL. */
int wf_status(wf_ctx *c, int status);

/** The status set so far (200 by default). */
int wf_get_status(const wf_ctx *c);

/** Adds a header field (another field of the same name may exist). */
int wf_add_header(wf_ctx *c, const char *name, const char *value);

/** Sets a header field, replacing every field of that name. */
int wf_set_header(wf_ctx *c, const char *name, const char *value);

/** Sets the status, Content-Type (when not NULL) and a copy of the body. */
int wf_send(wf_ctx *c, int status, const char *content_type, const void *data,
            size_t len);

/** wf_send() with text/plain; charset=utf-8 and a NUL-terminated text. */
int wf_text(wf_ctx *c, int status, const char *text);

/** Sets status, Content-Type: application/json and the unformatted text of
 * json (not freed: the caller keeps it). */
int wf_json(wf_ctx *c, int status, const cJSON *json);

/** Sets status, Content-Type: application/json and the printf-formatted
 * body. Values are not escaped: use wf_json_escape() for strings. */
int wf_jsonf(wf_ctx *c, int status, const char *fmt, ...)
    WF_PRINTF_FORMAT(3, 4);

/** The JSON string literal for s (quotes included), in the arena; NULL
 * when memory runs out. */
const char *wf_json_escape(wf_ctx *c, const char *s);

/** Appends the printf-formatted text to the body. */
int wf_printf(wf_ctx *c, const char *fmt, ...) WF_PRINTF_FORMAT(2, 3);

/** Answers status (400..599) with {"error":message,"request_id":"..."}. */
int wf_error(wf_ctx *c, int status, const char *message);

/** Answers status (301, 302, 303, 307 or 308) with Location: location. */
int wf_redirect(wf_ctx *c, int status, const char *location);

/** Options of wf_set_cookie(). Zero everywhere: a session cookie, Path=/. */
typedef struct wf_cookie_opts {
  const char *path;   /**< NULL: "/" */
  const char *domain; /**< NULL: none */
  int64_t max_age;    /**< seconds; 0: none (session cookie); < 0: delete */
  int http_only;
  int secure;
  const char *same_site; /**< "Strict", "Lax", "None" or NULL */
} wf_cookie_opts;

/** Adds a Set-Cookie header. name must be a token, value cookie-octets
 * (no space, quote, comma, semicolon or backslash). opts may be NULL. */
int wf_set_cookie(wf_ctx *c, const char *name, const char *value,
                  const wf_cookie_opts *opts);

/**
 * Starts a streamed (chunked) response with status and content_type (may
 * be NULL): the headers go out now. Then wf_stream_write() sends each piece
 * at once; the response ends when the handler returns.
 */
int wf_stream_start(wf_ctx *c, int status, const char *content_type);
int wf_stream_write(wf_ctx *c, const void *data, size_t len);
int wf_stream_printf(wf_ctx *c, const char *fmt, ...) WF_PRINTF_FORMAT(2, 3);

/**
 * Answers with the file at path, as wf_static() serves files: Content-Type
 * from the extension (content_type overrides it when not NULL), ETag,
 * Last-Modified, conditional requests (304), a single byte range (206/416),
 * sent with sendfile. 404 when there is no such regular file. The path is
 * used as given: never pass one built from the request without checking it.
 */
int wf_send_file(wf_ctx *c, const char *path, const char *content_type);

/** The MIME type for the extension of path, "application/octet-stream" when
 * unknown. */
const char *wf_mime_type(const char *path);

/* ---- Ready-made handlers --------------------------------------------------
 */

/** Options of wf_static(). Zero everywhere: the defaults. */
typedef struct wf_static_opts {
  const char *index;   /**< served for a directory; NULL: "index.html" */
  int64_t max_age;     /**< Cache-Control: max-age in seconds; 0: none */
  int follow_symlinks; /**< non-zero: links may point outside the root */
} wf_static_opts;

/**
 * Serves the files under directory root on GET and HEAD prefix/... of g.
 * A directory is served its index file; asked for without a trailing
 * slash, it is answered 301 to the path with one (so that relative links
 * in the index resolve). Paths that climb out of root ("..", or a symbolic link
 * leading outside, unless follow_symlinks) are refused with 404, as are hidden
 * names (a segment starting with '.'). Returns 0, UV_ENOENT when root is not a
 * directory, or as wf_route().
 */
int wf_static(wf_group *g, const char *prefix, const char *root,
              const wf_static_opts *opts);

/** Answers the Prometheus text of every registered metric (weft/metrics.h:
 * the runtime's own and the framework's per-route ones). */
int wf_metrics_handler(wf_ctx *c, void *arg);

/** Answers 200 {"status":"ok"}, or 503 {"status":"stopping"} once the
 * server is shutting down. */
int wf_healthz_handler(wf_ctx *c, void *arg);

/* ---- Ready-made middleware ------------------------------------------------
 */
/* Each returns a middleware whose state belongs to app (freed with it). */

/** Logs one line per request at info level, after the response is made:
 * msg=request method path status bytes duration_ms request_id. */
wf_middleware wf_logger(wf_app *app);

/** Answers a negative return of the rest of the chain with 500
 * {"error":"internal server error","request_id":"..."}, logged at error
 * level with the error's name, and returns 0. */
wf_middleware wf_recover(wf_app *app);

/** Takes X-Request-Id from the request when it is sane (1 to 128 of
 * [A-Za-z0-9._:-]) or makes one, and echoes it in the response. */
wf_middleware wf_request_id_mw(wf_app *app);

/** Options of wf_cors(). */
typedef struct wf_cors_opts {
  const char *const *origins; /**< allowed origins; NULL or "*": any */
  size_t n_origins;
  const char *methods; /**< NULL: "GET, HEAD, POST, PUT, PATCH, DELETE" */
  const char *headers; /**< allowed request headers; NULL: echo the request's */
  const char *expose_headers; /**< NULL: none */
  int allow_credentials;      /**< the origin is then echoed, never "*" */
  int64_t max_age;            /**< preflight cache, seconds; 0: 600 */
} wf_cors_opts;

/** CORS: adds Access-Control-Allow-Origin (and friends) for allowed
 * origins and answers preflight requests (OPTIONS with
 * Access-Control-Request-Method) with 204 itself; a preflight from an
 * origin not allowed is answered 403, other requests from it pass without
 * CORS headers. Requests without Origin pass untouched. opts is copied and
 * may be NULL (any origin). */
wf_middleware wf_cors(wf_app *app, const wf_cors_opts *opts);

/** Answers 413 when the body is longer than max_bytes (a stricter limit
 * than wf_app_opts.limits.max_body_bytes, e.g. for a group). */
wf_middleware wf_body_limit(wf_app *app, size_t max_bytes);

/** Runs the rest of the chain in a weft scope with a deadline of
 * timeout_ms; when it fires before the response is streamed, the answer is
 * status (503 or 504; 0: 503) with a JSON error body. */
wf_middleware wf_timeout(wf_app *app, int64_t timeout_ms, int status);

/** Options of wf_gzip(). */
typedef struct wf_gzip_opts {
  size_t min_bytes; /**< smaller bodies are sent as they are; 0: 1024 */
  int level;        /**< zlib level 1..9; 0: 6 */
} wf_gzip_opts;

/** Compresses buffered responses of compressible types (text/..., JSON,
 * JavaScript, XML, SVG) with gzip when the client accepts it (q-values
 * honoured) and it makes them smaller; such responses get Vary:
 * Accept-Encoding whether compressed or not. Skips bodies under min_bytes,
 * streamed and file bodies, bodies that already have a Content-Encoding
 * and those marked Cache-Control: no-transform. opts may be NULL. */
wf_middleware wf_gzip(wf_app *app, const wf_gzip_opts *opts);

#ifdef __cplusplus
}
#endif
#endif /* WF_H */
