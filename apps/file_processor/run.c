/* run.c: one command's run: the pipeline, the output, signals and the exit
 * code.
 *
 *   entries (walk.c or verify.c's merge) -> filter (globs, sizes, names)
 *     -> batcher (the journal; small files grouped into jobs)
 *     -> ordered map on `jobs` workers (hash.c / compress.c, off the loop)
 *     -> sink (manifest or report lines in order, journal, counters)
 *
 * Everything runs on one executor: the loop only moves entries between
 * stages, and every read, hash, compression and write happens on libuv's
 * thread pool through weft_blocking(), sized to the workers.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <uv.h>

#include "fp.h"
#include "signals.h"

/* ---- Jobs ---------------------------------------------------------------- */

static void job_free(fp_job *job) {
  for (uint32_t i = 0; i < job->n; i++) fp_entry_clear(&job->entries[i]);
  free(job->entries);
  job->entries = NULL;
  job->n = 0;
}

static void job_dispose(void *item, void *ctx) {
  (void)ctx;
  job_free(item);
}

static const weft_stream_item_ops job_ops = {.dispose = job_dispose};

/* ---- Filter ------------------------------------------------------------- */

static int ends_with(const char *s, const char *suffix) {
  size_t a = strlen(s), b = strlen(suffix);
  return a >= b && memcmp(s + a - b, suffix, b) == 0;
}

/* Non-zero for the name of one of our temporary files. */
static int is_temp_name(const char *path) {
  const char *base = strrchr(path, '/');
  base = base ? base + 1 : path;
  return base[0] == '.' && strstr(base, ".fp-tmp-") != NULL;
}

int fp_filter_keep(void *ctx, const void *item) {
  fp_run *r = ctx;
  const fp_entry *e = item;
  const fp_config *cfg = r->cfg;
  int keep = 1;
  if (e->is_stdin) return 1;
  if (is_temp_name(e->path)) keep = 0;
  if (keep && cfg->include.n > 0 && !fp_glob_match(&cfg->include, e->path))
    keep = 0;
  if (keep && cfg->exclude.n > 0 && fp_glob_match(&cfg->exclude, e->path))
    keep = 0;
  if (keep && (int64_t)e->size < cfg->min_size) keep = 0;
  if (keep && cfg->max_size > 0 && (int64_t)e->size > cfg->max_size) keep = 0;
  if (keep && r->cmd == FP_COMPRESS && !cfg->to_stdout &&
      (ends_with(e->path, ".gz") || ends_with(e->path, ".zst")))
    keep = 0;
  if (keep && r->cmd == FP_DECOMPRESS && !ends_with(e->path, ".gz") &&
      !ends_with(e->path, ".zst")) {
    /* Not compressed (no .gz or .zst suffix): left alone, counted. */
    keep = 0;
  }
  if (!keep) r->counts.filtered++;
  return keep;
}

/* ---- Batcher ------------------------------------------------------------- */

typedef struct batcher {
  fp_run *r;
  weft_stream *in, *out;
} batcher;

static int flush_job(batcher *b, fp_job *job) {
  if (job->n == 0) return 0;
  int err = weft_stream_write(b->out, job);
  if (err != 0) job_free(job);
  memset(job, 0, sizeof *job);
  return err;
}

static int job_add(fp_job *job, fp_entry *e) {
  if (job->entries == NULL) {
    job->entries = malloc(FP_BATCH_FILES * sizeof *job->entries);
    if (job->entries == NULL) return UV_ENOMEM;
  }
  job->entries[job->n++] = *e;
  return 0;
}

