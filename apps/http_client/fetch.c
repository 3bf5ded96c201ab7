/* fetch.c: setting up easy handles and making one attempt. */
#include "fetch.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>

#include <weft.h>

#include "retry.h"

/* The largest body file sent. */
#define BODY_FILE_MAX ((size_t)256 * 1024 * 1024)

/* Reads path whole into *out. Returns 0, or -1 after printing why. */
static int read_body_file(const char *path, char **out, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) {
    hc_usage_error("--body-file: cannot read %s: %s", path, strerror(errno));
    return -1;
  }
  size_t cap = 64 * 1024, n = 0;
  char *buf = malloc(cap);
  while (buf != NULL) {
    n += fread(buf + n, 1, cap - n, f);
    if (n < cap || ferror(f)) break;
    if (cap >= BODY_FILE_MAX) {
      hc_usage_error("--body-file: %s is larger than %zu bytes", path,
                     BODY_FILE_MAX);
      free(buf);
      fclose(f);
      return -1;
    }
    char *grown = realloc(buf, cap * 2);
    if (grown == NULL) free(buf);
    buf = grown;
    cap *= 2;
  }
  int failed = buf == NULL || ferror(f);
  fclose(f);
  if (failed) {
    hc_usage_error("--body-file: cannot read %s", path);
    free(buf);
    return -1;
  }
  *out = buf;
  *len = n;
  return 0;
}

/* Non-zero when the environment names a proxy libcurl could use. */
static int proxy_in_env(void) {
  static const char *const names[] = {"http_proxy",  "HTTP_PROXY",
                                      "https_proxy", "HTTPS_PROXY",
                                      "all_proxy",   "ALL_PROXY"};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    const char *v = getenv(names[i]);
    if (v != NULL && v[0] != '\0') return 1;
  }
  return 0;
}

/* Non-zero when the header list has a header called name (no colon). */
static int has_header(const struct curl_slist *l, const char *name) {
  size_t n = strlen(name);
  for (; l != NULL; l = l->next)
    if (strncasecmp(l->data, name, n) == 0 &&
        (l->data[n] == ':' || l->data[n] == ';'))
      return 1;
  return 0;
}

int hc_request_init(hc_request *req, const hc_config *cfg) {
  memset(req, 0, sizeof *req);
  req->method = cfg->method;
  req->head = cfg->method != NULL && strcmp(cfg->method, "HEAD") == 0;
  static const char *const idempotent[] = {"GET",    "HEAD",    "PUT",
                                           "DELETE", "OPTIONS", "TRACE"};
  if (cfg->method == NULL) {
    req->idempotent = cfg->body == NULL && cfg->body_file == NULL; /* GET */
  } else {
    for (size_t i = 0; i < sizeof idempotent / sizeof idempotent[0]; i++)
      if (strcmp(cfg->method, idempotent[i]) == 0) req->idempotent = 1;
  }
  if (cfg->body != NULL) {
    req->body_len = strlen(cfg->body);
    req->body = strdup(cfg->body);
    if (req->body == NULL) return hc_usage_error("out of memory"), -1;
  } else if (cfg->body_file != NULL) {
    if (read_body_file(cfg->body_file, &req->body, &req->body_len) != 0)
      return -1;
  }
  for (size_t i = 0; i < cfg->header.n; i++) {
    struct curl_slist *l =
        curl_slist_append(req->headers, cfg->header.items[i]);
    if (l == NULL) goto oom;
    req->headers = l;
  }
  if (cfg->content_type != NULL) {
    char line[512];
    snprintf(line, sizeof line, "Content-Type: %s", cfg->content_type);
    struct curl_slist *l = curl_slist_append(req->headers, line);
    if (l == NULL) goto oom;
    req->headers = l;
  }
  /* The User-Agent goes in the header list rather than CURLOPT_USERAGENT,
   * which libcurl formats anew for every request, one character at a time,
   * and then copies into the request once more. */
  if (!has_header(req->headers, "User-Agent")) {
    struct curl_slist *l = curl_slist_append(
        req->headers, "User-Agent: weft-http-client/" WEFT_VERSION_STRING);
    if (l == NULL) goto oom;
    req->headers = l;
  }
  /* libcurl sends "Expect: 100-continue" before a large body and waits for
   * the server's go-ahead: a round trip that no other load generator makes.
   * An empty Expect header turns it off, unless the user set one. */
  if (req->body != NULL && !has_header(req->headers, "Expect")) {
    struct curl_slist *l = curl_slist_append(req->headers, "Expect:");
    if (l == NULL) goto oom;
    req->headers = l;
  }
  req->no_proxy = !proxy_in_env();
  /* libcurl before 8.0.0 breaks an HTTP/2 prior-knowledge connection when
   * it reuses it ("Error in the HTTP2 framing layer": curl bug 10634).
   * One connection per request, with no streams multiplexed on it, is
   * slow but right. */
  if (cfg->http_version == CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE &&
      curl_version_info(CURLVERSION_NOW)->version_num < 0x080000) {
    req->forbid_reuse = 1;
    weft_log(WEFT_LOG_WARN,
             "this libcurl cannot reuse HTTP/2 prior-knowledge connections: "
             "one connection per request",
             "libcurl=%s", curl_version_info(CURLVERSION_NOW)->version);
  }
  req->follow = cfg->redirects ? 1 : 0;
  req->max_redirects = (long)cfg->max_redirects;
  req->http_version = cfg->http_version;
  req->verify = cfg->tls_verify ? 1 : 0;
  req->timeout_ms = (long)cfg->timeout;
  return 0;
oom:
  hc_usage_error("out of memory");
  hc_request_free(req);
  return -1;
}

