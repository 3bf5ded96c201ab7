/* http_conn.h: the server connection's private types, shared by
 * http_conn.c (parsing, the connection loop, the I/O) and http_response.c
 * (the response a handler fills in, and its head). Not installed. */
#ifndef WEFT_HTTP_CONN_H
#define WEFT_HTTP_CONN_H

#include <stddef.h>
#include <stdint.h>

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

#endif /* WEFT_HTTP_CONN_H */
