/* Waiting on channels: the lists of waiters (a waiter is a task's
 * registration for one operation, on the task's stack), and the general
 * blocking operation, which tries, spins a little on a ring, registers,
 * parks and tries again. A task that must wait registers under the
 * channel's small lock (the slow path only) and is woken to try again, or
 * finds its operation done by the party that claimed its waiter. */
#include <sched.h>

#include "chan_ring.h"
#include "metrics_internal.h"

/* ---- Waiters ------------------------------------------------------------ */

void weft__wlist_push(weft__wlist *l, weft__waiter *w) {
  w->next = NULL;
  w->prev = l->tail;
  if (l->tail != NULL)
    l->tail->next = w;
  else
    l->head = w;
  l->tail = w;
  w->linked = 1;
  __atomic_store_n(&l->count, l->count + 1, __ATOMIC_RELAXED);
}

void weft__wlist_remove(weft__wlist *l, weft__waiter *w) {
  if (!w->linked) return;
  if (w->prev != NULL)
    w->prev->next = w->next;
  else
    l->head = w->next;
  if (w->next != NULL)
    w->next->prev = w->prev;
  else
    l->tail = w->prev;
  w->next = w->prev = NULL;
  w->linked = 0;
  __atomic_store_n(&l->count, l->count - 1, __ATOMIC_RELAXED);
}

