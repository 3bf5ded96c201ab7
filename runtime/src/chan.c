/* Channels. A LOCAL channel is a plain ring with lists of waiting tasks and
 * hands items straight to a waiting task. SPSC and MPMC channels keep the
 * items in a lock-free ring; tasks that must wait register in lists under a
 * small lock (the slow path only) and are woken to try again.
 *
 * The lost-wake-up race between a sender that publishes an item and then
 * looks for waiting receivers, and a receiver that registers and then looks
 * at the ring once more, is closed by a full fence on both sides. The fence
 * is made asymmetric where the system allows: the side about to sleep pays
 * for a process-wide barrier (membarrier), and the fast path pays nothing.
 */
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#if defined(__linux__)
#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

#include "chan_internal.h"

/* ---- Fences ------------------------------------------------------------- */


static int weft__membarrier_state; /* 0: unknown, 1: usable, -1: not */

static void weft__membarrier_probe(void) {
  int state = -1;
#if defined(__linux__) && defined(__NR_membarrier) && !defined(WEFT__TSAN)
  long cmds = syscall(__NR_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);
  if (cmds > 0 && (cmds & MEMBARRIER_CMD_PRIVATE_EXPEDITED) &&
      syscall(__NR_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0,
              0) == 0)
    state = 1;
#endif
  __atomic_store_n(&weft__membarrier_state, state, __ATOMIC_RELEASE);
}

static uv_once_t weft__membarrier_once = UV_ONCE_INIT;

/* The fast side: a publish followed by a look at the waiter count. */
static inline void weft__fence_light(void) {
  if (__atomic_load_n(&weft__membarrier_state, __ATOMIC_RELAXED) == 1)
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
  else
    WEFT__FULL_FENCE();
}

/* The slow side: a registration followed by a look at the ring. */
static void weft__fence_heavy(void) {
#if defined(__linux__) && defined(__NR_membarrier)
  if (__atomic_load_n(&weft__membarrier_state, __ATOMIC_RELAXED) == 1) {
    syscall(__NR_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0);
    return;
  }
#endif
  WEFT__FULL_FENCE();
}

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

/* Wakes the task of a claimed waiter, on whichever executor it runs. */
static void weft__waiter_wake(weft__waiter *w) { weft__wake_any(w->task, 0); }

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

/* Copies one item; the common word-sized items without a call to memcpy. */
static inline void weft__copy(void *dst, const void *src, size_t n) {
  if (n == 8)
    memcpy(dst, src, 8);
  else if (n == 4)
    memcpy(dst, src, 4);
  else if (n == 16)
    memcpy(dst, src, 16);
  else
    memcpy(dst, src, n);
}

static inline unsigned char *weft__slot(weft_chan *c, size_t i) {
  return c->buf + i * c->elem_size;
}

/* ---- LOCAL channels ----------------------------------------------------- */

static int weft__local_try_send(weft_chan *c, const void *elem) {
  if (c->closed) return WEFT_ECLOSED;
  weft__waiter *w = weft__wlist_claim(&c->receivers);
  if (w != NULL) {
    /* A receiver waits, so the ring is empty: hand the item over. */
    weft__copy(w->elem, elem, c->elem_size);
    w->result = 0;
    weft__waiter_wake(w);
    return 0;
  }
  if (c->lcount == c->cap) return UV_EAGAIN;
  size_t tail = c->lhead + c->lcount;
  if (tail >= c->cap) tail -= c->cap;
  weft__copy(weft__slot(c, tail), elem, c->elem_size);
  c->lcount++;
  return 0;
}

static int weft__local_try_recv(weft_chan *c, void *elem) {
  if (c->lcount > 0) {
    weft__copy(elem, weft__slot(c, c->lhead), c->elem_size);
    if (++c->lhead == c->cap) c->lhead = 0;
    c->lcount--;
    weft__waiter *w = weft__wlist_claim(&c->senders);
    if (w != NULL) {
      /* The ring was full: the oldest waiting sender's item goes in. */
      size_t tail = c->lhead + c->lcount;
      if (tail >= c->cap) tail -= c->cap;
      weft__copy(weft__slot(c, tail), w->elem, c->elem_size);
      c->lcount++;
      w->result = 0;
      weft__waiter_wake(w);
    }
    return 0;
  }
  weft__waiter *w = weft__wlist_claim(&c->senders);
  if (w != NULL) {
    /* A rendezvous: take the item from the waiting sender. */
    weft__copy(elem, w->elem, c->elem_size);
    w->result = 0;
    weft__waiter_wake(w);
    return 0;
  }
  return c->closed ? WEFT_ECLOSED : UV_EAGAIN;
}

