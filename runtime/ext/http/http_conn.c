/* http_conn.c: one HTTP/1.1 server connection, parsed with llhttp.
 *
 * The connection reads into a fixed buffer and feeds llhttp. Everything a
 * handler sees (target, headers, body) is copied out of that buffer into
 * bounded storage of the connection, so the read buffer is free for the next
 * read and a request may span any number of reads. on_message_complete
 * pauses the parser: the request is answered before the bytes after it (a
 * pipelined request) are parsed, which keeps responses in request order.
 */
#include "weft_http.h"
#include "http_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <llhttp.h>

/* Which part of a request the connection waits for; each has a deadline. */
enum { PHASE_IDLE, PHASE_HEADERS, PHASE_BODY, PHASE_DONE };

/* Bodies up to this size are written in one write with the header block. */
#define HTTP_COALESCE_BYTES (16 * 1024)
/* After an error response the connection keeps reading (and discarding)
 * for at most this long before it closes, so that unread request bytes do
 * not make the kernel reset the connection before the client has read the
 * response. */
#define HTTP_LINGER_MS 1000
#define HTTP_LINGER_BYTES (256 * 1024)

typedef struct http_header {
  size_t name;  /* offsets of NUL-terminated strings in the arena */
  size_t value;
} http_header;

typedef struct http_buf {
  char *data;
  size_t len;
  size_t cap;
} http_buf;

struct weft_http_request {
  const char *method;
  const char *target;
  const char *path;
  const char *query;
  int version;
  int keep_alive;
  const char *arena;
  const http_header *headers;
  size_t header_count;
  const char *body;
  size_t body_len;
};

struct weft_http_response {
  int status;
  int close;
  int hijacked; /* the connection was taken over (weft__http_hijack) */
  http_buf headers; /* "Name: value\r\n" lines set by the handler */
  http_buf body;
};

typedef struct http_conn {
  weft_tcp *tcp;
  weft_http_limits lim;
  weft_http_handler handler;
  void *ctx;
  llhttp_settings_t settings;
  llhttp_t parser;

  char *rbuf;
  size_t rlen;
  size_t roff;
  const char *chunk;   /* start of the bytes given to llhttp_execute() */
  char prev_byte;      /* the byte before chunk, from the previous chunk */

  /* The request being parsed. */
  int phase;
  int64_t deadline;    /* of the current phase; -1: none */
  int err_status;      /* set by a callback that refuses the request */
  char *arena;
  size_t arena_len;
  size_t arena_cap;
  size_t header_bytes; /* request line and header bytes counted so far */
  http_header *headers;
  size_t header_count;
  int in_field;
  size_t field_start;
  size_t value_start;
  size_t url_start;
  int host_count;
  int send_continue;   /* the client waits for 100 Continue before its body */
  http_buf body;

  weft_http_request req;
  weft_http_response res;
  uint32_t served;
} http_conn;

/* ---- Small helpers -------------------------------------------------------- */

static int ascii_lower(int ch) {
  return ch >= 'A' && ch <= 'Z' ? ch + ('a' - 'A') : ch;
}

static int ascii_casecmp(const char *a, const char *b) {
  while (*a != '\0' && ascii_lower((unsigned char)*a) == ascii_lower((unsigned char)*b)) {
    a++;
    b++;
  }
  return ascii_lower((unsigned char)*a) - ascii_lower((unsigned char)*b);
}

/* RFC 9110 tchar: the characters of a token such as a header name. */
static int is_tchar(unsigned char ch) {
  if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9'))
    return 1;
  return ch != '\0' && strchr("!#$%&'*+-.^_`|~", ch) != NULL;
}

static int buf_reserve(http_buf *b, size_t extra) {
  if (b->cap - b->len > extra) return 0; /* keeps room for a trailing NUL */
  size_t cap = b->cap ? b->cap : 256;
  while (cap - b->len <= extra) {
    if (cap > SIZE_MAX / 2) return UV_ENOMEM;
    cap *= 2;
  }
  char *p = realloc(b->data, cap);
  if (p == NULL) return UV_ENOMEM;
  b->data = p;
  b->cap = cap;
  return 0;
}

