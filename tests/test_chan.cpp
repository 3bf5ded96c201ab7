// Tests of channels: every mode (LOCAL, SPSC, MPMC), buffered and
// rendezvous, with items of several sizes. FIFO order, full and empty,
// rendezvous hand-off, close, the batch forms, argument checks, and
// cancellation of a task blocked in send or recv (after which nothing of it
// may be left registered on the channel).
//
// Results are recorded in plain variables inside tasks and asserted after
// weft_main_opts() returns.

#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <deque>
#include <functional>
#include <string>
#include <vector>

#include "chan_support.h"
#include "closures.h"
#include "support.h"
#include "weft.h"

namespace {

const int kModes[] = {WEFT_CHAN_LOCAL, WEFT_CHAN_SPSC, WEFT_CHAN_MPMC};

// Cross-executor modes are exercised across two executors, with the other
// party on executor 2; LOCAL channels stay on one executor.
int executors_for(int mode) { return mode == WEFT_CHAN_LOCAL ? 1 : 2; }
int peer_executor(int mode) { return mode == WEFT_CHAN_LOCAL ? 0 : 2; }

// Item i of size n: its index in the first bytes (as far as they go), then
// a pattern that depends on both, so a torn or misplaced copy shows.
void make_item(std::vector<unsigned char> &buf, size_t n, uint64_t i) {
  buf.assign(n, 0);
  for (size_t j = 0; j < n; j++)
    buf[j] = j < 8 ? (unsigned char)(i >> (8 * j)) : (unsigned char)(i * 31 + j * 7);
}

bool item_is(const unsigned char *p, size_t n, uint64_t i) {
  for (size_t j = 0; j < n; j++) {
    unsigned char want = j < 8 ? (unsigned char)(i >> (8 * j)) : (unsigned char)(i * 31 + j * 7);
    if (p[j] != want) return false;
  }
  return true;
}

}  // namespace

TEST_CASE("weft_chan_new checks its arguments and rounds ring capacities",
          "[chan]") {
  for (int mode : kModes) {
    INFO("mode " << mode_name(mode));
    CHECK(weft_chan_new(0, 4, mode) == nullptr);
    CHECK(weft_chan_new(65537, 4, mode) == nullptr);
    CHECK(weft_chan_new(8, ((size_t)1 << 30) + 1, mode) == nullptr);
    weft_chan *big = weft_chan_new(65536, 2, mode);
    CHECK(big != nullptr);
    weft_chan_free(big);
    weft_chan *rv = weft_chan_new(8, 0, mode);
    REQUIRE(rv != nullptr);
    CHECK(weft_chan_cap(rv) == 0);
    CHECK(weft_chan_len(rv) == 0);
    CHECK(weft_chan_closed(rv) == 0);
    weft_chan_free(rv);
  }
  CHECK(weft_chan_new(8, 4, 3) == nullptr);
  CHECK(weft_chan_new(8, 4, -1) == nullptr);

  // LOCAL keeps the capacity asked for; the rings round up to a power of
  // two, and an MPMC ring has two cells at least.
  struct {
    int mode;
    size_t ask, got;
  } caps[] = {{WEFT_CHAN_LOCAL, 5, 5},  {WEFT_CHAN_LOCAL, 1, 1},
              {WEFT_CHAN_SPSC, 5, 8},   {WEFT_CHAN_SPSC, 1, 1},
              {WEFT_CHAN_SPSC, 64, 64}, {WEFT_CHAN_MPMC, 5, 8},
              {WEFT_CHAN_MPMC, 1, 2},   {WEFT_CHAN_MPMC, 1000, 1024}};
  for (auto &k : caps) {
    INFO("mode " << mode_name(k.mode) << " capacity " << k.ask);
    weft_chan *c = weft_chan_new(8, k.ask, k.mode);
    REQUIRE(c != nullptr);
    CHECK(weft_chan_cap(c) == k.got);
    weft_chan_free(c);
  }
  weft_chan_free(nullptr);  // Like free(NULL): nothing happens.
}

