/* http_conn.c: one HTTP/1.1 server connection, parsed with llhttp.
 *
 * The connection reads into a fixed buffer and feeds llhttp. Everything a
 * handler sees (target, headers, body) is copied out of that buffer into
 * bounded storage of the connection, so the read buffer is free for the next
 * read and a request may span any number of reads. on_message_complete
 * pauses the parser: the request is answered before the bytes after it (a
 * pipelined request) are parsed, which keeps responses in request order.
 *
 * Responses go into an output buffer of the connection, reused from one
 * response to the next, which is written when the connection has no
 * complete request left to parse (or the buffer is large): one write per
 * response, or per batch of pipelined responses. A large body or a file
 * is written from where it is (writev, sendfile) behind the head.
 *
 * The I/O is that of a socket, or of a buffer for weft_http_serve_memory():
 * conn_read(), conn_writev(), conn_sendfile() and linger() tell the two
 * apart; the rest of the connection does not know which it serves.
 */
#include "http_conn.h"
#include "http_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <llhttp.h>

/* Which part of a request the connection waits for; each has a deadline. */
enum { PHASE_IDLE, PHASE_HEADERS, PHASE_BODY, PHASE_DONE };

/* Bodies up to this size are copied behind the head and go out in the same
 * write; a larger body is written from where it is, in the same writev. */
#define HTTP_COALESCE_BYTES (16 * 1024)
/* Responses to pipelined requests wait in the output buffer until no
 * request is left in the input buffer, or until they reach this size. */
#define HTTP_OUT_FLUSH_BYTES (64 * 1024)
/* A file body is sent in pieces of this size, each within the write
 * timeout, so that the timeout bounds a stalled client, not a long file. */
#define HTTP_FILE_PIECE ((size_t)1 << 20)
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

typedef struct http_conn {
  weft_tcp *tcp;       /* NULL when serving a buffer */
  weft_http_limits lim;
  weft_http_handler handler;
  void *ctx;
  llhttp_settings_t settings;
  llhttp_t parser;

  /* Serving a buffer (weft_http_serve_memory): the input still to read,
   * and everything written. */
  const char *mem_in;
  size_t mem_left;
  http_buf *mem_out;

  char *rbuf;
  size_t rlen;
  size_t roff;
  const char *chunk;   /* start of the bytes given to llhttp_execute() */
  char prev_byte;      /* the byte before chunk, from the previous chunk */
  http_buf out;        /* response bytes not yet written */

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
  int head;            /* the request is HEAD */
  http_buf body;

  weft_http_request req;
  weft_http_response res;
  uint32_t served;
} http_conn;

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
    if (!weft__http_is_tchar((unsigned char)*q)) return refuse(c, 400);
  if (weft__http_casecmp(name, "Host") == 0) c->host_count++;
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
  c->head = llhttp_get_method(p) == HTTP_HEAD;
  r->arena = c->arena;
  r->headers = c->headers;
  r->header_count = c->header_count;

  /* A client that sent "Expect: 100-continue" waits for 100 Continue
   * before it sends the body; the connection sends it when it needs the
   * body, after the length has passed the limit above. */
  const char *expect = weft_http_request_header(r, "Expect");
  if (expect != NULL) {
    if (weft__http_casecmp(expect, "100-continue") != 0) return refuse(c, 417);
    c->send_continue = version == 11;
  }

  c->phase = PHASE_BODY;
  c->deadline = deadline_after(c->lim.body_timeout_ms);
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

/* ---- I/O: a socket, or a buffer ------------------------------------------ */

/* Whether an I/O result was the connection's own deadline firing rather
 * than the caller's scope ending. */
static int own_deadline(ssize_t r) {
  return (r == UV_ETIMEDOUT || r == UV_ECANCELED) && weft_cancelled() == 0;
}

/* Reads into rbuf within deadline (-1: none). Returns the count, 0 at the
 * end of the stream, or an error; *ours as for own_deadline(). */
