/* bench_core.h: the spawn + join workload, one piece of code for the timed
 * benchmark (bench/weft_core.c) and the instruction counts of perf-check
 * (bench/core_ops.c), so that both measure the same thing.
 */
#ifndef WEFT_BENCH_CORE_H
#define WEFT_BENCH_CORE_H

#include "weft.h"

static inline int bench_return_zero(void *arg) {
  (void)arg;
  return 0;
}

/* Opens `rounds` groups, spawns `batch` tasks that return at once in each
 * and joins it. Returns 0 or the first error. */
static inline int bench_spawn_rounds(long batch, long rounds) {
  for (long r = 0; r < rounds; r++) {
    weft_group *g = weft_group_open(WEFT_FAIL_FAST);
    if (g == NULL) return UV_ENOMEM;
    for (long i = 0; i < batch; i++) {
      int err = weft_spawn(g, bench_return_zero, NULL);
      if (err != 0) {
        weft_group_join(g);
        return err;
      }
    }
    int err = weft_group_join(g);
    if (err != 0) return err;
  }
  return 0;
}

#endif /* WEFT_BENCH_CORE_H */
