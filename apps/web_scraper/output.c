/* output.c: JSON lines, always valid UTF-8. */
#include "output.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "json.h" /* app_utf8_sequence */

void ws_buf_put(ws_buf *b, const char *s, size_t n) {
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + n + 1) cap *= 2;
    char *p = realloc(b->p, cap);
    if (p == NULL) abort(); /* a record cannot be half written */
    b->p = p;
    b->cap = cap;
  }
  memcpy(b->p + b->len, s, n);
  b->len += n;
  b->p[b->len] = '\0';
}

void ws_buf_puts(ws_buf *b, const char *s) { ws_buf_put(b, s, strlen(s)); }

void ws_buf_free(ws_buf *b) {
  free(b->p);
  memset(b, 0, sizeof *b);
}

void ws_json_string(ws_buf *b, const char *s) {
  if (s == NULL) {
    ws_buf_put(b, "null", 4);
    return;
  }
  static const char hex[] = "0123456789abcdef";
  const unsigned char *u = (const unsigned char *)s;
  size_t len = strlen(s);
  ws_buf_put(b, "\"", 1);
  size_t i = 0, run = 0; /* run: bytes copied as they are, pending */
  while (i < len) {
    unsigned char c = u[i];
    const char *esc = NULL;
    char ctl[7];
    size_t n = 1;
    if (c == '"')
      esc = "\\\"";
    else if (c == '\\')
      esc = "\\\\";
    else if (c == '\n')
      esc = "\\n";
    else if (c == '\r')
      esc = "\\r";
    else if (c == '\t')
      esc = "\\t";
    else if (c < 0x20 || c == 0x7F) {
      ctl[0] = '\\', ctl[1] = 'u', ctl[2] = '0', ctl[3] = '0';
      ctl[4] = hex[c >> 4], ctl[5] = hex[c & 15], ctl[6] = '\0';
      esc = ctl;
    } else if (c >= 0x80) {
      n = app_utf8_sequence(u + i, len - i);
      if (n == 0) {
        esc = "\xEF\xBF\xBD"; /* U+FFFD for a byte that is not UTF-8 */
        n = 1;
      }
    }
    if (esc != NULL) {
      ws_buf_put(b, s + i - run, run);
      run = 0;
      ws_buf_puts(b, esc);
      i += n;
    } else {
      run += n;
      i += n;
    }
  }
  ws_buf_put(b, s + i - run, run);
  ws_buf_put(b, "\"", 1);
}

static void put_int(ws_buf *b, int64_t v) {
  char num[32];
  int n = snprintf(num, sizeof num, "%" PRId64, v);
  ws_buf_put(b, num, (size_t)n);
}

/* ISO 8601 in UTC with milliseconds. */
static void put_time(ws_buf *b, int64_t ms) {
  time_t t = (time_t)(ms / 1000);
  struct tm tm;
  gmtime_r(&t, &tm);
  char s[40];
  int n = snprintf(s, sizeof s, "\"%04d-%02d-%02dT%02d:%02d:%02d.%03dZ\"",
                   tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                   tm.tm_min, tm.tm_sec, (int)(ms % 1000));
  ws_buf_put(b, s, (size_t)n);
}

void ws_record_json(ws_buf *b, const ws_record *r) {
  ws_buf_puts(b, "{\"url\":");
  ws_json_string(b, r->url);
  ws_buf_puts(b, ",\"final_url\":");
  ws_json_string(b, r->final_url);
  ws_buf_puts(b, ",\"status\":");
  if (r->status > 0)
    put_int(b, r->status);
  else
    ws_buf_puts(b, "null");
  ws_buf_puts(b, ",\"depth\":");
  put_int(b, r->depth);
  ws_buf_puts(b, ",\"referrer\":");
  ws_json_string(b, r->referrer);
  ws_buf_puts(b, ",\"content_type\":");
  ws_json_string(b, r->content_type);
  ws_buf_puts(b, ",\"bytes\":");
  put_int(b, (int64_t)r->bytes);
  ws_buf_puts(b, ",\"title\":");
  ws_json_string(b, r->title);
  ws_buf_puts(b, ",\"fields\":{");
  for (size_t i = 0; i < r->n_fields && r->values != NULL; i++) {
    if (i > 0) ws_buf_puts(b, ",");
    ws_json_string(b, r->fields[i].name);
    ws_buf_puts(b, ":");
    if (r->fields[i].all) {
      ws_buf_puts(b, "[");
      for (size_t k = 0; k < r->values[i].n_items; k++) {
        if (k > 0) ws_buf_puts(b, ",");
        ws_json_string(b, r->values[i].items[k]);
      }
      ws_buf_puts(b, "]");
    } else {
      ws_json_string(b, r->values[i].text);
    }
  }
  ws_buf_puts(b, "},\"links\":");
  put_int(b, (int64_t)r->links);
  ws_buf_puts(b, ",\"fetched_at\":");
  put_time(b, r->fetched_at_ms);
  ws_buf_puts(b, ",\"elapsed_ms\":");
  put_int(b, r->elapsed_ms);
  ws_buf_puts(b, ",\"error\":");
  ws_json_string(b, r->error);
  ws_buf_puts(b, "}\n");
}

