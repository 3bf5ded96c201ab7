#define _GNU_SOURCE /* pthread_getattr_np */
/* The executor: a libuv loop and a ready queue on one thread. It alternates
 * between running ready tasks and one turn of the loop, which delivers I/O
 * completions and timer expiries that make tasks ready again.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* Direct task-to-task switches before the loop gets a turn. */
#define WEFT__TURN_BUDGET 1024u

static void weft__exec_stack_bounds(weft__exec *e) {
#if defined(__linux__) || defined(__FreeBSD__)
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

static int weft__exec_init(weft__exec *e, const weft_opts *opts) {
  memset(e, 0, sizeof *e);
  int err = uv_loop_init(&e->loop);
  if (err != 0) return err;
  uv_timer_init(&e->loop, &e->uv_timer);
  e->armed_deadline = -1;
  e->stack_default = opts && opts->stack_size ? opts->stack_size : WEFT_STACK_DEFAULT;
  e->stack_pool_max = opts && opts->stack_pool ? opts->stack_pool : 1024;
  weft__exec_stack_bounds(e);
  weft__scope_init(&e->root_scope, NULL, NULL, 0, -1);
  e->root_scope.exec = e;
  return 0;
}

static void weft__close_leftover(uv_handle_t *h, void *arg) {
  size_t *n = arg;
  if (!uv_is_closing(h)) {
    (*n)++;
    uv_close(h, NULL);
  }
}

static void weft__exec_fini(weft__exec *e) {
  weft__signals_close(e);
  uv_close((uv_handle_t *)&e->uv_timer, NULL);
  uv_run(&e->loop, UV_RUN_NOWAIT);
  /* Anything still open was leaked by the program: close it so the loop can
   * be closed, and say so. */
  size_t leftover = 0;
  uv_walk(&e->loop, weft__close_leftover, &leftover);
  if (leftover != 0)
    weft_log(WEFT_LOG_WARN, "handles left open when the runtime ended",
             "count=%zu", leftover);
  while (uv_run(&e->loop, UV_RUN_DEFAULT) != 0) {
  }
  uv_loop_close(&e->loop);
  weft__stack_pool_drain(e);
  while (e->task_pool != NULL) {
    weft__task *t = e->task_pool;
    e->task_pool = t->next_ready;
    weft__ctx_free(&t->ctx);
    free(t);
  }
  weft__ctx_free(&e->main_ctx);
  free(e->heap);
}

static void weft__exec_loop(weft__exec *e) {
  for (;;) {
    e->turn_budget = WEFT__TURN_BUDGET;
    weft__exec_run_ready(e);
    if (e->live_tasks == 0) break;
    if (e->ready_head != NULL) {
      /* The budget ran out: poll for I/O without blocking, then go on. */
      uv_run(&e->loop, UV_RUN_NOWAIT);
      weft__timers_run(e, weft_now());
      continue;
    }
    if (weft__timers_run(e, weft_now()) > 0) continue;
    weft__timers_arm(e);
    if (!uv_loop_alive(&e->loop)) {
      fprintf(stderr,
              "weft: deadlock: %zu task(s) wait and nothing can wake them\n",
              e->live_tasks);
      abort();
    }
    uv_run(&e->loop, UV_RUN_ONCE);
    weft__timers_run(e, weft_now());
  }
}

int weft_main_opts(const weft_opts *opts, weft_fn fn, void *arg) {
  if (weft__current_exec != NULL) return UV_EBUSY;
  if (fn == NULL) return UV_EINVAL;
  if (opts && opts->executors > 1) return UV_ENOTSUP;
  if (opts && opts->stack_size && opts->stack_size < WEFT_STACK_MIN)
    return WEFT_ESTACKSIZE;
  weft__exec *e = malloc(sizeof *e);
  if (e == NULL) return UV_ENOMEM;
  int err = weft__exec_init(e, opts);
  if (err != 0) {
    free(e);
    return err;
  }
  weft__current_exec = e;
  weft__stack_guard_init();
  weft__task *root;
  weft_task_opts topts = {"main", 0};
  err = weft__task_new(e, &topts, fn, arg, &root);
  if (err == 0) {
    weft__scope_init(&root->root, &e->root_scope, root, 0, -1);
    root->scope = &root->root;
    weft__ready(root);
    weft__exec_loop(e);
    err = e->root_result;
  }
  weft__scope_fini(&e->root_scope);
  weft__exec_fini(e);
  weft__stack_guard_fini();
  weft__current_exec = NULL;
  free(e);
  return err;
}

int weft_main(weft_fn fn, void *arg) { return weft_main_opts(NULL, fn, arg); }

struct uv_loop_s *weft_loop(void) {
  weft__exec *e = weft__current_exec;
  return e ? &e->loop : NULL;
}
