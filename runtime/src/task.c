/* Tasks: creation, the switch between tasks, parking and waking, yield and
 * sleep. A task switches directly to the next ready task when there is one
 * (no trip through the loop), up to a budget per loop turn so that I/O is
 * never starved by tasks that keep yielding.
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#if defined(WEFT__ASAN)
#include <sanitizer/common_interface_defs.h>
#endif
#if defined(WEFT__TSAN)
#include <sanitizer/tsan_interface.h>
#endif

WEFT__TLS weft__exec *weft__current_exec;
WEFT__TLS weft__task *weft__current_task;

/* ---- The ready queue ---------------------------------------------------- */

static weft__task *ready_pop(weft__exec *e) {
  weft__task *t = e->ready_head;
  if (t != NULL) {
    e->ready_head = t->next_ready;
    if (e->ready_head == NULL) e->ready_tail = NULL;
  }
  return t;
}

/* ---- Switching ---------------------------------------------------------- */

/* Frees what a finished task leaves behind. Runs in whichever context was
 * switched to after it, since a task cannot release the stack it runs on. */
static void release_zombie(weft__exec *e) {
  weft__task *z = e->zombie;
  if (WEFT__LIKELY(z == NULL)) return;
  e->zombie = NULL;
  weft__stack_put(e, z->stack);
  z->stack = NULL;
#if defined(WEFT__TSAN)
  __tsan_destroy_fiber(z->tsan_fiber);
  z->tsan_fiber = NULL;
#endif
  if (z->origin != e) {
    /* Its group lives on the spawner's executor, which frees it. */
    z->msg.type = WEFT__MSG_DONE;
    weft__post(z->origin, &z->msg);
    return;
  }
  if (e->task_pool_len < e->stack_pool_max) {
    z->next_ready = e->task_pool;
    e->task_pool = z;
    e->task_pool_len++;
  } else {
    weft__ctx_free(&z->ctx);
    free(z);
  }
}

/* Switches from the context of `from` (a task, or NULL for the executor's
 * own context) to `to` (likewise). `dying` says `from` will never resume. */
static void task_switch(weft__exec *e, weft__task *from, weft__task *to,
                         int dying) {
  weft__ctx *from_ctx = from ? &from->ctx : &e->main_ctx;
  weft__ctx *to_ctx = to ? &to->ctx : &e->main_ctx;
  e->n_switches++;
  e->current = to;
  weft__current_task = to;
#if defined(WEFT__ASAN)
  void **fake = from ? &from->asan_fake_stack : &e->asan_main_fake_stack;
  const void *bottom = to ? to->stack->base : e->asan_main_bottom;
  size_t size = to ? to->stack->size : e->asan_main_size;
  __sanitizer_start_switch_fiber(dying ? NULL : fake, bottom, size);
  weft__ctx_switch(from_ctx, to_ctx);
  __sanitizer_finish_switch_fiber(*fake, NULL, NULL);
#else
  (void)dying;
#if defined(WEFT__TSAN)
  __tsan_switch_to_fiber(to ? to->tsan_fiber : e->tsan_main_fiber, 0);
#endif
  weft__ctx_switch(from_ctx, to_ctx);
#endif
  release_zombie(e);
}

/* Gives the thread to the next ready task, or back to the executor's loop
 * when none is ready or the turn's budget is spent. */
static void run_next(weft__exec *e, weft__task *self, int dying) {
  weft__task *next = NULL;
  if (e->turn_budget > 0) {
    next = ready_pop(e);
    if (next != NULL) e->turn_budget--;
  }
  if (next == self) {
    self->state = WEFT__TASK_RUNNING;
    return;
  }
  if (next != NULL) next->state = WEFT__TASK_RUNNING;
  task_switch(e, self, next, dying);
}

/* Called on the executor's own context: runs ready tasks until they all wait
 * or the budget is spent. */
void weft__exec_run_ready(weft__exec *e) {
  weft__task *t = ready_pop(e);
  if (t == NULL) return;
  if (e->turn_budget > 0) e->turn_budget--;
  t->state = WEFT__TASK_RUNNING;
  task_switch(e, NULL, t, 0);
}

/* ---- Parking ------------------------------------------------------------ */

/* Parks t, the running task, until it is woken or cancelled through
 * on_cancel(t, data). With check set, a cancellation already pending is
 * acted upon first (on_cancel runs at once; a task it wakes does not
 * park). Returns the cancellation's code or the wake-up's result. */
