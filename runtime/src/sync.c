/* Mutex, semaphore, event and rate limiter for tasks on any executor.
 *
 * Each object keeps its waiting tasks in a list under a small spin lock;
 * a release hands the resource to the first waiter (claiming its waiter
 * record) and wakes it on its own executor. A waiter cancelled first settles
 * its record itself, so exactly one of the two happens.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "chan_internal.h"

/* ---- Waiting ------------------------------------------------------------ */

typedef struct {
  weft__chan_lock *lock;
  weft__wlist *list;
  weft__waiter *w;
} weft__sync_wait_ctx;

static void weft__sync_cancel(weft__task *t, void *data) {
  weft__sync_wait_ctx *cw = data;
  if (!weft__waiter_settle(cw->w, WEFT__W_CANCELLED))
    return; /* granted first: the wake-up is on its way */
  weft__lock(cw->lock);
  weft__wlist_remove(cw->list, cw->w);
  weft__unlock(cw->lock);
  weft__wake(t, 0);
}

/* With *lock held: queues the calling task on list, releases the lock and
 * waits until a release grants it (returns 0) or it is cancelled (returns
 * the cancellation code, nothing granted). */
static int weft__sync_wait(weft__chan_lock *lock, weft__wlist *list) {
  weft__task *t = weft__current_task;
  if (t == NULL) {
    weft__unlock(lock);
    return WEFT_ENOTASK;
  }
  if (t->scope->cancelled) {
    weft__unlock(lock);
    return t->scope->cancelled;
  }
  int state = WEFT__W_WAITING;
  weft__waiter w;
  memset(&w, 0, sizeof w);
  w.task = t;
  w.state = &state;
  w.shared = 1;
  weft__wlist_push(list, &w);
  weft__unlock(lock);
  weft__sync_wait_ctx cw = {lock, list, &w};
  int r = weft__park(weft__sync_cancel, &cw);
  return weft__waiter_state(&w) == 0 ? 0 : r;
}

/* ---- Mutex -------------------------------------------------------------- */

/* state: 0 free, 1 held, 2 held and tasks may be waiting. */
struct weft_mutex {
  int state;
  weft__chan_lock lock;
  weft__wlist waiters;
};

weft_mutex *weft_mutex_new(void) { return calloc(1, sizeof(weft_mutex)); }

int weft_mutex_trylock(weft_mutex *m) {
  int free_ = 0;
  return __atomic_compare_exchange_n(&m->state, &free_, 1, 0, __ATOMIC_ACQUIRE,
                                     __ATOMIC_RELAXED)
             ? 0
             : UV_EBUSY;
}

int weft_mutex_lock(weft_mutex *m) {
  if (weft_mutex_trylock(m) == 0) return 0;
  weft__lock(&m->lock);
  for (;;) {
    int s = __atomic_load_n(&m->state, __ATOMIC_RELAXED);
    if (s == 0) {
      int held = m->waiters.count ? 2 : 1;
      if (__atomic_compare_exchange_n(&m->state, &s, held, 0, __ATOMIC_ACQUIRE,
                                      __ATOMIC_RELAXED)) {
        weft__unlock(&m->lock);
        return 0;
      }
    } else if (s == 2 || __atomic_compare_exchange_n(&m->state, &s, 2, 0,
                                                     __ATOMIC_RELAXED,
                                                     __ATOMIC_RELAXED)) {
      break;
    }
  }
  /* Granted means handed over: the state says held all along. */
  return weft__sync_wait(&m->lock, &m->waiters);
}

void weft_mutex_unlock(weft_mutex *m) {
  int held = 1;
  if (__atomic_compare_exchange_n(&m->state, &held, 0, 0, __ATOMIC_RELEASE,
                                  __ATOMIC_RELAXED))
    return;
  weft__lock(&m->lock);
  weft__waiter *w = weft__wlist_claim(&m->waiters);
  if (w != NULL)
    __atomic_store_n(&m->state, m->waiters.count ? 2 : 1, __ATOMIC_RELEASE);
  else
    __atomic_store_n(&m->state, 0, __ATOMIC_RELEASE);
  weft__unlock(&m->lock);
  if (w != NULL) weft__wake_any(w->task, 0);
}

void weft_mutex_free(weft_mutex *m) { free(m); }

/* ---- Semaphore ---------------------------------------------------------- */

/* Permits are handed straight to waiters, so count > 0 only while nobody
 * waits: taking one without the lock is safe. */
struct weft_sem {
  int64_t count;
  weft__chan_lock lock;
  weft__wlist waiters;
};

weft_sem *weft_sem_new(int64_t permits) {
  if (permits < 0) return NULL;
  weft_sem *s = calloc(1, sizeof *s);
  if (s != NULL) s->count = permits;
  return s;
}

int weft_sem_try_acquire(weft_sem *s) {
  int64_t c = __atomic_load_n(&s->count, __ATOMIC_RELAXED);
  while (c > 0)
    if (__atomic_compare_exchange_n(&s->count, &c, c - 1, 1, __ATOMIC_ACQUIRE,
                                    __ATOMIC_RELAXED))
      return 0;
  return UV_EAGAIN;
}

