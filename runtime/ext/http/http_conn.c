/* http_conn.c: one HTTP/1.1 server connection, parsed with llhttp.
 *
 * The connection reads into a buffer and feeds llhttp. Everything a handler
 * sees (target, headers, body) is copied out of that buffer into bounded
 * storage of the connection, so the read buffer is free for the next read
 * and a request may span any number of reads. on_message_complete pauses
 * the parser: the request is answered before the bytes after it (a
 * pipelined request) are parsed, which keeps responses in request order.
 * The parser's callbacks and the request a handler reads are in
 * http_parse.c; the connection's type, in http_conn.h.
 *
 * Memory: a connection that waits for its next request holds no buffer of
 * its own. It reads into a small buffer on its task's stack; the bytes of a
 * request are parsed into a workspace (a read buffer, the arena of names
 * and values, and the header index in one block), taken from a cache of
 * the executor when a request begins and given back once it is answered.
 * A request larger than the workspace grows the part it needs, up to the
 * limits, and frees the growth when it is done.
 *
 * Responses go into an output buffer of the connection, reused from one
 * response to the next, which is written when the connection has no
 * complete request left to parse (or the buffer is large): one write per
 * response, or per batch of pipelined responses. A large body or a file
 * is written from where it is (writev, sendfile) behind the head.
 *
 * Deadlines: the connection waits inside one scope of its own, entered
 * once, whose deadline is moved only when it must be (a timer-heap update
 * per move): it is armed before the connection's own writes and reads and
 * disarmed while a handler runs, which must not feel the connection's
 * timeouts. A read's deadline may fire early (it was armed for a write);
 * the read then waits again for the time left.
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
/* Bytes a connection waiting for its next request reads on its task's
 * stack; most requests fit, and a full read moves on to the workspace. */
#define HTTP_IDLE_READ 1024
/* Workspaces an executor keeps for its next requests. */
#define HTTP_SPACE_CACHE 8
/* Output and response buffers larger than this are freed between
 * requests; smaller ones are kept for the next response. */
#define HTTP_KEEP_BYTES 2048

/* What each executor (thread) keeps for the connections it serves. */
typedef struct http_exec_state {
  size_t live;                          /* connections being served */
  size_t cached;
  http_space *cache[HTTP_SPACE_CACHE];  /* workspaces for the next requests */
  http_conn *stoppable;                 /* connections with a stop event */
} http_exec_state;

static _Thread_local http_exec_state http_exec;

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

/* ---- The workspace -------------------------------------------------------- */

/* Gives c a workspace: from the executor's cache, or a new one. Returns 0
 * or UV_ENOMEM. */
static int space_take(http_conn *c) {
  if (c->space != NULL) return 0;
  http_space *s = http_exec.cached > 0 ? http_exec.cache[--http_exec.cached]
                                       : malloc(sizeof *s);
  if (s == NULL) return UV_ENOMEM;
  c->space = s;
  c->arena = s->arena;
  c->arena_cap = weft__http_size_min(sizeof s->arena, c->arena_max);
  c->headers = s->headers;
  c->headers_cap = weft__http_size_min(HTTP_SPACE_HEADERS, c->lim.max_headers);
  return 0;
}

/* Frees what grew past the workspace and gives the workspace back, once no
 * request is being read or served. Large response buffers go too. */
static void space_give_back(http_conn *c) {
  if (c->space != NULL) {
    if (c->arena != c->space->arena) free(c->arena);
    if (c->headers != c->space->headers) free(c->headers);
    if (http_exec.cached < HTTP_SPACE_CACHE)
      http_exec.cache[http_exec.cached++] = c->space;
    else
      free(c->space);
    c->space = NULL;
  }
  c->arena = NULL;
  c->arena_cap = c->arena_len = 0;
  c->headers = NULL;
  c->headers_cap = 0;
  free(c->rheap);
  c->rheap = NULL;
  c->rheap_cap = 0;
  if (c->body.cap > HTTP_KEEP_BYTES) weft__http_buf_free(&c->body);
  if (c->out.cap > HTTP_KEEP_BYTES) weft__http_buf_free(&c->out);
  if (c->res.headers.cap > HTTP_KEEP_BYTES) weft__http_buf_free(&c->res.headers);
  if (c->res.body.cap > HTTP_KEEP_BYTES) weft__http_buf_free(&c->res.body);
}

/* The buffer and size of the next read: a connection waiting for its next
 * request reads on its stack (idle_buf); one within a request reads into
 * its workspace, or a larger buffer once reads fill that. Returns the size,
 * or 0 when memory is short. */