TEST_CASE("single and batch operations keep FIFO order and report full and empty",
          "[chan]") {
  int mode = GENERATE(as<int>{}, WEFT_CHAN_LOCAL, WEFT_CHAN_SPSC, WEFT_CHAN_MPMC);
  size_t size = GENERATE(1, 8, 24, 4096);
  INFO("mode " << mode_name(mode) << ", items of " << size << " bytes");

  struct {
    int full_rc = 1, empty_rc = 1;
    size_t len_full = 0;
    bool first_round_ok = false;
    int mismatches = 0;
    int steps = 0;
  } r;
  int rc = run(1, [&]() -> int {
    const size_t cap = 4;
    weft_chan *c = weft_chan_new(size, cap, mode);
    if (c == nullptr) return UV_ENOMEM;
    std::vector<unsigned char> item, got(size);
    // Fill, overfill, drain, overdrain.
    bool ok = true;
    for (uint64_t i = 0; i < cap; i++) {
      make_item(item, size, i);
      ok = ok && weft_chan_try_send(c, item.data()) == 0;
    }
    make_item(item, size, 99);
    r.full_rc = weft_chan_try_send(c, item.data());
    r.len_full = weft_chan_len(c);
    for (uint64_t i = 0; i < cap; i++)
      ok = ok && weft_chan_try_recv(c, got.data()) == 0 && item_is(got.data(), size, i);
    r.empty_rc = weft_chan_try_recv(c, got.data());
    r.first_round_ok = ok;

    // Then a long irregular mix of single and batch operations that wraps
    // the ring many times, checked against a model queue. The batch forms
    // are used only where they cannot wait: send_n with no more items than
    // there is room for, recv_n when something is buffered.
    std::deque<uint64_t> model;
    uint64_t next = 1000;
    std::vector<unsigned char> many(cap * size), out(8 * size);
    uint32_t rng = 12345;
    for (int k = 0; k < 4000; k++) {
      rng = rng * 1103515245u + 12345u;
      int op = (int)((rng >> 16) % 7);
      if (op < 3) {
        make_item(item, size, next);
        int s = weft_chan_try_send(c, item.data());
        if (model.size() == cap) {
          if (s != UV_EAGAIN) r.mismatches++;
        } else if (s != 0) {
          r.mismatches++;
        } else {
          model.push_back(next);
        }
        next++;
      } else if (op < 5) {
        int s = weft_chan_try_recv(c, got.data());
        if (model.empty()) {
          if (s != UV_EAGAIN) r.mismatches++;
        } else if (s != 0 || !item_is(got.data(), size, model.front())) {
          r.mismatches++;
          if (s == 0) model.pop_front();
        } else {
          model.pop_front();
        }
      } else if (op == 5) {
        size_t room = cap - model.size();
        size_t len = room == 0 ? 0 : 1 + (size_t)k % room;
        for (size_t j = 0; j < len; j++) {
          make_item(item, size, next + j);
          memcpy(&many[j * size], item.data(), size);
        }
        long s = len == 0 ? 0 : weft_chan_send_n(c, many.data(), len);
        if (s != (long)len) r.mismatches++;
        for (long j = 0; j < s; j++) model.push_back(next + j);
        next += len;
      } else if (!model.empty()) {
        size_t want = 1 + (size_t)k % 8;
        long s = weft_chan_recv_n(c, out.data(), want);
        if (s < 1 || s > (long)std::min(want, model.size())) {
          r.mismatches++;
        } else {
          for (long j = 0; j < s; j++) {
            if (!item_is(&out[j * size], size, model.front())) r.mismatches++;
            model.pop_front();
          }
        }
      }
      if (weft_chan_len(c) != model.size()) r.mismatches++;
      r.steps++;
    }
    // Drain what the model says is left, then the channel must be empty.
    while (!model.empty()) {
      if (weft_chan_try_recv(c, got.data()) != 0 || !item_is(got.data(), size, model.front()))
        r.mismatches++;
      model.pop_front();
    }
    if (weft_chan_try_recv(c, got.data()) != UV_EAGAIN) r.mismatches++;
    weft_chan_free(c);
    return 0;
  });
  CHECK(rc == 0);
  CHECK(r.first_round_ok);
  CHECK(r.full_rc == UV_EAGAIN);
  CHECK(r.len_full == 4);
  CHECK(r.empty_rc == UV_EAGAIN);
  CHECK(r.steps == 4000);
  CHECK(r.mismatches == 0);
}

