/* url.c: resolving references (RFC 3986 section 5) and normalising. */
#include "url.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* A growing string. */
typedef struct sbuf {
  char *p;
  size_t len, cap;
  int oom;
} sbuf;

static void sb_put(sbuf *b, const char *s, size_t n) {
  if (b->oom) return;
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap * 2 : 64;
    while (cap < b->len + n + 1) cap *= 2;
    char *p = realloc(b->p, cap);
    if (p == NULL) {
      b->oom = 1;
      return;
    }
    b->p = p;
    b->cap = cap;
  }
  memcpy(b->p + b->len, s, n);
  b->len += n;
  b->p[b->len] = '\0';
}

static void sb_putc(sbuf *b, char c) { sb_put(b, &c, 1); }

static void sb_puts(sbuf *b, const char *s) { sb_put(b, s, strlen(s)); }

/* The string of b (never NULL unless out of memory). */
static char *sb_take(sbuf *b) {
  if (b->oom) {
    free(b->p);
    return NULL;
  }
  if (b->p == NULL) return strdup("");
  return b->p;
}

static void set_why(char *why, size_t len, const char *fmt, ...) {
  if (why == NULL || len == 0) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(why, len, fmt, ap);
  va_end(ap);
}

static int is_unreserved(unsigned char c) {
  return isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

/* Characters that may stand as they are in a path (pchar and '/'), or in a
 * query when query is set ('?' as well). */
static int path_allowed(unsigned char c, int query) {
  if (is_unreserved(c)) return 1;
  if (strchr("!$&'()*+,;=:@/", c) != NULL && c != '\0') return 1;
  return query && c == '?';
}

static int hexval(unsigned char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* Appends s[0..len) to b with its percent-encoding normalised. */
static void put_encoded(sbuf *b, const char *s, size_t len, int query) {
  static const char hex[] = "0123456789ABCDEF";
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '%' && i + 2 < len && hexval((unsigned char)s[i + 1]) >= 0 &&
        hexval((unsigned char)s[i + 2]) >= 0) {
      unsigned char v = (unsigned char)(hexval((unsigned char)s[i + 1]) * 16 +
                                        hexval((unsigned char)s[i + 2]));
      if (is_unreserved(v)) {
        sb_putc(b, (char)v);
      } else {
        char e[3] = {'%', hex[v >> 4], hex[v & 15]};
        sb_put(b, e, 3);
      }
      i += 2;
    } else if (c != '%' && path_allowed(c, query)) {
      sb_putc(b, (char)c);
    } else {
      char e[3] = {'%', hex[c >> 4], hex[c & 15]};
      sb_put(b, e, 3);
    }
  }
}

char *ws_url_normalise_path(const char *s, size_t len) {
  sbuf b = {0};
  put_encoded(&b, s, len, 1);
  return sb_take(&b);
}

/* Removes "." and ".." segments from path (which starts with '/'),
 * appending the result to out. */
static void remove_dots(sbuf *out, const char *path) {
  /* Offsets in out of the start of each kept segment, a stack. */
  size_t base = out->len;
  size_t stack_cap = 16, depth = 0;
  size_t *starts = malloc(stack_cap * sizeof *starts);
  if (starts == NULL) {
    out->oom = 1;
    return;
  }
  const char *p = path + 1; /* past the leading '/' */
  for (;;) {
    const char *slash = strchr(p, '/');
    size_t n = slash ? (size_t)(slash - p) : strlen(p);
    int last = slash == NULL;
    if (n == 1 && p[0] == '.') {
      if (last) {
        if (depth == stack_cap) {
          size_t *g = realloc(starts, stack_cap * 2 * sizeof *starts);
          if (g == NULL) break;
          starts = g;
          stack_cap *= 2;
        }
        starts[depth++] = out->len;
        sb_putc(out, '/');
      }
    } else if (n == 2 && p[0] == '.' && p[1] == '.') {
      if (depth > 0) out->len = starts[--depth];
      if (out->p != NULL) out->p[out->len] = '\0';
      if (last) {
        starts[depth++] = out->len;
        sb_putc(out, '/');
      }
    } else {
      if (depth == stack_cap) {
        size_t *g = realloc(starts, stack_cap * 2 * sizeof *starts);
        if (g == NULL) break;
        starts = g;
        stack_cap *= 2;
      }
      starts[depth++] = out->len;
      sb_putc(out, '/');
      sb_put(out, p, n);
    }
    if (last) break;
    p = slash + 1;
  }
  free(starts);
  if (out->len == base) sb_putc(out, '/');
}

