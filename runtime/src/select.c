/* Select: wait on several channel operations and perform exactly one.
 *
 * First every case is tried without waiting, starting at a random case so
 * that none starves. If none is ready, a waiter for each case is registered
 * on its channel; all share one state word, so exactly one party settles
 * the select: a channel operation (a claim, storing the case index), the
 * timeout, or cancellation.
 */
#include <stdlib.h>
#include <string.h>

#include "chan_internal.h"

static WEFT__TLS uint64_t select_rng;

static unsigned select_random(void) {
  uint64_t x = select_rng;
  if (x == 0) x = uv_hrtime() ^ (uint64_t)(uintptr_t)&select_rng;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  select_rng = x;
  return (unsigned)(x >> 32);
}

typedef struct {
  weft__timer timer;
  weft__task *task;
  weft__waiter *any;          /* any one waiter: they share the state */
} select_wait;

static void select_expired(weft__timer *tm) {
  select_wait *sw = (select_wait *)tm;
  if (weft__waiter_settle(sw->any, WEFT__W_TIMEOUT)) weft__wake(sw->task, 0);
}

static void select_cancel(weft__task *t, void *data) {
  select_wait *sw = data;
  if (weft__waiter_settle(sw->any, WEFT__W_CANCELLED)) weft__wake(t, 0);
}

/* Tries every case once, from a random start. Returns the index of the case
 * that fired, or -1. */
static int select_try(weft_case *cases, size_t n) {
  size_t start = select_random() % n;
  for (size_t k = 0; k < n; k++) {
    size_t i = (start + k) % n;
    weft_case *cs = &cases[i];
    if (cs->chan == NULL) continue;
    int r = cs->op == WEFT_SELECT_SEND ? weft__chan_try_send(cs->chan, cs->elem)
                                       : weft__chan_try_recv(cs->chan, cs->elem);
    if (r == 0 || r == WEFT_ECLOSED) {
      cs->result = r;
      return (int)i;
    }
  }
  return -1;
}

/* The checks before a wait: sets *result and returns 1 when the select
 * ends without waiting (a case fired, no wait was asked for, the scope is
 * cancelled or the deadline passed); returns 0 when it must wait. */
static int select_settled_now(weft__task *t, weft_case *cases, size_t n, int64_t timeout_ms,
                              int64_t deadline, int *result) {
  int fired = select_try(cases, n);
  if (fired >= 0)
    *result = fired;
  else if (timeout_ms == 0)
    *result = UV_EAGAIN;
  else if (t->scope->cancelled)
    *result = t->scope->cancelled;
  else if (deadline >= 0 && weft_now() >= deadline)
    *result = UV_ETIMEDOUT;
  else
    return 0;
  return 1;
}

/* Registers a waiter of t for every live case, all sharing *state, until
 * one says its case may be ready after all. Returns one of the waiters;
 * *registered is the number of cases looked at, *ready whether one may be
 * ready. */
static weft__waiter *select_register(weft__task *t, weft_case *cases, size_t n, weft__waiter *w,
                                     int *state, size_t *registered, int *ready) {
  weft__waiter *any = NULL;
  memset(w, 0, n * sizeof *w);
  *registered = 0;
  *ready = 0;
  for (size_t i = 0; i < n && !*ready; i++) {
    if (cases[i].chan == NULL) continue;
    w[i].task = t;
    w[i].state = state;
    w[i].shared = 1;
    w[i].index = (int)i;
    w[i].elem = cases[i].elem;
    any = &w[i];
    *registered = i + 1;
    *ready = weft__chan_register(cases[i].chan, &w[i], cases[i].op);
  }
  return any;
}

/* Parks t until a claim, the deadline or a cancellation settles the
 * select (or, when a case may be ready, only takes the wake-up of a claim
 * that won the race). Returns the park's result. */
static int select_park(weft__task *t, weft__waiter *any, int ready, int64_t deadline) {
  if (ready) {
    if (!weft__waiter_settle(any, WEFT__W_ABANDONED))
      weft__park(NULL, NULL); /* a claim won: take its wake-up */
    return 0;
  }
  select_wait sw;
  sw.timer.heap_index = SIZE_MAX;
  sw.task = t;
  sw.any = any;
  if (deadline >= 0) weft__timer_start(t->exec, &sw.timer, deadline, select_expired);
  int r = weft__park(select_cancel, &sw);
  weft__timer_stop(t->exec, &sw.timer);
  return r;
}

/* What the settled state of a wait means: sets *result and returns 1 when
 * the select ends; returns 0 when it should try again. r is the park's
 * result. */
static int select_outcome(weft__task *t, weft_case *cases, const weft__waiter *w,
                          const weft__waiter *any, int r, int *result) {
  int st = weft__waiter_state(any);
  if (st >= 0) {
    int res = w[st].result;
    if (res != WEFT__W_RETRY) {
      cases[st].result = res;
      *result = st;
      return 1;
    }
    if (r < 0) {
      weft__chan_pass_on(cases[st].chan, cases[st].op);
      *result = r;
      return 1;
    }
    return 0; /* a ring has room or items now: try again */
  }
  if (st == WEFT__W_TIMEOUT) {
    *result = UV_ETIMEDOUT;
    return 1;
  }
  if (st == WEFT__W_CANCELLED) {
    *result = r ? r : t->scope->cancelled;
    return 1;
  }
  return 0; /* abandoned: something became ready while registering */
}

/* One wait on every case: register, park, unregister, and read what
 * settled it. Returns 1 (with *result) when the select ends, 0 when it
 * should try again. */
static int select_wait_once(weft__task *t, weft_case *cases, size_t n, weft__waiter *w,
                            int64_t deadline, int *result) {
  int state = WEFT__W_WAITING;
  size_t registered;
  int ready;
  weft__waiter *any = select_register(t, cases, n, w, &state, &registered, &ready);
  int r = select_park(t, any, ready, deadline);
  for (size_t i = 0; i < registered; i++)
    if (cases[i].chan != NULL) weft__chan_unregister(cases[i].chan, &w[i], cases[i].op);
  return select_outcome(t, cases, w, any, r, result);
}

/* Counts the operation of the case that fired for the runtime's metrics;
 * rings count their operations themselves. */
static void select_count(weft__task *t, const weft_case *cases, int result) {
  if (result < 0 || cases[result].result != 0 || weft__chan_is_ring(cases[result].chan)) return;
  if (cases[result].op == WEFT_SELECT_SEND)
    t->exec->n_chan_sends++;
  else
    t->exec->n_chan_recvs++;
}

int weft_select(weft_case *cases, size_t n, int64_t timeout_ms) {
  weft__task *t = weft__current_task;
  if (t == NULL) return WEFT_ENOTASK;
  size_t live = 0;
  for (size_t i = 0; i < n; i++) live += cases[i].chan != NULL;
  if (live == 0 || n > INT32_MAX) return UV_EINVAL;
  int64_t deadline = timeout_ms > 0 ? weft_now() + timeout_ms : -1;
  weft__waiter stack_waiters[8];
  weft__waiter *w = n <= 8 ? stack_waiters : malloc(n * sizeof *w);
  if (w == NULL) return UV_ENOMEM;
  int result;
  while (!select_settled_now(t, cases, n, timeout_ms, deadline, &result) &&
         !select_wait_once(t, cases, n, w, deadline, &result)) {
  }
  if (w != stack_waiters) free(w);
  select_count(t, cases, result);
  return result;
}
