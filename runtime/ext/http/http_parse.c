/* http_parse.c: the parser glue of a server connection: llhttp's
 * callbacks, which copy the request's target, names and values into the
 * connection's arena and its body into a buffer (within the limits), and
 * the accessors a handler reads the request with. The connection loop that
 * feeds the parser is in http_conn.c; the types they share, in
 * http_conn.h. */
#include "http_conn.h"

#include <stdlib.h>
#include <string.h>

/* ---- The request ---------------------------------------------------------- */

const char *weft_http_request_method(const weft_http_request *req) {
  return req->method;
}

const char *weft_http_request_target(const weft_http_request *req) {
  return req->target;
}

const char *weft_http_request_path(const weft_http_request *req) {
  return req->path;
}

const char *weft_http_request_query(const weft_http_request *req) {
  return req->query;
}

int weft_http_request_version(const weft_http_request *req) {
  return req->version;
}

const char *weft_http_request_header(const weft_http_request *req,
                                     const char *name) {
  for (size_t i = 0; i < req->header_count; i++) {
    if (weft__http_casecmp(req->arena + req->headers[i].name, name) == 0)
      return req->arena + req->headers[i].value;
  }
  return NULL;
}

size_t weft_http_request_header_count(const weft_http_request *req) {
  return req->header_count;
}

int weft_http_request_header_at(const weft_http_request *req, size_t i,
                                const char **name, const char **value) {
  if (i >= req->header_count) return UV_EINVAL;
  if (name) *name = req->arena + req->headers[i].name;
  if (value) *value = req->arena + req->headers[i].value;
  return 0;
}

const void *weft_http_request_body(const weft_http_request *req, size_t *len) {
  if (len) *len = req->body_len;
  return req->body;
}

int weft_http_request_keep_alive(const weft_http_request *req) {
  return req->keep_alive;
}

/* Grows the arena so that it has room for need more bytes and a NUL, up to
 * its limit. Returns 0, or -1 when the request is over the limit (431) or
 * memory is short (500), with the status set. */
static int refuse(http_conn *c, int status);

static int arena_room(http_conn *c, size_t need) {
  if (c->arena_cap - c->arena_len > need) return 0;
  if (c->arena_max - c->arena_len <= need) return refuse(c, 431);
  size_t cap = c->arena_cap;
  while (cap - c->arena_len <= need) cap *= 2;
  if (cap > c->arena_max) cap = c->arena_max;
  char *p = malloc(cap);
  if (p == NULL) return refuse(c, 500);
  memcpy(p, c->arena, c->arena_len);
  if (c->arena != c->space->arena) free(c->arena);
  c->arena = p;
  c->arena_cap = cap;
  return 0;
}

/* Makes room for one more header in the index. Returns 0 or -1 (500). */
static int headers_room(http_conn *c) {
  if (c->header_count < c->headers_cap) return 0;
  size_t cap = weft__http_size_min(2 * c->headers_cap, c->lim.max_headers);
  if (cap <= c->header_count) return refuse(c, 431);
  http_header *p = malloc(cap * sizeof *p);
  if (p == NULL) return refuse(c, 500);
  memcpy(p, c->headers, c->header_count * sizeof *p);
  if (c->headers != c->space->headers) free(c->headers);
  c->headers = p;
  c->headers_cap = cap;
  return 0;
}

/* ---- Parser callbacks ----------------------------------------------------- */

static http_conn *conn_of(llhttp_t *p) {
  return (http_conn *)p->data;
}

/* Refuses the request being parsed with status; the parser stops. */
static int refuse(http_conn *c, int status) {
  if (c->err_status == 0) c->err_status = status;
  return -1;
}

/* Copies header-section bytes into the arena, within the header limit. */
static int arena_put(http_conn *c, const char *at, size_t len) {
  c->header_bytes += len;
  if (c->header_bytes > c->lim.max_header_bytes) return refuse(c, 431);
  if (arena_room(c, len) != 0) return -1;
  memcpy(c->arena + c->arena_len, at, len);
  c->arena_len += len;
  return 0;
}

