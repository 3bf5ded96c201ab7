/* walk.c: the walker, a task that feeds a bounded stream of fp_entry items.
 *
 * Order: the entries come out sorted by their whole path in byte order (as
 * LC_ALL=C sort), without sorting the tree: each folder's entries are
 * sorted with a folder's name compared as if it ended in '/', and the walk
 * goes depth first, so every path of a folder falls between its neighbours.
 * Memory is one listing per level of the current path, never the tree.
 *
 * A folder is read and its entries stat'ed in one weft_blocking call, off
 * the loop. Symbolic links are skipped (and counted) unless -L; with -L a
 * link back to a folder on the current path is a loop, named and skipped.
 * The PATHs themselves are followed when they are links, as sha256sum does.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fp.h"

enum { K_FILE, K_DIR, K_LINK, K_OTHER };

typedef struct child {
  char *name;
  int kind;
  int err;
  uint64_t size;
  int64_t mtime_ns;
  uint64_t dev, ino;
} child;

typedef struct listing {
  char *path;
  child *items;
  size_t n, next;
  int depth;
  uint64_t dev, ino;
} listing;

void fp_entry_clear(fp_entry *e) {
  free(e->path);
  free(e->expect);
  e->path = NULL;
  e->expect = NULL;
}

static void entry_dispose(void *item, void *ctx) {
  (void)ctx;
  fp_entry_clear(item);
}

const weft_stream_item_ops *fp_entry_ops(void) {
  static const weft_stream_item_ops ops = {.dispose = entry_dispose};
  return &ops;
}

const char *fp_strerror(int err) {
  if (err == FP_ECORRUPT) return "corrupt, truncated, or not gzip or zstd data";
  return weft_strerror(err);
}

void fp_report_error(fp_counts *c, const char *path, int err) {
  fputs("file_processor: ", stderr);
  fp_write_escaped(stderr, path);
  fprintf(stderr, ": %s\n", fp_strerror(err));
  if (c) c->errors++;
}

/* The i-th byte of a name as sorted: a folder's name goes on with '/';
 * -1 past the end. */
static int sort_byte(const child *c, size_t len, size_t i) {
  if (i < len) return (unsigned char)c->name[i];
  if (i == len && c->kind == K_DIR) return '/';
  return -1;
}

/* Compares two names, a folder's as if it ended in '/'. */
static int name_cmp(const child *a, const child *b) {
  size_t la = strlen(a->name), lb = strlen(b->name);
  for (size_t i = 0;; i++) {
    int x = sort_byte(a, la, i), y = sort_byte(b, lb, i);
    if (x != y) return x - y;
    if (x < 0) return 0;
  }
}

static int child_cmp(const void *a, const void *b) { return name_cmp(a, b); }

static int64_t stat_mtime(const struct stat *st) {
  return fp_stat_mtime_ns(st);
}

static void fill_child(child *c, const struct stat *st) {
  c->kind = S_ISREG(st->st_mode)   ? K_FILE
            : S_ISDIR(st->st_mode) ? K_DIR
            : S_ISLNK(st->st_mode) ? K_LINK
                                   : K_OTHER;
  c->size = (uint64_t)st->st_size;
  c->mtime_ns = stat_mtime(st);
  c->dev = (uint64_t)st->st_dev;
  c->ino = (uint64_t)st->st_ino;
}

typedef struct list_job {
  const char *path;
  int follow;
  child *items;
  size_t n;
} list_job;

/* Reads and stats a folder's entries, then sorts them (thread pool). */
static int list_dir_blocking(void *arg) {
  list_job *j = arg;
  DIR *d = opendir(j->path);
  if (d == NULL) return -errno;
  size_t cap = 16;
  j->items = malloc(cap * sizeof *j->items);
  j->n = 0;
  if (j->items == NULL) {
    closedir(d);
    return UV_ENOMEM;
  }
  struct dirent *de;
  int err = 0;
  for (;;) {
    errno = 0; /* readdir() sets it only on an error */
    if ((de = readdir(d)) == NULL) break;
    const char *nm = de->d_name;
    if (nm[0] == '.' && (nm[1] == 0 || (nm[1] == '.' && nm[2] == 0))) continue;
    if (j->n == cap) {
      child *more = realloc(j->items, 2 * cap * sizeof *more);
      if (more == NULL) {
        err = UV_ENOMEM;
        break;
      }
      j->items = more;
      cap *= 2;
    }
    child *c = &j->items[j->n];
    memset(c, 0, sizeof *c);
    c->name = strdup(nm);
    if (c->name == NULL) {
      err = UV_ENOMEM;
      break;
    }
    j->n++;
    struct stat st;
    int flags = j->follow ? 0 : AT_SYMLINK_NOFOLLOW;
    if (fstatat(dirfd(d), nm, &st, flags) != 0) {
      c->err = -errno;
      c->kind = K_OTHER;
    } else {
      fill_child(c, &st);
    }
  }
  if (err == 0 && errno != 0 && de == NULL) err = -errno;
  closedir(d);
  if (err == 0) qsort(j->items, j->n, sizeof *j->items, child_cmp);
  return err;
}

