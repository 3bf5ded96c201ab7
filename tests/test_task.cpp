// Tests of tasks as a user sees them: weft_main, yield, sleep, time, names
// and stack sizes.
//
// Every test runs the runtime with weft_main() and asserts only after it has
// returned: Catch2 assertions throw, and an exception must never unwind a
// task's stack.

#include <catch2/catch.hpp>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "support.h"
#include "weft.h"

namespace {

// Milliseconds of wall-clock time since start, measured outside the runtime
// so that the bound does not depend on the clock under test.
int64_t elapsed_ms(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now() - start)
      .count();
}

}  // namespace

TEST_CASE("weft_main returns the root task's result", "[task]") {
  int value = 42;
  int rc = weft_main([](void *arg) -> int { return *static_cast<int *>(arg); },
                     &value);
  CHECK(rc == 42);

  rc = weft_main([](void *) -> int { return UV_EINVAL; }, nullptr);
  CHECK(rc == UV_EINVAL);

  rc = weft_main([](void *) -> int { return 0; }, nullptr);
  CHECK(rc == 0);
}

TEST_CASE("weft_main can run again after it returns", "[task]") {
  // A program may start the runtime several times in a row; each run must
  // leave nothing behind that breaks the next.
  for (int i = 0; i < 3; i++) {
    int seen = -1;
    int rc = weft_main(
        [](void *arg) -> int {
          *static_cast<int *>(arg) = weft_in_task();
          return weft_yield();
        },
        &seen);
    CHECK(rc == 0);
    CHECK(seen != 0);
  }
}

TEST_CASE("weft_in_task, weft_loop and weft_task_name outside a task",
          "[task]") {
  CHECK(weft_in_task() == 0);
  CHECK(weft_loop() == nullptr);
  CHECK(weft_task_name() == nullptr);
  CHECK(weft_task_stack_size() == 0);
  // Waiting needs a task to suspend.
  CHECK(weft_yield() == WEFT_ENOTASK);
  CHECK(weft_sleep(1) == WEFT_ENOTASK);
}

TEST_CASE("weft_loop gives the executor's loop inside a task", "[task]") {
  struct Seen {
    void *loop = nullptr;
    int in_task = 0;
  } seen;
  int rc = weft_main(
      [](void *arg) -> int {
        auto *s = static_cast<Seen *>(arg);
        s->loop = weft_loop();
        s->in_task = weft_in_task();
        return 0;
      },
      &seen);
  CHECK(rc == 0);
  CHECK(seen.loop != nullptr);
  CHECK(seen.in_task != 0);
}

namespace {

struct Interleave {
  std::string order;
  int yield_errors = 0;
};

struct Player {
  Interleave *shared;
  char letter;
};

int play_three_turns(void *arg) {
  auto *p = static_cast<Player *>(arg);
  for (int i = 0; i < 3; i++) {
    p->shared->order.push_back(p->letter);
    if (weft_yield() != 0) p->shared->yield_errors++;
  }
  return 0;
}

}  // namespace

TEST_CASE("weft_yield interleaves two tasks in round-robin order", "[task]") {
  Interleave shared;
  Player a{&shared, 'A'};
  Player b{&shared, 'B'};
  struct Args {
    Player *a, *b;
  } args{&a, &b};

  int rc = weft_main(
      [](void *arg) -> int {
        auto *x = static_cast<Args *>(arg);
        weft_group *g = weft_group_open(WEFT_FAIL_FAST);
        if (!g) return UV_ENOMEM;
        int err = weft_spawn(g, play_three_turns, x->a);
        if (err == 0) err = weft_spawn(g, play_three_turns, x->b);
        int join = weft_group_join(g);
        return err ? err : join;
      },
      &args);

  CHECK(rc == 0);
  CHECK(shared.order == "ABABAB");
  CHECK(shared.yield_errors == 0);
}

namespace {

struct Sleeper {
  int64_t ms;
  int result;
  std::vector<int64_t> *wake_order;
};

int sleep_then_record(void *arg) {
  auto *s = static_cast<Sleeper *>(arg);
  s->result = weft_sleep(s->ms);
  s->wake_order->push_back(s->ms);
  return 0;
}

}  // namespace

