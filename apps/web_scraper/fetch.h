/* fetch.h: one HTTP request through weft_curl, redirects not followed.
 *
 * The crawler follows redirects itself, so that each hop is checked
 * against the scope, robots.txt and the seen set, and counts toward the
 * host's limits like any request. A body is kept only when it will be
 * parsed (HTML, and robots.txt); other bodies are counted and dropped.
 */
#ifndef WS_FETCH_H
#define WS_FETCH_H

#include <stddef.h>
#include <stdint.h>

#include <weft_curl.h>

#include "output.h"

/** What one worker reuses from request to request. */
typedef struct ws_fetcher {
  CURL *easy;
  ws_buf body;       /**< the body kept, NUL-terminated */
  uint64_t bytes;    /**< body bytes received (kept or not) */
  size_t max_body;   /**< the most kept or counted */
  int keep;          /**< -1: decide from the Content-Type; 0/1 */
  int keep_any;      /**< keep whatever the type (robots.txt) */
  int too_big;       /**< stopped at max_body */
  char errbuf[CURL_ERROR_SIZE];
} ws_fetcher;

/** The outcome of one request. */
typedef struct ws_response {
  int err;            /**< 0: a response came; else a weft/libuv code */
  long status;        /**< HTTP status, 0 for none */
  char *content_type; /**< malloc'ed, or NULL */
  char *location;     /**< a redirect's target, absolute, or NULL */
  int64_t retry_after_ms; /**< Retry-After, or -1 */
  int too_big;        /**< the body passed max_body and was cut */
  int deferred;       /**< worth a retry, left undone because the crawl
                           is stopping */
  char error[256];    /**< what went wrong when err != 0 */
} ws_response;

/** Sets up f for requests with user agent ua, each bounded by timeout_ms.
 * Returns 0 or UV_ENOMEM. */
int ws_fetcher_init(ws_fetcher *f, const char *ua, int64_t timeout_ms,
                    size_t max_body);

/** Frees what ws_fetcher_init() made. */
void ws_fetcher_free(ws_fetcher *f);

/**
 * GETs url on client c, suspending the calling task. keep_any keeps the
 * body whatever its type. Fills *r (free with ws_response_free()); the body
 * is in f->body when kept. Returns r->err.
 */
int ws_fetch(ws_fetcher *f, weft_curl *c, const char *url, int keep_any,
             ws_response *r);

void ws_response_free(ws_response *r);

/** Non-zero when a response or error is worth another attempt: connection
 * errors, timeouts, 429 and 5xx. */
int ws_retryable(const ws_response *r);

#endif /* WS_FETCH_H */