TEST_CASE("blocking send and recv deliver every item once and in order",
          "[chan]") {
  int mode = GENERATE(as<int>{}, WEFT_CHAN_LOCAL, WEFT_CHAN_SPSC, WEFT_CHAN_MPMC);
  size_t size = GENERATE(1, 8, 24, 4096);
  size_t cap = GENERATE(1, 3, 16);
  INFO("mode " << mode_name(mode) << ", items of " << size << " bytes, capacity "
               << cap);
  const uint64_t n = size >= 4096 ? 500 : 3000;

  struct {
    int send_rc = 1, recv_rc = 1, join_rc = 1;
    uint64_t received = 0, out_of_order = 0;
  } r;
  int rc = run(executors_for(mode), [&]() -> int {
    weft_chan *c = weft_chan_new(size, cap, mode);
    if (c == nullptr) return UV_ENOMEM;
    Tasks tasks;
    tasks.spawn(peer_executor(mode), [&]() -> int {
      std::vector<unsigned char> item;
      r.send_rc = 0;
      for (uint64_t i = 0; i < n && r.send_rc == 0; i++) {
        make_item(item, size, i);
        r.send_rc = weft_chan_send(c, item.data());
      }
      return r.send_rc;
    });
    std::vector<unsigned char> got(size);
    r.recv_rc = 0;
    for (uint64_t i = 0; i < n && r.recv_rc == 0; i++) {
      r.recv_rc = weft_chan_recv(c, got.data());
      if (r.recv_rc == 0) {
        r.received++;
        if (!item_is(got.data(), size, i)) r.out_of_order++;
      }
    }
    r.join_rc = tasks.join();
    weft_chan_free(c);
    return 0;
  });
  CHECK(rc == 0);
  CHECK(r.send_rc == 0);
  CHECK(r.recv_rc == 0);
  CHECK(r.join_rc == 0);
  CHECK(r.received == n);
  CHECK(r.out_of_order == 0);
}

TEST_CASE("a rendezvous send completes only when a receiver takes the item",
          "[chan]") {
  int mode = GENERATE(as<int>{}, WEFT_CHAN_LOCAL, WEFT_CHAN_SPSC, WEFT_CHAN_MPMC);
  INFO("mode " << mode_name(mode));

  struct {
    int try_send_alone = 1, try_recv_alone = 1;
    int send_rc = 1, recv_rc = 1, join_rc = 1;
    bool sent_before_recv = true;
    size_t len_while_sender_waits = 99;
    bool sent_after_recv = false;
    uint64_t value = 0;
    // A receiver waiting makes try_send succeed, and the reverse.
    int try_send_to_waiting = 1, waiting_recv_rc = 1;
    uint64_t waiting_recv_value = 0;
    int try_recv_from_waiting = 1, waiting_send_rc = 1;
    uint64_t try_recv_value = 0;
  } r;
  int rc = run(executors_for(mode), [&]() -> int {
    weft_chan *c = weft_chan_new(sizeof(uint64_t), 0, mode);
    if (c == nullptr) return UV_ENOMEM;
    uint64_t v = 7;
    r.try_send_alone = weft_chan_try_send(c, &v);
    r.try_recv_alone = weft_chan_try_recv(c, &v);

    // A sender waits until the receiver comes; its flag tells whether its
    // send returned.
    std::atomic<bool> sent{false};
    Tasks tasks;
    tasks.spawn(peer_executor(mode), [&]() -> int {
      uint64_t x = 42;
      r.send_rc = weft_chan_send(c, &x);
      sent.store(true);
      return r.send_rc;
    });
    let_peer_wait(mode == WEFT_CHAN_LOCAL, 10, 30);
    r.sent_before_recv = sent.load();
    r.len_while_sender_waits = weft_chan_len(c);
    r.recv_rc = weft_chan_recv(c, &r.value);
    r.sent_after_recv = wait_until([&] { return sent.load(); }, 2000);
    r.join_rc = tasks.join();

    // A waiting receiver makes try_send succeed.
    Tasks receivers;
    receivers.spawn(peer_executor(mode), [&]() -> int {
      r.waiting_recv_rc = weft_chan_recv(c, &r.waiting_recv_value);
      return 0;
    });
    uint64_t y = 43;
    wait_until(
        [&] { return (r.try_send_to_waiting = weft_chan_try_send(c, &y)) != UV_EAGAIN; },
        2000);
    receivers.join();

    // A waiting sender makes try_recv succeed.
    Tasks senders;
    senders.spawn(peer_executor(mode), [&]() -> int {
      uint64_t z = 44;
      r.waiting_send_rc = weft_chan_send(c, &z);
      return 0;
    });
    wait_until(
        [&] {
          return (r.try_recv_from_waiting = weft_chan_try_recv(c, &r.try_recv_value)) !=
                 UV_EAGAIN;
        },
        2000);
    senders.join();
    weft_chan_free(c);
    return 0;
  });
  CHECK(rc == 0);
  CHECK(r.try_send_alone == UV_EAGAIN);
  CHECK(r.try_recv_alone == UV_EAGAIN);
  CHECK_FALSE(r.sent_before_recv);
  CHECK(r.len_while_sender_waits == 0);
  CHECK(r.recv_rc == 0);
  CHECK(r.value == 42);
  CHECK(r.sent_after_recv);
  CHECK(r.send_rc == 0);
  CHECK(r.join_rc == 0);
  CHECK(r.try_send_to_waiting == 0);
  CHECK(r.waiting_recv_rc == 0);
  CHECK(r.waiting_recv_value == 43);
  CHECK(r.try_recv_from_waiting == 0);
  CHECK(r.waiting_send_rc == 0);
  CHECK(r.try_recv_value == 44);
}

