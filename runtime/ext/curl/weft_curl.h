/* weft_curl.h: HTTP(S) client requests on weft tasks, through libcurl.
 *
 * A weft_curl client drives one libcurl multi handle from the libuv loop of
 * the executor that created it: libcurl's sockets are watched with uv_poll
 * handles and its timeouts with one uv_timer, so any number of transfers run
 * at once on one thread. A task hands a configured easy handle to
 * weft_curl_perform() and is suspended (that task only) until the transfer
 * ends; other tasks keep running meanwhile.
 *
 *   weft_curl *c = weft_curl_new(NULL);              // in a task
 *   weft_curl_result r;
 *   int err = weft_curl_get(c, "http://127.0.0.1:8080/", 0, &r);
 *   if (err == 0)
 *     printf("%ld %s\n", r.status, r.body);
 *   weft_curl_result_free(&r);
 *   weft_curl_free(c);
 *
 * Connections are kept alive and reused through the multi handle's
 * connection cache, whichever easy handle made them, and HTTP/2 streams are
 * multiplexed over one connection when a server offers it (over TLS with
 * ALPN, or with CURLOPT_HTTP_VERSION asking for prior knowledge).
 *
 * Threads: a client belongs to the executor that created it and is used
 * from that executor's tasks only (a multi handle must never be used from
 * two threads). Make one client per executor; clients on different
 * executors are independent and safe to use at the same time. libcurl is
 * initialised once per process (curl_global_init on first use, with
 * curl_global_cleanup registered to run at exit so leak checkers see a
 * clean process).
 *
 * Cancellation: weft_curl_perform() and weft_curl_get() honour the calling
 * task's scope. When the scope is cancelled or its deadline passes, the
 * transfer is taken off the multi handle at once (its connection is closed,
 * not reused) and the call returns UV_ECANCELED or UV_ETIMEDOUT. Time limits
 * are best set as scope deadlines; libcurl's own CURLOPT_TIMEOUT_MS still
 * works and reports UV_ETIMEDOUT as well.
 */
#ifndef WEFT_CURL_H
#define WEFT_CURL_H

#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>
#include <weft.h>

