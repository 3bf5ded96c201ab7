/* request.c: the per-request arena and what a handler reads of a request:
 * parameters, query, headers, cookies, body, request id, locals.
 *
 * The query string and the cookies are parsed on first use only, into the
 * arena, so a handler that never reads them pays nothing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "json.h"
#include "wf_internal.h"

/* ---- Arena ------------------------------------------------------------------
 */

#define WF_ALIGN(n) (((n) + 15) & ~(size_t)15)
#define WF_BLOCK_HEAD WF_ALIGN(sizeof(wf_block))

/* Makes a block with room for size bytes. */
static wf_block *block_new(size_t size) {
  wf_block *b = malloc(WF_BLOCK_HEAD + size);
  if (b == NULL) return NULL;
  b->next = NULL;
  b->size = size;
  b->used = 0;
  return b;
}

/* Takes n bytes from b, or NULL when b lacks room. */
static void *block_take(wf_block *b, size_t n) {
  if (b == NULL || b->size - b->used < n) return NULL;
  void *p = (char *)b + WF_BLOCK_HEAD + b->used;
  b->used += n;
  return p;
}

void *wf__arena_alloc(wf_arena *a, size_t n) {
  if (n > SIZE_MAX / 2) return NULL;
  n = n == 0 ? 16 : WF_ALIGN(n);
  if (a->first == NULL) {
    a->first = block_new(a->first_size);
    if (a->first == NULL) return NULL;
  }
  void *p = block_take(a->first, n);
  if (p == NULL) p = block_take(a->extra, n);
  if (p != NULL) return p;
  size_t size = n > a->first_size ? n : a->first_size;
  wf_block *b = block_new(size);
  if (b == NULL) return NULL;
  b->next = a->extra;
  a->extra = b;
  return block_take(b, n);
}

void wf__arena_reset(wf_arena *a) {
  if (a->first != NULL) a->first->used = 0;
  for (wf_block *b = a->extra, *next; b != NULL; b = next) {
    next = b->next;
    free(b);
  }
  a->extra = NULL;
}

void wf__arena_free(wf_arena *a) {
  wf__arena_reset(a);
  free(a->first);
  a->first = NULL;
}

void *wf_alloc(wf_ctx *c, size_t n) { return wf__arena_alloc(c->arena, n); }

char *wf_sprintf(wf_ctx *c, const char *fmt, ...) {
  char small[256];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(small, sizeof small, fmt, ap);
  va_end(ap);
  if (n < 0) return NULL;
  char *out = wf_alloc(c, (size_t)n + 1);
  if (out == NULL) return NULL;
  if ((size_t)n < sizeof small) {
    memcpy(out, small, (size_t)n + 1);
  } else {
    va_start(ap, fmt);
    vsnprintf(out, (size_t)n + 1, fmt, ap);
    va_end(ap);
  }
  return out;
}

/* ---- Decoding
 * ---------------------------------------------------------------- */

/* The value of hex digit ch, or -1. */
static int hex_value(char ch) {
  if (ch >= '0' && ch <= '9') return ch - '0';
  if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
  if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
  return -1;
}

size_t wf__decode(char *dst, const char *src, size_t len, int plus) {
  size_t o = 0;
  for (size_t i = 0; i < len; i++) {
    char ch = src[i];
    if (ch == '%' && i + 2 < len) {
      int hi = hex_value(src[i + 1]);
      int lo = hex_value(src[i + 2]);
      /* %00 would cut the value short for every C string reader. */
      if (hi >= 0 && lo >= 0 && (hi | lo) != 0) {
        dst[o++] = (char)(hi * 16 + lo);
        i += 2;
        continue;
      }
    }
    dst[o++] = (plus && ch == '+') ? ' ' : ch; /* NOLINT(bugprone-narrowing-conversions): char in, char out */
  }
  dst[o] = '\0';
  return o;
}

/* A NUL-terminated, decoded copy of s[0..len) in the arena, or NULL. */
static char *decode_copy(wf_ctx *c, const char *s, size_t len, int plus) {
  char *out = wf_alloc(c, len + 1);
  if (out != NULL) wf__decode(out, s, len, plus);
  return out;
}

/* ---- The request
 * ---------------------------------------------------------------- */

const char *wf_method(const wf_ctx *c) {
  return weft_http_request_method(c->req);
}

const char *wf_path(const wf_ctx *c) { return c->path; }

const char *wf_route_pattern(const wf_ctx *c) {
  return c->route != NULL ? c->route->pattern : NULL;
}

