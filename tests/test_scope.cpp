// Tests of cancellation scopes: deadlines, nesting, cancellation reaching
// down through groups, shielded clean-up, and the cheap weft_cancelled()
// check.
//
// Results are recorded in plain structs inside tasks and asserted after
// weft_main() returns.

#include <catch2/catch.hpp>

#include <chrono>

#include "scope_group_support.h"
#include "support.h"
#include "weft.h"

namespace {

int record_cancelled(void *arg) {
  *static_cast<int *>(arg) = weft_cancelled();
  return 0;
}

}  // namespace

TEST_CASE("weft_cancelled is 0 and weft_deadline -1 outside any scope",
          "[scope]") {
  struct Result {
    int root_cancelled = 1;
    int child_cancelled = 1;
    int64_t root_deadline = 0;
  } r;
  int rc = run_root([&r]() -> int {
    r.root_cancelled = weft_cancelled();
    r.root_deadline = weft_deadline();
    return join_one(WEFT_FAIL_FAST, record_cancelled, &r.child_cancelled);
  });
  CHECK(rc == 0);
  CHECK(r.root_cancelled == 0);
  CHECK(r.child_cancelled == 0);
  CHECK(r.root_deadline == WEFT_NO_DEADLINE);
}

TEST_CASE("a scope entered with timeout 0 is already expired", "[scope]") {
  struct Result {
    int cancelled = 0;
    int sleep_rc = 0;
    int yield_rc = 0;
    int64_t sleep_ms = -1;
    int leave_rc = 0;
    int after_leave = 1;
    int64_t deadline = -1;
    int64_t now = -1;
  } r;
  int rc = run_root([&r]() -> int {
    weft_scope s;
    weft_scope_enter(&s, 0);
    r.now = weft_now();
    r.deadline = weft_deadline();
    r.cancelled = weft_cancelled();
    int64_t t0 = weft_now();
    r.sleep_rc = weft_sleep(weft_test_ms(10000));
    r.sleep_ms = weft_now() - t0;
    r.yield_rc = weft_yield();
    r.leave_rc = weft_scope_leave(&s);
    r.after_leave = weft_cancelled();
    return 0;
  });
  CHECK(rc == 0);
  CHECK(r.cancelled == UV_ETIMEDOUT);
  CHECK(r.sleep_rc == UV_ETIMEDOUT);
  CHECK(r.sleep_ms < weft_test_ms(1000));
  CHECK(r.yield_rc == UV_ETIMEDOUT);
  CHECK(r.leave_rc == UV_ETIMEDOUT);
  CHECK(r.after_leave == 0);
  CHECK(r.deadline <= r.now);
}

TEST_CASE("a scope cancelled by its own task", "[scope]") {
  struct Result {
    int before = 1;
    int after = 0;
    int yield_rc = 0;
    int sleep_rc = 0;
    int64_t sleep_ms = -1;
    int inner_cancelled = 0;
    int inner_leave = 0;
    int leave_rc = 0;
    int after_leave = 1;
    int sleep_after_leave = 1;
  } r;
  int rc = run_root([&r]() -> int {
    weft_scope s;
    weft_scope_enter(&s, WEFT_NO_DEADLINE);
    r.before = weft_cancelled();
    weft_scope_cancel(&s);
    weft_scope_cancel(&s);  // idempotent
    r.after = weft_cancelled();
    r.yield_rc = weft_yield();
    int64_t t0 = weft_now();
    r.sleep_rc = weft_sleep(weft_test_ms(10000));
    r.sleep_ms = weft_now() - t0;
    // A scope entered inside a cancelled scope starts cancelled.
    weft_scope inner;
    weft_scope_enter(&inner, WEFT_NO_DEADLINE);
    r.inner_cancelled = weft_cancelled();
    r.inner_leave = weft_scope_leave(&inner);
    r.leave_rc = weft_scope_leave(&s);
    // Outside the cancelled scope, waits work again.
    r.after_leave = weft_cancelled();
    r.sleep_after_leave = weft_sleep(1);
    return 0;
  });
  CHECK(rc == 0);
  CHECK(r.before == 0);
  CHECK(r.after == UV_ECANCELED);
  CHECK(r.yield_rc == UV_ECANCELED);
  CHECK(r.sleep_rc == UV_ECANCELED);
  CHECK(r.sleep_ms < weft_test_ms(1000));
  CHECK(r.inner_cancelled == UV_ECANCELED);
  CHECK(r.inner_leave == UV_ECANCELED);
  CHECK(r.leave_rc == UV_ECANCELED);
  CHECK(r.after_leave == 0);
  CHECK(r.sleep_after_leave == 0);
}

