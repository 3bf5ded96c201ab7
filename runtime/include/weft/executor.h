/* weft/executor.h: starting the runtime.
 *
 * An executor is one thread with one libuv loop and a queue of ready tasks.
 * weft_main() makes an executor on the calling thread, runs the root task on
 * it and returns when the root task and every task it started have ended.
 */
#ifndef WEFT_EXECUTOR_H
#define WEFT_EXECUTOR_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** The body of a task: returns 0 for success or a negative error code. */
typedef int (*weft_fn)(void *arg);

/** Options for weft_main_opts(). Zero everywhere means the defaults. */
typedef struct weft_opts {
  int executors;           /**< executor threads, the calling one included;
                                0: one per core */
  size_t stack_size;       /**< default task stack in bytes; 0: 64 KiB */
  size_t stack_pool;       /**< stacks kept for reuse per executor; 0: 1024 */
  int idle_spin_us;        /**< with several executors, how long one that
                                runs out of work watches its inbox for
                                messages from the others before it sleeps
                                in the kernel, in microseconds (at most
                                1000, and never past its next timer; I/O
                                that comes meanwhile waits for the end of
                                the watch); 0: 50; below 0: not at all, for
                                programs that wait on I/O far more than on
                                each other. A task waiting on a rendezvous
                                channel across executors likewise watches
                                for its partner, up to 20 us and never
                                longer than this, before it parks */
  int handles_strict;      /**< libuv handles the program left open when
                                the runtime ends (a leak) are closed either
                                way; 0: and reported with a warning in the
                                log; non-zero: an error in the log, and
                                weft_main_opts() returns WEFT_EHANDLES
                                unless it has another error to return.
                                The tests turn it on (tests/support.h) */
} weft_opts;

/** The default stack size of a task, in bytes. */
#define WEFT_STACK_DEFAULT ((size_t)64 * 1024)
/** The smallest stack size accepted, in bytes. */
#define WEFT_STACK_MIN ((size_t)16 * 1024)

/**
 * Runs fn(arg) as the root task on a new executor on the calling thread and
 * returns its result once it and every task it spawned have ended and every
 * handle it opened is closed. The root task runs under a scope that nothing
 * cancels unless the program does.
 */
int weft_main(weft_fn fn, void *arg);

/**
 * Like weft_main() with options; opts may be NULL (one executor per core).
 * Executor 1 is the calling thread and runs the root task; executors 2..N
 * each get a thread of their own. Tasks stay on the executor that spawned
 * them unless weft_spawn_opts() names another.
 */
int weft_main_opts(const weft_opts *opts, weft_fn fn, void *arg);

/** The calling task's executor, numbered from 1; 0 outside the runtime. */
int weft_executor_id(void);

/** The number of executors of the running runtime; 0 outside it. */
int weft_executor_count(void);

/**
 * Returns the libuv loop of the calling task's executor, or NULL outside a
 * task. For integrating libuv-based code; never run the loop yourself.
 */
struct uv_loop_s *weft_loop(void);

#ifdef __cplusplus
}
#endif
#endif /* WEFT_EXECUTOR_H */
