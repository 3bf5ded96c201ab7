#define _GNU_SOURCE /* pthread_getattr_np */
/* Executors: one libuv loop and one ready queue per thread. An executor
 * alternates between running ready tasks and one turn of its loop, which
 * delivers I/O completions, timer expiries and messages from other
 * executors, each of which makes tasks ready again.
 */
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "metrics_internal.h"

#if defined(WEFT__TSAN)
#include <sanitizer/tsan_interface.h>
#endif

/* Direct task-to-task switches before the loop gets a turn. */
#define WEFT__TURN_BUDGET 1024u
/* How long an idle executor of several watches its inbox by default
 * (weft_opts.idle_spin_us; see exec_idle_spin). */
#define WEFT__IDLE_SPIN_US 50
#define WEFT__IDLE_SPIN_MAX_US 1000

/* ---- The inbox: an intrusive MPSC queue (Vyukov) ----------------------- */

static void inbox_init(weft__inbox *q) {
  q->stub.next = NULL;
  q->head = &q->stub;
  q->tail = &q->stub;
}

static void inbox_push(weft__inbox *q, weft__msg *m) {
  __atomic_store_n(&m->next, NULL, __ATOMIC_RELAXED);
  weft__msg *prev = __atomic_exchange_n(&q->head, m, __ATOMIC_ACQ_REL);
  __atomic_store_n(&prev->next, m, __ATOMIC_RELEASE);
}

/* Returns the oldest message, or NULL when the queue is empty or a producer
 * is half-way through a push (its uv_async_send will call us again). */
static weft__msg *inbox_pop(weft__inbox *q) {
  weft__msg *tail = q->tail;
  weft__msg *next = __atomic_load_n(&tail->next, __ATOMIC_ACQUIRE);
  if (tail == &q->stub) {
    if (next == NULL) return NULL;
    q->tail = next;
    tail = next;
    next = __atomic_load_n(&next->next, __ATOMIC_ACQUIRE);
  }
  if (next != NULL) {
    q->tail = next;
    return tail;
  }
  if (tail != __atomic_load_n(&q->head, __ATOMIC_ACQUIRE)) return NULL;
  inbox_push(q, &q->stub);
  next = __atomic_load_n(&tail->next, __ATOMIC_ACQUIRE);
  if (next != NULL) {
    q->tail = next;
    return tail;
  }
  return NULL;
}

#if defined(WEFT__TSAN)
int weft__fence_word;
#endif

void weft__post(weft__exec *e, weft__msg *m) {
  inbox_push(&e->inbox, m);
  /* The read of e->polling (and uv_async_send's own read of its pending
   * flag) must not move before the push: the executor stores polling, then
   * looks at its inbox, with a full fence between (exec_poll), so
   * either it sees the message or this sees it polling. An executor that
   * is awake finds the message without the system call. */
  WEFT__FULL_FENCE();
  if (__atomic_load_n(&e->polling, __ATOMIC_RELAXED)) uv_async_send(&e->async);
}

void weft__wake_any(weft__task *t, int result) {
  if (t->exec == weft__current_exec) {
    weft__wake(t, result);
    return;
  }
  t->msg.type = WEFT__MSG_WAKE;
  t->msg.code = result;
  t->msg.task = t;
  weft__post(t->exec, &t->msg);
}

static void task_unref(weft__task *t) {
  if (__atomic_sub_fetch(&t->refs, 1, __ATOMIC_ACQ_REL) != 0) return;
  weft__ctx_free(&t->ctx);
  free(t);
}

/* Starts task t on e, its executor: its root scope under the executor's,
 * cancelled with cancel_code at once if that is not 0, then ready. */
static void exec_start_task(weft__exec *e, weft__task *t, int cancel_code) {
  weft__scope_init(&t->root, &e->root_scope, t, 0, -1);
  t->scope = &t->root;
  if (cancel_code) weft__scope_cancel(&t->root, cancel_code);
  e->live_tasks++;
  weft__ready(t);
}

