/* weft/task.h: what a running task can do with itself, and time.
 *
 * A task is a stackful coroutine: it runs on its own stack and is suspended
 * by any call that waits, letting the executor run other tasks. Tasks are
 * started with weft_spawn() (weft/group.h).
 */
#ifndef WEFT_TASK_H
#define WEFT_TASK_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * Lets every other ready task run once, then resumes. A cancellation point:
 * returns 0, or UV_ECANCELED / UV_ETIMEDOUT when the task's scope is
 * cancelled or past its deadline.
 */
int weft_yield(void);

/**
 * Suspends the calling task for ms milliseconds. ms <= 0 yields. Returns 0
 * when the time has passed, UV_ECANCELED or UV_ETIMEDOUT when cancelled first.
 */
int weft_sleep(int64_t ms);

/** Monotonic time in milliseconds, the clock of every deadline. */
int64_t weft_now(void);

/** Monotonic time in nanoseconds. */
uint64_t weft_now_ns(void);

/**
 * Sets the calling task's name, used in diagnostics (stack overflow reports,
 * logs). Copied; names longer than 31 bytes are cut.
 */
void weft_task_set_name(const char *name);

/** Returns the calling task's name ("main" for the root task), or NULL outside a task. */
const char *weft_task_name(void);

/** Returns non-zero when called from inside a weft task. */
int weft_in_task(void);

/** Returns the stack size of the calling task in bytes, or 0 outside a task. */
size_t weft_task_stack_size(void);

#ifdef __cplusplus
}
#endif
#endif /* WEFT_TASK_H */
