/* Channels: making, closing and freeing them, and their operations. A
 * LOCAL channel is a plain ring with lists of waiting tasks and hands items
 * straight to a waiting task. SPSC and MPMC channels keep the items in a
 * lock-free ring (chan_ring.h, chan_ring.c); tasks that must wait register
 * in lists under a small lock (the slow path only) and are woken to try
 * again (chan_wait.c).
 *
 * The public send and receive are the fast paths: built inline from the
 * ring's pieces, with no stack frame, and every case they cannot finish
 * reached by a tail call of an out-of-line function. */
#include <stdlib.h>
#include <string.h>

#include "chan_ring.h"
#include "metrics_internal.h"

/* ---- LOCAL channels: the forms select and try_* use ---------------------- */

static int local_try_send(weft_chan *c, const void *elem) {
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

static int local_try_recv(weft_chan *c, void *elem) {
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

/* ---- Cross-executor rendezvous: hand-off under the lock ----------------- */

static int xr_try_send(weft_chan *c, const void *elem) {
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

static int xr_try_recv(weft_chan *c, void *elem) {
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

/* Sends the rest of the way after the fast path could not: LOCAL channels,
 * rendezvous, and a full or closed ring. */
int weft__chan_try_send(weft_chan *c, const void *elem) {
  if (c->mode == WEFT_CHAN_LOCAL) return local_try_send(c, elem);
  if (c->cap == 0) return xr_try_send(c, elem);
  int r = weft__ring_push(c, elem);
  if (r <= 0) return r < 0 ? WEFT_ECLOSED : UV_EAGAIN;
  weft__notify(c, &c->receivers);
  return 0;
}

int weft__chan_try_recv(weft_chan *c, void *elem) {
  if (c->mode == WEFT_CHAN_LOCAL) return local_try_recv(c, elem);
  if (c->cap == 0) return xr_try_recv(c, elem);
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

/* ---- LOCAL fast paths ---------------------------------------------------- */

/* Takes the first claimable waiter off the front of l (one thread). */
static inline weft__waiter *local_claim(weft__wlist *l) {
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
static inline int local_wait(weft_chan *c, weft__wlist *l, int op, void *elem) {
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
  /* Pushed at the tail by hand: one thread, no atomic count needed. */
  w.next = NULL;
  w.prev = l->tail;
  if (l->tail != NULL)
    l->tail->next = &w;
  else
    l->head = &w;
  l->tail = &w;
  w.linked = 1;
  l->count++;
  weft__chan_wait cw = {c, &w, op};
  int r = weft__park_unchecked(t, weft__chan_wait_cancel, &cw);
  return state == 0 ? w.result : r;
}

/* Completes a claimed LOCAL waiter's operation and makes its task ready. */
static inline void local_done(weft__waiter *w) {
  w->result = 0;
  /* Claimed from the WAITING state, so its task is parked in
   * local_wait (a cancellation settles the state first). */
  weft__wake_parked(w->task, 0);
}

static inline int local_send(weft_chan *c, const void *elem) {
  if (WEFT__UNLIKELY(c->closed)) return WEFT_ECLOSED;
  if (c->receivers.head != NULL) {
    /* A receiver waits, so the ring is empty: hand the item over. */
    weft__waiter *w = local_claim(&c->receivers);
    if (w != NULL) {
      weft__copy(w->elem, elem, c->elem_size);
      local_done(w);
      return 0;
    }
  }
  if (c->lcount < c->cap) {
    size_t tail = c->lhead + c->lcount;
    if (tail >= c->cap) tail -= c->cap;
    weft__copy(weft__slot(c, tail), elem, c->elem_size);
    c->lcount++;
    return 0;
  }
  return local_wait(c, &c->senders, WEFT_SELECT_SEND, (void *)elem);
}

static inline int local_recv(weft_chan *c, void *elem) {
  if (c->lcount > 0) {
    weft__copy(elem, weft__slot(c, c->lhead), c->elem_size);
    if (++c->lhead == c->cap) c->lhead = 0;
    c->lcount--;
    if (c->senders.head != NULL) {
      /* The ring was full: the oldest waiting sender's item goes in. */
      weft__waiter *w = local_claim(&c->senders);
      if (w != NULL) {
        size_t tail = c->lhead + c->lcount;
        if (tail >= c->cap) tail -= c->cap;
        weft__copy(weft__slot(c, tail), w->elem, c->elem_size);
        c->lcount++;
        local_done(w);
      }
    }
    return 0;
  }
  if (c->senders.head != NULL) {
    /* A rendezvous: take the item from the waiting sender. */
    weft__waiter *w = local_claim(&c->senders);
    if (w != NULL) {
      weft__copy(elem, w->elem, c->elem_size);
      local_done(w);
      return 0;
    }
  }
  if (c->closed) return WEFT_ECLOSED;
  return local_wait(c, &c->receivers, WEFT_SELECT_RECV, elem);
}

/* ---- Public ------------------------------------------------------------- */

weft_chan *weft_chan_new(size_t elem_size, size_t capacity, int mode) {
  if (elem_size == 0 || elem_size > 65536) return NULL;
  if (mode != WEFT_CHAN_LOCAL && mode != WEFT_CHAN_SPSC && mode != WEFT_CHAN_MPMC)
    return NULL;
  if (capacity > ((size_t)1 << 30)) return NULL;
  int light = weft__chan_fences_light(mode);
  weft_chan *c;
  if (posix_memalign((void **)&c, 64, sizeof *c) != 0) return NULL;
  memset(c, 0, sizeof *c);
  c->mode = mode;
  c->elem_size = elem_size;
  c->light = light;
  size_t cap = capacity;
  if (mode != WEFT_CHAN_LOCAL && cap > 0) {
    cap = 1;
    while (cap < capacity) cap <<= 1;
    /* Vyukov's ring needs two cells at least to tell full from empty. */
    if (mode == WEFT_CHAN_MPMC && cap < 2) cap = 2;
    c->mask = cap - 1;
  }
  c->cap = cap;
  if (mode == WEFT_CHAN_LOCAL)
    c->fast = WEFT__FAST_LOCAL;
  else if (cap == 0)
    c->fast = WEFT__FAST_NONE; /* NOLINT(bugprone-branch-clone): two reasons for no fast path */
#if !defined(WEFT__TSAN)
  else if (!c->light)
    c->fast = WEFT__FAST_NONE; /* see WEFT__LIGHT */
#endif
  else
    c->fast = (mode == WEFT_CHAN_SPSC ? WEFT__FAST_SPSC : WEFT__FAST_MPMC) |
              (elem_size == 8 ? WEFT__FAST_SIZE8 : 0);
  c->cell_size = mode == WEFT_CHAN_MPMC
                     ? (sizeof(size_t) + elem_size + 7) & ~(size_t)7
                     : elem_size;
  if (cap > 0) {
    /* On a cache line boundary: items of 64 bytes (or any multiple) then
     * each sit on lines of their own, and a producer writing one does not
     * take the line away from a consumer reading its neighbour. */
    if (posix_memalign((void **)&c->buf, WEFT__CACHELINE, cap * c->cell_size) != 0) {
      free(c);
      return NULL;
    }
    if (mode == WEFT_CHAN_MPMC)
      for (size_t i = 0; i < cap; i++) *weft__cell_seq(c, i) = i;
  }
  return c;
}

/* Counts completed operations for the runtime's metrics: a plain add on the
 * executor, which adds them up once per loop turn. For the channels that
 * are not rings (those count themselves, see WEFT__COUNT_STEP). */
static inline void count_sends(uint64_t n) {
  weft__exec *e = weft__current_exec;
  if (WEFT__LIKELY(e != NULL)) e->n_chan_sends += n;
}

static inline void count_recvs(uint64_t n) {
  weft__exec *e = weft__current_exec;
  if (WEFT__LIKELY(e != NULL)) e->n_chan_recvs += n;
}

/* What the fast paths of weft_chan_send/recv leave, out of line and reached
 * by a tail call so that the fast paths need no stack frame: LOCAL
 * channels, and the general code for a full (or empty) or closed ring and
 * for a rendezvous across executors. */
static WEFT__NOINLINE int local_send_op(weft_chan *c, const void *elem) {
  int r = local_send(c, elem);
  if (WEFT__LIKELY(r == 0)) count_sends(1);
  return r;
}

static WEFT__NOINLINE int local_recv_op(weft_chan *c, void *elem) {
  int r = local_recv(c, elem);
  if (WEFT__LIKELY(r == 0)) count_recvs(1);
  return r;
}

static WEFT__NOINLINE int send_general(weft_chan *c, const void *elem) {
  int r = weft__chan_op(c, WEFT_SELECT_SEND, (void *)elem);
  if (r == 0 && !weft__chan_is_ring(c)) count_sends(1);
  return r;
}

static WEFT__NOINLINE int recv_general(weft_chan *c, void *elem) {
  int r = weft__chan_op(c, WEFT_SELECT_RECV, elem);
  if (r == 0 && !weft__chan_is_ring(c)) count_recvs(1);
  return r;
}

/* After a fast path published an item at position pos (and fenced), or
 * took one: whether there is nothing more to do, that is no step of the
 * count to add, no waiter to wake and (for a send) no close to look at. */
static inline int sent_quiet(const weft_chan *c, size_t pos) {
  return (pos + 1) % WEFT__COUNT_STEP != 0 &&
         !__atomic_load_n(&c->closed, __ATOMIC_RELAXED) &&
         __atomic_load_n(&c->receivers.count, __ATOMIC_RELAXED) == 0;
}

static inline int received_quiet(const weft_chan *c, size_t pos) {
  return (pos + 1) % WEFT__COUNT_STEP != 0 &&
         __atomic_load_n(&c->senders.count, __ATOMIC_RELAXED) == 0;
}

/* The rest of a fast send when it was not quiet, out of line and reached by
 * a tail call (so that the fast paths need no stack frame). Returns 0, or
 * WEFT_ECLOSED for an SPSC send that lost the race with a close. */
static WEFT__NOINLINE int sent_finish(weft_chan *c, size_t pos) {
  weft__count_moved(1, pos, 1);
  if (c->mode == WEFT_CHAN_SPSC && __atomic_load_n(&c->closed, __ATOMIC_RELAXED) &&
      weft__spsc_sent_late(c, pos, 1) < 0)
    return WEFT_ECLOSED;
  if (__atomic_load_n(&c->receivers.count, __ATOMIC_RELAXED) != 0)
    weft__notify_slow(c, &c->receivers, 1);
  return 0;
}

static WEFT__NOINLINE int received_finish(weft_chan *c, size_t pos) {
  weft__count_moved(0, pos, 1);
  if (__atomic_load_n(&c->senders.count, __ATOMIC_RELAXED) != 0)
    weft__notify_slow(c, &c->senders, 1);
  return 0;
}

/* weft_chan_send for rings of other item sizes than 8 bytes (the same fast
 * path, with a copy of any size) and rendezvous across executors. */
static WEFT__NOINLINE int send_other(weft_chan *c, const void *elem) {
  size_t pos;
  if (c->fast == WEFT__FAST_SPSC) {
    if (WEFT__LIKELY(weft__spsc_publish(c, elem, WEFT__LIGHT(c), 0, &pos) > 0))
      return sent_quiet(c, pos) ? 0 : sent_finish(c, pos);
  } else if (c->fast == WEFT__FAST_MPMC) {
    if (WEFT__LIKELY(weft__mpmc_put(c, elem, 0, &pos) > 0)) {
      weft__fence_fast(WEFT__LIGHT(c));
      return sent_quiet(c, pos) ? 0 : sent_finish(c, pos);
    }
  }
  return send_general(c, elem);
}

static WEFT__NOINLINE int recv_other(weft_chan *c, void *elem) {
  size_t pos;
  if ((c->fast == WEFT__FAST_SPSC && weft__spsc_take(c, elem, 0, &pos)) ||
      (c->fast == WEFT__FAST_MPMC && weft__mpmc_take(c, elem, 0, &pos))) {
    weft__fence_fast(WEFT__LIGHT(c));
    return received_quiet(c, pos) ? 0 : received_finish(c, pos);
  }
  return recv_general(c, elem);
}

/* The rings of 8-byte items, the common case, are served right here,
 * without a stack frame: the item, the index, a fence that is a compiler
 * barrier, and a look at the close flag and the waiter count. A full (or
 * empty) ring goes on to the general code. */
int weft_chan_send(weft_chan *c, const void *elem) {
  int fast = c->fast;
  size_t pos;
  if (fast == WEFT__FAST_LOCAL) return local_send_op(c, elem);
  if (fast == WEFT__FAST_SPSC8) {
    if (WEFT__LIKELY(weft__spsc_publish(c, elem, WEFT__LIGHT(c), 1, &pos) > 0)) {
      if (WEFT__LIKELY(sent_quiet(c, pos))) return 0;
      return sent_finish(c, pos);
    }
  } else if (fast == WEFT__FAST_MPMC8) {
    if (WEFT__LIKELY(weft__mpmc_put(c, elem, 1, &pos) > 0)) {
      weft__fence_fast(WEFT__LIGHT(c));
      if (WEFT__LIKELY(sent_quiet(c, pos))) return 0;
      return sent_finish(c, pos);
    }
  } else {
    return send_other(c, elem);
  }
  return send_general(c, elem);
}

int weft_chan_recv(weft_chan *c, void *elem) {
  int fast = c->fast;
  size_t pos;
  if (fast == WEFT__FAST_LOCAL) return local_recv_op(c, elem);
  if (fast == WEFT__FAST_SPSC8) {
    if (WEFT__LIKELY(weft__spsc_take(c, elem, 1, &pos))) {
      weft__fence_fast(WEFT__LIGHT(c));
      if (WEFT__LIKELY(received_quiet(c, pos))) return 0;
      return received_finish(c, pos);
    }
  } else if (fast == WEFT__FAST_MPMC8) {
    if (WEFT__LIKELY(weft__mpmc_take(c, elem, 1, &pos))) {
      weft__fence_fast(WEFT__LIGHT(c));
      if (WEFT__LIKELY(received_quiet(c, pos))) return 0;
      return received_finish(c, pos);
    }
  } else {
    return recv_other(c, elem);
  }
  return recv_general(c, elem);
}

static WEFT__NOINLINE int try_send_general(weft_chan *c, const void *elem) {
  int r = weft__chan_try_send(c, elem);
  if (r == 0 && !weft__chan_is_ring(c)) count_sends(1);
  return r;
}

static WEFT__NOINLINE int try_recv_general(weft_chan *c, void *elem) {
  int r = weft__chan_try_recv(c, elem);
  if (r == 0 && !weft__chan_is_ring(c)) count_recvs(1);
  return r;
}

int weft_chan_try_send(weft_chan *c, const void *elem) {
  size_t pos;
  int r;
  if (c->fast == WEFT__FAST_SPSC8) {
    r = weft__spsc_publish(c, elem, WEFT__LIGHT(c), 1, &pos);
  } else if (c->fast == WEFT__FAST_MPMC8) {
    r = weft__mpmc_put(c, elem, 1, &pos);
    weft__fence_fast(WEFT__LIGHT(c));
  } else {
    return try_send_general(c, elem);
  }
  if (WEFT__UNLIKELY(r <= 0)) return r < 0 ? WEFT_ECLOSED : UV_EAGAIN;
  if (WEFT__LIKELY(sent_quiet(c, pos))) return 0;
  return sent_finish(c, pos);
}

int weft_chan_try_recv(weft_chan *c, void *elem) {
  size_t pos;
  if ((c->fast == WEFT__FAST_SPSC8 && weft__spsc_take(c, elem, 1, &pos)) ||
      (c->fast == WEFT__FAST_MPMC8 && weft__mpmc_take(c, elem, 1, &pos))) {
    weft__fence_fast(WEFT__LIGHT(c));
    if (WEFT__LIKELY(received_quiet(c, pos))) return 0;
    return received_finish(c, pos);
  }
  /* Empty, closed, other item sizes, LOCAL or a rendezvous: the general
   * code decides. */
  return try_recv_general(c, elem);
}

long weft_chan_send_n(weft_chan *c, const void *elems, size_t n) {
  const unsigned char *p = elems;
  size_t i = 0;
  int r = 0;
  if (c->fast & WEFT__FAST_RING) {
    while (i < n) {
      const unsigned char *at = p + i * c->elem_size;
      long k = weft__fast_spsc(c) ? weft__spsc_push_n(c, at, n - i, WEFT__LIGHT(c))
                                          : weft__mpmc_push_n(c, at, n - i);
      if (k > 0) {
        i += (size_t)k;
        weft__notify_n(c, &c->receivers, (size_t)k, WEFT__LIGHT(c));
        continue;
      }
      /* Full or closed: one item the general way, waiting if need be. */
      r = weft__chan_op(c, WEFT_SELECT_SEND, (void *)at);
      if (r != 0) break;
      i++;
    }
  } else {
    for (; i < n; i++) {
      r = c->fast == WEFT__FAST_LOCAL
              ? local_send(c, p + i * c->elem_size)
              : weft__chan_op(c, WEFT_SELECT_SEND, (void *)(p + i * c->elem_size));
      if (r != 0) break;
    }
  }
  if (i > 0 && !weft__chan_is_ring(c)) count_sends(i);
  return i > 0 || r == 0 ? (long)i : r;
}

long weft_chan_recv_n(weft_chan *c, void *elems, size_t n) {
  unsigned char *p = elems;
  if (n == 0) return 0;
  size_t got;
  if (c->fast & WEFT__FAST_RING) {
    int spsc = weft__fast_spsc(c);
    got = spsc ? weft__spsc_pop_n(c, p, n) : weft__mpmc_pop_n(c, p, n);
    if (got == 0) {
      /* Empty: wait for one item, then take what else came with it. */
      int r = weft__chan_op(c, WEFT_SELECT_RECV, p);
      if (r != 0) return r;
      got = 1;
      if (n > 1) {
        unsigned char *q = p + c->elem_size;
        got += spsc ? weft__spsc_pop_n(c, q, n - 1) : weft__mpmc_pop_n(c, q, n - 1);
      }
    }
    weft__notify_n(c, &c->senders, got, WEFT__LIGHT(c));
  } else {
    int r = weft_chan_recv(c, p);
    if (r != 0) return r;
    for (got = 1; got < n; got++)
      if (weft_chan_try_recv(c, p + got * c->elem_size) != 0) break;
  }
  return (long)got;
}

/* Claims every waiter of l with result (ECLOSED for hand-offs, a retry for
 * ring waiters, who then see the close themselves). */
static void wlist_close(weft__wlist *l, int result, weft__waiter **out) {
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
    wlist_close(&c->senders, WEFT_ECLOSED, &woken);
    wlist_close(&c->receivers, WEFT_ECLOSED, &woken);
  } else {
    weft__lock(&c->lock);
    if (c->closed) {
      weft__unlock(&c->lock);
      return;
    }
    if (c->mode == WEFT_CHAN_MPMC)
      __atomic_fetch_or(&c->tail_pos, WEFT__TAIL_CLOSED, __ATOMIC_SEQ_CST);
    __atomic_store_n(&c->closed, 1, __ATOMIC_SEQ_CST);
    if (c->mode == WEFT_CHAN_SPSC && c->cap > 0) {
      /* After the fence, every send that will not see the close on its
       * second look has published its item (see weft__spsc_send). */
      weft__chan_fence_heavy();
      c->close_tail = __atomic_load_n(&c->tail_pos, __ATOMIC_ACQUIRE);
      __atomic_store_n(&c->close_done, 1, __ATOMIC_RELEASE);
    }
    int result = c->cap == 0 ? WEFT_ECLOSED : WEFT__W_RETRY;
    wlist_close(&c->senders, result, &woken);
    wlist_close(&c->receivers, result, &woken);
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
  if (c->mode == WEFT_CHAN_SPSC && __atomic_load_n(&c->close_done, __ATOMIC_ACQUIRE) &&
      tail > c->close_tail)
    tail = c->close_tail; /* a send that lost the race with the close */
  size_t n = tail - head;
  return (intptr_t)n < 0 ? 0 : (n > c->cap ? c->cap : n);
}

size_t weft_chan_cap(const weft_chan *c) { return c->cap; }

void weft_chan_free(weft_chan *c) {
  if (c == NULL) return;
  if (weft__chan_is_ring(c)) {
    /* What the ring has not counted yet (it counts in steps). */
    size_t tail = c->tail_pos & ~WEFT__TAIL_CLOSED;
    weft_counter_add(weft__m_chan_sends, tail % WEFT__COUNT_STEP);
    weft_counter_add(weft__m_chan_recvs, c->head_pos % WEFT__COUNT_STEP);
  }
  free(c->buf);
  free(c);
}
