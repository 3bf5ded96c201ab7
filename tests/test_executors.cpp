// Tests of several executors: weft_main_opts() with 2 and 4 executors,
// tasks spawned onto a given executor or spread with WEFT_EXEC_NEXT, errors
// of remote tasks reaching their group under both policies, cancellation
// (group cancel and scope deadline) reaching tasks that wait on other
// executors, bad executor numbers, many remote spawns, and the idle watch
// of an executor's inbox (weft_opts.idle_spin_us).
//
// Results are recorded in plain variables inside tasks and asserted after
// weft_main_opts() returns.

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <deque>
#include <functional>
#include <string>
#include <vector>

#include "closures.h"
#include "win_support.h"
#include "support.h"
#include "weft.h"

namespace {

int64_t wall_ms(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now() - start)
      .count();
}

}  // namespace

TEST_CASE("weft_executor_id and weft_executor_count", "[executor]") {
  CHECK(weft_executor_id() == 0);
  CHECK(weft_executor_count() == 0);
  int n = GENERATE(1, 2, 4);
  INFO(n << " executors");
  struct {
    int root_id = -1, root_count = -1;
    int ids[5] = {-1, -1, -1, -1, -1};
    int ids_after_wait[5] = {-1, -1, -1, -1, -1};
    int counts[5] = {-1, -1, -1, -1, -1};
    int join = 1;
  } r;
  int rc = run(n, [&]() -> int {
    r.root_id = weft_executor_id();
    r.root_count = weft_executor_count();
    Tasks tasks;
    for (int e = 1; e <= n; e++)
      tasks.spawn(e, [&, e]() -> int {
        r.ids[e] = weft_executor_id();
        r.counts[e] = weft_executor_count();
        // A task stays where it was put, across waits.
        weft_sleep(1);
        weft_yield();
        r.ids_after_wait[e] = weft_executor_id();
        return 0;
      });
    r.join = tasks.join();
    return 0;
  });
  CHECK(rc == 0);
  CHECK(r.join == 0);
  CHECK(r.root_id == 1);
  CHECK(r.root_count == n);
  for (int e = 1; e <= n; e++) {
    INFO("executor " << e);
    CHECK(r.ids[e] == e);
    CHECK(r.ids_after_wait[e] == e);
    CHECK(r.counts[e] == n);
  }
  CHECK(weft_executor_id() == 0);
}

TEST_CASE("executor 0 means the spawner's, including from a remote task",
          "[executor]") {
  struct {
    int child_of_remote = -1;
    int grandchild_join = 1;
  } r;
  int rc = run(4, [&]() -> int {
    Tasks tasks;
    tasks.spawn(3, [&]() -> int {
      // A task on executor 3 opens a group of its own; its children stay
      // there by default.
      Tasks inner;
      inner.spawn(0, [&]() -> int {
        r.child_of_remote = weft_executor_id();
        return 0;
      });
      r.grandchild_join = inner.join();
      return 0;
    });
    return tasks.join();
  });
  CHECK(rc == 0);
  CHECK(r.child_of_remote == 3);
  CHECK(r.grandchild_join == 0);
}

TEST_CASE("WEFT_EXEC_NEXT spreads tasks over the executors", "[executor]") {
  int n = GENERATE(2, 4);
  INFO(n << " executors");
  const int per = 8;
  std::vector<std::atomic<int>> counts(n + 1);
  int spawn_errors = 0;
  int rc = run(n, [&]() -> int {
    Tasks tasks;
    for (int i = 0; i < n * per; i++)
      if (tasks.spawn(WEFT_EXEC_NEXT, [&]() -> int {
            counts[weft_executor_id()]++;
            return 0;
          }) != 0)
        spawn_errors++;
    return tasks.join();
  });
  CHECK(rc == 0);
  CHECK(spawn_errors == 0);
  CHECK(counts[0] == 0);
  // In turn: each executor gets the same share.
  for (int e = 1; e <= n; e++) {
    INFO("executor " << e);
    CHECK(counts[e] == per);
  }
}