TEST_CASE("sleeping tasks wake in the order of their deadlines", "[task]") {
  std::vector<int64_t> wake_order;
  // Spawned in the order 30, 10, 20; they must wake 10, 20, 30.
  Sleeper sleepers[3] = {{weft_test_ms(30), 1, &wake_order},
                         {weft_test_ms(10), 1, &wake_order},
                         {weft_test_ms(20), 1, &wake_order}};
  int64_t slept = -1;
  struct Args {
    Sleeper *sleepers;
    int64_t *slept;
  } args{sleepers, &slept};

  int rc = weft_main(
      [](void *arg) -> int {
        auto *x = static_cast<Args *>(arg);
        int64_t t0 = weft_now();
        weft_group *g = weft_group_open(WEFT_FAIL_FAST);
        if (!g) return UV_ENOMEM;
        for (int i = 0; i < 3; i++) weft_spawn(g, sleep_then_record, &x->sleepers[i]);
        int err = weft_group_join(g);
        *x->slept = weft_now() - t0;
        return err;
      },
      &args);

  CHECK(rc == 0);
  REQUIRE(wake_order.size() == 3);
  CHECK(wake_order[0] == weft_test_ms(10));
  CHECK(wake_order[1] == weft_test_ms(20));
  CHECK(wake_order[2] == weft_test_ms(30));
  for (auto &s : sleepers) CHECK(s.result == 0);
  // The longest sleep bounds the whole group from below (allowing for the
  // millisecond rounding of the loop's clock).
  CHECK(slept >= weft_test_ms(30) - 1);
}

TEST_CASE("weft_sleep waits at least the time asked", "[task]") {
  struct Result {
    int rc = 1;
    int64_t slept_ms = -1;
    int zero_rc = 1;
    int negative_rc = 1;
  } r;
  auto start = std::chrono::steady_clock::now();
  int rc = weft_main(
      [](void *arg) -> int {
        auto *x = static_cast<Result *>(arg);
        int64_t t0 = weft_now();
        x->rc = weft_sleep(25);
        x->slept_ms = weft_now() - t0;
        // Zero and negative sleeps only yield.
        x->zero_rc = weft_sleep(0);
        x->negative_rc = weft_sleep(-5);
        return 0;
      },
      &r);
  int64_t wall = elapsed_ms(start);

  CHECK(rc == 0);
  CHECK(r.rc == 0);
  CHECK(r.slept_ms >= 24);
  CHECK(r.zero_rc == 0);
  CHECK(r.negative_rc == 0);
  CHECK(wall >= 24);
  CHECK(wall < weft_test_ms(5000));
}

TEST_CASE("weft_now and weft_now_ns are monotonic", "[task]") {
  struct Result {
    int backwards = 0;
    int backwards_ns = 0;
    int64_t before = 0;
    int64_t after = 0;
    uint64_t before_ns = 0;
    uint64_t after_ns = 0;
  } r;
  int rc = weft_main(
      [](void *arg) -> int {
        auto *x = static_cast<Result *>(arg);
        int64_t prev = weft_now();
        uint64_t prev_ns = weft_now_ns();
        for (int i = 0; i < 10000; i++) {
          int64_t now = weft_now();
          uint64_t now_ns = weft_now_ns();
          if (now < prev) x->backwards++;
          if (now_ns < prev_ns) x->backwards_ns++;
          prev = now;
          prev_ns = now_ns;
          if (i % 1000 == 0) weft_yield();
        }
        x->before = weft_now();
        x->before_ns = weft_now_ns();
        weft_sleep(20);
        x->after = weft_now();
        x->after_ns = weft_now_ns();
        return 0;
      },
      &r);

  CHECK(rc == 0);
  CHECK(r.backwards == 0);
  CHECK(r.backwards_ns == 0);
  CHECK(r.after - r.before >= 19);
  CHECK(r.after_ns - r.before_ns >= 15u * 1000000u);
}

namespace {

struct Names {
  std::string root;
  std::string spawned;
  std::string renamed;
  std::string cut;
  std::string opts_named;
  bool spawned_null = false;
};

int record_spawned_name(void *arg) {
  auto *n = static_cast<Names *>(arg);
  const char *name = weft_task_name();
  if (name) n->spawned = name;
  weft_task_set_name("renamed-task");
  name = weft_task_name();
  if (name) n->renamed = name;
  weft_task_set_name("0123456789abcdefghijklmnopqrstuvwxyz-0123456789");
  name = weft_task_name();
  if (name) n->cut = name;
  return 0;
}

int record_opts_name(void *arg) {
  auto *n = static_cast<Names *>(arg);
  const char *name = weft_task_name();
  if (name) n->opts_named = name;
  return 0;
}

}  // namespace