static void free_children(child *items, size_t n) {
  for (size_t i = 0; i < n; i++) free(items[i].name);
  free(items);
}

typedef struct stat_job {
  const char *path;
  struct stat st;
} stat_job;

static int stat_blocking(void *arg) {
  stat_job *j = arg;
  return stat(j->path, &j->st) == 0 ? 0 : -errno;
}

static char *join_path(const char *dir, const char *name) {
  size_t a = strlen(dir), b = strlen(name);
  int slash = a > 0 && dir[a - 1] != '/';
  char *p = malloc(a + slash + b + 1);
  if (p == NULL) return NULL;
  memcpy(p, dir, a); /* NOLINT(bugprone-not-null-terminated-result): name's NUL copied below */
  if (slash) p[a] = '/';
  memcpy(p + a + slash, name, b + 1);
  return p;
}

/* Non-zero when name or path matches one of the globs: a glob without '/'
 * is matched against the name, one with '/' against the path. */
int fp_glob_match(const app_string_list *globs, const char *path) {
  const char *base = strrchr(path, '/');
  base = base ? base + 1 : path;
  for (size_t i = 0; i < globs->n; i++) {
    const char *g = globs->items[i];
    const char *subject = strchr(g, '/') ? path : base;
    if (fnmatch(g, subject, 0) == 0) return 1;
  }
  return 0;
}

typedef struct walker {
  fp_walk_opts o;
  const app_string_list *exclude;
  weft_stream *out;
  listing *stack;
  size_t depth, cap;
  weft_pipeline *p;
} walker;

/* Emits one file. Returns 0 or an error that ends the walk. */
static int emit(walker *w, const char *path, const child *c) {
  fp_entry e;
  memset(&e, 0, sizeof e);
  e.path = strdup(path);
  if (e.path == NULL) return UV_ENOMEM;
  e.size = c->size;
  e.mtime_ns = c->mtime_ns;
  int err = weft_stream_write(w->out, &e);
  if (err != 0) fp_entry_clear(&e);
  return err;
}

static int push_dir(walker *w, char *path, int depth, uint64_t dev,
                    uint64_t ino) {
  list_job j = {.path = path, .follow = w->o.follow};
  int err = weft_blocking(list_dir_blocking, &j);
  if (err == UV_ECANCELED || err == UV_ETIMEDOUT) {
    free_children(j.items, j.n);
    free(path);
    return err;
  }
  if (err != 0) {
    free_children(j.items, j.n);
    fp_report_error(w->o.counts, path, err);
    free(path);
    return w->o.stop_on_error ? err : 0;
  }
  if (w->depth == w->cap) {
    size_t cap = w->cap ? 2 * w->cap : 16;
    listing *more = realloc(w->stack, cap * sizeof *more);
    if (more == NULL) {
      free_children(j.items, j.n);
      free(path);
      return UV_ENOMEM;
    }
    w->stack = more;
    w->cap = cap;
  }
  w->stack[w->depth++] = (listing){.path = path,
                                   .items = j.items,
                                   .n = j.n,
                                   .depth = depth,
                                   .dev = dev,
                                   .ino = ino};
  return 0;
}

static int on_stack(walker *w, uint64_t dev, uint64_t ino) {
  for (size_t i = 0; i < w->depth; i++)
    if (w->stack[i].dev == dev && w->stack[i].ino == ino) return 1;
  return 0;
}

/* Walks the folders on the stack to the end. */
static int walk_stack(walker *w, uint64_t root_dev) {
  fp_counts *cnt = w->o.counts;
  while (w->depth > 0) {
    listing *top = &w->stack[w->depth - 1];
    if (top->next == top->n) {
      free_children(top->items, top->n);
      free(top->path);
      w->depth--;
      continue;
    }
    child *c = &top->items[top->next++];
    int depth = top->depth + 1;
    char *path = join_path(top->path, c->name);
    if (path == NULL) return UV_ENOMEM;
    int err = 0;
    if (c->err != 0) {
      fp_report_error(cnt, path, c->err);
      if (w->o.stop_on_error) err = c->err;
    } else if (c->kind == K_LINK) {
      cnt->skipped_links++;
    } else if (c->kind == K_DIR) {
      if (fp_glob_match(w->exclude, path) ||
          (w->o.max_depth >= 0 && depth >= w->o.max_depth) ||
          (!w->o.recursive) || (w->o.one_fs && c->dev != root_dev)) {
        cnt->filtered++;
      } else if (w->o.follow && on_stack(w, c->dev, c->ino)) {
        fputs("file_processor: ", stderr);
        fp_write_escaped(stderr, path);
        fputs(": file system loop (a link back to a folder above), skipped\n",
              stderr);
        cnt->skipped_links++;
      } else {
        err = push_dir(w, path, depth, c->dev, c->ino);
        path = NULL; /* owned by the stack now, or freed */
      }
    } else if (c->kind == K_FILE) {
      if (w->o.max_depth < 0 || depth <= w->o.max_depth)
        err = emit(w, path, c);
      else
        cnt->filtered++;
    } else {
      cnt->skipped_other++;
    }
    free(path);
    if (err != 0) return err;
    /* top may have moved with a realloc: it is looked up again. */
  }
  return 0;
}