/* ---- Lock-free rings ---------------------------------------------------- */

/* SPSC: the producer owns tail, the consumer owns head; each keeps a cached
 * copy of the other's index so it touches the shared line only when the
 * cache says full (or empty). */
static int weft__spsc_push(weft_chan *c, const void *elem) {
  size_t tail = c->tail;
  if (tail - c->head_cache == c->cap) {
    c->head_cache = __atomic_load_n(&c->head_pos, __ATOMIC_ACQUIRE);
    if (tail - c->head_cache == c->cap) return 0;
  }
  weft__copy(weft__slot(c, tail & c->mask), elem, c->elem_size);
  c->tail = tail + 1;
  __atomic_store_n(&c->tail_pos, tail + 1, __ATOMIC_RELEASE);
  return 1;
}

static int weft__spsc_pop(weft_chan *c, void *elem) {
  size_t head = c->head;
  if (head == c->tail_cache) {
    c->tail_cache = __atomic_load_n(&c->tail_pos, __ATOMIC_ACQUIRE);
    if (head == c->tail_cache) return 0;
  }
  weft__copy(elem, weft__slot(c, head & c->mask), c->elem_size);
  c->head = head + 1;
  __atomic_store_n(&c->head_pos, head + 1, __ATOMIC_RELEASE);
  return 1;
}

/* MPMC: a bounded ring of cells, each with a sequence number that says
 * whose turn the cell is (after Vyukov's bounded MPMC queue). */
static inline size_t *weft__cell_seq(weft_chan *c, size_t i) {
  return (size_t *)(c->buf + (i & c->mask) * c->cell_size);
}

