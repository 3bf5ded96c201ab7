// Stress tests of the cross-executor channels: producers and consumers
// spread over four executors (threads), MPMC and SPSC, buffered and
// rendezvous, millions of items in all. Every item carries its producer and
// sequence number, so the tests can prove that each item sent was received
// exactly once and that each consumer saw each producer's items in order.
// Closes and cancellations (deadlines, weft_scope_cancel, weft_group_cancel)
// are mixed in; what a cancelled consumer left behind is drained and counted
// at the end.
//
// The counts are divided by 10 when WEFT_TEST_TIMEOUT_SCALE is above 1
// (sanitizer and Valgrind builds). The file is meant to pass under
// ThreadSanitizer as well.

#include <catch2/catch.hpp>

#include <atomic>
#include <cstdlib>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#define WEFT_TEST_RUN_DEADLINE_MS 50000
#include "closures.h"
#include "support.h"
#include "weft.h"

namespace {

// Watches a progress counter from a task on the root's executor. When the
// counter stops moving for 10 s (scaled), it cancels the groups it guards
// and says so: a lost wake-up would otherwise hang the test until ctest
// kills it, with nothing to tell what happened. A cancellation is posted to
// the other executors, which also wakes one that missed a message.
class Watchdog {
 public:
  Watchdog(const std::atomic<uint64_t> &progress, std::vector<Tasks *> guarded)
      : progress_(progress), guarded_(std::move(guarded)) {}

  void start() {
    tasks_.spawn(0, [this]() -> int {
      const int64_t step = 100, limit = weft_test_ms(10000);
      uint64_t last = progress_.load(std::memory_order_relaxed);
      int64_t still = 0;
      while (weft_sleep(step) == 0) {
        uint64_t now = progress_.load(std::memory_order_relaxed);
        if (now != last) {
          last = now;
          still = 0;
        } else if ((still += step) >= limit) {
          fired_ = true;
          for (Tasks *t : guarded_) t->cancel();
          return 0;
        }
      }
      return 0;
    });
  }
  void stop() {
    tasks_.cancel();
    tasks_.join();
  }
  bool fired() const { return fired_; }

 private:
  const std::atomic<uint64_t> &progress_;
  std::vector<Tasks *> guarded_;
  Tasks tasks_;
  bool fired_ = false;
};

// Message counts shrink under sanitizers, which run many times slower.
uint64_t scaled(uint64_t n) {
  const char *s = getenv("WEFT_TEST_TIMEOUT_SCALE");
  return s != nullptr && atof(s) > 1.0 ? n / 10 : n;
}

const int kExecutors = 4;

uint64_t encode(int producer, uint64_t seq) { return (uint64_t)producer << 40 | seq; }
int producer_of(uint64_t item) { return (int)(item >> 40); }
uint64_t seq_of(uint64_t item) { return item & (((uint64_t)1 << 40) - 1); }

// Who received what: a counter per item, shared by every consumer.
class Tally {
 public:
  Tally(int producers, uint64_t per_producer)
      : producers_(producers), per_(per_producer) {
    for (int p = 0; p < producers; p++) {
      seen_.emplace_back(new std::atomic<uint8_t>[per_producer]);
      for (uint64_t i = 0; i < per_producer; i++) seen_.back()[i] = 0;
    }
  }

  // A consumer's view: the next sequence number it may see from each
  // producer (items of one producer reach one consumer in order).
  struct Cursor {
    std::vector<uint64_t> next;
    uint64_t received = 0;
    uint64_t out_of_order = 0;
    uint64_t bad = 0;
  };
  Cursor cursor() const {
    Cursor c;
    c.next.assign(producers_, 0);
    return c;
  }

  void record(Cursor &c, uint64_t item) {
    int p = producer_of(item);
    uint64_t s = seq_of(item);
    if (p < 0 || p >= producers_ || s >= per_) {
      c.bad++;
      return;
    }
    if (s < c.next[p]) c.out_of_order++;
    c.next[p] = s + 1;
    seen_[p][s].fetch_add(1, std::memory_order_relaxed);
    if (++c.received % 256 == 0) progress.fetch_add(256, std::memory_order_relaxed);
  }