/* Walks one PATH. */
static int walk_root(walker *w, const char *root) {
  if (strcmp(root, "-") == 0) { /* standard input, as sha256sum reads it */
    fp_entry e;
    memset(&e, 0, sizeof e);
    e.is_stdin = 1;
    e.path = strdup("-");
    if (e.path == NULL) return UV_ENOMEM;
    int err = weft_stream_write(w->out, &e);
    if (err != 0) fp_entry_clear(&e);
    return err;
  }
  stat_job sj = {.path = root};
  int err = weft_blocking(stat_blocking, &sj);
  if (err == UV_ECANCELED || err == UV_ETIMEDOUT) return err;
  if (err != 0) {
    fp_report_error(w->o.counts, root, err);
    return w->o.stop_on_error ? err : 0;
  }
  child c;
  memset(&c, 0, sizeof c);
  fill_child(&c, &sj.st);
  if (c.kind == K_FILE) return emit(w, root, &c);
  if (c.kind != K_DIR) {
    w->o.counts->skipped_other++;
    return 0;
  }
  char *path = strdup(root);
  if (path == NULL) return UV_ENOMEM;
  err = push_dir(w, path, 0, c.dev, c.ino);
  if (err != 0) return err;
  return walk_stack(w, c.dev);
}

typedef struct root_key {
  char *path;
  child c;
} root_key;

static int root_cmp(const void *a, const void *b) {
  const child *x = &((const root_key *)a)->c, *y = &((const root_key *)b)->c;
  return name_cmp(x, y);
}

static int walker_task(void *arg) {
  walker *w = arg;
  int err = 0;
  if (w->o.files_from != NULL) {
    fp_lines lines;
    err =
        fp_lines_open(&lines, w->p, w->o.files_from, w->o.null_sep ? 0 : '\n');
    while (err == 0) {
      int r = fp_lines_next(&lines);
      if (r <= 0) {
        err = r;
        break;
      }
      if (lines.len == 0) continue;
      err = walk_root(w, lines.line);
    }
    fp_lines_close(&lines);
  }
  /* The PATHs in byte order, a folder's name compared as if it ended in
   * '/' as within the walk (its kind is only a guess here: a stat for each
   * would be a round trip per PATH, and `PATH/` decides it anyway). */
  size_t n = w->o.roots->n;
  root_key *keys = n ? calloc(n, sizeof *keys) : NULL;
  if (n && keys == NULL) err = err ? err : UV_ENOMEM;
  for (size_t i = 0; keys && i < n; i++) {
    keys[i].path = w->o.roots->items[i];
    keys[i].c.name = keys[i].path;
    struct stat st;
    keys[i].c.kind =
        stat(keys[i].path, &st) == 0 && S_ISDIR(st.st_mode) ? K_DIR : K_FILE;
  }
  if (keys) qsort(keys, n, sizeof *keys, root_cmp);
  for (size_t i = 0; keys && i < n && err == 0; i++)
    err = walk_root(w, keys[i].path);
  free(keys);
  while (w->depth > 0) {
    listing *top = &w->stack[--w->depth];
    free_children(top->items, top->n);
    free(top->path);
  }
  free(w->stack);
  w->o.counts->walk_done = 1;
  weft_stream_end(w->out, err);
  free(w);
  return err;
}

/* The stream the walker writes: freed by run.c after the pipeline. */
weft_stream *fp_walk_start(weft_pipeline *p, const fp_walk_opts *o) {
  walker *w = calloc(1, sizeof *w);
  if (w == NULL) return NULL;
  w->o = *o;
  w->p = p;
  w->exclude = o->exclude;
  weft_stream_opts so = {.ops = fp_entry_ops()};
  w->out = weft_stream_new(sizeof(fp_entry), 256, &so);
  if (w->out == NULL) {
    free(w);
    return NULL;
  }
  weft_stream *out = w->out;
  if (weft_spawn(weft_pipeline_group(p), walker_task, w) != 0) {
    weft_stream_free(out);
    free(w);
    return NULL;
  }
  return out;
}

