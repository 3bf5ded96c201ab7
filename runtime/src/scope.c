/* Scopes: a tree per executor. Every task's root scope hangs under its
 * group's scope, which hangs under the scope its group was opened in.
 * Cancelling a scope marks its whole subtree at once (shielded subtrees
 * excepted), so weft_cancelled() is a load, and wakes every task parked in a
 * scope of that subtree.
 */
#include <assert.h>
#include <stdlib.h>

#include "internal.h"

_Static_assert(sizeof(weft_scope) >= sizeof(weft__scope),
               "weft_scope is too small for weft__scope");

/* Tells the executor of a task spawned elsewhere to cancel it. */
static void weft__scope_cancel_remote(weft__task *t, int code) {
  if (t->cancel_posted) return;
  t->cancel_posted = 1;
  __atomic_fetch_add(&t->refs, 1, __ATOMIC_RELAXED);
  t->cancel_msg.type = WEFT__MSG_CANCEL;
  t->cancel_msg.code = code;
  t->cancel_msg.task = t;
  weft__post(t->exec, &t->cancel_msg);
}

static void weft__scope_mark(weft__scope *s, int code) {
  s->cancelled = code;
  if (s->owner != NULL && s->owner->scope == s)
    weft__task_cancel_wait(s->owner, code);
  else if (s->remote != NULL)
    weft__scope_cancel_remote(s->remote, code);
}

void weft__scope_cancel(weft__scope *root, int code) {
  if (root->cancelled) return;
  weft__scope_mark(root, code);
  /* Walk the subtree without recursion: it can be as deep as the program's
   * nesting of groups. A cancelled (or shielded) scope is not entered: its
   * subtree is already cancelled (or out of reach). */
  weft__scope *cur = root->first_child;
  while (cur != NULL) {
    if (!cur->shielded && !cur->cancelled) {
      weft__scope_mark(cur, code);
      if (cur->first_child != NULL) {
        cur = cur->first_child;
        continue;
      }
    }
    while (cur != root && cur->next_sibling == NULL) cur = cur->parent;
    if (cur == root) break;
    cur = cur->next_sibling;
  }
}

/* The timer of a scope's deadline fired. weft_scope_set_timeout() leaves
 * the heap entry in place when the deadline is removed or moves later, so
 * the entry may be stale: the real deadline is s->deadline, checked here. */
/* The scope's timer entry no longer stands for a deadline (it was removed
 * from the heap, or the scope has a deadline again). */
static void weft__scope_timer_fresh(weft__scope *s) {
  if (s->timer_stale) {
    s->timer_stale = 0;
    s->exec->stale_timers--;
  }
}

static void weft__scope_expired(weft__timer *tm) {
  weft__scope *s = (weft__scope *)((char *)tm - offsetof(weft__scope, timer));
  weft__scope_timer_fresh(s);
  if (s->deadline < 0) return;
  if (s->deadline > tm->deadline) {
    weft__timer_start(s->exec, tm, s->deadline, weft__scope_expired);
    return;
  }
  s->own_deadline_fired = 1;
  weft__scope_cancel(s, UV_ETIMEDOUT);
}

void weft__scope_init(weft__scope *s, weft__scope *parent, weft__task *owner,
                      int shielded, int64_t deadline) {
  s->parent = parent;
  s->first_child = NULL;
  s->prev_sibling = NULL;
  s->next_sibling = NULL;
  s->owner = owner;
  s->remote = NULL;
  s->exec = parent ? parent->exec : weft__current_exec;
  s->shielded = shielded;
  s->own_deadline_fired = 0;
  s->timer_stale = 0;
  s->cancelled = (parent != NULL && !shielded) ? parent->cancelled : 0;
  s->deadline = deadline;
  s->timer.heap_index = SIZE_MAX;
  if (parent != NULL) {
    s->next_sibling = parent->first_child;
    if (parent->first_child != NULL) parent->first_child->prev_sibling = s;
    parent->first_child = s;
  }
  if (deadline >= 0 && !s->cancelled) {
    if (deadline <= weft_now()) {
      s->own_deadline_fired = 1;
      s->cancelled = UV_ETIMEDOUT;
    } else {
      weft__timer_start(s->exec, &s->timer, deadline, weft__scope_expired);
    }
  }
}