TEST_CASE("task names", "[task]") {
  Names names;
  int rc = weft_main(
      [](void *arg) -> int {
        auto *n = static_cast<Names *>(arg);
        const char *root = weft_task_name();
        if (root) n->root = root;
        weft_group *g = weft_group_open(WEFT_FAIL_FAST);
        if (!g) return UV_ENOMEM;
        // The name is copied: the buffer may change after the spawn.
        char name[32];
        strcpy(name, "fetcher-7");
        int err = weft_spawn_named(g, name, record_spawned_name, n);
        strcpy(name, "clobbered");
        weft_task_opts opts;
        memset(&opts, 0, sizeof opts);
        opts.name = "with-opts";
        if (err == 0) err = weft_spawn_opts(g, &opts, record_opts_name, n);
        int join = weft_group_join(g);
        return err ? err : join;
      },
      &names);

  CHECK(rc == 0);
  CHECK(names.root == "main");
  CHECK(names.spawned == "fetcher-7");
  CHECK(names.renamed == "renamed-task");
  // Names are cut at 31 bytes.
  CHECK(names.cut == "0123456789abcdefghijklmnopqrstu");
  CHECK(names.opts_named == "with-opts");
}

namespace {

struct StackSizes {
  size_t root = 0;
  size_t default_child = 0;
  size_t big_child = 0;
  int big_child_used = 0;
};

constexpr size_t kBigStack = 512 * 1024;

int record_default_stack(void *arg) {
  static_cast<StackSizes *>(arg)->default_child = weft_task_stack_size();
  return 0;
}

// Uses a quarter of a 512 KiB stack, far more than the default 64 KiB would
// hold, to show that the requested size is really there.
int record_big_stack(void *arg) {
  auto *s = static_cast<StackSizes *>(arg);
  s->big_child = weft_task_stack_size();
  volatile char buf[128 * 1024];
  for (size_t i = 0; i < sizeof buf; i += 512) buf[i] = 1;
  int sum = 0;
  for (size_t i = 0; i < sizeof buf; i += 512) sum += buf[i];
  s->big_child_used = sum;
  return 0;
}

int spawn_stack_probes(void *arg) {
  auto *s = static_cast<StackSizes *>(arg);
  s->root = weft_task_stack_size();
  weft_group *g = weft_group_open(WEFT_FAIL_FAST);
  if (!g) return UV_ENOMEM;
  int err = weft_spawn(g, record_default_stack, s);
  weft_task_opts opts;
  memset(&opts, 0, sizeof opts);
  opts.name = "big-stack";
  opts.stack_size = kBigStack;
  if (err == 0) err = weft_spawn_opts(g, &opts, record_big_stack, s);
  int join = weft_group_join(g);
  return err ? err : join;
}

}  // namespace

TEST_CASE("stack size per task with weft_spawn_opts", "[task][stack]") {
  StackSizes sizes;
  int rc = weft_main(spawn_stack_probes, &sizes);
  CHECK(rc == 0);
  CHECK(sizes.root >= WEFT_STACK_DEFAULT);
  CHECK(sizes.default_child >= WEFT_STACK_DEFAULT);
  CHECK(sizes.big_child >= kBigStack);
  CHECK(sizes.big_child_used == 128 * 1024 / 512);
}

TEST_CASE("weft_main_opts with a custom default stack size", "[task][stack]") {
  constexpr size_t kDefault = 1024 * 1024;
  weft_opts opts;
  memset(&opts, 0, sizeof opts);
  opts.stack_size = kDefault;
  StackSizes sizes;
  int rc = weft_main_opts(&opts, spawn_stack_probes, &sizes);
  CHECK(rc == 0);
  CHECK(sizes.root >= kDefault);
  CHECK(sizes.default_child >= kDefault);
  CHECK(sizes.big_child >= kBigStack);

  // NULL options mean the defaults.
  StackSizes defaults;
  rc = weft_main_opts(nullptr, spawn_stack_probes, &defaults);
  CHECK(rc == 0);
  CHECK(defaults.root >= WEFT_STACK_DEFAULT);
  CHECK(defaults.default_child >= WEFT_STACK_DEFAULT);
}

namespace {

int never_runs(void *) { return 0; }

}  // namespace

TEST_CASE("stack sizes below WEFT_STACK_MIN are refused", "[task][stack]") {
  weft_opts opts;
  memset(&opts, 0, sizeof opts);
  opts.stack_size = WEFT_STACK_MIN / 4;
  CHECK(weft_main_opts(&opts, never_runs, nullptr) == WEFT_ESTACKSIZE);

  int spawn_rc = 1;
  int rc = weft_main(
      [](void *arg) -> int {
        weft_group *g = weft_group_open(WEFT_FAIL_FAST);
        if (!g) return UV_ENOMEM;
        weft_task_opts topts;
        memset(&topts, 0, sizeof topts);
        topts.stack_size = 1024;
        *static_cast<int *>(arg) = weft_spawn_opts(g, &topts, never_runs, nullptr);
        return weft_group_join(g);
      },
      &spawn_rc);
  CHECK(rc == 0);
  CHECK(spawn_rc == WEFT_ESTACKSIZE);
}