static inline int park_task(weft__task *t, weft__cancel_fn on_cancel, void *data, int check) {
  t->state = WEFT__TASK_PARKED;
  t->cancel_fn = on_cancel;
  t->cancel_data = data;
  t->cancel_code = 0;
  if (check && on_cancel != NULL && t->scope->cancelled) {
    t->cancel_fn = NULL;
    t->cancel_code = t->scope->cancelled;
    on_cancel(t, data);
  }
  if (!check || t->state == WEFT__TASK_PARKED) run_next(t->exec, t, 0);
  t->cancel_fn = NULL;
  return t->cancel_code ? t->cancel_code : t->wake_result;
}

int weft__park(weft__cancel_fn on_cancel, void *data) {
  return park_task(weft__current_task, on_cancel, data, 1);
}

int weft__park_unchecked(weft__task *t, weft__cancel_fn on_cancel, void *data) {
  return park_task(t, on_cancel, data, 0);
}

void weft__wake(weft__task *t, int result) {
  if (t->state != WEFT__TASK_PARKED) return;
  t->wake_result = result;
  t->cancel_fn = NULL;
  if (t == weft__current_task) {
    /* Woken from its own cancel function before it switched away. */
    t->state = WEFT__TASK_RUNNING;
    return;
  }
  weft__ready(t);
  /* Woken from a libuv callback: libuv runs timers before it polls, and a
   * timer's callback would otherwise leave the task waiting until the next
   * I/O event. uv_stop() makes this turn's poll return at once. */
  if (weft__current_task == NULL) uv_stop(&t->exec->loop);
}

/* The public face of parking: weft_parked is a weft__task. */
typedef struct park_cancel {
  weft_park_cancel_fn fn;
  void *data;
} park_cancel;

static void park_cancel_trampoline(weft__task *t, void *data) {
  park_cancel *pc = data;
  pc->fn((weft_parked *)t, pc->data);
}

weft_parked *weft_park_self(void) { return (weft_parked *)weft__current_task; }

int weft_park(weft_park_cancel_fn on_cancel, void *data) {
  assert(weft__current_task != NULL);
  if (on_cancel == NULL) return weft__park(NULL, NULL);
  park_cancel pc = {on_cancel, data};
  return weft__park(park_cancel_trampoline, &pc);
}

void weft_unpark(weft_parked *task, int result) {
  if (task != NULL) weft__wake((weft__task *)task, result);
}

int weft_park_remote(weft_park_cancel_fn on_cancel, void *data) {
  weft__task *t = weft__current_task;
  assert(t != NULL);
  weft__exec *e = t->exec;
  e->remote_waits++;
  int r = weft_park(on_cancel, data);
  e->remote_waits--;
  return r;
}

void weft_unpark_remote(weft_parked *task, int result) {
  if (task != NULL) weft__wake_any((weft__task *)task, result);
}

void weft__task_cancel_wait(weft__task *t, int code) {
  weft__cancel_fn fn = t->cancel_fn;
  if (t->state != WEFT__TASK_PARKED || fn == NULL) return;
  t->cancel_fn = NULL;
  t->cancel_code = code;
  fn(t, t->cancel_data);
}

/* ---- Life of a task ----------------------------------------------------- */

static void task_entry(void *arg) {
  weft__task *t = arg;
  weft__exec *e = t->exec;
#if defined(WEFT__ASAN)
  __sanitizer_finish_switch_fiber(NULL, NULL, NULL);
#endif
  release_zombie(e);
  e->n_spawned++;
  t->result = t->fn(t->arg);
  weft__task_exit_scopes(t);
  /* A local task's group hears of its end now, so that a joiner it wakes is
   * the next task to run; a remote task's group hears once its stack is
   * released (release_zombie). */
  if (t->origin == e) weft__group_task_done(t);
  t->state = WEFT__TASK_DONE;
  e->live_tasks--;
  e->n_ended++;
  e->zombie = t;
  run_next(e, t, 1);
  abort(); /* A finished task is never resumed. */
}

/* Allocates t from e's pools, to run on e unless the caller says otherwise.
 * The caller links its scopes, counts it live and makes it ready. */
