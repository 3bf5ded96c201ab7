/* internal.h: weft's private declarations, shared by runtime/src only.
 * Never installed. Internal non-static names start with weft__.
 */
#ifndef WEFT_INTERNAL_H
#define WEFT_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "weft.h"

#if defined(_WIN32)
#include <errno.h>
#include <stdlib.h>
/* Windows has no posix_memalign, and what _aligned_malloc returns cannot go
 * to free(). The cache-line aligned allocations are plain malloc there
 * (16-byte aligned): more false sharing between threads, same results. */
static inline int weft__posix_memalign(void **p, size_t align, size_t size) {
  (void)align;
  *p = malloc(size);
  return *p != NULL ? 0 : ENOMEM;
}
#define posix_memalign weft__posix_memalign
#endif

#if defined(__GNUC__)
#define WEFT__LIKELY(x) __builtin_expect(!!(x), 1)
#define WEFT__UNLIKELY(x) __builtin_expect(!!(x), 0)
#define WEFT__TLS __thread __attribute__((tls_model("initial-exec")))
/* Out of line: slow paths kept out of the fast paths they branch from,
 * so that those stay small (COLD: and rarely taken, laid out apart). */
#define WEFT__NOINLINE __attribute__((noinline))
#define WEFT__COLD __attribute__((noinline, cold))
#else
#define WEFT__LIKELY(x) (x)
#define WEFT__UNLIKELY(x) (x)
#define WEFT__TLS _Thread_local
#define WEFT__NOINLINE
#define WEFT__COLD
#endif

typedef struct weft__task weft__task;
typedef struct weft__exec weft__exec;
typedef struct weft__scope weft__scope;
typedef struct weft__timer weft__timer;
typedef struct weft__msg weft__msg;
typedef struct weft__runtime weft__runtime;

/* ---- Context switch (arch/) --------------------------------------------- */

/* A saved execution context: the stack pointer of a suspended context for the
 * assembly back ends, a ucontext_t for the fallback. */
typedef struct weft__ctx {
#if defined(WEFT_CTX_UCONTEXT)
  void *uctx;                 /* ucontext_t *, allocated with the stack */
#elif defined(WEFT_CTX_FIBER)
  /* Windows: a fiber, which owns its stack (arch/ctx_win64_fiber.c). */
  void *fiber;                /* CreateFiberEx's handle; NULL before the first use */
  void (*entry)(void *);      /* what the fiber runs next */
  void *arg;
  size_t size;                /* the fiber's stack reserve */
  int restart;                /* set by weft__ctx_make on a used fiber */
  int converted;              /* an executor's context: we made the thread a fiber */
  void *top[5];               /* __builtin_setjmp buffer at the fiber's first frame */
#else
  void *sp;
#endif
} weft__ctx;

/* Prepares ctx to run entry(arg) on the stack [base, base + size). */
void weft__ctx_make(weft__ctx *ctx, void *base, size_t size,
                    void (*entry)(void *), void *arg);
/* Saves the current context in from and resumes to. */
void weft__ctx_switch(weft__ctx *from, weft__ctx *to);
/* Releases what weft__ctx_make() allocated (ucontext and fibers). */
void weft__ctx_free(weft__ctx *ctx);
#if defined(WEFT_CTX_FIBER)
/* Creates ctx's fiber with a stack of size bytes, or keeps the one it has
 * of that size (a pooled task's), before weft__ctx_make(). Returns 0, or
 * UV_ENOMEM when Windows cannot make another fiber. */
int weft__ctx_reserve(weft__ctx *ctx, size_t size);
#endif

/* ---- Stacks (stack.c) --------------------------------------------------- */

typedef struct weft__stack {
  void *base;                 /* lowest usable address (above the guard page) */
  size_t size;                /* usable bytes */
  void *map;                  /* start of the mapping, guard page included */
  size_t map_size;
  unsigned valgrind_id;       /* VALGRIND_STACK_REGISTER's id, or 0 */
  struct weft__stack *next;   /* pool free list */
} weft__stack;

int weft__stack_get(weft__exec *e, size_t size, weft__stack **out);
void weft__stack_put(weft__exec *e, weft__stack *s);
void weft__stack_pool_drain(weft__exec *e);
/* Gives the pages of s below frame (less a little kept for the calls right
 * below it) back to the system; returns the bytes given back, 0 where this
 * is not supported (outside Linux, Windows) or frame is not on s. */
