// Tests of weft_signal_wait(): a signal raised while a task waits wakes it,
// a signal that arrives while nobody waits is kept for the next wait, every
// waiter hears a delivery, and a wait honours its deadline.
//
// A signal is only ever sent once a wait for its number has started: before
// that the default action (terminating the process) would apply.

#include <catch2/catch.hpp>

#include <signal.h>
#include <unistd.h>

#include "support.h"
#include "weft.h"

namespace {

struct Waiting {
  int signum = 0;     // what to send
  int use_kill = 0;   // kill(getpid(), ...) instead of raise(...)
  int waiting = 0;    // the waiter is about to park
  int got = 0;
  int got2 = 0;
};

int wait_usr1_term(void *arg) {
  auto *x = static_cast<Waiting *>(arg);
  const int sigs[] = {SIGUSR1, SIGTERM};
  x->waiting = 1;
  x->got = weft_signal_wait(sigs, 2);
  return 0;
}

int wait_usr1_term_2(void *arg) {
  auto *x = static_cast<Waiting *>(arg);
  const int sigs[] = {SIGTERM, SIGUSR1};
  x->got2 = weft_signal_wait(sigs, 2);
  return 0;
}

int waiting_run(void *arg) {
  auto *x = static_cast<Waiting *>(arg);
  weft_group *g = weft_group_open(WEFT_COLLECT);
  weft_spawn(g, wait_usr1_term, x);
  weft_spawn(g, wait_usr1_term_2, x);
  // Both waiters run (and park) before this sleep ends.
  weft_sleep(20);
  if (x->waiting) {
    if (x->use_kill)
      kill(getpid(), x->signum);
    else
      raise(x->signum);
  }
  return weft_group_join(g);
}

}  // namespace

TEST_CASE("raise(SIGUSR1) wakes every task waiting for it", "[signal]") {
  Waiting x;
  x.signum = SIGUSR1;
  REQUIRE(run_bounded(waiting_run, &x) == 0);
  CHECK(x.got == SIGUSR1);
  CHECK(x.got2 == SIGUSR1);
}

TEST_CASE("a SIGTERM sent with kill wakes every task waiting for it",
          "[signal]") {
  Waiting x;
  x.signum = SIGTERM;
  x.use_kill = 1;
  REQUIRE(run_bounded(waiting_run, &x) == 0);
  CHECK(x.got == SIGTERM);
  CHECK(x.got2 == SIGTERM);
}

namespace {

struct Counted {
  int first = 0;
  int second = 0;
  int third = 0;
  int64_t second_ms = -1;
  int other = 0;
};

int counted_run(void *arg) {
  auto *x = static_cast<Counted *>(arg);
  const int usr2[] = {SIGUSR2};
  // The first wait installs the handler; nothing arrives before its deadline.
  weft_scope s;
  weft_scope_enter(&s, 10);
  x->first = weft_signal_wait(usr2, 1);
  weft_scope_leave(&s);
  // Two deliveries while nobody waits: both are kept.
  raise(SIGUSR2);
  raise(SIGUSR2);
  weft_sleep(20);
  int64_t t0 = weft_now();
  x->second = weft_signal_wait(usr2, 1);
  x->second_ms = weft_now() - t0;
  // The counts of one number are not taken by a wait for another.
  const int usr1[] = {SIGUSR1};
  weft_scope_enter(&s, 10);
  x->other = weft_signal_wait(usr1, 1);
  weft_scope_leave(&s);
  weft_scope_enter(&s, 1000);
  x->third = weft_signal_wait(usr2, 1);
  weft_scope_leave(&s);
  return 0;
}

}  // namespace

TEST_CASE("a signal sent while no task waits is returned by the next wait",
          "[signal]") {
  Counted x;
  REQUIRE(run_bounded(counted_run, &x) == 0);
  CHECK(x.first == UV_ETIMEDOUT);
  CHECK(x.second == SIGUSR2);
  CHECK(x.second_ms < weft_test_ms(1000));
  CHECK(x.other == UV_ETIMEDOUT);
  // raise() runs the handler before it returns, so the two deliveries are
  // never merged: the second is still counted.
  CHECK(x.third == SIGUSR2);
}

namespace {

int invalid_run(void *arg) {
  auto *r = static_cast<int *>(arg);
  const int bad[] = {SIGKILL};
  r[0] = weft_signal_wait(bad, 1);
  r[1] = weft_signal_wait(nullptr, 1);
  const int ok[] = {SIGUSR1};
  r[2] = weft_signal_wait(ok, 0);
  return 0;
}

}  // namespace

TEST_CASE("waiting for an invalid signal fails", "[signal]") {
  int r[3] = {0, 0, 0};
  REQUIRE(run_bounded(invalid_run, r) == 0);
  CHECK(r[0] < 0);
  CHECK(r[1] == UV_EINVAL);
  CHECK(r[2] == UV_EINVAL);
  CHECK(weft_signal_wait(nullptr, 0) == WEFT_ENOTASK);
}