static int buf_append(http_buf *b, const void *data, size_t len) {
  if (buf_reserve(b, len) != 0) return UV_ENOMEM;
  if (len > 0) memcpy(b->data + b->len, data, len);
  b->len += len;
  b->data[b->len] = '\0';
  return 0;
}

static int buf_appends(http_buf *b, const char *s) {
  return buf_append(b, s, strlen(s));
}

static void buf_free(http_buf *b) {
  free(b->data);
  b->data = NULL;
  b->len = b->cap = 0;
}

/* ---- Public helpers ------------------------------------------------------- */

void weft_http_limits_default(weft_http_limits *l) {
  l->max_header_bytes = 8 * 1024;
  l->max_headers = 100;
  l->max_body_bytes = 1024 * 1024;
  l->header_timeout_ms = 10 * 1000;
  l->body_timeout_ms = 30 * 1000;
  l->idle_timeout_ms = 60 * 1000;
  l->write_timeout_ms = 30 * 1000;
  l->max_requests = 1000;
  l->read_buffer_bytes = 16 * 1024;
}

/* Copies the caller's limits, taking the default for every field left 0. */
static void limits_resolve(weft_http_limits *out, const weft_http_limits *in) {
  weft_http_limits d;
  weft_http_limits_default(&d);
  *out = d;
  if (in == NULL) return;
  if (in->max_header_bytes) out->max_header_bytes = in->max_header_bytes;
  if (in->max_headers) out->max_headers = in->max_headers;
  if (in->max_body_bytes) out->max_body_bytes = in->max_body_bytes;
  if (in->header_timeout_ms) out->header_timeout_ms = in->header_timeout_ms;
  if (in->body_timeout_ms) out->body_timeout_ms = in->body_timeout_ms;
  if (in->idle_timeout_ms) out->idle_timeout_ms = in->idle_timeout_ms;
  if (in->write_timeout_ms) out->write_timeout_ms = in->write_timeout_ms;
  if (in->max_requests) out->max_requests = in->max_requests;
  if (in->read_buffer_bytes) out->read_buffer_bytes = in->read_buffer_bytes;
}

const char *weft_http_status_text(int status) {
  switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 416: return "Range Not Satisfiable";
    case 417: return "Expectation Failed";
    case 426: return "Upgrade Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
  }
}

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
    if (ascii_casecmp(req->arena + req->headers[i].name, name) == 0)
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

/* ---- The response --------------------------------------------------------- */

int weft_http_response_status(weft_http_response *res, int status) {
  if (status < 100 || status > 999) return UV_EINVAL;
  res->status = status;
  return 0;
}

/* Whether a comma-separated header value lists token (without case). */
static int value_has_token(const char *value, const char *token) {
  size_t n = strlen(token);
  const char *p = value;
  while (*p != '\0') {
    while (*p == ' ' || *p == '\t' || *p == ',') p++;
    const char *start = p;
    while (*p != '\0' && *p != ',') p++;
    const char *end = p;
    while (end > start && (end[-1] == ' ' || end[-1] == '\t')) end--;
    if ((size_t)(end - start) == n) {
      size_t i = 0;
      while (i < n && ascii_lower((unsigned char)start[i]) == ascii_lower((unsigned char)token[i])) i++;
      if (i == n) return 1;
    }
  }
  return 0;
}

int weft_http_response_header(weft_http_response *res, const char *name,
                              const char *value) {
  if (name == NULL || value == NULL || name[0] == '\0') return UV_EINVAL;
  for (const char *p = name; *p != '\0'; p++)
    if (!is_tchar((unsigned char)*p)) return UV_EINVAL;
  for (const char *p = value; *p != '\0'; p++)
    if (*p == '\r' || *p == '\n') return UV_EINVAL;
  if (ascii_casecmp(name, "Content-Length") == 0 ||
      ascii_casecmp(name, "Transfer-Encoding") == 0)
    return UV_EINVAL;
  /* The connection writes its own Connection header, from what it knows
   * and from this request to close. */
  if (ascii_casecmp(name, "Connection") == 0) {
    if (value_has_token(value, "close")) res->close = 1;
    return 0;
  }
  size_t before = res->headers.len;
  if (buf_appends(&res->headers, name) != 0 || buf_append(&res->headers, ": ", 2) != 0 ||
      buf_appends(&res->headers, value) != 0 || buf_append(&res->headers, "\r\n", 2) != 0) {
    res->headers.len = before;
    return UV_ENOMEM;
  }
  return 0;
}