static size_t read_buffer(http_conn *c, char *idle_buf) {
  size_t limit = c->lim.read_buffer_bytes;
  if (c->phase == PHASE_IDLE && c->rcap_last == 0) {
    c->rbuf = idle_buf;
    return weft__http_size_min(HTTP_IDLE_READ, limit);
  }
  if (space_take(c) != 0) return 0;
  size_t cap = weft__http_size_min(HTTP_SPACE_READ, limit);
  if (c->rheap != NULL) cap = c->rheap_cap;
  /* A read that filled its buffer says more is coming: the next one gets
   * twice the room, up to the limit. */
  if (c->rcap_last >= cap && cap < limit) {
    size_t grown = weft__http_size_min(2 * cap, limit);
    char *p = realloc(c->rheap, grown);
    if (p == NULL) return 0;
    c->rheap = p;
    c->rheap_cap = cap = grown;
  }
  c->rbuf = c->rheap != NULL ? c->rheap : c->space->read;
  return cap;
}

/* ---- Deadlines ------------------------------------------------------------ */

/* The loop's cached time: a load, where weft_now() reads the clock. It may
 * lag by the time the executor has been running tasks, which makes a
 * deadline computed from it a little early, never late. */
static int64_t coarse_now(void) {
  return (int64_t)uv_now(weft_loop());
}

/* Sets the connection scope's deadline ms from now (< 0: none). */
static void scope_arm(http_conn *c, int64_t ms, int for_write) {
  if (ms < 0) {
    if (c->armed != DEADLINE_NONE) weft_scope_set_timeout(&c->scope, WEFT_NO_DEADLINE);
    c->armed = DEADLINE_NONE;
    return;
  }
  weft_scope_set_timeout(&c->scope, ms);
  c->armed_at = coarse_now();
  c->armed = c->armed_at + ms;
  c->armed_write = for_write;
}

/* Clears the connection scope's deadline, before a handler runs. */
static void scope_disarm(http_conn *c) {
  if (c->armed == DEADLINE_NONE) return;
  weft_scope_set_timeout(&c->scope, WEFT_NO_DEADLINE);
  c->armed = DEADLINE_NONE;
}

/* After a wait in the connection's scope failed with a cancellation code:
 * a cancelled scope stays cancelled, so it is left and entered again
 * (without a deadline). Returns the caller's cancellation code, or 0 when
 * the connection's own deadline or stop ended the wait (or it was not the
 * scope: the socket was closed). */
static int scope_renew(http_conn *c) {
  weft_scope_leave(&c->scope);
  int outer = weft_cancelled();
  weft_scope_enter(&c->scope, WEFT_NO_DEADLINE);
  c->armed = DEADLINE_NONE;
  return outer;
}

/* Before a read: the scope's deadline must not come (much) after the
 * phase's. One that comes before it is kept: when it fires, the read
 * waits again for the time left. */
static void arm_for_read(http_conn *c) {
  if (c->deadline == DEADLINE_PENDING)
    c->deadline = c->phase_ms < 0 ? DEADLINE_NONE : coarse_now() + c->phase_ms;
  if (c->deadline == DEADLINE_NONE) {
    scope_disarm(c);
    return;
  }
  if (c->armed != DEADLINE_NONE && c->armed <= c->deadline + c->phase_ms / 8) return;
  int64_t left = c->deadline - coarse_now();
  scope_arm(c, left < 0 ? 0 : left, 0);
}

/* Before one of the connection's own writes: a write gets the whole write
 * timeout (a deadline that fires cuts it and closes the socket), so the
 * deadline is moved unless a write armed it a moment ago. */
static void arm_for_write(http_conn *c) {
  int64_t ms = c->lim.write_timeout_ms;
  if (ms < 0) {
    scope_disarm(c);
    return;
  }
  if (c->armed != DEADLINE_NONE && c->armed_write && coarse_now() - c->armed_at <= ms / 8)
    return;
  scope_arm(c, ms, 1);
}

/* ---- I/O: a socket, or a buffer ------------------------------------------ */

/* Whether an I/O result was a deadline of the connection's own (a scope
 * around one write) rather than the caller's scope ending. */
static int own_deadline(ssize_t r) {
  return (r == UV_ETIMEDOUT || r == UV_ECANCELED) && weft_cancelled() == 0;
}

/* Whether the connection was asked to stop (weft_http_serve_opts.stop). */
static int stopping(const http_conn *c) {
  return c->stop != NULL && weft_event_is_set(c->stop);
}

