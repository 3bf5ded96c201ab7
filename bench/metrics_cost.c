/* metrics_cost.c: what a metrics update costs on a hot path.
 *
 *   metrics_cost [ops] [runs]
 *
 * Each case runs `ops` updates per thread (default 10,000,000) and reports
 * the nanoseconds one update takes, the median of `runs` timed runs
 * (default 5) after one warm-up run:
 *
 *   counter_inc        weft_counter_inc(), 1 thread and 2 threads
 *   histogram_record   weft_histogram_record() of varied values, 1 and 2
 * threads atomic_shared      the peer: __atomic_fetch_add (relaxed) on one
 * shared counter, 1 and 2 threads mutex_shared       the peer: a pthread mutex
 * around counter++, 1 and 2 threads
 *
 * With 2 threads every thread updates the same metric, as executors do.
 * ns_per_op is wall time: the slower thread's, divided by its own updates.
 * cpu_ns_per_op is the threads' CPU time (CLOCK_THREAD_CPUTIME_ID) per
 * update, averaged: on a loaded machine the threads of a run overlap only in
 * part, and this figure leaves out the time they were not running (and the
 * time a thread sleeps on the mutex). The last lines
 * give the ratios of the peers' costs to weft's, and the cost of reading
 * (a merge over every shard). Each result is one JSON object on one line.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "weft.h"
#include "weft/metrics.h"
#include "bench_util.h"

/* ---- The cases ----------------------------------------------------------- */

enum { CASE_COUNTER, CASE_HISTOGRAM, CASE_ATOMIC, CASE_MUTEX, CASES };
static const char *case_names[CASES] = {"counter_inc", "histogram_record",
                                        "atomic_shared", "mutex_shared"};

static weft_counter *bench_counter;
static weft_histogram *bench_hist;
/* The peers' shared state, each on a cache line of its own. */
static struct {
  uint64_t v;
  char pad[56];
} shared_atomic __attribute__((aligned(64)));
static struct {
  pthread_mutex_t mu;
  uint64_t v;
} shared_locked __attribute__((aligned(64))) = {PTHREAD_MUTEX_INITIALIZER, 0};

/* Values for the histogram: spread over many buckets (1 ns to about 1 s),
 * precomputed so that making them costs one load. */
#define VALUES 4096
static uint64_t values[VALUES];

typedef struct worker {
  pthread_t thread;
  int which;
  long ops;
  pthread_barrier_t *start;
  double ns;     /* this thread's elapsed time */
  double cpu_ns; /* and its CPU time */
} worker;

static void *worker_main(void *arg) {
  worker *w = arg;
  long ops = w->ops;
  pthread_barrier_wait(w->start);
  double t0 = bench_now_ns();
  double c0 = bench_clock_ns(CLOCK_THREAD_CPUTIME_ID);
  switch (w->which) {
  case CASE_COUNTER:
    for (long i = 0; i < ops; i++) weft_counter_inc(bench_counter);
    break;
  case CASE_HISTOGRAM:
    for (long i = 0; i < ops; i++)
      weft_histogram_record(bench_hist, values[i & (VALUES - 1)]);
    break;
  case CASE_ATOMIC:
    for (long i = 0; i < ops; i++)
      __atomic_fetch_add(&shared_atomic.v, 1, __ATOMIC_RELAXED);
    break;
  case CASE_MUTEX:
    for (long i = 0; i < ops; i++) {
      pthread_mutex_lock(&shared_locked.mu);
      shared_locked.v++;
      pthread_mutex_unlock(&shared_locked.mu);
    }
    break;
  }
  w->ns = bench_now_ns() - t0;
  w->cpu_ns = bench_clock_ns(CLOCK_THREAD_CPUTIME_ID) - c0;
  return NULL;
}

/* One run of a case on `threads` threads: wall and CPU ns per update. */
typedef struct timing {
  double ns;
  double cpu_ns;
} timing;

