/* fetch.c: the easy handle of a worker and one request. */
#include "fetch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <weft.h>

#include "extract.h"

/* libcurl's write callback: keeps the body of a page to parse, counts the
 * rest, and stops past max_body. On the executor's thread, never waits. */
static size_t on_body(char *data, size_t size, size_t n, void *arg) {
  ws_fetcher *f = arg;
  size_t len = size * n;
  if (f->keep < 0) {
    char *ct = NULL;
    long status = 0;
    curl_easy_getinfo(f->easy, CURLINFO_CONTENT_TYPE, &ct);
    curl_easy_getinfo(f->easy, CURLINFO_RESPONSE_CODE, &status);
    f->keep = f->keep_any || (status < 300 && ws_is_html(ct));
  }
  if (f->bytes + len > f->max_body) {
    size_t room = (size_t)(f->max_body - f->bytes);
    if (f->keep) ws_buf_put(&f->body, data, room);
    f->bytes += room;
    f->too_big = 1;
    return 0; /* stops the transfer with CURLE_WRITE_ERROR */
  }
  if (f->keep) ws_buf_put(&f->body, data, len);
  f->bytes += len;
  return len;
}

int ws_fetcher_init(ws_fetcher *f, const char *ua, int64_t timeout_ms,
                    size_t max_body) {
  memset(f, 0, sizeof *f);
  CURL *e = curl_easy_init();
  if (e == NULL) return UV_ENOMEM;
  f->easy = e;
  f->max_body = max_body;
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, f);
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, f->errbuf);
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(e, CURLOPT_USERAGENT, ua);
  curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, ""); /* all libcurl knows */
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)timeout_ms);
  /* Loopback tests and crawls of sites on one machine do not go through a
   * proxy; a crawl that should can set one in the environment. */
  return 0;
}

void ws_fetcher_free(ws_fetcher *f) {
  if (f->easy != NULL) curl_easy_cleanup(f->easy);
  ws_buf_free(&f->body);
  memset(f, 0, sizeof *f);
}

void ws_response_free(ws_response *r) {
  free(r->content_type);
  free(r->location);
  memset(r, 0, sizeof *r);
}

int ws_fetch(ws_fetcher *f, weft_curl *c, const char *url, int keep_any,
             ws_response *r) {
  memset(r, 0, sizeof *r);
  r->retry_after_ms = -1;
  f->body.len = 0;
  if (f->body.p != NULL) f->body.p[0] = '\0';
  f->bytes = 0;
  f->keep = -1;
  f->keep_any = keep_any;
  f->too_big = 0;
  f->errbuf[0] = '\0';
  curl_easy_setopt(f->easy, CURLOPT_URL, url);
  CURLcode code = CURLE_OK;
  int err = weft_curl_perform(c, f->easy, &code);
  long status = 0;
  curl_easy_getinfo(f->easy, CURLINFO_RESPONSE_CODE, &status);
  r->status = status;
  if (f->too_big && code == CURLE_WRITE_ERROR) {
    err = 0;
    r->too_big = 1;
  }
  char *ct = NULL;
  curl_easy_getinfo(f->easy, CURLINFO_CONTENT_TYPE, &ct);
  if (ct != NULL) r->content_type = strdup(ct);
  if (status >= 300 && status < 400) {
    char *loc = NULL;
    curl_easy_getinfo(f->easy, CURLINFO_REDIRECT_URL, &loc);
    if (loc != NULL) r->location = strdup(loc);
  }
  curl_off_t ra = -1;
  if (curl_easy_getinfo(f->easy, CURLINFO_RETRY_AFTER, &ra) == CURLE_OK &&
      ra > 0)
    r->retry_after_ms = (int64_t)ra * 1000;
  r->err = err;
  if (err != 0) {
    if (err == UV_ETIMEDOUT)
      snprintf(r->error, sizeof r->error, "timed out");
    else if (err == UV_ECANCELED)
      snprintf(r->error, sizeof r->error, "cancelled");
    else if (f->errbuf[0] != '\0')
      snprintf(r->error, sizeof r->error, "%s", f->errbuf);
    else
      snprintf(r->error, sizeof r->error, "%s", curl_easy_strerror(code));
  }
  return err;
}

int ws_retryable(const ws_response *r) {
  if (r->err == UV_ECANCELED) return 0;
  if (r->err != 0)
    return r->err == UV_ETIMEDOUT || r->err == UV_ECONNREFUSED ||
           r->err == UV_ECONNRESET || r->err == UV_EPIPE || r->err == UV_EOF ||
           r->err == UV_EIO || r->err == UV_EPROTO;
  return r->status == 429 || (r->status >= 500 && r->status <= 599);
}
