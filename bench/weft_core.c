/* weft_core.c: benchmarks of the weft core, one per mode.
 *
 *   weft_core spawn [batch] [ops]     open a group, spawn `batch` tasks that
 *                                     return 0 at once, join; ns per spawn+join
 *   weft_core switch [switches]       two tasks weft_yield() to each other;
 *                                     ns per switch
 *   weft_core cancelled [checks]      weft_cancelled() in a loop inside a
 *                                     task, against a loop reading a volatile
 *   weft_core memory [tasks]          resident KiB per task sleeping in
 *                                     weft_sleep(), from VmRSS
 *   weft_core                         a short pass of every mode (smoke test)
 *
 * Each result is one JSON object on one line, read by bench/run_core.sh,
 * which runs the peers (bench/go/core.go, bench/boost_switch.cpp) alongside.
 * Every mode warms up first (pools filled, code paged in), then times one
 * long run; the driver repeats whole runs and takes the median.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "weft.h"
#include "bench_core.h"
#include "bench_util.h"

/* Returns the resident set size in KiB from /proc/self/status, or -1 where
 * there is no such file. The Go peer reads the same line. */
static long vm_rss_kib(void) {
  FILE *f = fopen("/proc/self/status", "r");
  if (f == NULL) return -1;
  char line[256];
  long kib = -1;
  while (fgets(line, sizeof line, f) != NULL) {
    if (strncmp(line, "VmRSS:", 6) == 0) {
      kib = strtol(line + 6, NULL, 10);
      break;
    }
  }
  fclose(f);
  return kib;
}

/* ---- spawn + join -------------------------------------------------------- */

struct spawn_bench {
  long batch;      /* tasks spawned before each join */
  long rounds;     /* groups opened and joined in the timed run */
  double ns;       /* elapsed time of the timed run */
  int err;
};


static int spawn_main(void *arg) {
  struct spawn_bench *b = arg;
  /* The warm-up fills the executor's task and stack pools, as a server's
   * first requests would. */
  b->err = bench_spawn_rounds(b->batch, b->rounds / 10 + 1);
  if (b->err != 0) return b->err;
  double t0 = bench_now_ns();
  b->err = bench_spawn_rounds(b->batch, b->rounds);
  b->ns = bench_now_ns() - t0;
  return b->err;
}

static int bench_spawn(long batch, long ops) {
  struct spawn_bench b = {batch, ops / batch > 0 ? ops / batch : 1, 0, 0};
  int err = weft_main(spawn_main, &b);
  if (err != 0) {
    fprintf(stderr, "weft_core spawn: %s\n", weft_strerror(err));
    return 1;
  }
  long n = b.rounds * b.batch;
  printf("{\"bench\":\"spawn\",\"impl\":\"weft\",\"batch\":%ld,\"ops\":%ld,"
         "\"ns_per_op\":%.2f}\n",
         b.batch, n, b.ns / (double)n);
  return 0;
}

/* ---- context switch ------------------------------------------------------ */

struct switch_bench {
  long yields;     /* weft_yield() calls per task */
  double start;    /* when the first task began its loop */
  double end;      /* when the last task ended its loop */
  int done;        /* tasks that have ended their loop */
  int err;
};

static int yielder(void *arg) {
  struct switch_bench *b = arg;
  if (b->start == 0) b->start = bench_now_ns();
  for (long i = 0; i < b->yields; i++) {
    int err = weft_yield();
    if (err != 0) {
      b->err = err;
      return err;
    }
  }
  /* The first task to finish still has one switch to make to its peer;
   * the clock stops when the second one is through. */
  if (++b->done == 2) b->end = bench_now_ns();
  return 0;
}

static int switch_run(struct switch_bench *b) {
  b->start = b->end = 0;
  b->done = 0;
  weft_group *g = weft_group_open(WEFT_FAIL_FAST);
  if (g == NULL) return UV_ENOMEM;
  int err = weft_spawn(g, yielder, b);
  if (err == 0) err = weft_spawn(g, yielder, b);
  int jerr = weft_group_join(g);
  return err != 0 ? err : jerr;
}

