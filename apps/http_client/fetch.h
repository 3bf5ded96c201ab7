/* fetch.h: one attempt at one request, through weft_curl.
 *
 * Each worker task owns one libcurl easy handle, set up once from the
 * options and reused for every request it makes (libcurl keeps the
 * connections in its client's cache, so keep-alive works across them). An
 * attempt sets the URL, hands the handle to weft_curl_perform() (which
 * suspends only the calling task) and reads back the status, the timings
 * and a Retry-After header.
 */
#ifndef HTTP_CLIENT_FETCH_H
#define HTTP_CLIENT_FETCH_H

#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>
#include <weft_curl.h>

#include "options.h"
#include "report.h"

/** The request every worker sends, built once from the options. */
typedef struct hc_request {
  const char *method; /* NULL: libcurl's choice (GET, or POST) */
  int head;           /* HEAD: no body is read */
  char *body;         /* NULL: none */
  size_t body_len;
  struct curl_slist *headers; /* shared by every handle; read-only */
  long follow, max_redirects, http_version, verify;
  long timeout_ms;  /* one attempt; 0: no limit */
  int no_proxy;     /* the environment names no proxy: tell libcurl once */
  int forbid_reuse; /* a connection per request, no multiplexing (the way
                       round a libcurl bug) */
  int idempotent;   /* GET, HEAD, PUT, DELETE, OPTIONS or TRACE: sending it
                       twice does what sending it once does */
} hc_request;

/**
 * Builds req from cfg, reading --body-file. Returns 0, or -1 after printing
 * why (a body file that cannot be read).
 */
int hc_request_init(hc_request *req, const hc_config *cfg);

/** Frees what hc_request_init() made. */
void hc_request_free(hc_request *req);

/** When a request waits for a connection to tell whether it multiplexes. */
typedef enum hc_pipewait {
  HC_PIPEWAIT_NEVER = 0,
  HC_PIPEWAIT_HTTPS, /* https URLs only (HTTP/2 negotiated by TLS) */
  HC_PIPEWAIT_ALWAYS /* HTTP/2 with prior knowledge */
} hc_pipewait;

/** A worker's easy handle and what its callbacks gather. */
typedef struct hc_fetcher {
  CURL *easy;
  const hc_request *req; /* what easy is set up for */
  hc_pipewait pipewait;
  const char *url;              /* the URL set on easy; NULL: none yet */
  CURLU *parsed;                /* the parsed URL set on easy, or NULL */
  uint64_t bytes;               /* body bytes of the current attempt */
  char errbuf[CURL_ERROR_SIZE]; /* libcurl's message for a failure */
} hc_fetcher;

/** Makes f's easy handle for req. Returns 0, or UV_ENOMEM. */
int hc_fetcher_init(hc_fetcher *f, const hc_request *req);

/** Frees f's easy handle. */
void hc_fetcher_free(hc_fetcher *f);

/** What one attempt gave. */
typedef struct hc_attempt {
  long status; /* 0: no response */
  uint64_t bytes;
  int64_t ttfb_us, total_us;
  long redirects;
  const char *http_version; /* "1.0", "1.1", "2", "3"; NULL: no response */
  hc_error error;           /* HC_OK when a response came */
  const char *detail;       /* points into the fetcher; NULL when ok */
  int64_t retry_after_ms;   /* the response's Retry-After; -1: none */
} hc_attempt;

/**
 * Makes one attempt at url with client, suspending the calling task until
 * it ends, and fills *out. parsed, when not NULL, is url parsed by
 * libcurl's URL API (it must outlive every attempt that uses it): libcurl
 * then skips parsing it again. A cancelled scope ends the attempt with
 * HC_ERR_CANCELLED (or HC_ERR_DEADLINE past the scope's deadline).
 */
void hc_fetch_once(hc_fetcher *f, weft_curl *client, const char *url,
                   CURLU *parsed, hc_attempt *out);

/**
 * Non-zero when an attempt that failed this way is worth another and safe
 * to make: a refused connection, a 429 and a 503 (nothing was done) always;
 * a reset, a failed send, an empty reply or another 5xx (the server may
 * have acted on the request) only for an idempotent request. A truncated
 * body or a reply that is not HTTP is the server's answer: never.
 */
int hc_fetch_retryable(const hc_attempt *a, int idempotent);

#endif /* HTTP_CLIENT_FETCH_H */
