/* response.c: what a handler writes: status, headers, bodies (text, JSON,
 * formatted), errors, redirects, cookies and streamed bodies.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "json.h"
#include "wf_internal.h"

int wf_status(wf_ctx *c, int status) {
  return weft_http_response_status(c->res, status);
}

int wf_get_status(const wf_ctx *c) {
  return weft_http_response_get_status(c->res);
}

int wf_add_header(wf_ctx *c, const char *name, const char *value) {
  return weft_http_response_header(c->res, name, value);
}

int wf_set_header(wf_ctx *c, const char *name, const char *value) {
  weft_http_response_remove_header(c->res, name);
  return weft_http_response_header(c->res, name, value);
}

int wf_send(wf_ctx *c, int status, const char *content_type, const void *data,
            size_t len) {
  int rc = weft_http_response_status(c->res, status);
  if (rc == 0 && content_type != NULL)
    rc = wf_set_header(c, "Content-Type", content_type);
  if (rc == 0) rc = weft_http_response_body(c->res, data, len);
  return rc;
}

int wf_text(wf_ctx *c, int status, const char *text) {
  return wf_send(c, status, "text/plain; charset=utf-8", text, strlen(text));
}

int wf_json(wf_ctx *c, int status, const cJSON *json) {
  char *text = cJSON_PrintUnformatted(json);
  if (text == NULL) return UV_ENOMEM;
  size_t len = strlen(text);
  /* cJSON copies bytes above 0x7F as they are: a string that is not UTF-8
   * has its bad bytes replaced, so that every answer is valid UTF-8. */
  if (app_utf8_invalid_at(text, len) >= 0) {
    char *fixed = app_utf8_repair(text, len, &len);
    cJSON_free(text);
    if (fixed == NULL) return UV_ENOMEM;
    int rc = wf_send(c, status, "application/json", fixed, len);
    free(fixed);
    return rc;
  }
  int rc = wf_send(c, status, "application/json", text, len);
  cJSON_free(text);
  return rc;
}

/* Formats fmt with ap into a small buffer, or into the arena when it does
 * not fit. Returns the text (length in *len), or NULL. */
static const char *format_v(wf_ctx *c, char *small, size_t small_len,
                            size_t *len, const char *fmt, va_list ap) {
  va_list copy;
  va_copy(copy, ap);
  int n = vsnprintf(small, small_len, fmt, copy);
  va_end(copy);
  if (n < 0) return NULL;
  *len = (size_t)n;
  if ((size_t)n < small_len) return small;
  char *big = wf_alloc(c, (size_t)n + 1);
  if (big == NULL) return NULL;
  vsnprintf(big, (size_t)n + 1, fmt, ap);
  return big;
}

int wf_jsonf(wf_ctx *c, int status, const char *fmt, ...) {
  char small[512];
  size_t len;
  va_list ap;
  va_start(ap, fmt);
  const char *text = format_v(c, small, sizeof small, &len, fmt, ap);
  va_end(ap);
  if (text == NULL) return UV_ENOMEM;
  return wf_send(c, status, "application/json", text, len);
}

int wf_printf(wf_ctx *c, const char *fmt, ...) {
  char small[512];
  size_t len;
  va_list ap;
  va_start(ap, fmt);
  const char *text = format_v(c, small, sizeof small, &len, fmt, ap);
  va_end(ap);
  if (text == NULL) return UV_ENOMEM;
  return weft_http_response_append(c->res, text, len);
}

const char *wf__json_escape(wf_ctx *c, const char *s) {
  /* Bytes that are not UTF-8 (from a request's path, say) become U+FFFD:
   * every JSON answer is valid UTF-8. */
  size_t len = strlen(s);
  size_t need = app_json_escape(s, len, NULL, 0) + 1;
  char *out = wf_alloc(c, need);
  if (out == NULL) return NULL;
  app_json_escape(s, len, out, need);
  return out;
}

const char *wf_json_escape(wf_ctx *c, const char *s) {
  return wf__json_escape(c, s);
}

int wf_error(wf_ctx *c, int status, const char *message) {
  const char *msg = wf__json_escape(c, message);
  if (msg == NULL) return UV_ENOMEM;
  /* The id is hex or checked by wf_request_id(): it needs no escaping. */
  return wf_jsonf(c, status, "{\"error\":%s,\"request_id\":\"%s\"}", msg,
                  wf_request_id(c));
}

int wf_redirect(wf_ctx *c, int status, const char *location) {
  if (status != 301 && status != 302 && status != 303 && status != 307 &&
      status != 308)
    return UV_EINVAL;
  int rc = wf_set_header(c, "Location", location);
  if (rc == 0) rc = weft_http_response_status(c->res, status);
  if (rc == 0) rc = weft_http_response_body(c->res, "", 0);
  return rc;
}

/* Whether every byte of s passes ok. */
static int all_bytes(const char *s, int (*ok)(unsigned char)) {
  for (; *s; s++)
    if (!ok((unsigned char)*s)) return 0;
  return 1;
}

static int cookie_name_byte(unsigned char ch) {
  return ch > 32 && ch < 127 && strchr("\"(),/:;<=>?@[\\]{}", ch) == NULL;
}