static void inbox_run(weft__exec *e) {
  weft__msg *m;
  while ((m = inbox_pop(&e->inbox)) != NULL) {
    weft__task *t = m->task;
    switch (m->type) {
    case WEFT__MSG_SPAWN:
      exec_start_task(e, t, m->code);
      break;
    case WEFT__MSG_WAKE:
      weft__wake(t, m->code);
      break;
    case WEFT__MSG_CANCEL:
      if (t->state != WEFT__TASK_DONE) weft__scope_cancel(&t->root, m->code);
      task_unref(t);
      break;
    case WEFT__MSG_DONE:
      weft__group_task_done(t);
      task_unref(t);
      break;
    case WEFT__MSG_STOP:
      __atomic_store_n(&e->stop, 1, __ATOMIC_RELAXED);
      break;
    }
  }
}

static void async_cb(uv_async_t *h) { inbox_run(h->data); }

/* ---- Life of an executor ------------------------------------------------ */

static void exec_stack_bounds(weft__exec *e) {
#if defined(WEFT_HAVE_PTHREAD_GETATTR_NP) /* cmake/weftPlatform.cmake */
  pthread_attr_t attr;
  void *addr;
  size_t size;
  if (pthread_getattr_np(pthread_self(), &attr) == 0) {
    if (pthread_attr_getstack(&attr, &addr, &size) == 0) {
      e->asan_main_bottom = addr;
      e->asan_main_size = size;
    }
    pthread_attr_destroy(&attr);
  }
#else
  (void)e;
#endif
}

static int exec_init(weft__exec *e, weft__runtime *rt, int id,
                           const weft_opts *opts) {
  memset(e, 0, sizeof *e);
  int err = uv_loop_init(&e->loop);
  if (err != 0) return err;
  err = uv_async_init(&e->loop, &e->async, async_cb);
  if (err != 0) {
    uv_loop_close(&e->loop);
    return err;
  }
  e->async.data = e;
  uv_timer_init(&e->loop, &e->uv_timer);
  inbox_init(&e->inbox);
  e->id = id;
  e->rt = rt;
  e->armed_deadline = -1;
  e->stack_default = opts && opts->stack_size ? opts->stack_size : WEFT_STACK_DEFAULT;
  e->stack_pool_max = opts && opts->stack_pool ? opts->stack_pool : 1024;
  int spin_us = opts && opts->idle_spin_us != 0 ? opts->idle_spin_us : WEFT__IDLE_SPIN_US;
  if (spin_us > WEFT__IDLE_SPIN_MAX_US) spin_us = WEFT__IDLE_SPIN_MAX_US;
  e->idle_spin_ns = spin_us > 0 ? (uint64_t)spin_us * 1000u : 0;
  e->handles_strict = opts ? opts->handles_strict : 0;
  weft__scope_init(&e->root_scope, NULL, NULL, 0, -1);
  e->root_scope.exec = e;
  return 0;
}

static void close_leftover(uv_handle_t *h, void *arg) {
  size_t *n = arg;
  if (!uv_is_closing(h)) {
    (*n)++;
    uv_close(h, NULL);
  }
}

/* Runs on the executor's own thread once its tasks have all ended. */
static void exec_shutdown(weft__exec *e) {
  weft__signals_close(e);
  uv_close((uv_handle_t *)&e->uv_timer, NULL);
  uv_close((uv_handle_t *)&e->async, NULL);
  uv_run(&e->loop, UV_RUN_NOWAIT);
  /* Anything still open was leaked by the program: close it so the loop can
   * be closed, and say so (weft_main_opts() makes it an error when asked). */
  size_t leftover = 0;
  uv_walk(&e->loop, close_leftover, &leftover);
  if (leftover != 0)
    weft_log(e->handles_strict ? WEFT_LOG_ERROR : WEFT_LOG_WARN,
             "handles left open when the runtime ended", "count=%zu", leftover);
  e->handles_left = leftover;
  while (uv_run(&e->loop, UV_RUN_DEFAULT) != 0) {
  }
  /* Messages may still reference tasks (a cancel crossing a task's end). */
  inbox_run(e);
  uv_loop_close(&e->loop);
  weft__scope_fini(&e->root_scope);
  weft__stack_pool_drain(e);
  while (e->task_pool != NULL) {
    weft__task *t = e->task_pool;
    e->task_pool = t->next_ready;
    weft__ctx_free(&t->ctx);
    free(t);
  }
  weft__ctx_free(&e->main_ctx);
  free(e->heap);
  e->heap = NULL;
}

