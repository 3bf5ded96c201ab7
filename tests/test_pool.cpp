// Tests of the worker pool: every item is processed exactly once, errors
// are counted and the first one returned, large items, argument checks,
// and finish after the caller was cancelled.
//
// Results are recorded in plain variables inside tasks and asserted after
// weft_main_opts() returns.

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <cstring>
#include <functional>
#include <memory>
#include <vector>

#include "closures.h"
#include "support.h"
#include "weft.h"

namespace {

// What the workers share: per-item counts and the executors they ran on.
struct Ledger {
  explicit Ledger(size_t n) : seen(new std::atomic<int>[n]), n(n) {
    for (size_t i = 0; i < n; i++) seen[i] = 0;
  }
  std::unique_ptr<std::atomic<int>[]> seen;
  size_t n;
  std::atomic<uint64_t> sum{0};
  std::atomic<int> out_of_range{0};
  std::atomic<int> on_executor[5] = {};
  int64_t sleep_ms = 0;           // each item sleeps this long
  std::atomic<int> sleep_errors{0};
};

struct Item {
  uint64_t index;
  uint64_t check;                 // index * 3 + 1, to catch torn copies
};

int count_item(void *item, void *ctx) {
  auto *l = static_cast<Ledger *>(ctx);
  Item it;
  memcpy(&it, item, sizeof it);
  if (it.index >= l->n || it.check != it.index * 3 + 1) {
    l->out_of_range++;
    return UV_EINVAL;
  }
  l->seen[it.index]++;
  l->sum += it.index;
  int e = weft_executor_id();
  if (e >= 1 && e <= 4) l->on_executor[e]++;
  if (l->sleep_ms > 0 && weft_sleep(l->sleep_ms) != 0) l->sleep_errors++;
  return 0;
}

}  // namespace

TEST_CASE("weft_pool_start checks its arguments", "[pool]") {
  auto fn = [](void *, void *) -> int { return 0; };
  CHECK(weft_pool_start(2, 8, 16, fn, nullptr) == nullptr);  // outside a task
  struct {
    bool null_fn = false, zero_size = false;
    int finish = 1;
  } r;
  int rc = run(1, [&]() -> int {
    r.null_fn = weft_pool_start(2, 8, 16, nullptr, nullptr) == nullptr;
    r.zero_size = weft_pool_start(2, 0, 16, fn, nullptr) == nullptr;
    weft_pool *p = weft_pool_start(2, 8, 16, fn, nullptr);
    if (p == nullptr) return UV_ENOMEM;
    r.finish = weft_pool_finish(p);  // no items at all
    return 0;
  });
  CHECK(rc == 0);
  CHECK(r.null_fn);
  CHECK(r.zero_size);
  CHECK(r.finish == 0);
}

TEST_CASE("every submitted item is processed exactly once", "[pool]") {
  int executors = GENERATE(1, 2, 4);
  int workers = GENERATE(0, 1, 3, 8);
  size_t queue = GENERATE(1, 64);
  INFO(executors << " executors, " << workers << " workers, queue " << queue);
  const size_t n = 20000;
  Ledger l(n);
  struct {
    int submit_errors = 0;
    size_t done = 0, failed = 99;
    int finish = 1;
  } r;
  int rc = run(executors, [&]() -> int {
    weft_pool *p = weft_pool_start(workers, sizeof(Item), queue, count_item, &l);
    if (p == nullptr) return UV_ENOMEM;
    for (uint64_t i = 0; i < n; i++) {
      Item it{i, i * 3 + 1};
      if (weft_pool_submit(p, &it) != 0) r.submit_errors++;
    }
    r.finish = weft_pool_finish(p);
    // finish freed p; the counts were read from the ledger.
    return 0;
  });
  CHECK(rc == 0);
  CHECK(r.submit_errors == 0);
  CHECK(r.finish == 0);
  CHECK(l.out_of_range == 0);
  CHECK(l.sum == (uint64_t)n * (n - 1) / 2);
  size_t wrong = 0;
  for (size_t i = 0; i < n; i++)
    if (l.seen[i] != 1) wrong++;
  CHECK(wrong == 0);
}

TEST_CASE("the workers are spread over the executors", "[pool]") {
  // Items that take a while, so that no one executor can take them all.
  const size_t n = 400;
  Ledger l(n);
  l.sleep_ms = 1;
  int finish = 1;
  int rc = run(4, [&]() -> int {
    weft_pool *p = weft_pool_start(0, sizeof(Item), 8, count_item, &l);
    if (p == nullptr) return UV_ENOMEM;
    for (uint64_t i = 0; i < n; i++) {
      Item it{i, i * 3 + 1};
      weft_pool_submit(p, &it);
    }
    finish = weft_pool_finish(p);
    return 0;
  });
  CHECK(rc == 0);
  CHECK(finish == 0);
  CHECK(l.sum == (uint64_t)n * (n - 1) / 2);
  CHECK(l.sleep_errors == 0);
  for (int e = 1; e <= 4; e++) {
    INFO("executor " << e);
    CHECK(l.on_executor[e] > 0);
  }
}

