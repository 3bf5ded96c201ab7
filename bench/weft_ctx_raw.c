/* weft_ctx_raw.c: the bare context switch under weft_yield().
 *
 * Two contexts, the program's own stack and one made with weft__ctx_make(),
 * switch to each other with weft__ctx_switch() and nothing else: no ready
 * queue, no scheduler, no libuv. This is weft's counterpart of the bare
 * jump_fcontext() figure that bench/boost_switch.cpp prints, and the floor
 * under the weft_yield() figure of weft_core; the difference between the
 * two is what the executor adds per switch.
 *
 * Usage: weft_ctx_raw [switches]   (default 20,000,000)
 */
#include <stdio.h>
#include <stdlib.h>

#include "internal.h"
#include "bench_util.h"

static weft__ctx main_ctx, peer_ctx;

/* The peer hands control straight back, forever; the program ends while it
 * is suspended, which is harmless since nothing on its stack needs freeing. */
static void peer(void *arg) {
  (void)arg;
  for (;;) weft__ctx_switch(&peer_ctx, &main_ctx);
}

static double run(long round_trips) {
  double t0 = bench_now_ns();
  for (long i = 0; i < round_trips; i++) weft__ctx_switch(&main_ctx, &peer_ctx);
  double t1 = bench_now_ns();
  return (t1 - t0) / (2.0 * (double)round_trips);
}

int main(int argc, char **argv) {
  long switches = bench_arg_long("weft_ctx_raw", argc, argv, 1, 20000000L);
  if (switches < 2) {
    fprintf(stderr, "weft_ctx_raw: switches must be at least 2\n");
    return 2;
  }
  size_t size = 64 * 1024;
  void *stack = malloc(size);
  if (stack == NULL) return 1;
  weft__ctx_make(&peer_ctx, stack, size, peer, NULL);
  long round_trips = switches / 2;
  run(round_trips / 20 + 1);
  double ns = run(round_trips);
  printf("{\"bench\":\"switch\",\"impl\":\"weft_ctx_raw\",\"switches\":%ld,"
         "\"ns_per_switch\":%.3f}\n",
         2 * round_trips, ns);
  return 0;
}