size_t weft__stack_trim(weft__stack *s, const void *frame);
/* Installs the per-thread alternate signal stack and the SIGSEGV/SIGBUS
 * handler that reports a stack overflow with the task's name. */
void weft__stack_guard_init(void);
void weft__stack_guard_fini(void);

/* ---- Timers (timer.c): one uv_timer per executor over a binary heap ----- */

typedef void (*weft__timer_cb)(weft__timer *t);

struct weft__timer {
  int64_t deadline;           /* weft_now() ms */
  weft__timer_cb cb;
  size_t heap_index;          /* position in the heap, SIZE_MAX when not armed */
};

void weft__timer_start(weft__exec *e, weft__timer *t, int64_t deadline,
                       weft__timer_cb cb);
void weft__timer_stop(weft__exec *e, weft__timer *t);
/* Re-arms t for deadline whether it is armed or not, moving an armed
 * timer within the heap rather than removing and inserting it. */
void weft__timer_move(weft__exec *e, weft__timer *t, int64_t deadline,
                      weft__timer_cb cb);
/* Runs the callbacks of every expired timer; returns how many ran. */
int weft__timers_run(weft__exec *e, int64_t now);
/* Arms the executor's uv_timer for the earliest deadline, if any. */
void weft__timers_arm(weft__exec *e);

/* ---- Scopes (scope.c) --------------------------------------------------- */

struct weft__scope {
  weft__scope *parent;        /* enclosing scope; NULL at the root */
  weft__scope *first_child;   /* nested scopes (incl. group and task roots) */
  weft__scope *prev_sibling;
  weft__scope *next_sibling;
  weft__task *owner;          /* task whose current scope this may be; NULL for a group's scope */
  weft__task *remote;         /* for the stand-in of a task on another executor */
  weft__exec *exec;
  int cancelled;              /* 0, UV_ECANCELED or UV_ETIMEDOUT */
  int shielded;
  int own_deadline_fired;
  int timer_stale;            /* timer armed for a deadline since removed
                                 (counted in exec->stale_timers) */
  int64_t deadline;           /* absolute, -1 for none */
  weft__timer timer;
};

void weft__scope_init(weft__scope *s, weft__scope *parent, weft__task *owner,
                      int shielded, int64_t deadline);
void weft__scope_fini(weft__scope *s);
/* Cancels s and, unless shielded, everything below it, with code. */
void weft__scope_cancel(weft__scope *s, int code);

/* ---- Messages between executors (executor.c) --------------------------- */

/* A node of an executor's inbox: an intrusive lock-free MPSC queue. Nodes
 * live in the task they concern, so posting never allocates. */
enum {
  WEFT__MSG_SPAWN = 1,        /* start task on this executor */
  WEFT__MSG_WAKE,             /* weft__wake(task, code) */
  WEFT__MSG_CANCEL,           /* cancel task's root scope with code */
  WEFT__MSG_DONE,             /* task (spawned from here) has ended */
  WEFT__MSG_STOP              /* the runtime is ending */
};

struct weft__msg {
  weft__msg *next;            /* accessed atomically */
  int type;
  int code;
  weft__task *task;
};

typedef struct weft__inbox {
  weft__msg *head;            /* producers' end, swapped atomically */
  weft__msg *tail;            /* consumer's end */
  weft__msg stub;
} weft__inbox;

/* Posts m to e's inbox and wakes e's loop (coalesced by libuv) if it may be
 * asleep in its poll; an executor that is awake looks at its inbox before
 * it polls again. Any thread. */
void weft__post(weft__exec *e, weft__msg *m);

/* Wakes t, which may belong to another executor. Any thread (one that is no
 * executor posts to t's executor, as another executor does). */
void weft__wake_any(weft__task *t, int result);

/* ---- Tasks and the executor (task.c, executor.c) ------------------------ */

/* Called when a task blocked in weft__park() has its scope cancelled. It
 * must see to it that the task is woken, at once (weft__wake) or once the
 * pending libuv operation has finished (uv_cancel, uv_close, ...). */
typedef void (*weft__cancel_fn)(weft__task *t, void *data);