TEST_CASE("a scope left before its deadline reports 0", "[scope]") {
  struct Result {
    int sleep_rc = 1;
    int leave_rc = 1;
    int64_t deadline_after = 0;
  } r;
  int rc = run_root([&r]() -> int {
    weft_scope s;
    weft_scope_enter(&s, weft_test_ms(5000));
    r.sleep_rc = weft_sleep(5);
    r.leave_rc = weft_scope_leave(&s);
    r.deadline_after = weft_deadline();
    // The timer of the scope left behind must not fire into anything.
    weft_sleep(10);
    return 0;
  });
  CHECK(rc == 0);
  CHECK(r.sleep_rc == 0);
  CHECK(r.leave_rc == 0);
  CHECK(r.deadline_after == WEFT_NO_DEADLINE);
}

TEST_CASE("nested scopes: the inner deadline fires first, then the outer",
          "[scope]") {
  struct Result {
    int64_t outer_ms = 0;
    int64_t inner_ms = 0;
    int inner_sleep = 0;
    int64_t inner_woke = -1;  // ms after the start
    int inner_leave = 0;
    int cancelled_after_inner = 1;
    int outer_sleep = 0;
    int64_t outer_woke = -1;
    int outer_leave = 0;
    int64_t outer_deadline = 0;
    int64_t inner_deadline = 0;
    int64_t deadline_after_inner = 0;
    int64_t start = 0;
  } n;
  n.outer_ms = weft_test_ms(300);
  n.inner_ms = weft_test_ms(30);
  auto start = std::chrono::steady_clock::now();
  int rc = run_root([&n]() -> int {
    n.start = weft_now();
    weft_scope outer, inner;
    weft_scope_enter(&outer, n.outer_ms);
    n.outer_deadline = weft_deadline();
    weft_scope_enter(&inner, n.inner_ms);
    n.inner_deadline = weft_deadline();
    n.inner_sleep = weft_sleep(weft_test_ms(20000));
    n.inner_woke = weft_now() - n.start;
    n.inner_leave = weft_scope_leave(&inner);
    // Back in the outer scope, whose deadline has not passed yet.
    n.cancelled_after_inner = weft_cancelled();
    n.deadline_after_inner = weft_deadline();
    n.outer_sleep = weft_sleep(weft_test_ms(20000));
    n.outer_woke = weft_now() - n.start;
    n.outer_leave = weft_scope_leave(&outer);
    return 0;
  });
  int64_t wall = elapsed_ms(start);

  CHECK(rc == 0);
  CHECK(n.inner_sleep == UV_ETIMEDOUT);
  CHECK(n.inner_leave == UV_ETIMEDOUT);
  CHECK(n.inner_woke >= n.inner_ms - 1);
  CHECK(n.inner_woke < n.outer_ms);
  CHECK(n.cancelled_after_inner == 0);
  CHECK(n.outer_sleep == UV_ETIMEDOUT);
  CHECK(n.outer_leave == UV_ETIMEDOUT);
  CHECK(n.outer_woke >= n.outer_ms - 1);
  CHECK(n.outer_woke > n.inner_woke);
  CHECK(wall < n.outer_ms + weft_test_ms(3000));

  // weft_deadline() gives the nearest deadline of the scopes in force.
  CHECK(n.outer_deadline >= n.start + n.outer_ms);
  CHECK(n.outer_deadline <= n.start + n.outer_ms + weft_test_ms(100));
  CHECK(n.inner_deadline >= n.start + n.inner_ms);
  CHECK(n.inner_deadline < n.outer_deadline);
  CHECK(n.deadline_after_inner == n.outer_deadline);
}

