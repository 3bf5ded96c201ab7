/* journal.c: --journal FILE and --resume.
 *
 * The journal is a text file of records, one a line, appended with one
 * write(2) each (O_APPEND), so that a SIGKILL leaves at worst a last line
 * cut short, which the loader ignores:
 *
 *   T <tab> TEMP                              a temporary file about to exist
 *   D <tab> SIZE <tab> MTIME_NS <tab> RESULT <tab> PATH   an item finished
 *
 * Paths are escaped as in the sum format (\\ and \n). A temporary file is
 * recorded before it is created, so after a crash --resume knows every one
 * that may be left and removes them.
 *
 * --resume reads the finished items into a table the batcher consults
 * (skipping those whose size and mtime are unchanged), in bounded memory
 * whatever the journal's length: up to --journal-memory bytes of records
 * are kept as one sorted array; a longer journal is cut into pieces of
 * that size, each sorted and written as a run to an unlinked temporary
 * file beside the journal (an external sort), and looked up through one
 * cursor per run. The walk asks in byte order of paths, so each cursor
 * only moves forward and a lookup costs a merge step, not a search; a
 * lookup out of order (--files-from) rewinds the cursors, which is slower
 * but still right. A later record of a path wins over an earlier one.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fp.h"

/* A finished item as the journal records it. */
typedef struct done_rec {
  char *path;
  char *result;
  uint64_t size;
  int64_t mtime_ns;
  uint64_t seq; /* its line in the journal: a later record wins */
} done_rec;

/* A run's record on disk: this header, then the path and the result. */
typedef struct run_head {
  uint32_t path_len, result_len;
  uint64_t size;
  int64_t mtime_ns;
  uint64_t seq;
} run_head;

/* Reads one sorted run of the temporary file, record by record. */
typedef struct run_cursor {
  uint64_t start, end; /* the run's bytes in the file */
  uint64_t fpos;       /* the file offset of buf + len */
  unsigned char *buf;
  size_t cap, len, off;
  run_head head;       /* the current record, when have */
  char *path, *result; /* its strings, NUL-terminated, in own buffers */
  size_t path_cap, result_cap;
  int have;
} run_cursor;

#define RUN_READ_BUF ((size_t)16 << 10)

struct fp_journal {
  int fd;
  int do_fsync;
  size_t memory; /* bytes of records kept in memory at most */
  /* Records being loaded, and the table when no run was spilled. */
  done_rec *recs;
  size_t n_recs, cap_recs, rec_bytes;
  uint64_t seq;
  /* Spilled runs, when the journal was longer than memory allows. */
  FILE *runs;
  run_cursor *cursors;
  size_t n_runs, cap_runs;
  /* The last lookup, which the next one starts from. */
  char *last_path;
  int last_found;
  done_rec last;
  size_t last_path_cap, last_result_cap;
};

/* Undoes the escaping of \\ and \n in place. */
static void unescape_in_place(char *s) {
  char *o = s;
  for (char *p = s; *p; p++) {
    if (*p == '\\' && p[1] == 'n') {
      *o++ = '\n';
      p++;
    } else if (*p == '\\' && p[1] == '\\') {
      *o++ = '\\';
      p++;
    } else {
      *o++ = *p;
    }
  }
  *o = '\0';
}

