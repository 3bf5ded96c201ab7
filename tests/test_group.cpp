// Tests of task groups: results, the two policies, cancellation through
// nested groups, and the clean-up of a group its owner forgot to join.
//
// Results are recorded in plain structs inside tasks and asserted after
// weft_main() returns.

#include <catch2/catch.hpp>

#include <chrono>
#include <string>
#include <vector>

#include "support.h"
#include "weft.h"

namespace {

int64_t elapsed_ms(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now() - start)
      .count();
}

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
  int rc = weft_main(
      [](void *arg) -> int {
        auto *x = static_cast<Result *>(arg);
        weft_group *g = weft_group_open(WEFT_FAIL_FAST);
        if (!g) return UV_ENOMEM;
        x->live = weft_group_live(g);
        x->errors = weft_group_error_count(g);
        x->join = weft_group_join(g);
        return 0;
      },
      &r);
  CHECK(rc == 0);
  CHECK(r.live == 0);
  CHECK(r.errors == 0);
  CHECK(r.join == 0);
}

TEST_CASE("join returns 0 when every task succeeds", "[group]") {
  Step steps[3] = {{5, 0, 1, false}, {1, 0, 1, false}, {0, 0, 1, false}};
  int rc = weft_main(
      [](void *arg) -> int {
        auto *s = static_cast<Step *>(arg);
        weft_group *g = weft_group_open(WEFT_FAIL_FAST);
        if (!g) return UV_ENOMEM;
        for (int i = 0; i < 3; i++) weft_spawn(g, sleep_then_return, &s[i]);
        return weft_group_join(g);
      },
      steps);
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
  int rc = weft_main(
      [](void *arg) -> int {
        auto *s = static_cast<Step *>(arg);
        weft_group *g = weft_group_open(WEFT_FAIL_FAST);
        if (!g) return UV_ENOMEM;
        for (int i = 0; i < 3; i++) weft_spawn(g, sleep_then_return, &s[i]);
        return weft_group_join(g);
      },
      steps);
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
  weft_group *g = weft_group_open(WEFT_FAIL_FAST);
  if (!g) return UV_ENOMEM;
  weft_spawn(g, grandchild_sleep_long, f);
  f->nested_join_rc = weft_group_join(g);
  return f->nested_join_rc;
}

}  // namespace

