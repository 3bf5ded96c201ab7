/* scope_group_support.h: helpers shared by the tests of task groups and of
 * cancellation scopes (test_group.cpp, test_scope.cpp). C++ only.
 *
 * Unlike run() in closures.h, run_root() enters no scope around the root
 * task: these tests look at the runtime's own deadlines and cancellation
 * state, which an extra scope would change.
 */
#ifndef WEFT_TEST_SCOPE_GROUP_SUPPORT_H
#define WEFT_TEST_SCOPE_GROUP_SUPPORT_H

#include <chrono>

#include "support.h"
#include "weft.h"

namespace {

// Milliseconds of wall time since start.
inline int64_t elapsed_ms(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now() - start)
      .count();
}

// Runs body() as the root task of weft_main() and returns weft_main()'s
// result. body may capture by reference what it records: it runs to its end
// before weft_main() returns.
template <typename F>
int run_root(F body) {
  return weft_main(
      [](void *arg) -> int { return (*static_cast<F *>(arg))(); }, &body);
}

// Opens a group with the given policy, spawns fn(arg) in it (named name if
// not NULL) and joins it. Returns the join's result, or UV_ENOMEM when the
// group cannot be opened.
inline int join_one(int policy, weft_fn fn, void *arg,
                    const char *name = nullptr) {
  weft_group *g = weft_group_open(policy);
  if (!g) return UV_ENOMEM;
  weft_spawn_named(g, name, fn, arg);
  return weft_group_join(g);
}

// Three levels of groups below the task that spawns levels_level1: level1
// joins a WEFT_COLLECT group holding level2, which joins a WEFT_FAIL_FAST
// group holding level3, which sleeps long_ms. Each level records what its
// wait returned, so a test can see how far a cancellation reached.
struct Levels {
  int64_t long_ms = 0;
  int level3_sleep = 1;
  int level3_cancelled = 0;    // weft_cancelled() after level3's sleep
  int64_t level3_woke_at = -1; // weft_now() after level3's sleep
  int level2_join = 1;
  int level1_join = 1;
};

inline int levels_level3(void *arg) {
  auto *l = static_cast<Levels *>(arg);
  l->level3_sleep = weft_sleep(l->long_ms);
  l->level3_woke_at = weft_now();
  l->level3_cancelled = weft_cancelled();
  return l->level3_sleep;
}

inline int levels_level2(void *arg) {
  auto *l = static_cast<Levels *>(arg);
  l->level2_join = join_one(WEFT_FAIL_FAST, levels_level3, l);
  return l->level2_join;
}

inline int levels_level1(void *arg) {
  auto *l = static_cast<Levels *>(arg);
  l->level1_join = join_one(WEFT_COLLECT, levels_level2, l);
  return l->level1_join;
}

}  // namespace

#endif