/* Returns 1 when pushed, 0 when full, -1 when closed. */
static int weft__mpmc_push(weft_chan *c, const void *elem) {
  size_t pos = __atomic_load_n(&c->tail_pos, __ATOMIC_RELAXED);
  for (;;) {
    if (pos & WEFT__TAIL_CLOSED) return -1;
    size_t *seq = weft__cell_seq(c, pos);
    size_t s = __atomic_load_n(seq, __ATOMIC_ACQUIRE);
    intptr_t diff = (intptr_t)s - (intptr_t)pos;
    if (diff == 0) {
      if (__atomic_compare_exchange_n(&c->tail_pos, &pos, pos + 1, 1,
                                      __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
        weft__copy(seq + 1, elem, c->elem_size);
        __atomic_store_n(seq, pos + 1, __ATOMIC_RELEASE);
        return 1;
      }
    } else if (diff < 0) {
      return 0;
    } else {
      pos = __atomic_load_n(&c->tail_pos, __ATOMIC_RELAXED);
    }
  }
}

static int weft__mpmc_pop(weft_chan *c, void *elem) {
  size_t pos = __atomic_load_n(&c->head_pos, __ATOMIC_RELAXED);
  for (;;) {
    size_t *seq = weft__cell_seq(c, pos);
    size_t s = __atomic_load_n(seq, __ATOMIC_ACQUIRE);
    intptr_t diff = (intptr_t)s - (intptr_t)(pos + 1);
    if (diff == 0) {
      if (__atomic_compare_exchange_n(&c->head_pos, &pos, pos + 1, 1,
                                      __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
        weft__copy(elem, seq + 1, c->elem_size);
        __atomic_store_n(seq, pos + c->mask + 1, __ATOMIC_RELEASE);
        return 1;
      }
    } else if (diff < 0) {
      return 0;
    } else {
      pos = __atomic_load_n(&c->head_pos, __ATOMIC_RELAXED);
    }
  }
}

/* An SPSC send: the producer says it is sending before it looks at the
 * close flag, and the closer waits for it to finish, so a send either sees
 * the close or lands before the close completes. The store and the load are
 * ordered by the asymmetric fence (the closer pays). Returns 1 when pushed,
 * 0 when full, -1 when closed. */
static inline int weft__spsc_send(weft_chan *c, const void *elem) {
  __atomic_store_n(&c->producing, 1, __ATOMIC_RELAXED);
  weft__fence_light();
  int r = __atomic_load_n(&c->closed, __ATOMIC_RELAXED) ? -1 : weft__spsc_push(c, elem);
  __atomic_store_n(&c->producing, 0, __ATOMIC_RELEASE);
  return r;
}

static inline int weft__ring_push(weft_chan *c, const void *elem) {
  return c->mode == WEFT_CHAN_SPSC ? weft__spsc_send(c, elem)
                                   : weft__mpmc_push(c, elem);
}

static inline int weft__ring_pop(weft_chan *c, void *elem) {
  return c->mode == WEFT_CHAN_SPSC ? weft__spsc_pop(c, elem)
                                   : weft__mpmc_pop(c, elem);
}

/* Whether a push (or a pop) could succeed now. Used after registering as a
 * waiter, to not sleep through an item or a slot that just appeared. */
int weft__ring_can_push(weft_chan *c) {
  if (c->mode == WEFT_CHAN_SPSC) {
    size_t head = __atomic_load_n(&c->head_pos, __ATOMIC_ACQUIRE);
    return __atomic_load_n(&c->tail_pos, __ATOMIC_RELAXED) - head < c->cap;
  }
  size_t pos = __atomic_load_n(&c->tail_pos, __ATOMIC_RELAXED) & ~WEFT__TAIL_CLOSED;
  size_t s = __atomic_load_n(weft__cell_seq(c, pos), __ATOMIC_ACQUIRE);
  return (intptr_t)s - (intptr_t)pos >= 0;
}

int weft__ring_can_pop(weft_chan *c) {
  if (c->mode == WEFT_CHAN_SPSC) {
    size_t tail = __atomic_load_n(&c->tail_pos, __ATOMIC_ACQUIRE);
    return tail != __atomic_load_n(&c->head_pos, __ATOMIC_RELAXED);
  }
  size_t pos = __atomic_load_n(&c->head_pos, __ATOMIC_RELAXED);
  size_t s = __atomic_load_n(weft__cell_seq(c, pos), __ATOMIC_ACQUIRE);
  return (intptr_t)s - (intptr_t)(pos + 1) >= 0;
}

/* Wakes one task waiting on list l (senders or receivers) to try again. */
static void weft__notify_slow(weft_chan *c, weft__wlist *l) {
  weft__lock(&c->lock);
  weft__waiter *w = weft__wlist_claim(l);
  weft__unlock(&c->lock);
  if (w != NULL) {
    w->result = WEFT__W_RETRY;
    weft__waiter_wake(w);
  }
}

static inline void weft__notify(weft_chan *c, weft__wlist *l) {
  weft__fence_light();
  if (WEFT__UNLIKELY(__atomic_load_n(&l->count, __ATOMIC_RELAXED) != 0))
    weft__notify_slow(c, l);
}

/* ---- Cross-executor rendezvous: hand-off under the lock ----------------- */

static int weft__xr_try_send(weft_chan *c, const void *elem) {
  weft__lock(&c->lock);
  if (__atomic_load_n(&c->closed, __ATOMIC_RELAXED)) {
    weft__unlock(&c->lock);
    return WEFT_ECLOSED;
  }
  weft__waiter *w = weft__wlist_claim(&c->receivers);
  weft__unlock(&c->lock);
  if (w == NULL) return UV_EAGAIN;
  weft__copy(w->elem, elem, c->elem_size);
  w->result = 0;
  weft__waiter_wake(w);
  return 0;
}

static int weft__xr_try_recv(weft_chan *c, void *elem) {
  weft__lock(&c->lock);
  weft__waiter *w = weft__wlist_claim(&c->senders);
  int closed = __atomic_load_n(&c->closed, __ATOMIC_RELAXED);
  weft__unlock(&c->lock);
  if (w == NULL) return closed ? WEFT_ECLOSED : UV_EAGAIN;
  weft__copy(elem, w->elem, c->elem_size);
  w->result = 0;
  weft__waiter_wake(w);
  return 0;
}

/* ---- Non-blocking operations, every mode -------------------------------- */

int weft__chan_try_send(weft_chan *c, const void *elem) {
  if (c->mode == WEFT_CHAN_LOCAL) return weft__local_try_send(c, elem);
  if (c->cap == 0) return weft__xr_try_send(c, elem);
  int r = weft__ring_push(c, elem);
  if (r <= 0) return r < 0 ? WEFT_ECLOSED : UV_EAGAIN;
  weft__notify(c, &c->receivers);
  return 0;
}

int weft__chan_try_recv(weft_chan *c, void *elem) {
  if (c->mode == WEFT_CHAN_LOCAL) return weft__local_try_recv(c, elem);
  if (c->cap == 0) return weft__xr_try_recv(c, elem);
  if (weft__ring_pop(c, elem)) {
    weft__notify(c, &c->senders);
    return 0;
  }
  if (!__atomic_load_n(&c->closed, __ATOMIC_ACQUIRE)) return UV_EAGAIN;
  /* Closed: every send that got in before the close still counts. */
  if (c->mode == WEFT_CHAN_SPSC) {
    if (!__atomic_load_n(&c->close_done, __ATOMIC_ACQUIRE)) return UV_EAGAIN;
    return weft__ring_pop(c, elem) ? 0 : WEFT_ECLOSED;
  }
  if (weft__ring_pop(c, elem)) return 0;
  size_t tail = __atomic_load_n(&c->tail_pos, __ATOMIC_ACQUIRE) & ~WEFT__TAIL_CLOSED;
  /* A slot claimed before the close whose item is still being copied in. */
  if (__atomic_load_n(&c->head_pos, __ATOMIC_ACQUIRE) != tail) return UV_EAGAIN;
  return WEFT_ECLOSED;
}

/* ---- Waiting ------------------------------------------------------------ */

/* Whether l holds a waiter of another task (or select) still waiting. */
static int weft__wlist_has_waiting(const weft__wlist *l, const int *own_state) {
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
    int ready = c->closed || weft__wlist_has_waiting(other, w->state);
    if (!ready) weft__wlist_push(l, w);
    weft__unlock(&c->lock);
    return ready;
  }
  weft__wlist_push(l, w);
  weft__unlock(&c->lock);
  weft__fence_heavy();
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

typedef struct {
  weft_chan *chan;
  weft__waiter *w;
  int op;
} weft__chan_wait;

static void weft__chan_wait_cancel(weft__task *t, void *data) {
  weft__chan_wait *cw = data;
  if (!weft__waiter_settle(cw->w, WEFT__W_CANCELLED))
    return; /* claimed first: the claimer's wake-up is on its way */
  weft__chan_unregister(cw->chan, cw->w, cw->op);
  weft__wake(t, 0);
}

/* Waits for a single case. Returns 0 or WEFT_ECLOSED (the claimer completed
 * the operation), WEFT__W_RETRY (try again), or a cancellation code. */
static int weft__chan_wait_one(weft_chan *c, int op, void *elem) {
  weft__task *t = weft__current_task;
  int state = WEFT__W_WAITING;
  weft__waiter w;
  w.task = t;
  w.state = &state;
  w.shared = c->mode != WEFT_CHAN_LOCAL;
  w.index = 0;
  w.linked = 0;
  w.result = 0;
  w.elem = elem;
  int r = 0;
  if (weft__chan_register(c, &w, op)) {
    weft__chan_unregister(c, &w, op);
    if (weft__waiter_settle(&w, WEFT__W_ABANDONED)) return WEFT__W_RETRY;
    /* Claimed in the meantime: its wake-up must be taken here. */
    weft__park(NULL, NULL);
  } else {
    weft__chan_wait cw = {c, &w, op};
    r = weft__park(weft__chan_wait_cancel, &cw);
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

/* Before a task on an otherwise idle executor sleeps on a ring, it watches
 * the ring for a moment: the other side usually runs on another core, and a
 * wake-up through the loop costs far more than a short spin. */
#define WEFT__SPIN_ROUNDS 256

static int weft__chan_spin(weft_chan *c, int op) {
  if (c->mode == WEFT_CHAN_LOCAL || c->cap == 0) return 0;
  weft__exec *e = weft__current_exec;
  for (int i = 0; i < WEFT__SPIN_ROUNDS; i++) {
    if (e->ready_head != NULL) return 0;
    if (__atomic_load_n(&c->closed, __ATOMIC_RELAXED)) return 1;
    if (op == WEFT_SELECT_SEND ? weft__ring_can_push(c) : weft__ring_can_pop(c))
      return 1;
    weft__cpu_relax();
  }
  return 0;
}

static int weft__chan_op(weft_chan *c, int op, void *elem) {
  weft__task *t = weft__current_task;
  if (t == NULL) return WEFT_ENOTASK;
  for (;;) {
    int r = op == WEFT_SELECT_SEND ? weft__chan_try_send(c, elem)
                                   : weft__chan_try_recv(c, elem);
    if (r != UV_EAGAIN) return r;
    if (t->scope->cancelled) return t->scope->cancelled;
    if (weft__chan_spin(c, op)) continue;
    r = weft__chan_wait_one(c, op, elem);
    if (r != WEFT__W_RETRY) return r;
  }
}

/* ---- LOCAL fast paths ---------------------------------------------------- */

/* Takes the first claimable waiter off the front of l (one thread). */
static inline weft__waiter *weft__local_claim(weft__wlist *l) {
  weft__waiter *w;
  while ((w = l->head) != NULL) {
    l->head = w->next;
    if (l->head != NULL)
      l->head->prev = NULL;
    else
      l->tail = NULL;
    l->count--;
    w->next = NULL;
    w->linked = 0;
    if (WEFT__LIKELY(!w->shared)) {
      if (*w->state == WEFT__W_WAITING) {
        *w->state = w->index;
        return w;
      }
    } else if (weft__waiter_claim(w)) {
      return w;
    }
  }
  return NULL;
}

/* Waits on a LOCAL channel until a partner completes the operation. */
static int weft__local_wait(weft_chan *c, weft__wlist *l, int op, void *elem) {
  weft__task *t = weft__current_task;
  if (t == NULL) return WEFT_ENOTASK;
  if (t->scope->cancelled) return t->scope->cancelled;
  int state = WEFT__W_WAITING;
  weft__waiter w;
  w.task = t;
  w.state = &state;
  w.shared = 0;
  w.index = 0;
  w.result = 0;
  w.elem = elem;
  weft__wlist_push(l, &w);
  weft__chan_wait cw = {c, &w, op};
  int r = weft__park(weft__chan_wait_cancel, &cw);
  return state == 0 ? w.result : r;
}

static int weft__local_send(weft_chan *c, const void *elem) {
  if (c->closed) return WEFT_ECLOSED;
  weft__waiter *w = weft__local_claim(&c->receivers);
  if (w != NULL) {
    weft__copy(w->elem, elem, c->elem_size);
    w->result = 0;
    weft__wake(w->task, 0);
    return 0;
  }
  if (c->lcount < c->cap) {
    size_t tail = c->lhead + c->lcount;
    if (tail >= c->cap) tail -= c->cap;
    weft__copy(weft__slot(c, tail), elem, c->elem_size);
    c->lcount++;
    return 0;
  }
  return weft__local_wait(c, &c->senders, WEFT_SELECT_SEND, (void *)elem);
}

static int weft__local_recv(weft_chan *c, void *elem) {
  if (c->lcount == 0) {
    weft__waiter *w = weft__local_claim(&c->senders);
    if (w != NULL) {
      weft__copy(elem, w->elem, c->elem_size);
      w->result = 0;
      weft__wake(w->task, 0);
      return 0;
    }
    if (c->closed) return WEFT_ECLOSED;
    return weft__local_wait(c, &c->receivers, WEFT_SELECT_RECV, elem);
  }
  return weft__local_try_recv(c, elem);
}

/* ---- Public ------------------------------------------------------------- */

weft_chan *weft_chan_new(size_t elem_size, size_t capacity, int mode) {
  if (elem_size == 0 || elem_size > 65536) return NULL;
  if (mode != WEFT_CHAN_LOCAL && mode != WEFT_CHAN_SPSC && mode != WEFT_CHAN_MPMC)
    return NULL;
  if (capacity > ((size_t)1 << 30)) return NULL;
  if (mode != WEFT_CHAN_LOCAL) uv_once(&weft__membarrier_once, weft__membarrier_probe);
  weft_chan *c;
  if (posix_memalign((void **)&c, 64, sizeof *c) != 0) return NULL;
  memset(c, 0, sizeof *c);
  c->mode = mode;
  c->elem_size = elem_size;
  size_t cap = capacity;
  if (mode != WEFT_CHAN_LOCAL && cap > 0) {
    cap = 1;
    while (cap < capacity) cap <<= 1;
    /* Vyukov's ring needs two cells at least to tell full from empty. */
    if (mode == WEFT_CHAN_MPMC && cap < 2) cap = 2;
    c->mask = cap - 1;
  }
  c->cap = cap;
  c->cell_size = mode == WEFT_CHAN_MPMC
                     ? (sizeof(size_t) + elem_size + 7) & ~(size_t)7
                     : elem_size;
  if (cap > 0) {
    c->buf = malloc(cap * c->cell_size);
    if (c->buf == NULL) {
      free(c);
      return NULL;
    }
    if (mode == WEFT_CHAN_MPMC)
      for (size_t i = 0; i < cap; i++) *weft__cell_seq(c, i) = i;
  }
  return c;
}

static inline int weft__chan_send_impl(weft_chan *c, const void *elem) {
  if (c->mode == WEFT_CHAN_LOCAL) return weft__local_send(c, elem);
  /* The fast path of the cross-executor rings, kept short. */
  if (c->mode == WEFT_CHAN_SPSC && c->cap > 0 && weft__spsc_send(c, elem) > 0) {
    weft__notify(c, &c->receivers);
    return 0;
  }
  return weft__chan_op(c, WEFT_SELECT_SEND, (void *)elem);
}

static inline int weft__chan_recv_impl(weft_chan *c, void *elem) {
  if (c->mode == WEFT_CHAN_LOCAL) return weft__local_recv(c, elem);
  if (c->mode == WEFT_CHAN_SPSC && c->cap > 0 && weft__spsc_pop(c, elem)) {
    weft__notify(c, &c->senders);
    return 0;
  }
  return weft__chan_op(c, WEFT_SELECT_RECV, elem);
}

static inline int weft__chan_try_send_impl(weft_chan *c, const void *elem) {
  return weft__chan_try_send(c, elem);
}

static inline int weft__chan_try_recv_impl(weft_chan *c, void *elem) {
  return weft__chan_try_recv(c, elem);
}

static inline long weft__chan_send_n_impl(weft_chan *c, const void *elems, size_t n) {
  const unsigned char *p = elems;
  size_t i = 0;
  if (c->mode == WEFT_CHAN_SPSC && c->cap > 0) {
    /* Publish a run of items with one store and one look for waiters. */
    while (i < n) {
      __atomic_store_n(&c->producing, 1, __ATOMIC_RELAXED);
      weft__fence_light();
      if (__atomic_load_n(&c->closed, __ATOMIC_RELAXED)) {
        __atomic_store_n(&c->producing, 0, __ATOMIC_RELEASE);
        break;
      }
      size_t tail = c->tail;
      size_t room = c->cap - (tail - c->head_cache);
      if (room < n - i) {
        c->head_cache = __atomic_load_n(&c->head_pos, __ATOMIC_ACQUIRE);
        room = c->cap - (tail - c->head_cache);
      }
      if (room == 0) {
        __atomic_store_n(&c->producing, 0, __ATOMIC_RELEASE);
        break;
      }
      size_t k = n - i < room ? n - i : room;
      for (size_t j = 0; j < k; j++)
        memcpy(weft__slot(c, (tail + j) & c->mask), p + (i + j) * c->elem_size,
               c->elem_size);
      c->tail = tail + k;
      __atomic_store_n(&c->tail_pos, tail + k, __ATOMIC_RELEASE);
      __atomic_store_n(&c->producing, 0, __ATOMIC_RELEASE);
      i += k;
      weft__notify(c, &c->receivers);
    }
  }
  for (; i < n; i++) {
    int r = weft__chan_send_impl(c, p + i * c->elem_size);
    if (r != 0) return i > 0 ? (long)i : r;
  }
  return (long)n;
}

static inline long weft__chan_recv_n_impl(weft_chan *c, void *elems, size_t n) {
  unsigned char *p = elems;
  if (n == 0) return 0;
  int r = weft__chan_recv_impl(c, p);
  if (r != 0) return r;
  size_t i = 1;
  if (c->mode == WEFT_CHAN_SPSC && c->cap > 0) {
    size_t head = c->head;
    c->tail_cache = __atomic_load_n(&c->tail_pos, __ATOMIC_ACQUIRE);
    size_t avail = c->tail_cache - head;
    size_t k = n - i < avail ? n - i : avail;
    for (size_t j = 0; j < k; j++)
      memcpy(p + (i + j) * c->elem_size, weft__slot(c, (head + j) & c->mask),
             c->elem_size);
    if (k > 0) {
      c->head = head + k;
      __atomic_store_n(&c->head_pos, head + k, __ATOMIC_RELEASE);
      i += k;
      weft__notify(c, &c->senders);
    }
    return (long)i;
  }
  for (; i < n; i++)
    if (weft__chan_try_recv(c, p + i * c->elem_size) != 0) break;
  return (long)i;
}

/* Counts completed operations for the runtime's metrics (added to them
 * once per loop turn). */
static inline void weft__count(int send, uint64_t n) {
  weft__exec *e = weft__current_exec;
  if (e == NULL) return;
  if (send)
    e->n_chan_sends += n;
  else
    e->n_chan_recvs += n;
}

int weft_chan_send(weft_chan *c, const void *elem) {
  int r = weft__chan_send_impl(c, elem);
  if (r == 0) weft__count(1, 1);
  return r;
}

int weft_chan_recv(weft_chan *c, void *elem) {
  int r = weft__chan_recv_impl(c, elem);
  if (r == 0) weft__count(0, 1);
  return r;
}

int weft_chan_try_send(weft_chan *c, const void *elem) {
  int r = weft__chan_try_send_impl(c, elem);
  if (r == 0) weft__count(1, 1);
  return r;
}

int weft_chan_try_recv(weft_chan *c, void *elem) {
  int r = weft__chan_try_recv_impl(c, elem);
  if (r == 0) weft__count(0, 1);
  return r;
}

long weft_chan_send_n(weft_chan *c, const void *elems, size_t n) {
  long r = weft__chan_send_n_impl(c, elems, n);
  if (r > 0) weft__count(1, (uint64_t)r);
  return r;
}

long weft_chan_recv_n(weft_chan *c, void *elems, size_t n) {
  long r = weft__chan_recv_n_impl(c, elems, n);
  if (r > 0) weft__count(0, (uint64_t)r);
  return r;
}

/* Claims every waiter of l with result (ECLOSED for hand-offs, a retry for
 * ring waiters, who then see the close themselves). */
static void weft__wlist_close(weft__wlist *l, int result, weft__waiter **out) {
  weft__waiter *w;
  while ((w = weft__wlist_claim(l)) != NULL) {
    w->result = result;
    w->next = *out;
    *out = w;
  }
}

void weft_chan_close(weft_chan *c) {
  weft__waiter *woken = NULL;
  if (c->mode == WEFT_CHAN_LOCAL) {
    if (c->closed) return;
    c->closed = 1;
    weft__wlist_close(&c->senders, WEFT_ECLOSED, &woken);
    weft__wlist_close(&c->receivers, WEFT_ECLOSED, &woken);
  } else {
    weft__lock(&c->lock);
    if (c->closed) {
      weft__unlock(&c->lock);
      return;
    }
    if (c->mode == WEFT_CHAN_MPMC)
      __atomic_fetch_or(&c->tail_pos, WEFT__TAIL_CLOSED, __ATOMIC_SEQ_CST);
    __atomic_store_n(&c->closed, 1, __ATOMIC_SEQ_CST);
    if (c->mode == WEFT_CHAN_SPSC) {
      /* Let a send that did not see the close finish publishing. It never
       * waits for anything, so this is short. */
      weft__fence_heavy();
      unsigned spins = 0;
      while (__atomic_load_n(&c->producing, __ATOMIC_ACQUIRE))
        if (++spins % 64 == 0) sched_yield();
      __atomic_store_n(&c->close_done, 1, __ATOMIC_RELEASE);
    }
    int result = c->cap == 0 ? WEFT_ECLOSED : WEFT__W_RETRY;
    weft__wlist_close(&c->senders, result, &woken);
    weft__wlist_close(&c->receivers, result, &woken);
    weft__unlock(&c->lock);
  }
  while (woken != NULL) {
    weft__waiter *w = woken;
    woken = w->next;
    weft__waiter_wake(w);
  }
}

int weft_chan_closed(const weft_chan *c) {
  return __atomic_load_n(&c->closed, __ATOMIC_ACQUIRE);
}

size_t weft_chan_len(const weft_chan *c) {
  if (c->mode == WEFT_CHAN_LOCAL) return c->lcount;
  if (c->cap == 0) return 0;
  size_t tail = __atomic_load_n(&c->tail_pos, __ATOMIC_ACQUIRE) & ~WEFT__TAIL_CLOSED;
  size_t head = __atomic_load_n(&c->head_pos, __ATOMIC_ACQUIRE);
  size_t n = tail - head;
  return (intptr_t)n < 0 ? 0 : (n > c->cap ? c->cap : n);
}

size_t weft_chan_cap(const weft_chan *c) { return c->cap; }

void weft_chan_free(weft_chan *c) {
  if (c == NULL) return;
  free(c->buf);
  free(c);
}