namespace {

struct Many {
  int tasks = 0;
  long counter = 0;
  int spawn_errors = 0;
  int first_spawn_error = 0;
  int yield_errors = 0;
};

int count_and_yield(void *arg) {
  auto *m = static_cast<Many *>(arg);
  m->counter++;
  if (weft_yield() != 0) m->yield_errors++;
  return 0;
}

#if defined(__linux__)
long count_mappings() {
  FILE *f = fopen("/proc/self/maps", "r");
  if (f == nullptr) return -1;
  long n = 0;
  for (int ch; (ch = fgetc(f)) != EOF;)
    if (ch == '\n') n++;
  fclose(f);
  return n;
}

struct Probe {
  weft_event *go = nullptr;
  long before = -1, during = -1;
};

int wait_for_go(void *arg) { return weft_event_wait(static_cast<Probe *>(arg)->go); }
#endif

// How many tasks the system lets a process hold at once, up to wanted. Each
// task's stack is a mapping, and its guard page a second one where the
// kernel has no MADV_GUARD_INSTALL (Linux before 6.13, qemu's user mode);
// vm.max_map_count (65,530 by default) bounds a process's mappings. The
// mappings a task costs are measured with 1,000 of them alive.
int tasks_that_fit(int wanted) {
#if defined(__linux__)
  long limit = 0;
  if (FILE *f = fopen("/proc/sys/vm/max_map_count", "r")) {
    if (fscanf(f, "%ld", &limit) != 1) limit = 0;
    fclose(f);
  }
  constexpr int kProbe = 1000;
  Probe p;
  int rc = weft_main(
      [](void *arg) -> int {
        auto *pr = static_cast<Probe *>(arg);
        pr->go = weft_event_new();
        weft_group *g = weft_group_open(WEFT_FAIL_FAST);
        if (pr->go == nullptr || g == nullptr) return UV_ENOMEM;
        pr->before = count_mappings();
        for (int i = 0; i < kProbe; i++)
          if (weft_spawn(g, wait_for_go, pr) != 0) break;
        weft_yield();  // each starts, and waits
        pr->during = count_mappings();
        weft_event_set(pr->go);
        int jr = weft_group_join(g);
        weft_event_free(pr->go);
        return jr;
      },
      &p);
  if (rc != 0 || limit <= 0 || p.before < 0 || p.during <= p.before) return wanted;
  double per_task = double(p.during - p.before) / kProbe;
  long fit = long(double(limit - p.during) / per_task * 0.9);
  return fit < wanted ? int(fit) : wanted;
#else
  return wanted;
#endif
}

}  // namespace

TEST_CASE("a hundred thousand tasks in one group", "[task][scale]") {
  // 100,000 where the mappings allow it (a kernel with MADV_GUARD_INSTALL);
  // else as many as vm.max_map_count lets one process hold, which the test
  // says, so that an older kernel or an emulator runs the same test.
  const int kTasks = tasks_that_fit(100000);
  if (kTasks < 100000)
    WARN("vm.max_map_count holds " << kTasks << " tasks' stacks at once here");
  REQUIRE(kTasks >= 10000);
  Many many;
  many.tasks = kTasks;
  auto start = std::chrono::steady_clock::now();
  int rc = weft_main(
      [](void *arg) -> int {
        auto *m = static_cast<Many *>(arg);
        weft_group *g = weft_group_open(WEFT_FAIL_FAST);
        if (!g) return UV_ENOMEM;
        for (int i = 0; i < m->tasks; i++) {
          int err = weft_spawn(g, count_and_yield, m);
          if (err != 0) {
            if (m->spawn_errors++ == 0) m->first_spawn_error = err;
          }
        }
        return weft_group_join(g);
      },
      &many);
  int64_t wall = elapsed_ms(start);

  INFO("first spawn error: " << many.first_spawn_error << " ("
                             << weft_strerror(many.first_spawn_error) << ")");
  CHECK(many.spawn_errors == 0);
  CHECK(rc == 0);
  CHECK(many.counter == kTasks);
  CHECK(many.yield_errors == 0);
  CHECK(wall < weft_test_ms(60000));
}