int weft__task_new(weft__exec *e, const weft_task_opts *opts, weft_fn fn,
                   void *arg, weft__task **out) {
  size_t size = opts && opts->stack_size ? opts->stack_size : e->stack_default;
  if (size < WEFT_STACK_MIN) return WEFT_ESTACKSIZE;
  weft__task *t = e->task_pool;
  if (t != NULL) {
    e->task_pool = t->next_ready;
    e->task_pool_len--;
  } else {
    t = calloc(1, sizeof *t);
    if (t == NULL) return UV_ENOMEM;
  }
  int err = weft__stack_get(e, size, &t->stack);
  if (err != 0) {
    weft__ctx_free(&t->ctx);
    free(t);
    return err;
  }
#if defined(WEFT_CTX_FIBER)
  err = weft__ctx_reserve(&t->ctx, t->stack->size);
  if (err != 0) {
    weft__stack_put(e, t->stack);
    weft__ctx_free(&t->ctx);
    free(t);
    return err;
  }
#endif
  t->exec = e;
  t->origin = e;
  t->refs = 1;
  t->cancel_posted = 0;
  t->msg.task = t;
  t->cancel_msg.task = t;
  t->stub.remote = NULL;
  t->root.remote = NULL;
  t->next_ready = NULL;
  t->group = NULL;
  t->group_prev = t->group_next = NULL;
  t->open_groups = NULL;
  t->fn = fn;
  t->arg = arg;
  t->result = 0;
  t->cancel_fn = NULL;
  t->cancel_data = NULL;
  t->wake_result = 0;
  t->cancel_code = 0;
  t->asan_fake_stack = NULL;
  t->name[0] = '\0';
  if (opts && opts->name) {
    strncpy(t->name, opts->name, sizeof t->name - 1);
    t->name[sizeof t->name - 1] = '\0';
  }
  weft__ctx_make(&t->ctx, t->stack->base, t->stack->size, task_entry, t);
#if defined(WEFT__TSAN)
  t->tsan_fiber = __tsan_create_fiber(0);
#endif
  *out = t;
  return 0;
}

/* ---- Public: yield, sleep, time, names ---------------------------------- */

int weft_yield(void) {
  weft__task *t = weft__current_task;
  if (t == NULL) return WEFT_ENOTASK;
  if (t->scope->cancelled) return t->scope->cancelled;
  weft__ready(t);
  run_next(t->exec, t, 0);
  return t->scope->cancelled;
}

typedef struct {
  weft__timer timer;
  weft__task *task;
} weft__sleeper;

static void sleep_expired(weft__timer *tm) {
  weft__sleeper *s = (weft__sleeper *)tm;
  weft__wake(s->task, 0);
}

static void sleep_cancel(weft__task *t, void *data) {
  weft__sleeper *s = data;
  weft__timer_stop(t->exec, &s->timer);
  weft__wake(t, 0);
}

int weft_sleep(int64_t ms) {
  weft__task *t = weft__current_task;
  if (t == NULL) return WEFT_ENOTASK;
  if (t->scope->cancelled) return t->scope->cancelled;
  if (ms <= 0) return weft_yield();
  weft__sleeper s;
  s.timer.heap_index = SIZE_MAX;
  s.task = t;
  weft__timer_start(t->exec, &s.timer, weft_now() + ms, sleep_expired);
  return weft__park(sleep_cancel, &s);
}

uint64_t weft_now_ns(void) { return uv_hrtime(); }

int64_t weft_now(void) { return (int64_t)(uv_hrtime() / 1000000u); }

void weft_task_set_name(const char *name) {
  weft__task *t = weft__current_task;
  if (t == NULL) return;
  strncpy(t->name, name ? name : "", sizeof t->name - 1);
  t->name[sizeof t->name - 1] = '\0';
}

const char *weft_task_name(void) {
  weft__task *t = weft__current_task;
  return t ? t->name : NULL;
}

int weft_in_task(void) { return weft__current_task != NULL; }

size_t weft_task_stack_size(void) {
  weft__task *t = weft__current_task;
  return t ? t->stack->size : 0;
}

size_t weft_task_trim_stack(void) {
#if !defined(WEFT_CTX_UCONTEXT) && !defined(WEFT_VALGRIND)
  weft__task *t = weft__current_task;
  if (t == NULL || t->stack == NULL) return 0;
  char here = 0; /* its address: where the frame is */
  return weft__stack_trim(t->stack, &here);
#else
  return 0;
#endif
}
