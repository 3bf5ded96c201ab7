/* static.c: files from a directory, with validators, conditional requests
 * and single byte ranges, sent with sendfile through weft_http.
 *
 * Opening a file is file-system work that may block (a cold disk, a
 * network mount): realpath(), open() and fstat() run together in one
 * weft_blocking() call so that only the requesting task waits. A path
 * from a request is checked twice: its segments may not climb ("..") or
 * name hidden files, and unless links may be followed, the real path of
 * what it names must lie inside the root's real path.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "compat.h"
#include "wf_internal.h"

#ifndef O_CLOEXEC
#define O_CLOEXEC 0
#endif

/* What wf_static() keeps for its handler. */
typedef struct static_dir {
  char *root_real;
  char *index;
  int64_t max_age;
  int follow_symlinks;
} static_dir;

/* ---- Opening (on the thread pool)
 * --------------------------------------------- */

typedef struct open_job {
  const char *path;      /* in */
  const char *root_real; /* in: NULL, or the directory path must stay in */
  const char *index;     /* in: file to serve for a directory, or NULL */
  int dir_needs_slash;   /* in: a directory is answered with a redirect */
  int fd;                /* out: the open regular file, or -1 */
  struct stat st;        /* out */
  int redirect;          /* out: path is a directory; redirect to path/ */
  int used_index;        /* out: the file is the directory's index */
  int err;               /* out: 0 or a negative errno */
} open_job;

/* Resolves path and checks that it names root or something below it.
 * Returns the resolved path (malloc'd), or NULL with *err a negative errno.
 * On Windows, where a file also has a short name ("GIT~1" for ".git"),
 * the resolved (long) names below the root may not be hidden either. */
static char *resolve_inside(const char *path, const char *root, int *err) {
  char *resolved = app_realpath(path);
  if (resolved == NULL) {
    *err = -errno;
    return NULL;
  }
  int ok = app_path_inside(resolved, root);
#ifdef _WIN32
  /* From the root's last separator when it ends in one (a drive's root). */
  size_t n = strlen(root);
  if (n > 0 && app_path_separator(root[n - 1])) n--;
  for (const char *p = resolved + n; ok && *p; p++)
    if (app_path_separator(p[0]) && p[1] == '.') ok = 0;
#endif
  if (!ok) {
    free(resolved);
    *err = -EACCES;
    return NULL;
  }
  return resolved;
}

/* Opens path read-only as *fd and reads its status into *st. Returns 0 or
 * a negative errno (*fd then -1). POSIX systems open a directory too (its
 * index is opened relative to it); Windows's open() refuses directories,
 * so there a directory is only recognised (st_mode S_IFDIR, the rest 0)
 * and *fd is -1. */
static int open_stat(const char *path, int flags, int *fd, struct stat *st) {
  *fd = -1;
#ifdef _WIN32
  if (app_is_directory(path)) {
    memset(st, 0, sizeof *st);
    st->st_mode = S_IFDIR;
    return 0;
  }
#endif
  int f = open(path, flags);
  if (f < 0) return -errno;
  if (fstat(f, st) < 0) {
    int err = -errno;
    close(f);
    return err;
  }
  *fd = f;
  return 0;
}

/* Opens j->index in the directory dir (open as dir_fd on POSIX systems)
 * as *fd, its status in j->st. The index must not lead out of the root
 * either: on POSIX systems it is not followed when it is a link
 * (O_NOFOLLOW); on Windows, which has no openat(), its joined path is
 * resolved and checked as the request's was. Returns 0 or a negative
 * errno. */
static int open_index(open_job *j, int dir_fd, const char *dir, int *fd) {
  int flags = O_RDONLY | O_CLOEXEC | APP_O_BINARY;
#ifdef _WIN32
  (void)dir_fd;
  *fd = -1;
  size_t n = strlen(dir) + strlen(j->index) + 2;
  char *joined = malloc(n);
  if (joined == NULL) return -ENOMEM;
  snprintf(joined, n, "%s/%s", dir, j->index);
  int err = 0;
  char *resolved = NULL;
  if (j->root_real != NULL)
    resolved = resolve_inside(joined, j->root_real, &err);
  if (err == 0)
    err = open_stat(resolved != NULL ? resolved : joined, flags, fd, &j->st);
  free(resolved);
  free(joined);
  return err;
#else
  (void)dir;
#ifdef O_NOFOLLOW
  if (j->root_real != NULL) flags |= O_NOFOLLOW;
#endif
  *fd = openat(dir_fd, j->index, flags);
  if (*fd < 0 || fstat(*fd, &j->st) < 0) {
    int err = -errno;
    if (*fd >= 0) close(*fd);
    *fd = -1;
    return err;
  }
  return 0;
#endif
}