TEST_CASE("an invalid executor number gives UV_EINVAL", "[executor]") {
  struct {
    int too_big = 1, negative = 1, far = 1, single = 1;
    int valid = 1;
  } r;
  int rc = run(2, [&]() -> int {
    Tasks tasks;
    auto nop = []() -> int { return 0; };
    r.too_big = tasks.spawn(3, nop);
    r.negative = tasks.spawn(-2, nop);
    r.far = tasks.spawn(1000000, nop);
    r.valid = tasks.spawn(2, nop);
    return tasks.join();
  });
  CHECK(rc == 0);
  CHECK(r.too_big == UV_EINVAL);
  CHECK(r.negative == UV_EINVAL);
  CHECK(r.far == UV_EINVAL);
  CHECK(r.valid == 0);
  rc = run(1, [&]() -> int {
    Tasks tasks;
    r.single = tasks.spawn(2, []() -> int { return 0; });
    return tasks.join();
  });
  CHECK(rc == 0);
  CHECK(r.single == UV_EINVAL);
}

TEST_CASE("a remote task's error reaches its group: WEFT_FAIL_FAST cancels "
          "siblings on other executors",
          "[executor][group]") {
  const int64_t long_ms = weft_test_ms(20000);
  struct {
    int join = 1;
    int sibling_rc[5] = {1, 1, 1, 1, 1};
    int64_t sibling_ms[5] = {-1, -1, -1, -1, -1};
    int64_t join_ms = -1;
    size_t errors = 0;
  } r;
  auto start = std::chrono::steady_clock::now();
  int rc = run(4, [&]() -> int {
    int64_t t0 = weft_now();
    Tasks tasks(WEFT_FAIL_FAST);
    // Siblings that wait long, on every executor; some in sleep, some in a
    // channel receive.
    weft_chan *never = weft_chan_new(sizeof(int), 4, WEFT_CHAN_MPMC);
    for (int e = 1; e <= 4; e++)
      tasks.spawn(e, [&, e]() -> int {
        int64_t s = weft_now();
        int x;
        r.sibling_rc[e] = e % 2 ? weft_sleep(long_ms) : weft_chan_recv(never, &x);
        r.sibling_ms[e] = weft_now() - s;
        return r.sibling_rc[e];
      });
    tasks.spawn(3, []() -> int {
      weft_sleep(10);
      return UV_EIO;
    }, "failer");
    r.join = tasks.join();
    r.join_ms = weft_now() - t0;
    weft_chan_free(never);
    return 0;
  });
  CHECK(rc == 0);
  CHECK(r.join == UV_EIO);
  for (int e = 1; e <= 4; e++) {
    INFO("sibling on executor " << e);
    CHECK(r.sibling_rc[e] == UV_ECANCELED);
    CHECK(r.sibling_ms[e] < weft_test_ms(2000));
  }
  CHECK(r.join_ms < weft_test_ms(2000));
  CHECK(wall_ms(start) < weft_test_ms(5000));
}

TEST_CASE("a remote task's error reaches its group: WEFT_COLLECT keeps them all",
          "[executor][group]") {
  struct {
    int join = 1;
    size_t nerrors = 0;
    int errors[3] = {1, 1, 1};
    std::string names[3];
    int ok_sleep_rc[2] = {1, 1};
  } r;
  int rc = run(4, [&]() -> int {
    Tasks tasks(WEFT_COLLECT);
    // Completion order: EIO (executor 2), EPIPE (executor 4), EINVAL
    // (executor 1, local); two slow successes on 3 and 4 are not cancelled.
    tasks.spawn(2, []() -> int {
      weft_sleep(weft_test_ms(5));
      return UV_EIO;
    }, "eio");
    tasks.spawn(4, []() -> int {
      weft_sleep(weft_test_ms(40));
      return UV_EPIPE;
    }, "epipe");
    tasks.spawn(1, []() -> int {
      weft_sleep(weft_test_ms(80));
      return UV_EINVAL;
    }, "einval");
    for (int i = 0; i < 2; i++)
      tasks.spawn(3 + i, [&, i]() -> int {
        r.ok_sleep_rc[i] = weft_sleep(weft_test_ms(120));
        return 0;
      });
    int wait = weft_group_wait(tasks.group());
    r.nerrors = weft_group_error_count(tasks.group());
    for (size_t i = 0; i < 3; i++) {
      const char *name = nullptr;
      r.errors[i] = weft_group_error(tasks.group(), i, &name);
      if (name) r.names[i] = name;
    }
    r.join = tasks.join();
    return wait == r.join ? 0 : UV_EPROTO;
  });
  CHECK(rc == 0);
  CHECK(r.join == UV_EIO);
  CHECK(r.nerrors == 3);
  CHECK(r.errors[0] == UV_EIO);
  CHECK(r.names[0] == "eio");
  CHECK(r.errors[1] == UV_EPIPE);
  CHECK(r.names[1] == "epipe");
  CHECK(r.errors[2] == UV_EINVAL);
  CHECK(r.names[2] == "einval");
  CHECK(r.ok_sleep_rc[0] == 0);
  CHECK(r.ok_sleep_rc[1] == 0);
}

