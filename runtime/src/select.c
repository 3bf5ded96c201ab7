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

static WEFT__TLS uint64_t weft__select_rng;

static unsigned weft__select_random(void) {
  uint64_t x = weft__select_rng;
  if (x == 0) x = uv_hrtime() ^ (uint64_t)(uintptr_t)&weft__select_rng;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  weft__select_rng = x;
  return (unsigned)(x >> 32);
}

typedef struct {
  weft__timer timer;
  weft__task *task;
  weft__waiter *any;          /* any one waiter: they share the state */
} weft__select_wait;

static void weft__select_expired(weft__timer *tm) {
  weft__select_wait *sw = (weft__select_wait *)tm;
  if (weft__waiter_settle(sw->any, WEFT__W_TIMEOUT)) weft__wake(sw->task, 0);
}

static void weft__select_cancel(weft__task *t, void *data) {
  weft__select_wait *sw = data;
  if (weft__waiter_settle(sw->any, WEFT__W_CANCELLED)) weft__wake(t, 0);
}

/* Tries every case once, from a random start. Returns the index of the case
 * that fired, or -1. */
static int weft__select_try(weft_case *cases, size_t n) {
  size_t start = weft__select_random() % n;
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
  for (;;) {
    int fired = weft__select_try(cases, n);
    if (fired >= 0) {
      result = fired;
      break;
    }
    if (timeout_ms == 0) {
      result = UV_EAGAIN;
      break;
    }
    if (t->scope->cancelled) {
      result = t->scope->cancelled;
      break;
    }
    if (deadline >= 0 && weft_now() >= deadline) {
      result = UV_ETIMEDOUT;
      break;
    }
    int state = WEFT__W_WAITING;
    size_t registered = 0;
    int ready = 0;
    memset(w, 0, n * sizeof *w);
    weft__waiter *any = NULL;
    for (size_t i = 0; i < n && !ready; i++) {
      if (cases[i].chan == NULL) continue;
      w[i].task = t;
      w[i].state = &state;
      w[i].shared = 1;
      w[i].index = (int)i;
      w[i].elem = cases[i].elem;
      any = &w[i];
      registered = i + 1;
      ready = weft__chan_register(cases[i].chan, &w[i], cases[i].op);
    }
    int r = 0;
    if (ready) {
      if (!weft__waiter_settle(any, WEFT__W_ABANDONED))
        weft__park(NULL, NULL); /* a claim won: take its wake-up */
    } else {
      weft__select_wait sw;
      sw.timer.heap_index = SIZE_MAX;
      sw.task = t;
      sw.any = any;
      if (deadline >= 0)
        weft__timer_start(t->exec, &sw.timer, deadline, weft__select_expired);
      r = weft__park(weft__select_cancel, &sw);
      weft__timer_stop(t->exec, &sw.timer);
    }
    for (size_t i = 0; i < registered; i++)
      if (cases[i].chan != NULL)
        weft__chan_unregister(cases[i].chan, &w[i], cases[i].op);
    int st = weft__waiter_state(any);
    if (st >= 0) {
      int res = w[st].result;
      if (res != WEFT__W_RETRY) {
        cases[st].result = res;
        result = st;
        break;
      }
      if (r < 0) {
        weft__chan_pass_on(cases[st].chan, cases[st].op);
        result = r;
        break;
      }
      continue; /* a ring has room or items now: try again */
    }
    if (st == WEFT__W_TIMEOUT) {
      result = UV_ETIMEDOUT;
      break;
    }
    if (st == WEFT__W_CANCELLED) {
      result = r ? r : t->scope->cancelled;
      break;
    }
    /* Abandoned: something became ready while registering; try again. */
  }
  if (w != stack_waiters) free(w);
  /* Rings count their operations themselves. */
  if (result >= 0 && cases[result].result == 0 && !weft__chan_is_ring(cases[result].chan)) {
    if (cases[result].op == WEFT_SELECT_SEND)
      t->exec->n_chan_sends++;
    else
      t->exec->n_chan_recvs++;
  }
  return result;
}