static ssize_t conn_read(http_conn *c, int64_t deadline, int *ours) {
  *ours = 0;
  if (c->tcp == NULL) {
    size_t n = c->mem_left < c->lim.read_buffer_bytes ? c->mem_left : c->lim.read_buffer_bytes;
    memcpy(c->rbuf, c->mem_in, n);
    c->mem_in += n;
    c->mem_left -= n;
    return (ssize_t)n;
  }
  weft_scope s;
  int64_t left = WEFT_NO_DEADLINE;
  if (deadline >= 0) {
    left = deadline - weft_now();
    if (left < 0) left = 0;
  }
  weft_scope_enter(&s, left);
  ssize_t n = weft_tcp_read(c->tcp, c->rbuf, c->lim.read_buffer_bytes);
  weft_scope_leave(&s);
  *ours = n < 0 && own_deadline(n);
  return n;
}

/* Writes the n buffers in order, within the write timeout. Returns 0 or an
 * error; *ours as for own_deadline(). */
static int conn_writev(http_conn *c, const uv_buf_t *bufs, size_t n, int *ours) {
  *ours = 0;
  if (c->tcp == NULL) {
    for (size_t i = 0; i < n; i++)
      if (weft__http_buf_append(c->mem_out, bufs[i].base, bufs[i].len) != 0) return UV_ENOMEM;
    return 0;
  }
  weft_scope s;
  weft_scope_enter(&s, c->lim.write_timeout_ms);
  int r = weft_tcp_writev(c->tcp, bufs, n);
  weft_scope_leave(&s);
  *ours = r < 0 && own_deadline(r);
  return r;
}

/* Writes what the output buffer holds. */
static int conn_flush(http_conn *c, int *ours) {
  *ours = 0;
  if (c->out.len == 0) return 0;
  uv_buf_t b = uv_buf_init(c->out.data, (unsigned)c->out.len);
  int r = conn_writev(c, &b, 1, ours);
  c->out.len = 0;
  return r;
}

/* Reads len bytes of fd at offset onto the end of out. Returns 0, UV_EOF
 * when the file is shorter, or an error. */
static int file_read_into(http_buf *out, int fd, int64_t offset, size_t len) {
  if (weft__http_buf_reserve(out, len) != 0) return UV_ENOMEM;
  while (len > 0) {
    ssize_t n = pread(fd, out->data + out->len, len, (off_t)offset);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return uv_translate_sys_error(errno);
    if (n == 0) return UV_EOF;
    out->len += (size_t)n;
    offset += n;
    len -= (size_t)n;
  }
  out->data[out->len] = '\0';
  return 0;
}

/* Sends len bytes of fd from offset, in pieces that each have the write
 * timeout. Returns 0 or an error; *ours as for own_deadline(). */
static int conn_sendfile(http_conn *c, int fd, int64_t offset, int64_t len, int *ours) {
  *ours = 0;
  while (len > 0) {
    size_t piece = (uint64_t)len < HTTP_FILE_PIECE ? (size_t)len : HTTP_FILE_PIECE;
    int r;
    if (c->tcp == NULL) {
      r = file_read_into(c->mem_out, fd, offset, piece);
    } else {
      weft_scope s;
      weft_scope_enter(&s, c->lim.write_timeout_ms);
      r = weft_tcp_sendfile(c->tcp, fd, offset, piece);
      weft_scope_leave(&s);
      *ours = r < 0 && own_deadline(r);
    }
    if (r < 0) return r;
    offset += (int64_t)piece;
    len -= (int64_t)piece;
  }
  return 0;
}

/* Sends FIN and reads what the client still sends, for a short while, so
 * that the client reads the last response before the connection closes. */
