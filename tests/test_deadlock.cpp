// Tests of the deadlock report: on a runtime with one executor, when every
// task waits and nothing (I/O, a timer, another thread) can wake any of
// them, the runtime says so on stderr and aborts instead of hanging.
//
// The report ends the process, so those cases run in a child made with
// fork() (child_support.h); the cases where a timer does wake the task run
// in this process.

#include <catch2/catch.hpp>

#include <csignal>
#include <string>

#include <sys/wait.h>

#include "child_support.h"
#include "support.h"
#include "weft.h"

using weft_test::ChildOutcome;
using weft_test::run_in_child;

namespace {

// Waits for an item on a rendezvous channel that nobody sends on.
int wait_forever(void) {
  weft_chan *c = weft_chan_new(sizeof(int), 0, WEFT_CHAN_LOCAL);
  if (c == nullptr) return UV_ENOMEM;
  int v = 0;
  int r = weft_chan_recv(c, &v);
  weft_chan_free(c);
  return r;
}

void check_deadlock_report(const ChildOutcome &c) {
  INFO("child stderr: " << c.stderr_text);
  CHECK(c.exited_in_time);
  REQUIRE(WIFSIGNALED(c.status));
  CHECK(WTERMSIG(c.status) == SIGABRT);
  CHECK(c.stderr_text.find("deadlock") != std::string::npos);
  CHECK(c.stderr_text.find("1 task(s) wait") != std::string::npos);
}

}  // namespace

TEST_CASE("a task waiting on a channel nobody holds is reported as a deadlock",
          "[deadlock]") {
  ChildOutcome c = run_in_child(
      [] { weft_main([](void *) -> int { return wait_forever(); }, nullptr); },
      weft_test_ms(10000));
  check_deadlock_report(c);
}

TEST_CASE("a removed deadline does not hold back the deadlock report",
          "[deadlock]") {
  // The scope's timer entry for the 10-minute deadline stays in the timer
  // heap when the deadline is removed (removal is lazy); it wakes nobody, so
  // the report must come at once, not when that entry fires.
  ChildOutcome c = run_in_child(
      [] {
        weft_main(
            [](void *) -> int {
              weft_scope s;
              weft_scope_enter(&s, 600000);
              weft_scope_set_timeout(&s, -1);
              int r = wait_forever();
              weft_scope_leave(&s);
              return r;
            },
            nullptr);
      },
      weft_test_ms(10000));
  check_deadlock_report(c);
}

TEST_CASE("a removed deadline set again still fires", "[deadlock]") {
  // The same stale entry, then a deadline again: the task must be woken by
  // it (no deadlock report, no hang).
  struct Out {
    int recv = 0;
    int left = 0;
  } out;
  int err = run_bounded(
      [](void *p) -> int {
        Out *o = static_cast<Out *>(p);
        weft_scope s;
        weft_scope_enter(&s, 600000);
        weft_scope_set_timeout(&s, -1);
        weft_scope_set_timeout(&s, 50);
        o->recv = wait_forever();
        o->left = weft_scope_leave(&s);
        return 0;
      },
      &out);
  CHECK(err == 0);
  CHECK(out.recv == UV_ETIMEDOUT);
  CHECK(out.left == UV_ETIMEDOUT);
}

TEST_CASE("a deadline moved later wakes the task at the later time",
          "[deadlock]") {
  // The entry for the first deadline fires at 50 ms and finds the deadline
  // moved: the task must go on waiting until the new one, not be reported.
  struct Out {
    int recv = 0;
    int64_t waited = 0;
  } out;
  int err = run_bounded(
      [](void *p) -> int {
        Out *o = static_cast<Out *>(p);
        int64_t t0 = weft_now();
        weft_scope s;
        weft_scope_enter(&s, 50);
        weft_scope_set_timeout(&s, 200);
        o->recv = wait_forever();
        o->waited = weft_now() - t0;
        weft_scope_leave(&s);
        return 0;
      },
      &out);
  CHECK(err == 0);
  CHECK(out.recv == UV_ETIMEDOUT);
  CHECK(out.waited >= 195);
}
