/* chan_mpmc.c: throughput of an MPMC channel, 2 producers and 2 consumers
 * on 2 executor threads.
 *
 *   chan_mpmc [msgs] [batch] [cap] [split|mixed]
 *
 * split: both producers on executor 1, both consumers on executor 2, so
 * every item crosses between threads. mixed: one producer and one consumer
 * on each executor, as a scheduler that places tasks freely would. With
 * batch 1 the tasks use weft_chan_send / weft_chan_recv, otherwise
 * weft_chan_send_n / weft_chan_recv_n of up to `batch` items. Items are 8
 * bytes; a checksum proves that each was received once.
 *
 * The clock starts when the consumers together have taken a warm-up of
 * msgs / 10 items and stops at the last one. Prints one JSON line (read by
 * bench/run_chan.sh) and a summary on stderr.
 *
 * Peers: bench/ck_ring_peer.c mpmc, bench/go/chan_mpmc.go.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "weft.h"
#include "bench_chan.h"
#include "bench_util.h"

#define PRODUCERS 2
#define CONSUMERS 2
#define MAX_BATCH 4096
/* The consumers count what they take on their own and add it to the shared
 * count (which tells when the warm-up is over) this many at a time, so that
 * the harness's counting is not a contended atomic per item. */
#define COUNT_STEP 256

struct mpmc_bench {
  weft_chan *chan;
  long per_producer;
  long warmup;
  long batch;
  int mixed;
  /* Written while the items flow, each on a line of its own: the
   * producers read the fields above in every round. */
  _Alignas(64) long received; /* atomic: items taken by all consumers,
                                 added COUNT_STEP at a time */
  _Alignas(64) int producers_left; /* atomic: the last one closes the channel */
  double t0;                  /* set once, by the consumer that passes warmup */
  _Alignas(64) double t1[CONSUMERS];
  uint64_t sums[CONSUMERS];
  int err;
};

struct role {
  struct mpmc_bench *b;
  int id;
};

static int producer(void *arg) {
  struct role *r = arg;
  struct mpmc_bench *b = r->b;
  weft_chan *chan = b->chan;
  const long per = b->per_producer, batch = b->batch;
  uint64_t buf[MAX_BATCH];
  uint64_t base = (uint64_t)r->id * (uint64_t)per;
  long i = 0;
  int err = 0;
  while (i < per) {
    if (batch == 1) {
      uint64_t v = base + (uint64_t)i + 1;
      if ((err = weft_chan_send(chan, &v)) != 0) break;
      i++;
    } else {
      long k = per - i < batch ? per - i : batch;
      for (long j = 0; j < k; j++) buf[j] = base + (uint64_t)(i + j) + 1;
      long sent = weft_chan_send_n(chan, buf, (size_t)k);
      if (sent < 0) {
        err = (int)sent;
        break;
      }
      i += sent;
    }
  }
  if (__atomic_sub_fetch(&b->producers_left, 1, __ATOMIC_ACQ_REL) == 0)
    weft_chan_close(b->chan);
  return err;
}

static int consumer(void *arg) {
  struct role *r = arg;
  struct mpmc_bench *b = r->b;
  weft_chan *chan = b->chan;
  const long batch = b->batch, warmup = b->warmup;
  uint64_t buf[MAX_BATCH];
  uint64_t sum = 0;
  long pending = 0; /* taken, not yet added to b->received */
  for (;;) {
    long got = bench_chan_recv_upto(chan, buf, batch);
    if (got < 0) {
      __atomic_fetch_add(&b->received, pending, __ATOMIC_RELAXED);
      b->t1[r->id] = bench_now_ns();
      b->sums[r->id] = sum;
      return got == WEFT_ECLOSED ? 0 : (int)got;
    }
    for (long j = 0; j < got; j++) sum += buf[j];
    if ((pending += got) < COUNT_STEP) continue;
    long before = __atomic_fetch_add(&b->received, pending, __ATOMIC_RELAXED);
    if (before <= warmup && before + pending > warmup) b->t0 = bench_now_ns();
    pending = 0;
  }
}