TEST_CASE("an enclosing deadline applies to an inner scope with a later one",
          "[scope]") {
  struct Result {
    int64_t outer_ms = 0;
    int64_t outer_deadline = 0;
    int64_t inner_deadline = 0;
    int sleep_rc = 0;
    int64_t woke = -1;
    int inner_leave = 0;
    int outer_leave = 0;
  } r;
  r.outer_ms = weft_test_ms(30);
  int rc = run_root([&r]() -> int {
    int64_t t0 = weft_now();
    weft_scope outer, inner;
    weft_scope_enter(&outer, r.outer_ms);
    r.outer_deadline = weft_deadline();
    weft_scope_enter(&inner, weft_test_ms(20000));
    r.inner_deadline = weft_deadline();
    r.sleep_rc = weft_sleep(weft_test_ms(20000));
    r.woke = weft_now() - t0;
    r.inner_leave = weft_scope_leave(&inner);
    r.outer_leave = weft_scope_leave(&outer);
    return 0;
  });
  CHECK(rc == 0);
  CHECK(r.inner_deadline == r.outer_deadline);
  CHECK(r.sleep_rc == UV_ETIMEDOUT);
  CHECK(r.woke >= r.outer_ms - 1);
  CHECK(r.woke < weft_test_ms(5000));
  CHECK(r.inner_leave == UV_ETIMEDOUT);
  CHECK(r.outer_leave == UV_ETIMEDOUT);
}

TEST_CASE("weft_scope_set_timeout moves a scope's deadline", "[scope]") {
  struct Result {
    int64_t before_set = 0;
    int set_rc = 1;
    int64_t t_set = 0;
    int64_t after_set = 0;
    int sleep_rc = 0;
    int64_t woke = -1;
    int leave_rc = 0;
    // Removing a deadline.
    int unset_rc = 1;
    int64_t after_unset = 0;
    int unset_sleep = 1;
    int unset_leave = 1;
    // Setting a timeout on a cancelled scope.
    int cancelled_set_rc = 0;
    int cancelled_leave = 0;
  } r;
  int rc = run_root([&r]() -> int {
    weft_scope s;
    weft_scope_enter(&s, WEFT_NO_DEADLINE);
    r.before_set = weft_deadline();
    r.t_set = weft_now();
    r.set_rc = weft_scope_set_timeout(&s, weft_test_ms(20));
    r.after_set = weft_deadline();
    r.sleep_rc = weft_sleep(weft_test_ms(20000));
    r.woke = weft_now() - r.t_set;
    r.leave_rc = weft_scope_leave(&s);

    // A short deadline taken away before it fires.
    weft_scope u;
    weft_scope_enter(&u, 10);
    r.unset_rc = weft_scope_set_timeout(&u, WEFT_NO_DEADLINE);
    r.after_unset = weft_deadline();
    r.unset_sleep = weft_sleep(30);
    r.unset_leave = weft_scope_leave(&u);

    weft_scope c;
    weft_scope_enter(&c, WEFT_NO_DEADLINE);
    weft_scope_cancel(&c);
    r.cancelled_set_rc = weft_scope_set_timeout(&c, 1000);
    r.cancelled_leave = weft_scope_leave(&c);
    return 0;
  });
  CHECK(rc == 0);
  CHECK(r.before_set == WEFT_NO_DEADLINE);
  CHECK(r.set_rc == 0);
  CHECK(r.after_set >= r.t_set + weft_test_ms(20));
  CHECK(r.after_set <= r.t_set + weft_test_ms(20) + weft_test_ms(100));
  CHECK(r.sleep_rc == UV_ETIMEDOUT);
  CHECK(r.woke >= weft_test_ms(20) - 1);
  CHECK(r.woke < weft_test_ms(5000));
  CHECK(r.leave_rc == UV_ETIMEDOUT);

  CHECK(r.unset_rc == 0);
  CHECK(r.after_unset == WEFT_NO_DEADLINE);
  CHECK(r.unset_sleep == 0);
  CHECK(r.unset_leave == 0);

  CHECK(r.cancelled_set_rc == UV_ECANCELED);
  CHECK(r.cancelled_leave == UV_ECANCELED);
}