/* Reads up to cap bytes into c->rbuf within the phase's deadline. Returns
 * the count, 0 at the end of the stream or when a stop ended an idle wait,
 * or an error; *ours is set when the error is the phase's deadline passing
 * (or the socket closed under it) rather than the caller's scope ending. */
static ssize_t conn_read(http_conn *c, size_t cap, int *ours) {
  *ours = 0;
  if (c->tcp == NULL) {
    size_t n = c->mem_left < cap ? c->mem_left : cap;
    memcpy(c->rbuf, c->mem_in, n);
    c->mem_in += n;
    c->mem_left -= n;
    return (ssize_t)n;
  }
  for (;;) {
    arm_for_read(c);
    c->idle_wait = c->phase == PHASE_IDLE;
    ssize_t n = weft_tcp_read(c->tcp, c->rbuf, cap);
    c->idle_wait = 0;
    if (n != UV_ETIMEDOUT && n != UV_ECANCELED) return n;
    int outer = scope_renew(c);
    if (outer != 0) return outer;
    if (c->stopped) return 0;
    /* A deadline armed for an earlier write fired before the phase's:
     * wait again for the rest. */
    if (n == UV_ETIMEDOUT && c->deadline >= 0 && weft_now() < c->deadline) continue;
    *ours = 1;
    return n;
  }
}

/* Writes the n buffers in order, within the write timeout. Returns 0 or an
 * error; *ours as for conn_read(). */
static int conn_writev(http_conn *c, const uv_buf_t *bufs, size_t n, int *ours) {
  *ours = 0;
  if (c->tcp == NULL) {
    for (size_t i = 0; i < n; i++)
      if (weft__http_buf_append(c->mem_out, bufs[i].base, bufs[i].len) != 0) return UV_ENOMEM;
    return 0;
  }
  if (c->in_handler) {
    /* A handler's write: the handler goes on afterwards, and must not
     * inherit a deadline, so the write has a scope of its own. */
    weft_scope s;
    weft_scope_enter(&s, c->lim.write_timeout_ms);
    int r = weft_tcp_writev(c->tcp, bufs, n);
    weft_scope_leave(&s);
    *ours = r < 0 && own_deadline(r);
    return r;
  }
  arm_for_write(c);
  int r = weft_tcp_writev(c->tcp, bufs, n);
  if (r == UV_ETIMEDOUT || r == UV_ECANCELED) {
    int outer = scope_renew(c);
    if (outer != 0) return outer;
    *ours = 1;
  }
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
#ifdef _WIN32
    /* No pread() on Windows: libuv's synchronous read at an offset. */
    uv_fs_t req;
    uv_buf_t b = uv_buf_init(out->data + out->len,
                             len > INT32_MAX ? INT32_MAX : (unsigned)len);
    int64_t n = uv_fs_read(NULL, &req, fd, &b, 1, offset, NULL);
    uv_fs_req_cleanup(&req);
    if (n < 0) return (int)n;
#else
    ssize_t n = pread(fd, out->data + out->len, len, (off_t)offset);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return uv_translate_sys_error(errno);
#endif
    if (n == 0) return UV_EOF;
    out->len += (size_t)n;
    offset += n;
    len -= (size_t)n;
  }
  out->data[out->len] = '\0';
  return 0;
}

/* Sends len bytes of fd from offset, in pieces that each have the write
 * timeout. Returns 0 or an error; *ours as for conn_read(). */
