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
 * that may be left and removes them. --resume loads the finished items into
 * a hash table (memory grows with the journal, about a hundred bytes an
 * item) and the batcher skips those whose size and mtime are unchanged.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fp.h"

typedef struct done_item {
  char *path;
  char *result;
  uint64_t size;
  int64_t mtime_ns;
  struct done_item *next;
} done_item;

struct fp_journal {
  int fd;
  int do_fsync;
  done_item **table;
  size_t buckets, count;
};

static uint64_t hash_str(const char *s) {
  uint64_t h = 1469598103934665603ULL;
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ULL;
  return h;
}

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

static int table_put(fp_journal *j, char *path, char *result, uint64_t size,
                     int64_t mtime_ns) {
  if (j->count >= j->buckets) {
    size_t nb = j->buckets ? j->buckets * 2 : 1024;
    done_item **t = calloc(nb, sizeof *t);
    if (t == NULL) return -1;
    for (size_t i = 0; i < j->buckets; i++) {
      for (done_item *d = j->table[i], *next; d; d = next) {
        next = d->next;
        size_t b = hash_str(d->path) & (nb - 1);
        d->next = t[b];
        t[b] = d;
      }
    }
    free(j->table);
    j->table = t;
    j->buckets = nb;
  }
  size_t b = hash_str(path) & (j->buckets - 1);
  for (done_item *d = j->table[b]; d; d = d->next) {
    if (strcmp(d->path, path) == 0) { /* a later record wins */
      free(d->result);
      free(path);
      d->result = result;
      d->size = size;
      d->mtime_ns = mtime_ns;
      return 0;
    }
  }
  done_item *d = malloc(sizeof *d);
  if (d == NULL) return -1;
  *d = (done_item){path, result, size, mtime_ns, j->table[b]};
  j->table[b] = d;
  j->count++;
  return 0;
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
  while ((len = getline(&line, &cap, f)) > 0) {
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
      char *p = strdup(f4), *r = strdup(f3);
      if (p == NULL || r == NULL ||
          table_put(j, p, r, strtoull(f1, NULL, 10), strtoll(f2, NULL, 10))) {
        free(p);
        free(r);
        free(line);
        fclose(f);
        return -1;
      }
    }
  }
  free(line);
  fclose(f);
  if (removed > 0)
    weft_log(WEFT_LOG_INFO, "removed temporary files left by a crash",
             "count=%zu", removed);
  return 0;
}

fp_journal *fp_journal_open(const char *path, int resume, int do_fsync) {
  fp_journal *j = calloc(1, sizeof *j);
  if (j == NULL) return NULL;
  j->do_fsync = do_fsync;
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
    j->fd = -1;
    fp_journal_close(j);
    return NULL;
  }
  return j;
}

const char *fp_journal_lookup(fp_journal *j, const char *path, uint64_t size,
                              int64_t mtime_ns) {
  if (j->buckets == 0) return NULL;
  size_t b = hash_str(path) & (j->buckets - 1);
  for (done_item *d = j->table[b]; d; d = d->next)
    if (strcmp(d->path, path) == 0)
      return d->size == size && d->mtime_ns == mtime_ns ? d->result : NULL;
  return NULL;
}

/* Appends prefix and path (escaped) as one line with one write. */
static void journal_write(fp_journal *j, const char *prefix, const char *path) {
  size_t plen = strlen(prefix), n = strlen(path);
  char *buf = malloc(plen + 2 * n + 2);
  if (buf == NULL) return;
  memcpy(buf, prefix, plen);
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
  for (size_t i = 0; i < j->buckets; i++) {
    for (done_item *d = j->table[i], *next; d; d = next) {
      next = d->next;
      free(d->path);
      free(d->result);
      free(d);
    }
  }
  free(j->table);
  free(j);
}