static int bench_main(void *arg) {
  struct mpmc_bench *b = arg;
  struct role roles[PRODUCERS + CONSUMERS];
  weft_group *g = weft_group_open(WEFT_FAIL_FAST);
  if (g == NULL) return UV_ENOMEM;
  int err = 0;
  for (int i = 0; i < CONSUMERS && err == 0; i++) {
    roles[i] = (struct role){b, i};
    weft_task_opts o = {.name = "consumer", .executor = b->mixed ? 1 + i % 2 : 2};
    err = weft_spawn_opts(g, &o, consumer, &roles[i]);
  }
  for (int i = 0; i < PRODUCERS && err == 0; i++) {
    roles[CONSUMERS + i] = (struct role){b, i};
    weft_task_opts o = {.name = "producer", .executor = b->mixed ? 1 + i % 2 : 1};
    err = weft_spawn_opts(g, &o, producer, &roles[CONSUMERS + i]);
  }
  int jerr = weft_group_join(g);
  return err != 0 ? err : jerr;
}

int main(int argc, char **argv) {
  struct mpmc_bench b;
  memset(&b, 0, sizeof b);
  long msgs = bench_arg_long("chan_mpmc", argc, argv, 1, 20000000);
  b.batch = bench_arg_long("chan_mpmc", argc, argv, 2, 1);
  long cap = bench_arg_long("chan_mpmc", argc, argv, 3, 1024);
  const char *placement = argc > 4 ? argv[4] : "split";
  if (strcmp(placement, "split") != 0 && strcmp(placement, "mixed") != 0) {
    fprintf(stderr, "chan_mpmc: placement is split or mixed\n");
    return 2;
  }
  if (b.batch > MAX_BATCH) {
    fprintf(stderr, "chan_mpmc: batch <= %d\n", MAX_BATCH);
    return 2;
  }
  b.mixed = strcmp(placement, "mixed") == 0;
  b.warmup = msgs / 10;
  b.per_producer = (msgs + b.warmup) / PRODUCERS;
  b.producers_left = PRODUCERS;
  b.chan = weft_chan_new(sizeof(uint64_t), (size_t)cap, WEFT_CHAN_MPMC);
  if (b.chan == NULL) return 1;
  weft_opts opts = {.executors = 2};
  int err = weft_main_opts(&opts, bench_main, &b);
  weft_chan_free(b.chan);
  uint64_t n = (uint64_t)b.per_producer * PRODUCERS;
  uint64_t want = n * (n + 1) / 2, sum = 0;
  for (int i = 0; i < CONSUMERS; i++) sum += b.sums[i];
  if (err != 0 || sum != want || b.received != (long)n) {
    fprintf(stderr, "chan_mpmc: %s; %ld of %lu items, checksum %s\n", weft_strerror(err),
            b.received, (unsigned long)n, sum == want ? "ok" : "wrong");
    return 1;
  }
  double t1 = b.t1[0] > b.t1[1] ? b.t1[0] : b.t1[1];
  long timed = (long)n - b.warmup;
  double ns = t1 - b.t0;
  double mps = (double)timed / ns * 1e3;
  printf("{\"bench\":\"mpmc\",\"impl\":\"weft\",\"placement\":\"%s\",\"batch\":%ld,"
         "\"producers\":%d,\"consumers\":%d,\"size\":8,\"cap\":%ld,\"msgs\":%ld,"
         "\"mmsgs_per_s\":%.3f,\"ns_per_msg\":%.3f}\n",
         placement, b.batch, PRODUCERS, CONSUMERS, cap, timed, mps, ns / (double)timed);
  fprintf(stderr, "weft mpmc %s batch %4ld cap %5ld: %8.2f M msgs/s\n", placement, b.batch,
          cap, mps);
  return 0;
}