void hc_request_free(hc_request *req) {
  free(req->body);
  curl_slist_free_all(req->headers);
  memset(req, 0, sizeof *req);
}

/* libcurl's write callback: counts the body and drops it. Runs on the
 * executor's thread outside any task, so it must not wait. */
static size_t on_body(char *data, size_t size, size_t n, void *arg) {
  (void)data;
  hc_fetcher *f = arg;
  f->bytes += size * n;
  return size * n;
}

/* Sets every option of f's easy handle for req (after curl_easy_init() or
 * curl_easy_reset()). */
static void fetcher_setup(hc_fetcher *f, const hc_request *req) {
  CURL *e = f->easy;
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, f);
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, f->errbuf);
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, req->follow);
  curl_easy_setopt(e, CURLOPT_MAXREDIRS, req->max_redirects);
  curl_easy_setopt(e, CURLOPT_HTTP_VERSION, req->http_version);
  /* See pipewait() below. */
  if (req->http_version == CURL_HTTP_VERSION_NONE ||
      req->http_version == CURL_HTTP_VERSION_2TLS)
    f->pipewait = HC_PIPEWAIT_HTTPS;
  else if (req->http_version == CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE)
    f->pipewait = req->forbid_reuse ? HC_PIPEWAIT_NEVER : HC_PIPEWAIT_ALWAYS;
  if (req->forbid_reuse) curl_easy_setopt(e, CURLOPT_FORBID_REUSE, 1L);
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, req->verify);
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, req->verify ? 2L : 0L);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, req->timeout_ms);
  if (req->no_proxy) {
    /* The same as the environment says (no proxy), but told once: without
     * it libcurl reads the proxy variables again for every request. */
    curl_easy_setopt(e, CURLOPT_PROXY, "");
    curl_easy_setopt(e, CURLOPT_NOPROXY, "");
  }
  if (req->headers != NULL)
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, req->headers);
  if (req->body != NULL) {
    /* The body is shared by every handle and never changes: no copy. */
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, req->body);
  }
  if (req->head)
    curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
  else if (req->method != NULL)
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, req->method);
}

int hc_fetcher_init(hc_fetcher *f, const hc_request *req) {
  memset(f, 0, sizeof *f);
  f->easy = curl_easy_init();
  if (f->easy == NULL) return UV_ENOMEM;
  f->req = req;
  fetcher_setup(f, req);
  return 0;
}

/* libcurl sends a request again on a fresh connection when the reused one
 * it was sent on turns out closed, at most five times per easy handle: a
 * count that only curl_easy_reset() clears (libcurl 7.88), so a handle
 * kept for many requests would fail every sixth such resend. A transfer
 * that opened a connection may have made one; the handle is then reset and
 * set up again (connections stay in the client's cache). */