TEST_CASE("close: receivers drain, then get ECLOSED, and senders get it at once",
          "[chan]") {
  int mode = GENERATE(as<int>{}, WEFT_CHAN_LOCAL, WEFT_CHAN_SPSC, WEFT_CHAN_MPMC);
  INFO("mode " << mode_name(mode));

  struct {
    int closed_before = 1, closed_after = 0;
    int try_send = 1, send = 1;
    long send_n = 1, recv_n = 1;
    int recv[3] = {1, 1, 1};
    uint64_t values[3] = {0, 0, 0};
    int recv_end = 1, try_recv_end = 1, recv_again = 1;
    int rv_try_send = 1, rv_try_recv = 1, rv_recv = 1, rv_send = 1;
  } r;
  int rc = run(1, [&]() -> int {
    weft_chan *c = weft_chan_new(sizeof(uint64_t), 4, mode);
    if (c == nullptr) return UV_ENOMEM;
    for (uint64_t i = 0; i < 3; i++) weft_chan_send(c, &i);
    r.closed_before = weft_chan_closed(c);
    weft_chan_close(c);
    weft_chan_close(c);  // Idempotent.
    r.closed_after = weft_chan_closed(c);
    uint64_t x = 9;
    r.try_send = weft_chan_try_send(c, &x);
    r.send = weft_chan_send(c, &x);
    r.send_n = weft_chan_send_n(c, &x, 1);
    for (int i = 0; i < 3; i++) r.recv[i] = weft_chan_recv(c, &r.values[i]);
    r.recv_end = weft_chan_recv(c, &x);
    r.try_recv_end = weft_chan_try_recv(c, &x);
    r.recv_n = weft_chan_recv_n(c, &x, 1);
    r.recv_again = weft_chan_recv(c, &x);
    weft_chan_free(c);

    weft_chan *rv = weft_chan_new(sizeof(uint64_t), 0, mode);
    if (rv == nullptr) return UV_ENOMEM;
    weft_chan_close(rv);
    r.rv_try_send = weft_chan_try_send(rv, &x);
    r.rv_try_recv = weft_chan_try_recv(rv, &x);
    r.rv_recv = weft_chan_recv(rv, &x);
    r.rv_send = weft_chan_send(rv, &x);
    weft_chan_free(rv);
    return 0;
  });
  CHECK(rc == 0);
  CHECK(r.closed_before == 0);
  CHECK(r.closed_after != 0);
  CHECK(r.try_send == WEFT_ECLOSED);
  CHECK(r.send == WEFT_ECLOSED);
  CHECK(r.send_n == WEFT_ECLOSED);
  for (int i = 0; i < 3; i++) {
    CHECK(r.recv[i] == 0);
    CHECK(r.values[i] == (uint64_t)i);
  }
  CHECK(r.recv_end == WEFT_ECLOSED);
  CHECK(r.try_recv_end == WEFT_ECLOSED);
  CHECK(r.recv_n == WEFT_ECLOSED);
  CHECK(r.recv_again == WEFT_ECLOSED);
  CHECK(r.rv_try_send == WEFT_ECLOSED);
  CHECK(r.rv_try_recv == WEFT_ECLOSED);
  CHECK(r.rv_recv == WEFT_ECLOSED);
  CHECK(r.rv_send == WEFT_ECLOSED);
}

