/* closures.h: running C++ closures as weft tasks, for the tests of
 * channels, select, executors and the pool. C++ only. */
#ifndef WEFT_TEST_CLOSURES_H
#define WEFT_TEST_CLOSURES_H

#include <deque>
#include <functional>
#include <utility>

#include "support.h"
#include "weft.h"

/* How long a test's root task may take (scaled) before it fails with
 * UV_ETIMEDOUT instead of waiting for ctest to kill it. */
#ifndef WEFT_TEST_RUN_DEADLINE_MS
#define WEFT_TEST_RUN_DEADLINE_MS 30000
#endif

namespace {

// Runs body as the root task of a runtime with `executors` executors, in a
// scope with a deadline of WEFT_TEST_RUN_DEADLINE_MS (scaled).
inline int run(const weft_opts &opts, std::function<int()> body) {
  return weft_main_opts(
      &opts,
      [](void *arg) -> int {
        weft_scope s;
        weft_scope_enter(&s, weft_test_ms(WEFT_TEST_RUN_DEADLINE_MS));
        int r = (*static_cast<std::function<int()> *>(arg))();
        int left = weft_scope_leave(&s);
        return r != 0 ? r : left;
      },
      &body);
}

inline int run(int executors, std::function<int()> body) {
  weft_opts opts{};
  opts.executors = executors;
  return run(opts, std::move(body));
}

// A group whose tasks are C++ closures. The closures live in the Tasks
// object, which must outlive the join.
class Tasks {
 public:
  explicit Tasks(int policy = WEFT_FAIL_FAST) : group_(weft_group_open(policy)) {}
  Tasks(const Tasks &) = delete;
  Tasks &operator=(const Tasks &) = delete;

  // Spawns f on the given executor (0: the caller's), named name if not
  // NULL. Returns weft's code.
  int spawn(int executor, std::function<int()> f, const char *name = nullptr) {
    if (group_ == nullptr) return UV_ENOMEM;
    fns_.push_back(std::move(f));
    weft_task_opts opts{};
    opts.executor = executor;
    opts.name = name;
    return weft_spawn_opts(group_, &opts, call, &fns_.back());
  }
  int join() {
    int r = weft_group_join(group_);
    group_ = nullptr;
    return r;
  }
  void cancel() { weft_group_cancel(group_); }
  weft_group *group() { return group_; }

 private:
  static int call(void *arg) { return (*static_cast<std::function<int()> *>(arg))(); }
  weft_group *group_;
  std::deque<std::function<int()>> fns_;
};

// Spawns the closure *f into g on the given executor (0: the caller's); the
// closure must outlive the join.
inline int spawn_fn(weft_group *g, std::function<int()> *f, int executor = 0) {
  weft_task_opts opts{};
  opts.executor = executor;
  return weft_spawn_opts(
      g, &opts,
      [](void *arg) -> int { return (*static_cast<std::function<int()> *>(arg))(); },
      f);
}

// Lets the other tasks of this executor run n times over.
inline void yield_n(int n) {
  for (int i = 0; i < n; i++) weft_yield();
}

// Sleeps in 1 ms steps until cond() holds or ms (scaled) have passed.
inline bool wait_until(const std::function<bool()> &cond, int64_t ms) {
  int64_t end = weft_now() + weft_test_ms(ms);
  while (!cond()) {
    if (weft_now() > end) return false;
    weft_sleep(1);
  }
  return true;
}

}  // namespace

#endif
