/* The out-of-line part of the lock-free rings: the fences of the side
 * about to sleep (membarrier), the metrics counted by position, the
 * batches, the looks of a task that waits, and the wake-ups of waiters.
 * The inline part, which the fast paths are built from, is chan_ring.h.
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

#include "chan_ring.h"
#include "metrics_internal.h"

/* ---- Fences ------------------------------------------------------------- */


static int membarrier_state; /* 0: unknown, 1: usable, -1: not */

static void membarrier_probe(void) {
  int state = -1;
#if defined(__linux__) && defined(__NR_membarrier) && !defined(WEFT__TSAN)
  long cmds = syscall(__NR_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);
  if (cmds > 0 && (cmds & MEMBARRIER_CMD_PRIVATE_EXPEDITED) &&
      syscall(__NR_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0,
              0) == 0)
    state = 1;
#endif
  __atomic_store_n(&membarrier_state, state, __ATOMIC_RELEASE);
}

static uv_once_t membarrier_once = UV_ONCE_INIT;

/* The slow side: a registration followed by a look at the ring. Its fast
 * counterpart is weft__fence_fast() (chan_ring.h). */
void weft__chan_fence_heavy(void) {
#if defined(__linux__) && defined(__NR_membarrier)
  if (__atomic_load_n(&membarrier_state, __ATOMIC_RELAXED) == 1) {
    syscall(__NR_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0);
    return;
  }
#endif
  WEFT__FULL_FENCE();
}

/* Whether the fast side's fences of a new channel of this mode may be
 * compiler barriers (the slow side then pays with membarrier). The system
 * is probed once, for the first channel across executors. */
int weft__chan_fences_light(int mode) {
  if (mode != WEFT_CHAN_LOCAL) uv_once(&membarrier_once, membarrier_probe);
  return __atomic_load_n(&membarrier_state, __ATOMIC_ACQUIRE) == 1;
}

/* ---- Counting ----------------------------------------------------------- */

WEFT__COLD void weft__chan_count_ring(int send, uint64_t n) {
  weft__exec *e = weft__current_exec;
  if (e == NULL)
    weft_counter_add(send ? weft__m_chan_sends : weft__m_chan_recvs, n);
  else if (send)
    e->n_chan_sends += n;
  else
    e->n_chan_recvs += n;
}

/* ---- SPSC batches and closing ------------------------------------------- */

WEFT__NOINLINE long weft__spsc_sent_late(weft_chan *c, size_t tail, size_t k) {
  unsigned spins = 0;
  while (!__atomic_load_n(&c->close_done, __ATOMIC_ACQUIRE))
    if (++spins % 64 == 0) sched_yield(); /* the closer is between two stores */
  size_t end = c->close_tail;
  if (end <= tail) return -1;
  return (long)(end - tail < k ? end - tail : k);
}

/* SPSC batches: a run of items copied in (or out) with at most two memcpy
 * calls (the run may wrap around the end of the ring) and published with
 * one store. */
static void ring_copy_in(weft_chan *c, size_t pos, const unsigned char *p, size_t k) {
  size_t i = pos & c->mask;
  size_t first = c->cap - i < k ? c->cap - i : k;
  memcpy(c->buf + i * c->elem_size, p, first * c->elem_size);
  if (k > first) memcpy(c->buf, p + first * c->elem_size, (k - first) * c->elem_size);
}

static void ring_copy_out(weft_chan *c, size_t pos, unsigned char *p, size_t k) {
  size_t i = pos & c->mask;
  size_t first = c->cap - i < k ? c->cap - i : k;
  memcpy(p, c->buf + i * c->elem_size, first * c->elem_size);
  if (k > first) memcpy(p + first * c->elem_size, c->buf, (k - first) * c->elem_size);
}

/* Pushes up to n items; returns the number pushed (0 when full), or -1 when
 * closed. The close protocol is weft__spsc_send's. */
long weft__spsc_push_n(weft_chan *c, const unsigned char *p, size_t n, int light) {
  size_t tail = __atomic_load_n(&c->tail_pos, __ATOMIC_RELAXED);
  size_t room = c->cap - (tail - c->head_cache);
  if (room < n) {
    c->head_cache = __atomic_load_n(&c->head_pos, __ATOMIC_ACQUIRE);
    room = c->cap - (tail - c->head_cache);
    if (room == 0) return __atomic_load_n(&c->closed, __ATOMIC_RELAXED) ? -1 : 0;
  }
  if (__atomic_load_n(&c->closed, __ATOMIC_RELAXED)) return -1;
  size_t k = n < room ? n : room;
  ring_copy_in(c, tail, p, k);
  __atomic_store_n(&c->tail_pos, tail + k, __ATOMIC_RELEASE);
  weft__fence_fast(light);
  long sent = (long)k;
  if (__atomic_load_n(&c->closed, __ATOMIC_RELAXED)) sent = weft__spsc_sent_late(c, tail, k);
  weft__count_moved(1, tail, k);
  return sent;
}

/* Takes up to n items; returns the number taken (0 when empty). */
size_t weft__spsc_pop_n(weft_chan *c, unsigned char *p, size_t n) {
  size_t head = __atomic_load_n(&c->head_pos, __ATOMIC_RELAXED);
  size_t avail = c->tail_cache - head;
  if (avail < n) {
    c->tail_cache = weft__spsc_tail(c, head);
    avail = c->tail_cache - head;
  }
  size_t k = n < avail ? n : avail;
  if (k == 0) return 0;
  ring_copy_out(c, head, p, k);
  __atomic_store_n(&c->head_pos, head + k, __ATOMIC_RELEASE);
  weft__count_moved(0, head, k);
  return k;
}

/* ---- MPMC batches ------------------------------------------------------- */

/* MPMC batches: claims up to n consecutive free cells with one
 * compare-and-swap. Every cell of the run is checked before the claim (a
 * slow consumer may still hold an earlier one). Returns the number pushed
 * (0 when full), or -1 when closed. */
long weft__mpmc_push_n(weft_chan *c, const unsigned char *p, size_t n) {
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
size_t weft__mpmc_pop_n(weft_chan *c, unsigned char *p, size_t n) {
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

/* ---- Looks and wake-ups of waiting tasks -------------------------------- */

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
int weft__ring_has_room(weft_chan *c, size_t k) {
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
WEFT__NOINLINE int weft__notify_slow(weft_chan *c, weft__wlist *l, size_t n) {
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
