/* chan_internal.h: what the channel's files (chan.c, chan_ring.c,
 * chan_wait.c) and select.c share. The inline ring code is chan_ring.h. */
#ifndef WEFT_CHAN_INTERNAL_H
#define WEFT_CHAN_INTERNAL_H

#include <sched.h>

#include "internal.h"

/* A waiter's state: WAITING until one party settles it. A claim by a
 * channel operation stores the case index (>= 0). */
enum {
  WEFT__W_WAITING = -1,
  WEFT__W_CANCELLED = -2,     /* the task's scope was cancelled */
  WEFT__W_TIMEOUT = -3,       /* a select's timeout passed */
  WEFT__W_ABANDONED = -4      /* the task went back to trying by itself */
};

/* A claimed waiter's result: 0 or WEFT_ECLOSED when the claimer completed
 * the operation (a hand-off), or RETRY when it only says "try again". */
#define WEFT__W_RETRY 1

typedef struct weft__waiter {
  struct weft__waiter *next;
  struct weft__waiter *prev;
  weft__task *task;
  int *state;                 /* shared by all the cases of one select */
  int shared;                 /* state needs atomics (select, cross modes) */
  int index;                  /* the case index a claim stores */
  int linked;
  int result;
  int watch;                  /* atomic, WEFT__WATCH_*: a waiter whose task
                                 watches its state before it parks (shared
                                 waiters only; 0 in all others) */
  void *elem;                 /* the item to send or where to receive */
} weft__waiter;

/* A waiter's watch word. A task waiting on a rendezvous across executors
 * first watches the word instead of parking (chan_wait_one); whoever
 * claims the waiter finishes with it, then swaps in DONE and wakes the
 * task only if it no longer watches (PARKING). */
enum {
  WEFT__WATCH_NONE = 0,       /* parks at once: the claimer wakes it */
  WEFT__WATCH_ON = 1,         /* watching */
  WEFT__WATCH_PARKING = 2,    /* stopped watching: the claimer wakes it */
  WEFT__WATCH_DONE = 3        /* the claimer is done with the waiter */
};

typedef struct weft__wlist {
  weft__waiter *head;
  weft__waiter *tail;
  size_t count;               /* written under the lock, read without */
} weft__wlist;

/* A small spin lock for the slow paths (registering waiters). */
typedef struct {
  int v;
} weft__chan_lock;

static inline void weft__cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ __volatile__("yield");
#endif
}

static inline void weft__lock(weft__chan_lock *l) {
  unsigned spins = 0;
  while (__atomic_exchange_n(&l->v, 1, __ATOMIC_ACQUIRE)) {
    while (__atomic_load_n(&l->v, __ATOMIC_RELAXED)) {
      if (++spins > 64) {
        sched_yield(); /* the holder may have been preempted */
        spins = 0;
      }
      weft__cpu_relax();
    }
  }
}

static inline void weft__unlock(weft__chan_lock *l) {
  __atomic_store_n(&l->v, 0, __ATOMIC_RELEASE);
}

#define WEFT__CACHELINE 64

/* MPMC: set in tail_pos by close, so that a claim of a slot and the close
 * are ordered by the same compare-and-swap. */
#define WEFT__TAIL_CLOSED ((size_t)1 << (sizeof(size_t) * 8 - 1))

/* Which inline fast path of the public calls serves a channel, fixed when
 * it is made; anything the fast path cannot finish goes to the general
 * code. The ring paths are taken only where their fences can be compiler
 * barriers (c->light). */
enum {
  WEFT__FAST_NONE = 0,        /* rendezvous across executors; no membarrier */
  WEFT__FAST_LOCAL = 1,
  WEFT__FAST_SPSC = 2,        /* WEFT__FAST_RING set: a lock-free ring */
  WEFT__FAST_MPMC = 3,
  WEFT__FAST_SIZE8 = 4,       /* with a ring: 8-byte items */
  WEFT__FAST_SPSC8 = WEFT__FAST_SPSC | WEFT__FAST_SIZE8,
  WEFT__FAST_MPMC8 = WEFT__FAST_MPMC | WEFT__FAST_SIZE8
};
#define WEFT__FAST_RING 2

/* The fields are grouped by who writes them, each group on its own cache
 * line, so that the producing and the consuming threads do not slow each
 * other down by writing next to what the other reads. */