static int batcher_task(void *arg) {
  batcher *b = arg;
  fp_run *r = b->r;
  int blocks = r->cmd == FP_COMPRESS || r->cmd == FP_DECOMPRESS;
  fp_job job;
  memset(&job, 0, sizeof job);
  uint64_t job_bytes = 0;
  fp_entry e;
  int err;
  while ((err = weft_stream_read(b->in, &e)) == 0) {
    r->counts.files_seen++;
    r->counts.bytes_seen += e.size;
    if (r->journal != NULL && e.state == FP_ST_DO && !e.is_stdin) {
      const char *done =
          fp_journal_lookup(r->journal, e.path, e.size, e.mtime_ns);
      if (done != NULL) {
        e.state = FP_ST_REUSED;
        free(e.expect);
        e.expect = strdup(done);
      }
    }
    /* Standard input is compressed as a stream of blocks (its size is not
     * known); decompressed as one stream. */
    int big = blocks && e.state == FP_ST_DO &&
              (e.size > r->block_size || (e.is_stdin && r->cmd == FP_COMPRESS));
    if (big || job.n == FP_BATCH_FILES || job_bytes >= FP_BATCH_BYTES) {
      if ((err = flush_job(b, &job)) != 0) {
        fp_entry_clear(&e); /* read, not yet in a job */
        break;
      }
      job_bytes = 0;
    }
    if ((err = job_add(&job, &e)) != 0) {
      fp_entry_clear(&e);
      break;
    }
    job_bytes += e.size;
    if (big) {
      job.big = 1;
      if ((err = flush_job(b, &job)) != 0) break;
    }
  }
  if (err == WEFT_ECLOSED) err = flush_job(b, &job);
  job_free(&job);
  weft_stream_end(b->out, err);
  if (err != 0) weft_stream_end(b->in, err);
  free(b);
  return err == WEFT_ECLOSED ? 0 : err;
}

/* ---- Workers ------------------------------------------------------------- */

typedef struct hash_call {
  fp_run *r;
  fp_hasher *h;
  fp_job *job;
} hash_call;

/* Hashes (and for verify compares) a job's entries on the thread pool. */
static int hash_job_blocking(void *arg) {
  hash_call *c = arg;
  fp_run *r = c->r;
  for (uint32_t i = 0; i < c->job->n && !r->stop; i++) {
    fp_entry *e = &c->job->entries[i];
    if (e->state != FP_ST_DO) continue;
    if (fp_hash_file(c->h, e, r->cfg->follow_symlinks || r->cmd == FP_VERIFY) !=
        0) {
      if (r->cmd == FP_VERIFY && e->err == UV_ENOENT) {
        e->err = 0;
        e->state = FP_ST_MISSING;
      }
      continue;
    }
    if (r->cmd == FP_VERIFY)
      e->state =
          strcmp(e->digest[0], e->expect) == 0 ? FP_ST_OK : FP_ST_CHANGED;
  }
  return 0;
}

static int job_run(void *ctx, void *in, void *out) {
  fp_run *r = ctx;
  fp_job *job = in;
  int err = 0;
  if (r->cmd == FP_HASH || r->cmd == FP_VERIFY) {
    fp_hasher *h = r->n_hashers > 0 ? r->hashers[--r->n_hashers]
                                    : fp_hasher_new(r->algs, r->n_algs);
    if (h == NULL) {
      job_free(job);
      return UV_ENOMEM;
    }
    hash_call c = {.r = r, .h = h, .job = job};
    err = weft_blocking(hash_job_blocking, &c);
    r->hashers[r->n_hashers++] = h;
  } else if (r->cmd == FP_COMPRESS) {
    err = fp_compress_job(r, job);
  } else if (r->cmd == FP_DECOMPRESS) {
    err = fp_decompress_job(r, job);
  }
  if (err != 0) {
    job_free(job);
    return err;
  }
  *(fp_job *)out = *job;
  return 0;
}

/* ---- Sink ---------------------------------------------------------------- */

static void report_state(fp_run *r, const fp_entry *e, const char *what) {
  fp_write_escaped(r->out, e->path);
  fprintf(r->out, ": %s\n", what);
}

