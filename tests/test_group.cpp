// Tests of task groups: results, the two policies, cancellation through
// nested groups, and the clean-up of a group its owner forgot to join.
//
// Results are recorded in plain structs inside tasks and asserted after
// weft_main() returns.

#include <catch2/catch.hpp>

#include <chrono>
#include <string>
#include <vector>

#include "scope_group_support.h"
#include "support.h"
#include "weft.h"

namespace {

// A child that sleeps, then returns a given result.
struct Step {
  int64_t sleep_ms;
  int result;      // what the task returns when its sleep completes
  int sleep_rc;    // what its sleep returned
  bool finished;   // it reached its end
};

int sleep_then_return(void *arg) {
  auto *s = static_cast<Step *>(arg);
  s->sleep_rc = weft_sleep(s->sleep_ms);
  s->finished = true;
  // A cancelled task reports the cancellation rather than its normal result.
  return s->sleep_rc != 0 ? s->sleep_rc : s->result;
}

// Runs the three steps as the tasks of one WEFT_FAIL_FAST group under the
// root task, spawned in order. Returns the join's result.
int join_steps(Step (&steps)[3]) {
  return run_root([&steps]() -> int {
    weft_group *g = weft_group_open(WEFT_FAIL_FAST);
    if (!g) return UV_ENOMEM;
    for (Step &s : steps) weft_spawn(g, sleep_then_return, &s);
    return weft_group_join(g);
  });
}

}  // namespace

TEST_CASE("weft_group_open outside a task returns NULL", "[group]") {
  CHECK(weft_group_open(WEFT_FAIL_FAST) == nullptr);
  CHECK(weft_group_open(WEFT_COLLECT) == nullptr);
}

TEST_CASE("an empty group joins at once with 0", "[group]") {
  struct Result {
    size_t live = 99;
    size_t errors = 99;
    int join = 1;
  } r;
  int rc = run_root([&r]() -> int {
    weft_group *g = weft_group_open(WEFT_FAIL_FAST);
    if (!g) return UV_ENOMEM;
    r.live = weft_group_live(g);
    r.errors = weft_group_error_count(g);
    r.join = weft_group_join(g);
    return 0;
  });
  CHECK(rc == 0);
  CHECK(r.live == 0);
  CHECK(r.errors == 0);
  CHECK(r.join == 0);
}

TEST_CASE("join returns 0 when every task succeeds", "[group]") {
  Step steps[3] = {{5, 0, 1, false}, {1, 0, 1, false}, {0, 0, 1, false}};
  int rc = join_steps(steps);
  CHECK(rc == 0);
  for (auto &s : steps) {
    CHECK(s.finished);
    CHECK(s.sleep_rc == 0);
  }
}

TEST_CASE("join returns the first error", "[group]") {
  // The task that fails first (by time) decides the result, not the order
  // of spawning.
  Step steps[3] = {{weft_test_ms(5000), UV_EINVAL, 1, false},
                   {weft_test_ms(5), UV_EIO, 1, false},
                   {0, 0, 1, false}};
  int rc = join_steps(steps);
  CHECK(rc == UV_EIO);
  CHECK(steps[1].sleep_rc == 0);
  CHECK(steps[2].sleep_rc == 0);
  // The slow sibling was cancelled by the failure.
  CHECK(steps[0].sleep_rc == UV_ECANCELED);
}

namespace {

struct FailFast {
  int sleeper_rc = 1;
  int grandchild_rc = 1;
  int nested_join_rc = 1;
  int join_rc = 1;
  int64_t sleeper_woke_ms = -1;
  int64_t join_ms = -1;
  int64_t long_ms = 0;
};

int fail_soon(void *) {
  weft_sleep(10);
  return UV_EIO;
}

int sleep_long(void *arg) {
  auto *f = static_cast<FailFast *>(arg);
  int64_t t0 = weft_now();
  f->sleeper_rc = weft_sleep(f->long_ms);
  f->sleeper_woke_ms = weft_now() - t0;
  return f->sleeper_rc;
}

int grandchild_sleep_long(void *arg) {
  auto *f = static_cast<FailFast *>(arg);
  f->grandchild_rc = weft_sleep(f->long_ms);
  return f->grandchild_rc;
}

// Blocks in the join of a group of its own, whose only task sleeps long.
int join_nested(void *arg) {
  auto *f = static_cast<FailFast *>(arg);
  f->nested_join_rc = join_one(WEFT_FAIL_FAST, grandchild_sleep_long, f);
  return f->nested_join_rc;
}

}  // namespace