  // More items than could ever be sent: the channel is handing out garbage
  // or duplicates, and the consumer must stop rather than spin forever.
  bool runaway(const Cursor &c) const {
    return c.received > (uint64_t)producers_ * per_ || c.bad > 0;
  }

  // Grows as items are received (in steps, to keep consumers off one
  // cache line); the watchdog reads it.
  std::atomic<uint64_t> progress{0};

  // Items of producer p below `sent` seen exactly once and none above.
  uint64_t wrong_counts(int p, uint64_t sent) const {
    uint64_t wrong = 0;
    for (uint64_t i = 0; i < per_; i++) {
      int n = seen_[p][i].load(std::memory_order_relaxed);
      if (n != (i < sent ? 1 : 0)) wrong++;
    }
    return wrong;
  }

 private:
  int producers_;
  uint64_t per_;
  std::vector<std::unique_ptr<std::atomic<uint8_t>[]>> seen_;
};

// Sends items [0, n) of producer p, in single sends and runs of varying
// length (send_n). Returns how many were sent before an error, and the
// error in *err (0 when all went).
uint64_t produce(weft_chan *c, int p, uint64_t n, int *err) {
  uint64_t buf[64];
  uint64_t i = 0;
  unsigned k = (unsigned)p * 7 + 1;
  *err = 0;
  while (i < n) {
    k = k * 1103515245u + 12345u;
    unsigned len = (k >> 16) % 40;
    if (len < 20) {
      uint64_t item = encode(p, i);
      int r = weft_chan_send(c, &item);
      if (r != 0) {
        *err = r;
        break;
      }
      i++;
    } else {
      len = len - 19;  // 1..20 items
      if (len > n - i) len = (unsigned)(n - i);
      for (unsigned j = 0; j < len; j++) buf[j] = encode(p, i + j);
      long r = weft_chan_send_n(c, buf, len);
      if (r < 0) {
        *err = (int)r;
        break;
      }
      i += (uint64_t)r;
      if (r < (long)len) {
        // Cut short: the next send reports why.
        continue;
      }
    }
  }
  return i;
}

// Receives until an error, in single receives and runs (recv_n). Returns
// the error that ended it.
int consume(weft_chan *c, Tally &tally, Tally::Cursor &cur, int id) {
  uint64_t buf[32];
  unsigned k = (unsigned)id * 13 + 5;
  for (;;) {
    k = k * 1103515245u + 12345u;
    unsigned len = (k >> 16) % 48;
    if (len < 16) {
      uint64_t item;
      int r = weft_chan_recv(c, &item);
      if (r != 0) return r;
      tally.record(cur, item);
      if (tally.runaway(cur)) return UV_EPROTO;
    } else {
      len = len - 15;  // 1..32
      long r = weft_chan_recv_n(c, buf, len);
      if (r < 0) return (int)r;
      for (long j = 0; j < r; j++) tally.record(cur, buf[j]);
      if (tally.runaway(cur)) return UV_EPROTO;
    }
  }
}

// What a test of producers and consumers of tagged items records: the
// tally, a cursor per consumer (and one more for a drain at the end, when
// asked), and how each producer and consumer ended. The tasks write it; the
// test reads it after weft_main() returns.
struct Ledger {
  Ledger(int producers, uint64_t per_producer, size_t n_cursors)
      : tally(producers, per_producer), cursors(n_cursors, tally.cursor()) {}

  Tally tally;
  std::vector<Tally::Cursor> cursors;
  uint64_t sent[4] = {0, 0, 0, 0};
  int send_err[4] = {1, 1, 1, 1};
  int recv_end[5] = {1, 1, 1, 1, 1};
  int drain_end = 1;
  bool stalled = false;