TEST_CASE("close wakes the senders and receivers that wait", "[chan]") {
  int mode = GENERATE(as<int>{}, WEFT_CHAN_LOCAL, WEFT_CHAN_SPSC, WEFT_CHAN_MPMC);
  size_t cap = GENERATE(0, 4);
  INFO("mode " << mode_name(mode) << ", capacity " << cap);
  // An SPSC channel has one receiving (and one sending) task at a time.
  const int nrecv = mode == WEFT_CHAN_SPSC ? 1 : 3;

  struct {
    int recv_rc[3] = {1, 1, 1};
    int send_rc = 1;
    int drained = 0;
    int drain_end = 1;
    bool order_ok = true;
    int64_t recv_woken_ms = -1, send_woken_ms = -1;
  } r;
  auto start = std::chrono::steady_clock::now();
  int rc = run(executors_for(mode), [&]() -> int {
    // Receivers waiting on an empty channel.
    weft_chan *c = weft_chan_new(sizeof(uint64_t), cap, mode);
    if (c == nullptr) return UV_ENOMEM;
    Tasks receivers;
    std::atomic<int> ended{0};
    for (int i = 0; i < nrecv; i++)
      receivers.spawn(peer_executor(mode), [&, i]() -> int {
        uint64_t x;
        r.recv_rc[i] = weft_chan_recv(c, &x);
        ended++;
        return 0;
      });
    let_peer_wait(mode == WEFT_CHAN_LOCAL, 5, 20);
    int64_t t0 = weft_now();
    weft_chan_close(c);
    wait_until([&] { return ended.load() == nrecv; }, 2000);
    r.recv_woken_ms = weft_now() - t0;
    receivers.join();
    weft_chan_free(c);

    // A sender waiting on a full channel (or for a partner).
    c = weft_chan_new(sizeof(uint64_t), cap, mode);
    if (c == nullptr) return UV_ENOMEM;
    for (uint64_t i = 0; i < cap; i++) weft_chan_try_send(c, &i);
    std::atomic<bool> sent{false};
    Tasks senders;
    senders.spawn(peer_executor(mode), [&]() -> int {
      uint64_t x = 1000;
      r.send_rc = weft_chan_send(c, &x);
      sent.store(true);
      return 0;
    });
    let_peer_wait(mode == WEFT_CHAN_LOCAL, 5, 20);
    t0 = weft_now();
    weft_chan_close(c);
    wait_until([&] { return sent.load(); }, 2000);
    r.send_woken_ms = weft_now() - t0;
    senders.join();
    // What was buffered before the close is still there; the waiting
    // sender's item is not.
    uint64_t x;
    int got;
    while ((got = weft_chan_recv(c, &x)) == 0) {
      if (x != (uint64_t)r.drained) r.order_ok = false;
      r.drained++;
      if (r.drained > 10) break;
    }
    r.drain_end = got;
    weft_chan_free(c);
    return 0;
  });
  int64_t wall = std::chrono::duration_cast<std::chrono::milliseconds>(
                     std::chrono::steady_clock::now() - start)
                     .count();
  CHECK(rc == 0);
  for (int i = 0; i < nrecv; i++) CHECK(r.recv_rc[i] == WEFT_ECLOSED);
  CHECK(r.send_rc == WEFT_ECLOSED);
  CHECK(r.drained == (int)cap);
  CHECK(r.order_ok);
  CHECK(r.drain_end == WEFT_ECLOSED);
  CHECK(r.recv_woken_ms < weft_test_ms(1000));
  CHECK(r.send_woken_ms < weft_test_ms(1000));
  CHECK(wall < weft_test_ms(5000));
}

