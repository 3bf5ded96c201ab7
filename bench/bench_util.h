/* bench_util.h: clocks and argument parsing shared by the benchmark
 * programs in bench/.
 *
 * Static inline functions on the C library and POSIX only, so that a peer
 * built without weft (bench/ck_ring_peer.c) can use them as well.
 */
#ifndef WEFT_BENCH_UTIL_H
#define WEFT_BENCH_UTIL_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

/* Returns the time of clock `id` in nanoseconds, as a double: exact to the
 * nanosecond for about 104 days, far beyond any benchmark run. */
static inline double bench_clock_ns(clockid_t id) {
  struct timespec ts;
  clock_gettime(id, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* Returns the monotonic clock in nanoseconds: the wall time of a run. */
static inline double bench_now_ns(void) { return bench_clock_ns(CLOCK_MONOTONIC); }

/* Returns the CPU time of the whole process in nanoseconds. On a machine
 * shared with other work the wall clock also counts the time the threads
 * waited for a core; the CPU time does not, so benchmarks report both. */
static inline double bench_cpu_ns(void) { return bench_clock_ns(CLOCK_PROCESS_CPUTIME_ID); }

/* Parses `s` as a whole decimal number of at least 1. Returns 1 and sets
 * *out when it is one; returns 0 and leaves *out alone for anything else
 * (an empty string, trailing characters, zero, a negative number, or a
 * number out of range). */
static inline int bench_parse_positive(const char *s, long *out) {
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (end == s || *end != '\0' || v < 1 || errno == ERANGE) return 0;
  *out = v;
  return 1;
}

/* Returns argument `i` as a positive number, or `def` when there are fewer
 * arguments. Anything else ends the program with status 2 and a message
 * that starts with the program's name `prog`. */
static inline long bench_arg_long(const char *prog, int argc, char **argv, int i, long def) {
  if (argc <= i) return def;
  long v;
  if (!bench_parse_positive(argv[i], &v)) {
    fprintf(stderr, "%s: '%s' is not a positive number\n", prog, argv[i]);
    exit(2);
  }
  return v;
}

#endif /* WEFT_BENCH_UTIL_H */