  // Spawns consumer i into t on the given executor: it receives from c
  // until an error, which goes to recv_end[i].
  void spawn_consumer(Tasks &t, int executor, weft_chan *c, int i) {
    t.spawn(executor, [this, c, i]() -> int {
      recv_end[i] = consume(c, tally, cursors[i], i);
      return 0;
    });
  }

  // Spawns producer p into t on the given executor: it sends its n items to
  // c, and leaves the count sent in sent[p] and the error in send_err[p].
  void spawn_producer(Tasks &t, int executor, weft_chan *c, int p, uint64_t n) {
    t.spawn(executor, [this, c, p, n]() -> int {
      sent[p] = produce(c, p, n, &send_err[p]);
      return 0;
    });
  }

  // Takes what the consumers left in c (sent and not received) into the
  // last cursor, until try_recv fails; its error goes to drain_end.
  void drain(weft_chan *c) {
    Tally::Cursor &cur = cursors.back();
    uint64_t item;
    while ((drain_end = weft_chan_try_recv(c, &item)) == 0) {
      tally.record(cur, item);
      if (tally.runaway(cur)) break;
    }
  }

  // Checks that consumers [0, nc) each ran to the close and saw every
  // producer's items in order, and that each of the np producers sent its
  // `per` items, every one received exactly once.
  void check_all_delivered(int np, int nc, uint64_t per) {
    uint64_t total = 0;
    for (int i = 0; i < nc; i++) {
      INFO("consumer " << i);
      CHECK(recv_end[i] == WEFT_ECLOSED);
      CHECK(cursors[i].out_of_order == 0);
      CHECK(cursors[i].bad == 0);
      total += cursors[i].received;
    }
    CHECK(total == per * np);
    for (int p = 0; p < np; p++) {
      INFO("producer " << p);
      CHECK(send_err[p] == 0);
      CHECK(sent[p] == per);
      CHECK(tally.wrong_counts(p, per) == 0);
    }
  }
};

}  // namespace

TEST_CASE("MPMC: 4 producers and 4 consumers on 4 executors, closed at the end",
          "[stress]") {
  size_t cap = GENERATE(1, 64, 1024);
  INFO("capacity " << cap);
  const int np = 4, nc = 4;
  const uint64_t per = scaled(cap == 1 ? 150000 : 500000);
  Ledger r(np, per, nc);
  int join_p = 1, join_c = 1;
  int rc = run(kExecutors, [&]() -> int {
    weft_chan *c = weft_chan_new(sizeof(uint64_t), cap, WEFT_CHAN_MPMC);
    if (c == nullptr) return UV_ENOMEM;
    Tasks consumers, producers;
    Watchdog watchdog(r.tally.progress, {&consumers, &producers});
    watchdog.start();
    for (int i = 0; i < nc; i++)
      r.spawn_consumer(consumers, (i + 2) % kExecutors + 1, c, i);
    for (int p = 0; p < np; p++)
      r.spawn_producer(producers, p % kExecutors + 1, c, p, per);
    join_p = producers.join();
    weft_chan_close(c);
    join_c = consumers.join();
    watchdog.stop();
    r.stalled = watchdog.fired();
    weft_chan_free(c);
    return 0;
  });
  CHECK(rc == 0);
  CHECK_FALSE(r.stalled);
  CHECK(join_p == 0);
  CHECK(join_c == 0);
  r.check_all_delivered(np, nc, per);
}

