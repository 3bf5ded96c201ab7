/* weft/scope.h: cancellation and deadlines.
 *
 * A scope is a region of a task's code with an optional deadline. Scopes
 * nest: an inner scope is cancelled whenever an outer one is, and every call
 * that waits inside a cancelled scope returns at once with UV_ECANCELED
 * (cancelled) or UV_ETIMEDOUT (deadline passed). A shielded scope is not
 * reached by outer cancellation; use it for clean-up that must run to the
 * end, with a deadline of its own so that it cannot hang.
 *
 *   weft_scope s;
 *   weft_scope_enter(&s, 500);          // at most 500 ms
 *   int err = weft_tcp_read(c, buf, n); // UV_ETIMEDOUT after 500 ms
 *   weft_scope_leave(&s);
 */
#ifndef WEFT_SCOPE_H
#define WEFT_SCOPE_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * A cancellation scope. Allocated by the caller (usually on the task's
 * stack) and private to weft: use only through the functions below. It must
 * stay where it is between enter and leave.
 */
typedef struct weft_scope {
  void *weft_private_[16];
} weft_scope;

/** No deadline. */
#define WEFT_NO_DEADLINE (-1)

/**
 * Enters a scope nested in the calling task's current scope. timeout_ms < 0
 * means no deadline of its own; 0 means already expired (waits fail at once
 * with UV_ETIMEDOUT). A scope entered inside a cancelled scope starts
 * cancelled. Scopes must be left in the reverse order they were entered.
 */
void weft_scope_enter(weft_scope *s, int64_t timeout_ms);

/**
 * Enters a shielded scope: cancellation of enclosing scopes does not reach
 * it. It can still be cancelled directly or by its own deadline.
 */
void weft_scope_enter_shielded(weft_scope *s, int64_t timeout_ms);

/**
 * Leaves s, which must be the calling task's innermost scope. Returns
 * UV_ETIMEDOUT if s's deadline (or an enclosing deadline) cancelled it,
 * UV_ECANCELED if it was cancelled, 0 otherwise.
 */
int weft_scope_leave(weft_scope *s);

/**
 * Cancels s and everything nested in it, including groups opened inside it.
 * May be called from any task of the same executor. Idempotent.
 */
void weft_scope_cancel(weft_scope *s);

/**
 * Changes s's deadline to timeout_ms from now (< 0: none). Returns 0, or the
 * cancellation code if s is already cancelled.
 */
int weft_scope_set_timeout(weft_scope *s, int64_t timeout_ms);

/**
 * Cheap check, a load and a branch: non-zero when the calling task's current
 * scope is cancelled. Returns UV_ECANCELED or UV_ETIMEDOUT (so it can be
 * returned as an error), or 0.
 */
int weft_cancelled(void);

/**
 * Returns the absolute deadline (weft_now() milliseconds) that applies to the
 * calling task's current scope, taking enclosing scopes into account, or -1.
 */
int64_t weft_deadline(void);

#ifdef __cplusplus
}
#endif
#endif /* WEFT_SCOPE_H */