/* RFC 6265 cookie-octet. */
static int cookie_value_byte(unsigned char ch) {
  return ch == 0x21 || (ch >= 0x23 && ch <= 0x2b) ||
         (ch >= 0x2d && ch <= 0x3a) || (ch >= 0x3c && ch <= 0x5b) ||
         (ch >= 0x5d && ch <= 0x7e);
}

/* Attribute values (Path, Domain): no control bytes and no ';'. */
static int cookie_attr_byte(unsigned char ch) {
  return ch >= 0x20 && ch < 0x7f && ch != ';';
}

int wf_set_cookie(wf_ctx *c, const char *name, const char *value,
                  const wf_cookie_opts *opts) {
  wf_cookie_opts none = {0};
  if (opts == NULL) opts = &none;
  const char *path = opts->path != NULL ? opts->path : "/";
  if (*name == '\0' || !all_bytes(name, cookie_name_byte) ||
      !all_bytes(value, cookie_value_byte) ||
      !all_bytes(path, cookie_attr_byte) ||
      (opts->domain != NULL && !all_bytes(opts->domain, cookie_attr_byte)) ||
      (opts->same_site != NULL && strcasecmp(opts->same_site, "Strict") != 0 &&
       strcasecmp(opts->same_site, "Lax") != 0 &&
       strcasecmp(opts->same_site, "None") != 0))
    return UV_EINVAL;
  char max_age[64] = "";
  if (opts->max_age > 0)
    snprintf(max_age, sizeof max_age, "; Max-Age=%lld",
             (long long)opts->max_age);
  else if (opts->max_age < 0)
    snprintf(max_age, sizeof max_age,
             "; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT");
  char *line = wf_sprintf(
      c, "%s=%s; Path=%s%s%s%s%s%s%s%s", name, value, path,
      opts->domain ? "; Domain=" : "", opts->domain ? opts->domain : "",
      max_age, opts->http_only ? "; HttpOnly" : "",
      opts->secure ? "; Secure" : "", opts->same_site ? "; SameSite=" : "",
      opts->same_site ? opts->same_site : "");
  if (line == NULL) return UV_ENOMEM;
  return weft_http_response_header(c->res, "Set-Cookie", line);
}

/* ---- Streaming
 * ------------------------------------------------------------------ */

int wf_stream_start(wf_ctx *c, int status, const char *content_type) {
  int rc = weft_http_response_status(c->res, status);
  if (rc == 0 && content_type != NULL)
    rc = wf_set_header(c, "Content-Type", content_type);
  if (rc == 0) rc = weft_http_response_start(c->res);
  return rc;
}

int wf_stream_write(wf_ctx *c, const void *data, size_t len) {
  int rc = weft_http_response_write(c->res, data, len);
  if (rc == 0) c->stream_bytes += len;
  return rc;
}

int wf_stream_printf(wf_ctx *c, const char *fmt, ...) {
  char small[512];
  size_t len;
  va_list ap;
  va_start(ap, fmt);
  const char *text = format_v(c, small, sizeof small, &len, fmt, ap);
  va_end(ap);
  if (text == NULL) return UV_ENOMEM;
  return wf_stream_write(c, text, len);
}

uint64_t wf__response_bytes(const wf_ctx *c) {
  if (weft_http_response_has_file(c->res)) return (uint64_t)c->file_bytes;
  if (weft_http_response_is_streaming(c->res)) return c->stream_bytes;
  size_t len = 0;
  weft_http_response_get_body(c->res, &len);
  return len;
}

/* ---- Content types
 * ---------------------------------------------------------------- */

static const struct {
  const char *ext;
  const char *type;
} mime_types[] = {
    {"html", "text/html; charset=utf-8"},
    {"htm", "text/html; charset=utf-8"},
    {"css", "text/css; charset=utf-8"},
    {"js", "text/javascript; charset=utf-8"},
    {"mjs", "text/javascript; charset=utf-8"},
    {"json", "application/json"},
    {"map", "application/json"},
    {"txt", "text/plain; charset=utf-8"},
    {"md", "text/markdown; charset=utf-8"},
    {"csv", "text/csv; charset=utf-8"},
    {"xml", "application/xml"},
    {"svg", "image/svg+xml"},
    {"png", "image/png"},
    {"jpg", "image/jpeg"},
    {"jpeg", "image/jpeg"},
    {"gif", "image/gif"},
    {"webp", "image/webp"},
    {"avif", "image/avif"},
    {"ico", "image/x-icon"},
    {"wasm", "application/wasm"},
    {"pdf", "application/pdf"},
    {"woff", "font/woff"},
    {"woff2", "font/woff2"},
    {"ttf", "font/ttf"},
    {"otf", "font/otf"},
    {"mp4", "video/mp4"},
    {"webm", "video/webm"},
    {"mp3", "audio/mpeg"},
    {"ogg", "audio/ogg"},
    {"wav", "audio/wav"},
    {"zip", "application/zip"},
    {"gz", "application/gzip"},
    {"tar", "application/x-tar"},
};

const char *wf_mime_type(const char *path) {
  const char *slash = strrchr(path, '/');
  const char *dot = strrchr(slash != NULL ? slash : path, '.');
  if (dot != NULL) {
    for (size_t i = 0; i < sizeof mime_types / sizeof mime_types[0]; i++)
      if (strcasecmp(dot + 1, mime_types[i].ext) == 0)
        return mime_types[i].type;
  }
  return "application/octet-stream";
}