/* ---- Finding records again ---------------------------------------------- */

char *ws_output_path(FILE *out, const char *given) {
  struct stat st;
  if (fstat(fileno(out), &st) != 0 || !S_ISREG(st.st_mode)) return NULL;
  char buf[PATH_MAX];
  if (given != NULL && strcmp(given, "-") != 0)
    return realpath(given, buf) != NULL ? strdup(buf) : NULL;
  /* Standard output redirected to a file. */
  char link[64];
  snprintf(link, sizeof link, "/proc/self/fd/%d", fileno(out));
  ssize_t n = readlink(link, buf, sizeof buf - 1);
  if (n <= 0 || buf[0] != '/') return NULL;
  buf[n] = '\0';
  return strdup(buf);
}

int64_t ws_output_repair(FILE *out, const char *path) {
  if (fflush(out) != 0) return -errno;
  /* out is write-only (append): read through a descriptor of our own. */
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -errno;
  struct stat st;
  if (fstat(fd, &st) != 0) {
    int e = -errno;
    close(fd);
    return e;
  }
  off_t end = st.st_size, cut = end;
  char buf[4096];
  int64_t rc = 0;
  /* Back to the last newline. */
  while (cut > 0) {
    off_t from = cut > (off_t)sizeof buf ? cut - (off_t)sizeof buf : 0;
    ssize_t n = pread(fd, buf, (size_t)(cut - from), from);
    if (n != (ssize_t)(cut - from)) {
      rc = n < 0 ? -errno : -EIO;
      break;
    }
    ssize_t i = n;
    while (i > 0 && buf[i - 1] != '\n') i--;
    if (i > 0) {
      cut = from + i;
      break;
    }
    cut = from;
  }
  close(fd);
  if (rc != 0) return rc;
  if (cut != end && ftruncate(fileno(out), cut) != 0) return -errno;
  return (int64_t)cut;
}

int ws_output_find(const char *path, int64_t offset, char *const *urls,
                   size_t n, int *found) {
  if (n == 0) return 0;
  FILE *f = fopen(path, "r");
  if (f == NULL) return -errno;
  int rc = 0;
  if (offset > 0 && fseeko(f, (off_t)offset, SEEK_SET) != 0) rc = -errno;
  /* Each record begins {"url":"...", as ws_record_json() writes it. */
  ws_buf *want = calloc(n, sizeof *want);
  if (want == NULL) rc = -ENOMEM;
  for (size_t i = 0; rc == 0 && i < n; i++) {
    ws_buf_puts(&want[i], "{\"url\":");
    ws_json_string(&want[i], urls[i]);
    ws_buf_puts(&want[i], ",");
  }
  char *line = NULL;
  size_t cap = 0;
  ssize_t len;
  while (rc == 0 && (len = getline(&line, &cap, f)) > 0) {
    if (line[len - 1] != '\n') break; /* not complete */
    for (size_t i = 0; i < n; i++)
      if (!found[i] && (size_t)len > want[i].len &&
          memcmp(line, want[i].p, want[i].len) == 0)
        found[i] = 1;
  }
  if (rc == 0 && ferror(f)) rc = -EIO;
  free(line);
  for (size_t i = 0; want != NULL && i < n; i++) ws_buf_free(&want[i]);
  free(want);
  fclose(f);
  return rc;
}
