/* chan_ops.c: the cost of one channel operation in instructions, on one
 * thread, for counting under Valgrind's callgrind.
 *
 *   chan_ops <case> [n]
 *
 * Cross-thread throughput depends on the machine's load and on how the two
 * threads happen to meet; the instructions an operation executes do not.
 * This program runs one operation pattern n times on a single thread, with
 * callgrind's instrumentation switched on only around the loop, so that
 *
 *   valgrind --tool=callgrind --instr-atstart=no bench/chan_ops spsc_burst
 *
 * reports the instructions of the loop alone (the program prints n; the
 * per-operation figure is Ir / n). bench/run_chan.sh --instr runs every case.
 * Without Valgrind the program just runs and prints ns per iteration.
 *
 * Cases (an "iteration" is the unit the program divides by):
 *   spsc_pair, mpmc_pair       weft_chan_send then weft_chan_recv of one
 *                              8-byte item on a channel of capacity 1024
 *   spsc_try, mpmc_try         the same with weft_chan_try_send/try_recv
 *   spsc_burst, mpmc_burst     256 sends, then 256 receives; per item
 *                              (one send and one receive)
 *   ck_spsc_pair, ck_mpmc_pair ck_ring enqueue then dequeue (libck-dev)
 *   ck_spsc_burst, ck_mpmc_burst
 *   local_pingpong             a round trip between two tasks over two
 *                              LOCAL rendezvous channels (two hand-offs)
 *   local_buffered             weft_chan_send then weft_chan_recv on a
 *                              LOCAL channel of capacity 1024
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "weft.h"
#include "bench_chan.h"
#include "bench_util.h"

#if defined(__has_include)
#if __has_include(<valgrind/callgrind.h>)
#include <valgrind/callgrind.h>
#define HAVE_CALLGRIND 1
#endif
#if __has_include(<ck_ring.h>)
#include <ck_ring.h>
#define HAVE_CK 1
#endif
#endif

#if !defined(HAVE_CALLGRIND)
#define CALLGRIND_START_INSTRUMENTATION
#define CALLGRIND_STOP_INSTRUMENTATION
#endif

#define CAP 1024
#define BURST 256

static long n_iter;
static const char *which;
static double t_start, t_end;
static uint64_t sink;         /* keeps the received values alive */
static int failed;

static void start(void) {
  t_start = bench_now_ns();
  CALLGRIND_START_INSTRUMENTATION;
}

static void stop(void) {
  CALLGRIND_STOP_INSTRUMENTATION;
  t_end = bench_now_ns();
}

/* Sends and receives on a weft ring: pairs or bursts, blocking or try. */
static int ring_case(int mode, int burst, int try_ops) {
  weft_chan *c = weft_chan_new(sizeof(uint64_t), CAP, mode);
  if (c == NULL) return UV_ENOMEM;
  uint64_t v = 1, got = 0;
  long rounds = burst ? n_iter / BURST : n_iter;
  int k = burst ? BURST : 1;
  start();
  for (long i = 0; i < rounds; i++) {
    for (int j = 0; j < k; j++) {
      v++;
      if ((try_ops ? weft_chan_try_send(c, &v) : weft_chan_send(c, &v)) != 0) failed = 1;
    }
    for (int j = 0; j < k; j++) {
      if ((try_ops ? weft_chan_try_recv(c, &got) : weft_chan_recv(c, &got)) != 0) failed = 1;
      sink += got;
    }
  }
  stop();
  weft_chan_free(c);
  return 0;
}

static int local_buffered(void) {
  weft_chan *c = weft_chan_new(sizeof(uint64_t), CAP, WEFT_CHAN_LOCAL);
  if (c == NULL) return UV_ENOMEM;
  uint64_t v = 1, got = 0;
  start();
  for (long i = 0; i < n_iter; i++) {
    v++;
    if (weft_chan_send(c, &v) != 0) failed = 1;
    if (weft_chan_recv(c, &got) != 0) failed = 1;
    sink += got;
  }
  stop();
  weft_chan_free(c);
  return 0;
}

struct pingpong {
  weft_chan *ping, *pong;
};

static int pp_server(void *arg) {
  struct pingpong *p = arg;
  return bench_chan_echo(p->ping, p->pong, n_iter);
}

static int pp_client(void *arg) {
  struct pingpong *p = arg;
  start();
  for (long i = 0; i < n_iter; i++) {
    uint64_t v = (uint64_t)i, back = 0;
    int err = weft_chan_send(p->ping, &v);
    if (err == 0) err = weft_chan_recv(p->pong, &back);
    if (err != 0) return err;
    if (back != v + 1) failed = 1;
  }
  stop();
  return 0;
}