int weft_http_response_body(weft_http_response *res, const void *data,
                            size_t len) {
  res->body.len = 0;
  return weft_http_response_append(res, data, len);
}

int weft_http_response_append(weft_http_response *res, const void *data,
                              size_t len) {
  if (data == NULL && len > 0) return UV_EINVAL;
  return buf_append(&res->body, data, len);
}

void weft_http_response_close(weft_http_response *res) {
  res->close = 1;
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
  if (c->header_bytes > c->lim.max_header_bytes || c->arena_cap - c->arena_len <= len)
    return refuse(c, 431);
  memcpy(c->arena + c->arena_len, at, len);
  c->arena_len += len;
  return 0;
}

static int arena_end_string(http_conn *c) {
  if (c->arena_len >= c->arena_cap) return refuse(c, 431);
  c->arena[c->arena_len++] = '\0';
  return 0;
}

static int64_t deadline_after(int64_t ms) {
  return ms < 0 ? -1 : weft_now() + ms;
}

static int on_message_begin(llhttp_t *p) {
  http_conn *c = conn_of(p);
  c->phase = PHASE_HEADERS;
  c->deadline = deadline_after(c->lim.header_timeout_ms);
  c->err_status = 0;
  c->arena_len = 0;
  /* The request line's spaces and CRLF. */
  c->header_bytes = 4;
  c->header_count = 0;
  c->in_field = 0;
  c->url_start = 0;
  c->host_count = 0;
  c->send_continue = 0;
  c->body.len = 0;
  return 0;
}

static int on_url(llhttp_t *p, const char *at, size_t len) {
  return arena_put(conn_of(p), at, len);
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
    if (!is_tchar((unsigned char)*q)) return refuse(c, 400);
  if (ascii_casecmp(name, "Host") == 0) c->host_count++;
  c->value_start = c->arena_len;
  return 0;
}

static int on_header_value(llhttp_t *p, const char *at, size_t len) {
  http_conn *c = conn_of(p);
  /* A value piece right after a line break is a folded line (obs-fold),
   * which llhttp 8 joins; RFC 9112 lets a server refuse it, which closes
   * a way to hide one header inside another. */
  char before = at > c->chunk ? at[-1] : c->prev_byte;
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
  const char *target = c->arena + c->url_start;
  size_t target_len = strlen(target);
  const char *q = memchr(target, '?', target_len);
  size_t path_len = q ? (size_t)(q - target) : target_len;
  size_t path_start = c->arena_len;
  if (c->arena_cap - c->arena_len <= path_len) return refuse(c, 431);
  memcpy(c->arena + c->arena_len, target, path_len);
  c->arena_len += path_len;
  c->arena[c->arena_len++] = '\0';

  weft_http_request *r = &c->req;
  r->method = llhttp_method_name((llhttp_method_t)llhttp_get_method(p));
  r->target = target;
  r->path = c->arena + path_start;
  r->query = q ? q + 1 : "";
  r->version = version;
  r->keep_alive = llhttp_should_keep_alive(p);
  r->arena = c->arena;
  r->headers = c->headers;
  r->header_count = c->header_count;

  /* A client that sent "Expect: 100-continue" waits for 100 Continue
   * before it sends the body; the connection sends it when it needs the
   * body, after the length has passed the limit above. */
  const char *expect = weft_http_request_header(r, "Expect");
  if (expect != NULL) {
    if (ascii_casecmp(expect, "100-continue") != 0) return refuse(c, 417);
    c->send_continue = version == 11;
  }

  c->phase = PHASE_BODY;
  c->deadline = deadline_after(c->lim.body_timeout_ms);
  return 0;
}

static int on_body(llhttp_t *p, const char *at, size_t len) {
  http_conn *c = conn_of(p);
  if (len > c->lim.max_body_bytes - c->body.len) return refuse(c, 413);
  if (buf_append(&c->body, at, len) != 0) return refuse(c, 500);
  return 0;
}

