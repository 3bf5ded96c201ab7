/* verify.c: a manifest against the files, and --update.
 *
 * Without PATHs, verify reads the manifest line by line and checks each
 * file it names: changed or missing. With PATHs it walks them too and
 * merges the two sorted sequences (the manifest, sorted by path as hash
 * writes it, and the walk, which comes out in the same order): a path in
 * both is checked, one only in the manifest is missing, one only on disk
 * is new. Either way memory holds one line and one entry, whatever the
 * manifest's size. A manifest that is not sorted is refused with PATHs
 * (without them the order does not matter).
 *
 * `hash --update MANIFEST` is the same merge: a file the manifest has,
 * not modified since the manifest was written (and of the same size where
 * the manifest records sizes), keeps its digest; the others are hashed.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fp.h"

typedef struct merger {
  fp_run *r;
  weft_pipeline *p;
  const char *manifest;
  weft_stream *walk; /* NULL: the manifest alone */
  weft_stream *out;
  int64_t manifest_mtime_ns;
  int want; /* the algorithm to read, or -1 to detect */
  uint64_t line_no;
} merger;

/* Non-zero when path is one of the roots or below one. */
static int under_roots(const app_string_list *roots, const char *path) {
  for (size_t i = 0; i < roots->n; i++) {
    const char *root = roots->items[i];
    size_t n = strlen(root);
    if (strncmp(path, root, n) == 0 &&
        (path[n] == '\0' || path[n] == '/' || (n > 0 && root[n - 1] == '/')))
      return 1;
  }
  return 0;
}

/* Reads the next record. Returns 1, 0 at the end, or an error. */
static int next_record(merger *m, fp_lines *l, fp_record *rec, char **prev) {
  for (;;) {
    int rc = fp_lines_next(l);
    if (rc <= 0) return rc;
    m->line_no++;
    rc = fp_manifest_parse(l->line, l->len, m->want, rec);
    if (rc == 0) continue;
    if (rc < 0) {
      fp_error("%s:%llu: not a manifest line (sum, bsd or jsonl)", m->manifest,
               (unsigned long long)m->line_no);
      return UV_EINVAL;
    }
    fp_run *r = m->r;
    if (m->want < 0) {
      /* The first record decides the algorithm. */
      int a = rec->alg;
      if (a < 0) {
        size_t hl = strlen(rec->hex);
        a = hl == 64    ? FP_SHA256
            : hl == 128 ? FP_SHA512
            : hl == 40  ? FP_SHA1
            : hl == 32  ? FP_MD5
                        : -1;
      }
      if (a < 0) {
        fp_error("%s:%llu: a digest of %zu hex digits: give the algorithm "
                 "with -a",
                 m->manifest, (unsigned long long)m->line_no, strlen(rec->hex));
        free(rec->path);
        return UV_EINVAL;
      }
      m->want = a;
      r->algs[0] = (fp_alg)a;
      r->n_algs = 1;
    }
    if ((int)strlen(rec->hex) != fp_alg_hex_len((fp_alg)m->want)) {
      fp_error("%s:%llu: a %s digest has %d hex digits", m->manifest,
               (unsigned long long)m->line_no, fp_alg_name((fp_alg)m->want),
               fp_alg_hex_len((fp_alg)m->want));
      free(rec->path);
      return UV_EINVAL;
    }
    if (m->walk != NULL) {
      if (*prev != NULL && strcmp(*prev, rec->path) >= 0) {
        fp_error("%s:%llu: the manifest is not sorted by path (hash writes "
                 "it sorted; or verify without PATHs)",
                 m->manifest, (unsigned long long)m->line_no);
        free(rec->path);
        return UV_EINVAL;
      }
      free(*prev);
      *prev = strdup(rec->path);
    }
    return 1;
  }
}

static int emit(merger *m, fp_entry *e) {
  int err = weft_stream_write(m->out, e);
  if (err != 0) fp_entry_clear(e);
  return err;
}

