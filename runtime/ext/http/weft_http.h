/* weft_http.h: HTTP/1.1 server connections on weft tasks.
 *
 * weft_http_serve_conn() turns an accepted TCP connection into an HTTP/1.1
 * server connection: it reads requests with weft_tcp_read() into a bounded
 * buffer, parses them with llhttp, calls a handler once per request and
 * makes each response before it looks at the next request, so pipelined
 * requests are answered in order. It runs on the connection's own task (for
 * instance an app_conn_fn of apps/common/server.h) and suspends only that
 * task.
 *
 * A response is a status, header fields and a body: a buffered body
 * (weft_http_response_body()), a file range sent with sendfile(2)
 * (weft_http_response_file()), or a body streamed with chunked encoding as
 * the handler makes it (weft_http_response_start() and
 * weft_http_response_write()). A head and a small body go out in one
 * write; the responses to pipelined requests that arrived together are
 * written together once the last of them is made (or 64 KiB are waiting),
 * so a handler that waits delays the responses before it in that batch.
 * weft_http_serve_memory() serves a byte buffer instead of a socket, for
 * fuzzing and tests.
 *
 *   static int hello(const weft_http_request *req, weft_http_response *res,
 *                    void *ctx) {
 *     weft_http_response_header(res, "Content-Type", "text/plain");
 *     return weft_http_response_body(res, "hello\n", 6);
 *   }
 *   ...
 *   weft_http_serve_conn(conn, NULL, hello, NULL);   // NULL: default limits
 *
 * A connection waiting for its next request holds no buffer: requests are
 * read into a workspace the executor lends while they are read and served,
 * grown only as far as a request needs within the limits. For a graceful
 * shutdown, weft_http_serve_conn_opts() takes a stop event: once it is set,
 * idle connections close at once (weft_http_stop_idle()) and busy ones
 * after their response, which says Connection: close.
 *
 * Untrusted input is bounded: the request line and headers, the number of
 * headers, the body, the time a client may take to send its headers and its
 * body, the time an idle keep-alive connection is kept, and the number of
 * requests per connection all have limits with safe defaults. Requests that
 * could be read two ways (Content-Length with Transfer-Encoding, two
 * Content-Length headers, bare CR, invalid characters, whitespace before a
 * header's colon, folded header lines) are refused with 400 and the
 * connection is closed.
 */
#ifndef WEFT_HTTP_H
#define WEFT_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include <weft.h>

