/* child_support.h: running part of a test in a child process.
 *
 * For behaviour that ends the process (an abort with a report, a fatal
 * signal): the child runs body() with its stderr in a pipe; the parent
 * reads it, waits a bounded time and says how the child ended. Nothing in
 * the child reports to Catch2.
 */
#ifndef WEFT_TEST_CHILD_SUPPORT_H
#define WEFT_TEST_CHILD_SUPPORT_H

#include <csignal>
#include <cstdint>
#include <cstring>
#include <string>

#include <fcntl.h>
#include <poll.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

namespace weft_test {

struct ChildOutcome {
  bool exited_in_time = false;
  int status = 0;
  std::string stderr_text;
};

inline int64_t monotonic_ms() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

// Runs body() in a child process whose stderr goes to a pipe; waits at most
// timeout_ms for it to end (then kills it) and returns how it ended and what
// it wrote to stderr.
inline ChildOutcome run_in_child(void (*body)(), int64_t timeout_ms) {
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

}  // namespace weft_test

#endif