static void fetcher_renew(hc_fetcher *f) {
  long connects = 0;
  if (curl_easy_getinfo(f->easy, CURLINFO_NUM_CONNECTS, &connects) !=
          CURLE_OK ||
      connects == 0)
    return;
  curl_easy_reset(f->easy);
  fetcher_setup(f, f->req);
  f->url = NULL;
  f->parsed = NULL;
}

void hc_fetcher_free(hc_fetcher *f) {
  if (f->easy != NULL) curl_easy_cleanup(f->easy);
  f->easy = NULL;
}

/* The class of a transfer that ended with rc (weft) and code (libcurl);
 * status is the response's, 0 before one came. */
static hc_error classify(int rc, CURLcode code, long status) {
  if (rc == UV_ECANCELED) return HC_ERR_CANCELLED;
  if (rc == UV_ETIMEDOUT && code != CURLE_OPERATION_TIMEDOUT)
    return HC_ERR_DEADLINE;
  switch (code) {
  case CURLE_OK:
    return HC_OK;
  case CURLE_URL_MALFORMAT:
    return HC_ERR_MALFORMED_URL;
  case CURLE_UNSUPPORTED_PROTOCOL:
    /* Every URL was parsed, scheme included, before it was sent: this is
     * a reply that is not HTTP ("Received HTTP/0.9"), or a redirect to a
     * scheme other than http and https. */
    return HC_ERR_PROTOCOL;
  case CURLE_COULDNT_CONNECT:
    return HC_ERR_CONNECTION_REFUSED;
  case CURLE_COULDNT_RESOLVE_HOST:
  case CURLE_COULDNT_RESOLVE_PROXY:
    return HC_ERR_DNS;
  case CURLE_OPERATION_TIMEDOUT:
    return HC_ERR_TIMEOUT;
  case CURLE_TOO_MANY_REDIRECTS:
    return HC_ERR_TOO_MANY_REDIRECTS;
  case CURLE_SSL_CONNECT_ERROR:
  case CURLE_PEER_FAILED_VERIFICATION:
  case CURLE_SSL_CERTPROBLEM:
  case CURLE_SSL_CIPHER:
  case CURLE_SSL_CACERT_BADFILE:
  case CURLE_SSL_ENGINE_NOTFOUND:
  case CURLE_SSL_ENGINE_SETFAILED:
  case CURLE_SSL_ENGINE_INITFAILED:
  case CURLE_SSL_SHUTDOWN_FAILED:
  case CURLE_SSL_CRL_BADFILE:
  case CURLE_SSL_ISSUER_ERROR:
  case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
  case CURLE_SSL_INVALIDCERTSTATUS:
  case CURLE_SSL_CLIENTCERT:
    return HC_ERR_TLS;
  case CURLE_RECV_ERROR:
    /* After the status line: the body was cut short. */
    return status > 0 ? HC_ERR_TRUNCATED : HC_ERR_CONNECTION_RESET;
  case CURLE_SEND_ERROR:
    return HC_ERR_SEND;
  case CURLE_GOT_NOTHING:
    return HC_ERR_EMPTY_REPLY;
  case CURLE_PARTIAL_FILE:
    return HC_ERR_TRUNCATED;
  case CURLE_WEIRD_SERVER_REPLY:
  case CURLE_HTTP2:
  case CURLE_HTTP2_STREAM:
  case CURLE_BAD_CONTENT_ENCODING:
    return HC_ERR_PROTOCOL;
  case CURLE_ABORTED_BY_CALLBACK:
    return HC_ERR_CANCELLED;
  default:
    return HC_ERR_OTHER;
  }
}

/* The name of a CURLINFO_HTTP_VERSION value; NULL for none. */
static const char *version_name(long v) {
  switch (v) {
  case CURL_HTTP_VERSION_1_0:
    return "1.0";
  case CURL_HTTP_VERSION_1_1:
    return "1.1";
  case CURL_HTTP_VERSION_2_0:
    return "2";
  case CURL_HTTP_VERSION_3:
    return "3";
  default:
    return NULL;
  }
}