static timing run_once(int which, int threads, long ops) {
  worker w[2];
  pthread_barrier_t start;
  pthread_barrier_init(&start, NULL, (unsigned)threads);
  for (int t = 0; t < threads; t++) {
    w[t] = (worker){.which = which, .ops = ops, .start = &start};
    if (pthread_create(&w[t].thread, NULL, worker_main, &w[t]) != 0) {
      fprintf(stderr, "metrics_cost: pthread_create failed\n");
      exit(1);
    }
  }
  timing out = {0, 0};
  for (int t = 0; t < threads; t++) {
    pthread_join(w[t].thread, NULL);
    if (w[t].ns > out.ns) out.ns = w[t].ns;
    out.cpu_ns += w[t].cpu_ns;
  }
  pthread_barrier_destroy(&start);
  out.ns /= (double)ops;
  out.cpu_ns /= (double)ops * threads;
  return out;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* The medians of `runs` timed runs after a warm-up (wall and CPU apart). */
static timing run_case(int which, int threads, long ops, long runs) {
  run_once(which, threads, ops / 10 + 1);
  double *ns = malloc((size_t)runs * 2 * sizeof *ns);
  if (ns == NULL) exit(1);
  double *cpu = ns + runs;
  for (long r = 0; r < runs; r++) {
    timing t = run_once(which, threads, ops);
    ns[r] = t.ns;
    cpu[r] = t.cpu_ns;
  }
  qsort(ns, (size_t)runs, sizeof *ns, cmp_double);
  qsort(cpu, (size_t)runs, sizeof *cpu, cmp_double);
  timing median = {ns[runs / 2], cpu[runs / 2]};
  free(ns);
  return median;
}

int main(int argc, char **argv) {
  if (argc > 1 &&
      (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
    fprintf(stderr, "usage: metrics_cost [ops per thread] [runs]\n");
    return 0;
  }
  long ops = bench_arg_long("metrics_cost", argc, argv, 1, 10000000);
  long runs = bench_arg_long("metrics_cost", argc, argv, 2, 5);

  bench_counter = weft_metrics_counter("bench_counter_total", "");
  bench_hist = weft_metrics_histogram("bench_record_seconds", "", 1e-9);
  if (bench_counter == NULL || bench_hist == NULL) {
    fprintf(stderr, "metrics_cost: registering failed\n");
    return 1;
  }
  uint64_t x = 0x9e3779b97f4a7c15u;
  for (int i = 0; i < VALUES; i++) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    values[i] = 1 + (x >> (34 + (unsigned)(x % 30)));
  }

  double ns[CASES][3], cpu[CASES][3];
  for (int c = 0; c < CASES; c++) {
    for (int threads = 1; threads <= 2; threads++) {
      timing t = run_case(c, threads, ops, runs);
      ns[c][threads] = t.ns;
      cpu[c][threads] = t.cpu_ns;
      printf(
          "{\"bench\":\"metrics\",\"impl\":\"%s\",\"threads\":%d,\"ops\":%ld,"
          "\"ns_per_op\":%.2f,\"cpu_ns_per_op\":%.2f}\n",
          case_names[c], threads, ops, t.ns, t.cpu_ns);
      fflush(stdout);
    }
  }

  /* Every update was counted: a lost one would make these numbers lie. */
  uint64_t want = (uint64_t)(ops / 10 + 1 + ops * runs) * 3;
  if (weft_counter_value(bench_counter) != want) {
    fprintf(stderr, "metrics_cost: counter is %llu, expected %llu\n",
            (unsigned long long)weft_counter_value(bench_counter),
            (unsigned long long)want);
    return 1;
  }

  /* Ratios peer / weft: above 1, weft's update is the cheaper. */
  for (int threads = 1; threads <= 2; threads++) {
    for (int use_cpu = 0; use_cpu <= 1; use_cpu++) {
      double(*t)[3] = use_cpu ? cpu : ns;
      printf("{\"bench\":\"metrics_ratio\",\"threads\":%d,\"time\":\"%s\","
             "\"atomic_shared_over_counter_inc\":%.2f,"
             "\"mutex_shared_over_counter_inc\":%.2f,"
             "\"atomic_shared_over_histogram_record\":%.2f,"
             "\"mutex_shared_over_histogram_record\":%.2f}\n",
             threads, use_cpu ? "cpu" : "wall",
             t[CASE_ATOMIC][threads] / t[CASE_COUNTER][threads],
             t[CASE_MUTEX][threads] / t[CASE_COUNTER][threads],
             t[CASE_ATOMIC][threads] / t[CASE_HISTOGRAM][threads],
             t[CASE_MUTEX][threads] / t[CASE_HISTOGRAM][threads]);
    }
  }

  /* Reads merge every shard: a counter sums 64 slots, a quantile walks the
   * buckets of each shard a thread has recorded into. */
  long reads = 100000;
  volatile uint64_t sink = 0;
  double t0 = bench_now_ns();
  for (long i = 0; i < reads; i++) sink += weft_counter_value(bench_counter);
  double counter_read = (bench_now_ns() - t0) / (double)reads;
  reads = 1000;
  t0 = bench_now_ns();
  for (long i = 0; i < reads; i++)
    sink += weft_histogram_quantile(bench_hist, 0.99);
  double quantile_read = (bench_now_ns() - t0) / (double)reads;
  t0 = bench_now_ns();
  long exports = 200;
  for (long i = 0; i < exports; i++) free(weft_metrics_json());
  double json_export = (bench_now_ns() - t0) / (double)exports;
  (void)sink;
  printf("{\"bench\":\"metrics_read\",\"counter_value_ns\":%.1f,"
         "\"histogram_quantile_ns\":%.0f,\"json_export_ns\":%.0f}\n",
         counter_read, quantile_read, json_export);
  return 0;
}
