/* ck_ring_peer.c: the Concurrency Kit ring, as the peer of weft's channel
 * benchmarks (bench/chan_spsc.c, bench/chan_mpmc.c).
 *
 *   ck_ring_peer spsc [msgs] [cap]
 *   ck_ring_peer mpmc [msgs] [cap] [producers] [consumers]
 *
 * Plain pthreads move 8-byte items (the value travels in the ring's pointer
 * slot) through a ck_ring: ck_ring_enqueue_spsc / ck_ring_dequeue_spsc with
 * one producer and one consumer thread, or ck_ring_enqueue_mpmc /
 * ck_ring_dequeue_mpmc with several of each. A thread that finds the ring
 * full (or empty) spins, with a pause, and yields the CPU after a while:
 * with more threads than cores a pure spin would wait for a time slice to
 * end. This is the best case for a ring: nobody ever sleeps, so there is no
 * wake-up to pay for, at the price of burning the cores while waiting.
 *
 * The clock starts when every thread has started (a spinning barrier) and
 * stops when the last item is taken; a warm-up of msgs / 10 items runs
 * before. Prints one JSON line in the shape weft's benchmarks print.
 */
#define _GNU_SOURCE
#include <stdio.h>

#if !defined(__has_include) || !__has_include(<ck_ring.h>)
/* Without Concurrency Kit (libck-dev) the peer cannot be built: the program
 * says so, and the driver skips its rows. */
int main(void) {
  fprintf(stderr, "ck_ring_peer: built without Concurrency Kit (libck-dev)\n");
  return 3;
}
#else

#include <ck_pr.h>
#include <ck_ring.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"

#define MAX_THREADS 16

static ck_ring_t ring;
static ck_ring_buffer_t *buffer;
static long per_producer;     /* items each producer sends */
static long per_consumer;     /* items each consumer takes */
static int mpmc;
static unsigned ready;        /* threads past their start, atomically */
static unsigned nthreads;
static long errors;           /* SPSC: items out of sequence */
static unsigned long checksum;

/* Waits, spinning, until every thread has started. */
static void barrier(void) {
  ck_pr_inc_uint(&ready);
  while (ck_pr_load_uint(&ready) < nthreads) ck_pr_stall();
}

/* Called while the ring is full or empty: a pause, and every so often the
 * CPU for whoever else wants it. */
static inline void backoff(unsigned *spins) {
  ck_pr_stall();
  if (++*spins >= 128) {
    *spins = 0;
    sched_yield();
  }
}

static void *producer(void *arg) {
  long id = (long)(intptr_t)arg;
  barrier();
  unsigned spins = 0;
  for (long i = 0; i < per_producer; i++) {
    /* The value is the sequence number, tagged with the producer in the
     * top bits; 0 is never sent, so it cannot look like a null pointer. */
    uintptr_t v = ((uintptr_t)id << 56) | (uintptr_t)(i + 1);
    if (mpmc) {
      while (!ck_ring_enqueue_mpmc(&ring, buffer, (void *)v)) backoff(&spins);
    } else {
      while (!ck_ring_enqueue_spsc(&ring, buffer, (void *)v)) backoff(&spins);
    }
  }
  return NULL;
}

struct consumer_arg {
  double t0;                  /* when the warm-up was over, for this thread */
  double t1;                  /* when its last item came */
  long warmup;
};

static void *consumer(void *arg) {
  struct consumer_arg *a = arg;
  barrier();
  unsigned spins = 0;
  unsigned long sum = 0;
  uintptr_t expect = 1;
  for (long i = 0; i < per_consumer; i++) {
    void *p;
    if (mpmc) {
      while (!ck_ring_dequeue_mpmc(&ring, buffer, &p)) backoff(&spins);
    } else {
      while (!ck_ring_dequeue_spsc(&ring, buffer, &p)) backoff(&spins);
      if ((uintptr_t)p != expect) errors++;
      expect++;
    }
    sum += (unsigned long)(uintptr_t)p;
    if (i == a->warmup) a->t0 = bench_now_ns();
  }
  a->t1 = bench_now_ns();
  __atomic_fetch_add(&checksum, sum, __ATOMIC_RELAXED);
  return NULL;
}