TEST_CASE("WEFT_FAIL_FAST cancels siblings in sleep and in nested joins",
          "[group]") {
  FailFast f;
  f.long_ms = weft_test_ms(20000);
  auto start = std::chrono::steady_clock::now();
  int rc = run_root([&f]() -> int {
    int64_t t0 = weft_now();
    weft_group *g = weft_group_open(WEFT_FAIL_FAST);
    if (!g) return UV_ENOMEM;
    weft_spawn_named(g, "sleeper", sleep_long, &f);
    weft_spawn_named(g, "nested", join_nested, &f);
    weft_spawn_named(g, "failer", fail_soon, &f);
    f.join_rc = weft_group_join(g);
    f.join_ms = weft_now() - t0;
    return 0;
  });
  int64_t wall = elapsed_ms(start);

  CHECK(rc == 0);
  CHECK(f.join_rc == UV_EIO);
  CHECK(f.sleeper_rc == UV_ECANCELED);
  CHECK(f.grandchild_rc == UV_ECANCELED);
  CHECK(f.nested_join_rc == UV_ECANCELED);
  // Promptly: far sooner than the sleeps would have ended.
  CHECK(f.sleeper_woke_ms < weft_test_ms(2000));
  CHECK(f.join_ms < weft_test_ms(2000));
  CHECK(wall < weft_test_ms(4000));
}

TEST_CASE("WEFT_COLLECT runs every task to the end and keeps every error",
          "[group]") {
  struct Result {
    Step steps[4];
    int wait_rc = 1;
    int join_rc = 1;
    size_t error_count = 0;
    size_t live_after_wait = 99;
    int errors[3] = {1, 1, 1};
    std::string names[3];
    bool name_present[3] = {false, false, false};
  } c;
  // Completion order by time: "first-fail" (EIO), "ok-fast", "second-fail"
  // (EINVAL), "ok-slow".
  c.steps[0] = {weft_test_ms(60), 0, 1, false};           // ok-slow
  c.steps[1] = {weft_test_ms(10), UV_EIO, 1, false};      // first-fail
  c.steps[2] = {weft_test_ms(35), UV_EINVAL, 1, false};   // second-fail
  c.steps[3] = {weft_test_ms(20), 0, 1, false};           // ok-fast
  int rc = run_root([&c]() -> int {
    weft_group *g = weft_group_open(WEFT_COLLECT);
    if (!g) return UV_ENOMEM;
    weft_spawn_named(g, "ok-slow", sleep_then_return, &c.steps[0]);
    weft_spawn_named(g, "first-fail", sleep_then_return, &c.steps[1]);
    weft_spawn_named(g, "second-fail", sleep_then_return, &c.steps[2]);
    weft_spawn_named(g, "ok-fast", sleep_then_return, &c.steps[3]);
    c.wait_rc = weft_group_wait(g);
    c.live_after_wait = weft_group_live(g);
    c.error_count = weft_group_error_count(g);
    for (size_t i = 0; i < 3; i++) {
      const char *name = nullptr;
      c.errors[i] = weft_group_error(g, i, &name);
      if (name) {
        c.name_present[i] = true;
        c.names[i] = name;
      }
    }
    // A NULL name pointer is allowed.
    if (weft_group_error(g, 0, nullptr) != c.errors[0]) return UV_EINVAL;
    c.join_rc = weft_group_join(g);
    return 0;
  });

  CHECK(rc == 0);
  CHECK(c.wait_rc == UV_EIO);
  CHECK(c.join_rc == UV_EIO);
  CHECK(c.live_after_wait == 0);
  for (auto &s : c.steps) {
    CHECK(s.finished);
    CHECK(s.sleep_rc == 0);  // nobody was cancelled
  }
  CHECK(c.error_count == 2);
  CHECK(c.errors[0] == UV_EIO);
  CHECK(c.names[0] == "first-fail");
  CHECK(c.errors[1] == UV_EINVAL);
  CHECK(c.names[1] == "second-fail");
  // Out of range.
  CHECK(c.errors[2] == 0);
}