#ifdef __cplusplus
extern "C" {
#endif

/** A client: one libcurl multi handle driven by an executor's loop (opaque). */
typedef struct weft_curl weft_curl;

/**
 * Options for weft_curl_new(). Zero everywhere means libcurl's defaults;
 * a value below 0 is refused.
 */
typedef struct weft_curl_opts {
  long max_connections;       /**< idle connections kept for reuse
                                   (CURLMOPT_MAXCONNECTS); 0: libcurl's
                                   default, 4 per transfer added */
  long max_host_connections;  /**< open connections per host
                                   (CURLMOPT_MAX_HOST_CONNECTIONS); 0: no
                                   limit; transfers over it wait in a queue */
  long max_total_connections; /**< open connections in all
                                   (CURLMOPT_MAX_TOTAL_CONNECTIONS); 0: no
                                   limit; transfers over it wait in a queue */
  int multiplex;              /**< HTTP/2 multiplexing: 0 or 1 on (the
                                   default), -1 off */
} weft_curl_opts;

/**
 * Makes a client on the calling task's executor. opts may be NULL for the
 * defaults. Returns NULL when called outside a weft task, when an option is
 * out of range, or when memory or libcurl's initialisation fails.
 */
weft_curl *weft_curl_new(const weft_curl_opts *opts);

/**
 * Frees a client, closing its cached connections. Call it on the client's
 * executor once no weft_curl_perform() is waiting on it (a transfer still
 * in flight is a programming error: it is stopped and its caller gets
 * UV_ECANCELED). From a task, suspends that task until libuv has closed the
 * client's handles, ignoring cancellation since that takes one loop turn;
 * from a libuv callback of that executor, returns at once and the memory
 * goes when the handles are closed. NULL is ignored.
 */
void weft_curl_free(weft_curl *c);

/**
 * Performs the transfer the caller configured on easy (URL, method, headers,
 * write callback and so on), suspending the calling task until it ends.
 * The caller keeps ownership of easy and may reuse it afterwards; it must
 * not be in any multi handle. weft_curl_perform sets CURLOPT_NOSIGNAL (as
 * threads require), and CURLOPT_CLOSESOCKETFUNCTION with its data for the
 * length of the transfer (they are reset to none afterwards): the client
 * closes the sockets of its connections itself, so that it knows when to
 * stop watching them, and a close-socket callback of the caller's is not
 * used. Nothing else is changed. libcurl's callbacks (write, read,
 * header, progress) are called on the executor's thread outside any task:
 * they must not wait, and must not call weft functions that do.
 *
 * Returns 0 when libcurl reports CURLE_OK (whatever the HTTP status; read
 * it with CURLINFO_RESPONSE_CODE), otherwise the error that
 * weft_curl_error() maps the CURLcode to, and UV_ECANCELED / UV_ETIMEDOUT
 * when the calling task's scope was cancelled or its deadline passed (the
 * transfer is then removed from the multi handle and nothing is left
 * behind). When code is not NULL it receives libcurl's CURLcode
 * (CURLE_ABORTED_BY_CALLBACK for a cancelled transfer). Returns UV_EINVAL
 * for a NULL argument or a client of another executor, UV_EBUSY when easy
 * is already in a transfer, and WEFT_ENOTASK outside a task.
 */
int weft_curl_perform(weft_curl *c, CURL *easy, CURLcode *code);

/**
 * Maps a CURLcode to a weft (libuv) error code:
 *
 *   CURLE_OK                                      0
 *   CURLE_COULDNT_CONNECT                         UV_ECONNREFUSED
 *   CURLE_COULDNT_RESOLVE_HOST, _RESOLVE_PROXY    UV_EAI_NONAME
 *   CURLE_OPERATION_TIMEDOUT                      UV_ETIMEDOUT
 *   CURLE_ABORTED_BY_CALLBACK                     UV_ECANCELED
 *   CURLE_URL_MALFORMAT, CURLE_UNSUPPORTED_PROTOCOL,
 *   CURLE_BAD_FUNCTION_ARGUMENT, CURLE_NOT_BUILT_IN,
 *   CURLE_UNKNOWN_OPTION, CURLE_FAILED_INIT       UV_EINVAL
 *   CURLE_OUT_OF_MEMORY                           UV_ENOMEM
 *   CURLE_SEND_ERROR                              UV_EPIPE
 *   CURLE_RECV_ERROR                              UV_ECONNRESET
 *   CURLE_GOT_NOTHING, CURLE_PARTIAL_FILE         UV_EOF
 *   CURLE_WEIRD_SERVER_REPLY, CURLE_HTTP2,
 *   CURLE_HTTP2_STREAM, CURLE_HTTP3,
 *   CURLE_HTTP_RETURNED_ERROR, CURLE_BAD_CONTENT_ENCODING,
 *   CURLE_RANGE_ERROR                             UV_EPROTO
 *   CURLE_SSL_* (every TLS error),
 *   CURLE_PEER_FAILED_VERIFICATION                UV_EPROTO
 *   CURLE_TOO_MANY_REDIRECTS                      UV_ELOOP
 *   CURLE_FILESIZE_EXCEEDED                       UV_EFBIG
 *   CURLE_LOGIN_DENIED, CURLE_REMOTE_ACCESS_DENIED,
 *   CURLE_AUTH_ERROR                              UV_EACCES
 *   CURLE_AGAIN                                   UV_EAGAIN
 *   CURLE_WRITE_ERROR, CURLE_READ_ERROR           UV_EIO
 *   anything else                                 UV_EIO
 *
 * curl_easy_strerror(code) gives libcurl's own message.
 */
int weft_curl_error(CURLcode code);

/* ---- Simple fetches ------------------------------------------------------ */

/** The body limit weft_curl_get() applies when given 0: 8 MiB. */
#define WEFT_CURL_BODY_DEFAULT ((size_t)8 * 1024 * 1024)

/**
 * What weft_curl_get() fetched. Every string is malloc'ed and freed by
 * weft_curl_result_free(); a string libcurl did not report is NULL.
 * Timings are in microseconds from the start of the transfer.
 */
typedef struct weft_curl_result {
  long status;              /**< HTTP status of the last response; 0: none */
  char *body;               /**< the body (decoded when compressed), NUL-
                                 terminated; NULL only after UV_ENOMEM */
  size_t body_len;          /**< bytes in body, the NUL not counted */
  int truncated;            /**< non-zero when the body was cut at max_body */
  char *content_type;       /**< the Content-Type header, or NULL */
  char *effective_url;      /**< the URL last fetched (after redirects) */
  long redirects;           /**< redirects followed */
  CURLcode code;            /**< libcurl's result */
  int64_t namelookup_us;    /**< name resolved */
  int64_t connect_us;       /**< TCP connection made */
  int64_t appconnect_us;    /**< TLS handshake done (0 without TLS) */
  int64_t starttransfer_us; /**< first byte of the response received */
  int64_t total_us;         /**< transfer ended */
} weft_curl_result;

/**
 * Fetches url with a GET and collects the response in *out. http and https
 * only (other schemes are refused with UV_EINVAL), redirects followed (at
 * most 10, not to other schemes), compressed bodies decoded, certificates
 * verified. max_body bounds the body in bytes; 0 means
 * WEFT_CURL_BODY_DEFAULT.
 *
 * Returns 0 when a response was received, whatever its status (check
 * out->status); UV_EFBIG when the body was longer than max_body (out then
 * holds the first max_body bytes, truncated set, and the status and headers
 * of the response); otherwise the error weft_curl_perform() would return.
 * *out is filled in on every return (at worst with an empty body) and must
 * be freed with weft_curl_result_free().
 */
int weft_curl_get(weft_curl *c, const char *url, size_t max_body,
                  weft_curl_result *out);

/** Frees the strings of r and zeroes it. Safe twice; NULL is ignored. */
void weft_curl_result_free(weft_curl_result *r);

#ifdef __cplusplus
}
#endif
#endif /* WEFT_CURL_H */