static int arena_end_string(http_conn *c) {
  if (arena_room(c, 0) != 0) return -1;
  c->arena[c->arena_len++] = '\0';
  return 0;
}

/* Points the request's strings into the arena, which may have moved since
 * they were last set (trailer fields grow it). */
static void request_bind(http_conn *c) {
  weft_http_request *r = &c->req;
  r->target = c->arena + c->url_start;
  r->path = c->arena + c->path_start;
  r->query = c->query_start ? c->arena + c->query_start : "";
  r->arena = c->arena;
  r->headers = c->headers;
  r->header_count = c->header_count;
}

static int on_message_begin(llhttp_t *p) {
  http_conn *c = conn_of(p);
  weft__http_phase_enter(c, PHASE_HEADERS, c->lim.header_timeout_ms);
  c->err_status = 0;
  c->arena_len = 0;
  /* The request line's spaces and CRLF. */
  c->header_bytes = 4;
  c->header_count = 0;
  c->in_field = 0;
  c->url_start = 0;
  c->path_start = 0;
  c->query_start = 0;
  c->host_count = 0;
  c->expect_value = 0;
  c->send_continue = 0;
  c->body.len = 0;
  return 0;
}

static int on_url(llhttp_t *p, const char *at, size_t len) {
  http_conn *c = conn_of(p);
  /* The request line alone passes the limit: the target is what is too
   * long (414, as nginx answers), not the header fields. */
  if (c->header_bytes + len > c->lim.max_header_bytes) return refuse(c, 414);
  return arena_put(c, at, len);
}

static int on_url_complete(llhttp_t *p) {
  return arena_end_string(conn_of(p));
}

static int on_method(llhttp_t *p, const char *at, size_t len) {
  (void)at;
  http_conn *c = conn_of(p);
  c->header_bytes += len;
  return c->header_bytes > c->lim.max_header_bytes ? refuse(c, 431) : 0;
}

static int on_version(llhttp_t *p, const char *at, size_t len) {
  return on_method(p, at, len);
}

static int on_header_field(llhttp_t *p, const char *at, size_t len) {
  http_conn *c = conn_of(p);
  if (!c->in_field) {
    if (c->header_count >= c->lim.max_headers) return refuse(c, 431);
    c->in_field = 1;
    c->field_start = c->arena_len;
    c->header_bytes += 4; /* ": " and CRLF */
  }
  return arena_put(c, at, len);
}

static int on_header_field_complete(llhttp_t *p) {
  http_conn *c = conn_of(p);
  if (!c->in_field) return refuse(c, 400);
  c->in_field = 0;
  if (arena_end_string(c) != 0) return -1;
  /* llhttp 8 lets spaces into a field name; RFC 9112 says a server must
   * refuse whitespace before the colon, so every name is checked here. */
  const char *name = c->arena + c->field_start;
  if (name[0] == '\0') return refuse(c, 400);
  for (const char *q = name; *q != '\0'; q++)
    if (!weft__http_is_tchar((unsigned char)*q)) return refuse(c, 400);
  /* Host and Expect matter to the connection; lengths first, since
   * most names are neither. */
  size_t name_len = c->arena_len - 1 - c->field_start;
  if (name_len == 4 && weft__http_casecmp(name, "Host") == 0) c->host_count++;
  if (name_len == 6 && weft__http_casecmp(name, "Expect") == 0 && c->phase == PHASE_HEADERS &&
      c->expect_value == 0)
    c->expect_value = c->arena_len;
  c->value_start = c->arena_len;
  return 0;
}

static int on_header_value(llhttp_t *p, const char *at, size_t len) {
  http_conn *c = conn_of(p);
  /* An empty value (RFC 9110 allows it) comes as an empty piece placed
   * after the line's CRLF: nothing to keep, and not a folded line. */
  if (len == 0) return 0;
  /* A value piece right after a line break is a folded line (obs-fold),
   * which llhttp 8 joins; RFC 9112 lets a server refuse it, which closes
   * a way to hide one header inside another. */
  char before = at > c->chunk ? at[-1] : c->prev_byte; /* NOLINT(bugprone-narrowing-conversions): char in, char out */
  if (before == '\n') return refuse(c, 400);
  return arena_put(c, at, len);
}