static int conn_sendfile(http_conn *c, int fd, int64_t offset, int64_t len, int *ours) {
  *ours = 0;
  while (len > 0) {
    size_t piece = (uint64_t)len < HTTP_FILE_PIECE ? (size_t)len : HTTP_FILE_PIECE;
    int r;
    if (c->tcp == NULL) {
      r = file_read_into(c->mem_out, fd, offset, piece);
    } else {
      /* Each piece gets the whole write timeout. */
      scope_arm(c, c->lim.write_timeout_ms, 1);
      r = weft_tcp_sendfile(c->tcp, fd, offset, piece);
      if (r == UV_ETIMEDOUT || r == UV_ECANCELED) {
        int outer = scope_renew(c);
        if (outer != 0) return outer;
        *ours = 1;
      }
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
  /* The linger has a deadline of its own, which a write's must not cut. */
  scope_disarm(c);
  char buf[1024];
  weft_scope s;
  weft_scope_enter(&s, HTTP_LINGER_MS);
  size_t total = 0;
  /* The shutdown waits for queued writes, so it is under the deadline too. */
  if (weft_tcp_shutdown(c->tcp) != 0) total = HTTP_LINGER_BYTES;
  while (total < HTTP_LINGER_BYTES) {
    ssize_t n = weft_tcp_read(c->tcp, buf, sizeof buf);
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
  return c->res.close || !c->req.keep_alive || c->served >= c->lim.max_requests ||
         stopping(c);
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
  memcpy(text, phrase, n); /* NOLINT(bugprone-not-null-terminated-result): length-counted */
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
  /* The scope's deadline may have fired after the request's last bytes
   * came in; the request came in time, so it is served. */
  if (weft_cancelled() != 0) {
    int outer = scope_renew(c);
    if (outer != 0) return outer;
  }
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
  /* The handler may wait as long as it likes: the connection's timeouts
   * are for the client, not for the handler. */
  scope_disarm(c);
  c->in_handler = 1;
  int r = c->handler(&c->req, &c->res, c->ctx);
  c->in_handler = 0;
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

void weft__http_request_release(const weft_http_request *req) {
  http_conn *c = conn_of_request(req);
  /* The request's strings live in the workspace that goes back here: what
   * is left of the request reads as empty rather than freed memory. */
  static const char empty[] = "";
  c->req.method = c->req.target = c->req.path = empty;
  c->req.query = NULL;
  c->req.arena = empty;
  c->req.headers = NULL;
  c->req.header_count = 0;
  c->req.body = NULL;
  c->req.body_len = 0;
  c->rbuf = NULL;
  c->rlen = c->roff = c->rcap_last = 0;
  space_give_back(c);
  weft__http_buf_free(&c->body);
  weft__http_buf_free(&c->out);
  weft__http_response_free(&c->res);
}

/* ---- Stopping ------------------------------------------------------------- */

void weft_http_stop_idle(weft_event *stop) {
  if (stop == NULL || !weft_in_task()) return;
  for (http_conn *c = http_exec.stoppable; c != NULL; c = c->stop_next) {
    if (c->stop == stop && c->idle_wait && !c->stopped) {
      c->stopped = 1;
      weft_scope_cancel(&c->scope);
    }
  }
}

/* ---- The connection loop -------------------------------------------------- */

/* conn_loop()'s phases each return 1 when the loop goes on, or what
 * the connection ends with (0 or an error). */

/* Parses the bytes buffered and answers each request they complete. */
static int conn_parse(http_conn *c) {
  while (c->roff < c->rlen) {
    if (space_take(c) != 0) return UV_ENOMEM;
    c->chunk = c->rbuf + c->roff;
    llhttp_errno_t e = llhttp_execute(&c->parser, c->chunk, c->rlen - c->roff);
    if (e == HPE_OK) {
      c->prev_byte = c->rbuf[c->rlen - 1];
      c->roff = c->rlen;
      return 1;
    }
    if (e == HPE_PAUSED) {
      const char *pos = llhttp_get_error_pos(&c->parser);
      c->roff = (size_t)(pos - c->rbuf);
      if (c->roff > 0) c->prev_byte = c->rbuf[c->roff - 1];
      llhttp_resume(&c->parser);
      int r = serve_request(c);
      if (r <= 0) return r;
      weft__http_phase_enter(c, PHASE_IDLE, c->lim.idle_timeout_ms);
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
  return 1;
}

/* Everything buffered is answered: what is pending goes out before the
 * connection waits for more. */
static int conn_before_wait(http_conn *c) {
  int ours = 0;
  if (c->send_continue && c->phase == PHASE_BODY) {
    static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
    c->send_continue = 0;
    if (weft__http_buf_append(&c->out, cont, sizeof cont - 1) != 0) return UV_ENOMEM;
  }
  int r = conn_flush(c, &ours);
  if (r < 0) return ours ? 0 : r;
  if (c->phase == PHASE_IDLE) {
    /* Between requests a stopped connection just closes. */
    if (stopping(c)) return 0;
    /* A connection that waits holds no buffer, unless its client is
     * sending more than the last read could take. */
    if (c->rcap_last == 0) space_give_back(c);
  }
  return 1;
}

/* Reads the next bytes, into idle_buf (of conn_loop()'s frame) while the
 * connection waits for a request. */
static int conn_read_next(http_conn *c, char *idle_buf) {
  int ours = 0;
  size_t cap = read_buffer(c, idle_buf);
  if (cap == 0) return UV_ENOMEM;
  ssize_t n = conn_read(c, cap, &ours);
  if (n > 0) {
    c->rlen = (size_t)n;
    c->roff = 0;
    c->rcap_last = (size_t)n == cap ? cap : 0;
    return 1;
  }
  /* Bytes a handler may still look at (weft__http_request_rest()) are
   * gone: the buffer may be the stack's, which conn_loop()'s frame owns. */
  c->rlen = c->roff = 0;
  if (n == 0) return 0;
  if (!ours) return (int)n;
  /* The connection's own deadline passed: an idle connection just
   * closes, a request that is late gets 408 first. */
  if (c->phase == PHASE_IDLE) return 0;
  return fail_with(c, 408);
}

static int conn_loop(http_conn *c) {
  /* What a connection waiting for its next request reads into. */
  char idle_buf[HTTP_IDLE_READ];
  llhttp_init(&c->parser, HTTP_REQUEST, &weft__http_settings);
  c->parser.data = c;
  /* A new connection gets the header timeout for its first byte: a client
   * that connects and sends nothing is a slow client too. */
  weft__http_phase_enter(c, PHASE_IDLE, c->lim.header_timeout_ms);
  int r;
  do {
    r = conn_parse(c);
    if (r > 0) r = conn_before_wait(c);
    if (r > 0) r = conn_read_next(c, idle_buf);
  } while (r > 0);
  return r;
}

/* Serves a socket (tcp) or a buffer (mem_out not NULL). */
static int serve(weft_tcp *tcp, const char *in, size_t len, http_buf *mem_out,
                 const weft_http_limits *limits, weft_event *stop,
                 weft_http_handler handler, void *ctx) {
  if (handler == NULL) return UV_EINVAL;
  /* Sizes past these are mistakes, and would overflow the arena's size. */
  if (limits != NULL && (limits->max_header_bytes > ((size_t)1 << 30) ||
                         limits->max_headers > ((size_t)1 << 20)))
    return UV_EINVAL;
  /* On the task's stack, whose first page a connection touches anyway: a
   * WebSocket that lives for hours after its upgrade holds no heap for
   * it. */
  http_conn conn;
  memset(&conn, 0, sizeof conn);
  http_conn *c = &conn;
  c->tcp = tcp;
  c->mem_in = in;
  c->mem_left = len;
  c->mem_out = mem_out;
  c->handler = handler;
  c->ctx = ctx;
  c->res.file_fd = -1;
  c->armed = DEADLINE_NONE;
  limits_resolve(&c->lim, limits);
  /* The arena holds the target, a copy of its path and every name and
   * value with its NUL, all within max_header_bytes of the request. */
  c->arena_max = 2 * c->lim.max_header_bytes + 2 * c->lim.max_headers + 16;
  http_exec.live++;
  if (stop != NULL && tcp != NULL) {
    c->stop = stop;
    c->stop_next = http_exec.stoppable;
    if (c->stop_next != NULL) c->stop_next->stop_prev = c;
    http_exec.stoppable = c;
  }
  weft_scope_enter(&c->scope, WEFT_NO_DEADLINE);
  int r = conn_loop(c);
  weft_scope_leave(&c->scope);
  if (c->stop != NULL) {
    if (c->stop_prev != NULL)
      c->stop_prev->stop_next = c->stop_next;
    else
      http_exec.stoppable = c->stop_next;
    if (c->stop_next != NULL) c->stop_next->stop_prev = c->stop_prev;
  }
  space_give_back(c);
  weft__http_buf_free(&c->body);
  weft__http_buf_free(&c->out);
  weft__http_response_free(&c->res);
  /* The last connection of an executor takes its cache with it, so that
   * nothing outlives the connections. */
  if (--http_exec.live == 0) {
    while (http_exec.cached > 0) free(http_exec.cache[--http_exec.cached]);
  }
  return r;
}

int weft_http_serve_conn(weft_tcp *conn, const weft_http_limits *limits,
                         weft_http_handler handler, void *ctx) {
  if (conn == NULL) return UV_EINVAL;
  return serve(conn, NULL, 0, NULL, limits, NULL, handler, ctx);
}

int weft_http_serve_conn_opts(weft_tcp *conn, const weft_http_serve_opts *opts,
                              weft_http_handler handler, void *ctx) {
  if (conn == NULL) return UV_EINVAL;
  return serve(conn, NULL, 0, NULL, opts ? opts->limits : NULL,
               opts ? opts->stop : NULL, handler, ctx);
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
  int r = serve(NULL, in, len, &mem, limits, NULL, handler, ctx);
  if (r == UV_EINVAL) {
    weft__http_buf_free(&mem);
    return r;
  }
  if (mem.data == NULL && weft__http_buf_append(&mem, "", 0) != 0) return UV_ENOMEM;
  *out = mem.data;
  *out_len = mem.len;
  return r;
}