const char *wf_param(wf_ctx *c, const char *name) {
  for (size_t i = 0; i < c->n_params; i++) {
    wf_param_slot *s = &c->params[i];
    if (strcmp(s->name, name) != 0) continue;
    if (s->decoded == NULL) s->decoded = decode_copy(c, s->raw, s->raw_len, 0);
    return s->decoded;
  }
  return NULL;
}

/* Parses the query string into c->query once. */
static void parse_query(wf_ctx *c) {
  if (c->query_parsed) return;
  c->query_parsed = 1;
  const char *q = weft_http_request_query(c->req);
  if (*q == '\0') return;
  size_t cap = 1;
  for (const char *p = q; *p; p++) cap += *p == '&';
  c->query = wf_alloc(c, cap * sizeof *c->query);
  if (c->query == NULL) return;
  const char *p = q;
  for (;;) {
    const char *amp = strchr(p, '&');
    size_t len = amp ? (size_t)(amp - p) : strlen(p);
    if (len > 0) {
      const char *eq = memchr(p, '=', len);
      size_t klen = eq ? (size_t)(eq - p) : len;
      const char *key = decode_copy(c, p, klen, 1);
      const char *value = eq ? decode_copy(c, eq + 1, len - klen - 1, 1) : "";
      if (key == NULL || value == NULL) return;
      c->query[c->n_query].key = key;
      c->query[c->n_query].value = value;
      c->n_query++;
    }
    if (amp == NULL) break;
    p = amp + 1;
  }
}

const char *wf_query(wf_ctx *c, const char *key) {
  parse_query(c);
  for (size_t i = 0; i < c->n_query; i++)
    if (strcmp(c->query[i].key, key) == 0) return c->query[i].value;
  return NULL;
}

size_t wf_query_all(wf_ctx *c, const char *key, const char **values,
                    size_t max) {
  parse_query(c);
  size_t n = 0;
  for (size_t i = 0; i < c->n_query; i++) {
    if (strcmp(c->query[i].key, key) != 0) continue;
    if (n < max) values[n] = c->query[i].value;
    n++;
  }
  return n;
}

size_t wf_query_count(wf_ctx *c) {
  parse_query(c);
  return c->n_query;
}

int wf_query_at(wf_ctx *c, size_t i, const char **key, const char **value) {
  parse_query(c);
  if (i >= c->n_query) return UV_EINVAL;
  *key = c->query[i].key;
  *value = c->query[i].value;
  return 0;
}

const char *wf_header(const wf_ctx *c, const char *name) {
  return weft_http_request_header(c->req, name);
}

/* Copies s[0..len) with a NUL into the arena, or NULL. */
static char *arena_strndup(wf_ctx *c, const char *s, size_t len) {
  char *out = wf_alloc(c, len + 1);
  if (out == NULL) return NULL;
  memcpy(out, s, len);
  out[len] = '\0';
  return out;
}

/* Adds the "a=1; b=2" pairs of one Cookie header to c->cookies (room for
 * them was counted by the caller). */
static void parse_cookie_header(wf_ctx *c, const char *v) {
  const char *p = v;
  while (*p) {
    while (*p == ' ' || *p == '\t' || *p == ';') p++;
    const char *end = strchr(p, ';');
    if (end == NULL) end = p + strlen(p);
    const char *eq = memchr(p, '=', (size_t)(end - p));
    if (eq != NULL && eq > p) {
      const char *ne = eq;
      while (ne > p && (ne[-1] == ' ' || ne[-1] == '\t')) ne--;
      const char *vs = eq + 1, *ve = end;
      while (vs < ve && (*vs == ' ' || *vs == '\t')) vs++;
      while (ve > vs && (ve[-1] == ' ' || ve[-1] == '\t')) ve--;
      if (ve - vs >= 2 && *vs == '"' && ve[-1] == '"') {
        vs++;
        ve--;
      }
      char *name = arena_strndup(c, p, (size_t)(ne - p));
      char *value = arena_strndup(c, vs, (size_t)(ve - vs));
      if (name == NULL || value == NULL) return;
      c->cookies[c->n_cookies].key = name;
      c->cookies[c->n_cookies].value = value;
      c->n_cookies++;
    }
    p = end;
  }
}