int weft_sem_acquire(weft_sem *s) {
  if (weft_sem_try_acquire(s) == 0) return 0;
  weft__lock(&s->lock);
  if (weft_sem_try_acquire(s) == 0) {
    weft__unlock(&s->lock);
    return 0;
  }
  return weft__sync_wait(&s->lock, &s->waiters);
}

void weft_sem_release(weft_sem *s) {
  weft__lock(&s->lock);
  weft__waiter *w = weft__wlist_claim(&s->waiters);
  if (w == NULL) __atomic_fetch_add(&s->count, 1, __ATOMIC_RELEASE);
  weft__unlock(&s->lock);
  if (w != NULL) weft__wake_any(w->task, 0);
}

int64_t weft_sem_available(const weft_sem *s) {
  return __atomic_load_n(&s->count, __ATOMIC_RELAXED);
}

void weft_sem_free(weft_sem *s) { free(s); }

/* ---- Event -------------------------------------------------------------- */

struct weft_event {
  int set;
  weft__chan_lock lock;
  weft__wlist waiters;
};

weft_event *weft_event_new(void) { return calloc(1, sizeof(weft_event)); }

void weft_event_set(weft_event *e) {
  weft__lock(&e->lock);
  __atomic_store_n(&e->set, 1, __ATOMIC_RELEASE);
  weft__waiter *woken = NULL, *w;
  while ((w = weft__wlist_claim(&e->waiters)) != NULL) {
    w->next = woken;
    woken = w;
  }
  weft__unlock(&e->lock);
  while (woken != NULL) {
    w = woken;
    woken = w->next;
    weft__wake_any(w->task, 0);
  }
}

void weft_event_reset(weft_event *e) {
  __atomic_store_n(&e->set, 0, __ATOMIC_RELEASE);
}

int weft_event_is_set(const weft_event *e) {
  return __atomic_load_n(&e->set, __ATOMIC_ACQUIRE);
}

int weft_event_wait(weft_event *e) {
  if (weft_event_is_set(e)) return 0;
  weft__lock(&e->lock);
  if (weft_event_is_set(e)) {
    weft__unlock(&e->lock);
    return 0;
  }
  return weft__sync_wait(&e->lock, &e->waiters);
}

void weft_event_free(weft_event *e) { free(e); }

/* ---- Rate limiter ------------------------------------------------------- */

struct weft_limiter {
  weft__chan_lock lock;
  double rate;                /* tokens per second */
  double burst;
  double tokens;              /* negative: reserved ahead */
  uint64_t last_ns;
};

weft_limiter *weft_limiter_new(double rate, double burst) {
  if (!(rate > 0) || !(burst >= 1) || !isfinite(rate) || !isfinite(burst))
    return NULL;
  weft_limiter *l = calloc(1, sizeof *l);
  if (l == NULL) return NULL;
  l->rate = rate;
  l->burst = burst;
  l->tokens = burst;
  l->last_ns = uv_hrtime();
  return l;
}

/* With the lock held: adds the tokens accrued since the last look. */
static void weft__limiter_refill(weft_limiter *l, uint64_t now) {
  if (now > l->last_ns) {
    l->tokens += (double)(now - l->last_ns) * l->rate / 1e9;
    if (l->tokens > l->burst) l->tokens = l->burst;
    l->last_ns = now;
  }
}

int weft_limiter_try_acquire(weft_limiter *l, double n) {
  weft__lock(&l->lock);
  weft__limiter_refill(l, uv_hrtime());
  int r = UV_EAGAIN;
  if (l->tokens >= n) {
    l->tokens -= n;
    r = 0;
  }
  weft__unlock(&l->lock);
  return r;
}

int weft_limiter_acquire(weft_limiter *l, double n) {
  weft__task *t = weft__current_task;
  if (t == NULL) return WEFT_ENOTASK;
  if (t->scope->cancelled) return t->scope->cancelled;
  weft__lock(&l->lock);
  if (n > l->burst || !(n >= 0)) {
    weft__unlock(&l->lock);
    return UV_EINVAL;
  }
  weft__limiter_refill(l, uv_hrtime());
  l->tokens -= n;
  double deficit = -l->tokens;
  double rate = l->rate;
  weft__unlock(&l->lock);
  if (deficit <= 0) return 0;
  /* The tokens are ours once they have accrued: sleep until then. */
  int64_t wait_ms = (int64_t)ceil(deficit / rate * 1000.0);
  int r = weft_sleep(wait_ms > 0 ? wait_ms : 1);
  if (r != 0) {
    weft__lock(&l->lock);
    l->tokens += n;
    weft__unlock(&l->lock);
  }
  return r;
}

void weft_limiter_set_rate(weft_limiter *l, double rate, double burst) {
  if (!(rate > 0) || !(burst >= 1)) return;
  weft__lock(&l->lock);
  weft__limiter_refill(l, uv_hrtime());
  l->rate = rate;
  l->burst = burst;
  if (l->tokens > burst) l->tokens = burst;
  weft__unlock(&l->lock);
}