/* The journal's record of a finished entry: its digests, or "ok". */
static void journal_entry(fp_run *r, const fp_entry *e) {
  if (r->journal == NULL || e->state != FP_ST_DONE || e->is_stdin) return;
  char result[FP_MAX_ALGS * FP_HEX_MAX];
  result[0] = '\0';
  if (r->cmd == FP_HASH) {
    for (int i = 0; i < r->n_algs; i++) {
      if (i) strcat(result, ",");
      strcat(result, e->digest[i]);
    }
  } else {
    strcpy(result, "ok");
  }
  fp_journal_done(r->journal, e, result);
}

/* Takes a reused result (journal or old manifest) back into e->digest. */
static void reuse_result(fp_run *r, fp_entry *e) {
  if (r->cmd != FP_HASH || e->expect == NULL) return;
  const char *p = e->expect;
  for (int i = 0; i < r->n_algs; i++) {
    size_t len = strcspn(p, ",");
    if (len >= FP_HEX_MAX) len = FP_HEX_MAX - 1;
    memcpy(e->digest[i], p, len);
    e->digest[i][len] = '\0';
    p += len;
    if (*p == ',') p++;
  }
}

/* scan's line: the size, a tab, the path (escaped as in the sum format). */
static void scan_line(FILE *out, const fp_entry *e) {
  fprintf(out, "%llu\t", (unsigned long long)e->size);
  fp_write_escaped(out, e->path);
  fputc('\n', out);
}

static int sink(void *ctx, void *item) {
  fp_run *r = ctx;
  fp_job *job = item;
  int err = 0;
  for (uint32_t i = 0; i < job->n; i++) {
    fp_entry *e = &job->entries[i];
    fp_counts *c = &r->counts;
    if (e->err != 0) {
      fp_report_error(c, e->path, e->err);
      if (r->stop_on_error && err == 0) err = e->err;
      continue;
    }
    if (r->cmd == FP_SCAN) e->state = FP_ST_DONE; /* nothing to compute */
    switch (e->state) {
    case FP_ST_REUSED:
      c->files_reused++;
      reuse_result(r, e);
      /* fall through */
    case FP_ST_DONE:
      c->files_done++;
      c->bytes_done += e->size;
      c->bytes_out += e->out_size;
      if (r->cmd == FP_HASH)
        fp_manifest_line(r->out, r->format, r->algs, r->n_algs, e);
      else if (r->cmd == FP_SCAN)
        scan_line(r->out, e);
      journal_entry(r, e);
      break;
    case FP_ST_OK:
      c->files_done++, c->bytes_done += e->size, c->ok++;
      break;
    case FP_ST_CHANGED:
      c->files_done++, c->bytes_done += e->size, c->changed++;
      report_state(r, e, "changed");
      break;
    case FP_ST_MISSING:
      if (!r->cfg->ignore_missing) {
        c->missing++;
        report_state(r, e, "missing");
      }
      break;
    case FP_ST_NEW:
      c->new_++;
      report_state(r, e, "new");
      break;
    default:
      break;
    }
  }
  job_free(job);
  return err;
}

/* ---- The pipeline -------------------------------------------------------- */

/* Adds the filter, batcher, map and sink after entries and runs them.
 * Returns the pipeline's error. */
