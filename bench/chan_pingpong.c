/* chan_pingpong.c: the round trip over rendezvous channels.
 *
 *   chan_pingpong [rounds] [local|cross]
 *
 * Two tasks bounce a number over two capacity-0 channels: one sends on
 * `ping` and waits on `pong`, the other does the reverse. local: LOCAL
 * channels, both tasks on one executor, so a round trip is two hand-offs
 * and two task switches. cross: MPMC channels with the tasks on two
 * executors (threads), so every hand-off wakes the other thread.
 *
 * Prints ns per round trip after a warm-up of rounds / 10, as one JSON line
 * (read by bench/run_chan.sh) and a summary on stderr. Peer:
 * bench/go/chan_pingpong.go (unbuffered Go channels).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "weft.h"
#include "bench_chan.h"
#include "bench_util.h"

struct pingpong {
  weft_chan *ping, *pong;
  long rounds;
  long warmup;
  double ns;
  long errors;
};

static int server(void *arg) {
  struct pingpong *p = arg;
  return bench_chan_echo(p->ping, p->pong, p->warmup + p->rounds);
}

static int client(void *arg) {
  struct pingpong *p = arg;
  double t0 = 0;
  long total = p->warmup + p->rounds;
  for (long i = 0; i < total; i++) {
    if (i == p->warmup) t0 = bench_now_ns();
    uint64_t v = (uint64_t)i, back;
    int err = weft_chan_send(p->ping, &v);
    if (err == 0) err = weft_chan_recv(p->pong, &back);
    if (err != 0) return err;
    if (back != v + 1) p->errors++;
  }
  p->ns = bench_now_ns() - t0;
  return 0;
}

static int bench_main(void *arg) {
  struct pingpong *p = arg;
  int cross = weft_executor_count() > 1;
  weft_group *g = weft_group_open(WEFT_FAIL_FAST);
  if (g == NULL) return UV_ENOMEM;
  weft_task_opts srv = {.name = "server", .executor = cross ? 2 : 1};
  weft_task_opts cli = {.name = "client", .executor = 1};
  int err = weft_spawn_opts(g, &srv, server, p);
  if (err == 0) err = weft_spawn_opts(g, &cli, client, p);
  int jerr = weft_group_join(g);
  return err != 0 ? err : jerr;
}

int main(int argc, char **argv) {
  struct pingpong p;
  memset(&p, 0, sizeof p);
  p.rounds = 5000000;
  const char *where = argc > 2 ? argv[2] : "local";
  int cross = strcmp(where, "cross") == 0;
  if ((argc > 1 && !bench_parse_positive(argv[1], &p.rounds)) ||
      (!cross && strcmp(where, "local") != 0)) {
    fprintf(stderr, "usage: chan_pingpong [rounds] [local|cross]\n");
    return 2;
  }
  p.warmup = p.rounds / 10;
  int mode = cross ? WEFT_CHAN_MPMC : WEFT_CHAN_LOCAL;
  p.ping = weft_chan_new(sizeof(uint64_t), 0, mode);
  p.pong = weft_chan_new(sizeof(uint64_t), 0, mode);
  if (p.ping == NULL || p.pong == NULL) return 1;
  weft_opts opts = {.executors = cross ? 2 : 1};
  int err = weft_main_opts(&opts, bench_main, &p);
  weft_chan_free(p.ping);
  weft_chan_free(p.pong);
  if (err != 0 || p.errors != 0) {
    fprintf(stderr, "chan_pingpong: %s, %ld wrong replies\n", weft_strerror(err), p.errors);
    return 1;
  }
  double ns = p.ns / (double)p.rounds;
  printf("{\"bench\":\"pingpong\",\"impl\":\"weft\",\"where\":\"%s\",\"rounds\":%ld,"
         "\"ns_per_round_trip\":%.2f}\n",
         where, p.rounds, ns);
  fprintf(stderr, "weft pingpong %s: %.1f ns per round trip\n", where, ns);
  return 0;
}