TEST_CASE("cancellation reaches tasks waiting on other executors",
          "[executor][cancel]") {
  bool by_deadline = GENERATE(false, true);
  INFO((by_deadline ? "scope deadline" : "weft_group_cancel"));
  const int64_t long_ms = weft_test_ms(20000);
  const int64_t deadline = weft_test_ms(40);
  // On executors 2, 3 and 4: a sleep, an MPMC receive, an SPSC receive, a
  // rendezvous send, a LOCAL receive (on a channel of its own executor), a
  // select and a nested group's join.
  const int kinds = 7;
  struct {
    int rc[7] = {1, 1, 1, 1, 1, 1, 1};
    int where[7] = {0, 0, 0, 0, 0, 0, 0};
    int64_t ms[7] = {-1, -1, -1, -1, -1, -1, -1};
    int join = 1;
    int scope = 1;
    int64_t join_ms = -1;
  } r;
  int rc = run(4, [&]() -> int {
    weft_chan *mpmc = weft_chan_new(sizeof(int), 4, WEFT_CHAN_MPMC);
    weft_chan *spsc = weft_chan_new(sizeof(int), 4, WEFT_CHAN_SPSC);
    weft_chan *rv = weft_chan_new(sizeof(int), 0, WEFT_CHAN_MPMC);
    // The select's channels are its own: a receive case on rv would pair
    // with the rendezvous sender.
    weft_chan *sel_a = weft_chan_new(sizeof(int), 4, WEFT_CHAN_MPMC);
    weft_chan *sel_b = weft_chan_new(sizeof(int), 0, WEFT_CHAN_MPMC);
    weft_scope s;
    weft_scope_enter(&s, by_deadline ? deadline : WEFT_NO_DEADLINE);
    int64_t t0 = weft_now();
    Tasks tasks;
    for (int k = 0; k < kinds; k++)
      tasks.spawn(2 + k % 3, [&, k]() -> int {
        r.where[k] = weft_executor_id();
        int64_t s0 = weft_now();
        int x = 0;
        switch (k) {
        case 0: r.rc[k] = weft_sleep(long_ms); break;
        case 1: r.rc[k] = weft_chan_recv(mpmc, &x); break;
        case 2: r.rc[k] = weft_chan_recv(spsc, &x); break;
        case 3: r.rc[k] = weft_chan_send(rv, &x); break;
        case 4: {
          weft_chan *local = weft_chan_new(sizeof(int), 1, WEFT_CHAN_LOCAL);
          r.rc[k] = weft_chan_recv(local, &x);
          weft_chan_free(local);
          break;
        }
        case 5: {
          weft_case cases[2] = {{sel_a, WEFT_SELECT_RECV, &x, 0},
                                {sel_b, WEFT_SELECT_RECV, &x, 0}};
          r.rc[k] = weft_select(cases, 2, long_ms);
          break;
        }
        case 6: {
          Tasks inner;
          inner.spawn(0, [&]() -> int { return weft_sleep(long_ms); });
          r.rc[k] = inner.join();
          break;
        }
        }
        r.ms[k] = weft_now() - s0;
        return r.rc[k];
      });
    if (!by_deadline) {
      weft_sleep(weft_test_ms(20));
      tasks.cancel();
    }
    r.join = tasks.join();
    r.join_ms = weft_now() - t0;
    r.scope = weft_scope_leave(&s);
    weft_chan_free(mpmc);
    weft_chan_free(spsc);
    weft_chan_free(rv);
    weft_chan_free(sel_a);
    weft_chan_free(sel_b);
    return 0;
  });
  int want = by_deadline ? UV_ETIMEDOUT : UV_ECANCELED;
  CHECK(rc == 0);
  for (int k = 0; k < kinds; k++) {
    INFO("waiter " << k);
    CHECK(r.where[k] == 2 + k % 3);
    CHECK(r.rc[k] == want);
    CHECK(r.ms[k] < weft_test_ms(2000));
  }
  CHECK(r.join == want);
  CHECK(r.scope == (by_deadline ? UV_ETIMEDOUT : 0));
  CHECK(r.join_ms < weft_test_ms(2000));
}