static void linger(http_conn *c) {
  if (c->tcp == NULL) return;
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

/* Writes what is pending and closes gracefully. Returns 0, the caller's
 * cancellation, or a write error. */
static int close_after(http_conn *c) {
  int ours = 0;
  int r = conn_flush(c, &ours);
  if (r < 0) return ours ? 0 : r;
  linger(c);
  return weft_cancelled();
}

/* ---- Responses ------------------------------------------------------------ */

static http_conn *conn_of_response(weft_http_response *res) {
  return (http_conn *)((char *)res - offsetof(http_conn, res));
}

/* Whether the connection closes after the response being made. */
static int must_close(const http_conn *c) {
  return c->res.close || !c->req.keep_alive || c->served >= c->lim.max_requests;
}

/* The Connection field of a response. */
static int connection_field(const http_conn *c, int close) {
  if (close) return HTTP_CONN_CLOSE;
  return c->req.version == 10 ? HTTP_CONN_KEEP_ALIVE : HTTP_CONN_NONE;
}

/* A result of respond(): nothing of the response went out, and the
 * connection should answer 500 instead. */
#define HTTP_RESPOND_FAILED 1

/* Writes the response in c->res (a buffered or a file body): into the
 * output buffer when it is small, at once otherwise. Returns 0,
 * HTTP_RESPOND_FAILED, or an error; *ours as for own_deadline(). */
static int respond(http_conn *c, int close, int *ours) {
  weft_http_response *res = &c->res;
  *ours = 0;
  int send_body = !res->head_only && !weft__http_status_no_body(res->status);
  size_t mark = c->out.len;
  if (res->file_fd >= 0) {
    int r = weft__http_head(&c->out, res, 'L', (uint64_t)res->file_len, connection_field(c, close));
    if (r == 0 && send_body && res->file_len > 0) {
      if (res->file_len <= HTTP_COALESCE_BYTES) {
        /* A small file goes behind the head, in one write. */
        r = file_read_into(&c->out, res->file_fd, res->file_offset, (size_t)res->file_len);
      } else {
        r = conn_flush(c, ours);
        if (r == 0) r = conn_sendfile(c, res->file_fd, res->file_offset, res->file_len, ours);
        weft__http_response_close_file(res);
        return r;
      }
    }
    weft__http_response_close_file(res);
    if (r < 0) {
      c->out.len = mark;
      return HTTP_RESPOND_FAILED;
    }
    return 0;
  }
  int r = weft__http_head(&c->out, res, 'L', res->body.len, connection_field(c, close));
  if (r < 0) {
    c->out.len = mark;
    return HTTP_RESPOND_FAILED;
  }
  if (!send_body || res->body.len == 0) return 0;
  if (res->body.len <= HTTP_COALESCE_BYTES) {
    if (weft__http_buf_append(&c->out, res->body.data, res->body.len) != 0)
      return HTTP_RESPOND_FAILED;
    return 0;
  }
  /* A large body is written from where it is, behind the head. */
  uv_buf_t b[2];
  b[0] = uv_buf_init(c->out.data, (unsigned)c->out.len);
  b[1] = uv_buf_init(res->body.data, (unsigned)0);
  b[1].len = res->body.len;
  r = conn_writev(c, b, 2, ours);
  c->out.len = 0;
  return r;
}

/* Answers a request the connection refuses (4xx, 5xx) and closes. */
static int fail_with(http_conn *c, int status) {
  weft__http_response_reset(&c->res);
  c->res.status = status;
  if (c->req.version == 0) c->req.version = 11;
  char text[80];
  const char *phrase = weft_http_status_text(status);
  size_t n = strlen(phrase);
  memcpy(text, phrase, n);
  text[n++] = '\n';
  int ours = 0;
  int r = weft_http_response_header(&c->res, "Content-Type", "text/plain; charset=utf-8");
  if (r == 0) r = weft_http_response_body(&c->res, text, n);
  if (r == 0) r = respond(c, 1, &ours);
  if (r == HTTP_RESPOND_FAILED) r = UV_ENOMEM;
  if (r < 0) return ours ? 0 : r;
  return close_after(c);
}

/* Appends the chunk framing of len bytes (chunked streams only) to b[*n]
 * and the bytes themselves. */
static void stream_piece(const weft_http_response *res, char *prefix,
                         const void *data, size_t len, uv_buf_t *b, size_t *n) {
  if (res->stream == HTTP_STREAM_CHUNKED) {
    static const char hex[] = "0123456789abcdef";
    char digits[2 * sizeof(size_t)];
    size_t d = sizeof digits;
    size_t v = len;
    do {
      digits[--d] = hex[v & 15];
      v >>= 4;
    } while (v != 0);
    size_t plen = sizeof digits - d;
    memcpy(prefix, digits + d, plen);
    prefix[plen] = '\r';
    prefix[plen + 1] = '\n';
    b[(*n)++] = uv_buf_init(prefix, (unsigned)(plen + 2));
  }
  b[*n] = uv_buf_init((char *)data, 0);
  b[(*n)++].len = len;
  if (res->stream == HTTP_STREAM_CHUNKED) b[(*n)++] = uv_buf_init((char *)"\r\n", 2);
}

int weft_http_response_start(weft_http_response *res) {
  if (res->stream || res->file_fd >= 0 || res->hijacked) return UV_EINVAL;
  http_conn *c = conn_of_response(res);
  int close = must_close(c);
  int framing = 0;
  int stream;
  if (weft__http_status_no_body(res->status)) {
    stream = HTTP_STREAM_DROPPED;
  } else if (c->req.version >= 11) {
    stream = HTTP_STREAM_CHUNKED;
    framing = 'C';
  } else {
    /* HTTP/1.0 has no chunks: the end of the body is the end of the
     * connection. */
    stream = HTTP_STREAM_UNTIL_CLOSE;
    close = 1;
    res->close = 1;
  }
  /* HEAD gets the head a GET would have had, and no body. */
  if (res->head_only) stream = HTTP_STREAM_DROPPED;
  size_t mark = c->out.len;
  int r = weft__http_head(&c->out, res, framing, 0, connection_field(c, close));
  if (r < 0) {
    c->out.len = mark;
    return r;
  }
  res->stream = stream;
  int ours = 0;
  /* Pipelined responses still in the output buffer, this head, and a body
   * buffered before the start go out together. */
  uv_buf_t b[4];
  size_t n = 0;
  char prefix[2 * sizeof(size_t) + 2];
  b[n++] = uv_buf_init(c->out.data, (unsigned)c->out.len);
  if (res->body.len > 0 && stream != HTTP_STREAM_DROPPED)
    stream_piece(res, prefix, res->body.data, res->body.len, b, &n);
  r = conn_writev(c, b, n, &ours);
  c->out.len = 0;
  res->body.len = 0;
  if (res->body.data) res->body.data[0] = '\0';
  if (r < 0) res->stream_error = r;
  return r;
}

int weft_http_response_write(weft_http_response *res, const void *data,
                             size_t len) {
  if (!res->stream || (data == NULL && len > 0)) return UV_EINVAL;
  if (res->stream_error) return res->stream_error;
  if (len == 0 || res->stream == HTTP_STREAM_DROPPED) return 0;
  http_conn *c = conn_of_response(res);
  uv_buf_t b[3];
  size_t n = 0;
  char prefix[2 * sizeof(size_t) + 2];
  stream_piece(res, prefix, data, len, b, &n);
  int ours = 0;
  int r = conn_writev(c, b, n, &ours);
  if (r < 0) res->stream_error = r;
  return r;
}

/* Ends a streamed response once its handler has returned rc. Returns as
 * serve_request(). */
static int finish_stream(http_conn *c, int rc) {
  weft_http_response *res = &c->res;
  /* A body cut short ends with the connection, without its last chunk,
   * so the client sees it is incomplete. */
  if (res->stream_error || rc < 0) return 0;
  if (res->stream == HTTP_STREAM_CHUNKED &&
      weft__http_buf_append(&c->out, "0\r\n\r\n", 5) != 0)
    return 0;
  if (res->stream == HTTP_STREAM_UNTIL_CLOSE || must_close(c)) return close_after(c);
  return 1;
}

/* Runs the handler for the parsed request and writes its response. Returns
 * 1 to go on with the connection, 0 when it should close, or an error. */
static int serve_request(http_conn *c) {
  weft__http_response_reset(&c->res);
  c->res.head_only = c->head;
  c->served++;
  int ours = 0;
  /* A handler that takes the connection over writes to the socket itself:
   * the responses before its request go first. */
  if (llhttp_get_upgrade(&c->parser)) {
    int r = conn_flush(c, &ours);
    if (r < 0) return ours ? 0 : r;
  }
  int r = c->handler(&c->req, &c->res, c->ctx);
  int cancelled = weft_cancelled();
  if (cancelled) return cancelled;
  /* A handler that took the connection over (a WebSocket) has used it up. */
  if (c->res.hijacked) return 0;
  if (c->res.stream) return finish_stream(c, r);
  if (r < 0) {
    int status = c->res.status >= 400 ? c->res.status : 500;
    r = fail_with(c, status);
    return r < 0 ? r : 0;
  }
  int close = must_close(c);
  r = respond(c, close, &ours);
  if (r == HTTP_RESPOND_FAILED) {
    r = fail_with(c, 500);
    return r < 0 ? r : 0;
  }
  if (r < 0) return ours ? 0 : r;
  if (close) return close_after(c);
  /* Pipelined responses are held back to be written together, up to a
   * point. */
  if (c->out.len >= HTTP_OUT_FLUSH_BYTES) {
    r = conn_flush(c, &ours);
    if (r < 0) return ours ? 0 : r;
  }
  return 1;
}

/* ---- Taking a connection over (http_internal.h) ------------------------------ */

static http_conn *conn_of_request(const weft_http_request *req) {
  return (http_conn *)((const char *)req - offsetof(http_conn, req));
}

weft_tcp *weft__http_request_tcp(const weft_http_request *req) {
  http_conn *c = conn_of_request(req);
  /* Whoever writes to the socket directly writes after the responses
   * already made; a write error shows again on the caller's next write. */
  int ours = 0;
  if (c->tcp != NULL) conn_flush(c, &ours);
  return c->tcp;
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
        if (c->phase != PHASE_DONE) return close_after(c);
        c->roff = (size_t)(llhttp_get_error_pos(&c->parser) - c->rbuf);
        c->req.keep_alive = 0;
        int r = serve_request(c);
        return r < 0 ? r : 0;
      }
      return fail_with(c, c->err_status ? c->err_status : 400);
    }

    /* Everything buffered is answered: what is pending goes out before
     * the connection waits for more. */
    int ours = 0;
    if (c->send_continue && c->phase == PHASE_BODY) {
      static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
      c->send_continue = 0;
      if (weft__http_buf_append(&c->out, cont, sizeof cont - 1) != 0) return UV_ENOMEM;
    }
    int r = conn_flush(c, &ours);
    if (r < 0) return ours ? 0 : r;
    ssize_t n = conn_read(c, c->deadline, &ours);
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