int fp_pipeline_finish(fp_run *r, weft_pipeline *p, weft_stream *entries,
                       int filter) {
  weft_stream *kept =
      filter ? weft_stream_filter(p, entries, fp_filter_keep, r, NULL)
             : entries;
  weft_stream_opts so = {.ops = &job_ops};
  weft_stream *jobs = weft_stream_new(sizeof(fp_job), (size_t)r->jobs * 2, &so);
  batcher *b = calloc(1, sizeof *b);
  int err = 0;
  if (kept == NULL || jobs == NULL || b == NULL) {
    err = UV_ENOMEM;
    free(b);
    weft_pipeline_cancel(p);
  } else {
    b->r = r;
    b->in = kept;
    b->out = jobs;
    if (weft_spawn(weft_pipeline_group(p), batcher_task, b) != 0) {
      free(b);
      err = UV_ENOMEM;
      weft_pipeline_cancel(p);
    } else {
      /* -c writes every output to standard output in turn: one file at a
       * time (a big file's blocks are still compressed in parallel). */
      int to_stdout = r->cfg->to_stdout &&
                      (r->cmd == FP_COMPRESS || r->cmd == FP_DECOMPRESS);
      weft_stage_opts mo = {.workers = to_stdout ? 1 : r->map_workers,
                            .order = r->ordered ? WEFT_MAP_ORDERED
                                                : WEFT_MAP_AS_COMPLETED,
                            .capacity = (size_t)r->jobs * 2,
                            .ops = &job_ops,
                            .name = "fp-worker"};
      weft_stream *done =
          weft_stream_map(p, jobs, sizeof(fp_job), job_run, r, &mo);
      if (done != NULL) weft_stream_for_each(p, done, sink, r);
    }
  }
  int jerr = weft_pipeline_join(p);
  r->pipeline = NULL;
  if (jobs) weft_stream_free(jobs);
  return err ? err : jerr;
}

static int run_walk(fp_run *r) {
  const fp_config *cfg = r->cfg;
  weft_pipeline *p = weft_pipeline_open();
  if (p == NULL) return UV_ENOMEM;
  r->pipeline = p;
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
  weft_stream *walk = fp_walk_start(p, &wo);
  if (walk == NULL) {
    weft_pipeline_cancel(p);
    weft_pipeline_join(p);
    return UV_ENOMEM;
  }
  int err = fp_pipeline_finish(r, p, walk, 1);
  weft_stream_free(walk);
  return err;
}

/* ---- Output -------------------------------------------------------------- */

typedef struct out_file {
  char *tmp;
  int fd;
} out_file;

static int open_output(fp_run *r, out_file *of) {
  of->tmp = NULL;
  of->fd = -1;
  r->out = stdout;
  const char *path = r->cfg->output;
  if (r->cmd == FP_HASH && path == NULL) path = r->cfg->update;
  if (r->cmd != FP_HASH || path == NULL || strcmp(path, "-") == 0) return 0;
  of->tmp = fp_temp_create(r, path, &of->fd);
  if (of->tmp == NULL) return -1;
  r->out = fdopen(of->fd, "w");
  if (r->out == NULL) {
    close(of->fd);
    unlink(of->tmp);
    fp_temp_forget(of->tmp);
    free(of->tmp);
    return -1;
  }
  setvbuf(r->out, NULL, _IOFBF, 1 << 16);
  return 0;
}

/* Puts the manifest in place (keep) or removes its temporary file. */
static int close_output(fp_run *r, out_file *of, int keep) {
  if (of->tmp == NULL) {
    fflush(r->out);
    return 0;
  }
  int bad = fflush(r->out) != 0 || ferror(r->out);
  const char *final = r->cfg->output ? r->cfg->output : r->cfg->update;
  int fd = dup(fileno(r->out));
  fclose(r->out);
  r->out = NULL;
  if (!keep || bad) {
    close(fd);
    unlink(of->tmp);
    fp_temp_forget(of->tmp);
    free(of->tmp);
    if (bad) fp_error("%s: write failed", final);
    return bad ? -1 : 0;
  }
  int err = fp_temp_commit(r, fd, of->tmp, final);
  if (err != 0) {
    fp_error("%s: %s", final, weft_strerror(err));
    return -1;
  }
  return 0;
}

/* ---- Signals ------------------------------------------------------------- */

static void on_signal(void *ctx, int signum) {
  fp_run *r = ctx;
  if (r->signum == 0) r->signum = signum;
  r->stop = 1;
  if (r->pipeline) weft_pipeline_cancel(r->pipeline);
}