/* A reference split into its parts (RFC 3986 section 3); each part points
 * into a copy of the reference and has a length; absent parts are NULL. */
typedef struct ref_parts {
  const char *scheme;
  size_t scheme_len;
  const char *authority; /* NULL: no "//" */
  size_t authority_len;
  const char *path;
  size_t path_len;
  const char *query; /* NULL: no '?' */
  size_t query_len;
} ref_parts;

static void split_ref(const char *s, ref_parts *r) {
  memset(r, 0, sizeof *r);
  const char *p = s;
  if (isalpha((unsigned char)*p)) {
    const char *q = p + 1;
    while (isalnum((unsigned char)*q) || *q == '+' || *q == '-' || *q == '.')
      q++;
    if (*q == ':') {
      r->scheme = p;
      r->scheme_len = (size_t)(q - p);
      p = q + 1;
    }
  }
  if (p[0] == '/' && p[1] == '/') {
    p += 2;
    r->authority = p;
    while (*p && *p != '/' && *p != '?' && *p != '#') p++;
    r->authority_len = (size_t)(p - r->authority);
  }
  r->path = p;
  while (*p && *p != '?' && *p != '#') p++;
  r->path_len = (size_t)(p - r->path);
  if (*p == '?') {
    r->query = ++p;
    while (*p && *p != '#') p++;
    r->query_len = (size_t)(p - r->query);
  }
}

/* Parses an authority into a lower-case host and a port (-1: default).
 * Returns 0, or -1 with why. */
static int parse_authority(const char *a, size_t len, sbuf *host, int *port,
                           char *why, size_t why_len) {
  const char *at = NULL;
  for (size_t i = 0; i < len; i++)
    if (a[i] == '@') at = a + i;
  if (at != NULL) { /* userinfo is left out of crawled URLs */
    len -= (size_t)(at + 1 - a);
    a = at + 1;
  }
  const char *end = a + len, *colon = NULL;
  if (len > 0 && a[0] == '[') {
    const char *close = memchr(a, ']', len);
    if (close == NULL) {
      set_why(why, why_len, "unclosed IPv6 address");
      return -1;
    }
    for (const char *c = a; c <= close; c++) {
      if (!(isxdigit((unsigned char)*c) || *c == ':' || *c == '.' ||
            *c == '[' || *c == ']')) {
        set_why(why, why_len, "bad IPv6 address");
        return -1;
      }
      sb_putc(host, (char)tolower((unsigned char)*c));
    }
    if (close + 1 < end) {
      if (close[1] != ':') {
        set_why(why, why_len, "junk after the IPv6 address");
        return -1;
      }
      colon = close + 1;
    }
  } else {
    colon = memchr(a, ':', len);
    const char *hend = colon ? colon : end;
    if (hend == a) {
      set_why(why, why_len, "no host");
      return -1;
    }
    for (const char *c = a; c < hend; c++) {
      unsigned char ch = (unsigned char)*c;
      if (!(isalnum(ch) || ch == '-' || ch == '.' || ch == '_' || ch == '~' ||
            ch >= 0x80)) {
        set_why(why, why_len, "bad character in the host");
        return -1;
      }
      sb_putc(host, (char)tolower(ch));
    }
  }
  *port = -1;
  if (colon != NULL && colon + 1 < end) {
    long v = 0;
    for (const char *c = colon + 1; c < end; c++) {
      if (!isdigit((unsigned char)*c) || v > 65535) {
        set_why(why, why_len, "bad port");
        return -1;
      }
      v = v * 10 + (*c - '0');
    }
    if (v < 1 || v > 65535) {
      set_why(why, why_len, "port out of range");
      return -1;
    }
    *port = (int)v;
  }
  return 0;
}