TEST_CASE("weft_group_cancel reaches tasks in groups two levels down",
          "[group]") {
  // The root's group g1 holds the three levels of scope_group_support.h.
  struct Result {
    Levels levels;
    int root_join = 1;
    int64_t cancel_to_join_ms = -1;
  } l;
  l.levels.long_ms = weft_test_ms(20000);
  auto start = std::chrono::steady_clock::now();
  int rc = run_root([&l]() -> int {
    weft_group *g = weft_group_open(WEFT_COLLECT);
    if (!g) return UV_ENOMEM;
    weft_spawn(g, levels_level1, &l.levels);
    // Give every level time to start and block.
    weft_sleep(20);
    int64_t t0 = weft_now();
    weft_group_cancel(g);
    l.root_join = weft_group_join(g);
    l.cancel_to_join_ms = weft_now() - t0;
    // The root's own scope was never cancelled.
    return weft_cancelled();
  });
  int64_t wall = elapsed_ms(start);

  CHECK(rc == 0);
  CHECK(l.levels.level3_sleep == UV_ECANCELED);
  CHECK(l.levels.level3_cancelled == UV_ECANCELED);
  CHECK(l.levels.level2_join == UV_ECANCELED);
  CHECK(l.levels.level1_join == UV_ECANCELED);
  CHECK(l.root_join == UV_ECANCELED);
  CHECK(l.cancel_to_join_ms < weft_test_ms(2000));
  CHECK(wall < weft_test_ms(4000));
}

namespace {

struct LateSpawn {
  int cancelled_at_start = 0;
  int sleep_rc = 1;
  int spawn_rc = 1;
  int join_rc = 1;
};

int record_start_state(void *arg) {
  auto *s = static_cast<LateSpawn *>(arg);
  s->cancelled_at_start = weft_cancelled();
  s->sleep_rc = weft_sleep(weft_test_ms(20000));
  return s->sleep_rc;
}

}  // namespace

TEST_CASE("a task spawned into a cancelled group starts cancelled", "[group]") {
  LateSpawn s;
  auto start = std::chrono::steady_clock::now();
  int rc = run_root([&s]() -> int {
    weft_group *g = weft_group_open(WEFT_FAIL_FAST);
    if (!g) return UV_ENOMEM;
    weft_group_cancel(g);
    s.spawn_rc = weft_spawn(g, record_start_state, &s);
    s.join_rc = weft_group_join(g);
    return 0;
  });
  CHECK(rc == 0);
  CHECK(s.spawn_rc == 0);
  CHECK(s.cancelled_at_start == UV_ECANCELED);
  CHECK(s.sleep_rc == UV_ECANCELED);
  CHECK(s.join_rc == UV_ECANCELED);
  CHECK(elapsed_ms(start) < weft_test_ms(4000));
}

namespace {

struct Forgotten {
  int grandchild_rc = 1;
  bool grandchild_done = false;
  int child_rc_seen = 1;
  int64_t long_ms = 0;
};

int forgotten_grandchild(void *arg) {
  auto *f = static_cast<Forgotten *>(arg);
  f->grandchild_rc = weft_sleep(f->long_ms);
  f->grandchild_done = true;
  return f->grandchild_rc;
}

// Opens a group, starts a long task in it and returns without joining.
int forget_to_join(void *arg) {
  auto *f = static_cast<Forgotten *>(arg);
  weft_group *g = weft_group_open(WEFT_FAIL_FAST);
  if (!g) return UV_ENOMEM;
  weft_spawn(g, forgotten_grandchild, f);
  weft_yield();  // let the grandchild start and block
  return 0;
}

}  // namespace

