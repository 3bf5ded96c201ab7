/* weft/group.h: structured concurrency.
 *
 * A group owns the tasks spawned into it: weft_group_join() waits for every
 * one of them, so no task outlives its group. A group lives inside the scope
 * of the task that opened it: cancelling that scope (or the group) cancels
 * every task in the group, and every group those tasks opened, all the way
 * down.
 *
 *   weft_group *g = weft_group_open(WEFT_FAIL_FAST);
 *   weft_spawn(g, fetch, &a);
 *   weft_spawn(g, fetch, &b);
 *   int err = weft_group_join(g);   // first error, siblings cancelled
 */
#ifndef WEFT_GROUP_H
#define WEFT_GROUP_H

#include <stddef.h>

#include "executor.h"

#ifdef __cplusplus
extern "C" {
#endif

/** A task group (opaque). */
typedef struct weft_group weft_group;

/** Group policies. */
enum {
  /** The first task to fail cancels its siblings; join returns that error. */
  WEFT_FAIL_FAST = 0,
  /** Every task runs to its end; every error is kept and can be read. */
  WEFT_COLLECT = 1
};

/** Per-spawn options; zero fields take the defaults. */
typedef struct weft_task_opts {
  const char *name;        /**< for diagnostics; copied, cut at 31 bytes */
  size_t stack_size;       /**< bytes; 0: the executor's default */
  int executor;            /**< 0: the spawner's; 1..N: that executor;
                                WEFT_EXEC_NEXT: the next in turn */
} weft_task_opts;

/** weft_task_opts.executor: spread tasks over the executors in turn. */
#define WEFT_EXEC_NEXT (-1)

/**
 * Opens a group in the calling task's current scope. Returns NULL outside a
 * task or when out of memory. The calling task owns the group and must join
 * it; a task that ends with a group still open has it cancelled and joined
 * for it (and a warning logged).
 */
weft_group *weft_group_open(int policy);

/**
 * Starts fn(arg) as a new task in g, ready to run on the calling executor.
 * Returns 0, UV_ENOMEM, or WEFT_EGROUP when g was already joined. Spawning
 * into a cancelled group is allowed: the task starts cancelled.
 */
int weft_spawn(weft_group *g, weft_fn fn, void *arg);

/** Like weft_spawn() with a name for diagnostics. */
int weft_spawn_named(weft_group *g, const char *name, weft_fn fn, void *arg);

/**
 * Like weft_spawn() with options (name, stack size, executor); opts may be
 * NULL. A task spawned onto another executor runs there; its result still
 * reaches its group on the spawner's executor, and cancelling the group
 * reaches it there. Returns UV_EINVAL for an executor that does not exist.
 */
int weft_spawn_opts(weft_group *g, const weft_task_opts *opts, weft_fn fn,
                    void *arg);

/**
 * Waits until every task in g has ended, without freeing g. Returns the
 * group's result: under WEFT_FAIL_FAST the first error, under WEFT_COLLECT
 * the first error in order of completion; 0 when every task returned 0.
 * When the caller's own scope is cancelled, the tasks (which live inside that
 * scope) are cancelled too; the call still waits for them, then returns
 * UV_ECANCELED or UV_ETIMEDOUT.
 */
int weft_group_wait(weft_group *g);

/** weft_group_wait(), then frees g. Returns what weft_group_wait() returned. */
int weft_group_join(weft_group *g);

/** Cancels every task in g (their waits return UV_ECANCELED). Idempotent. */
void weft_group_cancel(weft_group *g);

/** Number of tasks in g that have not ended yet. */
size_t weft_group_live(const weft_group *g);

/** Number of tasks in g that ended with an error (kept under both policies). */
size_t weft_group_error_count(const weft_group *g);

/**
 * Returns the i-th error recorded in g (in order of completion), and the name
 * of the task that returned it in *name when name is not NULL (the string
 * lives as long as g). Returns 0 when i is out of range.
 */
int weft_group_error(const weft_group *g, size_t i, const char **name);

#ifdef __cplusplus
}
#endif
#endif /* WEFT_GROUP_H */