/* Parses every Cookie header into c->cookies once. */
static void parse_cookies(wf_ctx *c) {
  if (c->cookies_parsed) return;
  c->cookies_parsed = 1;
  c->n_cookies = 0;
  size_t n = weft_http_request_header_count(c->req), cap = 0;
  const char *name, *value;
  for (size_t i = 0; i < n; i++) {
    weft_http_request_header_at(c->req, i, &name, &value);
    if (strcasecmp(name, "cookie") != 0) continue;
    cap++;
    for (const char *p = value; *p; p++) cap += *p == ';';
  }
  if (cap == 0) return;
  c->cookies = wf_alloc(c, cap * sizeof *c->cookies);
  if (c->cookies == NULL) return;
  for (size_t i = 0; i < n; i++) {
    weft_http_request_header_at(c->req, i, &name, &value);
    if (strcasecmp(name, "cookie") == 0) parse_cookie_header(c, value);
  }
}

const char *wf_cookie(wf_ctx *c, const char *name) {
  parse_cookies(c);
  for (size_t i = 0; i < c->n_cookies; i++)
    if (strcmp(c->cookies[i].key, name) == 0) return c->cookies[i].value;
  return NULL;
}

const void *wf_body(const wf_ctx *c, size_t *len) {
  return weft_http_request_body(c->req, len);
}

cJSON *wf_body_json(wf_ctx *c) {
  if (c->json != NULL) return c->json;
  size_t len;
  const char *body = wf_body(c, &len);
  if (len == 0) {
    wf_error(c, 400, "invalid JSON: the body is empty");
    return NULL;
  }
  long bad = app_utf8_invalid_at(body, len);
  if (bad >= 0) {
    int line, column;
    app_json_position(body, (size_t)bad, &line, &column);
    char *msg = wf_sprintf(c, "invalid JSON: not UTF-8 at line %d column %d",
                           line, column);
    wf_error(c, 400, msg != NULL ? msg : "invalid JSON: not UTF-8");
    return NULL;
  }
  app_json_error err;
  c->json = app_json_parse(body, len, c->app->opts.json_max_depth, &err);
  if (c->json == NULL) {
    char *msg = wf_sprintf(c, "invalid JSON: %s at line %d column %d",
                           err.message, err.line, err.column);
    wf_error(c, 400, msg != NULL ? msg : "invalid JSON");
  }
  return c->json;
}

/* ---- Request ids, locals, accessors
 * -------------------------------------------- */

/* Each thread numbers its ids after a random prefix of its own, so ids are
 * unique across threads and restarts without any shared counter. */
static _Thread_local uint32_t rid_prefix;
static _Thread_local uint64_t rid_counter;

/* Writes the next id of the thread (20 hex digits) into buf[24]. */
static void make_request_id(char *buf) {
  static const char hex[] = "0123456789abcdef";
  if (rid_prefix == 0) {
    uint32_t r = 0;
    if (uv_random(NULL, NULL, &r, sizeof r, 0, NULL) != 0)
      r = (uint32_t)weft_now_ns() ^ (uint32_t)(uintptr_t)&rid_counter;
    rid_prefix = r | 1;
  }
  uint64_t n = ++rid_counter;
  for (int i = 0; i < 8; i++) buf[i] = hex[(rid_prefix >> (28 - 4 * i)) & 15];
  for (int i = 0; i < 12; i++) buf[8 + i] = hex[(n >> (44 - 4 * i)) & 15];
  buf[20] = '\0';
}

const char *wf_request_id(wf_ctx *c) {
  if (c->request_id == NULL) {
    make_request_id(c->rid_buf);
    c->request_id = c->rid_buf;
  }
  return c->request_id;
}

const weft_http_request *wf_http_request(const wf_ctx *c) { return c->req; }

weft_http_response *wf_http_response(wf_ctx *c) { return c->res; }

void *wf_app_data(const wf_ctx *c) { return c->app->opts.data; }

int wf_set_local(wf_ctx *c, const char *key, void *value) {
  for (size_t i = 0; i < c->n_locals; i++)
    if (c->locals[i].key == key || strcmp(c->locals[i].key, key) == 0) {
      c->locals[i].value = value;
      return 0;
    }
  if (c->n_locals == WF_MAX_LOCALS) return UV_ENOMEM;
  c->locals[c->n_locals].key = key;
  c->locals[c->n_locals].value = value;
  c->n_locals++;
  return 0;
}

void *wf_local(const wf_ctx *c, const char *key) {
  for (size_t i = 0; i < c->n_locals; i++)
    if (c->locals[i].key == key || strcmp(c->locals[i].key, key) == 0)
      return c->locals[i].value;
  return NULL;
}