TEST_CASE("10,000 remote spawns are all joined", "[executor]") {
  int target = GENERATE(2, WEFT_EXEC_NEXT);
  INFO("executor " << target);
  const int n = 10000;
  std::atomic<long> sum{0};
  std::atomic<int> on_root{0};
  std::atomic<int> ran{0};
  int spawn_errors = 0;
  struct Arg {
    std::atomic<long> *sum;
    std::atomic<int> *on_root;
    std::atomic<int> *ran;
    long i;
  };
  std::vector<Arg> args(n);
  int rc = run(2, [&]() -> int {
    weft_group *g = weft_group_open(WEFT_FAIL_FAST);
    if (g == nullptr) return UV_ENOMEM;
    weft_task_opts opts{};
    opts.executor = target;
    for (int i = 0; i < n; i++) {
      args[i] = Arg{&sum, &on_root, &ran, i};
      int e = weft_spawn_opts(
          g, &opts,
          [](void *p) -> int {
            auto *a = static_cast<Arg *>(p);
            *a->sum += a->i;
            if (weft_executor_id() == 1) ++*a->on_root;
            ++*a->ran;
            return 0;
          },
          &args[i]);
      if (e != 0) spawn_errors++;
    }
    return weft_group_join(g);
  });
  CHECK(rc == 0);
  CHECK(spawn_errors == 0);
  CHECK(ran == n);
  CHECK(sum == (long)n * (n - 1) / 2);
  if (target == 2)
    CHECK(on_root == 0);
  else
    CHECK(on_root == n / 2);
}

namespace {

// The two values {label="a"} and {label="b"} of a built-in labeled
// counter, read when made and again by delta_a() and delta_b().
struct CounterPair {
  weft_counter *a, *b;
  uint64_t a0, b0;
  CounterPair(const char *name, const char *label, const char *va, const char *vb)
      : a(weft_metrics_counter_labeled(name, "A built-in counter.", label, va)),
        b(weft_metrics_counter_labeled(name, "A built-in counter.", label, vb)),
        a0(weft_counter_value(a)),
        b0(weft_counter_value(b)) {}
  uint64_t delta_a() const { return weft_counter_value(a) - a0; }
  uint64_t delta_b() const { return weft_counter_value(b) - b0; }
};

// Runs body as the root task of two executors with the given idle watch.
int run_two(int idle_spin_us, const std::function<int()> &body) {
  weft_opts opts{};
  opts.executors = 2;
  opts.idle_spin_us = idle_spin_us;
  return run(opts, body);
}

// Executor 1 sends 20 items over a rendezvous MPMC channel to a task on
// executor 2, busy for gap_us before each, so that executor 2 runs out of
// work between items; returns the change in weft_executor_idle_total
// {end="spin"} and {end="sleep"} over the run.
struct IdleCounts {
  int rc = -1;
  int received = 0;
  uint64_t spin = 0, sleep = 0;
};

IdleCounts idle_run(int idle_spin_us, uint64_t gap_us) {
  CounterPair idle("weft_executor_idle_total", "end", "spin", "sleep");
  IdleCounts out;
  out.rc = run_two(idle_spin_us, [&]() -> int {
    weft_chan *c = weft_chan_new(sizeof(int), 0, WEFT_CHAN_MPMC);
    if (c == nullptr) return UV_ENOMEM;
    Tasks tasks;
    tasks.spawn(2, [&]() -> int {
      int v;
      while (weft_chan_recv(c, &v) == 0) out.received++;
      return 0;
    });
    int err = 0;
    for (int i = 0; i < 20 && err == 0; i++) {
      uint64_t until = weft_now_ns() + gap_us * 1000u;
      while (weft_now_ns() < until) {
      }
      err = weft_chan_send(c, &i);
    }
    weft_chan_close(c);
    int join = tasks.join();
    weft_chan_free(c);
    return err != 0 ? err : join;
  });
  out.spin = idle.delta_a();
  out.sleep = idle.delta_b();
  return out;
}

}  // namespace