/* Adds what the hot paths counted since the last turn to the metrics. */
static void weft__exec_flush_metrics(weft__exec *e) {
  weft_counter_add(weft__m_tasks_spawned, e->n_spawned - e->f_spawned);
  weft_gauge_add(weft__m_tasks_alive, (int64_t)(e->n_spawned - e->f_spawned) -
                                          (int64_t)(e->n_ended - e->f_ended));
  weft_counter_add(weft__m_context_switches, e->n_switches - e->f_switches);
  weft_counter_add(weft__m_chan_sends, e->n_chan_sends - e->f_chan_sends);
  weft_counter_add(weft__m_chan_recvs, e->n_chan_recvs - e->f_chan_recvs);
  e->f_spawned = e->n_spawned;
  e->f_ended = e->n_ended;
  e->f_switches = e->n_switches;
  e->f_chan_sends = e->n_chan_sends;
  e->f_chan_recvs = e->n_chan_recvs;
}

/* Before one executor of several sleeps in the kernel, it watches its inbox
 * for a while: a message from another executor often follows soon, and
 * waking a sleeping thread costs tens of microseconds (more in a virtual
 * machine, and on a busy machine the woken thread then waits for a CPU).
 * The watch is bounded in time (a pause takes 10 to 150 ns depending on the
 * processor and the hypervisor) and yields the CPU now and then, so that
 * it does not keep another thread, maybe the one about to post, from
 * running. It lasts weft_opts.idle_spin_us (default 50 µs; programs that
 * wait on I/O rather than on each other may turn it off). Returns 1 when
 * messages came (and were handled). */
#define WEFT__IDLE_SPIN_EAGER 256 /* pauses before the first yield: a quick
                                     answer is caught without a system call */
#define WEFT__IDLE_SPIN_YIELD 32  /* pauses between two looks at the clock
                                     (and yields, after the eager ones) */

static int exec_idle_spin(weft__exec *e) {
  if (e->idle_spin_ns == 0) return 0;
  uint64_t deadline = uv_hrtime() + e->idle_spin_ns;
  /* Not past the next timer (I/O that comes meanwhile waits for the end of
   * the watch: hence the bound on idle_spin_us). */
  if (e->heap_len != 0) {
    uint64_t next = (uint64_t)e->heap[0]->deadline * 1000000u;
    if (next < deadline) deadline = next;
  }
  for (unsigned i = 1;; i++) {
    if (weft__inbox_busy(e)) {
      inbox_run(e);
      weft_counter_inc(weft__m_idle_spin);
      return 1;
    }
    if (i % WEFT__IDLE_SPIN_YIELD == 0) {
      if (uv_hrtime() >= deadline) return 0;
      if (i > WEFT__IDLE_SPIN_EAGER) sched_yield();
    }
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
  }
}

/* One turn of the loop that may block: says it polls (so that posts
 * signal it) and looks at the inbox once more before it blocks. */
static void exec_poll(weft__exec *e) {
  __atomic_store_n(&e->polling, 1, __ATOMIC_RELAXED);
  WEFT__FULL_FENCE();
  if (weft__inbox_busy(e))
    inbox_run(e);
  else
    uv_run(&e->loop, UV_RUN_ONCE);
  __atomic_store_n(&e->polling, 0, __ATOMIC_RELAXED);
}