static int local_pingpong(void) {
  struct pingpong p;
  p.ping = weft_chan_new(sizeof(uint64_t), 0, WEFT_CHAN_LOCAL);
  p.pong = weft_chan_new(sizeof(uint64_t), 0, WEFT_CHAN_LOCAL);
  if (p.ping == NULL || p.pong == NULL) return UV_ENOMEM;
  weft_group *g = weft_group_open(WEFT_FAIL_FAST);
  if (g == NULL) return UV_ENOMEM;
  int err = weft_spawn(g, pp_server, &p);
  if (err == 0) err = weft_spawn(g, pp_client, &p);
  int jerr = weft_group_join(g);
  weft_chan_free(p.ping);
  weft_chan_free(p.pong);
  return err != 0 ? err : jerr;
}

#if defined(HAVE_CK)
/* The same patterns on a Concurrency Kit ring, 8-byte items by value. */
static int ck_case(int mpmc, int burst) {
  static ck_ring_t ring;
  ck_ring_buffer_t *buf = calloc(CAP, sizeof *buf);
  if (buf == NULL) return UV_ENOMEM;
  ck_ring_init(&ring, CAP);
  uintptr_t v = 1;
  void *got = NULL;
  long rounds = burst ? n_iter / BURST : n_iter;
  int k = burst ? BURST : 1;
  start();
  for (long i = 0; i < rounds; i++) {
    for (int j = 0; j < k; j++) {
      v++;
      bool ok = mpmc ? ck_ring_enqueue_mpmc(&ring, buf, (void *)v)
                     : ck_ring_enqueue_spsc(&ring, buf, (void *)v);
      if (!ok) failed = 1;
    }
    for (int j = 0; j < k; j++) {
      bool ok = mpmc ? ck_ring_dequeue_mpmc(&ring, buf, &got)
                     : ck_ring_dequeue_spsc(&ring, buf, &got);
      if (!ok) failed = 1;
      sink += (uintptr_t)got;
    }
  }
  stop();
  free(buf);
  return 0;
}
#endif

static int run_case(void *arg) {
  (void)arg;
  const char *w = which;
  if (strcmp(w, "spsc_pair") == 0) return ring_case(WEFT_CHAN_SPSC, 0, 0);
  if (strcmp(w, "spsc_try") == 0) return ring_case(WEFT_CHAN_SPSC, 0, 1);
  if (strcmp(w, "spsc_burst") == 0) return ring_case(WEFT_CHAN_SPSC, 1, 0);
  if (strcmp(w, "mpmc_pair") == 0) return ring_case(WEFT_CHAN_MPMC, 0, 0);
  if (strcmp(w, "mpmc_try") == 0) return ring_case(WEFT_CHAN_MPMC, 0, 1);
  if (strcmp(w, "mpmc_burst") == 0) return ring_case(WEFT_CHAN_MPMC, 1, 0);
  if (strcmp(w, "local_buffered") == 0) return local_buffered();
  if (strcmp(w, "local_pingpong") == 0) return local_pingpong();
#if defined(HAVE_CK)
  if (strcmp(w, "ck_spsc_pair") == 0) return ck_case(0, 0);
  if (strcmp(w, "ck_spsc_burst") == 0) return ck_case(0, 1);
  if (strcmp(w, "ck_mpmc_pair") == 0) return ck_case(1, 0);
  if (strcmp(w, "ck_mpmc_burst") == 0) return ck_case(1, 1);
#else
  if (strncmp(w, "ck_", 3) == 0) {
    fprintf(stderr, "chan_ops: built without Concurrency Kit (libck-dev)\n");
    return 3;
  }
#endif
  fprintf(stderr, "chan_ops: unknown case '%s'\n", w);
  return 2;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: chan_ops <case> [n]\n");
    return 2;
  }
  which = argv[1];
  n_iter = 1000000;
  if ((argc > 2 && !bench_parse_positive(argv[2], &n_iter)) || n_iter < BURST) {
    fprintf(stderr, "chan_ops: n must be at least %d\n", BURST);
    return 2;
  }
  n_iter -= n_iter % BURST;
  int err = weft_main(run_case, NULL);
  if (err != 0 || failed) {
    fprintf(stderr, "chan_ops %s: %s%s\n", which, err > 0 ? "bad arguments" : weft_strerror(err),
            failed ? ", an operation failed" : "");
    return 1;
  }
  printf("{\"bench\":\"ops\",\"case\":\"%s\",\"n\":%ld,\"ns_per_iter\":%.2f}\n", which, n_iter,
         (t_end - t_start) / (double)n_iter);
  return 0;
}