namespace {

// Cancellation of an outer scope reaching down: the root enters scope S and
// joins a group holding the three levels of scope_group_support.h inside
// it. A canceller task, outside S, cancels S.
struct Reach {
  Levels levels;
  weft_scope *target = nullptr;  // S while it is entered, else NULL
  int root_join = 1;
  int root_leave = 1;
  int root_cancelled_after = 1;
  int canceller_ran = 0;
  int64_t cancel_at = -1;
};

int reach_canceller(void *arg) {
  auto *r = static_cast<Reach *>(arg);
  weft_sleep(20);
  if (r->target != nullptr) {
    r->cancel_at = weft_now();
    weft_scope_cancel(r->target);
    r->canceller_ran = 1;
  }
  return 0;
}

}  // namespace

TEST_CASE("weft_scope_cancel reaches tasks in groups two levels down",
          "[scope]") {
  Reach r;
  r.levels.long_ms = weft_test_ms(20000);
  auto start = std::chrono::steady_clock::now();
  int rc = run_root([&r]() -> int {
    weft_group *outside = weft_group_open(WEFT_FAIL_FAST);
    if (!outside) return UV_ENOMEM;
    weft_spawn_named(outside, "canceller", reach_canceller, &r);

    weft_scope s;
    weft_scope_enter(&s, WEFT_NO_DEADLINE);
    r.target = &s;
    r.root_join = join_one(WEFT_FAIL_FAST, levels_level1, &r.levels, "level1");
    r.target = nullptr;
    r.root_leave = weft_scope_leave(&s);
    r.root_cancelled_after = weft_cancelled();
    return weft_group_join(outside);
  });
  int64_t wall = elapsed_ms(start);

  CHECK(rc == 0);
  CHECK(r.canceller_ran == 1);
  CHECK(r.levels.level3_sleep == UV_ECANCELED);
  CHECK(r.levels.level2_join == UV_ECANCELED);
  CHECK(r.levels.level1_join == UV_ECANCELED);
  CHECK(r.root_join == UV_ECANCELED);
  CHECK(r.root_leave == UV_ECANCELED);
  CHECK(r.root_cancelled_after == 0);
  CHECK(r.levels.level3_woke_at - r.cancel_at < weft_test_ms(2000));
  CHECK(wall < weft_test_ms(4000));
}

namespace {

struct Deadline {
  int64_t scope_ms = 0;
  int64_t parent_deadline = 0;
  int64_t child_deadline = 0;
  int64_t grandchild_deadline = 0;
  int child_sleep = 0;
  int grandchild_sleep = 0;
  int join_rc = 0;
  int leave_rc = 0;
  int64_t join_ms = -1;
};

int deadline_grandchild(void *arg) {
  auto *d = static_cast<Deadline *>(arg);
  d->grandchild_deadline = weft_deadline();
  d->grandchild_sleep = weft_sleep(weft_test_ms(20000));
  return d->grandchild_sleep;
}

int deadline_child(void *arg) {
  auto *d = static_cast<Deadline *>(arg);
  d->child_deadline = weft_deadline();
  weft_group *g = weft_group_open(WEFT_FAIL_FAST);
  if (!g) return UV_ENOMEM;
  weft_spawn(g, deadline_grandchild, d);
  d->child_sleep = weft_sleep(weft_test_ms(20000));
  weft_group_join(g);
  return d->child_sleep;
}

}  // namespace

