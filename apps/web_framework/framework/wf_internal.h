/* wf_internal.h: the framework's private types, shared by its sources. */
#ifndef WF_INTERNAL_H
#define WF_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "wf.h"

/* Route parameters a path may bind at once, and segments a path may have;
 * longer paths simply do not match (404). Both keep matching allocation-free
 * and its recursion shallow. */
#define WF_MAX_PARAMS 16
#define WF_MAX_DEPTH 64
#define WF_MAX_LOCALS 8

/* ---- Arena ------------------------------------------------------------------
 */

typedef struct wf_block {
  struct wf_block *next;
  size_t size;
  size_t used;
  /* The bytes follow, aligned to 16. */
} wf_block;

/* A bump allocator. The first block is kept between requests (allocated on
 * first use, arena_bytes long); larger needs get blocks of their own that
 * wf__arena_reset() frees. */
typedef struct wf_arena {
  wf_block *first; /* kept; NULL until first used */
  wf_block *extra; /* freed at reset */
  size_t first_size;
} wf_arena;

void *wf__arena_alloc(wf_arena *a, size_t n);
void wf__arena_reset(wf_arena *a);
void wf__arena_free(wf_arena *a);

/* ---- Routes ----------------------------------------------------------------
 */

typedef struct wf_entry wf_entry;
typedef struct wf_node wf_node;

struct wf_entry {
  char *method;
  char *pattern; /* with the group prefixes */
  wf_handler handler;
  void *arg;
  wf_group *group;
  wf_middleware *chain; /* the groups' middleware, outer first (at freeze) */
  size_t n_chain;
  weft_counter *requests;
  weft_histogram *latency;
  wf_entry *next_all; /* every route of the app, for freeing */
};

struct wf_node {
  char *seg; /* static segment text (not NUL-terminated in use) */
  size_t seg_len;
  wf_node **statics; /* static children */
  size_t n_statics;
  wf_node *param; /* ":name" child */
  char *param_name;
  wf_node *wild; /* "*name" child (a leaf) */
  char *wild_name;
  wf_entry **routes; /* per method, for patterns ending here */
  size_t n_routes;
  wf_entry *get; /* quick access, and HEAD's fallback */
  wf_entry *head;
  char *allow; /* the Allow header value (at freeze) */
};

/* Adds route r at pattern (with prefixes). Returns 0 or an error. */
int wf__router_add(wf_node *root, wf_entry *r);
/* Looks path up; fills c's parameters. Returns the node or NULL. */
const wf_node *wf__router_match(const wf_node *root, const char *path,
                                size_t len, wf_ctx *c);
/* Picks the route for method at n, HEAD falling back to GET, or NULL. */
const wf_entry *wf__router_method(const wf_node *n, const char *method);
/* Computes every node's Allow value. Returns 0 or UV_ENOMEM. */
int wf__router_freeze(wf_node *n);
void wf__router_free(wf_node *n);

/* ---- The app ---------------------------------------------------------------
 */

typedef struct wf_owned {
  struct wf_owned *next;
  void (*free_fn)(void *);
  /* The object follows. */
} wf_owned;

struct wf_group {
  wf_app *app;
  wf_group *parent;
  char *prefix; /* full, from the root; "" or "/x" without a trailing '/' */
  wf_middleware *mw;
  size_t n_mw;
  wf_group *next_all;
};

struct wf_app {
  wf_app_opts opts;
  weft_http_limits limits;
  int frozen;
  wf_node *root_node;
  wf_group *root;
  wf_group *groups;  /* every group, for freeing */
  wf_entry *routes;  /* every route */
  wf_middleware *mw; /* app-level middleware */
  size_t n_mw;
  wf_owned *owned; /* middleware state, freed with the app */
  char metric_requests[96];
  char metric_latency[96];
  weft_counter *unmatched_requests;
  weft_histogram *unmatched_latency;
  weft_counter *status_class[6]; /* 1xx..5xx, [0] for anything else */
};

/* Allocates size zeroed bytes owned by app (freed with it, after free_fn
 * when not NULL). NULL when memory runs out. */
void *wf__app_own(wf_app *app, size_t size, void (*free_fn)(void *));

/* ---- The per-request context -----------------------------------------------
 */

typedef struct wf_kv {
  const char *key;
  const char *value;
} wf_kv;

typedef struct wf_local_slot {
  const char *key;
  void *value;
} wf_local_slot;

typedef struct wf_param_slot {
  const char *name;
  const char *raw; /* into the path */
  size_t raw_len;
  const char *decoded; /* NULL until asked for */
} wf_param_slot;

struct wf_ctx {
  wf_app *app;
  const weft_http_request *req;
  weft_http_response *res;
  wf_arena *arena;
  const char *path;
  size_t path_len;
  const wf_node *node;   /* the path's node, or NULL (404) */
  const wf_entry *route; /* the route for the method, or NULL */
  size_t pos;            /* next chain element wf_next() runs */
  size_t n_params;
  wf_param_slot params[WF_MAX_PARAMS];
  int query_parsed;
  size_t n_query;
  wf_kv *query;
  int cookies_parsed;
  size_t n_cookies;
  wf_kv *cookies;
  cJSON *json;
  const char *request_id;
  char rid_buf[24];
  size_t n_locals;
  wf_local_slot locals[WF_MAX_LOCALS];
  int64_t file_bytes; /* body length of a file response */
  uint64_t stream_bytes;
  const char *client; /* the peer's address ("127.0.0.1:5000"), or "-" */
};

/* Percent-decodes src[0..len) into dst (room for len + 1), '+' as a space
 * when plus is set. Malformed escapes and %00 are kept as they are.
 * Returns the decoded length; dst is NUL-terminated. */
size_t wf__decode(char *dst, const char *src, size_t len, int plus);

/* Escapes s as a JSON string literal (with quotes) into the arena. */
const char *wf__json_escape(wf_ctx *c, const char *s);

/* Serves the file at full path; root checks are the caller's. With root_real
 * (the root's resolved path), a file whose resolved path leads outside it is
 * refused with 404; NULL lets symbolic links lead anywhere. */
int wf__serve_path(wf_ctx *c, const char *path, const char *content_type,
                   const char *index, int64_t max_age, const char *root_real);

/* Whether an Accept-Encoding value accepts gzip (q-values honoured). */
int wf__accepts_gzip(const char *accept_encoding);

/* The response body length as sent: buffered, file or streamed. */
uint64_t wf__response_bytes(const wf_ctx *c);

#endif /* WF_INTERNAL_H */
