/* chan_support.h: what the tests of channels and select share: the names of
 * the channel modes, giving a peer time to block, and cancelling a task
 * while it waits. C++ only; include after closures.h. */
#ifndef WEFT_TEST_CHAN_SUPPORT_H
#define WEFT_TEST_CHAN_SUPPORT_H

#include <atomic>
#include <functional>
#include <string>

#include "closures.h"
#include "support.h"
#include "weft.h"

namespace {

// The name of a channel mode, for INFO lines.
inline std::string mode_name(int mode) {
  switch (mode) {
  case WEFT_CHAN_LOCAL: return "LOCAL";
  case WEFT_CHAN_SPSC: return "SPSC";
  case WEFT_CHAN_MPMC: return "MPMC";
  }
  return "?";
}

// Gives a task that is about to wait (in send, recv, select) time to get
// there: `yields` turns of this executor when it runs here, or ms (scaled)
// of sleep when it runs on another executor, where yielding would not help.
inline void let_peer_wait(bool same_executor, int yields, int64_t ms) {
  if (same_executor)
    yield_n(yields);
  else
    weft_sleep(weft_test_ms(ms));
}

// The three ways a waiting task is cancelled.
enum CancelHow { BY_DEADLINE, BY_SCOPE_CANCEL, BY_GROUP_CANCEL };

// The name of a CancelHow, for INFO lines.
inline std::string how_name(int how) {
  switch (how) {
  case BY_DEADLINE: return "scope deadline";
  case BY_SCOPE_CANCEL: return "weft_scope_cancel";
  case BY_GROUP_CANCEL: return "weft_group_cancel";
  }
  return "?";
}

// How a cancelled wait ended. Written by the waiting task, read once it is
// joined.
struct CancelledWait {
  int op_rc = 1;          // what wait() returned
  int64_t waited_ms = -1; // how long wait() took
  int scope_rc = 1;       // weft_scope_leave() of the task's scope
  int join_rc = 1;        // the join of the task's group
};

// Runs wait() in a task on executor `where` (0: the caller's) and ends it
// the way `how` says: the deadline (deadline_ms, already scaled) of the
// scope around it, weft_scope_cancel() of that scope from the caller (which
// works within one executor, so `where` should then be 0), or
// weft_group_cancel() of its group. Returns once the task is joined, after
// 5 s (scaled) at most if the cancellation fails to end the wait.
inline CancelledWait cancel_wait(int how, int where, int64_t deadline_ms,
                                 const std::function<int()> &wait) {
  CancelledWait r;
  std::atomic<weft_scope *> scope_ptr{nullptr};
  std::atomic<bool> done{false};
  Tasks tasks;
  tasks.spawn(where, [&]() -> int {
    weft_scope s;
    weft_scope_enter(&s, how == BY_DEADLINE ? deadline_ms : WEFT_NO_DEADLINE);
    scope_ptr.store(&s);
    int64_t t0 = weft_now();
    r.op_rc = wait();
    r.waited_ms = weft_now() - t0;
    scope_ptr.store(nullptr);
    r.scope_rc = weft_scope_leave(&s);
    done.store(true);
    return 0;
  });
  if (how != BY_DEADLINE) {
    // Let it block first.
    let_peer_wait(where == 0, 10, 20);
    if (how == BY_SCOPE_CANCEL) {
      weft_scope *s = scope_ptr.load();
      if (s != nullptr) weft_scope_cancel(s);
    } else {
      tasks.cancel();
    }
  }
  wait_until([&] { return done.load(); }, 5000);
  r.join_rc = tasks.join();
  return r;
}

}  // namespace

#endif