TEST_CASE("children inherit the deadline around their group", "[scope]") {
  Deadline d;
  d.scope_ms = weft_test_ms(30);
  auto start = std::chrono::steady_clock::now();
  int rc = run_root([&d]() -> int {
    weft_scope s;
    weft_scope_enter(&s, d.scope_ms);
    d.parent_deadline = weft_deadline();
    int64_t t0 = weft_now();
    d.join_rc = join_one(WEFT_FAIL_FAST, deadline_child, &d);
    d.join_ms = weft_now() - t0;
    d.leave_rc = weft_scope_leave(&s);
    return 0;
  });
  int64_t wall = elapsed_ms(start);

  CHECK(rc == 0);
  CHECK(d.child_deadline == d.parent_deadline);
  CHECK(d.grandchild_deadline == d.parent_deadline);
  CHECK(d.child_sleep == UV_ETIMEDOUT);
  CHECK(d.grandchild_sleep == UV_ETIMEDOUT);
  CHECK(d.join_rc == UV_ETIMEDOUT);
  CHECK(d.leave_rc == UV_ETIMEDOUT);
  CHECK(d.join_ms >= d.scope_ms - 1);
  CHECK(wall < weft_test_ms(4000));
}

namespace {

// A worker that is cancelled while it waits, then runs a clean-up that
// waits too, inside a shielded scope.
struct Cleanup {
  weft_scope *target = nullptr;
  int work_sleep = 1;
  int cancelled_before_shield = 0;
  int cancelled_in_shield = 1;
  int cleanup_sleep = 1;
  int64_t cleanup_ms = -1;
  int shield_leave = 1;
  int cancelled_after_shield = 0;
  int outer_leave = 0;
  bool done = false;
};

int cleanup_worker(void *arg) {
  auto *c = static_cast<Cleanup *>(arg);
  weft_scope s;
  weft_scope_enter(&s, WEFT_NO_DEADLINE);
  c->target = &s;
  c->work_sleep = weft_sleep(weft_test_ms(20000));
  c->cancelled_before_shield = weft_cancelled();

  weft_scope shield;
  weft_scope_enter_shielded(&shield, weft_test_ms(5000));
  c->cancelled_in_shield = weft_cancelled();
  int64_t t0 = weft_now();
  c->cleanup_sleep = weft_sleep(20);
  c->cleanup_ms = weft_now() - t0;
  c->shield_leave = weft_scope_leave(&shield);

  c->cancelled_after_shield = weft_cancelled();
  c->target = nullptr;
  c->outer_leave = weft_scope_leave(&s);
  c->done = true;
  return 0;
}

int cancel_cleanup_target(void *arg) {
  auto *c = static_cast<Cleanup *>(arg);
  weft_sleep(10);
  if (c->target) weft_scope_cancel(c->target);
  return 0;
}

}  // namespace

TEST_CASE("a shielded scope runs its clean-up after a cancellation",
          "[scope]") {
  Cleanup c;
  auto start = std::chrono::steady_clock::now();
  int rc = run_root([&c]() -> int {
    weft_group *g = weft_group_open(WEFT_COLLECT);
    if (!g) return UV_ENOMEM;
    weft_spawn_named(g, "worker", cleanup_worker, &c);
    weft_spawn_named(g, "canceller", cancel_cleanup_target, &c);
    return weft_group_join(g);
  });
  int64_t wall = elapsed_ms(start);

  CHECK(rc == 0);
  CHECK(c.done);
  CHECK(c.work_sleep == UV_ECANCELED);
  CHECK(c.cancelled_before_shield == UV_ECANCELED);
  CHECK(c.cancelled_in_shield == 0);
  CHECK(c.cleanup_sleep == 0);
  CHECK(c.cleanup_ms >= 19);
  CHECK(c.shield_leave == 0);
  CHECK(c.cancelled_after_shield == UV_ECANCELED);
  CHECK(c.outer_leave == UV_ECANCELED);
  CHECK(wall < weft_test_ms(4000));
}