struct weft_chan {
  /* Read-mostly. */
  int mode;
  int fast;                   /* WEFT__FAST_* */
  int light;                  /* the fast side's fences may be compiler
                                 barriers: the slow side uses membarrier */
  int closed;                 /* atomic in the cross-executor modes */
  int close_done;             /* SPSC: close_tail is set */
  size_t close_tail;          /* SPSC: the items before it were sent before
                                 the close; any after it were not */
  size_t elem_size;
  size_t cell_size;
  size_t cap;
  size_t mask;
  unsigned char *buf;
  /* The LOCAL ring: one thread only. */
  size_t lhead;
  size_t lcount;
  /* Waiters and their lock: written only when a task waits. */
  _Alignas(WEFT__CACHELINE) weft__chan_lock lock;
  weft__wlist senders;
  weft__wlist receivers;
  /* The published indexes, each alone on its line: the other side reads
   * it (SPSC: only when its cached copy says full or empty), so a line
   * that also held the writer's private fields would be pulled away from
   * the writer at every look. The SPSC producer (consumer) is the only
   * writer of tail_pos (head_pos) and reads it back instead of keeping a
   * private copy. */
  _Alignas(WEFT__CACHELINE) size_t tail_pos; /* published tail (MPMC: claim) */
  _Alignas(WEFT__CACHELINE) size_t head_pos; /* published head (MPMC: claim) */
  /* SPSC producer's private line. */
  _Alignas(WEFT__CACHELINE) size_t head_cache; /* the consumer's head, last seen */
  /* SPSC consumer's private line. */
  _Alignas(WEFT__CACHELINE) size_t tail_cache; /* the producer's tail, last seen */
  char pad_[WEFT__CACHELINE - sizeof(size_t)];
};

/* Whether c is a lock-free ring (SPSC or MPMC with a capacity). A ring
 * counts its operations for the metrics itself, by position (chan_ring.h); the
 * callers count the others one by one. */
static inline int weft__chan_is_ring(const weft_chan *c) {
  return c->mode != WEFT_CHAN_LOCAL && c->cap > 0;
}

int weft__chan_try_send(weft_chan *c, const void *elem);
int weft__chan_try_recv(weft_chan *c, void *elem);
/* Registers w for op on c. Returns 1 when the case may be ready after all
 * (w then may or may not be linked; the caller unregisters and settles). */
int weft__chan_register(weft_chan *c, weft__waiter *w, int op);
void weft__chan_unregister(weft_chan *c, weft__waiter *w, int op);
/* Passes on a wake-up that a cancelled task received but will not use. */
void weft__chan_pass_on(weft_chan *c, int op);
void weft__wlist_push(weft__wlist *l, weft__waiter *w);
void weft__wlist_remove(weft__wlist *l, weft__waiter *w);
int weft__waiter_claim(weft__waiter *w);
/* The first waiter of l that can still be claimed, claimed and removed from
 * l (stale ones are dropped on the way); NULL if none. Caller holds the
 * lock guarding l, if any. */
weft__waiter *weft__wlist_claim(weft__wlist *l);
int weft__waiter_state(const weft__waiter *w);
/* Settles a waiter's state as `to` unless a claim came first; returns 1 if
 * it did (no claim can follow), 0 if a claim won. */
int weft__waiter_settle(weft__waiter *w, int to);
/* Wakes the task of a claimed waiter, once the claimer is done with it. */
void weft__waiter_wake(weft__waiter *w);

/* A task parked on one channel operation: what its cancellation needs. */
typedef struct {
  weft_chan *chan;
  weft__waiter *w;
  int op;
} weft__chan_wait;

/* The cancellation of a task parked on a weft__chan_wait (weft__park). */
void weft__chan_wait_cancel(weft__task *t, void *data);
/* The general blocking operation (chan_wait.c): tries, spins, waits, until
 * done, closed or cancelled. Returns 0 or an error. */
int weft__chan_op(weft_chan *c, int op, void *elem);
/* The asymmetric fence of the side about to sleep (chan_ring.c). */
void weft__chan_fence_heavy(void);
/* Whether a new channel of this mode may use light fences (chan_ring.c). */
int weft__chan_fences_light(int mode);

#endif /* WEFT_CHAN_INTERNAL_H */
