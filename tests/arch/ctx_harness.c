/* A stand-alone check of a context-switch back end, built for another
 * architecture and run under user-mode emulation (see test_ctx_cross.sh).
 * Two contexts switch back and forth; callee-saved integer and floating-point
 * values of the main context must survive, and the contexts' own state
 * must persist across switches.
 */
#include <stdio.h>
#include <stdlib.h>

#include "internal.h"

static weft__ctx main_ctx, ctx_a, ctx_b;
static volatile int switches;
static double result_a;

static void run_a(void *arg) {
  double x = *(double *)arg;
  for (int i = 0; i < 1000; i++) {
    switches++;
    x *= 1.0001;
    weft__ctx_switch(&ctx_a, &ctx_b);
  }
  result_a = x;
  weft__ctx_switch(&ctx_a, &main_ctx);
  abort();
}

static void run_b(void *arg) {
  (void)arg;
  for (;;) {
    switches++;
    weft__ctx_switch(&ctx_b, &ctx_a);
  }
}

int main(void) {
  size_t size = 64 * 1024;
  char *stack_a = malloc(size), *stack_b = malloc(size);
  double seed = 1.5;
  weft__ctx_make(&ctx_a, stack_a, size, run_a, &seed);
  weft__ctx_make(&ctx_b, stack_b, size, run_b, NULL);
  volatile double kept = 3.25;
  volatile long kept_int = 77;
  weft__ctx_switch(&main_ctx, &ctx_a);
  int ok = switches == 2000 && kept == 3.25 && kept_int == 77 &&
           result_a > 1.6577 && result_a < 1.6578;
  printf("switches=%d kept=%g kept_int=%ld result=%f: %s\n", switches, kept,
         kept_int, result_a, ok ? "ok" : "FAILED");
  free(stack_a);
  free(stack_b);
  return ok ? 0 : 1;
}
