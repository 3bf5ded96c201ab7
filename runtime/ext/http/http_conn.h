/* http_conn.h: the server connection's private types, shared by
 * http_conn.c (the connection loop, its reads and writes), http_parse.c
 * (the parser glue) and http_response.c (the response a handler fills in,
 * and its head). Not installed. */
#ifndef WEFT_HTTP_CONN_H
#define WEFT_HTTP_CONN_H

#include <stddef.h>
#include <stdint.h>

#include <llhttp.h>

#include "weft_http.h"

/* A growable byte buffer, always NUL-terminated once it holds anything. */
typedef struct http_buf {
  char *data;
  size_t len;
  size_t cap;
} http_buf;

int weft__http_buf_reserve(http_buf *b, size_t extra);
int weft__http_buf_append(http_buf *b, const void *data, size_t len);
void weft__http_buf_free(http_buf *b);

/* Compares two strings without regard to ASCII case, as strcmp(). */
int weft__http_casecmp(const char *a, const char *b);

/* Whether ch may be part of a token (RFC 9110 tchar), such as a field name. */
int weft__http_is_tchar(unsigned char ch);

/* How a streamed body is framed on the wire. */
enum {
  HTTP_STREAM_CHUNKED = 1, /* Transfer-Encoding: chunked */
  HTTP_STREAM_UNTIL_CLOSE, /* HTTP/1.0: the body ends when the connection does */
  HTTP_STREAM_DROPPED      /* HEAD, 1xx, 204, 304: the writes send nothing */
};

/* What goes in the head's Connection field. */
enum { HTTP_CONN_NONE, HTTP_CONN_CLOSE, HTTP_CONN_KEEP_ALIVE };

struct weft_http_response {
  int status;
  int close;        /* close the connection after this response */
  int hijacked;     /* the connection was taken over (weft__http_hijack) */
  int head_only;    /* the request was HEAD: the body is not sent */
  int stream;       /* 0, or how the started body is framed (HTTP_STREAM_*) */
  int stream_error; /* the first write error of a streamed body */
  int file_fd;      /* the file body (owned), or -1 */
  int64_t file_offset;
  int64_t file_len;
  http_buf headers; /* the fields set, as "name\0value\0" pairs */
  size_t header_count;
  http_buf body;
};

/* Clears res for the next request, closing a file body it still owns. */
void weft__http_response_reset(weft_http_response *res);

/* Closes the file body of res, if it has one, and forgets it. */
void weft__http_response_close_file(weft_http_response *res);

/* Frees what res holds. */
void weft__http_response_free(weft_http_response *res);

/* Whether status forbids a body (1xx, 204, 304). */
int weft__http_status_no_body(int status);

/*
 * Appends the head of res to out: the status line, Date, the fields set,
 * the framing and the Connection field (HTTP_CONN_*), then the blank line.
 * framing is 'L' for Content-Length: length (left out where the status
 * forbids a body), 'C' for chunked, or 0 for no framing field. Returns 0 or
 * UV_ENOMEM.
 */
int weft__http_head(http_buf *out, const weft_http_response *res, int framing,
                    uint64_t length, int connection);

/* ---- The connection (http_conn.c, http_parse.c) ------------------------- */

/* Which part of a request the connection waits for; each has a deadline. */
enum { PHASE_IDLE, PHASE_HEADERS, PHASE_BODY, PHASE_DONE };

/* The parts of a workspace; a request that needs more grows them. */
#define HTTP_SPACE_READ 4096
#define HTTP_SPACE_ARENA 4096
#define HTTP_SPACE_HEADERS 64

/* The connection's scope deadline: none armed, or not yet computed. */
#define DEADLINE_NONE (-1)
#define DEADLINE_PENDING (-2)

typedef struct http_header {
  size_t name;  /* offsets of NUL-terminated strings in the arena */
  size_t value;
} http_header;

/* A request's workspace, one block; the executor caches a few. */
typedef struct http_space {
  char read[HTTP_SPACE_READ];
  char arena[HTTP_SPACE_ARENA];
  http_header headers[HTTP_SPACE_HEADERS];
} http_space;

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

typedef struct http_conn http_conn;

struct http_conn {
  weft_tcp *tcp;       /* NULL when serving a buffer */
  weft_http_limits lim;
  weft_http_handler handler;
  void *ctx;
  llhttp_t parser;

  /* Serving a buffer (weft_http_serve_memory): the input still to read,
   * and everything written. */
  const char *mem_in;
  size_t mem_left;
  http_buf *mem_out;

  /* The scope the connection waits in, and the deadline armed on it. */
  weft_scope scope;
  int64_t armed;       /* absolute, or DEADLINE_NONE */
  int64_t armed_at;    /* when it was armed */
  int armed_write;     /* it was armed for a write */
  int in_handler;      /* a handler runs: writes bring a scope of their own */

  /* Stopping (weft_http_serve_opts.stop). */
  weft_event *stop;
  int stopped;         /* weft_http_stop_idle() ended the idle wait */
  int idle_wait;       /* waiting for the next request, nothing buffered */
  http_conn *stop_prev;
  http_conn *stop_next;

  char *rbuf;          /* the buffer read last: the stack's, the workspace's or rheap */
  size_t rlen;
  size_t roff;
  size_t rcap_last;    /* its size, when the last read filled it; else 0 */
  char *rheap;         /* a read buffer grown past the workspace's, or NULL */
  size_t rheap_cap;
  const char *chunk;   /* start of the bytes given to llhttp_execute() */
  char prev_byte;      /* the byte before chunk, from the previous chunk */
  http_buf out;        /* response bytes not yet written */
  http_space *space;   /* the workspace, while a request is read and served */

  /* The request being parsed. */
  int phase;
  int64_t deadline;    /* of the current phase, absolute; DEADLINE_* */
  int64_t phase_ms;    /* the current phase's timeout (< 0: none) */
  int err_status;      /* set by a callback that refuses the request */
  char *arena;
  size_t arena_len;
  size_t arena_cap;
  size_t arena_max;    /* the most the arena may grow to */
  size_t header_bytes; /* request line and header bytes counted so far */
  http_header *headers;
  size_t headers_cap;
  size_t header_count;
  int in_field;
  size_t field_start;
  size_t value_start;
  size_t url_start;
  size_t path_start;
  size_t query_start;  /* 0: no query */
  int host_count;
  size_t expect_value; /* offset of the first Expect value, or 0 */
  int send_continue;   /* the client waits for 100 Continue before its body */
  int head;            /* the request is HEAD */
  http_buf body;

  weft_http_request req;
  weft_http_response res;
  uint32_t served;
};

/* The parser's callbacks (http_parse.c), the same for every connection. */
extern const llhttp_settings_t weft__http_settings;

/* The smaller of a and b. */
static inline size_t weft__http_size_min(size_t a, size_t b) {
  return a < b ? a : b;
}

/* Enters a phase whose deadline is computed when the connection first
 * waits in it: most requests arrive whole and never need one. */
static inline void weft__http_phase_enter(http_conn *c, int phase,
                                          int64_t timeout_ms) {
  c->phase = phase;
  c->phase_ms = timeout_ms;
  c->deadline = DEADLINE_PENDING;
}

#endif /* WEFT_HTTP_CONN_H */