static int merger_task(void *arg) {
  merger *m = arg;
  fp_run *r = m->r;
  const fp_config *cfg = r->cfg;
  int update = r->cmd == FP_HASH;
  fp_lines lines;
  char *prev = NULL;
  int err = fp_lines_open(&lines, m->p, m->manifest, '\n');
  fp_record rec = {0};
  fp_entry w;
  int have_m = 0, have_w = 0, m_done = 0, w_done = m->walk == NULL;
  while (err == 0) {
    if (!have_m && !m_done) {
      int rc = next_record(m, &lines, &rec, &prev);
      if (rc < 0) {
        err = rc;
        break;
      }
      have_m = rc == 1;
      m_done = rc == 0;
    }
    if (!have_w && !w_done) {
      int rc = weft_stream_read(m->walk, &w);
      if (rc == WEFT_ECLOSED) {
        w_done = 1;
      } else if (rc != 0) {
        err = rc;
        break;
      } else {
        have_w = 1;
      }
    }
    if (!have_m && !have_w) break;
    int c = have_m && have_w ? strcmp(rec.path, w.path) : have_m ? -1 : 1;
    fp_entry e;
    memset(&e, 0, sizeof e);
    if (c < 0) {
      /* In the manifest only. */
      have_m = 0;
      if (m->walk != NULL &&
          (update || !under_roots(&cfg->paths, rec.path) ||
           (cfg->include.n > 0 && !fp_glob_match(&cfg->include, rec.path)) ||
           fp_glob_match(&cfg->exclude, rec.path))) {
        free(rec.path);
        continue;
      }
      e.path = rec.path;
      e.state = m->walk != NULL ? FP_ST_MISSING : FP_ST_DO;
      e.expect = strdup(rec.hex);
      if (rec.size >= 0) e.size = (uint64_t)rec.size;
      err = emit(m, &e);
      continue;
    }
    if (c > 0) {
      /* On disk only. */
      have_w = 0;
      if (!update) w.state = FP_ST_NEW;
      err = emit(m, &w);
      continue;
    }
    have_m = have_w = 0;
    w.expect = strdup(rec.hex);
    if (update) {
      if (w.mtime_ns <= m->manifest_mtime_ns &&
          (rec.size < 0 || (uint64_t)rec.size == w.size))
        w.state = FP_ST_REUSED;
    }
    free(rec.path);
    err = emit(m, &w);
  }
  if (have_m) free(rec.path);
  if (have_w) fp_entry_clear(&w);
  free(prev);
  fp_lines_close(&lines);
  if (m->walk != NULL && err != 0) weft_stream_end(m->walk, err);
  weft_stream_end(m->out, err);
  free(m);
  return err;
}

int fp_verify(fp_run *r) {
  const fp_config *cfg = r->cfg;
  int update = r->cmd == FP_HASH;
  const char *manifest = update ? cfg->update : cfg->manifest;
  struct stat st;
  if (stat(manifest, &st) != 0 && strcmp(manifest, "-") != 0) {
    fp_error("%s: %s", manifest, strerror(errno));
    return UV_EINVAL;
  }
  weft_pipeline *p = weft_pipeline_open();
  if (p == NULL) return UV_ENOMEM;
  r->pipeline = p;
  merger *m = calloc(1, sizeof *m);
  weft_stream_opts so = {.ops = fp_entry_ops()};
  weft_stream *out = weft_stream_new(sizeof(fp_entry), 256, &so);
  weft_stream *walk = NULL;
  if (m == NULL || out == NULL) goto fail;
  m->r = r;
  m->p = p;
  m->manifest = manifest;
  m->out = out;
  m->manifest_mtime_ns = fp_stat_mtime_ns(&st);
  m->want = -1;
  if (cfg->algorithms != NULL || update) {
    m->want = r->algs[0];
    r->n_algs = 1;
  }
  if (cfg->paths.n > 0 || cfg->files_from != NULL) {
    fp_walk_opts wo = {.roots = &cfg->paths,
                       .exclude = &cfg->exclude,
                       .files_from = cfg->files_from,
                       .null_sep = cfg->null,
                       .recursive = cfg->recursive,
                       .follow = cfg->follow_symlinks,
                       .one_fs = cfg->one_file_system,
                       .max_depth = cfg->recursive ? cfg->max_depth : 1,
                       .counts = &r->counts,
                       .stop_on_error = r->stop_on_error};
    walk = fp_walk_start(p, &wo);
    if (walk == NULL) goto fail;
    m->walk = weft_stream_filter(p, walk, fp_filter_keep, r, NULL);
    if (m->walk == NULL) goto fail;
  }
  if (weft_spawn(weft_pipeline_group(p), merger_task, m) != 0) goto fail;
  int err = fp_pipeline_finish(r, p, out, 0);
  weft_stream_free(out);
  if (walk) weft_stream_free(walk);
  return err;
fail:
  free(m);
  weft_pipeline_cancel(p);
  weft_pipeline_join(p);
  r->pipeline = NULL;
  if (out) weft_stream_free(out);
  if (walk) weft_stream_free(walk);
  return UV_ENOMEM;
}