static int switch_main(void *arg) {
  struct switch_bench *b = arg;
  long yields = b->yields;
  b->yields = yields / 20 + 1;
  int err = switch_run(b);
  if (err != 0) return err;
  b->yields = yields;
  return switch_run(b);
}

static int bench_switch(long switches) {
  /* Each task yields switches / 2 times: every yield hands the executor to
   * the other task, so the run makes `switches` task switches. */
  struct switch_bench b = {switches / 2 > 0 ? switches / 2 : 1, 0, 0, 0, 0};
  int err = weft_main(switch_main, &b);
  if (err != 0) {
    fprintf(stderr, "weft_core switch: %s\n", weft_strerror(err));
    return 1;
  }
  long n = 2 * b.yields;
  printf("{\"bench\":\"switch\",\"impl\":\"weft_yield\",\"switches\":%ld,"
         "\"ns_per_switch\":%.3f}\n",
         n, (b.end - b.start) / (double)n);
  return 0;
}

/* ---- weft_cancelled() ---------------------------------------------------- */

struct cancelled_bench {
  long checks;
  double baseline_ns;    /* loop reading a volatile int */
  double weft_ns;        /* loop calling weft_cancelled() */
  double scoped_ns;      /* the same inside a scope with a deadline */
  long hits;             /* kept so that nothing is optimised away */
};

/* The baseline: the cheapest check a loop can make that the compiler must
 * still perform every time. */
static double loop_volatile(long n, long *hits) {
  volatile int flag = 0;
  long h = 0;
  double t0 = bench_now_ns();
  for (long i = 0; i < n; i++) {
    if (flag) h++;
  }
  double t1 = bench_now_ns();
  *hits += h;
  return (t1 - t0) / (double)n;
}

static double loop_cancelled(long n, long *hits) {
  long h = 0;
  double t0 = bench_now_ns();
  for (long i = 0; i < n; i++) {
    if (weft_cancelled()) h++;
  }
  double t1 = bench_now_ns();
  *hits += h;
  return (t1 - t0) / (double)n;
}

static int cancelled_main(void *arg) {
  struct cancelled_bench *b = arg;
  loop_volatile(b->checks / 10 + 1, &b->hits);
  loop_cancelled(b->checks / 10 + 1, &b->hits);
  b->baseline_ns = loop_volatile(b->checks, &b->hits);
  b->weft_ns = loop_cancelled(b->checks, &b->hits);
  /* Inside nested scopes with a deadline that does not fire, the check must
   * cost the same: it reads the innermost scope's flag only. */
  weft_scope outer, inner;
  weft_scope_enter(&outer, 3600 * 1000);
  weft_scope_enter(&inner, WEFT_NO_DEADLINE);
  b->scoped_ns = loop_cancelled(b->checks, &b->hits);
  weft_scope_leave(&inner);
  weft_scope_leave(&outer);
  return 0;
}

static int bench_cancelled(long checks) {
  struct cancelled_bench b = {checks, 0, 0, 0, 0};
  int err = weft_main(cancelled_main, &b);
  if (err != 0) {
    fprintf(stderr, "weft_core cancelled: %s\n", weft_strerror(err));
    return 1;
  }
  if (b.hits != 0) {
    fprintf(stderr, "weft_core cancelled: the check fired %ld times\n", b.hits);
    return 1;
  }
  printf("{\"bench\":\"cancelled\",\"impl\":\"weft\",\"checks\":%ld,"
         "\"ns_per_check\":%.3f,\"scoped_ns_per_check\":%.3f}\n",
         checks, b.weft_ns, b.scoped_ns);
  printf("{\"bench\":\"cancelled\",\"impl\":\"volatile_read\",\"checks\":%ld,"
         "\"ns_per_check\":%.3f}\n",
         checks, b.baseline_ns);
  return 0;
}

/* ---- memory per idle task ------------------------------------------------ */

struct memory_bench {
  long tasks;            /* tasks asked for */
  long spawned;          /* tasks actually started */
  long asleep;           /* tasks that reached weft_sleep() */
  long rss_before;       /* KiB */
  long rss_after;        /* KiB */
  double spawn_ns;       /* spawning and first run of every task */
  double cancel_ns;      /* cancel and join of the whole group */
  int spawn_err;         /* why spawning stopped short, if it did */
  int join_err;
};