static void exec_loop(weft__exec *e) {
  int alone = e->rt->n == 1;
  e->turn_budget = WEFT__TURN_BUDGET;
  for (;;) {
    /* Posts to an executor that is not polling do not signal it. */
    if (weft__inbox_busy(e)) inbox_run(e);
    if (e->ready_head != NULL) {
      uint64_t t0 = uv_hrtime();
      weft__exec_run_ready(e);
      weft_histogram_record(weft__m_loop_turn, uv_hrtime() - t0);
      weft__exec_flush_metrics(e);
    }
    if (e->live_tasks == 0) {
      if (e->id == 1) break;
      if (__atomic_load_n(&e->stop, __ATOMIC_RELAXED)) break;
    }
    if (e->ready_head != NULL) {
      /* Tasks made ready on this context (a task that ended woke its
       * joiner) run first while the turn's budget lasts; once it is spent,
       * poll for I/O without blocking, then go on. */
      if (e->turn_budget > 0) continue;
      uv_run(&e->loop, UV_RUN_NOWAIT);
      weft__timers_run(e, weft_now());
      e->turn_budget = WEFT__TURN_BUDGET;
      continue;
    }
    if (weft__timers_run(e, weft_now()) > 0) continue;
    weft__timers_arm(e);
    if (alone && e->remote_waits == 0) {
      /* The inbox's async handle is always active: look past it (unless a
       * task waits for another thread, which posts to the inbox). */
      uv_unref((uv_handle_t *)&e->async);
      /* Nor at the timer, when all it waits for are removed deadlines. */
      int stale_only = e->heap_len != 0 && e->stale_timers == e->heap_len;
      if (stale_only) uv_unref((uv_handle_t *)&e->uv_timer);
      int alive = uv_loop_alive(&e->loop);
      if (stale_only) uv_ref((uv_handle_t *)&e->uv_timer);
      uv_ref((uv_handle_t *)&e->async);
      if (!alive) {
        fprintf(stderr,
                "weft: deadlock: %zu task(s) wait and nothing can wake them\n",
                e->live_tasks);
        abort();
      }
    }
    if (!alone && exec_idle_spin(e)) continue;
    if (!alone) weft_counter_inc(weft__m_idle_sleep);
    exec_poll(e);
    weft__timers_run(e, weft_now());
    e->turn_budget = WEFT__TURN_BUDGET;
  }
}

static void exec_enter(weft__exec *e) {
  weft__current_exec = e;
  exec_stack_bounds(e);
#if defined(WEFT__TSAN)
  e->tsan_main_fiber = __tsan_get_current_fiber();
#endif
  weft__stack_guard_init();
}

static void exec_leave(weft__exec *e) {
  exec_shutdown(e);
  weft__stack_guard_fini();
  weft__current_exec = NULL;
}

static void exec_thread(void *arg) {
  weft__exec *e = arg;
  exec_enter(e);
  exec_loop(e);
  exec_leave(e);
}

/* The number of executors opts asks for (0: one per CPU). Returns it, or
 * UV_EINVAL when it is more than 1024. */
static int main_executor_count(const weft_opts *opts) {
  int n = opts && opts->executors > 0 ? opts->executors : 0;
  if (n == 0) n = (int)uv_available_parallelism();
  if (n < 1) n = 1;
  return n > 1024 ? UV_EINVAL : n;
}

/* Makes rt's n executors, in rt->execs (allocated by the caller). Returns
 * 0 or an error, with the number made in *made either way. */
static int main_make_executors(weft__runtime *rt, const weft_opts *opts, int *made) {
  for (*made = 0; *made < rt->n; (*made)++) {
    weft__exec *e = malloc(sizeof *e);
    if (e == NULL) return UV_ENOMEM;
    int err = exec_init(e, rt, *made + 1, opts);
    if (err != 0) {
      free(e);
      return err;
    }
    rt->execs[*made] = e;
  }
  return 0;
}

/* Starts a thread for each executor but the first (the caller's own).
 * Returns 0 or an error, with the number of executors running (the
 * caller's included) in *started either way. */