TEST_CASE("SPSC: 4 producer-consumer pairs across executors, closed by the "
          "producer",
          "[stress]") {
  size_t cap = GENERATE(1, 64, 1024);
  INFO("capacity " << cap);
  const int pairs = 4;
  const uint64_t per = scaled(cap == 1 ? 100000 : 1000000);
  struct Pair {
    uint64_t sent = 0;
    int send_err = 1;
    uint64_t received = 0;
    uint64_t out_of_order = 0;
    int recv_end = 1;
  };
  Pair r[4];
  std::atomic<uint64_t> progress{0};
  bool stalled = false;
  int rc = run(kExecutors, [&]() -> int {
    weft_chan *c[4];
    for (auto &ch : c) ch = weft_chan_new(sizeof(uint64_t), cap, WEFT_CHAN_SPSC);
    Tasks tasks;
    Watchdog watchdog(progress, {&tasks});
    watchdog.start();
    for (int i = 0; i < pairs; i++) {
      // Producer i on executor i+1, its consumer on the next one.
      tasks.spawn(i + 1, [&, i]() -> int {
        r[i].sent = produce(c[i], i, per, &r[i].send_err);
        weft_chan_close(c[i]);
        return 0;
      });
      tasks.spawn((i + 1) % kExecutors + 1, [&, i]() -> int {
        uint64_t buf[32];
        uint64_t expect = 0;
        unsigned k = (unsigned)i + 3;
        for (;;) {
          k = k * 1103515245u + 12345u;
          unsigned len = (k >> 16) % 33;
          long got;
          if (len == 0) {
            int e = weft_chan_recv(c[i], buf);
            got = e == 0 ? 1 : e;
          } else {
            got = weft_chan_recv_n(c[i], buf, len);
          }
          if (got < 0) {
            r[i].recv_end = (int)got;
            break;
          }
          for (long j = 0; j < got; j++) {
            if (buf[j] != encode(i, expect)) r[i].out_of_order++;
            expect++;
          }
          r[i].received += (uint64_t)got;
          progress.fetch_add((uint64_t)got, std::memory_order_relaxed);
          if (r[i].received > per) {
            // More than was sent: stop rather than spin forever.
            r[i].recv_end = UV_EPROTO;
            break;
          }
        }
        return 0;
      });
    }
    int j = tasks.join();
    watchdog.stop();
    stalled = watchdog.fired();
    for (auto *ch : c) weft_chan_free(ch);
    return j;
  });
  CHECK(rc == 0);
  CHECK_FALSE(stalled);
  for (int i = 0; i < pairs; i++) {
    INFO("pair " << i);
    CHECK(r[i].send_err == 0);
    CHECK(r[i].sent == per);
    CHECK(r[i].received == per);
    CHECK(r[i].out_of_order == 0);
    CHECK(r[i].recv_end == WEFT_ECLOSED);
  }
}

TEST_CASE("rendezvous across executors: MPMC 4x4 and SPSC pairs", "[stress]") {
  int mode = GENERATE(as<int>{}, WEFT_CHAN_MPMC, WEFT_CHAN_SPSC);
  INFO((mode == WEFT_CHAN_MPMC ? "MPMC" : "SPSC"));
  const int n = 4;
  const uint64_t per = scaled(50000);
  Ledger r(n, per, n);
  int rc = run(kExecutors, [&]() -> int {
    // MPMC: one channel for all; SPSC: one per pair.
    weft_chan *c[4];
    for (int i = 0; i < n; i++)
      c[i] = mode == WEFT_CHAN_MPMC && i > 0 ? c[0]
                                             : weft_chan_new(sizeof(uint64_t), 0, mode);
    Tasks consumers, producers;
    Watchdog watchdog(r.tally.progress, {&consumers, &producers});
    watchdog.start();
    for (int i = 0; i < n; i++)
      r.spawn_consumer(consumers, (i + 1) % kExecutors + 1, c[i], i);
    for (int p = 0; p < n; p++)
      r.spawn_producer(producers, p + 1, c[p], p, per);
    int jp = producers.join();
    for (int i = 0; i < n; i++)
      if (mode == WEFT_CHAN_SPSC || i == 0) weft_chan_close(c[i]);
    int jc = consumers.join();
    watchdog.stop();
    r.stalled = watchdog.fired();
    for (int i = 0; i < n; i++)
      if (mode == WEFT_CHAN_SPSC || i == 0) weft_chan_free(c[i]);
    return jp != 0 ? jp : jc;
  });
  CHECK_FALSE(r.stalled);
  CHECK(rc == 0);
  r.check_all_delivered(n, n, per);
}