enum {
  WEFT__TASK_READY = 1,
  WEFT__TASK_RUNNING,
  WEFT__TASK_PARKED,
  WEFT__TASK_DONE
};

struct weft__task {
  weft__ctx ctx;
  weft__exec *exec;
  weft__task *next_ready;     /* ready queue link */
  weft__scope *scope;         /* innermost scope */
  /* What parking, waking and switching touch comes first, in one or two
   * cache lines: with many tasks the struct is usually cold. */
  int result;
  int state;
  /* What the task is parked on. */
  weft__cancel_fn cancel_fn;
  void *cancel_data;
  int wake_result;
  int cancel_code;            /* set when cancel_fn was called for this park */
  weft__scope root;           /* the task's outermost scope, child of its group's */
  weft_group *group;          /* the group it belongs to; NULL for the root task */
  weft__task *group_prev;     /* links in the group's list of live tasks */
  weft__task *group_next;
  weft_group *open_groups;    /* groups this task opened and has not joined */
  weft__stack *stack;
  weft_fn fn;
  void *arg;
  /* A task spawned onto another executor. */
  weft__exec *origin;         /* the spawner's executor (== exec when local) */
  weft__scope stub;           /* stands for it in its group's scope, at origin */
  int refs;                   /* atomic: origin's + pending cancel messages */
  int cancel_posted;          /* a CANCEL message was sent */
  weft__msg msg;              /* SPAWN, WAKE and DONE */
  weft__msg cancel_msg;
  void *tsan_fiber;
  void *asan_fake_stack;
  char name[32];
};

struct weft__exec {
  uv_loop_t loop;
  int id;                     /* 1..N */
  weft__runtime *rt;
  weft__inbox inbox;
  int polling;                /* atomic: may block in the loop's poll; a post
                                 signals async only then */
  uv_async_t async;
  size_t remote_waits;        /* tasks in weft_park_remote(): another thread
                                 will wake them */
  int stop;                   /* atomic: leave the loop once no task is live */
  void *tsan_main_fiber;
  weft__ctx main_ctx;         /* the thread's own context, running the loop */
  weft__task *current;        /* running task, NULL while in main_ctx */
  weft__task *ready_head;
  weft__task *ready_tail;
  weft__task *zombie;         /* finished task whose stack is to be released */
  size_t live_tasks;
  int root_result;            /* the root task's result */
  /* Counts kept plainly on the hot paths and added to the runtime's
   * metrics once per loop turn (weft__exec_flush_metrics). */
  uint64_t n_spawned, n_ended, n_switches, n_chan_sends, n_chan_recvs;
  uint64_t f_spawned, f_ended, f_switches, f_chan_sends, f_chan_recvs;
  unsigned turn_budget;       /* direct task-to-task switches left this turn */
  /* Timers. */
  uv_timer_t uv_timer;
  weft__timer **heap;
  size_t heap_len;
  size_t heap_cap;
  uint64_t idle_spin_ns;      /* weft_opts.idle_spin_us; 0: no watch */
  int handles_strict;         /* weft_opts.handles_strict */
  size_t handles_left;        /* handles left open, found at shutdown */
  size_t stale_timers;        /* heap entries of removed deadlines: they
                                 wake nobody, so the deadlock check looks
                                 past them */
  int64_t armed_deadline;
  /* Stacks. */
  size_t stack_default;
  weft__stack *stack_pool;
  size_t stack_pool_len;
  size_t stack_pool_max;
  weft__task *task_pool;
  size_t task_pool_len;
  /* Signals (io_signal.c). */
  void *signals;
  /* ASan: the thread stack's bounds and its fake stack while switched out. */
  void *asan_main_fake_stack;
  const void *asan_main_bottom;
  size_t asan_main_size;
  weft__scope root_scope;
};

struct weft__runtime {
  int n;                      /* executors */
  weft__exec **execs;
  unsigned next;              /* atomic: round robin for WEFT_EXEC_NEXT */
};

/* Whether messages wait in e's inbox (or one is half-way through a push). */
static inline int weft__inbox_busy(weft__exec *e) {
  return __atomic_load_n(&e->inbox.head, __ATOMIC_ACQUIRE) != e->inbox.tail;
}

