/* chan_spsc.c: throughput of an SPSC channel between two threads.
 *
 *   chan_spsc [msgs] [batch] [size] [cap]
 *
 * Runs weft with two executors: the producer task on executor 1, the
 * consumer on executor 2, so that every item crosses between threads. With
 * batch 1 they use weft_chan_send / weft_chan_recv; with a larger batch,
 * weft_chan_send_n / weft_chan_recv_n of up to `batch` items. Items are
 * `size` bytes (8 or more), numbered in their first 8 bytes; the consumer
 * checks the numbers, so a lost or repeated item fails the run.
 *
 * The clock runs on the consumer, from the first item after a warm-up of
 * msgs / 10 items to the last one, so that thread start-up and first-touch
 * page faults are left out. Prints one JSON line (read by
 * bench/run_chan.sh) and a one-line summary on stderr.
 *
 * Peers: bench/ck_ring_peer.c (Concurrency Kit ring, two spinning
 * pthreads) and bench/go/chan_spsc.go (a buffered Go channel).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "weft.h"
#include "bench_chan.h"
#include "bench_util.h"

#define MAX_BATCH 4096
#define MAX_SIZE 4096

struct spsc_bench {
  weft_chan *chan;
  long warmup;        /* items before the clock starts */
  long msgs;          /* timed items */
  long batch;
  size_t size;
  double t0, t1;      /* consumer's clock: first timed item, last item */
  long errors;        /* items out of sequence */
  int err;
};

static int producer(void *arg) {
  struct spsc_bench *b = arg;
  long total = b->warmup + b->msgs;
  unsigned char *buf = calloc((size_t)b->batch, b->size);
  if (buf == NULL) return UV_ENOMEM;
  long seq = 0;
  int err = 0;
  if (b->batch == 1) {
    for (; seq < total; seq++) {
      memcpy(buf, &seq, sizeof seq);
      if ((err = weft_chan_send(b->chan, buf)) != 0) break;
    }
  } else {
    while (seq < total) {
      long k = total - seq < b->batch ? total - seq : b->batch;
      for (long j = 0; j < k; j++) {
        long v = seq + j;
        memcpy(buf + (size_t)j * b->size, &v, sizeof v);
      }
      long sent = weft_chan_send_n(b->chan, buf, (size_t)k);
      if (sent < 0) {
        err = (int)sent;
        break;
      }
      seq += sent;
    }
  }
  free(buf);
  weft_chan_close(b->chan);
  return err;
}

static int consumer(void *arg) {
  struct spsc_bench *b = arg;
  long total = b->warmup + b->msgs;
  unsigned char *buf = calloc((size_t)b->batch, b->size);
  if (buf == NULL) return UV_ENOMEM;
  long seq = 0;
  int err = 0;
  while (seq < total) {
    long got = bench_chan_recv_upto(b->chan, buf, b->batch);
    if (got < 0) {
      err = (int)got;
      break;
    }
    for (long j = 0; j < got; j++) {
      long v;
      memcpy(&v, buf + (size_t)j * b->size, sizeof v);
      if (v != seq + j) b->errors++;
      if (seq + j == b->warmup) b->t0 = bench_now_ns();
    }
    seq += got;
  }
  b->t1 = bench_now_ns();
  free(buf);
  return err;
}

static int bench_main(void *arg) {
  struct spsc_bench *b = arg;
  weft_group *g = weft_group_open(WEFT_FAIL_FAST);
  if (g == NULL) return UV_ENOMEM;
  weft_task_opts on1 = {.name = "producer", .executor = 1};
  weft_task_opts on2 = {.name = "consumer", .executor = 2};
  int err = weft_spawn_opts(g, &on2, consumer, b);
  if (err == 0) err = weft_spawn_opts(g, &on1, producer, b);
  int jerr = weft_group_join(g);
  return err != 0 ? err : jerr;
}

int main(int argc, char **argv) {
  struct spsc_bench b;
  memset(&b, 0, sizeof b);
  b.msgs = bench_arg_long("chan_spsc", argc, argv, 1, 20000000);
  b.batch = bench_arg_long("chan_spsc", argc, argv, 2, 1);
  b.size = (size_t)bench_arg_long("chan_spsc", argc, argv, 3, 8);
  long cap = bench_arg_long("chan_spsc", argc, argv, 4, 1024);
  if (b.batch > MAX_BATCH || b.size < 8 || b.size > MAX_SIZE) {
    fprintf(stderr, "chan_spsc: batch <= %d, 8 <= size <= %d\n", MAX_BATCH, MAX_SIZE);
    return 2;
  }
  b.warmup = b.msgs / 10;
  b.chan = weft_chan_new(b.size, (size_t)cap, WEFT_CHAN_SPSC);
  if (b.chan == NULL) {
    fprintf(stderr, "chan_spsc: cannot make the channel\n");
    return 1;
  }
  weft_opts opts = {.executors = 2};
  int err = weft_main_opts(&opts, bench_main, &b);
  weft_chan_free(b.chan);
  if (err != 0 || b.errors != 0) {
    fprintf(stderr, "chan_spsc: %s, %ld items out of sequence\n", weft_strerror(err),
            b.errors);
    return 1;
  }
  double ns = b.t1 - b.t0;
  double mps = (double)b.msgs / ns * 1e3;
  printf("{\"bench\":\"spsc\",\"impl\":\"weft\",\"batch\":%ld,\"size\":%zu,"
         "\"cap\":%ld,\"msgs\":%ld,\"mmsgs_per_s\":%.3f,\"ns_per_msg\":%.3f}\n",
         b.batch, b.size, cap, b.msgs, mps, ns / (double)b.msgs);
  fprintf(stderr, "weft spsc   batch %4ld size %4zu cap %5ld: %8.2f M msgs/s\n",
          b.batch, b.size, cap, mps);
  return 0;
}