static int on_message_complete(llhttp_t *p) {
  http_conn *c = conn_of(p);
  c->phase = PHASE_DONE;
  /* The body is empty rather than NULL when there was none. */
  c->req.body = c->body.data ? c->body.data : "";
  c->req.body_len = c->body.len;
  /* After an upgrade (or CONNECT) the bytes are another protocol's. */
  if (llhttp_get_upgrade(p)) c->req.keep_alive = 0;
  return HPE_PAUSED;
}

/* Each connection has its own settings: connections run on several
 * executors (threads), and a shared lazily filled table would race. */
static void parser_settings(llhttp_settings_t *s) {
  llhttp_settings_init(s);
  s->on_message_begin = on_message_begin;
  s->on_url = on_url;
  s->on_url_complete = on_url_complete;
  s->on_method = on_method;
  s->on_version = on_version;
  s->on_header_field = on_header_field;
  s->on_header_field_complete = on_header_field_complete;
  s->on_header_value = on_header_value;
  s->on_header_value_complete = on_header_value_complete;
  s->on_headers_complete = on_headers_complete;
  s->on_body = on_body;
  s->on_message_complete = on_message_complete;
}

/* ---- I/O under the connection's deadlines --------------------------------- */

/* Runs a read or write under a deadline of the connection's own. Returns
 * the call's result; *ours is set when the connection's own deadline (and
 * not the caller's scope) stopped it. */
static ssize_t read_until(http_conn *c, int64_t deadline, int *ours) {
  weft_scope s;
  int64_t left = WEFT_NO_DEADLINE;
  if (deadline >= 0) {
    left = deadline - weft_now();
    if (left < 0) left = 0;
  }
  weft_scope_enter(&s, left);
  ssize_t n = weft_tcp_read(c->tcp, c->rbuf, c->lim.read_buffer_bytes);
  weft_scope_leave(&s);
  *ours = n < 0 && (n == UV_ETIMEDOUT || n == UV_ECANCELED) && weft_cancelled() == 0;
  return n;
}

static int write_all(http_conn *c, const void *data, size_t len, int *ours) {
  weft_scope s;
  weft_scope_enter(&s, c->lim.write_timeout_ms);
  int r = weft_tcp_write(c->tcp, data, len);
  weft_scope_leave(&s);
  *ours = r < 0 && (r == UV_ETIMEDOUT || r == UV_ECANCELED) && weft_cancelled() == 0;
  return r;
}

/* Formats the Date header's value for now into out (at least 30 bytes). */
static void http_date(char *out, size_t cap) {
  time_t now = time(NULL);
  struct tm tm;
  gmtime_r(&now, &tm);
  strftime(out, cap, "%a, %d %b %Y %H:%M:%S GMT", &tm);
}

/* Writes the response in c->res to the request in c->req. head_only leaves
 * out the body (HEAD); close writes "Connection: close". Returns 0 or an
 * error; *ours as for write_all(). */
static int write_response(http_conn *c, int head_only, int close, int *ours) {
  weft_http_response *res = &c->res;
  int status = res->status;
  /* 1xx, 204 and 304 responses have no body, and the first two no length. */
  int no_body = status < 200 || status == 204 || status == 304;
  char line[160];
  char date[40];
  http_date(date, sizeof date);
  http_buf out = {0};
  snprintf(line, sizeof line, "HTTP/1.1 %d %s\r\nDate: %s\r\n", status,
           weft_http_status_text(status), date);
  int r = buf_appends(&out, line);
  if (r == 0) r = buf_append(&out, res->headers.data, res->headers.len);
  if (r == 0 && !(status < 200 || status == 204)) {
    snprintf(line, sizeof line, "Content-Length: %zu\r\n", no_body ? (size_t)0 : res->body.len);
    if (status != 304) r = buf_appends(&out, line);
  }
  if (r == 0) {
    if (close)
      r = buf_appends(&out, "Connection: close\r\n");
    else if (c->req.version == 10)
      r = buf_appends(&out, "Connection: keep-alive\r\n");
  }
  if (r == 0) r = buf_append(&out, "\r\n", 2);
  int with_body = !head_only && !no_body && res->body.len > 0;
  if (r == 0 && with_body && res->body.len <= HTTP_COALESCE_BYTES) {
    r = buf_append(&out, res->body.data, res->body.len);
    with_body = 0;
  }
  *ours = 0;
  if (r == 0) r = write_all(c, out.data, out.len, ours);
  if (r == 0 && with_body) r = write_all(c, res->body.data, res->body.len, ours);
  buf_free(&out);
  return r;
}