/* Copies ref with leading and trailing blanks dropped, tabs and newlines
 * inside removed and backslashes made slashes, as browsers read hrefs. */
static char *clean_ref(const char *ref) {
  while (*ref != '\0' && (unsigned char)*ref <= ' ') ref++;
  size_t n = strlen(ref);
  while (n > 0 && (unsigned char)ref[n - 1] <= ' ') n--;
  char *out = malloc(n + 1);
  if (out == NULL) return NULL;
  size_t k = 0;
  int in_query = 0;
  for (size_t i = 0; i < n; i++) {
    char c = ref[i];
    if (c == '\t' || c == '\n' || c == '\r') continue;
    if (c == '?' || c == '#') in_query = 1;
    if (c == '\\' && !in_query) c = '/';
    out[k++] = c;
  }
  out[k] = '\0';
  return out;
}

static int scheme_is(const ref_parts *r, const char *name) {
  return r->scheme != NULL && r->scheme_len == strlen(name) &&
         strncasecmp(r->scheme, name, r->scheme_len) == 0;
}

int ws_url_resolve(const char *base, const char *ref, char **out, char *why,
                   size_t why_len) {
  *out = NULL;
  char *r = clean_ref(ref);
  char *b = base != NULL ? clean_ref(base) : NULL;
  sbuf res = {0}, host = {0}, path = {0};
  int rc = -1;
  if (r == NULL || (base != NULL && b == NULL)) {
    set_why(why, why_len, "out of memory");
    goto out;
  }
  ref_parts R, B;
  split_ref(r, &R);
  if (b != NULL) split_ref(b, &B);
  if (R.scheme == NULL && b == NULL) {
    set_why(why, why_len, "not an absolute URL");
    goto out;
  }
  const ref_parts *S = R.scheme != NULL ? &R : &B; /* where the scheme is */
  if (!scheme_is(S, "http") && !scheme_is(S, "https")) {
    set_why(why, why_len, "not an http or https URL");
    goto out;
  }
  int https = scheme_is(S, "https");
  /* The authority, path and query of the target (RFC 3986 5.2.2). */
  const ref_parts *A; /* whose authority */
  const char *q = NULL;
  size_t qlen = 0;
  if (R.scheme != NULL || R.authority != NULL) {
    /* "http:foo" without "//" in a page of the same scheme is relative,
     * as browsers take it. */
    if (R.authority == NULL && b != NULL && R.scheme != NULL &&
        scheme_is(&B, https ? "https" : "http")) {
      R.scheme = NULL;
      goto relative;
    }
    A = &R;
    sb_putc(&path, '/');
    if (R.path_len > 0) {
      path.len = 0;
      if (R.path[0] != '/') sb_putc(&path, '/');
      sb_put(&path, R.path, R.path_len);
    }
    q = R.query;
    qlen = R.query_len;
  } else {
  relative:
    A = &B;
    if (R.path_len == 0) {
      sb_put(&path, B.path, B.path_len);
      if (R.query != NULL) {
        q = R.query;
        qlen = R.query_len;
      } else {
        q = B.query;
        qlen = B.query_len;
      }
    } else if (R.path[0] == '/') {
      sb_put(&path, R.path, R.path_len);
      q = R.query;
      qlen = R.query_len;
    } else {
      /* Merge: the base's path up to its last '/', then the reference. */
      size_t keep = 0;
      for (size_t i = 0; i < B.path_len; i++)
        if (B.path[i] == '/') keep = i + 1;
      if (keep == 0) sb_putc(&path, '/');
      sb_put(&path, B.path, keep);
      sb_put(&path, R.path, R.path_len);
      q = R.query;
      qlen = R.query_len;
    }
    if (path.len == 0 || path.p[0] != '/') {
      sbuf p2 = {0};
      sb_putc(&p2, '/');
      if (path.p != NULL) sb_puts(&p2, path.p);
      free(path.p);
      path = p2;
    }
  }
  if (A->authority == NULL) {
    set_why(why, why_len, "no host");
    goto out;
  }
  int port;
  if (parse_authority(A->authority, A->authority_len, &host, &port, why,
                      why_len) != 0)
    goto out;
  if (host.len == 0) {
    set_why(why, why_len, "no host");
    goto out;
  }
  sb_puts(&res, https ? "https://" : "http://");
  sb_put(&res, host.p, host.len);
  if (port > 0 && port != (https ? 443 : 80)) {
    char pb[16];
    snprintf(pb, sizeof pb, ":%d", port);
    sb_puts(&res, pb);
  }
  /* Percent-encoding first (so that %2E is a dot), then dot segments. */
  sbuf enc = {0};
  put_encoded(&enc, path.p != NULL ? path.p : "/", path.len ? path.len : 1, 0);
  char *encp = sb_take(&enc);
  if (encp == NULL) {
    set_why(why, why_len, "out of memory");
    goto out;
  }
  if (encp[0] != '/') { /* cannot happen: paths start with '/' */
    free(encp);
    set_why(why, why_len, "bad path");
    goto out;
  }
  remove_dots(&res, encp);
  free(encp);
  if (q != NULL && qlen > 0) {
    sb_putc(&res, '?');
    put_encoded(&res, q, qlen, 1);
  }
  if (res.oom) {
    set_why(why, why_len, "out of memory");
    goto out;
  }
  *out = res.p;
  res.p = NULL;
  rc = 0;
out:
  free(res.p);
  free(host.p);
  free(path.p);
  free(r);
  free(b);
  return rc;
}