void weft__scope_fini(weft__scope *s) {
  assert(s->first_child == NULL);
  weft__scope_timer_fresh(s);
  weft__timer_stop(s->exec, &s->timer);
  if (s->parent != NULL) {
    if (s->prev_sibling != NULL)
      s->prev_sibling->next_sibling = s->next_sibling;
    else
      s->parent->first_child = s->next_sibling;
    if (s->next_sibling != NULL) s->next_sibling->prev_sibling = s->prev_sibling;
  }
  s->parent = s->prev_sibling = s->next_sibling = NULL;
}

/* ---- Public ------------------------------------------------------------- */

static void weft__scope_enter(weft_scope *pub, int64_t timeout_ms, int shield) {
  weft__task *t = weft__current_task;
  weft__scope *s = (weft__scope *)pub;
  if (t == NULL) abort(); /* A scope outside a task is a programming error. */
  int64_t deadline = timeout_ms < 0 ? -1 : weft_now() + timeout_ms;
  weft__scope_init(s, t->scope, t, shield, deadline);
  t->scope = s;
}

void weft_scope_enter(weft_scope *s, int64_t timeout_ms) {
  weft__scope_enter(s, timeout_ms, 0);
}

void weft_scope_enter_shielded(weft_scope *s, int64_t timeout_ms) {
  weft__scope_enter(s, timeout_ms, 1);
}

int weft_scope_leave(weft_scope *pub) {
  weft__scope *s = (weft__scope *)pub;
  weft__task *t = s->owner;
  /* Scopes are left in the reverse order they were entered. */
  assert(t != NULL && t->scope == s);
  int code = s->cancelled;
  if (s->own_deadline_fired) code = UV_ETIMEDOUT;
  t->scope = s->parent;
  weft__scope_fini(s);
  return code;
}

void weft_scope_cancel(weft_scope *pub) {
  weft__scope_cancel((weft__scope *)pub, UV_ECANCELED);
}

int weft_scope_set_timeout(weft_scope *pub, int64_t timeout_ms) {
  weft__scope *s = (weft__scope *)pub;
  if (s->cancelled) return s->cancelled;
  /* Servers move a deadline on every request, mostly later or away: an
   * armed timer is then left where it is in the heap (touching the heap
   * and the entries it sifts past costs cache misses with many
   * connections), and weft__scope_expired() re-checks the deadline when
   * it fires. Only a deadline that comes earlier moves the entry. */
  if (timeout_ms < 0) {
    s->deadline = -1;
    if (s->timer.heap_index != SIZE_MAX && !s->timer_stale) {
      s->timer_stale = 1;
      s->exec->stale_timers++;
    }
    return 0;
  }
  s->deadline = weft_now() + timeout_ms;
  weft__scope_timer_fresh(s);
  if (timeout_ms == 0) {
    weft__timer_stop(s->exec, &s->timer);
    s->own_deadline_fired = 1;
    weft__scope_cancel(s, UV_ETIMEDOUT);
    return UV_ETIMEDOUT;
  }
  if (s->timer.heap_index != SIZE_MAX && s->timer.deadline <= s->deadline) return 0;
  weft__timer_move(s->exec, &s->timer, s->deadline, weft__scope_expired);
  return 0;
}

int weft_cancelled(void) {
  weft__task *t = weft__current_task;
  return t ? t->scope->cancelled : 0;
}

int64_t weft_deadline(void) {
  weft__task *t = weft__current_task;
  int64_t best = -1;
  for (weft__scope *s = t ? t->scope : NULL; s != NULL; s = s->parent) {
    if (s->deadline >= 0 && (best < 0 || s->deadline < best)) best = s->deadline;
    if (s->shielded) break;
  }
  return best;
}