TEST_CASE("a task that returns without joining has its group cancelled and "
          "joined",
          "[group]") {
  // The runtime logs a warning for the forgotten group; keep test output
  // quiet.
  weft_log_level saved = weft_log_get_level();
  weft_log_set_level(WEFT_LOG_OFF);

  Forgotten f;
  f.long_ms = weft_test_ms(20000);
  auto start = std::chrono::steady_clock::now();
  int rc = run_root([&f]() -> int {
    f.child_rc_seen = join_one(WEFT_COLLECT, forget_to_join, &f);
    return 7;
  });
  int64_t wall = elapsed_ms(start);

  // The root task that forgets its own group: weft_main still returns.
  Forgotten root;
  root.long_ms = weft_test_ms(20000);
  auto start_root = std::chrono::steady_clock::now();
  int root_rc = weft_main(forget_to_join, &root);
  int64_t wall_root = elapsed_ms(start_root);

  weft_log_set_level(saved);

  CHECK(rc == 7);
  CHECK(f.grandchild_done);
  CHECK(f.grandchild_rc == UV_ECANCELED);
  // The forgetful task itself returned 0.
  CHECK(f.child_rc_seen == 0);
  CHECK(wall < weft_test_ms(4000));

  CHECK(root_rc == 0);
  CHECK(root.grandchild_done);
  CHECK(root.grandchild_rc == UV_ECANCELED);
  CHECK(wall_root < weft_test_ms(4000));
}

namespace {

// Task k yields k times, then ends: after each of the root's yields one more
// task has ended.
int yield_n_times(void *arg) {
  int n = static_cast<int>(reinterpret_cast<intptr_t>(arg));
  for (int i = 0; i < n; i++) weft_yield();
  return 0;
}

}  // namespace

TEST_CASE("weft_group_live counts the tasks that have not ended", "[group]") {
  struct Result {
    size_t after_spawn = 99;
    size_t after_turn[3] = {99, 99, 99};
    int join_rc = 1;
  } l;
  int rc = run_root([&l]() -> int {
    weft_group *g = weft_group_open(WEFT_FAIL_FAST);
    if (!g) return UV_ENOMEM;
    for (intptr_t k = 0; k < 3; k++)
      weft_spawn(g, yield_n_times, reinterpret_cast<void *>(k));
    l.after_spawn = weft_group_live(g);
    for (int i = 0; i < 3; i++) {
      weft_yield();
      l.after_turn[i] = weft_group_live(g);
    }
    l.join_rc = weft_group_join(g);
    return 0;
  });
  CHECK(rc == 0);
  CHECK(l.after_spawn == 3);
  CHECK(l.after_turn[0] == 2);
  CHECK(l.after_turn[1] == 1);
  CHECK(l.after_turn[2] == 0);
  CHECK(l.join_rc == 0);
}

namespace {

struct WaitTwice {
  int first = 1;
  int second = 1;
  size_t live = 99;
  int spawn_after_wait = 1;
  int join = 1;
  int ran = 0;
};

int count_run(void *arg) {
  static_cast<WaitTwice *>(arg)->ran++;
  return 0;
}

}  // namespace

TEST_CASE("weft_group_wait keeps the group usable until join", "[group]") {
  WaitTwice w;
  int rc = run_root([&w]() -> int {
    weft_group *g = weft_group_open(WEFT_FAIL_FAST);
    if (!g) return UV_ENOMEM;
    weft_spawn(g, count_run, &w);
    w.first = weft_group_wait(g);
    w.spawn_after_wait = weft_spawn(g, count_run, &w);
    w.second = weft_group_wait(g);
    w.live = weft_group_live(g);
    w.join = weft_group_join(g);
    return 0;
  });
  CHECK(rc == 0);
  CHECK(w.first == 0);
  CHECK(w.spawn_after_wait == 0);
  CHECK(w.second == 0);
  CHECK(w.live == 0);
  CHECK(w.join == 0);
  CHECK(w.ran == 2);
}