int ws_url_parse(const char *url, ws_url *out) {
  memset(out, 0, sizeof *out);
  ref_parts R;
  split_ref(url, &R);
  if (R.authority == NULL) return -1;
  int https = scheme_is(&R, "https");
  if (!https && !scheme_is(&R, "http")) return -1;
  sbuf host = {0};
  int port;
  if (parse_authority(R.authority, R.authority_len, &host, &port, NULL, 0) !=
          0 ||
      host.len == 0) {
    free(host.p);
    return -1;
  }
  out->scheme = strdup(https ? "https" : "http");
  out->host = host.p;
  out->port = port > 0 ? port : (https ? 443 : 80);
  out->path = R.path_len ? strndup(R.path, R.path_len) : strdup("/");
  out->query = R.query ? strndup(R.query, R.query_len) : NULL;
  if (out->scheme == NULL || out->path == NULL ||
      (R.query != NULL && out->query == NULL)) {
    ws_url_free(out);
    return -1;
  }
  return 0;
}

void ws_url_free(ws_url *u) {
  free(u->scheme);
  free(u->host);
  free(u->path);
  free(u->query);
  memset(u, 0, sizeof *u);
}

char *ws_url_host_key(const ws_url *u) {
  size_t n = strlen(u->scheme) + strlen(u->host) + 16;
  char *s = malloc(n);
  if (s != NULL) snprintf(s, n, "%s://%s:%d", u->scheme, u->host, u->port);
  return s;
}

char *ws_url_path_query(const ws_url *u) {
  size_t n = strlen(u->path) + (u->query ? strlen(u->query) + 1 : 0) + 1;
  char *s = malloc(n);
  if (s == NULL) return NULL;
  if (u->query)
    snprintf(s, n, "%s?%s", u->path, u->query);
  else
    snprintf(s, n, "%s", u->path);
  return s;
}
