/* stream_handoff.c: hand-off cost through a bounded stream whose writer is
 * kept blocked.
 *
 *   stream_handoff [items]
 *
 * A writer task writes `items` 8-byte items into a stream of capacity 1 and
 * a reader task reads them, so the writer finds the stream full nearly every
 * time and waits: each item is a hand-off from a blocked writer to the
 * reader. The figure is elapsed time / items. It is measured for
 *
 *   stream, local        a LOCAL stream, both tasks on one executor
 *   chan, local          the LOCAL channel underneath, the same way (peer)
 *   stream, local, cap 64  the same stream with room for 64: the cost when
 *                        the writer rarely waits
 *   stream, spsc, 2 exec an SPSC stream, writer on executor 2, reader on 1
 *   chan, spsc, 2 exec   the SPSC channel underneath (peer)
 *
 * Each result is one JSON object on one line, read by
 * bench/run_stream_actor.sh. Every case runs once to warm up, then timed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "weft.h"
#include "weft/stream.h"
#include "bench_util.h"

struct handoff {
  const char *impl;           /* "stream" or "chan" */
  int mode;                   /* WEFT_STREAM_* */
  size_t cap;
  int writer_exec;            /* 0: the reader's executor */
  long items;
  /* Results. */
  double ns;
  double cpu;                 /* CPU ns per item */
  double blocked_share;       /* stream only: blocked_ns / elapsed */
  int err;
  weft_stream *s;
  weft_chan *c;
};

static int writer_task(void *arg) {
  struct handoff *h = arg;
  for (long i = 0; i < h->items; i++) {
    uint64_t v = (uint64_t)i;
    int err = h->s ? weft_stream_write(h->s, &v) : weft_chan_send(h->c, &v);
    if (err != 0) return err;
  }
  if (h->s)
    weft_stream_end(h->s, 0);
  else
    weft_chan_close(h->c);
  return 0;
}

static int run_once(struct handoff *h) {
  int chan_mode = h->mode == WEFT_STREAM_LOCAL  ? WEFT_CHAN_LOCAL
                  : h->mode == WEFT_STREAM_SPSC ? WEFT_CHAN_SPSC
                                                : WEFT_CHAN_MPMC;
  weft_stream_opts so = {h->mode, WEFT_STREAM_BLOCK, NULL};
  h->s = NULL;
  h->c = NULL;
  if (strcmp(h->impl, "stream") == 0)
    h->s = weft_stream_new(sizeof(uint64_t), h->cap, &so);
  else
    h->c = weft_chan_new(sizeof(uint64_t), h->cap, chan_mode);
  if (h->s == NULL && h->c == NULL) return UV_ENOMEM;
  weft_group *g = weft_group_open(WEFT_FAIL_FAST);
  weft_task_opts opts = {"writer", 0, h->writer_exec};
  double t0 = bench_now_ns(), c0 = bench_cpu_ns();
  int err = weft_spawn_opts(g, &opts, writer_task, h);
  long got = 0;
  uint64_t v;
  while (err == 0) {
    int r = h->s ? weft_stream_read(h->s, &v) : weft_chan_recv(h->c, &v);
    if (r != 0) break;
    if (v != (uint64_t)got) err = UV_EPROTO;
    got++;
  }
  double t1 = bench_now_ns(), c1 = bench_cpu_ns();
  int jr = weft_group_join(g);
  if (err == 0) err = jr;
  if (err == 0 && got != h->items) err = UV_EPROTO;
  h->ns = (t1 - t0) / (double)h->items;
  h->cpu = (c1 - c0) / (double)h->items;
  h->blocked_share = 0;
  if (h->s) {
    weft_stream_stats st;
    weft_stream_stats_get(h->s, &st);
    h->blocked_share = (double)st.blocked_ns / (t1 - t0);
    weft_stream_free(h->s);
  } else {
    weft_chan_free(h->c);
  }
  return err;
}

static int handoff_main(void *arg) {
  struct handoff *h = arg;
  long items = h->items;
  h->items = items / 10 + 1; /* warm-up: pools filled, code paged in */
  h->err = run_once(h);
  if (h->err != 0) return h->err;
  h->items = items;
  h->err = run_once(h);
  return h->err;
}

static const char *mode_name(int mode) {
  return mode == WEFT_STREAM_LOCAL ? "local" : mode == WEFT_STREAM_SPSC ? "spsc" : "mpmc";
}

static int bench(const char *impl, int mode, size_t cap, int executors, long items) {
  struct handoff h;
  memset(&h, 0, sizeof h);
  h.impl = impl;
  h.mode = mode;
  h.cap = cap;
  h.writer_exec = executors > 1 ? 2 : 0;
  h.items = items;
  weft_opts opts = {.executors = executors};
  int err = weft_main_opts(&opts, handoff_main, &h);
  if (err != 0) {
    fprintf(stderr, "stream_handoff %s %s: %s\n", impl, mode_name(mode), weft_strerror(err));
    return 1;
  }
  printf("{\"bench\":\"handoff\",\"impl\":\"%s\",\"mode\":\"%s\",\"cap\":%zu,"
         "\"executors\":%d,\"items\":%ld,\"ns_per_item\":%.2f,\"cpu_ns_per_item\":%.2f,"
         "\"blocked_share\":%.3f}\n",
         impl, mode_name(mode), cap, executors, items, h.ns, h.cpu, h.blocked_share);
  fflush(stdout);
  return 0;
}

int main(int argc, char **argv) {
  long items = 2000000;
  if (argc > 1 && !bench_parse_positive(argv[1], &items)) {
    fprintf(stderr, "usage: stream_handoff [items]\n");
    return 2;
  }
  int fails = 0;
  fails += bench("stream", WEFT_STREAM_LOCAL, 1, 1, items);
  fails += bench("chan", WEFT_STREAM_LOCAL, 1, 1, items);
  fails += bench("stream", WEFT_STREAM_LOCAL, 64, 1, items);
  /* Across executors every hand-off may cross threads: fewer items. */
  fails += bench("stream", WEFT_STREAM_SPSC, 1, 2, items / 10);
  fails += bench("chan", WEFT_STREAM_SPSC, 1, 2, items / 10);
  return fails ? 1 : 0;
}