TEST_CASE("idle_spin_us below 0: an idle executor sleeps at once", "[executor]") {
  IdleCounts r = idle_run(-1, 300);
  CHECK(r.rc == 0);
  CHECK(r.received == 20);
  CHECK(r.spin == 0);
  CHECK(r.sleep > 0);
}

TEST_CASE("an idle executor that watches its inbox catches messages there",
          "[executor]") {
  // Gaps of 300 us between items, a watch of 1000 us (the longest): items
  // come while executor 2 watches. How many depends on the scheduling of
  // two busy threads on a shared machine, so the check asks for one.
  IdleCounts r = idle_run(1000, 300);
  INFO("spin " << r.spin << ", sleep " << r.sleep);
  CHECK(r.rc == 0);
  CHECK(r.received == 20);
  CHECK(r.spin > 0);
}

namespace {

// Two tasks on executors 1 and 2 bounce a number rounds times over two
// rendezvous MPMC channels; returns the change in weft_chan_watch_total
// {end="done"} and {end="parked"} over the run.
struct WatchCounts {
  int rc = -1;
  long wrong = 0;
  uint64_t done = 0, parked = 0;
};

WatchCounts watch_run(int idle_spin_us, int rounds) {
  CounterPair watch("weft_chan_watch_total", "end", "done", "parked");
  WatchCounts out;
  out.rc = run_two(idle_spin_us, [&]() -> int {
    weft_chan *ping = weft_chan_new(sizeof(int), 0, WEFT_CHAN_MPMC);
    weft_chan *pong = weft_chan_new(sizeof(int), 0, WEFT_CHAN_MPMC);
    if (ping == nullptr || pong == nullptr) return UV_ENOMEM;
    Tasks tasks;
    tasks.spawn(2, [&]() -> int {
      int v;
      while (weft_chan_recv(ping, &v) == 0) {
        v++;
        if (weft_chan_send(pong, &v) != 0) break;
      }
      return 0;
    });
    int err = 0;
    for (int i = 0; i < rounds && err == 0; i++) {
      int back = -1;
      err = weft_chan_send(ping, &i);
      if (err == 0) err = weft_chan_recv(pong, &back);
      if (back != i + 1) out.wrong++;
    }
    weft_chan_close(ping);
    int join = tasks.join();
    weft_chan_free(ping);
    weft_chan_free(pong);
    return err != 0 ? err : join;
  });
  out.done = watch.delta_a();
  out.parked = watch.delta_b();
  return out;
}

}  // namespace

TEST_CASE("a task waiting on a rendezvous across executors watches for its "
          "partner before it parks",
          "[executor][chan]") {
  // Every hand-off is answered at once from the other executor, so most
  // waits end while the task watches; how many depends on the scheduling
  // of two threads on a shared machine, so the check asks for one.
  WatchCounts r = watch_run(0, 2000);
  INFO("done " << r.done << ", parked " << r.parked);
  CHECK(r.rc == 0);
  CHECK(r.wrong == 0);
  CHECK(r.done > 0);
  // At most one watch per wait: two sends and two receives a round.
  CHECK(r.done + r.parked <= 4 * 2000 + 4);
}

TEST_CASE("idle_spin_us below 0: rendezvous waits park at once", "[executor][chan]") {
  WatchCounts r = watch_run(-1, 500);
  CHECK(r.rc == 0);
  CHECK(r.wrong == 0);
  CHECK(r.done == 0);
  CHECK(r.parked == 0);
}

namespace {
// Starts a libuv timer on the executor's loop and never closes it: a leak
// the runtime finds when it ends.
int leave_timer_open(void *arg) {
  auto *timer = static_cast<uv_timer_t *>(arg);
  return uv_timer_init(weft_loop(), timer);
}

// weft_main_opts() itself, without the switch tests/support.h turns on.
int main_with(int strict, uv_timer_t *timer) {
  weft_opts o{};
  o.executors = 1;
  o.handles_strict = strict;
  return (weft_main_opts)(&o, leave_timer_open, timer);
}
} // namespace

TEST_CASE("handles_strict: a handle left open when the runtime ends is an error",
          "[executor]") {
  uv_timer_t timer;
  // Off: the handle is closed and a warning logged; the result stands.
  CHECK(main_with(0, &timer) == 0);
  // On: the same run returns WEFT_EHANDLES.
  CHECK(main_with(1, &timer) == WEFT_EHANDLES);
  CHECK(std::string(weft_err_name(WEFT_EHANDLES)) == "EHANDLES");
}