static void response_reset(weft_http_response *res) {
  res->status = 200;
  res->close = 0;
  res->hijacked = 0;
  res->headers.len = 0;
  res->body.len = 0;
  if (res->headers.data) res->headers.data[0] = '\0';
}

/* Answers a request the connection refuses (4xx, 5xx) and closes. */
static int write_error(http_conn *c, int status, int *ours) {
  response_reset(&c->res);
  c->res.status = status;
  if (c->req.version == 0) c->req.version = 11;
  char text[80];
  snprintf(text, sizeof text, "%s\n", weft_http_status_text(status));
  int r = weft_http_response_header(&c->res, "Content-Type", "text/plain; charset=utf-8");
  if (r == 0) r = weft_http_response_body(&c->res, text, strlen(text));
  if (r == 0) r = write_response(c, 0, 1, ours);
  return r;
}

/* Sends FIN and reads what the client still sends, for a short while, so
 * that the client reads the last response before the connection closes. */
static void linger(http_conn *c) {
  weft_scope s;
  weft_scope_enter(&s, HTTP_LINGER_MS);
  size_t total = 0;
  /* The shutdown waits for queued writes, so it is under the deadline too. */
  if (weft_tcp_shutdown(c->tcp) != 0) total = HTTP_LINGER_BYTES;
  while (total < HTTP_LINGER_BYTES) {
    ssize_t n = weft_tcp_read(c->tcp, c->rbuf, c->lim.read_buffer_bytes);
    if (n <= 0) break;
    total += (size_t)n;
  }
  weft_scope_leave(&s);
}

/* Ends the connection after an error response of status. */
static int fail_with(http_conn *c, int status) {
  int ours = 0;
  int r = write_error(c, status, &ours);
  if (r == 0) {
    linger(c);
    return weft_cancelled();
  }
  return ours ? 0 : r;
}

/* Runs the handler for the parsed request and writes its response. Returns
 * 1 to go on with the connection, 0 when it should close, or an error. */
static int serve_request(http_conn *c) {
  response_reset(&c->res);
  c->served++;
  int r = c->handler(&c->req, &c->res, c->ctx);
  int cancelled = weft_cancelled();
  if (cancelled) return cancelled;
  /* A handler that took the connection over (a WebSocket) has used it up. */
  if (c->res.hijacked) return 0;
  if (r < 0) {
    int status = c->res.status >= 400 ? c->res.status : 500;
    r = fail_with(c, status);
    return r < 0 ? r : 0;
  }
  int close = c->res.close || !c->req.keep_alive || c->served >= c->lim.max_requests;
  int head_only = strcmp(c->req.method, "HEAD") == 0;
  int ours = 0;
  r = write_response(c, head_only, close, &ours);
  if (r < 0) return ours ? 0 : r;
  if (close) {
    linger(c);
    return weft_cancelled();
  }
  return 1;
}

/* ---- Taking a connection over (http_internal.h) ------------------------------ */

static http_conn *conn_of_request(const weft_http_request *req) {
  return (http_conn *)((const char *)req - offsetof(http_conn, req));
}

weft_tcp *weft__http_request_tcp(const weft_http_request *req) {
  return conn_of_request(req)->tcp;
}

const void *weft__http_request_rest(const weft_http_request *req, size_t *len) {
  http_conn *c = conn_of_request(req);
  /* Only an upgrade request stops the parser right after itself; after
   * any other request the buffered bytes are the next request's. */
  if (!llhttp_get_upgrade(&c->parser) || c->roff > c->rlen) {
    *len = 0;
    return c->rbuf;
  }
  *len = c->rlen - c->roff;
  return c->rbuf + c->roff;
}

