/* job.c: counts the lines, words and bytes of every input file, several
 * at once, and prints one JSON report.
 *
 * The work (replace it with your own): `concurrency` worker tasks in one
 * group take the next file in turn and read it in chunks of chunk_bytes
 * (the reads run on libuv's thread pool; the workers share one executor,
 * so the next-file index needs no lock). A token bucket holds the reads to
 * max_bytes_per_s over every worker together. Memory is one chunk per
 * worker.
 *
 * A file that cannot be read is reported with the reason and the others go
 * on. SIGINT or SIGTERM cancels the workers' group: every read in progress
 * returns UV_ECANCELED, and the report says which files were done.
 *
 * The report is one line of JSON on stdout:
 *
 *   {"files":[{"path":"a.txt","lines":2,"words":5,"bytes":24},
 *             {"path":"gone.txt","error":"no such file or directory"},
 *             {"path":"big.log","error":"not done"}],
 *    "lines":2,"words":5,"bytes":24,"done":1,"failed":1,
 *    "interrupted":"SIGTERM"}
 *
 * Paths are written as valid UTF-8 whatever their bytes: a byte that is not
 * part of a valid sequence becomes U+FFFD.
 */
#include "job.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>

#include <weft.h>

#include "signals.h"

/* What is known about one input file. */
typedef struct file_result {
  const char *path;
  uint64_t lines, words, bytes;
  int done; /* counted to its end */
  int err;  /* why it could not be read, or 0 */
} file_result;

typedef struct job_state {
  template_app_job *job;
  file_result *files;
  size_t n_files;
  size_t next;           /* the next file a worker takes */
  weft_group *workers;   /* cancelled by the first signal */
  weft_limiter *limiter; /* NULL: no limit */
  int finished;          /* every worker has ended */
} job_state;

static int is_space(unsigned char c) {
  return c == ' ' || c == '\n' || c == '\t' || c == '\r' || c == '\v' ||
         c == '\f';
}

/* Counts one file into *f, reading chunk_bytes at a time into buf. Returns
 * 0, or the error that stopped it (UV_ECANCELED after a signal). */
static int count_file(job_state *js, file_result *f, char *buf) {
  size_t chunk = (size_t)js->job->cfg->chunk_bytes;
  int fd = weft_file_open(f->path, O_RDONLY, 0);
  if (fd < 0) return fd;
  int in_word = 0;
  int64_t offset = 0;
  int r = 0;
  for (;;) {
    if (js->limiter != NULL) {
      r = weft_limiter_acquire(js->limiter, (double)chunk);
      if (r != 0) break;
    }
    ssize_t n = weft_file_read(fd, buf, chunk, offset);
    if (n <= 0) {
      r = (int)n;
      break;
    }
    for (ssize_t i = 0; i < n; i++) {
      unsigned char c = (unsigned char)buf[i];
      if (c == '\n') f->lines++;
      if (is_space(c)) {
        in_word = 0;
      } else if (!in_word) {
        in_word = 1;
        f->words++;
      }
    }
    f->bytes += (uint64_t)n;
    offset += n;
  }
  weft_file_close(fd);
  return r;
}

/* A worker: takes the next file until none is left. Returns 0, or the
 * cancellation code when the job was stopped. */
static int worker(void *arg) {
  job_state *js = arg;
  char *buf = malloc((size_t)js->job->cfg->chunk_bytes);
  if (buf == NULL) return UV_ENOMEM;
  int r = 0;
  while (js->next < js->n_files) {
    file_result *f = &js->files[js->next++];
    int err = count_file(js, f, buf);
    if (err == UV_ECANCELED || err == UV_ETIMEDOUT) {
      r = err; /* stopped by a signal: the file stays "not done" */
      break;
    }
    if (err != 0) {
      f->err = err;
      weft_log(WEFT_LOG_WARN, "cannot read", "path=\"%s\" error=\"%s\"",
               f->path, weft_strerror(err));
    } else {
      f->done = 1;
    }
  }
  free(buf);
  return r;
}

/* The first SIGINT or SIGTERM: stops the workers, unless they are done. */
static void on_signal(void *ctx, int signum) {
  job_state *js = ctx;
  if (js->finished) return;
  js->job->result.interrupted = signum;
  weft_log(WEFT_LOG_INFO, "stopping", "signal=%s", app_signal_name(signum));
  weft_group_cancel(js->workers);
}

/* Writes s as a JSON string: escaped, and valid UTF-8 (U+FFFD for each
 * byte that does not start a valid sequence). */