static int sleeper(void *arg) {
  struct memory_bench *b = arg;
  b->asleep++;
  /* An hour: far longer than the benchmark, which cancels the group. */
  int err = weft_sleep(3600 * 1000);
  return err == UV_ECANCELED ? 0 : err;
}

static int memory_main(void *arg) {
  struct memory_bench *b = arg;
  b->rss_before = vm_rss_kib();
  weft_group *g = weft_group_open(WEFT_COLLECT);
  if (g == NULL) return UV_ENOMEM;
  double t0 = bench_now_ns();
  for (b->spawned = 0; b->spawned < b->tasks; b->spawned++) {
    b->spawn_err = weft_spawn(g, sleeper, b);
    if (b->spawn_err != 0) break;
  }
  /* One yield lets every ready task run up to its sleep; the loop is a
   * guard in case the executor splits the run over several turns. */
  for (int i = 0; i < 1000 && b->asleep < b->spawned; i++) weft_yield();
  b->spawn_ns = bench_now_ns() - t0;
  b->rss_after = vm_rss_kib();
  t0 = bench_now_ns();
  weft_group_cancel(g);
  b->join_err = weft_group_join(g);
  b->cancel_ns = bench_now_ns() - t0;
  return 0;
}

static int bench_memory(long tasks) {
  struct memory_bench b;
  memset(&b, 0, sizeof b);
  b.tasks = tasks;
  int err = weft_main(memory_main, &b);
  if (err != 0) {
    fprintf(stderr, "weft_core memory: %s\n", weft_strerror(err));
    return 1;
  }
  if (b.spawn_err != 0)
    fprintf(stderr, "weft_core memory: spawning stopped after %ld tasks: %s\n",
            b.spawned, weft_strerror(b.spawn_err));
  if (b.join_err != 0 && b.join_err != UV_ECANCELED)
    fprintf(stderr, "weft_core memory: join: %s\n", weft_strerror(b.join_err));
  long n = b.spawned > 0 ? b.spawned : 1;
  printf("{\"bench\":\"memory\",\"impl\":\"weft\",\"tasks\":%ld,\"asleep\":%ld,"
         "\"rss_before_kib\":%ld,\"rss_after_kib\":%ld,\"kib_per_task\":%.3f,"
         "\"spawn_ns_per_task\":%.1f,\"cancel_ns_per_task\":%.1f,"
         "\"error\":\"%s\"}\n",
         b.spawned, b.asleep, b.rss_before, b.rss_after,
         (double)(b.rss_after - b.rss_before) / (double)n, b.spawn_ns / (double)n,
         b.cancel_ns / (double)n, b.spawn_err ? weft_err_name(b.spawn_err) : "");
  return b.spawn_err != 0 || b.asleep != b.spawned;
}

/* Without arguments (as `cmake --build BUILD --target run_bench` runs it),
 * a short pass of every mode: a smoke test, too short to measure with. */
static int run_all_short(void) {
  int failed = 0;
  failed |= bench_spawn(1000, 200000);
  failed |= bench_spawn(1, 200000);
  failed |= bench_switch(2000000);
  failed |= bench_cancelled(20000000);
  failed |= bench_memory(10000);
  return failed;
}

int main(int argc, char **argv) {
  if (argc == 1) return run_all_short();
  const char *mode = argv[1];
  if (strcmp(mode, "spawn") == 0)
    return bench_spawn(bench_arg_long("weft_core", argc, argv, 2, 1000),
                       bench_arg_long("weft_core", argc, argv, 3, 2000000));
  if (strcmp(mode, "switch") == 0)
    return bench_switch(bench_arg_long("weft_core", argc, argv, 2, 20000000));
  if (strcmp(mode, "cancelled") == 0)
    return bench_cancelled(bench_arg_long("weft_core", argc, argv, 2, 200000000));
  if (strcmp(mode, "memory") == 0)
    return bench_memory(bench_arg_long("weft_core", argc, argv, 2, 100000));
  fprintf(stderr,
          "usage: weft_core (a short pass of every mode)\n"
          "       weft_core spawn [batch] [ops]\n"
          "       weft_core switch [switches]\n"
          "       weft_core cancelled [checks]\n"
          "       weft_core memory [tasks]\n");
  return 2;
}
