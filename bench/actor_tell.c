/* actor_tell.c: the cost of telling and asking an actor.
 *
 *   actor_tell tell [msgs]    a task tells an actor `msgs` 8-byte messages
 *                             (its behaviour adds them up), then asks for the
 *                             sum; ns per message, tell to behaviour
 *   actor_tell ask [asks]     a task asks an actor `asks` times in a row;
 *                             ns per round trip
 *
 * Each runs with a LOCAL mailbox on one executor, a SHARED (MPMC) mailbox on
 * one executor, and a SHARED mailbox with the actor on executor 2 and the
 * caller on executor 1. The tell mode also times a bare LOCAL channel
 * between two tasks, the same size of item, as the floor the actor is built
 * on. The Go peer of ask is bench/go/actor_ask.go.
 *
 * Each result is one JSON object on one line, read by
 * bench/run_stream_actor.sh. Every case warms up first, then is timed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "weft.h"
#include "weft/actor.h"
#include "bench_util.h"

/* The actor: adds up what it is told; an ask returns the sum. */
static int sum_behaviour(weft_actor *self, void *state, void *msg, void *reply) {
  (void)self;
  long *sum = state;
  if (reply != NULL)
    memcpy(reply, sum, sizeof *sum);
  else
    *sum += *(long *)msg;
  return 0;
}

struct case_ {
  const char *bench;          /* "tell" or "ask" */
  const char *impl;           /* "weft_actor" or "weft_chan" */
  int mailbox_mode;
  int executors;
  long n;
  double ns;
  double cpu;                 /* CPU ns per operation */
  int err;
};

static int tell_loop(weft_actor *a, long n) {
  for (long i = 0; i < n; i++) {
    long one = 1;
    int err = weft_actor_tell(a, &one);
    if (err != 0) return err;
  }
  long zero = 0, sum = 0;
  int err = weft_actor_ask(a, &zero, &sum, -1);
  return err;
}

static int ask_loop(weft_actor *a, long n) {
  for (long i = 0; i < n; i++) {
    long zero = 0, sum;
    int err = weft_actor_ask(a, &zero, &sum, -1);
    if (err != 0) return err;
  }
  return 0;
}

static int actor_once(struct case_ *c, long n) {
  weft_group *g = weft_group_open(WEFT_FAIL_FAST);
  weft_actor_def def;
  memset(&def, 0, sizeof def);
  def.name = "sum";
  def.msg_size = sizeof(long);
  def.reply_size = sizeof(long);
  def.state_size = sizeof(long);
  def.mailbox = 1024;
  def.mailbox_mode = c->mailbox_mode;
  def.executor = c->executors > 1 ? 2 : 0;
  def.behaviour = sum_behaviour;
  weft_actor *a;
  int err = weft_actor_spawn(g, &def, &a);
  if (err != 0) {
    weft_group_join(g);
    return err;
  }
  double t0 = bench_now_ns(), c0 = bench_cpu_ns();
  err = strcmp(c->bench, "tell") == 0 ? tell_loop(a, n) : ask_loop(a, n);
  c->ns = (bench_now_ns() - t0) / (double)n;
  c->cpu = (bench_cpu_ns() - c0) / (double)n;
  weft_actor_stop(a);
  int jr = weft_group_join(g);
  weft_actor_free(a);
  return err != 0 ? err : jr;
}

/* The floor: the same items through a bare LOCAL channel to a task. */
struct chan_peer {
  weft_chan *c;
  long sum;
};

static int chan_consumer(void *arg) {
  struct chan_peer *p = arg;
  long v[2];
  while (weft_chan_recv(p->c, v) == 0) p->sum += v[1];
  return 0;
}

static int chan_once(struct case_ *c, long n) {
  struct chan_peer p = {weft_chan_new(2 * sizeof(long), 1024, WEFT_CHAN_LOCAL), 0};
  if (p.c == NULL) return UV_ENOMEM;
  weft_group *g = weft_group_open(WEFT_FAIL_FAST);
  int err = weft_spawn(g, chan_consumer, &p);
  double t0 = bench_now_ns(), c0 = bench_cpu_ns();
  for (long i = 0; i < n && err == 0; i++) {
    long v[2] = {0, 1};
    err = weft_chan_send(p.c, v);
  }
  weft_chan_close(p.c);
  int jr = weft_group_join(g);
  c->ns = (bench_now_ns() - t0) / (double)n;
  c->cpu = (bench_cpu_ns() - c0) / (double)n;
  weft_chan_free(p.c);
  if (err == 0 && p.sum != n) err = UV_EPROTO;
  return err != 0 ? err : jr;
}

static int case_main(void *arg) {
  struct case_ *c = arg;
  int (*once)(struct case_ *, long) =
      strcmp(c->impl, "weft_chan") == 0 ? chan_once : actor_once;
  c->err = once(c, c->n / 10 + 1);
  if (c->err == 0) c->err = once(c, c->n);
  return c->err;
}

static int run_case(const char *bench, const char *impl, int mailbox_mode,
                    int executors, long n) {
  struct case_ c = {bench, impl, mailbox_mode, executors, n, 0, 0, 0};
  weft_opts opts = {.executors = executors};
  int err = weft_main_opts(&opts, case_main, &c);
  const char *mb = mailbox_mode == WEFT_ACTOR_LOCAL ? "local" : "shared";
  if (err != 0) {
    fprintf(stderr, "actor_tell %s %s %s: %s\n", bench, impl, mb, weft_strerror(err));
    return 1;
  }
  printf("{\"bench\":\"%s\",\"impl\":\"%s\",\"mailbox\":\"%s\",\"executors\":%d,"
         "\"n\":%ld,\"ns_per_op\":%.2f,\"cpu_ns_per_op\":%.2f}\n",
         bench, impl, mb, executors, n, c.ns, c.cpu);
  fflush(stdout);
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 2 || (strcmp(argv[1], "tell") != 0 && strcmp(argv[1], "ask") != 0)) {
    fprintf(stderr, "usage: actor_tell tell|ask [count]\n");
    return 2;
  }
  int tell = strcmp(argv[1], "tell") == 0;
  long n = bench_arg_long("actor_tell", argc, argv, 2, tell ? 5000000 : 1000000);
  int fails = 0;
  fails += run_case(argv[1], "weft_actor", WEFT_ACTOR_LOCAL, 1, n);
  fails += run_case(argv[1], "weft_actor", WEFT_ACTOR_SHARED, 1, n);
  if (tell) fails += run_case(argv[1], "weft_chan", WEFT_ACTOR_LOCAL, 1, n);
  /* Across executors a round trip crosses threads twice: fewer of them. */
  fails += run_case(argv[1], "weft_actor", WEFT_ACTOR_SHARED, 2, tell ? n : n / 10);
  return fails ? 1 : 0;
}