TEST_CASE("pool counters: done and failed, and the first error is returned",
          "[pool]") {
  int workers = GENERATE(1, 4);
  INFO(workers << " workers");
  const int n = 1000;
  struct Ctx {
    std::atomic<int> calls{0};
  } ctx;
  struct {
    size_t done = 0, failed = 0;
    int finish = 1;
  } r;
  int rc = run(2, [&]() -> int {
    // Items 7, 107, 207, ... fail with UV_EIO, items 13, 113, ... with
    // UV_EPIPE: in submission order the first failure is UV_EIO.
    weft_pool *p = weft_pool_start(
        workers, sizeof(int), 16,
        [](void *item, void *c) -> int {
          static_cast<Ctx *>(c)->calls++;
          int v = *static_cast<int *>(item);
          if (v % 100 == 7) return UV_EIO;
          if (v % 100 == 13) return UV_EPIPE;
          return 0;
        },
        &ctx);
    if (p == nullptr) return UV_ENOMEM;
    for (int i = 0; i < n; i++) weft_pool_submit(p, &i);
    // Wait (bounded) until every item was done, to read the counters while
    // the pool still exists.
    int64_t end = weft_now() + weft_test_ms(5000);
    while (weft_pool_done(p) < (size_t)n && weft_now() < end) weft_sleep(1);
    r.done = weft_pool_done(p);
    r.failed = weft_pool_failed(p);
    r.finish = weft_pool_finish(p);
    return 0;
  });
  CHECK(rc == 0);
  CHECK(ctx.calls == n);
  CHECK(r.done == (size_t)n);
  CHECK(r.failed == 20);
  if (workers == 1)
    CHECK(r.finish == UV_EIO);
  else
    CHECK((r.finish == UV_EIO || r.finish == UV_EPIPE));
}

namespace {
constexpr size_t kBigItem = 3000;
}

TEST_CASE("items larger than a worker's own buffer", "[pool]") {
  const size_t size = kBigItem;
  const int n = 500;
  std::atomic<int> good{0}, bad{0};
  struct Ctx {
    std::atomic<int> *good, *bad;
  } ctx{&good, &bad};
  int finish = 1;
  int rc = run(2, [&]() -> int {
    weft_pool *p = weft_pool_start(
        3, size, 8,
        [](void *item, void *c) -> int {
          auto *x = static_cast<Ctx *>(c);
          auto *b = static_cast<unsigned char *>(item);
          bool ok = true;
          for (size_t j = 1; j < kBigItem; j++)
            if (b[j] != (unsigned char)(b[0] + j)) ok = false;
          ok ? ++*x->good : ++*x->bad;
          return 0;
        },
        &ctx);
    if (p == nullptr) return UV_ENOMEM;
    std::vector<unsigned char> item(size);
    for (int i = 0; i < n; i++) {
      for (size_t j = 0; j < size; j++) item[j] = (unsigned char)(i + j);
      weft_pool_submit(p, item.data());
    }
    finish = weft_pool_finish(p);
    return 0;
  });
  CHECK(rc == 0);
  CHECK(finish == 0);
  CHECK(good == n);
  CHECK(bad == 0);
}

TEST_CASE("finish after the caller was cancelled", "[pool][cancel]") {
  bool by_deadline = GENERATE(false, true);
  INFO((by_deadline ? "scope deadline" : "weft_scope_cancel"));
  const size_t n = 2000;
  Ledger l(n);
  l.sleep_ms = 2;
  struct {
    size_t submitted = 0;
    int submit_rc = 0;
    int finish = 1;
    int scope = 1;
    int64_t finish_ms = -1;
  } r;
  auto start = std::chrono::steady_clock::now();
  int rc = run(2, [&]() -> int {
    weft_scope s;
    weft_scope_enter(&s, by_deadline ? weft_test_ms(50) : WEFT_NO_DEADLINE);
    weft_pool *p = weft_pool_start(4, sizeof(Item), 16, count_item, &l);
    if (p == nullptr) return UV_ENOMEM;
    for (uint64_t i = 0; i < n; i++) {
      if (!by_deadline && i == 100) weft_scope_cancel(&s);
      Item it{i, i * 3 + 1};
      r.submit_rc = weft_pool_submit(p, &it);
      if (r.submit_rc != 0) break;
      r.submitted++;
    }
    int64_t t0 = weft_now();
    r.finish = weft_pool_finish(p);
    r.finish_ms = weft_now() - t0;
    r.scope = weft_scope_leave(&s);
    return 0;
  });
  int want = by_deadline ? UV_ETIMEDOUT : UV_ECANCELED;
  CHECK(rc == 0);
  CHECK(r.submit_rc == want);
  CHECK(r.submitted < n);
  CHECK(r.finish == want);
  CHECK(r.scope == want);
  CHECK(r.finish_ms < weft_test_ms(2000));
  CHECK(std::chrono::duration_cast<std::chrono::milliseconds>(
            std::chrono::steady_clock::now() - start)
            .count() < weft_test_ms(5000));
  // Nothing was processed twice, nothing that was not submitted was
  // processed, and the workers stopped early.
  size_t twice = 0, processed = 0;
  for (size_t i = 0; i < n; i++) {
    if (l.seen[i] > 1) twice++;
    if (l.seen[i] > 0) processed++;
    if (i >= r.submitted && l.seen[i] != 0) twice++;
  }
  CHECK(twice == 0);
  CHECK(processed <= r.submitted);
  CHECK(l.out_of_range == 0);
}