TEST_CASE("WEFT_FAIL_FAST cancels siblings in sleep and in nested joins",
          "[group]") {
  FailFast f;
  f.long_ms = weft_test_ms(20000);
  auto start = std::chrono::steady_clock::now();
  int rc = weft_main(
      [](void *arg) -> int {
        auto *x = static_cast<FailFast *>(arg);
        int64_t t0 = weft_now();
        weft_group *g = weft_group_open(WEFT_FAIL_FAST);
        if (!g) return UV_ENOMEM;
        weft_spawn_named(g, "sleeper", sleep_long, x);
        weft_spawn_named(g, "nested", join_nested, x);
        weft_spawn_named(g, "failer", fail_soon, x);
        x->join_rc = weft_group_join(g);
        x->join_ms = weft_now() - t0;
        return 0;
      },
      &f);
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

namespace {

struct Collect {
  Step steps[4];
  int wait_rc = 1;
  int join_rc = 1;
  size_t error_count = 0;
  size_t live_after_wait = 99;
  int errors[3] = {1, 1, 1};
  std::string names[3];
  bool name_present[3] = {false, false, false};
};

}  // namespace

TEST_CASE("WEFT_COLLECT runs every task to the end and keeps every error",
          "[group]") {
  Collect c;
  // Completion order by time: "first-fail" (EIO), "ok-fast", "second-fail"
  // (EINVAL), "ok-slow".
  c.steps[0] = {weft_test_ms(60), 0, 1, false};           // ok-slow
  c.steps[1] = {weft_test_ms(10), UV_EIO, 1, false};      // first-fail
  c.steps[2] = {weft_test_ms(35), UV_EINVAL, 1, false};   // second-fail
  c.steps[3] = {weft_test_ms(20), 0, 1, false};           // ok-fast
  int rc = weft_main(
      [](void *arg) -> int {
        auto *x = static_cast<Collect *>(arg);
        weft_group *g = weft_group_open(WEFT_COLLECT);
        if (!g) return UV_ENOMEM;
        weft_spawn_named(g, "ok-slow", sleep_then_return, &x->steps[0]);
        weft_spawn_named(g, "first-fail", sleep_then_return, &x->steps[1]);
        weft_spawn_named(g, "second-fail", sleep_then_return, &x->steps[2]);
        weft_spawn_named(g, "ok-fast", sleep_then_return, &x->steps[3]);
        x->wait_rc = weft_group_wait(g);
        x->live_after_wait = weft_group_live(g);
        x->error_count = weft_group_error_count(g);
        for (size_t i = 0; i < 3; i++) {
          const char *name = nullptr;
          x->errors[i] = weft_group_error(g, i, &name);
          if (name) {
            x->name_present[i] = true;
            x->names[i] = name;
          }
        }
        // A NULL name pointer is allowed.
        if (weft_group_error(g, 0, nullptr) != x->errors[0]) return UV_EINVAL;
        x->join_rc = weft_group_join(g);
        return 0;
      },
      &c);

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

namespace {

// Three levels of groups under the root: g1 (opened by the root) holds
// level1, which opens g2 holding level2, which opens g3 holding level3.
struct Levels {
  int level1_join = 1;
  int level2_join = 1;
  int level3_sleep = 1;
  int level3_cancelled = 0;
  int root_join = 1;
  int64_t cancel_to_join_ms = -1;
  int64_t long_ms = 0;
};

int level3(void *arg) {
  auto *l = static_cast<Levels *>(arg);
  l->level3_sleep = weft_sleep(l->long_ms);
  l->level3_cancelled = weft_cancelled();
  return l->level3_sleep;
}

int level2(void *arg) {
  auto *l = static_cast<Levels *>(arg);
  weft_group *g = weft_group_open(WEFT_FAIL_FAST);
  if (!g) return UV_ENOMEM;
  weft_spawn(g, level3, l);
  l->level2_join = weft_group_join(g);
  return l->level2_join;
}

int level1(void *arg) {
  auto *l = static_cast<Levels *>(arg);
  weft_group *g = weft_group_open(WEFT_COLLECT);
  if (!g) return UV_ENOMEM;
  weft_spawn(g, level2, l);
  l->level1_join = weft_group_join(g);
  return l->level1_join;
}

}  // namespace

TEST_CASE("weft_group_cancel reaches tasks in groups two levels down",
          "[group]") {
  Levels l;
  l.long_ms = weft_test_ms(20000);
  auto start = std::chrono::steady_clock::now();
  int rc = weft_main(
      [](void *arg) -> int {
        auto *x = static_cast<Levels *>(arg);
        weft_group *g = weft_group_open(WEFT_COLLECT);
        if (!g) return UV_ENOMEM;
        weft_spawn(g, level1, x);
        // Give every level time to start and block.
        weft_sleep(20);
        int64_t t0 = weft_now();
        weft_group_cancel(g);
        x->root_join = weft_group_join(g);
        x->cancel_to_join_ms = weft_now() - t0;
        // The root's own scope was never cancelled.
        return weft_cancelled();
      },
      &l);
  int64_t wall = elapsed_ms(start);

  CHECK(rc == 0);
  CHECK(l.level3_sleep == UV_ECANCELED);
  CHECK(l.level3_cancelled == UV_ECANCELED);
  CHECK(l.level2_join == UV_ECANCELED);
  CHECK(l.level1_join == UV_ECANCELED);
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
  int rc = weft_main(
      [](void *arg) -> int {
        auto *x = static_cast<LateSpawn *>(arg);
        weft_group *g = weft_group_open(WEFT_FAIL_FAST);
        if (!g) return UV_ENOMEM;
        weft_group_cancel(g);
        x->spawn_rc = weft_spawn(g, record_start_state, x);
        x->join_rc = weft_group_join(g);
        return 0;
      },
      &s);
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
  int rc = weft_main(
      [](void *arg) -> int {
        auto *x = static_cast<Forgotten *>(arg);
        weft_group *g = weft_group_open(WEFT_COLLECT);
        if (!g) return UV_ENOMEM;
        weft_spawn(g, forget_to_join, x);
        int join = weft_group_join(g);
        x->child_rc_seen = join;
        return 7;
      },
      &f);
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

struct Live {
  size_t after_spawn = 99;
  size_t after_turn[3] = {99, 99, 99};
  int join_rc = 1;
};

// Task k yields k times, then ends: after each of the root's yields one more
// task has ended.
int yield_n_times(void *arg) {
  int n = static_cast<int>(reinterpret_cast<intptr_t>(arg));
  for (int i = 0; i < n; i++) weft_yield();
  return 0;
}

}  // namespace

TEST_CASE("weft_group_live counts the tasks that have not ended", "[group]") {
  Live l;
  int rc = weft_main(
      [](void *arg) -> int {
        auto *x = static_cast<Live *>(arg);
        weft_group *g = weft_group_open(WEFT_FAIL_FAST);
        if (!g) return UV_ENOMEM;
        for (intptr_t k = 0; k < 3; k++)
          weft_spawn(g, yield_n_times, reinterpret_cast<void *>(k));
        x->after_spawn = weft_group_live(g);
        for (int i = 0; i < 3; i++) {
          weft_yield();
          x->after_turn[i] = weft_group_live(g);
        }
        x->join_rc = weft_group_join(g);
        return 0;
      },
      &l);
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
  int rc = weft_main(
      [](void *arg) -> int {
        auto *x = static_cast<WaitTwice *>(arg);
        weft_group *g = weft_group_open(WEFT_FAIL_FAST);
        if (!g) return UV_ENOMEM;
        weft_spawn(g, count_run, x);
        x->first = weft_group_wait(g);
        x->spawn_after_wait = weft_spawn(g, count_run, x);
        x->second = weft_group_wait(g);
        x->live = weft_group_live(g);
        x->join = weft_group_join(g);
        return 0;
      },
      &w);
  CHECK(rc == 0);
  CHECK(w.first == 0);
  CHECK(w.spawn_after_wait == 0);
  CHECK(w.second == 0);
  CHECK(w.live == 0);
  CHECK(w.join == 0);
  CHECK(w.ran == 2);
}
