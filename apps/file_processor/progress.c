/* progress.c: the progress line, the SIGUSR1 status line and
 * --summary-json.
 *
 * The progress task redraws one line on standard error four times a
 * second (auto: only when standard error is a terminal): files and bytes
 * done of those found so far, MB/s, and an ETA once the walk has ended
 * (before that the total is not known). It reads the counters the sink
 * and the walker write on the same executor, so no locking is needed.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <uv.h>

#include "fp.h"

struct fp_progress {
  const fp_counts *c;
  int draw;
  int drawn;
  uint64_t t0;
};

static void format_line(fp_progress *p, char *buf, size_t len) {
  const fp_counts *c = p->c;
  double secs = (double)(uv_hrtime() - p->t0) / 1e9;
  double mbps = secs > 0 ? (double)c->bytes_done / 1e6 / secs : 0;
  char eta[32] = "?";
  if (c->walk_done && mbps > 0) {
    double left = (double)(c->bytes_seen - c->bytes_done) / 1e6 / mbps;
    snprintf(eta, sizeof eta, "%.0fs", left);
  }
  snprintf(buf, len,
           "%llu/%llu%s files, %.1f/%.1f MB, %.1f MB/s, ETA %s, %llu errors",
           (unsigned long long)c->files_done,
           (unsigned long long)c->files_seen, c->walk_done ? "" : "+",
           (double)c->bytes_done / 1e6, (double)c->bytes_seen / 1e6, mbps,
           eta, (unsigned long long)c->errors);
}

static int progress_task(void *arg) {
  fp_progress *p = arg;
  char line[256];
  while (weft_sleep(250) == 0) {
    format_line(p, line, sizeof line);
    fprintf(stderr, "\r%-78s", line);
    fflush(stderr);
    p->drawn = 1;
  }
  return 0;
}

fp_progress *fp_progress_start(weft_group *g, const fp_counts *c, int mode) {
  fp_progress *p = calloc(1, sizeof *p);
  if (p == NULL) return NULL;
  p->c = c;
  p->t0 = uv_hrtime();
  p->draw = mode == FP_PROGRESS_ALWAYS ||
            (mode == FP_PROGRESS_AUTO && isatty(STDERR_FILENO));
  if (p->draw) weft_spawn(g, progress_task, p);
  return p;
}

void fp_progress_status(fp_progress *p) {
  if (p == NULL) return;
  char line[256];
  format_line(p, line, sizeof line);
  fprintf(stderr, "%sfile_processor: status: %s\n", p->drawn ? "\n" : "", line);
  fflush(stderr);
}

/* Called after the progress task was cancelled. */
void fp_progress_stop(fp_progress *p) {
  if (p == NULL) return;
  if (p->drawn) fputc('\n', stderr);
  free(p);
}

int fp_summary_json(const char *path, const char *command, const fp_counts *c,
                    double seconds, int exit_code) {
  FILE *f = strcmp(path, "-") == 0 ? stdout : fopen(path, "w");
  if (f == NULL) {
    fp_error("--summary-json: cannot write %s", path);
    return -1;
  }
  fprintf(f,
          "{\"command\":\"%s\",\"files\":%llu,\"bytes\":%llu,"
          "\"files_reused\":%llu,\"bytes_out\":%llu,\"skipped_links\":%llu,"
          "\"skipped_other\":%llu,\"filtered\":%llu,\"errors\":%llu,"
          "\"ok\":%llu,\"changed\":%llu,\"missing\":%llu,\"new\":%llu,"
          "\"seconds\":%.3f,\"mb_per_s\":%.1f,\"exit_code\":%d}\n",
          command, (unsigned long long)c->files_done,
          (unsigned long long)c->bytes_done,
          (unsigned long long)c->files_reused,
          (unsigned long long)c->bytes_out,
          (unsigned long long)c->skipped_links,
          (unsigned long long)c->skipped_other,
          (unsigned long long)c->filtered, (unsigned long long)c->errors,
          (unsigned long long)c->ok, (unsigned long long)c->changed,
          (unsigned long long)c->missing, (unsigned long long)c->new_, seconds,
          seconds > 0 ? (double)c->bytes_done / 1e6 / seconds : 0.0,
          exit_code);
  int bad = ferror(f);
  if (f != stdout) bad |= fclose(f) != 0;
  return bad ? -1 : 0;
}