void weft__http_hijack(weft_http_response *res) { res->hijacked = 1; }

/* ---- The connection loop -------------------------------------------------- */

static int conn_loop(http_conn *c) {
  parser_settings(&c->settings);
  llhttp_init(&c->parser, HTTP_REQUEST, &c->settings);
  c->parser.data = c;
  c->phase = PHASE_IDLE;
  /* A new connection gets the header timeout for its first byte: a client
   * that connects and sends nothing is a slow client too. */
  c->deadline = deadline_after(c->lim.header_timeout_ms);
  for (;;) {
    while (c->roff < c->rlen) {
      c->chunk = c->rbuf + c->roff;
      llhttp_errno_t e = llhttp_execute(&c->parser, c->chunk, c->rlen - c->roff);
      if (e == HPE_OK) {
        c->prev_byte = c->rbuf[c->rlen - 1];
        c->roff = c->rlen;
        break;
      }
      if (e == HPE_PAUSED) {
        const char *pos = llhttp_get_error_pos(&c->parser);
        c->roff = (size_t)(pos - c->rbuf);
        if (c->roff > 0) c->prev_byte = c->rbuf[c->roff - 1];
        llhttp_resume(&c->parser);
        int r = serve_request(c);
        if (r <= 0) return r;
        c->phase = PHASE_IDLE;
        c->deadline = deadline_after(c->lim.idle_timeout_ms);
        continue;
      }
      if (e == HPE_PAUSED_UPGRADE) {
        /* The bytes after an upgrade request belong to another protocol,
         * which this connection does not speak: answer and close. */
        if (c->phase != PHASE_DONE) return 0;
        c->roff = (size_t)(llhttp_get_error_pos(&c->parser) - c->rbuf);
        c->req.keep_alive = 0;
        int r = serve_request(c);
        return r < 0 ? r : 0;
      }
      return fail_with(c, c->err_status ? c->err_status : 400);
    }

    int ours = 0;
    if (c->send_continue && c->phase == PHASE_BODY) {
      static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
      c->send_continue = 0;
      int r = write_all(c, cont, sizeof cont - 1, &ours);
      if (r < 0) return ours ? 0 : r;
    }
    ssize_t n = read_until(c, c->deadline, &ours);
    if (n > 0) {
      c->rlen = (size_t)n;
      c->roff = 0;
      continue;
    }
    if (n == 0) return 0;
    if (!ours) return (int)n;
    /* The connection's own deadline passed: an idle connection just
     * closes, a request that is late gets 408 first. */
    if (c->phase == PHASE_IDLE) return 0;
    return fail_with(c, 408);
  }
}

int weft_http_serve_conn(weft_tcp *conn, const weft_http_limits *limits,
                         weft_http_handler handler, void *ctx) {
  if (conn == NULL || handler == NULL) return UV_EINVAL;
  /* Sizes past these are mistakes, and would overflow the arena's size. */
  if (limits != NULL && (limits->max_header_bytes > ((size_t)1 << 30) ||
                         limits->max_headers > ((size_t)1 << 20)))
    return UV_EINVAL;
  http_conn *c = calloc(1, sizeof *c);
  if (c == NULL) return UV_ENOMEM;
  c->tcp = conn;
  c->handler = handler;
  c->ctx = ctx;
  limits_resolve(&c->lim, limits);
  /* The arena holds the target, a copy of its path and every name and
   * value with its NUL, all within max_header_bytes of the request. */
  c->arena_cap = 2 * c->lim.max_header_bytes + 2 * c->lim.max_headers + 16;
  c->arena = malloc(c->arena_cap);
  c->headers = calloc(c->lim.max_headers, sizeof *c->headers);
  c->rbuf = malloc(c->lim.read_buffer_bytes);
  int r = UV_ENOMEM;
  if (c->arena != NULL && c->headers != NULL && c->rbuf != NULL) r = conn_loop(c);
  buf_free(&c->body);
  buf_free(&c->res.headers);
  buf_free(&c->res.body);
  free(c->rbuf);
  free(c->headers);
  free(c->arena);
  free(c);
  return r;
}