/* Resolves, checks and opens j->path. Runs on the thread pool. */
static int open_job_fn(void *arg) {
  open_job *j = arg;
  j->fd = -1;
  const char *path = j->path;
  char *resolved = NULL;
  if (j->root_real != NULL) {
    resolved = resolve_inside(j->path, j->root_real, &j->err);
    if (resolved == NULL) return 0;
    path = resolved;
  }
  int fd;
  j->err = open_stat(path, O_RDONLY | O_CLOEXEC | APP_O_BINARY, &fd, &j->st);
  if (j->err == 0 && S_ISDIR(j->st.st_mode) && j->index != NULL) {
    int dir_fd = fd;
    fd = -1;
    if (j->dir_needs_slash) {
      j->redirect = 1;
    } else {
      j->used_index = 1;
      j->err = open_index(j, dir_fd, path, &fd);
    }
    if (dir_fd >= 0) close(dir_fd);
  }
  free(resolved);
  if (j->err != 0 || j->redirect) return 0;
  if (!S_ISREG(j->st.st_mode)) {
    if (fd >= 0) close(fd);
    j->err = -ENOENT;
    return 0;
  }
  j->fd = fd;
  return 0;
}

/* ---- HTTP dates
 * --------------------------------------------------------------- */

static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed",
                                "Thu", "Fri", "Sat"};
static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

/* Writes t as an IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT") into
 * buf[64]; the names are English whatever the locale. */