static void write_json_string(FILE *out, const char *s) {
  const unsigned char *p = (const unsigned char *)s;
  fputc('"', out);
  while (*p != 0) {
    unsigned char c = *p;
    if (c == '"' || c == '\\') {
      fprintf(out, "\\%c", c);
      p++;
      continue;
    }
    if (c < 0x20) {
      fprintf(out, "\\u%04x", c);
      p++;
      continue;
    }
    if (c < 0x80) {
      fputc(c, out);
      p++;
      continue;
    }
    /* The length of a valid sequence starting here, or 0 for none. */
    size_t len = 0;
    if (c >= 0xc2 && c <= 0xdf)
      len = 2;
    else if (c >= 0xe0 && c <= 0xef)
      len = 3;
    else if (c >= 0xf0 && c <= 0xf4)
      len = 4;
    for (size_t i = 1; i < len; i++)
      if ((p[i] & 0xc0) != 0x80) len = 0;
    /* Overlong forms, surrogates and code points past U+10FFFF. */
    if ((len == 3 && c == 0xe0 && p[1] < 0xa0) ||
        (len == 3 && c == 0xed && p[1] >= 0xa0) ||
        (len == 4 && c == 0xf0 && p[1] < 0x90) ||
        (len == 4 && c == 0xf4 && p[1] >= 0x90))
      len = 0;
    if (len == 0) {
      fputs("\xef\xbf\xbd", out);
      p++;
    } else {
      fwrite(p, 1, len, out);
      p += len;
    }
  }
  fputc('"', out);
}

static void print_report(const job_state *js, FILE *out) {
  uint64_t lines = 0, words = 0, bytes = 0;
  size_t done = 0, failed = 0;
  fputs("{\"files\":[", out);
  for (size_t i = 0; i < js->n_files; i++) {
    const file_result *f = &js->files[i];
    fputs(i == 0 ? "{\"path\":" : ",{\"path\":", out);
    write_json_string(out, f->path);
    if (f->done) {
      fprintf(out, ",\"lines\":%llu,\"words\":%llu,\"bytes\":%llu}",
              (unsigned long long)f->lines, (unsigned long long)f->words,
              (unsigned long long)f->bytes);
      lines += f->lines;
      words += f->words;
      bytes += f->bytes;
      done++;
    } else {
      fputs(",\"error\":", out);
      write_json_string(out, f->err != 0 ? weft_strerror(f->err) : "not done");
      fputc('}', out);
      if (f->err != 0) failed++;
    }
  }
  fprintf(out,
          "],\"lines\":%llu,\"words\":%llu,\"bytes\":%llu,\"done\":%zu,"
          "\"failed\":%zu,\"interrupted\":",
          (unsigned long long)lines, (unsigned long long)words,
          (unsigned long long)bytes, done, failed);
  if (js->job->result.interrupted != 0)
    write_json_string(out, app_signal_name(js->job->result.interrupted));
  else
    fputs("null", out);
  fputs("}\n", out);
  fflush(out);
}

int template_app_run(void *arg) {
  template_app_job *job = arg;
  const template_app_config *cfg = job->cfg;
  job_state js = {.job = job, .n_files = cfg->input.n};
  js.files = calloc(js.n_files > 0 ? js.n_files : 1, sizeof *js.files);
  if (js.files == NULL) return UV_ENOMEM;
  for (size_t i = 0; i < js.n_files; i++)
    js.files[i].path = cfg->input.items[i];
  if (cfg->max_bytes_per_s > 0) {
    js.limiter = weft_limiter_new((double)cfg->max_bytes_per_s,
                                  (double)cfg->chunk_bytes);
    if (js.limiter == NULL) {
      free(js.files);
      return UV_ENOMEM;
    }
  }

  /* The signal task first, so that a signal never kills the process. */
  weft_group *aux = weft_group_open(WEFT_FAIL_FAST);
  js.workers = aux != NULL ? weft_group_open(WEFT_COLLECT) : NULL;
  if (js.workers == NULL) {
    if (aux != NULL) weft_group_join(aux);
    weft_limiter_free(js.limiter);
    free(js.files);
    return UV_ENOMEM;
  }
  app_shutdown sd = {.begin = on_signal, .ctx = &js, .grace_ms = -1};
  weft_spawn_named(aux, "signals", app_shutdown_task, &sd);
  weft_yield();

  int64_t started = weft_now();
  weft_log(WEFT_LOG_INFO, "started", "files=%zu concurrency=%lld", js.n_files,
           (long long)cfg->concurrency);
  for (int64_t i = 0; i < cfg->concurrency && (size_t)i < js.n_files; i++)
    weft_spawn_named(js.workers, "worker", worker, &js);
  weft_group_join(js.workers);
  js.finished = 1;
  weft_group_cancel(aux);
  weft_group_join(aux);

  print_report(&js, stdout);
  weft_log(WEFT_LOG_INFO, "finished", "files=%zu ms=%lld", js.n_files,
           (long long)(weft_now() - started));
  for (size_t i = 0; i < js.n_files; i++)
    if (js.files[i].err != 0) job->result.failed++;
  weft_limiter_free(js.limiter);
  free(js.files);
  return 0;
}
