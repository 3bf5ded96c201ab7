/* chan_select.c: the cost of a select over four channels.
 *
 *   chan_select [iterations] [local|mpmc]
 *
 * One task, four buffered channels (LOCAL, or MPMC for comparison). Each
 * iteration sends one item into channel i % 4 and selects over receive
 * cases on all four: exactly one is ready, and it must be the one that
 * fires. The same loop with a plain receive instead of the select is timed
 * too (the baseline), so that the cost of the select itself is the
 * difference.
 *
 * Prints one JSON line (read by bench/run_chan.sh) and a summary on
 * stderr. Peer: bench/go/chan_select.go, the same two loops in Go.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "weft.h"
#include "bench_util.h"

struct select_bench {
  int mode;
  long iters;
  double select_ns;           /* per iteration: send + select */
  double baseline_ns;         /* per iteration: send + recv */
  long errors;
};

static double loop_select(weft_chan **c, long n, long *errors) {
  long v[4] = {0, 0, 0, 0};
  weft_case cases[4];
  for (int k = 0; k < 4; k++)
    cases[k] = (weft_case){.chan = c[k], .op = WEFT_SELECT_RECV, .elem = &v[k]};
  double t0 = bench_now_ns();
  for (long i = 0; i < n; i++) {
    int k = (int)(i & 3);
    weft_chan_send(c[k], &i);
    int fired = weft_select(cases, 4, -1);
    if (fired != k || v[k] != i) (*errors)++;
  }
  return (bench_now_ns() - t0) / (double)n;
}

static double loop_recv(weft_chan **c, long n, long *errors) {
  double t0 = bench_now_ns();
  for (long i = 0; i < n; i++) {
    int k = (int)(i & 3);
    long v;
    weft_chan_send(c[k], &i);
    if (weft_chan_recv(c[k], &v) != 0 || v != i) (*errors)++;
  }
  return (bench_now_ns() - t0) / (double)n;
}

static int bench_main(void *arg) {
  struct select_bench *b = arg;
  weft_chan *c[4];
  for (int k = 0; k < 4; k++) {
    c[k] = weft_chan_new(sizeof(long), 16, b->mode);
    if (c[k] == NULL) return UV_ENOMEM;
  }
  loop_select(c, b->iters / 10 + 1, &b->errors);
  b->select_ns = loop_select(c, b->iters, &b->errors);
  loop_recv(c, b->iters / 10 + 1, &b->errors);
  b->baseline_ns = loop_recv(c, b->iters, &b->errors);
  for (int k = 0; k < 4; k++) weft_chan_free(c[k]);
  return 0;
}

int main(int argc, char **argv) {
  struct select_bench b;
  memset(&b, 0, sizeof b);
  b.iters = 10000000;
  const char *kind = argc > 2 ? argv[2] : "local";
  int known = 1;
  if (strcmp(kind, "local") == 0)
    b.mode = WEFT_CHAN_LOCAL;
  else if (strcmp(kind, "mpmc") == 0)
    b.mode = WEFT_CHAN_MPMC;
  else
    known = 0;
  if (!known || (argc > 1 && !bench_parse_positive(argv[1], &b.iters))) {
    fprintf(stderr, "usage: chan_select [iterations] [local|mpmc]\n");
    return 2;
  }
  int err = weft_main(bench_main, &b);
  if (err != 0 || b.errors != 0) {
    fprintf(stderr, "chan_select: %s, %ld errors\n", weft_strerror(err), b.errors);
    return 1;
  }
  printf("{\"bench\":\"select\",\"impl\":\"weft\",\"chan\":\"%s\",\"cases\":4,"
         "\"iters\":%ld,\"ns_per_select\":%.2f,\"ns_baseline\":%.2f,"
         "\"ns_select_only\":%.2f}\n",
         kind, b.iters, b.select_ns, b.baseline_ns, b.select_ns - b.baseline_ns);
  fprintf(stderr, "weft select %s: %.1f ns per send+select, %.1f ns per send+recv\n", kind,
          b.select_ns, b.baseline_ns);
  return 0;
}