TEST_CASE("MPMC with cancellations mixed in: every item sent is received once "
          "or still buffered",
          "[stress][cancel]") {
  size_t cap = GENERATE(0, 1, 64);
  INFO("capacity " << cap);
  const int np = 4, nc = 5;
  const uint64_t per = scaled(cap == 0 ? 40000 : 300000);
  // One cursor per consumer, and one for the drain at the end.
  Ledger r(np, per, nc + 1);
  int rc = run(kExecutors, [&]() -> int {
    weft_chan *c = weft_chan_new(sizeof(uint64_t), cap, WEFT_CHAN_MPMC);
    weft_chan *idle = weft_chan_new(sizeof(uint64_t), 4, WEFT_CHAN_MPMC);
    if (c == nullptr || idle == nullptr) return UV_ENOMEM;
    Tasks consumers, cancellable, producers;
    Watchdog watchdog(r.tally.progress, {&consumers, &cancellable, &producers});
    watchdog.start();
    std::atomic<weft_scope *> c1_scope{nullptr};
    // Consumer 0 (executor 2): a scope deadline stops it.
    consumers.spawn(2, [&]() -> int {
      weft_scope s;
      weft_scope_enter(&s, weft_test_ms(15));
      r.recv_end[0] = consume(c, r.tally, r.cursors[0], 0);
      weft_scope_leave(&s);
      return 0;
    });
    // Consumer 1 (executor 3): a select over the channel and an idle one,
    // stopped by weft_scope_cancel from a sibling on its executor.
    consumers.spawn(3, [&]() -> int {
      weft_scope s;
      weft_scope_enter(&s, WEFT_NO_DEADLINE);
      c1_scope.store(&s);
      uint64_t a = 0, b = 0;
      weft_case cases[2] = {{c, WEFT_SELECT_RECV, &a, 0}, {idle, WEFT_SELECT_RECV, &b, 0}};
      for (;;) {
        int k = weft_select(cases, 2, -1);
        if (k < 0) {
          r.recv_end[1] = k;
          break;
        }
        if (k == 0 && cases[0].result == 0) {
          r.tally.record(r.cursors[1], a);
          if (r.tally.runaway(r.cursors[1])) {
            r.recv_end[1] = UV_EPROTO;
            break;
          }
        } else {
          r.recv_end[1] = cases[k].result == 0 ? UV_EPROTO : cases[k].result;
          break;
        }
      }
      c1_scope.store(nullptr);
      weft_scope_leave(&s);
      return 0;
    });
    consumers.spawn(3, [&]() -> int {
      weft_sleep(weft_test_ms(25));
      weft_scope *s = c1_scope.load();
      if (s != nullptr) weft_scope_cancel(s);
      return 0;
    });
    // Consumer 2 (executor 4): its group is cancelled from executor 1.
    r.spawn_consumer(cancellable, 4, c, 2);
    // Consumers 3 and 4 (executors 1 and 2) run to the close.
    for (int i = 3; i < nc; i++)
      r.spawn_consumer(consumers, i == 3 ? 1 : 2, c, i);
    // Producer 0 has a deadline too; the others send everything.
    for (int p = 0; p < np; p++)
      producers.spawn(p % kExecutors + 1, [&, p]() -> int {
        weft_scope s;
        weft_scope_enter(&s, p == 0 ? weft_test_ms(20) : WEFT_NO_DEADLINE);
        r.sent[p] = produce(c, p, per, &r.send_err[p]);
        weft_scope_leave(&s);
        return 0;
      });
    weft_sleep(weft_test_ms(35));
    cancellable.cancel();
    cancellable.join();
    producers.join();
    weft_chan_close(c);
    consumers.join();
    watchdog.stop();
    r.stalled = watchdog.fired();
    // What is left in the channel was sent and not received.
    r.drain(c);
    weft_chan_free(c);
    weft_chan_free(idle);
    return 0;
  });
  CHECK(rc == 0);
  CHECK_FALSE(r.stalled);
  // Every consumer stopped for its own reason, or at the close.
  CHECK((r.recv_end[0] == UV_ETIMEDOUT || r.recv_end[0] == WEFT_ECLOSED));
  CHECK((r.recv_end[1] == UV_ECANCELED || r.recv_end[1] == WEFT_ECLOSED));
  CHECK((r.recv_end[2] == UV_ECANCELED || r.recv_end[2] == WEFT_ECLOSED));
  CHECK(r.recv_end[3] == WEFT_ECLOSED);
  CHECK(r.recv_end[4] == WEFT_ECLOSED);
  CHECK(r.drain_end == WEFT_ECLOSED);
  for (int i = 0; i <= nc; i++) {
    INFO("consumer " << i << " (" << nc << ": the drain)");
    CHECK(r.cursors[i].out_of_order == 0);
    CHECK(r.cursors[i].bad == 0);
  }
  // The drain finds nothing: consumers 3 and 4 ran until the channel was
  // closed and empty.
  CHECK(r.cursors[nc].received == 0);
  for (int p = 0; p < np; p++) {
    INFO("producer " << p << " sent " << r.sent[p]);
    if (p == 0)
      CHECK((r.send_err[p] == UV_ETIMEDOUT || r.send_err[p] == 0));
    else
      CHECK(r.send_err[p] == 0);
    CHECK(r.tally.wrong_counts(p, r.sent[p]) == 0);
  }
}