/* Claims w for its case: only one claim on a select's waiters succeeds. */
int weft__waiter_claim(weft__waiter *w) {
  if (!w->shared) {
    if (*w->state != WEFT__W_WAITING) return 0;
    *w->state = w->index;
    return 1;
  }
  int expected = WEFT__W_WAITING;
  return __atomic_compare_exchange_n(w->state, &expected, w->index, 0,
                                     __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
}

int weft__waiter_settle(weft__waiter *w, int to) {
  if (!w->shared) {
    if (*w->state != WEFT__W_WAITING) return 0;
    *w->state = to;
    return 1;
  }
  int expected = WEFT__W_WAITING;
  return __atomic_compare_exchange_n(w->state, &expected, to, 0,
                                     __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
}

int weft__waiter_state(const weft__waiter *w) {
  return w->shared ? __atomic_load_n(w->state, __ATOMIC_ACQUIRE) : *w->state;
}

/* Wakes the task of a claimed waiter, on whichever executor it runs, once
 * everything the claimer had to do with the waiter is done (its item and
 * result written). A task that still watches its waiter goes on by itself
 * when it sees DONE, and may leave the frame that holds the waiter at
 * once: nothing here touches w after the swap. */
void weft__waiter_wake(weft__waiter *w) {
  weft__task *t = w->task;
  if (w->shared && __atomic_load_n(&w->watch, __ATOMIC_RELAXED) != WEFT__WATCH_NONE &&
      __atomic_exchange_n(&w->watch, WEFT__WATCH_DONE, __ATOMIC_ACQ_REL) == WEFT__WATCH_ON)
    return;
  weft__wake_any(t, 0);
}

/* The first waiter in l that can be claimed, removed from l; NULL if none.
 * Stale waiters (a select that fired elsewhere) are dropped on the way. */
weft__waiter *weft__wlist_claim(weft__wlist *l) {
  weft__waiter *w;
  while ((w = l->head) != NULL) {
    weft__wlist_remove(l, w);
    if (weft__waiter_claim(w)) return w;
  }
  return NULL;
}

/* ---- Waiting ------------------------------------------------------------ */

/* Whether l holds a waiter of another task (or select) still waiting. */
static int wlist_has_waiting(const weft__wlist *l, const int *own_state) {
  for (const weft__waiter *w = l->head; w != NULL; w = w->next)
    if (w->state != own_state && weft__waiter_state(w) == WEFT__W_WAITING)
      return 1;
  return 0;
}

int weft__chan_register(weft_chan *c, weft__waiter *w, int op) {
  weft__wlist *l = op == WEFT_SELECT_SEND ? &c->senders : &c->receivers;
  weft__wlist *other = op == WEFT_SELECT_SEND ? &c->receivers : &c->senders;
  if (c->mode == WEFT_CHAN_LOCAL) {
    /* One thread: nothing can have changed since the caller tried. */
    weft__wlist_push(l, w);
    return 0;
  }
  weft__lock(&c->lock);
  if (c->cap == 0) {
    /* A rendezvous pairs under the lock: a partner that registered since
     * the caller tried must not be missed, or both would wait forever. */
    int ready = c->closed || wlist_has_waiting(other, w->state);
    if (!ready) weft__wlist_push(l, w);
    weft__unlock(&c->lock);
    return ready;
  }
  weft__wlist_push(l, w);
  weft__unlock(&c->lock);
  weft__chan_fence_heavy();
  if (__atomic_load_n(&c->closed, __ATOMIC_ACQUIRE)) return 1;
  return op == WEFT_SELECT_SEND ? weft__ring_can_push(c) : weft__ring_can_pop(c);
}

void weft__chan_unregister(weft_chan *c, weft__waiter *w, int op) {
  weft__wlist *l = op == WEFT_SELECT_SEND ? &c->senders : &c->receivers;
  if (c->mode == WEFT_CHAN_LOCAL) {
    weft__wlist_remove(l, w);
    return;
  }
  weft__lock(&c->lock);
  weft__wlist_remove(l, w);
  weft__unlock(&c->lock);
}

/* Passes on a wake-up that a cancelled task received but will not use. */
void weft__chan_pass_on(weft_chan *c, int op) {
  if (c->mode == WEFT_CHAN_LOCAL || c->cap == 0) return;
  weft__notify(c, op == WEFT_SELECT_SEND ? &c->senders : &c->receivers);
}

void weft__chan_wait_cancel(weft__task *t, void *data) {
  weft__chan_wait *cw = data;
  if (!weft__waiter_settle(cw->w, WEFT__W_CANCELLED))
    return; /* claimed first: the claimer's wake-up is on its way */
  weft__chan_unregister(cw->chan, cw->w, cw->op);
  weft__wake(t, 0);
}

/* Before a task on an otherwise idle executor sleeps on a ring, it watches
 * the ring for a while: the other side usually runs on another core, and a
 * wait costs far more than a short spin (a registration with its
 * process-wide fence, a wake-up through the other executor's inbox, and on
 * a busy machine a thread that has slept must wait for a CPU). The spin is
 * bounded in time, not in rounds (a pause takes 10 to 150 ns depending on
 * the processor and the hypervisor), and gives the CPU away now and then
 * (sched_yield), so that on a machine with more threads than cores the
 * spinning thread does not hold the core the other side needs. */
#define WEFT__SPIN_NS 20000
#define WEFT__SPIN_EAGER 64       /* rounds before the first yield */
#define WEFT__SPIN_YIELD 32       /* rounds between two yields after that */

/* Ends the watch of a waiter registered with WEFT__WATCH_ON: returns 1
 * when its claimer is already done with it (no wake-up will come), 0 when
 * the task must park and will be woken (or cancelled) as usual. */
static int waiter_unwatch(weft__waiter *w) {
  if (__atomic_load_n(&w->watch, __ATOMIC_RELAXED) == WEFT__WATCH_NONE) return 0;
  return __atomic_exchange_n(&w->watch, WEFT__WATCH_PARKING, __ATOMIC_ACQ_REL) ==
         WEFT__WATCH_DONE;
}

/* Before a task waiting on a rendezvous across executors parks, it watches
 * its waiter for a while, if its executor has nothing else to do: the
 * partner usually comes within a microsecond from another core, and a park
 * costs a message to this executor's inbox and a turn of its loop (and a
 * wake-up of its thread, once that sleeps). Bounded like the ring spin and
 * by weft_opts.idle_spin_us (a program that turned the idle watch off gets
 * none here either); it ends early when a message comes for the executor.
 */
static void chan_watch(weft__waiter *w) {
  weft__exec *e = weft__current_exec;
  uint64_t limit = e->idle_spin_ns < WEFT__SPIN_NS ? e->idle_spin_ns : WEFT__SPIN_NS;
  uint64_t deadline = 0;
  for (unsigned i = 1;; i++) {
    if (__atomic_load_n(&w->watch, __ATOMIC_RELAXED) == WEFT__WATCH_DONE) return;
    if (weft__inbox_busy(e)) return;
    if (i == WEFT__SPIN_EAGER) deadline = uv_hrtime() + limit;
    if (i > WEFT__SPIN_EAGER && i % WEFT__SPIN_YIELD == 0) {
      if (uv_hrtime() >= deadline) return;
      sched_yield();
    }
    weft__cpu_relax();
  }
}

/* Whether a wait on c by the calling task should watch before it parks. */
static inline int chan_should_watch(const weft_chan *c) {
  weft__exec *e = weft__current_exec;
  return c->cap == 0 && c->mode != WEFT_CHAN_LOCAL && e->rt->n > 1 &&
         e->idle_spin_ns != 0 && e->ready_head == NULL;
}

/* Waits for a single case. Returns 0 or WEFT_ECLOSED (the claimer completed
 * the operation), WEFT__W_RETRY (try again), or a cancellation code. */
static int chan_wait_one(weft_chan *c, int op, void *elem) {
  weft__task *t = weft__current_task;
  int state = WEFT__W_WAITING;
  weft__waiter w;
  w.task = t;
  w.state = &state;
  w.shared = c->mode != WEFT_CHAN_LOCAL;
  w.index = 0;
  w.linked = 0;
  w.result = 0;
  int watch = chan_should_watch(c);
  w.watch = watch ? WEFT__WATCH_ON : WEFT__WATCH_NONE;
  w.elem = elem;
  int r = 0;
  if (weft__chan_register(c, &w, op)) {
    weft__chan_unregister(c, &w, op);
    if (weft__waiter_settle(&w, WEFT__W_ABANDONED)) return WEFT__W_RETRY;
    /* Claimed in the meantime: its wake-up must be taken here. */
    if (!waiter_unwatch(&w)) weft__park(NULL, NULL);
  } else {
    int done = 0;
    if (watch) {
      chan_watch(&w);
      done = waiter_unwatch(&w);
      weft_counter_inc(done ? weft__m_watch_done : weft__m_watch_parked);
    }
    if (!done) {
      weft__chan_wait cw = {c, &w, op};
      r = weft__park(weft__chan_wait_cancel, &cw);
    }
  }
  if (weft__waiter_state(&w) == 0) {
    /* Claimed: the operation happened (or a retry was granted) whatever
     * the cancellation says. A retry this task will not use goes on. */
    if (r < 0 && w.result == WEFT__W_RETRY) {
      weft__chan_pass_on(c, op);
      return r;
    }
    return w.result;
  }
  return r;
}

/* The spin on a ring before a wait (see WEFT__SPIN_NS): returns 1 when the
 * ring (or a close) calls for another try. */
static int chan_spin(weft_chan *c, int op) {
  if (c->mode == WEFT_CHAN_LOCAL || c->cap == 0) return 0;
  weft__exec *e = weft__current_exec;
  uint64_t deadline = 0;
  /* A sender that found the ring full waits, in the eager phase, for room
   * for a run of items rather than for one cell, and looks only every few
   * pauses (about one per 4 cells of that run): taking cells one at a time
   * as the receiver frees them, and looking at the receiver's index all
   * the while, would pull that index's line away from the receiver at
   * every item. The receiver has a full ring to work through meanwhile,
   * so nothing is late for it. */
  size_t room = c->cap / 4 < 32 ? c->cap / 4 : 32;
  if (room == 0) room = 1;
  unsigned pauses = room / 4 > 0 ? (unsigned)room / 4 : 1;
  for (unsigned i = 1;; i++) {
    if (e->ready_head != NULL) return 0;
    if (__atomic_load_n(&c->closed, __ATOMIC_RELAXED)) return 1;
    if (op == WEFT_SELECT_SEND
            ? (i < WEFT__SPIN_EAGER ? weft__ring_has_room(c, room) : weft__ring_can_push(c))
            : weft__ring_can_pop(c))
      return 1;
    if (i == WEFT__SPIN_EAGER) deadline = uv_hrtime() + WEFT__SPIN_NS;
    if (i > WEFT__SPIN_EAGER && i % WEFT__SPIN_YIELD == 0) {
      if (uv_hrtime() >= deadline) return 0;
      sched_yield();
    }
    weft__cpu_relax();
    if (op == WEFT_SELECT_SEND && i < WEFT__SPIN_EAGER)
      for (unsigned k = 1; k < pauses; k++) weft__cpu_relax();
  }
}

/* The general blocking operation: tries, spins a little on a ring, waits,
 * and tries again until done, closed or cancelled. Out of line so that the
 * fast paths of the public calls stay small. */
WEFT__NOINLINE int weft__chan_op(weft_chan *c, int op, void *elem) {
  weft__task *t = weft__current_task;
  if (t == NULL) return WEFT_ENOTASK;
  for (;;) {
    int r = op == WEFT_SELECT_SEND ? weft__chan_try_send(c, elem)
                                   : weft__chan_try_recv(c, elem);
    if (r != UV_EAGAIN) return r;
    if (t->scope->cancelled) return t->scope->cancelled;
    if (chan_spin(c, op)) continue;
    r = chan_wait_one(c, op, elem);
    if (r != WEFT__W_RETRY) return r;
  }
}
