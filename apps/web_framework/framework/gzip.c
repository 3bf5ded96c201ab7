/* gzip.c: the gzip middleware (zlib).
 *
 * It works on the buffered body once the rest of the chain has answered:
 * streamed bodies and files pass untouched, and so do bodies that are
 * small, already encoded, of a type that does not compress (images,
 * archives), or that would not get smaller.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <zlib.h>

#include "wf_internal.h"

typedef struct gzip_opts {
  size_t min_bytes;
  int level;
} gzip_opts;

/* Whether s holds word, without regard to case. */
static int contains_ci(const char *s, const char *word) {
  size_t n = strlen(word);
  for (; *s; s++)
    if (strncasecmp(s, word, n) == 0) return 1;
  return 0;
}

/* Whether s starts with prefix, without regard to case. */
static int starts_with(const char *s, const char *prefix) {
  return strncasecmp(s, prefix, strlen(prefix)) == 0;
}

/* Whether a body of Content-Type type is worth compressing: text, and the
 * structured types that are text (JSON, JavaScript, XML, SVG, +json, +xml). */
static int compressible(const char *type) {
  if (type == NULL) return 0;
  while (*type == ' ' || *type == '\t') type++;
  if (starts_with(type, "text/") || starts_with(type, "application/json") ||
      starts_with(type, "application/javascript") ||
      starts_with(type, "application/x-javascript") ||
      starts_with(type, "application/xml") ||
      starts_with(type, "image/svg+xml") ||
      starts_with(type, "application/wasm"))
    return 1;
  /* Suffixes such as application/problem+json: look before parameters. */
  size_t end = strcspn(type, "; \t");
  return (end > 5 && strncasecmp(type + end - 5, "+json", 5) == 0) ||
         (end > 4 && strncasecmp(type + end - 4, "+xml", 4) == 0);
}

/* Parses a q-value ("1", "0.5", "0.000") at s; 1.0 when malformed, as if
 * the parameter were absent. */
static double parse_q(const char *s, const char *end) {
  while (s < end && (*s == ' ' || *s == '\t')) s++;
  if (s >= end || (*s != '0' && *s != '1')) return 1.0;
  double q = *s - '0';
  s++;
  if (s < end && *s == '.') {
    double scale = 0.1;
    for (s++; s < end && *s >= '0' && *s <= '9'; s++, scale /= 10) /* NOLINT(cert-flp30-c): s is the induction variable */
      q += (*s - '0') * scale;
  }
  return q > 1.0 ? 1.0 : q;
}

/* Whether Accept-Encoding value ae accepts gzip: "gzip" (or "x-gzip") with
 * q > 0, or failing that "*" with q > 0. */
int wf__accepts_gzip(const char *ae) {
  if (ae == NULL) return 0;
  double gzip_q = -1, star_q = -1;
  const char *p = ae;
  while (*p) {
    const char *end = strchr(p, ',');
    if (end == NULL) end = p + strlen(p);
    while (p < end && (*p == ' ' || *p == '\t')) p++;
    size_t n = strcspn(p, ";, \t");
    if (p + n > end) n = (size_t)(end - p);
    double q = 1.0;
    for (const char *s = p + n; s < end; s++) {
      if (*s != ';') continue;
      s++;
      while (s < end && (*s == ' ' || *s == '\t')) s++;
      if (end - s >= 2 && (s[0] == 'q' || s[0] == 'Q') && s[1] == '=')
        q = parse_q(s + 2, end);
    }
    if ((n == 4 && strncasecmp(p, "gzip", 4) == 0) ||
        (n == 6 && strncasecmp(p, "x-gzip", 6) == 0))
      gzip_q = q;
    else if (n == 1 && *p == '*')
      star_q = q;
    p = *end ? end + 1 : end;
  }
  double q = gzip_q >= 0 ? gzip_q : star_q;
  return q > 0;
}

