// Tests of task stacks: a task that recurses without bound hits the guard
// page below its stack, and the runtime reports it (task name, "stack
// overflow", stack size) and aborts, rather than corrupting memory.
//
// The overflow kills the process, so each case runs in a child made with
// fork(); the parent reads the child's stderr through a pipe and checks how
// it died. Nothing in the child reports to Catch2.

#include <catch2/catch.hpp>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <string>

#include <fcntl.h>
#include <poll.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "support.h"
#include "weft.h"

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

struct ChildOutcome {
  bool exited_in_time = false;
  int status = 0;
  std::string stderr_text;
};

int64_t monotonic_ms() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

// Runs body() in a child process whose stderr goes to a pipe; waits at most
// timeout_ms for it to end (then kills it) and returns how it ended and what
// it wrote to stderr.
ChildOutcome run_in_child(void (*body)(), int64_t timeout_ms) {
  ChildOutcome out;
  int fds[2];
  if (pipe(fds) != 0) return out;
  pid_t pid = fork();
  if (pid < 0) {
    close(fds[0]);
    close(fds[1]);
    return out;
  }
  if (pid == 0) {
    // The child starts from a clean slate: Catch2's fatal-signal handlers
    // and alternate signal stack, inherited from the parent, would otherwise
    // report the crash as a test failure of their own.
    const int fatal[] = {SIGSEGV, SIGBUS, SIGABRT, SIGILL, SIGFPE};
    for (int sig : fatal) signal(sig, SIG_DFL);
    stack_t no_altstack;
    memset(&no_altstack, 0, sizeof no_altstack);
    no_altstack.ss_flags = SS_DISABLE;
    sigaltstack(&no_altstack, nullptr);
    close(fds[0]);
    dup2(fds[1], STDERR_FILENO);
    close(fds[1]);
    int devnull = open("/dev/null", O_WRONLY);
    if (devnull >= 0) dup2(devnull, STDOUT_FILENO);
    body();
    // The body was expected to kill the process.
    _exit(3);
  }
  close(fds[1]);
  fcntl(fds[0], F_SETFL, fcntl(fds[0], F_GETFL) | O_NONBLOCK);

  int64_t deadline = monotonic_ms() + timeout_ms;
  bool pipe_open = true;
  bool reaped = false;
  while (!reaped) {
    int64_t left = deadline - monotonic_ms();
    if (left <= 0) break;
    if (pipe_open) {
      struct pollfd p = {fds[0], POLLIN, 0};
      int n = poll(&p, 1, static_cast<int>(left < 50 ? left : 50));
      if (n > 0) {
        char buf[4096];
        ssize_t got = read(fds[0], buf, sizeof buf);
        if (got > 0) {
          out.stderr_text.append(buf, static_cast<size_t>(got));
        } else if (got == 0) {
          pipe_open = false;
        }
      }
    } else {
      usleep(10 * 1000);
    }
    pid_t w = waitpid(pid, &out.status, WNOHANG);
    if (w == pid) reaped = true;
  }
  if (!reaped) {
    kill(pid, SIGKILL);
    waitpid(pid, &out.status, 0);
  } else {
    out.exited_in_time = true;
    // Collect whatever is still in the pipe.
    char buf[4096];
    ssize_t got;
    while ((got = read(fds[0], buf, sizeof buf)) > 0)
      out.stderr_text.append(buf, static_cast<size_t>(got));
  }
  close(fds[0]);
  return out;
}

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