static void on_status(void *ctx) {
  fp_run *r = ctx;
  fp_progress_status(r->progress);
}

static const char *command_name(fp_command c) {
  static const char *const names[] = {"hash", "verify", "compress",
                                      "decompress", "scan"};
  return names[c];
}

static int run_root(void *arg) {
  fp_run *r = arg;
  uint64_t t0 = uv_hrtime();
  weft_group *aux = weft_group_open(WEFT_COLLECT);
  app_shutdown sd = {.begin = on_signal,
                     .force = on_signal,
                     .dump = on_status,
                     .ctx = r,
                     .grace_ms = -1};
  weft_spawn(aux, app_shutdown_task, &sd);
  weft_yield();
  int mode = strcmp(r->cfg->progress, "always") == 0  ? FP_PROGRESS_ALWAYS
             : strcmp(r->cfg->progress, "never") == 0 ? FP_PROGRESS_NEVER
                                                      : FP_PROGRESS_AUTO;
  r->progress = fp_progress_start(aux, &r->counts, mode);

  int err = 0;
  out_file of;
  if (r->cfg->journal != NULL) {
    r->journal = fp_journal_open(r->cfg->journal, r->cfg->resume, r->cfg->fsync,
                                 (uint64_t)r->cfg->journal_memory);
    if (r->journal == NULL) err = UV_EINVAL;
  }
  if (err == 0 && open_output(r, &of) != 0) {
    fp_error("%s: cannot write: %s", r->cfg->output, strerror(errno));
    err = UV_EINVAL;
    r->journal ? fp_journal_close(r->journal) : (void)0;
    r->journal = NULL;
    of.tmp = NULL;
    r->out = stdout;
  } else if (err == 0) {
    if (r->cmd == FP_VERIFY || (r->cmd == FP_HASH && r->cfg->update != NULL))
      err = fp_verify(r);
    else
      err = run_walk(r);
    int keep = !r->stop && !(err != 0 && r->stop_on_error);
    if (close_output(r, &of, keep) != 0) r->counts.errors++;
  }
  if (r->journal) fp_journal_close(r->journal);
  fp_temp_remove_all();
  fp_progress_stop(r->progress);
  weft_group_cancel(aux);
  weft_group_join(aux);

  int code = 0;
  if (r->signum != 0) {
    code = 128 + r->signum;
  } else if (err != 0 || r->counts.errors > 0) {
    if (err != 0 && err != UV_ECANCELED && err != UV_EINVAL &&
        r->counts.errors == 0)
      fp_error("%s", weft_strerror(err));
    code = 2;
  } else if (r->cmd == FP_VERIFY) {
    if (r->counts.files_done + r->counts.missing + r->counts.new_ == 0) {
      fp_error("verify: nothing was checked");
      code = 2;
    } else if (r->counts.changed + r->counts.missing + r->counts.new_ > 0) {
      code = 1;
    }
  }
  if (r->cmd == FP_VERIFY) {
    fprintf(stderr,
            "file_processor: verify: %llu ok, %llu changed, %llu missing, "
            "%llu new, %llu errors\n",
            (unsigned long long)r->counts.ok,
            (unsigned long long)r->counts.changed,
            (unsigned long long)r->counts.missing,
            (unsigned long long)r->counts.new_,
            (unsigned long long)r->counts.errors);
  }
  double secs = (double)(uv_hrtime() - t0) / 1e9;
  weft_log(WEFT_LOG_DEBUG, "done",
           "command=%s files=%llu bytes=%llu seconds=%.3f "
           "errors=%llu exit=%d",
           command_name(r->cmd), (unsigned long long)r->counts.files_done,
           (unsigned long long)r->counts.bytes_done, secs,
           (unsigned long long)r->counts.errors, code);
  if (r->cfg->summary_json != NULL &&
      fp_summary_json(r->cfg->summary_json, command_name(r->cmd), &r->counts,
                      secs, code) != 0 &&
      code == 0)
    code = 2;
  r->exit_code = code;
  return 0;
}