#ifdef __cplusplus
extern "C" {
#endif

/** A request being served (opaque; valid only during the handler call). */
typedef struct weft_http_request weft_http_request;

/** The response to a request (opaque; valid only during the handler call). */
typedef struct weft_http_response weft_http_response;

/**
 * Limits of a server connection. A field left 0 takes its default (shown
 * after the field); weft_http_limits_default() fills them all in. A timeout
 * below 0 means none. max_header_bytes above 1 GiB or max_headers above
 * 2^20 are refused with UV_EINVAL.
 */
typedef struct weft_http_limits {
  size_t max_header_bytes;   /**< request line and headers; 8 KiB; over: 431 */
  size_t max_headers;        /**< header fields per request; 100; over: 431 */
  size_t max_body_bytes;     /**< request body, after chunked decoding; 1 MiB; over: 413 */
  int64_t header_timeout_ms; /**< from a request's first byte to the end of its headers; 10 s; over: 408 */
  int64_t body_timeout_ms;   /**< from the end of the headers to the end of the body; 30 s; over: 408 */
  int64_t idle_timeout_ms;   /**< keep-alive wait for the next request; 60 s; over: close */
  int64_t write_timeout_ms;  /**< to write one response; 30 s; over: close */
  uint32_t max_requests;     /**< per connection, the last one answered with Connection: close; 1000 */
  /** The most bytes read from the socket at once; 16 KiB. Reads start
   * small (1 KiB between requests, 4 KiB within one) and grow towards this
   * while each fills its buffer. */
  size_t read_buffer_bytes;
} weft_http_limits;

/** Fills *limits with the defaults. */
void weft_http_limits_default(weft_http_limits *limits);

/**
 * Handles one request. Fill in res (status 200 and an empty body unless
 * set). The handler runs on the connection's task and may wait (I/O,
 * sleeps): the next pipelined request waits for it. Returns 0, or a
 * negative error: then the connection answers 500 (unless the handler set
 * a status of 400 or more, which is kept) and closes.
 */
typedef int (*weft_http_handler)(const weft_http_request *req,
                                 weft_http_response *res, void *ctx);

/**
 * Serves HTTP/1.1 on conn until the client closes it, a limit or an error
 * ends it, or the calling task is cancelled. limits may be NULL for the
 * defaults. Does not close conn: the caller does (apps/common/server.h does
 * it when the connection task returns).
 *
 * Returns 0 when the connection ended normally or by one of its limits
 * (the client closed it or asked for it to be closed, it stayed idle, a
 * response could not be written in time, or a request was refused with
 * 4xx or 5xx), UV_ECANCELED or UV_ETIMEDOUT when the caller's scope ended it,
 * UV_EINVAL for a bad argument, or an I/O error.
 */
int weft_http_serve_conn(weft_tcp *conn, const weft_http_limits *limits,
                         weft_http_handler handler, void *ctx);

/**
 * Options of weft_http_serve_conn_opts(). Zero-initialise it (a field left
 * 0 or NULL takes its default) and set what you need.
 */
typedef struct weft_http_serve_opts {
  const weft_http_limits *limits; /**< NULL: the defaults */
  /**
   * NULL, or an event that asks the connection to stop, for a graceful
   * shutdown. Once it is set (weft_event_set(), from any executor), the
   * response being made, and each one after it, says Connection: close
   * and the connection closes once it is written; a connection between
   * requests, with nothing received, closes at once, without a response.
   * A connection already waiting for its next request when the event is
   * set notices it when weft_http_stop_idle() is called on its executor.
   * The event must outlive the connection.
   */
  weft_event *stop;
} weft_http_serve_opts;

/**
 * weft_http_serve_conn() with options (opts may be NULL for the defaults).
 * Returns as weft_http_serve_conn(); a stop ends the connection with 0.
 */
int weft_http_serve_conn_opts(weft_tcp *conn, const weft_http_serve_opts *opts,
                              weft_http_handler handler, void *ctx);

/**
 * Closes, now, the connections of the calling executor that were given
 * stop (weft_http_serve_opts.stop) and wait for their next request with
 * nothing received; call it once stop is set, from a task on every
 * executor that serves such connections (apps/common/server.h's on_stop
 * hook runs on each). Connections in the middle of a request finish it,
 * with Connection: close. Costs a walk over the executor's connections
 * that have a stop event. Does nothing outside a task or for NULL.
 */
void weft_http_stop_idle(weft_event *stop);

/* ---- The request ---------------------------------------------------------- */

/** The method, such as "GET" or "POST". */
const char *weft_http_request_method(const weft_http_request *req);

/** The request target as sent, such as "/search?q=weft". */
const char *weft_http_request_target(const weft_http_request *req);

/** The path of the target, without the query string ("/search"). Not decoded. */
const char *weft_http_request_path(const weft_http_request *req);

/** The query string without its '?' ("q=weft"), or "" when there is none. Not decoded. */
const char *weft_http_request_query(const weft_http_request *req);

/** The protocol version: 10 for HTTP/1.0, 11 for HTTP/1.1. */
int weft_http_request_version(const weft_http_request *req);

/**
 * The value of the first header named name (compared without regard to
 * case), or NULL. Leading and trailing whitespace is not part of a value.
 */
const char *weft_http_request_header(const weft_http_request *req,
                                     const char *name);

/** The number of header fields, in the order received. */
size_t weft_http_request_header_count(const weft_http_request *req);

/**
 * The i-th header field (0 <= i < count) in *name and *value. Returns 0, or
 * UV_EINVAL when i is out of range.
 */
int weft_http_request_header_at(const weft_http_request *req, size_t i,
                                const char **name, const char **value);

/**
 * The body (decoded when it was sent chunked), its length in *len. Never
 * NULL; the bytes are followed by a NUL that is not counted.
 */
const void *weft_http_request_body(const weft_http_request *req, size_t *len);

/** Non-zero when the connection stays open after this request. */
int weft_http_request_keep_alive(const weft_http_request *req);

/* ---- The response --------------------------------------------------------- */

/**
 * Sets the status code (100..999 accepted; 200 by default). Returns 0, or
 * UV_EINVAL for another code or once the response has started streaming.
 */
int weft_http_response_status(weft_http_response *res, int status);

/**
 * Adds a header field. The name must be a token and the value must not hold
 * CR, LF or NUL. Content-Length and Transfer-Encoding are the connection's
 * to write and are refused; "Connection: close" is honoured (the connection
 * closes after this response). Refused once the response has started
 * streaming. Returns 0, UV_EINVAL, or UV_ENOMEM.
 */
int weft_http_response_header(weft_http_response *res, const char *name,
                              const char *value);

/**
 * Replaces the body with a copy of len bytes (a file body is dropped and
 * its descriptor closed). Returns 0, UV_EINVAL once the response has
 * started streaming, or UV_ENOMEM.
 */
int weft_http_response_body(weft_http_response *res, const void *data,
                            size_t len);

/**
 * Appends a copy of len bytes to the body. Returns 0, UV_EINVAL for a file
 * or a streamed response, or UV_ENOMEM.
 */
int weft_http_response_append(weft_http_response *res, const void *data,
                              size_t len);

/** Asks for the connection to be closed once this response is written. */
void weft_http_response_close(weft_http_response *res);

/**
 * Streams the body. Writes the status line and the headers now, with
 * Transfer-Encoding: chunked for an HTTP/1.1 client; an HTTP/1.0 client
 * gets the body until the connection closes. Each
 * weft_http_response_write() then sends its piece at once (the task waits
 * while the client is slow), and the connection ends the body when the
 * handler returns. A body buffered before the start goes out as the first
 * piece. After the start, the status, the headers and the buffered body
 * can no longer be set. A HEAD request gets the headers only
 * and its writes are dropped, as are those of a 1xx, 204 or 304 response.
 * Returns 0, UV_EINVAL (already started, or a file response), or an I/O
 * error; after an I/O error the connection closes once the handler returns.
 */
int weft_http_response_start(weft_http_response *res);

/**
 * Sends len bytes of a streamed body as one chunk (len 0 sends nothing).
 * Waits while the client does not read, within the write timeout. Returns
 * 0, UV_EINVAL when weft_http_response_start() was not called, or an error
 * (UV_ECANCELED / UV_ETIMEDOUT, UV_EPIPE, ...): then the handler should
 * return, and the connection closes without ending the body, so the client
 * sees it was cut short.
 */
int weft_http_response_write(weft_http_response *res, const void *data,
                             size_t len);

/**
 * Sends len bytes of the open file fd, from offset, as the body, with
 * Content-Length len, replacing any buffered body. The bytes go from the
 * file to the socket without a copy where the platform allows it
 * (sendfile(2)). The connection owns fd from here on and closes it once
 * the response is written or dropped (a later file or body replaces it and
 * closes it too). A HEAD request gets the headers only. Returns 0, or
 * UV_EINVAL (fd, offset or len below 0, a regular file shorter than
 * offset + len, or a streamed response), in which case fd stays the
 * caller's.
 */
int weft_http_response_file(weft_http_response *res, int fd, int64_t offset,
                            int64_t len);

/* ---- Reading the response back (for middleware) --------------------------- */

/** The status set so far (200 unless set). */
int weft_http_response_get_status(const weft_http_response *res);

/**
 * The value of the first header field named name (compared without regard
 * to case) set so far, or NULL. Valid until the headers change.
 */
const char *weft_http_response_get_header(const weft_http_response *res,
                                          const char *name);

/**
 * Removes every header field named name (without regard to case). Returns
 * how many were removed, or UV_EINVAL once the response has started.
 */
int weft_http_response_remove_header(weft_http_response *res,
                                     const char *name);

/**
 * The buffered body set so far and its length in *len; not a file's or a
 * streamed body (both give length 0). Never NULL. Valid until the body
 * changes.
 */
const void *weft_http_response_get_body(const weft_http_response *res,
                                        size_t *len);

/** Non-zero once weft_http_response_start() was called. */
int weft_http_response_is_streaming(const weft_http_response *res);

/** Non-zero when the body is a file (weft_http_response_file()). */
int weft_http_response_has_file(const weft_http_response *res);

/* ---- Serving a buffer ------------------------------------------------------ */

/**
 * Serves in[0..len) as the bytes a client sent on one connection, then the
 * end of the stream: parses them, calls handler for each request as
 * weft_http_serve_conn() does, and collects every byte the server would
 * write into *out (malloc'ed and NUL-terminated, the caller frees it;
 * *out_len is its length without the NUL). Nothing waits for I/O, so the
 * timeouts of limits do not apply. For fuzzing and tests. Must be called in
 * a weft task. Returns as weft_http_serve_conn() (UV_EINVAL for a bad
 * argument, with *out NULL).
 */
int weft_http_serve_memory(const void *in, size_t len,
                           const weft_http_limits *limits,
                           weft_http_handler handler, void *ctx, char **out,
                           size_t *out_len);

/** The standard reason phrase of status ("Not Found"), or "Unknown". */
const char *weft_http_status_text(int status);

#ifdef __cplusplus
}
#endif
#endif /* WEFT_HTTP_H */