namespace {

// A worker already inside a shielded scope when its group is cancelled: the
// shielded wait runs to its end, and only afterwards does the cancellation
// show.
struct Shielded {
  int64_t cleanup_ms_asked = 0;
  int cleanup_sleep = 1;
  int64_t cleanup_ms = -1;
  int shield_leave = 1;
  int cancelled_after = 0;
  int sleep_after = 0;
  int64_t cleanup_end = -1;
  int64_t join_end = -1;
  int join_rc = 1;
};

int shielded_worker(void *arg) {
  auto *s = static_cast<Shielded *>(arg);
  weft_scope shield;
  weft_scope_enter_shielded(&shield, weft_test_ms(5000));
  int64_t t0 = weft_now();
  s->cleanup_sleep = weft_sleep(s->cleanup_ms_asked);
  s->cleanup_ms = weft_now() - t0;
  s->shield_leave = weft_scope_leave(&shield);
  s->cleanup_end = weft_now();
  s->cancelled_after = weft_cancelled();
  s->sleep_after = weft_sleep(weft_test_ms(20000));
  return 0;
}

}  // namespace

TEST_CASE("cancelling the group does not reach into a shielded scope",
          "[scope]") {
  Shielded s;
  s.cleanup_ms_asked = weft_test_ms(100);
  auto start = std::chrono::steady_clock::now();
  int rc = run_root([&s]() -> int {
    weft_group *g = weft_group_open(WEFT_FAIL_FAST);
    if (!g) return UV_ENOMEM;
    weft_spawn(g, shielded_worker, &s);
    weft_sleep(10);
    weft_group_cancel(g);
    s.join_rc = weft_group_join(g);
    s.join_end = weft_now();
    return 0;
  });
  int64_t wall = elapsed_ms(start);

  CHECK(rc == 0);
  CHECK(s.cleanup_sleep == 0);
  CHECK(s.cleanup_ms >= s.cleanup_ms_asked - 1);
  CHECK(s.shield_leave == 0);
  CHECK(s.cancelled_after == UV_ECANCELED);
  CHECK(s.sleep_after == UV_ECANCELED);
  // The join waited for the clean-up to end.
  CHECK(s.join_end >= s.cleanup_end);
  CHECK(s.join_rc == 0);
  CHECK(wall < weft_test_ms(4000));
}

TEST_CASE("a shielded scope still honours its own deadline and direct "
          "cancellation",
          "[scope]") {
  struct Result {
    int deadline_sleep = 0;
    int deadline_leave = 0;
    int64_t deadline_ms = -1;
    int direct_cancelled = 0;
    int direct_leave = 0;
  } r;
  int rc = run_root([&r]() -> int {
    weft_scope outer;
    weft_scope_enter(&outer, WEFT_NO_DEADLINE);
    weft_scope_cancel(&outer);

    // The clock starts before the scope, so that the deadline (taken from
    // the clock as the scope is entered) lies at least 20 ms after it even
    // when the thread is preempted in between.
    weft_scope shield;
    int64_t t0 = weft_now();
    weft_scope_enter_shielded(&shield, weft_test_ms(20));
    r.deadline_sleep = weft_sleep(weft_test_ms(20000));
    r.deadline_ms = weft_now() - t0;
    r.deadline_leave = weft_scope_leave(&shield);

    weft_scope shield2;
    weft_scope_enter_shielded(&shield2, WEFT_NO_DEADLINE);
    weft_scope_cancel(&shield2);
    r.direct_cancelled = weft_cancelled();
    r.direct_leave = weft_scope_leave(&shield2);

    weft_scope_leave(&outer);
    return 0;
  });
  CHECK(rc == 0);
  CHECK(r.deadline_sleep == UV_ETIMEDOUT);
  CHECK(r.deadline_leave == UV_ETIMEDOUT);
  CHECK(r.deadline_ms >= weft_test_ms(20));
  CHECK(r.deadline_ms < weft_test_ms(5000));
  CHECK(r.direct_cancelled == UV_ECANCELED);
  CHECK(r.direct_leave == UV_ECANCELED);
}
