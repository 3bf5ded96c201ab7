/* weft/sync.h: mutex, semaphore, event and token-bucket rate limiter.
 *
 * Every wait here suspends the calling task, never its thread, honours the
 * task's cancellation scope (returning UV_ECANCELED or UV_ETIMEDOUT) and
 * leaves nothing registered behind. All four work across executors: tasks on
 * any executor may share one object. The uncontended mutex and semaphore
 * paths are a single atomic operation; waiting goes through a small lock.
 */
#ifndef WEFT_SYNC_H
#define WEFT_SYNC_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Mutex -------------------------------------------------------------- */

/** A mutual-exclusion lock for tasks (opaque). Not recursive. */
typedef struct weft_mutex weft_mutex;

/** Makes an unlocked mutex. Returns NULL when out of memory. */
weft_mutex *weft_mutex_new(void);

/**
 * Locks m, waiting while another task holds it. Returns 0, or UV_ECANCELED /
 * UV_ETIMEDOUT (m is then not held). Waiters are served in order; a task
 * that arrives while m is free may take it ahead of them.
 */
int weft_mutex_lock(weft_mutex *m);

/** Locks m if it is free: 0, or UV_EBUSY. */
int weft_mutex_trylock(weft_mutex *m);

/** Unlocks m, handing it to the first waiting task if there is one. */
void weft_mutex_unlock(weft_mutex *m);

/** Frees m, which must be unlocked with no task waiting. */
void weft_mutex_free(weft_mutex *m);

/* ---- Semaphore ---------------------------------------------------------- */

/** A counting semaphore (opaque). */
typedef struct weft_sem weft_sem;

/** Makes a semaphore holding `permits` permits. NULL when out of memory. */
weft_sem *weft_sem_new(int64_t permits);

/** Takes one permit, waiting for one: 0, UV_ECANCELED or UV_ETIMEDOUT. */
int weft_sem_acquire(weft_sem *s);

/** Takes one permit if one is free: 0 or UV_EAGAIN. */
int weft_sem_try_acquire(weft_sem *s);

/** Returns one permit, waking the first waiting task if any. */
void weft_sem_release(weft_sem *s);

/** Permits free now. */
int64_t weft_sem_available(const weft_sem *s);

/** Frees s; no task may be waiting. */
void weft_sem_free(weft_sem *s);

/* ---- Event -------------------------------------------------------------- */

/** A flag tasks can wait for (opaque); starts unset. */
typedef struct weft_event weft_event;

/** Makes an unset event. NULL when out of memory. */
weft_event *weft_event_new(void);

/** Sets e and wakes every task waiting for it. Idempotent. */
void weft_event_set(weft_event *e);

/** Clears e; later waits wait again. */
void weft_event_reset(weft_event *e);

/** Non-zero when e is set. */
int weft_event_is_set(const weft_event *e);

/** Waits until e is set: 0 (at once if set), UV_ECANCELED or UV_ETIMEDOUT. */
int weft_event_wait(weft_event *e);

/** Frees e; no task may be waiting. */
void weft_event_free(weft_event *e);

/* ---- Rate limiter ------------------------------------------------------- */

/**
 * A token bucket (opaque): tokens accrue at `rate` per second up to `burst`;
 * each acquire takes some. Waiting callers are served in order of arrival
 * (each reserves its tokens, then sleeps until they exist), so the long-run
 * rate is exact whatever the number of callers.
 */
typedef struct weft_limiter weft_limiter;

/** Makes a limiter starting full. rate > 0, burst >= 1. NULL on bad arguments. */
weft_limiter *weft_limiter_new(double rate, double burst);

/**
 * Takes n tokens (n <= burst), waiting until they exist. Returns 0, UV_EINVAL
 * for n > burst, or UV_ECANCELED / UV_ETIMEDOUT (the reservation is then
 * given back).
 */
int weft_limiter_acquire(weft_limiter *l, double n);

/** Takes n tokens if they exist now: 0 or UV_EAGAIN. */
int weft_limiter_try_acquire(weft_limiter *l, double n);

/** Changes the rate and burst; reservations already made stand. */
void weft_limiter_set_rate(weft_limiter *l, double rate, double burst);

/** Tokens available now (negative while reservations are pending). */
double weft_limiter_tokens(weft_limiter *l);

/** Frees l; no task may be waiting in it. */
void weft_limiter_free(weft_limiter *l);

/**
 * A set of limiters, one per key (such as a host name), made on first use
 * with the same rate and burst (opaque). At most max_keys are kept (0:
 * 10,000); the least recently used key is forgotten past that.
 */
typedef struct weft_limiter_set weft_limiter_set;

/** Makes a keyed limiter set. NULL on bad arguments or out of memory. */
weft_limiter_set *weft_limiter_set_new(double rate, double burst, size_t max_keys);

/** weft_limiter_acquire() on the limiter of key. UV_ENOMEM if it cannot be made. */
int weft_limiter_set_acquire(weft_limiter_set *s, const char *key, double n);

/** weft_limiter_try_acquire() on the limiter of key. */
int weft_limiter_set_try_acquire(weft_limiter_set *s, const char *key, double n);

/** Keys held now. */
size_t weft_limiter_set_size(weft_limiter_set *s);

/** Frees s and its limiters; no task may be waiting in them. */
void weft_limiter_set_free(weft_limiter_set *s);

#ifdef __cplusplus
}
#endif
#endif /* WEFT_SYNC_H */
