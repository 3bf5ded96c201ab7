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

/**
 * Gives the memory of the calling task's stack below its current frame
 * back to the system (a little is kept for the calls right below): pages
 * that deep calls touched stay resident for the task's life otherwise.
 * For a task that is about to wait long after deep work, such as one of
 * thousands of idle connections. Costs a system call, and the next deep
 * call faults its pages in again. Returns the bytes given back; 0 where
 * this is not supported (outside Linux, the ucontext fallback, Valgrind
 * builds) or outside a task.
 */
size_t weft_task_trim_stack(void);

/* ---- Suspending on something of your own -------------------------------
 *
 * For code that waits on what weft does not wrap itself (a libuv handle of
 * its own, a library driven by the loop such as libcurl's multi interface):
 * the task parks, and a callback on the same executor's thread unparks it.
 *
 *   static void on_done(uv_fs_t *req) {            // on the loop's thread
 *     weft_unpark(req->data, (int)req->result);
 *   }
 *   ...
 *   req.data = weft_park_self();
 *   uv_fs_fsync(weft_loop(), &req, fd, on_done);
 *   int rc = weft_park(cancel_fsync, &req);        // suspends this task only
 */

/** A task suspended in weft_park() (opaque). */
typedef struct weft_parked weft_parked;

/**
 * Called on the task's executor when the scope of a parked task is
 * cancelled or its deadline passes. It must see to it that the task is
 * unparked: at once, or once the pending operation has been stopped (after
 * uv_close's callback, say). The value passed to weft_unpark() after a
 * cancellation is ignored: weft_park() returns the cancellation code.
 */
typedef void (*weft_park_cancel_fn)(weft_parked *task, void *data);

/** The calling task, as weft_unpark() takes it; NULL outside a task. */
weft_parked *weft_park_self(void);

/**
 * Suspends the calling task until weft_unpark(). Returns the result given
 * to weft_unpark(), or UV_ECANCELED / UV_ETIMEDOUT when the scope was
 * cancelled while parked (on_cancel was called; the task still waits to be
 * unparked). When the scope is already cancelled on entry, on_cancel is
 * called at once. on_cancel may be NULL: the wait then ignores cancellation.
 */
int weft_park(weft_park_cancel_fn on_cancel, void *data);

/**
 * Makes a task parked in weft_park() ready to run with result. Call it on
 * the parked task's executor thread (a libuv callback of its loop, another
 * task of that executor, a weft_park_cancel_fn); a task that is not parked
 * is left alone.
 */
void weft_unpark(weft_parked *task, int result);

/* ---- Woken by another thread -------------------------------------------
 *
 * For work that a thread of its own does for a task (a database's thread,
 * a library's worker): the task parks with weft_park_remote(), and that
 * thread wakes it with weft_unpark_remote(). The wake goes through the
 * task's executor's inbox, as wakes between executors do, and rouses the
 * executor's loop with uv_async_send() only if it sleeps (libuv coalesces
 * the signals); no thread waits for another.
 *
 *   op.task = weft_park_self();
 *   queue_for_worker(&op);                  // the worker runs op, then
 *   int rc = weft_park_remote(NULL, NULL);  //   weft_unpark_remote(op.task, r)
 */

/**
 * weft_park() for a task that another thread will wake with
 * weft_unpark_remote(). While it waits, its executor counts on that wake
 * and does not report a deadlock when nothing of its own can wake it.
 * on_cancel, when not NULL, may only hurry the other thread along: that
 * thread still wakes the task, once, and the task waits for it.
 */
int weft_park_remote(weft_park_cancel_fn on_cancel, void *data);

/**
 * Wakes a task that is parked in weft_park_remote() with result, from any
 * thread (a thread that is no executor included). Call it once per wait. A
 * wake that comes while the task is still on its way to park is delivered
 * once it has parked: an executor handles its inbox only between tasks.
 */
void weft_unpark_remote(weft_parked *task, int result);

#ifdef __cplusplus
}
#endif
#endif /* WEFT_TASK_H */
