// Tests of task stacks: a task that recurses without bound hits the guard
// page below its stack, and the runtime reports it (task name, "stack
// overflow", stack size) and aborts, rather than corrupting memory.
//
// The overflow kills the process, so each case runs in a child made with
// fork(); the parent reads the child's stderr through a pipe and checks how
// it died. Nothing in the child reports to Catch2.

#include <catch2/catch.hpp>

#include <csignal>
#include <cstring>
#include <string>

#include <sys/wait.h>

#include "child_support.h"
#include "support.h"
#include "weft.h"

using weft_test::ChildOutcome;
using weft_test::run_in_child;

namespace {

// Never set: it only keeps the compiler from proving that the recursion
// cannot end.
volatile int stop_recursion = 0;

// Recurses without bound. The volatile frame and the use of the callee's
// result after the call rule out tail calls and the folding of frames.
__attribute__((noinline)) int recurse(int depth) {
  volatile char frame[256];
  frame[0] = static_cast<char>(depth);
  frame[sizeof frame - 1] = static_cast<char>(depth >> 8);
  if (stop_recursion) return depth;
  return recurse(depth + 1) + frame[0] + frame[sizeof frame - 1];
}

int deep_recursion(void *) { return recurse(0); }

constexpr size_t kChildStack = 128 * 1024;

void overflow_in_spawned_task() {
  weft_main(
      [](void *) -> int {
        weft_group *g = weft_group_open(WEFT_FAIL_FAST);
        if (!g) return UV_ENOMEM;
        weft_task_opts opts;
        memset(&opts, 0, sizeof opts);
        opts.name = "deep-recursion";
        opts.stack_size = kChildStack;
        weft_spawn_opts(g, &opts, deep_recursion, nullptr);
        return weft_group_join(g);
      },
      nullptr);
}

void overflow_in_root_task() {
  weft_main(
      [](void *) -> int {
        weft_task_set_name("deep-recursion");
        return deep_recursion(nullptr);
      },
      nullptr);
}

void check_overflow_report(const ChildOutcome &c, size_t stack_size) {
  INFO("child stderr: " << c.stderr_text);
  CHECK(c.exited_in_time);
  REQUIRE(WIFSIGNALED(c.status));
  CHECK(WTERMSIG(c.status) == SIGABRT);
  CHECK(c.stderr_text.find("deep-recursion") != std::string::npos);
  CHECK(c.stderr_text.find("stack overflow") != std::string::npos);
  CHECK(c.stderr_text.find(std::to_string(stack_size)) != std::string::npos);
}

}  // namespace

TEST_CASE("a stack overflow in a spawned task is reported with its name",
          "[stack]") {
  ChildOutcome c = run_in_child(overflow_in_spawned_task, weft_test_ms(10000));
  check_overflow_report(c, kChildStack);
}

TEST_CASE("a stack overflow in the root task is reported with its name",
          "[stack]") {
  ChildOutcome c = run_in_child(overflow_in_root_task, weft_test_ms(10000));
  check_overflow_report(c, WEFT_STACK_DEFAULT);
}

TEST_CASE("a fault that is not a stack overflow is not reported as one",
          "[stack]") {
  // A null dereference inside a task must still crash as a plain SIGSEGV,
  // without a misleading overflow report.
  ChildOutcome c = run_in_child(
      [] {
        weft_main(
            [](void *) -> int {
              volatile int *volatile p = nullptr;
              return *p;
            },
            nullptr);
      },
      weft_test_ms(10000));
  INFO("child stderr: " << c.stderr_text);
  CHECK(c.exited_in_time);
  CHECK(c.stderr_text.find("stack overflow") == std::string::npos);
  CHECK(!(WIFEXITED(c.status) && WEXITSTATUS(c.status) == 0));
}