int fp_run_command(fp_command cmd, const fp_config *cfg) {
  fp_run *r = calloc(1, sizeof *r);
  if (r == NULL) return 2;
  r->cfg = cfg;
  r->cmd = cmd;
  char why[128];
  int want_algs = cmd == FP_HASH || cmd == FP_VERIFY;
  r->n_algs = fp_algs_parse(cfg->algorithms ? cfg->algorithms : "sha256",
                            r->algs, why, sizeof why);
  r->format = strcmp(cfg->format, "bsd") == 0     ? FP_FORMAT_BSD
              : strcmp(cfg->format, "jsonl") == 0 ? FP_FORMAT_JSONL
                                                  : FP_FORMAT_SUM;
  if (want_algs && r->format == FP_FORMAT_SUM && r->n_algs > 1) {
    fp_error("--format sum names no algorithm and takes one; use --format "
             "bsd or jsonl for several");
    free(r);
    return 2;
  }
  if (cmd == FP_HASH && cfg->update != NULL && r->n_algs > 1) {
    fp_error("--update takes one algorithm");
    free(r);
    return 2;
  }
  r->codec = strcmp(cfg->codec, "zstd") == 0 ? FP_CODEC_ZSTD : FP_CODEC_GZIP;
  r->jobs = cfg->jobs > 0 ? (int)cfg->jobs : (int)uv_available_parallelism();
  if (r->jobs < 1) r->jobs = 1;
  r->ordered = strcmp(cfg->order, "sorted") == 0;
  r->stop_on_error = strcmp(cfg->on_error, "stop") == 0;
  /* 1 MiB blocks for both codecs: zstd -3 of D4's first 200 MB in 1 MiB frames
   * is as small as with 4 MiB (within 0.02 %) and took less CPU per byte, its
   * blocks staying in the CPU's caches. */
  r->block_size =
      cfg->block_size > 0 ? (uint64_t)cfg->block_size : (uint64_t)1 << 20;
  if (r->block_size < 4096) r->block_size = 4096;
  if (r->block_size > ((uint64_t)8 << 20)) {
    fp_error("--block-size: at most 8M (memory stays under 64 MiB)");
    free(r);
    return 2;
  }
  /* Hashing: two jobs per worker in the thread pool, so that a thread that
   * finishes one starts the next at once instead of waiting for the loop
   * to hand it over (a wait as long as the loop thread waits for a CPU on
   * a busy machine). A big file's engine (compress.c) has two workers per
   * -j for the same reason. */
  r->map_workers = cmd == FP_HASH || cmd == FP_VERIFY ? 2 * r->jobs : r->jobs;
  r->hashers = calloc((size_t)r->map_workers, sizeof *r->hashers);
  /* The thread pool runs every read, hash and compression: one thread per
   * worker, and two for the walker and the writers. */
  char n[16];
  int threads = r->map_workers > 2 * r->jobs ? r->map_workers : 2 * r->jobs;
  snprintf(n, sizeof n, "%d", threads + 2 < 4 ? 4 : threads + 2);
  setenv("UV_THREADPOOL_SIZE", n, 1);
  if (r->hashers == NULL || fp_hash_init() != 0) {
    free(r->hashers);
    free(r);
    return 2;
  }
  weft_opts opts = {.executors = 1};
  int err = weft_main_opts(&opts, run_root, r);
  int code = err < 0 ? 2 : r->exit_code;
  if (err < 0) fp_error("%s", weft_strerror(err));
  for (int i = 0; i < r->n_hashers; i++) fp_hasher_free(r->hashers[i]);
  free(r->hashers);
  fp_compress_cleanup(r);
  fp_hash_cleanup();
  free(r);
  return code;
}
