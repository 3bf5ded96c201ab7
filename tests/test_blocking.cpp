// Tests of weft_blocking(): the function's result comes back, a call
// cancelled before its function starts returns at once and the function
// never runs, and a call cancelled while its function runs returns only
// once the function has returned.
//
// To hold a call in libuv's queue, the thread pool is filled first with
// blockers that wait on a semaphore the test releases at the end.

#include <catch2/catch.hpp>

#include <stdlib.h>

#include <atomic>
#include <thread>

#include "pool_saturation.h"
#include "support.h"
#include "weft.h"

namespace {

// ---- Results -----------------------------------------------------------------

struct Results {
  int answer = 0;
  int negative = 0;
  int null_fn = 0;
  int precancelled = 0;
  std::thread::id caller;
  std::thread::id worker;
};

int answer_fn(void *arg) {
  static_cast<Results *>(arg)->worker = std::this_thread::get_id();
  return 42;
}

int negative_fn(void *) { return -7; }

int results_run(void *arg) {
  auto *x = static_cast<Results *>(arg);
  x->caller = std::this_thread::get_id();
  x->answer = weft_blocking(answer_fn, x);
  x->negative = weft_blocking(negative_fn, nullptr);
  x->null_fn = weft_blocking(nullptr, nullptr);
  weft_scope s;
  weft_scope_enter(&s, 0);
  x->precancelled = weft_blocking(answer_fn, x);
  weft_scope_leave(&s);
  return 0;
}

}  // namespace

TEST_CASE("weft_blocking returns what the function returns", "[blocking]") {
  Results x;
  REQUIRE(run_bounded(results_run, &x) == 0);
  CHECK(x.answer == 42);
  CHECK(x.negative == -7);
  CHECK(x.null_fn == UV_EINVAL);
  CHECK(x.precancelled == UV_ETIMEDOUT);
  CHECK(x.worker != x.caller);
  CHECK(weft_blocking(negative_fn, nullptr) == WEFT_ENOTASK);
}

namespace {

// ---- Cancelled before the function starts -------------------------------------

struct Queued {
  int use_deadline = 0;
  int saturate_rc = 1;
  std::atomic<int> ran{0};
  int rc = 1;
  int64_t elapsed = -1;
  weft_scope *victim_scope = nullptr;
  int in_call = 0;
};

int mark_ran(void *arg) {
  static_cast<Queued *>(arg)->ran++;
  return 0;
}

int queued_victim(void *arg) {
  auto *x = static_cast<Queued *>(arg);
  weft_scope s;
  weft_scope_enter(&s, x->use_deadline ? 30 : -1);
  x->victim_scope = &s;
  x->in_call = 1;
  int64_t t0 = weft_now();
  x->rc = weft_blocking(mark_ran, x);
  x->elapsed = weft_now() - t0;
  x->in_call = 0;
  x->victim_scope = nullptr;
  weft_scope_leave(&s);
  return 0;
}

int queued_run(void *arg) {
  auto *x = static_cast<Queued *>(arg);
  Saturation sat;
  x->saturate_rc = saturate(&sat);
  if (x->saturate_rc == 0) {
    weft_group *g = weft_group_open(WEFT_COLLECT);
    weft_spawn(g, queued_victim, x);
    if (!x->use_deadline) {
      weft_sleep(30);
      if (x->in_call) weft_scope_cancel(x->victim_scope);
    }
    weft_group_join(g);
  }
  unsaturate(&sat);
  return 0;
}

}  // namespace

TEST_CASE("weft_blocking cancelled before its function starts", "[blocking]") {
  for (int deadline = 0; deadline <= 1; deadline++) {
    INFO("deadline " << deadline);
    Queued x;
    x.use_deadline = deadline;
    REQUIRE(run_bounded(queued_run, &x) == 0);
    REQUIRE(x.saturate_rc == 0);
    CHECK(x.rc == (deadline ? UV_ETIMEDOUT : UV_ECANCELED));
    CHECK(x.elapsed < weft_test_ms(1000));
    // The pool has been released and drained: the function never ran.
    CHECK(x.ran.load() == 0);
  }
}

namespace {

// ---- Cancelled while the function runs -------------------------------------

struct Running {
  uv_sem_t release;
  std::atomic<int> started{0};
  std::atomic<int> finished{0};
  int finished_when_returned = -1;
  int rc = 1;
  int still_blocked = 0;
  weft_scope *victim_scope = nullptr;
  int in_call = 0;
};

int wait_for_release(void *arg) {
  auto *x = static_cast<Running *>(arg);
  x->started++;
  uv_sem_wait(&x->release);
  x->finished++;
  return 5;
}

int running_victim(void *arg) {
  auto *x = static_cast<Running *>(arg);
  weft_scope s;
  weft_scope_enter(&s, -1);
  x->victim_scope = &s;
  x->in_call = 1;
  x->rc = weft_blocking(wait_for_release, x);
  x->finished_when_returned = x->finished.load();
  x->in_call = 0;
  x->victim_scope = nullptr;
  weft_scope_leave(&s);
  return 0;
}

int running_run(void *arg) {
  auto *x = static_cast<Running *>(arg);
  weft_group *g = weft_group_open(WEFT_COLLECT);
  weft_spawn(g, running_victim, x);
  for (int i = 0; i < 2000 && x->started.load() == 0; i++) weft_sleep(1);
  if (x->in_call) weft_scope_cancel(x->victim_scope);
  // The call must still be waiting for its function.
  weft_sleep(50);
  x->still_blocked = x->in_call;
  uv_sem_post(&x->release);
  return weft_group_join(g);
}

}  // namespace

TEST_CASE("weft_blocking cancelled while its function runs waits for it",
          "[blocking]") {
  Running x;
  REQUIRE(uv_sem_init(&x.release, 0) == 0);
  REQUIRE(run_bounded(running_run, &x) == 0);
  uv_sem_destroy(&x.release);
  CHECK(x.started.load() == 1);
  CHECK(x.still_blocked == 1);
  CHECK(x.rc == UV_ECANCELED);
  CHECK(x.finished_when_returned == 1);
}
