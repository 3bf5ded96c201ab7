/* Task groups: structured concurrency. A group's scope is a child of the
 * scope it was opened in, and every task in it runs under that scope, so
 * cancellation flows down through nested groups without any bookkeeping
 * beyond the scope tree.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

typedef struct {
  int err;
  char name[32];
} weft__group_error;

struct weft_group {
  weft__scope scope;
  weft__task *owner;          /* the task that opened it and must join it */
  weft_group *owner_next;     /* the owner's list of open groups */
  weft_group *owner_prev;
  size_t live;                /* tasks not yet ended */
  int policy;
  int result;                 /* first error, 0 while there is none */
  weft__task *joiner;         /* task parked in weft_group_wait() */
  weft__group_error *errors;
  size_t nerrors;
  size_t errors_cap;
};

weft__scope *weft__group_scope(weft_group *g) { return &g->scope; }

weft_group *weft_group_open(int policy) {
  weft__task *t = weft__current_task;
  if (t == NULL) return NULL;
  weft_group *g = calloc(1, sizeof *g);
  if (g == NULL) return NULL;
  g->owner = t;
  g->policy = policy == WEFT_COLLECT ? WEFT_COLLECT : WEFT_FAIL_FAST;
  weft__scope_init(&g->scope, t->scope, NULL, 0, -1);
  g->owner_next = t->open_groups;
  if (t->open_groups != NULL) t->open_groups->owner_prev = g;
  t->open_groups = g;
  return g;
}

static weft__exec *weft__spawn_target(weft__exec *self, int executor) {
  weft__runtime *rt = self->rt;
  if (executor == 0) return self;
  if (executor == WEFT_EXEC_NEXT) {
    unsigned i = __atomic_fetch_add(&rt->next, 1, __ATOMIC_RELAXED);
    return rt->execs[i % (unsigned)rt->n];
  }
  if (executor < 1 || executor > rt->n) return NULL;
  return rt->execs[executor - 1];
}

int weft_spawn_opts(weft_group *g, const weft_task_opts *opts, weft_fn fn,
                    void *arg) {
  weft__task *self = weft__current_task;
  if (self == NULL) return WEFT_ENOTASK;
  if (g == NULL || fn == NULL) return UV_EINVAL;
  if (g->owner->exec != self->exec) return WEFT_EGROUP;
  weft__exec *target = weft__spawn_target(self->exec, opts ? opts->executor : 0);
  if (target == NULL) return UV_EINVAL;
  weft__task *t;
  int err = weft__task_new(self->exec, opts, fn, arg, &t);
  if (err != 0) return err;
  t->group = g;
  g->live++;
  if (target == self->exec) {
    weft__scope_init(&t->root, &g->scope, t, 0, -1);
    t->scope = &t->root;
    target->live_tasks++;
    weft__ready(t);
    return 0;
  }
  /* A stand-in scope in the group carries cancellation over to the task,
   * whose own scopes live on its executor. */
  t->exec = target;
  weft__scope_init(&t->stub, &g->scope, NULL, 0, -1);
  t->stub.remote = t;
  t->msg.type = WEFT__MSG_SPAWN;
  t->msg.code = t->stub.cancelled;
  weft__post(target, &t->msg);
  return 0;
}

int weft_spawn(weft_group *g, weft_fn fn, void *arg) {
  return weft_spawn_opts(g, NULL, fn, arg);
}

int weft_spawn_named(weft_group *g, const char *name, weft_fn fn, void *arg) {
  weft_task_opts opts = {.name = name};
  return weft_spawn_opts(g, &opts, fn, arg);
}

static void weft__group_record(weft_group *g, weft__task *t) {
  if (g->nerrors == g->errors_cap) {
    size_t cap = g->errors_cap ? g->errors_cap * 2 : 4;
    weft__group_error *errors = realloc(g->errors, cap * sizeof *errors);
    if (errors == NULL) return; /* The first error is still in g->result. */
    g->errors = errors;
    g->errors_cap = cap;
  }
  weft__group_error *rec = &g->errors[g->nerrors++];
  rec->err = t->result;
  memcpy(rec->name, t->name, sizeof rec->name);
}

void weft__task_exit_scopes(weft__task *t) {
  /* A task may not outlive its groups: join what it left open. */
  while (t->open_groups != NULL) {
    weft_group *g = t->open_groups;
    weft_log(WEFT_LOG_WARN, "task ended with a group still open",
             "live=%zu action=cancel-and-join", g->live); /* NOLINT(clang-analyzer-unix.Malloc): g->owner is t, so the join unlinked g */
    weft_group_cancel(g);
    weft_group_join(g);
  }
  if (t->scope != &t->root) {
    weft_log(WEFT_LOG_ERROR, "task returned inside a scope it did not leave",
             "task=%s", t->name);
    abort();
  }
  weft__scope_fini(&t->root);
}

void weft__group_task_done(weft__task *t) {
  weft_group *g = t->group;
  if (g == NULL) {
    t->origin->root_result = t->result;
    return;
  }
  if (t->stub.remote != NULL) weft__scope_fini(&t->stub);
  if (t->result < 0) {
    weft__group_record(g, t);
    if (g->result == 0) {
      g->result = t->result;
      if (g->policy == WEFT_FAIL_FAST) weft__scope_cancel(&g->scope, UV_ECANCELED);
    }
  }
  if (--g->live == 0 && g->joiner != NULL) weft__wake(g->joiner, 0);
}

int weft_group_wait(weft_group *g) {
  weft__task *t = weft__current_task;
  if (t == NULL) return WEFT_ENOTASK;
  if (g == NULL || g->owner != t) return WEFT_EGROUP;
  /* Not a cancellation point in itself: cancelling the caller cancels the
   * tasks, which live inside its scope, and they end promptly. */
  while (g->live > 0) {
    g->joiner = t;
    weft__park(NULL, NULL);
    g->joiner = NULL;
  }
  if (t->scope->cancelled) return t->scope->cancelled;
  return g->result;
}

int weft_group_join(weft_group *g) {
  int r = weft_group_wait(g);
  if (r == WEFT_ENOTASK || r == WEFT_EGROUP) return r;
  weft__task *t = g->owner;
  if (g->owner_prev != NULL)
    g->owner_prev->owner_next = g->owner_next;
  else
    t->open_groups = g->owner_next;
  if (g->owner_next != NULL) g->owner_next->owner_prev = g->owner_prev;
  weft__scope_fini(&g->scope);
  free(g->errors);
  free(g);
  return r;
}

void weft_group_cancel(weft_group *g) {
  if (g != NULL) weft__scope_cancel(&g->scope, UV_ECANCELED);
}

size_t weft_group_live(const weft_group *g) { return g ? g->live : 0; }

size_t weft_group_error_count(const weft_group *g) { return g ? g->nerrors : 0; }

int weft_group_error(const weft_group *g, size_t i, const char **name) {
  if (g == NULL || i >= g->nerrors) return 0;
  if (name != NULL) *name = g->errors[i].name;
  return g->errors[i].err;
}