/* Byte order of paths, then journal order. */
static int rec_cmp(const void *a, const void *b) {
  const done_rec *x = a, *y = b;
  int c = strcmp(x->path, y->path);
  if (c != 0) return c;
  return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static void recs_clear(fp_journal *j) {
  for (size_t i = 0; i < j->n_recs; i++) {
    free(j->recs[i].path);
    free(j->recs[i].result);
  }
  j->n_recs = 0;
  j->rec_bytes = 0;
}

/* Opens the unlinked file the runs go to, beside the journal (not in /tmp,
 * which may be memory). Returns 0 or -1. */
static int runs_open(fp_journal *j, const char *journal_path) {
  const char *slash = strrchr(journal_path, '/');
  size_t dl = slash ? (size_t)(slash - journal_path) : 0;
  char *tmpl = malloc(dl + 40);
  if (tmpl == NULL) return -1;
  if (slash)
    snprintf(tmpl, dl + 40, "%.*s/.fp-tmp-journal-XXXXXX", (int)dl,
             journal_path);
  else
    snprintf(tmpl, dl + 40, ".fp-tmp-journal-XXXXXX");
  int fd = mkstemp(tmpl);
  if (fd >= 0) {
    unlink(tmpl);
    fcntl(fd, F_SETFD, FD_CLOEXEC);
  }
  free(tmpl);
  if (fd < 0) return -1;
  j->runs = fdopen(fd, "w+");
  if (j->runs == NULL) {
    close(fd);
    return -1;
  }
  return 0;
}

/* Sorts the records in memory and appends them to the file as one run. */
static int spill(fp_journal *j, const char *journal_path) {
  if (j->n_recs == 0) return 0;
  if (j->runs == NULL && runs_open(j, journal_path) != 0) return -1;
  if (j->n_runs == j->cap_runs) {
    size_t nc = j->cap_runs ? 2 * j->cap_runs : 8;
    run_cursor *c = realloc(j->cursors, nc * sizeof *c);
    if (c == NULL) return -1;
    j->cursors = c;
    j->cap_runs = nc;
  }
  run_cursor *c = &j->cursors[j->n_runs];
  memset(c, 0, sizeof *c);
  c->start = (uint64_t)ftello(j->runs);
  qsort(j->recs, j->n_recs, sizeof *j->recs, rec_cmp);
  for (size_t i = 0; i < j->n_recs; i++) {
    done_rec *d = &j->recs[i];
    run_head h = {(uint32_t)strlen(d->path), (uint32_t)strlen(d->result),
                  d->size, d->mtime_ns, d->seq};
    if (fwrite(&h, sizeof h, 1, j->runs) != 1 ||
        fwrite(d->path, 1, h.path_len, j->runs) != h.path_len ||
        fwrite(d->result, 1, h.result_len, j->runs) != h.result_len)
      return -1;
  }
  c->end = (uint64_t)ftello(j->runs);
  j->n_runs++;
  recs_clear(j);
  return 0;
}

/* Keeps a finished item; spills when the records outgrow the memory. */
static int rec_add(fp_journal *j, const char *journal_path, const char *path,
                   const char *result, uint64_t size, int64_t mtime_ns) {
  if (j->n_recs == j->cap_recs) {
    size_t nc = j->cap_recs ? 2 * j->cap_recs : 1024;
    done_rec *r = realloc(j->recs, nc * sizeof *r);
    if (r == NULL) return -1;
    j->recs = r;
    j->cap_recs = nc;
  }
  done_rec *d = &j->recs[j->n_recs];
  d->path = strdup(path);
  d->result = strdup(result);
  if (d->path == NULL || d->result == NULL) {
    free(d->path);
    free(d->result);
    return -1;
  }
  d->size = size;
  d->mtime_ns = mtime_ns;
  d->seq = j->seq++;
  j->n_recs++;
  /* The strings with malloc's overhead, and the array's slot. */
  j->rec_bytes += strlen(path) + strlen(result) + 2 * 32 + sizeof *d;
  if (j->rec_bytes >= j->memory) return spill(j, journal_path);
  return 0;
}

/* Makes sure the cursor's buffer holds need bytes from off. Returns 0, or
 * -1 when the run ends first. */
static int cursor_fill(fp_journal *j, run_cursor *c, size_t need) {
  if (c->len - c->off >= need) return 0;
  if (c->len > c->off) memmove(c->buf, c->buf + c->off, c->len - c->off);
  c->len -= c->off;
  c->off = 0;
  if (c->cap < need) {
    size_t nc = need > RUN_READ_BUF ? need : RUN_READ_BUF;
    unsigned char *b = realloc(c->buf, nc);
    if (b == NULL) return -1;
    c->buf = b;
    c->cap = nc;
  }
  int fd = fileno(j->runs);
  while (c->len < need && c->fpos < c->end) {
    size_t want = c->cap - c->len;
    if (want > c->end - c->fpos) want = (size_t)(c->end - c->fpos);
    ssize_t n = pread(fd, c->buf + c->len, want, (off_t)c->fpos);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return -1;
    c->len += (size_t)n;
    c->fpos += (uint64_t)n;
  }
  return c->len >= need ? 0 : -1;
}

static int take_string(char **dst, size_t *cap, const unsigned char *src,
                       size_t n) {
  if (*dst == NULL || *cap < n + 1) {
    char *b = realloc(*dst, n + 1);
    if (b == NULL) return -1;
    *dst = b;
    *cap = n + 1;
  }
  memcpy(*dst, src, n);
  (*dst)[n] = '\0';
  return 0;
}

/* Moves the cursor to its run's next record (have = 0 at the end). */
static void cursor_next(fp_journal *j, run_cursor *c) {
  c->have = 0;
  if (c->len - c->off == 0 && c->fpos >= c->end) return;
  if (cursor_fill(j, c, sizeof c->head) != 0) return;
  memcpy(&c->head, c->buf + c->off, sizeof c->head);
  size_t body = (size_t)c->head.path_len + c->head.result_len;
  if (cursor_fill(j, c, sizeof c->head + body) != 0) return;
  const unsigned char *p = c->buf + c->off + sizeof c->head;
  if (take_string(&c->path, &c->path_cap, p, c->head.path_len) != 0 ||
      take_string(&c->result, &c->result_cap, p + c->head.path_len,
                  c->head.result_len) != 0)
    return;
  c->off += sizeof c->head + body;
  c->have = 1;
}

static void cursor_rewind(fp_journal *j, run_cursor *c) {
  c->fpos = c->start;
  c->len = c->off = 0;
  cursor_next(j, c);
}

/* Loads path's records: finished items into the table, temporary files
 * removed. */
static int journal_load(fp_journal *j, const char *path) {
  FILE *f = fopen(path, "r");
  if (f == NULL) return errno == ENOENT ? 0 : -1;
  char *line = NULL;
  size_t cap = 0;
  ssize_t len;
  size_t removed = 0;
  int err = 0;
  while (err == 0 && (len = getline(&line, &cap, f)) > 0) {
    if (line[len - 1] != '\n') break; /* cut short by a crash */
    line[len - 1] = '\0';
    if (line[0] == 'T' && line[1] == '\t') {
      unescape_in_place(line + 2);
      if (unlink(line + 2) == 0) removed++;
    } else if (line[0] == 'D' && line[1] == '\t') {
      char *f1 = line + 2, *f2, *f3, *f4;
      if ((f2 = strchr(f1, '\t')) == NULL) continue;
      *f2++ = '\0';
      if ((f3 = strchr(f2, '\t')) == NULL) continue;
      *f3++ = '\0';
      if ((f4 = strchr(f3, '\t')) == NULL) continue;
      *f4++ = '\0';
      unescape_in_place(f4);
      err = rec_add(j, path, f4, f3, strtoull(f1, NULL, 10),
                    strtoll(f2, NULL, 10));
    }
  }
  free(line);
  fclose(f);
  if (err == 0 && j->runs != NULL) {
    /* The rest as a run too, then a cursor on each run. */
    err = spill(j, path);
    if (err == 0 && fflush(j->runs) != 0) err = -1;
    for (size_t i = 0; i < j->n_runs && err == 0; i++)
      cursor_rewind(j, &j->cursors[i]);
    weft_log(WEFT_LOG_INFO, "journal sorted into runs on disk",
             "records=%llu runs=%zu", (unsigned long long)j->seq, j->n_runs);
  } else if (err == 0 && j->n_recs > 1) {
    qsort(j->recs, j->n_recs, sizeof *j->recs, rec_cmp);
  }
  if (removed > 0)
    weft_log(WEFT_LOG_INFO, "removed temporary files left by a crash",
             "count=%zu", removed);
  return err;
}

fp_journal *fp_journal_open(const char *path, int resume, int do_fsync,
                            uint64_t memory) {
  fp_journal *j = calloc(1, sizeof *j);
  if (j == NULL) return NULL;
  j->do_fsync = do_fsync;
  j->fd = -1;
  j->memory = memory > 0 ? (size_t)memory : (size_t)8 << 20;
  if (resume && journal_load(j, path) != 0) {
    fp_error("%s: cannot read the journal: %s", path, strerror(errno));
    fp_journal_close(j);
    return NULL;
  }
  j->fd = open(
      path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | (resume ? 0 : O_TRUNC),
      0644);
  if (j->fd < 0) {
    fp_error("%s: cannot write the journal: %s", path, strerror(errno));
    fp_journal_close(j);
    return NULL;
  }
  return j;
}

/* The sorted array: the last record of path, or NULL. */
static const done_rec *table_find(fp_journal *j, const char *path) {
  size_t lo = 0, hi = j->n_recs;
  while (lo < hi) { /* the first record not before path */
    size_t mid = lo + (hi - lo) / 2;
    if (strcmp(j->recs[mid].path, path) < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  const done_rec *found = NULL;
  for (; lo < j->n_recs && strcmp(j->recs[lo].path, path) == 0; lo++)
    found = &j->recs[lo];
  return found;
}

/* The runs: moves every cursor up to path and keeps the latest record of
 * path in j->last. Returns 1 when found. */
static int runs_find(fp_journal *j, const char *path) {
  if (j->last_path != NULL && strcmp(path, j->last_path) < 0)
    for (size_t i = 0; i < j->n_runs; i++) cursor_rewind(j, &j->cursors[i]);
  int found = 0;
  for (size_t i = 0; i < j->n_runs; i++) {
    run_cursor *c = &j->cursors[i];
    int cmp = 0;
    while (c->have && (cmp = strcmp(c->path, path)) < 0) cursor_next(j, c);
    while (c->have && cmp == 0) {
      if (!found || c->head.seq > j->last.seq) {
        if (take_string(&j->last.result, &j->last_result_cap,
                        (const unsigned char *)c->result,
                        strlen(c->result)) != 0)
          return 0;
        j->last.size = c->head.size;
        j->last.mtime_ns = c->head.mtime_ns;
        j->last.seq = c->head.seq;
        found = 1;
      }
      cursor_next(j, c);
      if (c->have) cmp = strcmp(c->path, path);
    }
  }
  return found;
}

const char *fp_journal_lookup(fp_journal *j, const char *path, uint64_t size,
                              int64_t mtime_ns) {
  const done_rec *d = NULL;
  if (j->n_runs == 0) {
    d = table_find(j, path);
  } else {
    /* The same path twice (a PATH given twice) finds the same answer. */
    if (j->last_path == NULL || strcmp(path, j->last_path) != 0) {
      j->last_found = runs_find(j, path);
      if (take_string(&j->last_path, &j->last_path_cap,
                      (const unsigned char *)path, strlen(path)) != 0)
        return NULL;
    }
    d = j->last_found ? &j->last : NULL;
  }
  return d && d->size == size && d->mtime_ns == mtime_ns ? d->result : NULL;
}

/* Appends prefix and path (escaped) as one line with one write. */
static void journal_write(fp_journal *j, const char *prefix, const char *path) {
  size_t plen = strlen(prefix), n = strlen(path);
  char *buf = malloc(plen + 2 * n + 2);
  if (buf == NULL) return;
  memcpy(buf, prefix, plen); /* NOLINT(bugprone-not-null-terminated-result): terminated below */
  size_t o = plen;
  for (size_t i = 0; i < n; i++) {
    if (path[i] == '\n') {
      buf[o++] = '\\';
      buf[o++] = 'n';
    } else if (path[i] == '\\') {
      buf[o++] = '\\';
      buf[o++] = '\\';
    } else {
      buf[o++] = path[i];
    }
  }
  buf[o++] = '\n';
  ssize_t w = write(j->fd, buf, o);
  (void)w; /* a journal that cannot be written costs a redo, not data */
#ifdef WEFT_HAVE_FDATASYNC /* not declared on macOS */
  if (j->do_fsync) fdatasync(j->fd);
#else
  if (j->do_fsync) fsync(j->fd);
#endif
  free(buf);
}

void fp_journal_temp(fp_journal *j, const char *tmp) {
  if (j != NULL) journal_write(j, "T\t", tmp);
}

void fp_journal_done(fp_journal *j, const fp_entry *e, const char *result) {
  char prefix[64 + FP_MAX_ALGS * FP_HEX_MAX];
  snprintf(prefix, sizeof prefix, "D\t%llu\t%lld\t%s\t",
           (unsigned long long)e->size, (long long)e->mtime_ns, result);
  journal_write(j, prefix, e->path);
}

void fp_journal_close(fp_journal *j) {
  if (j == NULL) return;
  if (j->fd >= 0) {
    if (j->do_fsync) fsync(j->fd);
    close(j->fd);
  }
  recs_clear(j);
  free(j->recs);
  for (size_t i = 0; i < j->n_runs; i++) {
    free(j->cursors[i].buf);
    free(j->cursors[i].path);
    free(j->cursors[i].result);
  }
  free(j->cursors);
  if (j->runs) fclose(j->runs);
  free(j->last_path);
  free(j->last.result);
  free(j);
}