/* Adds Accept-Encoding to Vary unless it is there already. */
static int add_vary(wf_ctx *c) {
  const char *vary = weft_http_response_get_header(c->res, "Vary");
  if (vary != NULL &&
      (strcmp(vary, "*") == 0 || contains_ci(vary, "accept-encoding")))
    return 0;
  return weft_http_response_header(c->res, "Vary", "Accept-Encoding");
}

/* Compresses len bytes of body into the arena. Returns the gzip stream's
 * length, or 0 when it fails or would not be smaller. */
static size_t deflate_body(wf_ctx *c, const void *body, size_t len, int level,
                           unsigned char **out) {
  z_stream zs;
  memset(&zs, 0, sizeof zs);
  /* 15 bits of window, plus 16: a gzip header and trailer. */
  if (deflateInit2(&zs, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) !=
      Z_OK)
    return 0;
  size_t bound = deflateBound(&zs, (uLong)len);
  *out = wf_alloc(c, bound);
  size_t produced = 0;
  if (*out != NULL) {
    zs.next_in = (Bytef *)(uintptr_t)body; /* NOLINT(performance-no-int-to-ptr): zlib's input is not const */
    zs.avail_in = (uInt)len;
    zs.next_out = *out;
    zs.avail_out = (uInt)bound;
    if (deflate(&zs, Z_FINISH) == Z_STREAM_END) produced = zs.total_out;
  }
  deflateEnd(&zs);
  return produced < len ? produced : 0;
}

/* Compresses the response of the rest of the chain when it is worth it. */
static int gzip_fn(wf_ctx *c, void *arg) {
  const gzip_opts *g = arg;
  int rc = wf_next(c);
  if (rc < 0 || weft_http_response_is_streaming(c->res) ||
      weft_http_response_has_file(c->res))
    return rc;
  int status = weft_http_response_get_status(c->res);
  if (status < 200 || status == 204 || status == 206 || status == 304)
    return rc;
  /* A body too small to compress is the same for every client: it needs
   * no Vary either, and the check costs no header lookup. */
  size_t len;
  const void *body = weft_http_response_get_body(c->res, &len);
  if (len < g->min_bytes) return rc;
  if (weft_http_response_get_header(c->res, "Content-Encoding") != NULL)
    return rc;
  if (!compressible(weft_http_response_get_header(c->res, "Content-Type")))
    return rc;
  const char *cc = weft_http_response_get_header(c->res, "Cache-Control");
  if (cc != NULL && contains_ci(cc, "no-transform")) return rc;
  /* The answer depends on Accept-Encoding whenever the type compresses,
   * whether or not this client's body is compressed. */
  int vrc = add_vary(c);
  if (vrc < 0) return vrc;
  if (!wf__accepts_gzip(wf_header(c, "Accept-Encoding"))) return rc;
  unsigned char *out = NULL;
  size_t n = deflate_body(c, body, len, g->level, &out);
  if (n == 0) return rc;
  int err = weft_http_response_body(c->res, out, n);
  if (err == 0)
    err = weft_http_response_header(c->res, "Content-Encoding", "gzip");
  /* A strong validator names these exact bytes: the compressed body is
   * another representation, so the tag becomes weak. */
  const char *etag = weft_http_response_get_header(c->res, "ETag");
  if (err == 0 && etag != NULL && etag[0] == '"') {
    char *weak = wf_sprintf(c, "W/%s", etag);
    if (weak != NULL) err = wf_set_header(c, "ETag", weak);
  }
  return err < 0 ? err : rc;
}

wf_middleware wf_gzip(wf_app *app, const wf_gzip_opts *opts) {
  gzip_opts *g = wf__app_own(app, sizeof *g, NULL);
  if (g == NULL) return (wf_middleware){NULL, NULL};
  g->min_bytes = opts != NULL && opts->min_bytes > 0 ? opts->min_bytes : 1024;
  g->level =
      opts != NULL && opts->level >= 1 && opts->level <= 9 ? opts->level : 6;
  return (wf_middleware){gzip_fn, g};
}
