/* test_signals.c: app_metrics_serve_signal() writes the runtime's metrics
 * as one line of JSON each time its signal arrives, and ends with
 * UV_ECANCELED when its task is cancelled.
 *
 * A plain C program (POSIX: a pipe and raise()); each check prints what
 * failed and the program exits 1.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <weft.h>

#include "check.h"
#include "signals.h"

typedef struct dump {
  int fds[2];
  int serving;
  int serve_result;
  int read_result;
  char text[65536];
  size_t len;
} dump;

static int dump_serve(void *arg) {
  dump *d = arg;
  d->serving = 1;
  d->serve_result = app_metrics_serve_signal(SIGUSR1, d->fds[1]);
  return 0;
}

/* Reads one dump from the pipe, up to its newline. */
static void dump_read(dump *d) {
  while (d->len < sizeof d->text - 1) {
    ssize_t n = weft_file_read(d->fds[0], d->text + d->len, sizeof d->text - 1 - d->len, -1);
    if (n <= 0) {
      d->read_result = n == 0 ? UV_EOF : (int)n;
      break;
    }
    d->len += (size_t)n;
    if (d->text[d->len - 1] == '\n') break;
  }
  d->text[d->len] = '\0';
}

/* Raises SIGUSR1 once the server waits, reads one dump, then cancels the
 * server. */
static int dump_root(void *arg) {
  dump *d = arg;
  weft_scope scope;
  weft_scope_enter(&scope, 30000); /* a bound, never reached when it works */
  weft_group *g = weft_group_open(WEFT_COLLECT);
  if (g == NULL) {
    weft_scope_leave(&scope);
    return UV_ENOMEM;
  }
  int r = weft_spawn(g, dump_serve, d);
  /* The server runs, and starts waiting, before this sleep ends; raising
   * the signal earlier would kill the process. */
  weft_sleep(50);
  if (r == 0 && d->serving) {
    raise(SIGUSR1);
    dump_read(d);
  }
  weft_group_cancel(g);
  int joined = weft_group_join(g);
  weft_scope_leave(&scope);
  return r != 0 ? r : joined;
}

static void test_metrics_dump(void) {
  check_case = "metrics dump on SIGUSR1";
  weft_counter *c = weft_metrics_counter("test_dump_total", "");
  CHECK(c != NULL);
  if (c == NULL) return;
  weft_counter_add(c, 11);
  static dump d;
  CHECK(pipe(d.fds) == 0);
  /* Handles left open at the end are an error, as in the runtime's tests
   * (tests/support.h, which a forked application does not have). */
  weft_opts opts = {.executors = 1, .handles_strict = 1};
  int r = weft_main_opts(&opts, dump_root, &d);
  close(d.fds[0]);
  close(d.fds[1]);
  CHECK(r == 0);
  CHECK(d.serving == 1);
  CHECK(d.read_result == 0);
  CHECK(d.serve_result == UV_ECANCELED);
  CHECK(d.len > 0 && d.text[d.len - 1] == '\n');
  cJSON *root = cJSON_Parse(d.text);
  CHECK(root != NULL);
  const cJSON *counters = cJSON_GetObjectItemCaseSensitive(root, "counters");
  CHECK(counters != NULL);
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(counters, "test_dump_total");
  CHECK(cJSON_IsNumber(v) && v->valuedouble >= 11);
  if (root == NULL || counters == NULL || v == NULL) fprintf(stderr, "dump: %s\n", d.text);
  cJSON_Delete(root);
}

int main(void) {
  test_metrics_dump();
  return check_report();
}
