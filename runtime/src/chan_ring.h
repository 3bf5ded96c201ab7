/* chan_ring.h: the lock-free rings of SPSC and MPMC channels, inline: the
 * item copies, the fences of the fast side, the SPSC and MPMC publication
 * and take, and the look at the waiter count after them. The public fast
 * paths (chan.c) are built from these, so they must stay inline there; the
 * out-of-line rest of the rings (batches, the looks of a waiting task, the
 * wake-ups) is in chan_ring.c. Private to chan*.c and select.c. */
#ifndef WEFT_CHAN_RING_H
#define WEFT_CHAN_RING_H

#include <stdint.h>
#include <string.h>

#include "chan_internal.h"

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

/* Adds n ring operations (a multiple of WEFT__COUNT_STEP) to the metrics. */
void weft__chan_count_ring(int send, uint64_t n);

/* Counts a move of a ring index from pos to pos + k. */
static inline void weft__count_moved(int send, size_t pos, size_t k) {
  size_t steps = (pos + k) / WEFT__COUNT_STEP - pos / WEFT__COUNT_STEP;
  if (WEFT__UNLIKELY(steps != 0)) weft__chan_count_ring(send, (uint64_t)steps * WEFT__COUNT_STEP);
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
long weft__spsc_sent_late(weft_chan *c, size_t tail, size_t k);

/* An SPSC send's publication. The producer owns tail_pos and the consumer
 * head_pos; each keeps a cached copy of the other's index and touches the
 * other's cache line only when the copy says full (or empty). Returns 1
 * when published, with the item's position in *pos (the caller then looks
 * at the close flag once more: weft__spsc_send, sent_finish), 0 when
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

/* Batches (chan_ring.c): each returns the number of items moved; a push
 * returns 0 when full and -1 when closed, a pop 0 when empty. */
long weft__spsc_push_n(weft_chan *c, const unsigned char *p, size_t n, int light);
size_t weft__spsc_pop_n(weft_chan *c, unsigned char *p, size_t n);
long weft__mpmc_push_n(weft_chan *c, const unsigned char *p, size_t n);
size_t weft__mpmc_pop_n(weft_chan *c, unsigned char *p, size_t n);

static inline int weft__ring_push(weft_chan *c, const void *elem) {
  return c->mode == WEFT_CHAN_SPSC ? weft__spsc_send(c, elem, c->light, 0)
                                   : weft__mpmc_push(c, elem, 0);
}

static inline int weft__ring_pop(weft_chan *c, void *elem) {
  return c->mode == WEFT_CHAN_SPSC ? weft__spsc_pop(c, elem, 0) : weft__mpmc_pop(c, elem, 0);
}

/* Whether a push (or a pop) could succeed now. Used after registering as a
 * waiter, to not sleep through an item or a slot that just appeared. */
int weft__ring_can_push(weft_chan *c);
int weft__ring_can_pop(weft_chan *c);
/* Whether at least k cells are free (k <= cap). */
int weft__ring_has_room(weft_chan *c, size_t k);

/* Wakes up to n tasks waiting on list l (senders or receivers) to try
 * again. Kept out of line: the fast paths only test the count. Returns 0,
 * so that a fast path can end in a tail call of it. */
int weft__notify_slow(weft_chan *c, weft__wlist *l, size_t n);

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

#endif /* WEFT_CHAN_RING_H */