TEST_CASE("MPMC closed while producers still send: nothing sent is lost",
          "[stress]") {
  size_t cap = GENERATE(0, 64);
  INFO("capacity " << cap);
  const int np = 4, nc = 4;
  const uint64_t per = scaled(cap == 0 ? 40000 : 400000);
  // One cursor per consumer, and one for the drain at the end.
  Ledger r(np, per, nc + 1);
  int rc = run(kExecutors, [&]() -> int {
    weft_chan *c = weft_chan_new(sizeof(uint64_t), cap, WEFT_CHAN_MPMC);
    if (c == nullptr) return UV_ENOMEM;
    Tasks tasks;
    Watchdog watchdog(r.tally.progress, {&tasks});
    watchdog.start();
    for (int i = 0; i < nc; i++)
      r.spawn_consumer(tasks, (i + 1) % kExecutors + 1, c, i);
    for (int p = 0; p < np; p++)
      r.spawn_producer(tasks, p % kExecutors + 1, c, p, per);
    // Close mid-stream, from the root task on executor 1.
    weft_sleep(weft_test_ms(20));
    weft_chan_close(c);
    tasks.join();
    watchdog.stop();
    r.stalled = watchdog.fired();
    r.drain(c);
    weft_chan_free(c);
    return 0;
  });
  CHECK(rc == 0);
  CHECK_FALSE(r.stalled);
  for (int i = 0; i < nc; i++) {
    INFO("consumer " << i);
    CHECK(r.recv_end[i] == WEFT_ECLOSED);
    CHECK(r.cursors[i].out_of_order == 0);
    CHECK(r.cursors[i].bad == 0);
  }
  CHECK(r.drain_end == WEFT_ECLOSED);
  for (int p = 0; p < np; p++) {
    INFO("producer " << p << " sent " << r.sent[p]);
    CHECK((r.send_err[p] == WEFT_ECLOSED || r.send_err[p] == 0));
    // Sent means received once, by a consumer or by the drain.
    CHECK(r.tally.wrong_counts(p, r.sent[p]) == 0);
  }
  // A send that passed its check of the close just before the close, and
  // published just after the consumers saw the channel closed and empty,
  // leaves its item for the drain. Rare; reported, not failed.
  if (r.cursors[nc].received != 0)
    WARN("items received only by the drain after close: "
         << r.cursors[nc].received);
}
