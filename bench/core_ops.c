/* core_ops.c: the cost of the core's operations in instructions, on one
 * thread, for counting under Valgrind's callgrind (bench/chan_ops.c does the
 * same for channels).
 *
 *   core_ops <case> [n]
 *
 * Each case warms up first (the executor's task and stack pools filled, as a
 * server's first requests would), then runs its loop n times with
 * callgrind's instrumentation switched on only around it, so that
 *
 *   valgrind --tool=callgrind --instr-atstart=no bench/core_ops switch 100000
 *
 * reports the instructions of the loop alone; the per-iteration figure is
 * Ir / n. scripts/perf-check runs every case (make perf-check). Without
 * Valgrind the program just runs and prints ns per iteration.
 *
 * Cases (an "iteration" is the unit the program divides by):
 *   spawn_join       open a group, spawn one task that returns 0, join
 *   spawn_batch      one spawn of a group of 100 tasks joined together
 *   switch           one task switch: two tasks weft_yield() to each other
 *   cancelled        one weft_cancelled() check inside a task
 *   scope_deadline   enter a scope with a deadline, check it, leave it
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "weft.h"
#include "bench_core.h"
#include "bench_util.h"

#if defined(__has_include)
#if __has_include(<valgrind/callgrind.h>)
#include <valgrind/callgrind.h>
#define HAVE_CALLGRIND 1
#endif
#endif

#if !defined(HAVE_CALLGRIND)
#define CALLGRIND_START_INSTRUMENTATION
#define CALLGRIND_STOP_INSTRUMENTATION
#endif

#define BATCH 100

static long n_iter;
static const char *which;
static double t_start, t_end;
static long sink; /* keeps the checks' results alive */

static void start(void) {
  t_start = bench_now_ns();
  CALLGRIND_START_INSTRUMENTATION;
}

static void stop(void) {
  CALLGRIND_STOP_INSTRUMENTATION;
  t_end = bench_now_ns();
}


static int spawn_case(long batch) {
  long rounds = n_iter / batch > 0 ? n_iter / batch : 1;
  int err = bench_spawn_rounds(batch, rounds / 10 + 1);
  if (err != 0) return err;
  start();
  err = bench_spawn_rounds(batch, rounds);
  stop();
  return err;
}

static long yields;
static int measuring;

static int yielder(void *arg) {
  (void)arg;
  for (long i = 0; i < yields; i++) {
    int err = weft_yield();
    if (err != 0) return err;
  }
  return 0;
}

static int switch_run(long per_task) {
  yields = per_task;
  weft_group *g = weft_group_open(WEFT_FAIL_FAST);
  if (g == NULL) return UV_ENOMEM;
  int err = weft_spawn(g, yielder, NULL);
  if (err == 0) err = weft_spawn(g, yielder, NULL);
  /* The join is where this task waits: the two yielders switch to each
   * other until both are through. */
  if (measuring) start();
  int jerr = weft_group_join(g);
  if (measuring) stop();
  return err != 0 ? err : jerr;
}

static int switch_case(void) {
  int err = switch_run(n_iter / 20 + 1);
  if (err != 0) return err;
  measuring = 1;
  /* Each yield is one switch to the other task. */
  return switch_run(n_iter / 2);
}

static int cancelled_case(void) {
  long h = 0;
  for (long i = 0; i < n_iter / 10 + 1; i++) h += weft_cancelled();
  start();
  for (long i = 0; i < n_iter; i++) h += weft_cancelled();
  stop();
  sink += h;
  return 0;
}

static int scope_case(void) {
  long h = 0;
  for (int pass = 0; pass < 2; pass++) {
    long n = pass == 0 ? n_iter / 10 + 1 : n_iter;
    if (pass == 1) start();
    for (long i = 0; i < n; i++) {
      weft_scope s;
      weft_scope_enter(&s, 60000);
      h += weft_cancelled();
      h += weft_scope_leave(&s);
    }
    if (pass == 1) stop();
  }
  sink += h;
  return 0;
}

static int run_case(void *arg) {
  (void)arg;
  const char *w = which;
  if (strcmp(w, "spawn_join") == 0) return spawn_case(1);
  if (strcmp(w, "spawn_batch") == 0) return spawn_case(BATCH);
  if (strcmp(w, "switch") == 0) return switch_case();
  if (strcmp(w, "cancelled") == 0) return cancelled_case();
  if (strcmp(w, "scope_deadline") == 0) return scope_case();
  fprintf(stderr, "core_ops: unknown case '%s'\n", w);
  return 2;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: core_ops <case> [n]\n");
    return 2;
  }
  which = argv[1];
  n_iter = 1000000;
  if ((argc > 2 && !bench_parse_positive(argv[2], &n_iter)) || n_iter < BATCH) {
    fprintf(stderr, "core_ops: n must be at least %d\n", BATCH);
    return 2;
  }
  n_iter -= n_iter % BATCH;
  int err = weft_main(run_case, NULL);
  if (err != 0) {
    fprintf(stderr, "core_ops %s: %s\n", which, err > 0 ? "bad arguments" : weft_strerror(err));
    return 1;
  }
  printf("{\"bench\":\"ops\",\"case\":\"%s\",\"n\":%ld,\"ns_per_iter\":%.2f,\"sink\":%ld}\n", which,
         n_iter, (t_end - t_start) / (double)n_iter, sink);
  return 0;
}