double weft_limiter_tokens(weft_limiter *l) {
  weft__lock(&l->lock);
  weft__limiter_refill(l, uv_hrtime());
  double tokens = l->tokens;
  weft__unlock(&l->lock);
  return tokens;
}

void weft_limiter_free(weft_limiter *l) { free(l); }

/* ---- Keyed limiters ----------------------------------------------------- */

typedef struct weft__keyed {
  struct weft__keyed *next;   /* hash chain */
  char *key;
  weft_limiter *limiter;
  uint64_t last_used;         /* a use counter, for least-recently-used */
  int in_use;                 /* tasks inside acquire: not evicted */
} weft__keyed;

struct weft_limiter_set {
  weft__chan_lock lock;
  double rate;
  double burst;
  size_t max_keys;
  size_t size;
  size_t nbuckets;
  uint64_t clock;
  weft__keyed **buckets;
};

weft_limiter_set *weft_limiter_set_new(double rate, double burst,
                                       size_t max_keys) {
  weft_limiter *probe = weft_limiter_new(rate, burst);
  if (probe == NULL) return NULL;
  weft_limiter_free(probe);
  weft_limiter_set *s = calloc(1, sizeof *s);
  if (s == NULL) return NULL;
  s->rate = rate;
  s->burst = burst;
  s->max_keys = max_keys ? max_keys : 10000;
  s->nbuckets = 256;
  while (s->nbuckets < s->max_keys && s->nbuckets < ((size_t)1 << 20))
    s->nbuckets <<= 1;
  s->buckets = calloc(s->nbuckets, sizeof *s->buckets);
  if (s->buckets == NULL) {
    free(s);
    return NULL;
  }
  return s;
}

static size_t weft__hash(const char *key) {
  uint64_t h = 1469598103934665603ull; /* FNV-1a */
  for (const unsigned char *p = (const unsigned char *)key; *p; p++) {
    h ^= *p;
    h *= 1099511628211ull;
  }
  return (size_t)h;
}

/* With the lock held: forgets the least recently used idle key. */
static void weft__limiter_set_evict(weft_limiter_set *s) {
  weft__keyed **victim = NULL;
  for (size_t b = 0; b < s->nbuckets; b++)
    for (weft__keyed **p = &s->buckets[b]; *p != NULL; p = &(*p)->next)
      if (!(*p)->in_use && (victim == NULL || (*p)->last_used < (*victim)->last_used))
        victim = p;
  if (victim == NULL) return;
  weft__keyed *k = *victim;
  *victim = k->next;
  weft_limiter_free(k->limiter);
  free(k->key);
  free(k);
  s->size--;
}

/* Finds or makes key's entry and marks it in use. NULL when out of memory. */
static weft__keyed *weft__limiter_set_get(weft_limiter_set *s, const char *key) {
  weft__lock(&s->lock);
  size_t b = weft__hash(key) & (s->nbuckets - 1);
  weft__keyed *k;
  for (k = s->buckets[b]; k != NULL; k = k->next)
    if (strcmp(k->key, key) == 0) break;
  if (k == NULL) {
    if (s->size >= s->max_keys) weft__limiter_set_evict(s);
    k = calloc(1, sizeof *k);
    if (k != NULL) {
      k->key = strdup(key);
      k->limiter = weft_limiter_new(s->rate, s->burst);
      if (k->key == NULL || k->limiter == NULL) {
        free(k->key);
        weft_limiter_free(k->limiter);
        free(k);
        k = NULL;
      } else {
        k->next = s->buckets[b];
        s->buckets[b] = k;
        s->size++;
      }
    }
  }
  if (k != NULL) {
    k->last_used = ++s->clock;
    k->in_use++;
  }
  weft__unlock(&s->lock);
  return k;
}

static void weft__limiter_set_put(weft_limiter_set *s, weft__keyed *k) {
  weft__lock(&s->lock);
  k->in_use--;
  weft__unlock(&s->lock);
}

int weft_limiter_set_acquire(weft_limiter_set *s, const char *key, double n) {
  weft__keyed *k = weft__limiter_set_get(s, key);
  if (k == NULL) return UV_ENOMEM;
  int r = weft_limiter_acquire(k->limiter, n);
  weft__limiter_set_put(s, k);
  return r;
}

int weft_limiter_set_try_acquire(weft_limiter_set *s, const char *key,
                                  double n) {
  weft__keyed *k = weft__limiter_set_get(s, key);
  if (k == NULL) return UV_ENOMEM;
  int r = weft_limiter_try_acquire(k->limiter, n);
  weft__limiter_set_put(s, k);
  return r;
}

size_t weft_limiter_set_size(weft_limiter_set *s) {
  weft__lock(&s->lock);
  size_t n = s->size;
  weft__unlock(&s->lock);
  return n;
}

void weft_limiter_set_free(weft_limiter_set *s) {
  if (s == NULL) return;
  for (size_t b = 0; b < s->nbuckets; b++) {
    weft__keyed *k = s->buckets[b];
    while (k != NULL) {
      weft__keyed *next = k->next;
      weft_limiter_free(k->limiter);
      free(k->key);
      free(k);
      k = next;
    }
  }
  free(s->buckets);
  free(s);
}