extern WEFT__TLS weft__exec *weft__current_exec;
extern WEFT__TLS weft__task *weft__current_task;

/* The running task, or NULL outside a task. */
static inline weft__task *weft__self(void) { return weft__current_task; }

/*
 * Suspends the calling task until weft__wake(). Returns the value passed to
 * weft__wake(), except that when the task's scope was cancelled while it was
 * parked (on_cancel was called) it returns the cancellation code. If the
 * scope is already cancelled on entry, on_cancel is called at once; the task
 * still parks until it is woken. on_cancel may be NULL for waits that cannot
 * be interrupted (the task then waits for the wake regardless).
 */
int weft__park(weft__cancel_fn on_cancel, void *data);

/* Makes a parked task ready with result. Called from the task's executor
 * thread only (libuv callbacks, other tasks, cancel functions). */
void weft__wake(weft__task *t, int result);

/* The cancellation code of the calling task's current scope (0 if none).
 * Blocking calls check it before they start an operation. */
static inline int weft__check_cancel(void) {
  weft__task *t = weft__current_task;
  return t ? t->scope->cancelled : 0;
}

/* Puts t on its executor's ready queue. */
static inline void weft__ready(weft__task *t) {
  weft__exec *e = t->exec;
  t->state = WEFT__TASK_READY;
  t->next_ready = NULL;
  if (e->ready_tail != NULL)
    e->ready_tail->next_ready = t;
  else
    e->ready_head = t;
  e->ready_tail = t;
}

/* weft__park() for a caller that has just seen its scope not cancelled
 * (on this thread, so it cannot have been cancelled since): no second look. */
int weft__park_unchecked(weft__task *self, weft__cancel_fn on_cancel, void *data);

/* weft__wake() for a task known to be parked on this executor and not the
 * caller (a LOCAL channel's claimed waiter). */
static inline void weft__wake_parked(weft__task *t, int result) {
  t->wake_result = result;
  t->cancel_fn = NULL;
  weft__ready(t);
  if (WEFT__UNLIKELY(weft__current_task == NULL)) uv_stop(&t->exec->loop);
}

/* Allocates a task (and its stack) ready to be started on e; counted live. */
int weft__task_new(weft__exec *e, const weft_task_opts *opts, weft_fn fn,
                   void *arg, weft__task **out);
/* Runs ready tasks from the executor's own context. */
void weft__exec_run_ready(weft__exec *e);
/* When a task's function has returned, on its own stack: joins the groups it
 * left open and leaves its scope tree. */
void weft__task_exit_scopes(weft__task *t);
/* Group bookkeeping for an ended task, on the group's executor. */
void weft__group_task_done(weft__task *t);

/* Called by a scope cancellation for a task whose current scope is s. */
void weft__task_cancel_wait(weft__task *t, int code);

/* Group internals used by scope.c. */
weft__scope *weft__group_scope(weft_group *g);

/* ---- I/O (io_signal.c) -------------------------------------------------- */

/* Closes the signal handles that weft_signal_wait() opened on e and frees
 * the registry; the executor calls it at shutdown, before its last uv_run().
 * Safe when no signal was ever waited for. */
void weft__signals_close(weft__exec *e);

/* ---- Sanitizers --------------------------------------------------------- */

#if defined(__SANITIZE_ADDRESS__)
#define WEFT__ASAN 1
#endif
#if defined(__SANITIZE_THREAD__)
#define WEFT__TSAN 1
#endif
#if defined(__has_feature)
#if __has_feature(address_sanitizer) && !defined(WEFT__ASAN)
#define WEFT__ASAN 1
#endif
#if __has_feature(thread_sanitizer) && !defined(WEFT__TSAN)
#define WEFT__TSAN 1
#endif
#endif

/* A full fence. ThreadSanitizer does not model fences: there a sequentially
 * consistent read-modify-write stands in (a full barrier on x86 and ARMv8
 * all the same). */
#if defined(WEFT__TSAN)
extern int weft__fence_word;
#define WEFT__FULL_FENCE() \
  ((void)__atomic_fetch_add(&weft__fence_word, 0, __ATOMIC_SEQ_CST))
#else
#define WEFT__FULL_FENCE() __atomic_thread_fence(__ATOMIC_SEQ_CST)
#endif

#endif /* WEFT_INTERNAL_H */