static void http_date(time_t t, char *buf) {
  struct tm tm;
  app_gmtime(t, &tm);
  snprintf(buf, 64, "%s, %02d %s %04d %02d:%02d:%02d GMT", days[tm.tm_wday % 7],
           tm.tm_mday, months[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour,
           tm.tm_min, tm.tm_sec);
}

/* Parses an IMF-fixdate. Returns the time, or -1 when s is not one. */
static time_t parse_http_date(const char *s) {
  char wday[4], mon[4];
  int d, y, h, mi, sec;
  if (sscanf(s, "%3s, %2d %3s %4d %2d:%2d:%2d GMT", wday, &d, mon, &y, &h, &mi, /* NOLINT(cert-err34-c): field widths bound every number */
             &sec) != 7)
    return -1;
  int m = -1;
  for (int i = 0; i < 12; i++)
    if (strcmp(mon, months[i]) == 0) m = i;
  if (m < 0) return -1;
  struct tm tm = {.tm_year = y - 1900,
                  .tm_mon = m,
                  .tm_mday = d,
                  .tm_hour = h,
                  .tm_min = mi,
                  .tm_sec = sec};
  return app_timegm(&tm);
}

/* ---- Validators and ranges
 * ------------------------------------------------------ */

/* Whether If-None-Match value list matches etag (weak comparison). */
static int etag_matches(const char *list, const char *etag) {
  const char *tag = etag[0] == 'W' ? etag + 2 : etag;
  size_t tlen = strlen(tag);
  const char *p = list;
  while (*p) {
    while (*p == ' ' || *p == '\t' || *p == ',') p++;
    if (*p == '*') return 1;
    if (p[0] == 'W' && p[1] == '/') p += 2;
    size_t n = strcspn(p, ", \t");
    if (n == tlen && memcmp(p, tag, n) == 0) return 1;
    p += n;
  }
  return 0;
}

/* Parses a decimal number of up to 18 digits at *p. Returns -1 when none. */
static int64_t parse_pos(const char **p) {
  int64_t v = 0;
  int digits = 0;
  while (**p >= '0' && **p <= '9') {
    if (++digits > 18) return -1;
    v = v * 10 + (**p - '0');
    (*p)++;
  }
  return digits > 0 ? v : -1;
}

enum { RANGE_NONE, RANGE_OK, RANGE_UNSATISFIABLE };

/* Reads a Range header for a file of size bytes: one range gives RANGE_OK
 * with *first and *len; none, a malformed one or several (served whole, as
 * RFC 9110 allows) give RANGE_NONE. */
static int parse_range(const char *h, int64_t size, int64_t *first,
                       int64_t *len) {
  if (h == NULL || strncasecmp(h, "bytes=", 6) != 0) return RANGE_NONE;
  const char *p = h + 6;
  while (*p == ' ') p++;
  if (strchr(p, ',') != NULL) return RANGE_NONE;
  int64_t a = -1, b = -1;
  if (*p == '-') {
    p++;
    int64_t suffix = parse_pos(&p);
    while (*p == ' ') p++;
    if (suffix < 0 || *p != '\0') return RANGE_NONE;
    if (suffix == 0 || size == 0) return RANGE_UNSATISFIABLE;
    a = suffix >= size ? 0 : size - suffix;
    b = size - 1;
  } else {
    a = parse_pos(&p);
    if (a < 0 || *p != '-') return RANGE_NONE;
    p++;
    if (*p >= '0' && *p <= '9') {
      b = parse_pos(&p);
      if (b < 0 || b < a) return RANGE_NONE;
    }
    while (*p == ' ') p++;
    if (*p != '\0') return RANGE_NONE;
    if (a >= size) return RANGE_UNSATISFIABLE;
    if (b < 0 || b >= size) b = size - 1;
  }
  *first = a;
  *len = b - a + 1;
  return RANGE_OK;
}

/* ---- Serving
 * -------------------------------------------------------------------- */

/* Adds the validators and caching headers every answer about the file
 * carries (200, 206, 304). */
static int file_headers(wf_ctx *c, const char *etag, const char *modified,
                        int64_t max_age) {
  int rc = weft_http_response_header(c->res, "ETag", etag);
  if (rc == 0)
    rc = weft_http_response_header(c->res, "Last-Modified", modified);
  if (rc == 0 && max_age > 0) {
    char cc[48];
    snprintf(cc, sizeof cc, "max-age=%lld", (long long)max_age);
    rc = weft_http_response_header(c->res, "Cache-Control", cc);
  }
  return rc;
}

int wf__serve_path(wf_ctx *c, const char *path, const char *content_type,
                   const char *index, int64_t max_age, const char *root_real) {
  const char *url = wf_path(c);
  size_t url_len = strlen(url);
  open_job j = {.path = path,
                .root_real = root_real,
                .index = index,
                .dir_needs_slash =
                    index != NULL && url_len > 0 && url[url_len - 1] != '/'};
  int rc = weft_blocking(open_job_fn, &j);
  if (rc < 0) {
    if (j.fd >= 0) close(j.fd);
    return rc;
  }
  if (j.redirect) {
    const char *q = weft_http_request_query(c->req);
    char *to = wf_sprintf(c, "%s/%s%s", url, *q ? "?" : "", q);
    return to != NULL ? wf_redirect(c, 301, to) : UV_ENOMEM;
  }
  if (j.err != 0) {
    if (j.err == -ENOENT || j.err == -ENOTDIR || j.err == -EACCES ||
        j.err == -ELOOP || j.err == -ENAMETOOLONG || j.err == -EPERM)
      return wf_error(c, 404, "not found");
    return j.err;
  }

  int64_t size = (int64_t)j.st.st_size;
  long long mtime_ns = app_stat_mtime_ns(&j.st);
  char etag[64], modified[64];
  snprintf(etag, sizeof etag, "\"%llx-%llx\"", (long long)size, mtime_ns);
  http_date(j.st.st_mtime, modified);

  /* If-None-Match wins over If-Modified-Since (RFC 9110, 13.2.2). */
  const char *inm = wf_header(c, "If-None-Match");
  const char *ims = wf_header(c, "If-Modified-Since");
  int not_modified = 0;
  if (inm != NULL) {
    not_modified = etag_matches(inm, etag);
  } else if (ims != NULL) {
    time_t since = parse_http_date(ims);
    not_modified = since != -1 && j.st.st_mtime <= since;
  }
  if (not_modified) {
    close(j.fd);
    rc = file_headers(c, etag, modified, max_age);
    if (rc == 0) rc = wf_status(c, 304);
    return rc;
  }

  int64_t first = 0, len = size;
  int range = parse_range(wf_header(c, "Range"), size, &first, &len);
  /* If-Range: the range holds only for the representation it names. */
  const char *if_range = wf_header(c, "If-Range");
  if (range != RANGE_NONE && if_range != NULL && strcmp(if_range, etag) != 0 &&
      strcmp(if_range, modified) != 0) {
    range = RANGE_NONE;
    first = 0;
    len = size;
  }
  if (content_type == NULL)
    content_type = wf_mime_type(j.used_index ? index : path);
  rc = file_headers(c, etag, modified, max_age);
  if (rc == 0) rc = weft_http_response_header(c->res, "Accept-Ranges", "bytes");
  if (rc == 0 && range == RANGE_UNSATISFIABLE) {
    close(j.fd);
    char cr[48];
    snprintf(cr, sizeof cr, "bytes */%lld", (long long)size);
    rc = weft_http_response_header(c->res, "Content-Range", cr);
    if (rc == 0) rc = wf_error(c, 416, "range not satisfiable");
    return rc;
  }
  if (rc == 0) rc = wf_set_header(c, "Content-Type", content_type);
  if (rc == 0 && range == RANGE_OK) {
    char cr[80];
    snprintf(cr, sizeof cr, "bytes %lld-%lld/%lld", (long long)first,
             (long long)(first + len - 1), (long long)size);
    rc = weft_http_response_header(c->res, "Content-Range", cr);
    if (rc == 0) rc = wf_status(c, 206);
  } else if (rc == 0) {
    rc = wf_status(c, 200);
  }
  if (rc == 0) rc = weft_http_response_file(c->res, j.fd, first, len);
  if (rc < 0) {
    close(j.fd);
    return rc;
  }
  c->file_bytes = len;
  return 0;
}

int wf_send_file(wf_ctx *c, const char *path, const char *content_type) {
  return wf__serve_path(c, path, content_type, NULL, 0, NULL);
}

/* Whether rel (a decoded path below the root) is safe: no segment is
 * empty-named-dot ("." and ".." climb or stay) or hidden (".git"), and no
 * byte is a backslash (a separator elsewhere). On Windows no byte is a
 * colon either: a drive ("C:") or a stream ("index.html::$DATA"). */
static int safe_relative(const char *rel) {
#ifdef _WIN32
  const char *refused = "\\:";
#else
  const char *refused = "\\";
#endif
  const char *p = rel;
  while (*p) {
    while (*p == '/') p++;
    if (*p == '.') return 0;
    size_t n = strcspn(p, "/");
    for (size_t i = 0; i < n; i++)
      if (strchr(refused, p[i]) != NULL) return 0;
    p += n;
  }
  return 1;
}

/* Serves prefix/... from the directory in arg. */
static int static_handler(wf_ctx *c, void *arg) {
  const static_dir *d = arg;
  const char *rel = wf_param(c, "path");
  if (rel == NULL) rel = "";
  if (!safe_relative(rel)) return wf_error(c, 404, "not found");
  while (*rel == '/') rel++;
  char *full = wf_sprintf(c, "%s/%s", d->root_real, rel);
  if (full == NULL) return UV_ENOMEM;
  return wf__serve_path(c, full, NULL, d->index, d->max_age,
                        d->follow_symlinks ? NULL : d->root_real);
}

/* Frees what a static_dir holds. */
static void static_dir_free(void *p) {
  static_dir *d = p;
  free(d->root_real);
  free(d->index);
}

int wf_static(wf_group *g, const char *prefix, const char *root,
              const wf_static_opts *opts) {
  if (g == NULL || prefix == NULL || root == NULL) return UV_EINVAL;
  wf_static_opts none = {0};
  if (opts == NULL) opts = &none;
  const char *index = opts->index != NULL ? opts->index : "index.html";
  if (strchr(index, '/') != NULL || index[0] == '.') return UV_EINVAL;
  /* Start-up work: blocking calls are fine here. */
  char *real = app_realpath(root);
  struct stat st;
  if (real == NULL || stat(real, &st) < 0 || !S_ISDIR(st.st_mode)) {
    free(real);
    return UV_ENOENT;
  }
  static_dir *d = wf__app_own(g->app, sizeof *d, static_dir_free);
  if (d == NULL) {
    free(real);
    return UV_ENOMEM;
  }
  d->root_real = real;
  d->index = strdup(index);
  d->max_age = opts->max_age;
  d->follow_symlinks = opts->follow_symlinks;
  if (d->index == NULL) return UV_ENOMEM;
  size_t plen = strlen(prefix);
  while (plen > 0 && prefix[plen - 1] == '/') plen--;
  char *pattern = malloc(plen + sizeof "/*path");
  if (pattern == NULL) return UV_ENOMEM;
  memcpy(pattern, prefix, plen); /* NOLINT(bugprone-not-null-terminated-result): length-counted */
  memcpy(pattern + plen, "/*path", sizeof "/*path");
  int rc = wf_route(g, "GET", pattern, static_handler, d);
  free(pattern);
  return rc;
}
