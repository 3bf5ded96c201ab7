/* fetch.c: setting up easy handles and making one attempt. */
#include "fetch.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

int hc_request_init(hc_request *req, const hc_config *cfg) {
  memset(req, 0, sizeof *req);
  req->method = cfg->method;
  req->head = cfg->method != NULL && strcmp(cfg->method, "HEAD") == 0;
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

int hc_fetcher_init(hc_fetcher *f, const hc_request *req) {
  memset(f, 0, sizeof *f);
  CURL *e = curl_easy_init();
  if (e == NULL) return UV_ENOMEM;
  f->easy = e;
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, f);
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, f->errbuf);
  curl_easy_setopt(e, CURLOPT_USERAGENT,
                   "weft-http-client/" WEFT_VERSION_STRING);
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, req->follow);
  curl_easy_setopt(e, CURLOPT_MAXREDIRS, req->max_redirects);
  curl_easy_setopt(e, CURLOPT_HTTP_VERSION, req->http_version);
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, req->verify);
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, req->verify ? 2L : 0L);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, req->timeout_ms);
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
  return 0;
}

void hc_fetcher_free(hc_fetcher *f) {
  if (f->easy != NULL) curl_easy_cleanup(f->easy);
  f->easy = NULL;
}

/* The class of a transfer that ended with rc (weft) and code (libcurl). */
static hc_error classify(int rc, CURLcode code) {
  if (rc == UV_ECANCELED) return HC_ERR_CANCELLED;
  if (rc == UV_ETIMEDOUT && code != CURLE_OPERATION_TIMEDOUT)
    return HC_ERR_DEADLINE;
  switch (code) {
  case CURLE_OK:
    return HC_OK;
  case CURLE_URL_MALFORMAT:
  case CURLE_UNSUPPORTED_PROTOCOL:
    return HC_ERR_MALFORMED_URL;
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
    return HC_ERR_CONNECTION_RESET;
  case CURLE_SEND_ERROR:
    return HC_ERR_SEND;
  case CURLE_GOT_NOTHING:
  case CURLE_PARTIAL_FILE:
    return HC_ERR_EMPTY_REPLY;
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

/* Milliseconds since the epoch, for Retry-After dates. */
static int64_t wall_ms(void) {
  struct timeval tv;
  gettimeofday(&tv, NULL);
  return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

void hc_fetch_once(hc_fetcher *f, weft_curl *client, const char *url,
                   hc_attempt *out) {
  CURL *e = f->easy;
  memset(out, 0, sizeof *out);
  out->ttfb_us = out->total_us = -1;
  out->retry_after_ms = -1;
  f->bytes = 0;
  f->errbuf[0] = '\0';
  curl_easy_setopt(e, CURLOPT_URL, url);
  CURLcode code = CURLE_OK;
  int rc = weft_curl_perform(client, e, &code);
  out->bytes = f->bytes;
  out->error = classify(rc, code);
  if (rc != 0 && out->error == HC_OK) out->error = HC_ERR_OTHER;
  curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &out->status);
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

int hc_fetch_retryable(const hc_attempt *a) {
  switch (a->error) {
  case HC_OK:
    return hc_retry_status(a->status);
  case HC_ERR_CONNECTION_REFUSED:
  case HC_ERR_CONNECTION_RESET:
  case HC_ERR_SEND:
  case HC_ERR_EMPTY_REPLY:
    return 1;
  default:
    return 0;
  }
}
