/* weft/pool.h: a worker pool over the executors.
 *
 * N worker tasks, spread over the executors in turn, take items from one
 * MPMC channel and call a function on each. Shutdown is structured: finish
 * closes the input, lets the workers drain it, joins them and reports their
 * errors.
 *
 *   weft_pool *p = weft_pool_start(4, sizeof(job), 256, run_job, ctx);
 *   for (...) weft_pool_submit(p, &job);      // waits while the queue is full
 *   int err = weft_pool_finish(p);            // first error, or 0
 */
#ifndef WEFT_POOL_H
#define WEFT_POOL_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/** A worker pool (opaque). */
typedef struct weft_pool weft_pool;

/**
 * Called by a worker for each item (a copy of what was submitted, valid
 * during the call). Returns 0, or an error: the worker records it and goes
 * on with the next item.
 */
typedef int (*weft_pool_fn)(void *item, void *ctx);

/**
 * Starts workers tasks (<= 0: two per executor) in a group owned by the
 * calling task, fed by a queue of queue_cap items of item_size bytes.
 * Returns NULL outside a task, on bad arguments or out of memory.
 */
weft_pool *weft_pool_start(int workers, size_t item_size, size_t queue_cap,
                           weft_pool_fn fn, void *ctx);

/** Queues a copy of item, waiting while the queue is full. Returns 0,
 * WEFT_ECLOSED after finish, or a cancellation code. */
int weft_pool_submit(weft_pool *p, const void *item);

/** Items the workers have completed so far (successfully or not). */
size_t weft_pool_done(const weft_pool *p);

/** Items for which fn returned an error so far. */
size_t weft_pool_failed(const weft_pool *p);

/**
 * Closes the queue, waits for the workers to drain it and end, and frees p.
 * Returns the first error fn returned (0 if none), or a cancellation code
 * when the caller was cancelled (the workers then stop early: items still
 * queued are dropped and not counted as done).
 */
int weft_pool_finish(weft_pool *p);

#ifdef __cplusplus
}
#endif
#endif /* WEFT_POOL_H */
