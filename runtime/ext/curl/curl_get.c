/* curl_get.c: weft_curl_get(), a bounded GET on top of weft_curl_perform(). */
#include "weft_curl.h"

#include <stdlib.h>
#include <string.h>

/* The body being received, bounded by max. */
typedef struct get_body {
  char *buf; /* cap + 1 bytes, for the closing NUL */
  size_t len;
  size_t cap;
  size_t max;
  int truncated; /* more than max bytes came */
  int nomem;     /* the buffer could not grow */
} get_body;

/* Makes room for len more bytes, doubling up to max. Returns 0 or -1. */
static int body_reserve(get_body *b, size_t len) {
  if (b->len + len <= b->cap) return 0;
  size_t cap = b->cap < 4096 ? 4096 : b->cap;
  while (cap < b->len + len) cap = cap > b->max / 2 ? b->max : cap * 2;
  if (cap > b->max) cap = b->max;
  char *p = realloc(b->buf, cap + 1);
  if (p == NULL) return -1;
  b->buf = p;
  b->cap = cap;
  return 0;
}

/* CURLOPT_WRITEFUNCTION: keeps at most max bytes. Returning less than was
 * given stops the transfer with CURLE_WRITE_ERROR, which weft_curl_get()
 * turns back into UV_EFBIG or UV_ENOMEM. */
static size_t on_body(char *data, size_t size, size_t n, void *userp) {
  get_body *b = userp;
  size_t len = size * n;
  size_t room = b->max - b->len;
  size_t take = len < room ? len : room;
  if (take > 0) {
    if (body_reserve(b, take) != 0) {
      b->nomem = 1;
      return 0;
    }
    memcpy(b->buf + b->len, data, take);
    b->len += take;
  }
  if (take < len) {
    b->truncated = 1;
    return 0;
  }
  return len;
}

/* Returns a malloc'ed copy of s, or NULL for NULL (or no memory). */
static char *dup_or_null(const char *s) {
  if (s == NULL) return NULL;
  size_t n = strlen(s) + 1;
  char *p = malloc(n);
  if (p != NULL) memcpy(p, s, n);
  return p;
}

/* Copies what libcurl learnt of the transfer into out. */
static void collect_info(CURL *easy, weft_curl_result *out) {
  char *s = NULL;
  curl_off_t t;
  curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &out->status);
  curl_easy_getinfo(easy, CURLINFO_REDIRECT_COUNT, &out->redirects);
  if (curl_easy_getinfo(easy, CURLINFO_CONTENT_TYPE, &s) == CURLE_OK)
    out->content_type = dup_or_null(s);
  s = NULL;
  if (curl_easy_getinfo(easy, CURLINFO_EFFECTIVE_URL, &s) == CURLE_OK)
    out->effective_url = dup_or_null(s);
  if (curl_easy_getinfo(easy, CURLINFO_NAMELOOKUP_TIME_T, &t) == CURLE_OK)
    out->namelookup_us = t;
  if (curl_easy_getinfo(easy, CURLINFO_CONNECT_TIME_T, &t) == CURLE_OK)
    out->connect_us = t;
  if (curl_easy_getinfo(easy, CURLINFO_APPCONNECT_TIME_T, &t) == CURLE_OK)
    out->appconnect_us = t;
  if (curl_easy_getinfo(easy, CURLINFO_STARTTRANSFER_TIME_T, &t) == CURLE_OK)
    out->starttransfer_us = t;
  if (curl_easy_getinfo(easy, CURLINFO_TOTAL_TIME_T, &t) == CURLE_OK)
    out->total_us = t;
}

/* Sets the options of a plain, safe GET of url into b. Returns a CURLcode. */
static CURLcode get_setup(CURL *easy, const char *url, get_body *b) {
  CURLcode rc = curl_easy_setopt(easy, CURLOPT_URL, url);
  if (rc != CURLE_OK) return rc;
  /* Only the web: a URL found on a page must not read local files. */
  rc = curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
  if (rc != CURLE_OK) return rc;
  rc = curl_easy_setopt(easy, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  if (rc != CURLE_OK) return rc;
  curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(easy, CURLOPT_MAXREDIRS, 10L);
  /* "" asks for every encoding libcurl can decode; the write callback sees
   * decoded bytes, so max_body bounds what a compressed body expands to. */
  curl_easy_setopt(easy, CURLOPT_ACCEPT_ENCODING, "");
  curl_easy_setopt(easy, CURLOPT_USERAGENT, "weft_curl/" WEFT_VERSION_STRING);
  curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(easy, CURLOPT_WRITEDATA, b);
  return CURLE_OK;
}

int weft_curl_get(weft_curl *c, const char *url, size_t max_body,
                  weft_curl_result *out) {
  if (out == NULL) return UV_EINVAL;
  memset(out, 0, sizeof *out);
  out->code = CURLE_OK;
  get_body b;
  memset(&b, 0, sizeof b);
  b.max = max_body > 0 ? max_body : WEFT_CURL_BODY_DEFAULT;
  int err = 0;
  CURL *easy = NULL;

  if (c == NULL || url == NULL) {
    out->code = CURLE_BAD_FUNCTION_ARGUMENT;
    err = UV_EINVAL;
  } else if ((easy = curl_easy_init()) == NULL) {
    out->code = CURLE_OUT_OF_MEMORY;
    err = UV_ENOMEM;
  } else if ((out->code = get_setup(easy, url, &b)) != CURLE_OK) {
    err = weft_curl_error(out->code);
  } else {
    err = weft_curl_perform(c, easy, &out->code);
    collect_info(easy, out);
    /* The write callback's refusal is libcurl's write error: say why. */
    if (out->code == CURLE_WRITE_ERROR && b.truncated) err = UV_EFBIG;
    if (out->code == CURLE_WRITE_ERROR && b.nomem) err = UV_ENOMEM;
  }
  if (easy != NULL) curl_easy_cleanup(easy);

  /* The body is a string on every return, empty at worst. */
  if (b.buf == NULL) b.buf = malloc(1);
  if (b.buf == NULL) {
    weft_curl_result_free(out);
    return UV_ENOMEM;
  }
  b.buf[b.len] = '\0';
  out->body = b.buf;
  out->body_len = b.len;
  out->truncated = b.truncated;
  return err;
}

void weft_curl_result_free(weft_curl_result *r) {
  if (r == NULL) return;
  free(r->body);
  free(r->content_type);
  free(r->effective_url);
  memset(r, 0, sizeof *r);
}