int main(int argc, char **argv) {
  if (argc < 2 || (strcmp(argv[1], "spsc") != 0 && strcmp(argv[1], "mpmc") != 0)) {
    fprintf(stderr, "usage: ck_ring_peer spsc|mpmc [msgs] [cap] [producers] [consumers]\n");
    return 2;
  }
  mpmc = strcmp(argv[1], "mpmc") == 0;
  long msgs = bench_arg_long("ck_ring_peer", argc, argv, 2, 20000000);
  long cap = bench_arg_long("ck_ring_peer", argc, argv, 3, 1024);
  long np = mpmc ? bench_arg_long("ck_ring_peer", argc, argv, 4, 2) : 1;
  long nc = mpmc ? bench_arg_long("ck_ring_peer", argc, argv, 5, 2) : 1;
  if (np + nc > MAX_THREADS || (cap & (cap - 1)) != 0) {
    fprintf(stderr, "ck_ring_peer: at most %d threads; cap a power of two\n", MAX_THREADS);
    return 2;
  }
  /* A ck_ring of size n holds n - 1 items: one less than the weft channel
   * of the same capacity, which makes no difference at these sizes. */
  unsigned size = (unsigned)cap;
  buffer = calloc(size, sizeof *buffer);
  if (buffer == NULL) return 1;
  ck_ring_init(&ring, size);
  long warmup = msgs / 10;
  long total = msgs + warmup;
  per_producer = total / np;
  per_consumer = total / nc;
  total = per_producer * np;
  if (per_consumer * nc != total) {
    fprintf(stderr, "ck_ring_peer: msgs must divide among the threads\n");
    return 2;
  }
  nthreads = (unsigned)(np + nc);
  pthread_t threads[MAX_THREADS];
  struct consumer_arg cargs[MAX_THREADS];
  for (long i = 0; i < nc; i++) {
    cargs[i].t0 = cargs[i].t1 = 0;
    cargs[i].warmup = warmup / nc;
    pthread_create(&threads[i], NULL, consumer, &cargs[i]);
  }
  for (long i = 0; i < np; i++)
    pthread_create(&threads[nc + i], NULL, producer, (void *)(intptr_t)i);
  for (long i = 0; i < np + nc; i++) pthread_join(threads[i], NULL);
  double t0 = cargs[0].t0, t1 = cargs[0].t1;
  for (long i = 1; i < nc; i++) {
    if (cargs[i].t0 < t0) t0 = cargs[i].t0;
    if (cargs[i].t1 > t1) t1 = cargs[i].t1;
  }
  /* Every item taken once: the sum of all values sent. */
  unsigned long want = 0;
  for (long p = 0; p < np; p++)
    want += ((unsigned long)p << 56) * (unsigned long)per_producer +
            (unsigned long)per_producer * (unsigned long)(per_producer + 1) / 2;
  if (errors != 0 || checksum != want) {
    fprintf(stderr, "ck_ring_peer: items lost, repeated or out of order\n");
    return 1;
  }
  long timed = total - warmup;
  double ns = t1 - t0;
  double mps = (double)timed / ns * 1e3;
  printf("{\"bench\":\"%s\",\"impl\":\"ck_ring\",\"producers\":%ld,\"consumers\":%ld,"
         "\"size\":8,\"cap\":%ld,\"msgs\":%ld,\"mmsgs_per_s\":%.3f,\"ns_per_msg\":%.3f}\n",
         mpmc ? "mpmc" : "spsc", np, nc, cap, timed, mps, ns / (double)timed);
  fprintf(stderr, "ck_ring %s %ldP/%ldC cap %5ld: %8.2f M msgs/s\n", mpmc ? "mpmc" : "spsc",
          np, nc, cap, mps);
  free(buffer);
  return 0;
}

#endif /* ck_ring.h */