TEST_CASE("send_n and recv_n move runs of items in order", "[chan]") {
  int mode = GENERATE(as<int>{}, WEFT_CHAN_LOCAL, WEFT_CHAN_SPSC, WEFT_CHAN_MPMC);
  size_t cap = GENERATE(0, 1, 16, 64);
  INFO("mode " << mode_name(mode) << ", capacity " << cap);
  const size_t n = 5000;

  struct {
    long send_total = 0;
    long send_err = 0;
    size_t received = 0;
    long bad_batch = 0;  // a recv_n result outside 1..max
    bool order_ok = true;
    long zero = 1;
    long after_close_recv = 1, after_close_send = 1;
  } r;
  int rc = run(executors_for(mode), [&]() -> int {
    weft_chan *c = weft_chan_new(sizeof(uint64_t), cap, mode);
    if (c == nullptr) return UV_ENOMEM;
    Tasks tasks;
    tasks.spawn(peer_executor(mode), [&]() -> int {
      std::vector<uint64_t> items(n);
      for (size_t i = 0; i < n; i++) items[i] = i;
      // Runs of irregular length, some larger than the capacity.
      size_t i = 0, k = 1;
      while (i < n) {
        size_t len = std::min(n - i, k);
        long s = weft_chan_send_n(c, &items[i], len);
        if (s != (long)len) {
          r.send_err = s;
          break;
        }
        r.send_total += s;
        i += len;
        k = k * 3 % 97 + 1;
      }
      return 0;
    });
    uint64_t buf[50];
    r.zero = weft_chan_recv_n(c, buf, 0);
    size_t max = 1;
    while (r.received < n) {
      long got = weft_chan_recv_n(c, buf, max);
      if (got < 1 || got > (long)max) {
        r.bad_batch = got;
        break;
      }
      for (long j = 0; j < got; j++)
        if (buf[j] != r.received + j) r.order_ok = false;
      r.received += got;
      max = max % 50 + 7;
      if (max > 50) max = 50;
    }
    tasks.join();
    weft_chan_close(c);
    r.after_close_recv = weft_chan_recv_n(c, buf, 4);
    r.after_close_send = weft_chan_send_n(c, buf, 4);
    weft_chan_free(c);
    return 0;
  });
  CHECK(rc == 0);
  CHECK(r.send_err == 0);
  CHECK(r.send_total == (long)n);
  CHECK(r.bad_batch == 0);
  CHECK(r.received == n);
  CHECK(r.order_ok);
  CHECK(r.zero == 0);
  CHECK(r.after_close_recv == WEFT_ECLOSED);
  CHECK(r.after_close_send == WEFT_ECLOSED);
}

TEST_CASE("send_n cut short by a close returns the count sent", "[chan]") {
  int mode = GENERATE(as<int>{}, WEFT_CHAN_LOCAL, WEFT_CHAN_SPSC, WEFT_CHAN_MPMC);
  INFO("mode " << mode_name(mode));

  struct {
    long sent = -1;
    size_t received = 0;
    bool order_ok = true;
    int end = 1;
  } r;
  int rc = run(executors_for(mode), [&]() -> int {
    weft_chan *c = weft_chan_new(sizeof(uint64_t), 4, mode);
    if (c == nullptr) return UV_ENOMEM;
    Tasks tasks;
    tasks.spawn(peer_executor(mode), [&]() -> int {
      uint64_t items[10];
      for (uint64_t i = 0; i < 10; i++) items[i] = i;
      r.sent = weft_chan_send_n(c, items, 10);
      return 0;
    });
    // Wait for the ring to fill, take two items, then close while the
    // sender still has items to go.
    wait_until([&] { return weft_chan_len(c) == 4; }, 2000);
    uint64_t x;
    for (int i = 0; i < 2; i++) {
      if (weft_chan_recv(c, &x) == 0) {
        if (x != r.received) r.order_ok = false;
        r.received++;
      }
    }
    weft_chan_close(c);
    tasks.join();
    while ((r.end = weft_chan_recv(c, &x)) == 0) {
      if (x != r.received) r.order_ok = false;
      r.received++;
    }
    weft_chan_free(c);
    return 0;
  });
  CHECK(rc == 0);
  // Every item send_n counted as sent was received, and no other.
  CHECK(r.sent >= 4);
  CHECK(r.sent < 10);
  CHECK(r.received == (size_t)r.sent);
  CHECK(r.order_ok);
  CHECK(r.end == WEFT_ECLOSED);
}

