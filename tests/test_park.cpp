// Tests of weft_park() / weft_unpark(): a task waits on a libuv handle of
// its own and is resumed from the handle's callback, and a parked task
// whose scope is cancelled or runs out of time is unparked by its cancel
// function after the handle has been closed; a thread that is no executor
// wakes a task parked in weft_park_remote().

#include <catch2/catch.hpp>
#include <uv.h>

#include <vector>

#include "closures.h"

namespace {

struct TimerWait {
  uv_timer_t timer;
  weft_parked *task = nullptr;
  int closed = 0;
  int cancel_calls = 0;
};

void on_timer(uv_timer_t *h) {
  auto *w = static_cast<TimerWait *>(h->data);
  weft_unpark(w->task, 42);
}

void on_close(uv_handle_t *h) {
  auto *w = static_cast<TimerWait *>(h->data);
  w->closed = 1;
  // The task is unparked only now that the handle no longer refers to it.
  weft_unpark(w->task, 0);
}

void cancel_timer(weft_parked *task, void *data) {
  auto *w = static_cast<TimerWait *>(data);
  w->cancel_calls++;
  (void)task;
  uv_timer_stop(&w->timer);
  uv_close(reinterpret_cast<uv_handle_t *>(&w->timer), on_close);
}

// Waits up to ms on a uv_timer of its own; returns what weft_park() did.
int wait_timer(TimerWait &w, uint64_t ms) {
  uv_timer_init(weft_loop(), &w.timer);
  w.timer.data = &w;
  w.task = weft_park_self();
  uv_timer_start(&w.timer, on_timer, ms, 0);
  int rc = weft_park(cancel_timer, &w);
  if (!w.closed) {
    // Woken by the timer: close the handle, waiting for it uninterrupted.
    uv_close(reinterpret_cast<uv_handle_t *>(&w.timer), on_close);
    weft_park(nullptr, nullptr);
  }
  return rc;
}

}  // namespace

TEST_CASE("a parked task resumes with the result its callback gives") {
  TimerWait w;
  int rc = -1;
  weft_parked *outside = reinterpret_cast<weft_parked *>(1);
  REQUIRE(run(1, [&] {
            rc = wait_timer(w, 5);
            return 0;
          }) == 0);
  outside = weft_park_self();
  CHECK(rc == 42);
  CHECK(w.closed == 1);
  CHECK(w.cancel_calls == 0);
  CHECK(outside == nullptr);
}

TEST_CASE("a parked task's deadline calls its cancel function") {
  TimerWait w;
  int rc = -1;
  REQUIRE(run(1, [&] {
            weft_scope s;
            weft_scope_enter(&s, 20);
            rc = wait_timer(w, 60000);
            weft_scope_leave(&s);
            return 0;
          }) == 0);
  CHECK(rc == UV_ETIMEDOUT);
  CHECK(w.cancel_calls == 1);
  CHECK(w.closed == 1);
}

TEST_CASE("a parked task cancelled by its group is unparked after clean-up") {
  TimerWait w;
  int rc = -1;
  REQUIRE(run(1, [&] {
            Tasks g(WEFT_COLLECT);
            g.spawn(0, [&] {
              rc = wait_timer(w, 60000);
              return 0;
            });
            weft_sleep(5);
            g.cancel();
            return g.join();
          }) == 0);
  CHECK(rc == UV_ECANCELED);
  CHECK(w.cancel_calls == 1);
  CHECK(w.closed == 1);
}

TEST_CASE("a task whose scope is already cancelled calls its cancel function at once") {
  TimerWait w;
  int rc = -1;
  REQUIRE(run(1, [&] {
            weft_scope s;
            weft_scope_enter(&s, -1);
            weft_scope_cancel(&s);
            rc = wait_timer(w, 60000);
            weft_scope_leave(&s);
            return 0;
          }) == 0);
  CHECK(rc == UV_ECANCELED);
  CHECK(w.cancel_calls == 1);
}

TEST_CASE("a task unparked by a timer that fires before the poll runs at once") {
  // libuv runs expired timers before it polls; a 0 ms timer is expired by
  // then, and the poll must not block with the task ready to run.
  TimerWait w;
  int rc = -1;
  REQUIRE(run(1, [&] {
            weft_scope s;
            weft_scope_enter(&s, weft_test_ms(10000));
            rc = wait_timer(w, 0);
            weft_scope_leave(&s);
            return 0;
          }) == 0);
  CHECK(rc == 42);
  CHECK(w.cancel_calls == 0);
}

namespace {

// A thread of its own that wakes a task parked in weft_park_remote() after
// a short sleep, so that the task has long parked (and the executor is
// asleep in its poll) when the wake comes.
struct RemoteWake {
  weft_parked *task = nullptr;
  int value = 0;
};

void remote_waker(void *arg) {
  auto *w = static_cast<RemoteWake *>(arg);
  uv_sleep(20);
  weft_unpark_remote(w->task, w->value);
}

}  // namespace

TEST_CASE("a thread that is no executor wakes a task parked in weft_park_remote()") {
  // One executor: with nothing of its own to wait for, it would report a
  // deadlock if it did not count on the remote wake.
  std::vector<int> got;
  int rc = run(1, [&]() -> int {
    for (int i = 0; i < 3; i++) {
      RemoteWake w;
      w.task = weft_park_self();
      w.value = 100 + i;
      uv_thread_t th;
      if (uv_thread_create(&th, remote_waker, &w) != 0) return UV_EAGAIN;
      got.push_back(weft_park_remote(nullptr, nullptr));
      uv_thread_join(&th);
    }
    return 0;
  });
  REQUIRE(rc == 0);
  REQUIRE(got == std::vector<int>({100, 101, 102}));
}