static int main_start_threads(weft__runtime *rt, uv_thread_t *threads, int *started) {
  for (*started = 1; *started < rt->n; (*started)++) {
    int err = uv_thread_create(&threads[*started], exec_thread, rt->execs[*started]);
    if (err != 0) return err;
  }
  return 0;
}

/* Runs fn(arg) as the root task on e, the calling thread's executor, until
 * every task of e has ended. Returns fn's result or an error. */
static int main_run_root(weft__exec *e, weft_fn fn, void *arg) {
  weft__task *root;
  weft_task_opts topts = {.name = "main"};
  int err = weft__task_new(e, &topts, fn, arg, &root);
  if (err != 0) return err;
  exec_start_task(e, root, 0);
  exec_loop(e);
  return e->root_result;
}

/* Tells the started executors but the first to finish, and waits for
 * their threads. */
static void main_stop_threads(weft__runtime *rt, uv_thread_t *threads, int started) {
  weft__msg *stops = calloc((size_t)rt->n, sizeof *stops);
  for (int i = 1; i < started; i++) {
    if (stops != NULL) {
      stops[i].type = WEFT__MSG_STOP;
      weft__post(rt->execs[i], &stops[i]);
    } else {
      __atomic_store_n(&rt->execs[i]->stop, 1, __ATOMIC_RELAXED);
      uv_async_send(&rt->execs[i]->async);
    }
  }
  for (int i = 1; i < started; i++) uv_thread_join(&threads[i]);
  free(stops);
}

/* Frees the made executors; those made but never started are shut down
 * here first. Returns the number of handles the program left open on them. */
static size_t main_free_executors(weft__runtime *rt, int made, int started) {
  size_t left = 0;
  for (int i = 0; i < made; i++) {
    if (i >= started && i > 0) {
      weft__current_exec = rt->execs[i];
      exec_shutdown(rt->execs[i]);
      weft__current_exec = NULL;
    }
    left += rt->execs[i]->handles_left;
    free(rt->execs[i]);
  }
  return left;
}

int weft_main_opts(const weft_opts *opts, weft_fn fn, void *arg) {
  if (weft__current_exec != NULL) return UV_EBUSY;
  if (fn == NULL) return UV_EINVAL;
  if (opts && opts->stack_size && opts->stack_size < WEFT_STACK_MIN)
    return WEFT_ESTACKSIZE;
  /* Before any executor thread exists, so they all see the handles. */
  weft__metrics_builtin_init();
  int n = main_executor_count(opts);
  if (n < 0) return n;

  weft__runtime rt;
  rt.n = n;
  rt.next = 0;
  rt.execs = calloc((size_t)n, sizeof *rt.execs);
  uv_thread_t *threads = calloc((size_t)n, sizeof *threads);
  int made = 0, started = 1;
  int err = rt.execs && threads ? 0 : UV_ENOMEM;
  if (err == 0) err = main_make_executors(&rt, opts, &made);
  if (err == 0) err = main_start_threads(&rt, threads, &started);
  weft__exec *e = rt.execs ? rt.execs[0] : NULL;
  if (e != NULL) exec_enter(e);
  if (err == 0) err = main_run_root(e, fn, arg);
  /* Every task has ended (or none ever ran): the others finish too. */
  main_stop_threads(&rt, threads, started);
  if (e != NULL) exec_leave(e);
  size_t left = main_free_executors(&rt, made, started);
  if (err == 0 && left != 0 && opts && opts->handles_strict) err = WEFT_EHANDLES;
  free(rt.execs);
  free(threads);
  return err;
}

int weft_main(weft_fn fn, void *arg) {
  weft_opts opts = {.executors = 1};
  return weft_main_opts(&opts, fn, arg);
}

struct uv_loop_s *weft_loop(void) {
  weft__exec *e = weft__current_exec;
  return e ? &e->loop : NULL;
}

int weft_executor_id(void) {
  weft__exec *e = weft__current_exec;
  return e ? e->id : 0;
}

int weft_executor_count(void) {
  weft__exec *e = weft__current_exec;
  return e ? e->rt->n : 0;
}