/* Milliseconds since the epoch, for Retry-After dates. */
static int64_t wall_ms(void) {
  struct timeval tv;
  gettimeofday(&tv, NULL);
  return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

/* Whether a request for url waits for a connection still being set up to
 * tell whether it multiplexes (HTTP/2), rather than opening one more: the
 * workers' requests then share a connection as streams. Only https URLs
 * wait, since TLS says it during the handshake (a plain http connection
 * says it with its first response, and every request to that host would
 * wait for that), unless HTTP/2 is known beforehand (prior knowledge). */
static long pipewait(const hc_fetcher *f, const char *url) {
  if (f->pipewait == HC_PIPEWAIT_HTTPS)
    return url != NULL && strncasecmp(url, "https:", 6) == 0 ? 1L : 0L;
  return f->pipewait == HC_PIPEWAIT_ALWAYS ? 1L : 0L;
}

void hc_fetch_once(hc_fetcher *f, weft_curl *client, const char *url,
                   CURLU *parsed, hc_attempt *out) {
  fetcher_renew(f);
  CURL *e = f->easy;
  memset(out, 0, sizeof *out);
  out->ttfb_us = out->total_us = -1;
  out->retry_after_ms = -1;
  f->bytes = 0;
  f->errbuf[0] = '\0';
  /* The URL is set only when it changes (a load run sends the same one
   * all the time). The string goes with the parsed form, which libcurl
   * uses instead of parsing the string, so that both always agree. */
  if (url != f->url || parsed != f->parsed) {
    curl_easy_setopt(e, CURLOPT_CURLU, parsed);
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_PIPEWAIT, pipewait(f, url));
    f->url = url;
    f->parsed = parsed;
  }
  CURLcode code = CURLE_OK;
  /* libcurl checks its own timeout only when it wakes for something else
   * too (it counts a timer due within 40 ms as due, then finds time left
   * and waits for the next event: 200 ms for a 1 ms timeout). A scope with
   * the same deadline ends the attempt on time. */
  weft_scope attempt;
  long limit = f->req->timeout_ms;
  weft_scope_enter(&attempt, limit > 0 ? (int64_t)limit : WEFT_NO_DEADLINE);
  int rc = weft_curl_perform(client, e, &code);
  int own_deadline =
      weft_scope_leave(&attempt) == UV_ETIMEDOUT && weft_cancelled() == 0;
  if (own_deadline && rc == UV_ETIMEDOUT) {
    code = CURLE_OPERATION_TIMEDOUT;
    snprintf(f->errbuf, sizeof f->errbuf,
             "Operation timed out after %ld milliseconds", limit);
  }
  out->bytes = f->bytes;
  curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &out->status);
  out->error = classify(rc, code, out->status);
  if (rc != 0 && out->error == HC_OK) out->error = HC_ERR_OTHER;
  curl_easy_getinfo(e, CURLINFO_REDIRECT_COUNT, &out->redirects);
  if (out->error != HC_OK) {
    /* A transfer that failed part way may have a status; it still has no
     * usable response. */
    out->status = 0;
    if (out->error == HC_ERR_CANCELLED)
      out->detail = "cancelled before the response";
    else if (out->error == HC_ERR_DEADLINE)
      out->detail = "the run's deadline passed";
    else
      out->detail = f->errbuf[0] ? f->errbuf : curl_easy_strerror(code);
    return;
  }
  long version = 0;
  if (curl_easy_getinfo(e, CURLINFO_HTTP_VERSION, &version) == CURLE_OK)
    out->http_version = version_name(version);
  curl_off_t t;
  if (curl_easy_getinfo(e, CURLINFO_STARTTRANSFER_TIME_T, &t) == CURLE_OK)
    out->ttfb_us = (int64_t)t;
  if (curl_easy_getinfo(e, CURLINFO_TOTAL_TIME_T, &t) == CURLE_OK)
    out->total_us = (int64_t)t;
  if (hc_retry_status(out->status)) {
    struct curl_header *h;
    if (curl_easy_header(e, "Retry-After", 0, CURLH_HEADER, -1, &h) ==
        CURLHE_OK)
      out->retry_after_ms = hc_retry_after_ms(h->value, wall_ms());
  }
}

int hc_fetch_retryable(const hc_attempt *a, int idempotent) {
  switch (a->error) {
  case HC_OK:
    if (a->status == 429 || a->status == 503) return 1;
    return idempotent && hc_retry_status(a->status);
  case HC_ERR_CONNECTION_REFUSED:
    return 1;
  case HC_ERR_CONNECTION_RESET:
  case HC_ERR_SEND:
  case HC_ERR_EMPTY_REPLY:
    return idempotent;
  default:
    return 0;
  }
}