TEST_CASE("a task cancelled in send or recv leaves nothing registered",
          "[chan][cancel]") {
  int mode = GENERATE(as<int>{}, WEFT_CHAN_LOCAL, WEFT_CHAN_SPSC, WEFT_CHAN_MPMC);
  size_t cap = GENERATE(0, 2);
  int how = GENERATE(BY_DEADLINE, BY_SCOPE_CANCEL, BY_GROUP_CANCEL);
  bool sending = GENERATE(false, true);
  INFO("mode " << mode_name(mode) << ", capacity " << cap << ", " << how_name(how)
               << ", blocked in " << (sending ? "send" : "recv"));

  CancelledWait w;
  struct {
    // After the cancellation.
    int probe_rc = 1;     // try_send (blocked receiver) / try_recv (sender)
    int buffered[2] = {1, 1};
    uint64_t buffered_values[2] = {9, 9};
    int after_empty = 1;
    int reuse_send = 1, reuse_recv = 1;
    uint64_t reuse_value = 0;
  } r;
  const int64_t deadline = weft_test_ms(30);
  int rc = run(executors_for(mode), [&]() -> int {
    weft_chan *c = weft_chan_new(sizeof(uint64_t), cap, mode);
    if (c == nullptr) return UV_ENOMEM;
    if (sending)
      for (uint64_t i = 0; i < cap; i++) weft_chan_try_send(c, &i);
    // weft_scope_cancel works within one executor: that blocked task stays
    // on this one. The others go to the peer executor.
    int where = how == BY_SCOPE_CANCEL ? 0 : peer_executor(mode);
    w = cancel_wait(how, where, deadline, [&]() -> int {
      uint64_t x = 77;
      return sending ? weft_chan_send(c, &x) : weft_chan_recv(c, &x);
    });

    uint64_t x = 0;
    if (sending) {
      // The cancelled item never went in: only what was buffered comes out.
      for (size_t i = 0; i < cap; i++)
        r.buffered[i] = weft_chan_try_recv(c, &r.buffered_values[i]);
      r.after_empty = weft_chan_try_recv(c, &x);
    } else {
      // No receiver is left: a rendezvous try_send finds nobody.
      uint64_t y = 5;
      r.probe_rc = weft_chan_try_send(c, &y);
      if (r.probe_rc == 0) weft_chan_try_recv(c, &x);
    }
    // And the channel still works, both ways.
    Tasks again;
    again.spawn(peer_executor(mode), [&]() -> int {
      uint64_t v = 123;
      r.reuse_send = weft_chan_send(c, &v);
      return 0;
    });
    r.reuse_recv = weft_chan_recv(c, &r.reuse_value);
    again.join();
    weft_chan_free(c);
    return 0;
  });
  int want = how == BY_DEADLINE ? UV_ETIMEDOUT : UV_ECANCELED;
  CHECK(rc == 0);
  CHECK(w.op_rc == want);
  CHECK(w.scope_rc == want);
  if (how == BY_DEADLINE) {
    CHECK(w.waited_ms >= deadline - 5);
  }
  CHECK(w.waited_ms < weft_test_ms(2000));
  // The task returned 0: cancelling a group is not an error of the group.
  CHECK(w.join_rc == 0);
  if (sending) {
    for (size_t i = 0; i < cap; i++) {
      CHECK(r.buffered[i] == 0);
      CHECK(r.buffered_values[i] == i);
    }
    CHECK(r.after_empty == UV_EAGAIN);
  } else {
    CHECK(r.probe_rc == (cap == 0 ? UV_EAGAIN : 0));
  }
  CHECK(r.reuse_send == 0);
  CHECK(r.reuse_recv == 0);
  CHECK(r.reuse_value == 123);
}

TEST_CASE("a task cancelled before it waits does not block", "[chan][cancel]") {
  int mode = GENERATE(as<int>{}, WEFT_CHAN_LOCAL, WEFT_CHAN_SPSC, WEFT_CHAN_MPMC);
  INFO("mode " << mode_name(mode));
  struct {
    int recv_rc = 1, send_rc = 1;
    int probe = 1;
  } r;
  int rc = run(1, [&]() -> int {
    weft_chan *c = weft_chan_new(sizeof(uint64_t), 0, mode);
    if (c == nullptr) return UV_ENOMEM;
    uint64_t x = 1;
    weft_scope s;
    weft_scope_enter(&s, WEFT_NO_DEADLINE);
    weft_scope_cancel(&s);
    r.recv_rc = weft_chan_recv(c, &x);
    r.send_rc = weft_chan_send(c, &x);
    weft_scope_leave(&s);
    r.probe = weft_chan_try_send(c, &x);
    weft_chan_free(c);
    return 0;
  });
  CHECK(rc == 0);
  CHECK(r.recv_rc == UV_ECANCELED);
  CHECK(r.send_rc == UV_ECANCELED);
  CHECK(r.probe == UV_EAGAIN);
}