/* ---- Lines over a byte stream -------------------------------------------- */

typedef struct stdin_read {
  weft_chunk c;
} stdin_read;

static int stdin_read_blocking(void *arg) {
  stdin_read *r = arg;
  for (;;) {
    ssize_t n = read(STDIN_FILENO, r->c.data, r->c.len);
    if (n >= 0) {
      r->c.len = (size_t)n;
      return 0;
    }
    if (errno != EINTR) return -errno;
  }
}

/* Standard input as a stream of chunks: weft_stream_from_file() reads at
 * offsets, which a pipe does not have. */
typedef struct stdin_share {
  weft_stream *s;
  _Atomic int refs; /* the reading and the writing task */
} stdin_share;

static void share_release(stdin_share *sh) {
  if (atomic_fetch_sub(&sh->refs, 1) == 1) {
    weft_stream_free(sh->s);
    free(sh);
  }
}

static int stdin_task(void *arg) {
  stdin_share *sh = arg;
  weft_stream *out = sh->s;
  int err = 0;
  for (;;) {
    stdin_read r;
    if (weft_chunk_alloc(&r.c, 64 << 10) != 0) {
      err = UV_ENOMEM;
      break;
    }
    err = weft_blocking(stdin_read_blocking, &r);
    if (err != 0 || r.c.len == 0) {
      weft_chunk_free(&r.c);
      break;
    }
    if ((err = weft_stream_write(out, &r.c)) != 0) {
      weft_chunk_free(&r.c);
      break;
    }
  }
  weft_stream_end(out, err);
  share_release(sh);
  return err == WEFT_ECLOSED ? 0 : err;
}

int fp_lines_open(fp_lines *l, weft_pipeline *p, const char *path, int sep) {
  memset(l, 0, sizeof *l);
  l->sep = sep;
  if (strcmp(path, "-") != 0) {
    l->chunks = weft_stream_from_file(p, path, 64 << 10, NULL);
    return l->chunks ? 0 : UV_ENOMEM;
  }
  weft_stream_opts so = {.ops = weft_chunk_ops()};
  stdin_share *sh = calloc(1, sizeof *sh);
  if (sh == NULL) return UV_ENOMEM;
  sh->s = weft_stream_new(sizeof(weft_chunk), 4, &so);
  if (sh->s == NULL) {
    free(sh);
    return UV_ENOMEM;
  }
  atomic_init(&sh->refs, 2);
  if (weft_spawn(weft_pipeline_group(p), stdin_task, sh) != 0) {
    weft_stream_free(sh->s);
    free(sh);
    return UV_ENOMEM;
  }
  l->own = sh;
  l->chunks = sh->s;
  return 0;
}

int fp_lines_next(fp_lines *l) {
  l->len = 0;
  for (;;) {
    if (l->pos == l->cur.len) {
      weft_chunk_free(&l->cur);
      l->pos = 0;
      if (l->eof) return 0;
      int err = weft_stream_read(l->chunks, &l->cur);
      if (err == WEFT_ECLOSED) {
        l->eof = 1;
        l->cur.len = 0;
        if (l->len > 0) break;
        return 0;
      }
      if (err != 0) {
        l->cur.data = NULL;
        l->cur.len = 0;
        return err < 0 ? err : UV_EIO;
      }
      continue;
    }
    const unsigned char *start = l->cur.data + l->pos;
    size_t avail = l->cur.len - l->pos;
    const unsigned char *end = memchr(start, l->sep, avail);
    size_t take = end ? (size_t)(end - start) : avail;
    if (l->len + take + 1 > l->cap) {
      size_t cap = l->cap ? l->cap : 256;
      while (cap < l->len + take + 1) cap *= 2;
      char *more = realloc(l->line, cap);
      if (more == NULL) return UV_ENOMEM;
      l->line = more;
      l->cap = cap;
    }
    memcpy(l->line + l->len, start, take);
    l->len += take;
    l->pos += take + (end ? 1 : 0);
    if (end) break;
  }
  l->line[l->len] = '\0';
  return 1;
}

void fp_lines_close(fp_lines *l) {
  /* A reader that stops early ends its input so the file stage stops. */
  if (l->chunks && !l->eof) {
    weft_stream_end(l->chunks, 0);
    weft_chunk c;
    while (weft_stream_try_read(l->chunks, &c) == 0) weft_chunk_free(&c);
  }
  weft_chunk_free(&l->cur);
  free(l->line);
  l->line = NULL;
  if (l->own) share_release(l->own);
  l->own = NULL;
}