static int on_header_value_complete(llhttp_t *p) {
  http_conn *c = conn_of(p);
  while (c->arena_len > c->value_start &&
         (c->arena[c->arena_len - 1] == ' ' || c->arena[c->arena_len - 1] == '\t'))
    c->arena_len--;
  if (arena_end_string(c) != 0) return -1;
  /* Trailer fields of a chunked body are counted but not kept. */
  if (c->phase == PHASE_HEADERS) {
    if (headers_room(c) != 0) return -1;
    c->headers[c->header_count].name = c->field_start;
    c->headers[c->header_count].value = c->value_start;
    c->header_count++;
  }
  return 0;
}

static int on_headers_complete(llhttp_t *p) {
  http_conn *c = conn_of(p);
  if (llhttp_get_http_major(p) != 1) return refuse(c, 505);
  int version = 10 + llhttp_get_http_minor(p);
  if (version != 10 && version != 11) return refuse(c, 505);
  /* RFC 9112: an HTTP/1.1 request without exactly one Host is refused. */
  if (c->host_count > 1 || (version == 11 && c->host_count == 0)) return refuse(c, 400);
  if ((p->flags & F_CONTENT_LENGTH) && p->content_length > c->lim.max_body_bytes)
    return refuse(c, 413);

  /* The path is a copy of the target up to '?'; the query is the rest of
   * the target, already NUL-terminated. */
  size_t target_len = strlen(c->arena + c->url_start);
  const char *q = memchr(c->arena + c->url_start, '?', target_len);
  size_t path_len = q ? (size_t)(q - (c->arena + c->url_start)) : target_len;
  c->query_start = q ? (size_t)(q - c->arena) + 1 : 0;
  if (arena_room(c, path_len) != 0) return -1;
  c->path_start = c->arena_len;
  memcpy(c->arena + c->arena_len, c->arena + c->url_start, path_len);
  c->arena_len += path_len;
  c->arena[c->arena_len++] = '\0';

  weft_http_request *r = &c->req;
  request_bind(c);
  r->method = llhttp_method_name((llhttp_method_t)llhttp_get_method(p));
  r->version = version;
  r->keep_alive = llhttp_should_keep_alive(p);
  c->head = llhttp_get_method(p) == HTTP_HEAD;

  /* A client that sent "Expect: 100-continue" waits for 100 Continue
   * before it sends the body; the connection sends it when it needs the
   * body, after the length has passed the limit above. */
  const char *expect = c->expect_value ? c->arena + c->expect_value : NULL;
  if (expect != NULL) {
    if (weft__http_casecmp(expect, "100-continue") != 0) return refuse(c, 417);
    c->send_continue = version == 11;
  }

  weft__http_phase_enter(c, PHASE_BODY, c->lim.body_timeout_ms);
  return 0;
}

static int on_body(llhttp_t *p, const char *at, size_t len) {
  http_conn *c = conn_of(p);
  if (len > c->lim.max_body_bytes - c->body.len) return refuse(c, 413);
  if (weft__http_buf_append(&c->body, at, len) != 0) return refuse(c, 500);
  return 0;
}

static int on_message_complete(llhttp_t *p) {
  http_conn *c = conn_of(p);
  c->phase = PHASE_DONE;
  request_bind(c);
  /* The body is empty rather than NULL when there was none. */
  c->req.body = c->body.data ? c->body.data : "";
  c->req.body_len = c->body.len;
  /* After an upgrade (or CONNECT) the bytes are another protocol's. */
  if (llhttp_get_upgrade(p)) c->req.keep_alive = 0;
  return HPE_PAUSED;
}

/* The callbacks, the same for every connection: a constant table, filled
 * in at compile time (llhttp_settings_init() only zeroes the rest), so
 * connections on several executors share it without a race. */
const llhttp_settings_t weft__http_settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_url_complete = on_url_complete,
    .on_method = on_method,
    .on_version = on_version,
    .on_header_field = on_header_field,
    .on_header_field_complete = on_header_field_complete,
    .on_header_value = on_header_value,
    .on_header_value_complete = on_header_value_complete,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};