/* Serves a socket (tcp) or a buffer (mem_out not NULL). */
static int serve(weft_tcp *tcp, const char *in, size_t len, http_buf *mem_out,
                 const weft_http_limits *limits, weft_http_handler handler,
                 void *ctx) {
  if (handler == NULL) return UV_EINVAL;
  /* Sizes past these are mistakes, and would overflow the arena's size. */
  if (limits != NULL && (limits->max_header_bytes > ((size_t)1 << 30) ||
                         limits->max_headers > ((size_t)1 << 20)))
    return UV_EINVAL;
  http_conn *c = calloc(1, sizeof *c);
  if (c == NULL) return UV_ENOMEM;
  c->tcp = tcp;
  c->mem_in = in;
  c->mem_left = len;
  c->mem_out = mem_out;
  c->handler = handler;
  c->ctx = ctx;
  c->res.file_fd = -1;
  limits_resolve(&c->lim, limits);
  /* The arena holds the target, a copy of its path and every name and
   * value with its NUL, all within max_header_bytes of the request. */
  c->arena_cap = 2 * c->lim.max_header_bytes + 2 * c->lim.max_headers + 16;
  c->arena = malloc(c->arena_cap);
  c->headers = calloc(c->lim.max_headers, sizeof *c->headers);
  c->rbuf = malloc(c->lim.read_buffer_bytes);
  int r = UV_ENOMEM;
  if (c->arena != NULL && c->headers != NULL && c->rbuf != NULL) r = conn_loop(c);
  weft__http_buf_free(&c->body);
  weft__http_buf_free(&c->out);
  weft__http_response_free(&c->res);
  free(c->rbuf);
  free(c->headers);
  free(c->arena);
  free(c);
  return r;
}

int weft_http_serve_conn(weft_tcp *conn, const weft_http_limits *limits,
                         weft_http_handler handler, void *ctx) {
  if (conn == NULL) return UV_EINVAL;
  return serve(conn, NULL, 0, NULL, limits, handler, ctx);
}

int weft_http_serve_memory(const void *in, size_t len,
                           const weft_http_limits *limits,
                           weft_http_handler handler, void *ctx, char **out,
                           size_t *out_len) {
  if (out != NULL) *out = NULL;
  if (out_len != NULL) *out_len = 0;
  if ((in == NULL && len > 0) || out == NULL || out_len == NULL) return UV_EINVAL;
  if (weft_park_self() == NULL) return WEFT_ENOTASK;
  http_buf mem = {0};
  int r = serve(NULL, in, len, &mem, limits, handler, ctx);
  if (r == UV_EINVAL) {
    weft__http_buf_free(&mem);
    return r;
  }
  if (mem.data == NULL && weft__http_buf_append(&mem, "", 0) != 0) return UV_ENOMEM;
  *out = mem.data;
  *out_len = mem.len;
  return r;
}
