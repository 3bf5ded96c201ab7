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
#include "metrics_internal.h"

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

/* The slow side: a registration followed by a look at the ring. Its fast
 * counterpart is weft__fence_fast(), below. */
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

/* Wakes the task of a claimed waiter, on whichever executor it runs, once
 * everything the claimer had to do with the waiter is done (its item and
 * result written). A task that still watches its waiter goes on by itself
 * when it sees DONE, and may leave the frame that holds the waiter at
 * once: nothing here touches w after the swap. */
static void weft__waiter_wake(weft__waiter *w) {
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

/* The fence between a publication and a look at the waiter count, on the
 * fast side. light (c->light, or WEFT__LIGHT(c) on the fast paths) says
 * whether the slow side pays for it instead, with membarrier. */
static inline void weft__fence_fast(int light) {
  if (WEFT__LIKELY(light))
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
  else
    WEFT__FULL_FENCE();
}

/* The ring fast paths are taken only where their fences may be compiler
 * barriers (c->light), so there the fence choice is a constant; except
 * under ThreadSanitizer, which has no membarrier: there they are taken with
 * full fences, so that the sanitizer checks them too. */
#if defined(WEFT__TSAN)
#define WEFT__LIGHT(c) ((c)->light)
#else
#define WEFT__LIGHT(c) 1
#endif

/* Whether c is served by the SPSC ring's fast path (any item size). */
static inline int weft__fast_spsc(const weft_chan *c) {
  return (c->fast & ~WEFT__FAST_SIZE8) == WEFT__FAST_SPSC;
}

/* ---- LOCAL channels: the forms select and try_* use ---------------------- */

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

/* Ring items by position: 8-byte items (the common case) without a
 * multiplication or a call to memcpy. */
static inline void weft__ring_put(weft_chan *c, size_t pos, const void *elem, int size8) {
  size_t i = pos & c->mask;
  if (size8 || WEFT__LIKELY(c->elem_size == 8))
    memcpy(c->buf + i * 8, elem, 8);
  else
    weft__copy(c->buf + i * c->elem_size, elem, c->elem_size);
}

static inline void weft__ring_get(weft_chan *c, size_t pos, void *elem, int size8) {
  size_t i = pos & c->mask;
  if (size8 || WEFT__LIKELY(c->elem_size == 8))
    memcpy(elem, c->buf + i * 8, 8);
  else
    weft__copy(elem, c->buf + i * c->elem_size, c->elem_size);
}

/* Metrics: a ring counts its operations by position, 64 at a time, when a
 * send (receive) moves its index past a multiple of 64, so that the fast
 * paths store nothing but the item and the index; weft_chan_free adds the
 * rest. (Each store on the fast path costs throughput: the index store
 * waits for the cache line the other side keeps reading, and the stores
 * behind it queue up.) */
#define WEFT__COUNT_STEP 64u

static __attribute__((noinline, cold)) void weft__count_ring(int send, uint64_t n) {
  weft__exec *e = weft__current_exec;
  if (e == NULL)
    weft_counter_add(send ? weft__m_chan_sends : weft__m_chan_recvs, n);
  else if (send)
    e->n_chan_sends += n;
  else
    e->n_chan_recvs += n;
}

/* Counts a move of a ring index from pos to pos + k. */
static inline void weft__count_moved(int send, size_t pos, size_t k) {
  size_t steps = (pos + k) / WEFT__COUNT_STEP - pos / WEFT__COUNT_STEP;
  if (WEFT__UNLIKELY(steps != 0)) weft__count_ring(send, (uint64_t)steps * WEFT__COUNT_STEP);
}

/* SPSC and closing. The producer looks at the close flag before it
 * publishes an item and once more after (with the asymmetric fence
 * between, the closer paying): when the second look still says open, the
 * closer, which stores the flag, fences and then reads tail_pos, is sure to
 * see the item, so the send happened before the close. Only a send that
 * races with the close sees it on the second look; it then waits for the
 * closer to record close_tail and was sent if its item lies before it.
 * Receivers never take items at or after close_tail. Nothing is stored on
 * the way but the item and the index. */
static __attribute__((noinline)) long weft__spsc_sent_late(weft_chan *c, size_t tail, size_t k) {
  unsigned spins = 0;
  while (!__atomic_load_n(&c->close_done, __ATOMIC_ACQUIRE))
    if (++spins % 64 == 0) sched_yield(); /* the closer is between two stores */
  size_t end = c->close_tail;
  if (end <= tail) return -1;
  return (long)(end - tail < k ? end - tail : k);
}

/* An SPSC send's publication. The producer owns tail_pos and the consumer
 * head_pos; each keeps a cached copy of the other's index and touches the
 * other's cache line only when the copy says full (or empty). Returns 1
 * when published, with the item's position in *pos (the caller then looks
 * at the close flag once more: weft__spsc_send, weft__sent_finish), 0 when
 * full, -1 when closed. */
static inline int weft__spsc_publish(weft_chan *c, const void *elem, int light, int size8,
                                     size_t *pos) {
  size_t tail = __atomic_load_n(&c->tail_pos, __ATOMIC_RELAXED);
  if (WEFT__UNLIKELY(tail - c->head_cache == c->cap)) {
    c->head_cache = __atomic_load_n(&c->head_pos, __ATOMIC_ACQUIRE);
    if (tail - c->head_cache == c->cap)
      return __atomic_load_n(&c->closed, __ATOMIC_RELAXED) ? -1 : 0;
  }
  if (WEFT__UNLIKELY(__atomic_load_n(&c->closed, __ATOMIC_RELAXED))) return -1;
  weft__ring_put(c, tail, elem, size8);
  __atomic_store_n(&c->tail_pos, tail + 1, __ATOMIC_RELEASE);
  weft__fence_fast(light);
  *pos = tail;
  return 1;
}

/* The publication above, then the second look at the close flag and the
 * count: 1 when sent, 0 when full, -1 when closed. */
static inline int weft__spsc_send(weft_chan *c, const void *elem, int light, int size8) {
  size_t tail;
  int r = weft__spsc_publish(c, elem, light, size8, &tail);
  if (r <= 0) return r;
  weft__count_moved(1, tail, 1); /* by position, a late item included */
  if (WEFT__UNLIKELY(__atomic_load_n(&c->closed, __ATOMIC_RELAXED)) &&
      weft__spsc_sent_late(c, tail, 1) < 0)
    return -1;
  return 1;
}

/* The consumer's look at the producer's index. After a close, items at or
 * after close_tail do not count (and until close_tail is known, nothing
 * new does). */
static inline size_t weft__spsc_tail(weft_chan *c, size_t head) {
  size_t tail = __atomic_load_n(&c->tail_pos, __ATOMIC_ACQUIRE);
  if (WEFT__UNLIKELY(__atomic_load_n(&c->closed, __ATOMIC_RELAXED))) {
    if (!__atomic_load_n(&c->close_done, __ATOMIC_ACQUIRE)) return head;
    if (tail > c->close_tail) tail = c->close_tail;
  }
  return tail;
}

/* An SPSC receive: 1 when an item was taken, 0 when empty. */
static inline int weft__spsc_take(weft_chan *c, void *elem, int size8, size_t *pos) {
  size_t head = __atomic_load_n(&c->head_pos, __ATOMIC_RELAXED);
  if (head == c->tail_cache) {
    c->tail_cache = weft__spsc_tail(c, head);
    if (head == c->tail_cache) return 0;
  }
  weft__ring_get(c, head, elem, size8);
  __atomic_store_n(&c->head_pos, head + 1, __ATOMIC_RELEASE);
  *pos = head;
  return 1;
}

static inline int weft__spsc_pop(weft_chan *c, void *elem, int size8) {
  size_t head;
  if (!weft__spsc_take(c, elem, size8, &head)) return 0;
  weft__count_moved(0, head, 1);
  return 1;
}

/* MPMC: a bounded ring of cells, each with a sequence number that says
 * whose turn the cell is (after Vyukov's bounded MPMC queue). */
static inline size_t *weft__cell_seq(weft_chan *c, size_t i) {
  return (size_t *)(c->buf + (i & c->mask) * c->cell_size);
}

/* The cell of position i when the items are 8 bytes (16-byte cells). */
static inline size_t *weft__cell_seq8(weft_chan *c, size_t i, int size8) {
  if (size8) return (size_t *)(c->buf + ((i & c->mask) << 4));
  return weft__cell_seq(c, i);
}

static inline void weft__cell_put(weft_chan *c, size_t *seq, const void *elem, int size8) {
  if (size8 || WEFT__LIKELY(c->elem_size == 8))
    memcpy(seq + 1, elem, 8);
  else
    weft__copy(seq + 1, elem, c->elem_size);
}

static inline void weft__cell_get(weft_chan *c, const size_t *seq, void *elem, int size8) {
  if (size8 || WEFT__LIKELY(c->elem_size == 8))
    memcpy(elem, seq + 1, 8);
  else
    weft__copy(elem, seq + 1, c->elem_size);
}

/* Returns 1 when pushed, 0 when full, -1 when closed. */
static inline int weft__mpmc_put(weft_chan *c, const void *elem, int size8, size_t *at) {
  size_t pos = __atomic_load_n(&c->tail_pos, __ATOMIC_RELAXED);
  for (;;) {
    if (WEFT__UNLIKELY(pos & WEFT__TAIL_CLOSED)) return -1;
    size_t *seq = weft__cell_seq8(c, pos, size8);
    size_t s = __atomic_load_n(seq, __ATOMIC_ACQUIRE);
    intptr_t diff = (intptr_t)s - (intptr_t)pos;
    if (diff == 0) {
      if (WEFT__LIKELY(__atomic_compare_exchange_n(&c->tail_pos, &pos, pos + 1, 1,
                                                   __ATOMIC_RELAXED, __ATOMIC_RELAXED))) {
        weft__cell_put(c, seq, elem, size8);
        __atomic_store_n(seq, pos + 1, __ATOMIC_RELEASE);
        *at = pos;
        return 1;
      }
    } else if (diff < 0) {
      return 0;
    } else {
      pos = __atomic_load_n(&c->tail_pos, __ATOMIC_RELAXED);
    }
  }
}

/* Returns 1 when an item was taken, 0 when empty. */
static inline int weft__mpmc_take(weft_chan *c, void *elem, int size8, size_t *at) {
  size_t pos = __atomic_load_n(&c->head_pos, __ATOMIC_RELAXED);
  for (;;) {
    size_t *seq = weft__cell_seq8(c, pos, size8);
    size_t s = __atomic_load_n(seq, __ATOMIC_ACQUIRE);
    intptr_t diff = (intptr_t)s - (intptr_t)(pos + 1);
    if (diff == 0) {
      if (WEFT__LIKELY(__atomic_compare_exchange_n(&c->head_pos, &pos, pos + 1, 1,
                                                   __ATOMIC_RELAXED, __ATOMIC_RELAXED))) {
        weft__cell_get(c, seq, elem, size8);
        __atomic_store_n(seq, pos + c->mask + 1, __ATOMIC_RELEASE);
        *at = pos;
        return 1;
      }
    } else if (diff < 0) {
      return 0;
    } else {
      pos = __atomic_load_n(&c->head_pos, __ATOMIC_RELAXED);
    }
  }
}

/* The same, counted: 1 when pushed, 0 when full, -1 when closed. */
static inline int weft__mpmc_push(weft_chan *c, const void *elem, int size8) {
  size_t pos;
  int r = weft__mpmc_put(c, elem, size8, &pos);
  if (r > 0) weft__count_moved(1, pos, 1);
  return r;
}

/* 1 when an item was taken, 0 when empty. */
static inline int weft__mpmc_pop(weft_chan *c, void *elem, int size8) {
  size_t pos;
  if (!weft__mpmc_take(c, elem, size8, &pos)) return 0;
  weft__count_moved(0, pos, 1);
  return 1;
}

/* MPMC batches: claims up to n consecutive free cells with one
 * compare-and-swap. Every cell of the run is checked before the claim (a
 * slow consumer may still hold an earlier one). Returns the number pushed
 * (0 when full), or -1 when closed. */
static long weft__mpmc_push_n(weft_chan *c, const unsigned char *p, size_t n) {
  size_t pos = __atomic_load_n(&c->tail_pos, __ATOMIC_RELAXED);
  for (;;) {
    if (pos & WEFT__TAIL_CLOSED) return -1;
    size_t k = 0;
    while (k < n && __atomic_load_n(weft__cell_seq(c, pos + k), __ATOMIC_ACQUIRE) == pos + k)
      k++;
    if (k == 0) {
      size_t s = __atomic_load_n(weft__cell_seq(c, pos), __ATOMIC_ACQUIRE);
      if ((intptr_t)s - (intptr_t)pos < 0) return 0; /* full */
      pos = __atomic_load_n(&c->tail_pos, __ATOMIC_RELAXED);
      continue;
    }
    if (__atomic_compare_exchange_n(&c->tail_pos, &pos, pos + k, 0, __ATOMIC_RELAXED,
                                    __ATOMIC_RELAXED)) {
      for (size_t j = 0; j < k; j++) {
        size_t *seq = weft__cell_seq(c, pos + j);
        weft__cell_put(c, seq, p + j * c->elem_size, 0);
        __atomic_store_n(seq, pos + j + 1, __ATOMIC_RELEASE);
      }
      weft__count_moved(1, pos, k);
      return (long)k;
    }
  }
}

/* Takes up to n consecutive published items with one compare-and-swap.
 * Returns the number taken (0 when empty). */
static size_t weft__mpmc_pop_n(weft_chan *c, unsigned char *p, size_t n) {
  size_t pos = __atomic_load_n(&c->head_pos, __ATOMIC_RELAXED);
  for (;;) {
    size_t k = 0;
    while (k < n &&
           __atomic_load_n(weft__cell_seq(c, pos + k), __ATOMIC_ACQUIRE) == pos + k + 1)
      k++;
    if (k == 0) {
      size_t s = __atomic_load_n(weft__cell_seq(c, pos), __ATOMIC_ACQUIRE);
      if ((intptr_t)s - (intptr_t)(pos + 1) < 0) return 0; /* empty */
      pos = __atomic_load_n(&c->head_pos, __ATOMIC_RELAXED);
      continue;
    }
    if (__atomic_compare_exchange_n(&c->head_pos, &pos, pos + k, 0, __ATOMIC_RELAXED,
                                    __ATOMIC_RELAXED)) {
      for (size_t j = 0; j < k; j++) {
        size_t *seq = weft__cell_seq(c, pos + j);
        weft__cell_get(c, seq, p + j * c->elem_size, 0);
        __atomic_store_n(seq, pos + j + c->mask + 1, __ATOMIC_RELEASE);
      }
      weft__count_moved(0, pos, k);
      return k;
    }
  }
}

static inline int weft__ring_push(weft_chan *c, const void *elem) {
  return c->mode == WEFT_CHAN_SPSC ? weft__spsc_send(c, elem, c->light, 0)
                                   : weft__mpmc_push(c, elem, 0);
}

static inline int weft__ring_pop(weft_chan *c, void *elem) {
  return c->mode == WEFT_CHAN_SPSC ? weft__spsc_pop(c, elem, 0) : weft__mpmc_pop(c, elem, 0);
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

/* Whether at least k cells are free (k <= cap). */
static int weft__ring_has_room(weft_chan *c, size_t k) {
  if (c->mode == WEFT_CHAN_SPSC) {
    size_t head = __atomic_load_n(&c->head_pos, __ATOMIC_ACQUIRE);
    return c->cap - (__atomic_load_n(&c->tail_pos, __ATOMIC_RELAXED) - head) >= k;
  }
  size_t pos = (__atomic_load_n(&c->tail_pos, __ATOMIC_RELAXED) & ~WEFT__TAIL_CLOSED) + k - 1;
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

/* Wakes up to n tasks waiting on list l (senders or receivers) to try
 * again. Kept out of line: the fast paths only test the count. Returns 0,
 * so that a fast path can end in a tail call of it. */
static __attribute__((noinline)) int weft__notify_slow(weft_chan *c, weft__wlist *l,
                                                       size_t n) {
  weft__waiter *woken = NULL, *w;
  weft__lock(&c->lock);
  while (n-- > 0 && (w = weft__wlist_claim(l)) != NULL) {
    w->next = woken;
    woken = w;
  }
  weft__unlock(&c->lock);
  while ((w = woken) != NULL) {
    woken = w->next;
    w->result = WEFT__W_RETRY;
    weft__waiter_wake(w);
  }
  return 0;
}

/* After a publication (items, or room for them): wakes up to n waiters of
 * l, if there are any. Returns 0. */
static inline int weft__notify_n(weft_chan *c, weft__wlist *l, size_t n, int light) {
  weft__fence_fast(light);
  if (WEFT__UNLIKELY(__atomic_load_n(&l->count, __ATOMIC_RELAXED) != 0))
    return weft__notify_slow(c, l, n);
  return 0;
}

static inline void weft__notify(weft_chan *c, weft__wlist *l) {
  weft__notify_n(c, l, 1, c->light);
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

/* Sends the rest of the way after the fast path could not: LOCAL channels,
 * rendezvous, and a full or closed ring. */
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
static int weft__waiter_unwatch(weft__waiter *w) {
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
static void weft__chan_watch(weft__waiter *w) {
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
static inline int weft__chan_should_watch(const weft_chan *c) {
  weft__exec *e = weft__current_exec;
  return c->cap == 0 && c->mode != WEFT_CHAN_LOCAL && e->rt->n > 1 &&
         e->idle_spin_ns != 0 && e->ready_head == NULL;
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
  int watch = weft__chan_should_watch(c);
  w.watch = watch ? WEFT__WATCH_ON : WEFT__WATCH_NONE;
  w.elem = elem;
  int r = 0;
  if (weft__chan_register(c, &w, op)) {
    weft__chan_unregister(c, &w, op);
    if (weft__waiter_settle(&w, WEFT__W_ABANDONED)) return WEFT__W_RETRY;
    /* Claimed in the meantime: its wake-up must be taken here. */
    if (!weft__waiter_unwatch(&w)) weft__park(NULL, NULL);
  } else {
    int done = 0;
    if (watch) {
      weft__chan_watch(&w);
      done = weft__waiter_unwatch(&w);
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
static int weft__chan_spin(weft_chan *c, int op) {
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
static __attribute__((noinline)) int weft__chan_op(weft_chan *c, int op, void *elem) {
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
static inline int weft__local_wait(weft_chan *c, weft__wlist *l, int op, void *elem) {
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
static inline void weft__local_done(weft__waiter *w) {
  w->result = 0;
  /* Claimed from the WAITING state, so its task is parked in
   * weft__local_wait (a cancellation settles the state first). */
  weft__wake_parked(w->task, 0);
}

static inline int weft__local_send(weft_chan *c, const void *elem) {
  if (WEFT__UNLIKELY(c->closed)) return WEFT_ECLOSED;
  if (c->receivers.head != NULL) {
    /* A receiver waits, so the ring is empty: hand the item over. */
    weft__waiter *w = weft__local_claim(&c->receivers);
    if (w != NULL) {
      weft__copy(w->elem, elem, c->elem_size);
      weft__local_done(w);
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
  return weft__local_wait(c, &c->senders, WEFT_SELECT_SEND, (void *)elem);
}

static inline int weft__local_recv(weft_chan *c, void *elem) {
  if (c->lcount > 0) {
    weft__copy(elem, weft__slot(c, c->lhead), c->elem_size);
    if (++c->lhead == c->cap) c->lhead = 0;
    c->lcount--;
    if (c->senders.head != NULL) {
      /* The ring was full: the oldest waiting sender's item goes in. */
      weft__waiter *w = weft__local_claim(&c->senders);
      if (w != NULL) {
        size_t tail = c->lhead + c->lcount;
        if (tail >= c->cap) tail -= c->cap;
        weft__copy(weft__slot(c, tail), w->elem, c->elem_size);
        c->lcount++;
        weft__local_done(w);
      }
    }
    return 0;
  }
  if (c->senders.head != NULL) {
    /* A rendezvous: take the item from the waiting sender. */
    weft__waiter *w = weft__local_claim(&c->senders);
    if (w != NULL) {
      weft__copy(elem, w->elem, c->elem_size);
      weft__local_done(w);
      return 0;
    }
  }
  if (c->closed) return WEFT_ECLOSED;
  return weft__local_wait(c, &c->receivers, WEFT_SELECT_RECV, elem);
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
  c->light = __atomic_load_n(&weft__membarrier_state, __ATOMIC_ACQUIRE) == 1;
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
static inline void weft__count_sends(uint64_t n) {
  weft__exec *e = weft__current_exec;
  if (WEFT__LIKELY(e != NULL)) e->n_chan_sends += n;
}

static inline void weft__count_recvs(uint64_t n) {
  weft__exec *e = weft__current_exec;
  if (WEFT__LIKELY(e != NULL)) e->n_chan_recvs += n;
}

/* What the fast paths of weft_chan_send/recv leave, out of line and reached
 * by a tail call so that the fast paths need no stack frame: LOCAL
 * channels, and the general code for a full (or empty) or closed ring and
 * for a rendezvous across executors. */
static __attribute__((noinline)) int weft__local_send_op(weft_chan *c, const void *elem) {
  int r = weft__local_send(c, elem);
  if (WEFT__LIKELY(r == 0)) weft__count_sends(1);
  return r;
}

static __attribute__((noinline)) int weft__local_recv_op(weft_chan *c, void *elem) {
  int r = weft__local_recv(c, elem);
  if (WEFT__LIKELY(r == 0)) weft__count_recvs(1);
  return r;
}

static __attribute__((noinline)) int weft__send_general(weft_chan *c, const void *elem) {
  int r = weft__chan_op(c, WEFT_SELECT_SEND, (void *)elem);
  if (r == 0 && !weft__chan_is_ring(c)) weft__count_sends(1);
  return r;
}

static __attribute__((noinline)) int weft__recv_general(weft_chan *c, void *elem) {
  int r = weft__chan_op(c, WEFT_SELECT_RECV, elem);
  if (r == 0 && !weft__chan_is_ring(c)) weft__count_recvs(1);
  return r;
}

/* After a fast path published an item at position pos (and fenced), or
 * took one: whether there is nothing more to do, that is no step of the
 * count to add, no waiter to wake and (for a send) no close to look at. */
static inline int weft__sent_quiet(const weft_chan *c, size_t pos) {
  return (pos + 1) % WEFT__COUNT_STEP != 0 &&
         !__atomic_load_n(&c->closed, __ATOMIC_RELAXED) &&
         __atomic_load_n(&c->receivers.count, __ATOMIC_RELAXED) == 0;
}

static inline int weft__received_quiet(const weft_chan *c, size_t pos) {
  return (pos + 1) % WEFT__COUNT_STEP != 0 &&
         __atomic_load_n(&c->senders.count, __ATOMIC_RELAXED) == 0;
}

/* The rest of a fast send when it was not quiet, out of line and reached by
 * a tail call (so that the fast paths need no stack frame). Returns 0, or
 * WEFT_ECLOSED for an SPSC send that lost the race with a close. */
static __attribute__((noinline)) int weft__sent_finish(weft_chan *c, size_t pos) {
  weft__count_moved(1, pos, 1);
  if (c->mode == WEFT_CHAN_SPSC && __atomic_load_n(&c->closed, __ATOMIC_RELAXED) &&
      weft__spsc_sent_late(c, pos, 1) < 0)
    return WEFT_ECLOSED;
  if (__atomic_load_n(&c->receivers.count, __ATOMIC_RELAXED) != 0)
    weft__notify_slow(c, &c->receivers, 1);
  return 0;
}

static __attribute__((noinline)) int weft__received_finish(weft_chan *c, size_t pos) {
  weft__count_moved(0, pos, 1);
  if (__atomic_load_n(&c->senders.count, __ATOMIC_RELAXED) != 0)
    weft__notify_slow(c, &c->senders, 1);
  return 0;
}

/* weft_chan_send for rings of other item sizes than 8 bytes (the same fast
 * path, with a copy of any size) and rendezvous across executors. */
static __attribute__((noinline)) int weft__send_other(weft_chan *c, const void *elem) {
  size_t pos;
  if (c->fast == WEFT__FAST_SPSC) {
    if (WEFT__LIKELY(weft__spsc_publish(c, elem, WEFT__LIGHT(c), 0, &pos) > 0))
      return weft__sent_quiet(c, pos) ? 0 : weft__sent_finish(c, pos);
  } else if (c->fast == WEFT__FAST_MPMC) {
    if (WEFT__LIKELY(weft__mpmc_put(c, elem, 0, &pos) > 0)) {
      weft__fence_fast(WEFT__LIGHT(c));
      return weft__sent_quiet(c, pos) ? 0 : weft__sent_finish(c, pos);
    }
  }
  return weft__send_general(c, elem);
}

static __attribute__((noinline)) int weft__recv_other(weft_chan *c, void *elem) {
  size_t pos;
  if ((c->fast == WEFT__FAST_SPSC && weft__spsc_take(c, elem, 0, &pos)) ||
      (c->fast == WEFT__FAST_MPMC && weft__mpmc_take(c, elem, 0, &pos))) {
    weft__fence_fast(WEFT__LIGHT(c));
    return weft__received_quiet(c, pos) ? 0 : weft__received_finish(c, pos);
  }
  return weft__recv_general(c, elem);
}

/* The rings of 8-byte items, the common case, are served right here,
 * without a stack frame: the item, the index, a fence that is a compiler
 * barrier, and a look at the close flag and the waiter count. A full (or
 * empty) ring goes on to the general code. */
int weft_chan_send(weft_chan *c, const void *elem) {
  int fast = c->fast;
  size_t pos;
  if (fast == WEFT__FAST_LOCAL) return weft__local_send_op(c, elem);
  if (fast == WEFT__FAST_SPSC8) {
    if (WEFT__LIKELY(weft__spsc_publish(c, elem, WEFT__LIGHT(c), 1, &pos) > 0)) {
      if (WEFT__LIKELY(weft__sent_quiet(c, pos))) return 0;
      return weft__sent_finish(c, pos);
    }
  } else if (fast == WEFT__FAST_MPMC8) {
    if (WEFT__LIKELY(weft__mpmc_put(c, elem, 1, &pos) > 0)) {
      weft__fence_fast(WEFT__LIGHT(c));
      if (WEFT__LIKELY(weft__sent_quiet(c, pos))) return 0;
      return weft__sent_finish(c, pos);
    }
  } else {
    return weft__send_other(c, elem);
  }
  return weft__send_general(c, elem);
}

int weft_chan_recv(weft_chan *c, void *elem) {
  int fast = c->fast;
  size_t pos;
  if (fast == WEFT__FAST_LOCAL) return weft__local_recv_op(c, elem);
  if (fast == WEFT__FAST_SPSC8) {
    if (WEFT__LIKELY(weft__spsc_take(c, elem, 1, &pos))) {
      weft__fence_fast(WEFT__LIGHT(c));
      if (WEFT__LIKELY(weft__received_quiet(c, pos))) return 0;
      return weft__received_finish(c, pos);
    }
  } else if (fast == WEFT__FAST_MPMC8) {
    if (WEFT__LIKELY(weft__mpmc_take(c, elem, 1, &pos))) {
      weft__fence_fast(WEFT__LIGHT(c));
      if (WEFT__LIKELY(weft__received_quiet(c, pos))) return 0;
      return weft__received_finish(c, pos);
    }
  } else {
    return weft__recv_other(c, elem);
  }
  return weft__recv_general(c, elem);
}

static __attribute__((noinline)) int weft__try_send_general(weft_chan *c, const void *elem) {
  int r = weft__chan_try_send(c, elem);
  if (r == 0 && !weft__chan_is_ring(c)) weft__count_sends(1);
  return r;
}

static __attribute__((noinline)) int weft__try_recv_general(weft_chan *c, void *elem) {
  int r = weft__chan_try_recv(c, elem);
  if (r == 0 && !weft__chan_is_ring(c)) weft__count_recvs(1);
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
    return weft__try_send_general(c, elem);
  }
  if (WEFT__UNLIKELY(r <= 0)) return r < 0 ? WEFT_ECLOSED : UV_EAGAIN;
  if (WEFT__LIKELY(weft__sent_quiet(c, pos))) return 0;
  return weft__sent_finish(c, pos);
}

int weft_chan_try_recv(weft_chan *c, void *elem) {
  size_t pos;
  if ((c->fast == WEFT__FAST_SPSC8 && weft__spsc_take(c, elem, 1, &pos)) ||
      (c->fast == WEFT__FAST_MPMC8 && weft__mpmc_take(c, elem, 1, &pos))) {
    weft__fence_fast(WEFT__LIGHT(c));
    if (WEFT__LIKELY(weft__received_quiet(c, pos))) return 0;
    return weft__received_finish(c, pos);
  }
  /* Empty, closed, other item sizes, LOCAL or a rendezvous: the general
   * code decides. */
  return weft__try_recv_general(c, elem);
}

/* SPSC batches: a run of items copied in (or out) with at most two memcpy
 * calls (the run may wrap around the end of the ring) and published with
 * one store. */
static void weft__ring_copy_in(weft_chan *c, size_t pos, const unsigned char *p, size_t k) {
  size_t i = pos & c->mask;
  size_t first = c->cap - i < k ? c->cap - i : k;
  memcpy(c->buf + i * c->elem_size, p, first * c->elem_size);
  if (k > first) memcpy(c->buf, p + first * c->elem_size, (k - first) * c->elem_size);
}

static void weft__ring_copy_out(weft_chan *c, size_t pos, unsigned char *p, size_t k) {
  size_t i = pos & c->mask;
  size_t first = c->cap - i < k ? c->cap - i : k;
  memcpy(p, c->buf + i * c->elem_size, first * c->elem_size);
  if (k > first) memcpy(p + first * c->elem_size, c->buf, (k - first) * c->elem_size);
}

/* Pushes up to n items; returns the number pushed (0 when full), or -1 when
 * closed. The close protocol is weft__spsc_send's. */
static long weft__spsc_push_n(weft_chan *c, const unsigned char *p, size_t n, int light) {
  size_t tail = __atomic_load_n(&c->tail_pos, __ATOMIC_RELAXED);
  size_t room = c->cap - (tail - c->head_cache);
  if (room < n) {
    c->head_cache = __atomic_load_n(&c->head_pos, __ATOMIC_ACQUIRE);
    room = c->cap - (tail - c->head_cache);
    if (room == 0) return __atomic_load_n(&c->closed, __ATOMIC_RELAXED) ? -1 : 0;
  }
  if (__atomic_load_n(&c->closed, __ATOMIC_RELAXED)) return -1;
  size_t k = n < room ? n : room;
  weft__ring_copy_in(c, tail, p, k);
  __atomic_store_n(&c->tail_pos, tail + k, __ATOMIC_RELEASE);
  weft__fence_fast(light);
  long sent = (long)k;
  if (__atomic_load_n(&c->closed, __ATOMIC_RELAXED)) sent = weft__spsc_sent_late(c, tail, k);
  weft__count_moved(1, tail, k);
  return sent;
}

/* Takes up to n items; returns the number taken (0 when empty). */
static size_t weft__spsc_pop_n(weft_chan *c, unsigned char *p, size_t n) {
  size_t head = __atomic_load_n(&c->head_pos, __ATOMIC_RELAXED);
  size_t avail = c->tail_cache - head;
  if (avail < n) {
    c->tail_cache = weft__spsc_tail(c, head);
    avail = c->tail_cache - head;
  }
  size_t k = n < avail ? n : avail;
  if (k == 0) return 0;
  weft__ring_copy_out(c, head, p, k);
  __atomic_store_n(&c->head_pos, head + k, __ATOMIC_RELEASE);
  weft__count_moved(0, head, k);
  return k;
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
              ? weft__local_send(c, p + i * c->elem_size)
              : weft__chan_op(c, WEFT_SELECT_SEND, (void *)(p + i * c->elem_size));
      if (r != 0) break;
    }
  }
  if (i > 0 && !weft__chan_is_ring(c)) weft__count_sends(i);
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
    if (c->mode == WEFT_CHAN_SPSC && c->cap > 0) {
      /* After the fence, every send that will not see the close on its
       * second look has published its item (see weft__spsc_send). */
      weft__fence_heavy();
      c->close_tail = __atomic_load_n(&c->tail_pos, __ATOMIC_ACQUIRE);
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