namespace {

struct CancelPoints {
  int yield_rc = 0;
  int yields_before_cancel = 0;
  int sleep_rc = 0;
  int64_t sleep_ms = -1;
  int cancelled_after_yield = 0;
  int cancelled_after_sleep = 0;
};

// Yields until a yield reports the cancellation (bounded in time, so that a
// runtime that never reports it cannot hang the test).
int yield_until_cancelled(void *arg) {
  auto *c = static_cast<CancelPoints *>(arg);
  int64_t give_up = weft_now() + weft_test_ms(5000);
  while (weft_now() < give_up) {
    int rc = weft_yield();
    if (rc != 0) {
      c->yield_rc = rc;
      break;
    }
    c->yields_before_cancel++;
  }
  c->cancelled_after_yield = weft_cancelled();
  return 0;
}

int sleep_until_cancelled(void *arg) {
  auto *c = static_cast<CancelPoints *>(arg);
  int64_t t0 = weft_now();
  c->sleep_rc = weft_sleep(weft_test_ms(10000));
  c->sleep_ms = weft_now() - t0;
  c->cancelled_after_sleep = weft_cancelled();
  return 0;
}

}  // namespace

TEST_CASE("weft_yield and weft_sleep return the cancellation code", "[task]") {
  CancelPoints c;
  auto start = std::chrono::steady_clock::now();
  int rc = weft_main(
      [](void *arg) -> int {
        auto *x = static_cast<CancelPoints *>(arg);
        weft_group *g = weft_group_open(WEFT_COLLECT);
        if (!g) return UV_ENOMEM;
        weft_spawn(g, yield_until_cancelled, x);
        weft_spawn(g, sleep_until_cancelled, x);
        // Let both children run for a while, then cancel them.
        for (int i = 0; i < 5; i++) weft_yield();
        weft_sleep(10);
        weft_group_cancel(g);
        weft_group_cancel(g);  // idempotent
        weft_group_join(g);
        return 0;
      },
      &c);
  int64_t wall = elapsed_ms(start);

  CHECK(rc == 0);
  CHECK(c.yield_rc == UV_ECANCELED);
  CHECK(c.yields_before_cancel > 0);
  CHECK(c.cancelled_after_yield == UV_ECANCELED);
  CHECK(c.sleep_rc == UV_ECANCELED);
  CHECK(c.cancelled_after_sleep == UV_ECANCELED);
  CHECK(c.sleep_ms < weft_test_ms(5000));
  CHECK(wall < weft_test_ms(5000));
}

namespace {

struct Trim {
  size_t outside = 1;  // weft_task_trim_stack() outside a task
  size_t first = 0;    // after deep work
  size_t second = 0;   // after deep work again
  int sum = 0;
};

// Touches about 32 KiB of the stack below the caller, then returns.
__attribute__((noinline)) int touch_deep(int seed) {
  volatile char buf[32 * 1024];
  for (size_t i = 0; i < sizeof buf; i += 256) buf[i] = (char)(seed + (int)i);
  int sum = 0;
  for (size_t i = 0; i < sizeof buf; i += 256) sum += buf[i];
  return sum;
}

int trim_task(void *arg) {
  auto *t = static_cast<Trim *>(arg);
  t->sum += touch_deep(1);
  t->first = weft_task_trim_stack();
  // The pages come back as zeros when touched again: the task goes on.
  t->sum += touch_deep(2);
  t->second = weft_task_trim_stack();
  return weft_sleep(1);
}

}  // namespace

TEST_CASE("weft_task_trim_stack gives back the pages below the frame", "[task]") {
  Trim t;
  t.outside = weft_task_trim_stack();
  int rc = weft_main(trim_task, &t);
  CHECK(rc == 0);
  CHECK(t.outside == 0);
  CHECK(t.sum != 0);
  // Where it works (Linux, the assembly switch, not a Valgrind build, the
  // frame on the task's own stack), everything below the frame but a
  // little: most of the 64 KiB stack; elsewhere 0. The same both times.
  CHECK((t.first == 0 || t.first >= 32 * 1024));
  CHECK(t.second == t.first);
#if defined(__linux__) && defined(__x86_64__) && !defined(__SANITIZE_ADDRESS__)
  // Under Valgrind (whose preload is mapped into the process) the runtime
  // is built without it.
  bool valgrind = false;
  if (FILE *f = fopen("/proc/self/maps", "r")) {
    char line[512];
    while (fgets(line, sizeof line, f) != nullptr)
      if (strstr(line, "vgpreload") != nullptr) valgrind = true;
    fclose(f);
  }
  if (!valgrind) CHECK(t.first > 0);
#endif
}
