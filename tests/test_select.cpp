// Tests of weft_select: the ready case fires, cases of every channel mode
// mixed (LOCAL, SPSC, MPMC, rendezvous), send cases, fairness between
// always-ready cases, timeouts, closed channels, bad arguments, wake-ups
// from another executor, and cancellation of a waiting select (after which
// none of its cases may be left registered).
//
// Results are recorded in plain variables inside tasks and asserted after
// weft_main_opts() returns.

#include <catch2/catch.hpp>

#include <atomic>
#include <deque>
#include <functional>
#include <string>
#include <vector>

#include "chan_support.h"
#include "closures.h"
#include "support.h"
#include "weft.h"

namespace {

// A case of operation op on c with elem, its result preset to 1 so that a
// case select did not fire is told apart from one that fired with 0.
weft_case make_case(weft_chan *c, int op, void *elem) {
  weft_case k{};
  k.chan = c;
  k.op = op;
  k.elem = elem;
  k.result = 1;
  return k;
}

weft_case recv_case(weft_chan *c, void *elem) {
  return make_case(c, WEFT_SELECT_RECV, elem);
}
weft_case send_case(weft_chan *c, void *elem) {
  return make_case(c, WEFT_SELECT_SEND, elem);
}

}  // namespace

TEST_CASE("select fires the case that is ready", "[select]") {
  int mode = GENERATE(as<int>{}, WEFT_CHAN_LOCAL, WEFT_CHAN_SPSC, WEFT_CHAN_MPMC);
  INFO("mode " << mode_name(mode));
  struct {
    int fired = -1;
    int result = 1;
    uint64_t value = 0;
    uint64_t untouched[3] = {0, 0, 0};
    size_t len_after[3] = {9, 9, 9};
    int fired_many = -1;
    int many_result = 1;
  } r;
  int rc = run(1, [&]() -> int {
    weft_chan *c[3];
    for (auto &ch : c) ch = weft_chan_new(sizeof(uint64_t), 4, mode);
    uint64_t v = 31;
    weft_chan_try_send(c[1], &v);
    uint64_t slots[3] = {0, 0, 0};
    weft_case cases[4] = {recv_case(c[0], &slots[0]), recv_case(nullptr, nullptr),
                          recv_case(c[1], &slots[1]), recv_case(c[2], &slots[2])};
    r.fired = weft_select(cases, 4, 1000);
    if (r.fired >= 0) r.result = cases[r.fired].result;
    r.value = slots[1];
    r.untouched[0] = slots[0];
    r.untouched[2] = slots[2];
    for (int i = 0; i < 3; i++) r.len_after[i] = weft_chan_len(c[i]);

    // More cases than fit in select's own small array: only the last is
    // ready.
    std::vector<weft_chan *> many;
    std::vector<uint64_t> out(12);
    std::vector<weft_case> mc;
    for (int i = 0; i < 12; i++) {
      many.push_back(weft_chan_new(sizeof(uint64_t), 2, mode));
      mc.push_back(recv_case(many.back(), &out[i]));
    }
    weft_chan_try_send(many[11], &v);
    r.fired_many = weft_select(mc.data(), mc.size(), 0);
    if (r.fired_many >= 0) r.many_result = mc[r.fired_many].result;
    for (auto *ch : many) weft_chan_free(ch);
    for (auto *ch : c) weft_chan_free(ch);
    return 0;
  });
  CHECK(rc == 0);
  CHECK(r.fired == 2);
  CHECK(r.result == 0);
  CHECK(r.value == 31);
  CHECK(r.untouched[0] == 0);
  CHECK(r.untouched[2] == 0);
  CHECK(r.len_after[0] == 0);
  CHECK(r.len_after[1] == 0);
  CHECK(r.len_after[2] == 0);
  CHECK(r.fired_many == 11);
  CHECK(r.many_result == 0);
}

TEST_CASE("select over LOCAL, SPSC, MPMC and rendezvous cases, woken from "
          "another executor",
          "[select]") {
  // Case 0: LOCAL buffered, fed by a task of this executor.
  // Case 1: MPMC buffered, case 2: MPMC rendezvous, case 3: SPSC buffered,
  // case 4: SPSC rendezvous; all fed by tasks on executor 2.
  struct Round {
    int fired = -1;
    int result = 1;
    uint64_t value = 0;
    int sender_rc = 1;
  };
  Round rounds[6];
  Round waiting_sender;   // a rendezvous sender that waits before the select
  int64_t remote_wake_ms = -1;
  int rc = run(2, [&]() -> int {
    weft_chan *local = weft_chan_new(sizeof(uint64_t), 4, WEFT_CHAN_LOCAL);
    weft_chan *mpmc = weft_chan_new(sizeof(uint64_t), 4, WEFT_CHAN_MPMC);
    weft_chan *mpmc0 = weft_chan_new(sizeof(uint64_t), 0, WEFT_CHAN_MPMC);
    weft_chan *spsc = weft_chan_new(sizeof(uint64_t), 4, WEFT_CHAN_SPSC);
    weft_chan *spsc0 = weft_chan_new(sizeof(uint64_t), 0, WEFT_CHAN_SPSC);
    weft_chan *chans[5] = {local, mpmc, mpmc0, spsc, spsc0};
    uint64_t slots[5];
    weft_case cases[5];
    const int order[6] = {1, 2, 0, 3, 4, 2};
    for (int k = 0; k < 6; k++) {
      int target = order[k];
      for (int i = 0; i < 5; i++) {
        slots[i] = 0;
        cases[i] = recv_case(chans[i], &slots[i]);
      }
      Tasks feeder;
      uint64_t v = 100 + k;
      feeder.spawn(target == 0 ? 0 : 2, [&, target, v]() -> int {
        // Give the select time to register everywhere first.
        let_peer_wait(target == 0, 5, 15);
        uint64_t x = v;
        rounds[k].sender_rc = weft_chan_send(chans[target], &x);
        return 0;
      });
      int64_t t0 = weft_now();
      rounds[k].fired = weft_select(cases, 5, weft_test_ms(5000));
      if (k == 0) remote_wake_ms = weft_now() - t0;
      if (rounds[k].fired >= 0) {
        rounds[k].result = cases[rounds[k].fired].result;
        rounds[k].value = slots[rounds[k].fired];
      }
      feeder.join();
    }

    // A rendezvous sender already waiting when select looks.
    Tasks early;
    std::atomic<bool> sent{false};
    early.spawn(2, [&]() -> int {
      uint64_t x = 555;
      waiting_sender.sender_rc = weft_chan_send(mpmc0, &x);
      sent.store(true);
      return 0;
    });
    weft_sleep(weft_test_ms(20));
    for (int i = 0; i < 5; i++) {
      slots[i] = 0;
      cases[i] = recv_case(chans[i], &slots[i]);
    }
    waiting_sender.fired = weft_select(cases, 5, weft_test_ms(5000));
    if (waiting_sender.fired >= 0) {
      waiting_sender.result = cases[waiting_sender.fired].result;
      waiting_sender.value = slots[waiting_sender.fired];
    }
    early.join();
    for (auto *c : chans) weft_chan_free(c);
    return 0;
  });
  CHECK(rc == 0);
  const int order[6] = {1, 2, 0, 3, 4, 2};
  for (int k = 0; k < 6; k++) {
    INFO("round " << k);
    CHECK(rounds[k].fired == order[k]);
    CHECK(rounds[k].result == 0);
    CHECK(rounds[k].value == (uint64_t)(100 + k));
    CHECK(rounds[k].sender_rc == 0);
  }
  CHECK(remote_wake_ms < weft_test_ms(1000));
  CHECK(waiting_sender.fired == 2);
  CHECK(waiting_sender.result == 0);
  CHECK(waiting_sender.value == 555);
  CHECK(waiting_sender.sender_rc == 0);
}

TEST_CASE("select send cases", "[select]") {
  struct {
    int fired_room = -1, result_room = 1;
    uint64_t got_room = 0;
    size_t full_len = 0;
    int fired_blocked = -1, result_blocked = 1;
    uint64_t drained[2] = {0, 0};
    int fired_handoff = -1;
    uint64_t handoff_value = 0;
    int handoff_recv_rc = 1;
    int fired_remote = -1;
    uint64_t remote_value = 0;
    int remote_recv_rc = 1;
    int fired_mixed = -1;
    uint64_t mixed_in = 0;
  } r;
  int rc = run(2, [&]() -> int {
    // A send case on a full channel and one with room: the latter fires.
    weft_chan *full = weft_chan_new(sizeof(uint64_t), 1, WEFT_CHAN_LOCAL);
    weft_chan *room = weft_chan_new(sizeof(uint64_t), 1, WEFT_CHAN_LOCAL);
    uint64_t one = 1, two = 2;
    weft_chan_try_send(full, &one);
    weft_case cases[2] = {send_case(full, &two), send_case(room, &two)};
    r.fired_room = weft_select(cases, 2, 1000);
    if (r.fired_room >= 0) r.result_room = cases[r.fired_room].result;
    weft_chan_try_recv(room, &r.got_room);
    r.full_len = weft_chan_len(full);

    // A send case that waits for room: a receiver on this executor makes
    // some, and the select's item goes in behind the first.
    Tasks reader;
    reader.spawn(0, [&]() -> int {
      yield_n(5);
      uint64_t x;
      weft_chan_recv(full, &x);
      return 0;
    });
    uint64_t three = 3;
    weft_case blocked[1] = {send_case(full, &three)};
    r.fired_blocked = weft_select(blocked, 1, weft_test_ms(5000));
    if (r.fired_blocked >= 0) r.result_blocked = blocked[0].result;
    reader.join();
    weft_chan_try_recv(full, &r.drained[0]);
    r.drained[1] = weft_chan_len(full);

    // A send case to a LOCAL rendezvous with a receiver waiting.
    weft_chan *rv = weft_chan_new(sizeof(uint64_t), 0, WEFT_CHAN_LOCAL);
    Tasks taker;
    taker.spawn(0, [&]() -> int {
      r.handoff_recv_rc = weft_chan_recv(rv, &r.handoff_value);
      return 0;
    });
    yield_n(5);
    uint64_t four = 4;
    weft_case h[1] = {send_case(rv, &four)};
    r.fired_handoff = weft_select(h, 1, weft_test_ms(5000));
    taker.join();

    // A send case to an MPMC rendezvous whose receiver comes later, from
    // executor 2.
    weft_chan *xrv = weft_chan_new(sizeof(uint64_t), 0, WEFT_CHAN_MPMC);
    Tasks remote;
    remote.spawn(2, [&]() -> int {
      weft_sleep(weft_test_ms(15));
      r.remote_recv_rc = weft_chan_recv(xrv, &r.remote_value);
      return 0;
    });
    uint64_t five = 5;
    weft_case x[2] = {send_case(xrv, &five), send_case(full, &five)};
    // full holds one item again so that only the rendezvous can fire.
    weft_chan_try_send(full, &one);
    r.fired_remote = weft_select(x, 2, weft_test_ms(5000));
    remote.join();

    // Send and receive cases together: the receive is the ready one.
    weft_chan *in = weft_chan_new(sizeof(uint64_t), 2, WEFT_CHAN_MPMC);
    uint64_t six = 6;
    weft_chan_try_send(in, &six);
    weft_case m[2] = {send_case(full, &five), recv_case(in, &r.mixed_in)};
    r.fired_mixed = weft_select(m, 2, 0);

    for (auto *c : {full, room, rv, xrv, in}) weft_chan_free(c);
    return 0;
  });
  CHECK(rc == 0);
  CHECK(r.fired_room == 1);
  CHECK(r.result_room == 0);
  CHECK(r.got_room == 2);
  CHECK(r.full_len == 1);
  CHECK(r.fired_blocked == 0);
  CHECK(r.result_blocked == 0);
  CHECK(r.drained[0] == 3);
  CHECK(r.drained[1] == 0);
  CHECK(r.fired_handoff == 0);
  CHECK(r.handoff_recv_rc == 0);
  CHECK(r.handoff_value == 4);
  CHECK(r.fired_remote == 0);
  CHECK(r.remote_recv_rc == 0);
  CHECK(r.remote_value == 5);
  CHECK(r.fired_mixed == 1);
  CHECK(r.mixed_in == 6);
}

TEST_CASE("select is fair between cases that are always ready", "[select]") {
  int mode = GENERATE(as<int>{}, WEFT_CHAN_LOCAL, WEFT_CHAN_MPMC);
  INFO("mode " << mode_name(mode));
  const int rounds = 10000;
  struct {
    int counts[2] = {0, 0};
    int errors = 0;
  } r;
  int rc = run(1, [&]() -> int {
    weft_chan *a = weft_chan_new(sizeof(uint64_t), 2, mode);
    weft_chan *b = weft_chan_new(sizeof(uint64_t), 2, mode);
    uint64_t v = 0, x = 0, y = 0;
    weft_chan_try_send(a, &v);
    weft_chan_try_send(b, &v);
    weft_case cases[2] = {recv_case(a, &x), recv_case(b, &y)};
    for (int i = 0; i < rounds; i++) {
      int k = weft_select(cases, 2, 0);
      if (k < 0 || k > 1) {
        r.errors++;
        continue;
      }
      r.counts[k]++;
      // Refill the channel that fired, so both stay ready.
      if (weft_chan_try_send(k == 0 ? a : b, &v) != 0) r.errors++;
    }
    weft_chan_free(a);
    weft_chan_free(b);
    return 0;
  });
  CHECK(rc == 0);
  CHECK(r.errors == 0);
  CHECK(r.counts[0] + r.counts[1] == rounds);
  CHECK(r.counts[0] >= rounds * 40 / 100);
  CHECK(r.counts[0] <= rounds * 60 / 100);
  CHECK(r.counts[1] >= rounds * 40 / 100);
  CHECK(r.counts[1] <= rounds * 60 / 100);
}

TEST_CASE("select timeouts", "[select]") {
  struct {
    int timed_out = 1;
    int64_t waited_ms = -1;
    int zero = 1;
    int zero_ready = -1;
    int scope_after_timeout = 1;
    int probe = 1;
    int long_timeout_in_deadline = 1;
    int64_t deadline_waited_ms = -1;
  } r;
  const int64_t timeout = 50;
  int rc = run(1, [&]() -> int {
    weft_chan *a = weft_chan_new(sizeof(uint64_t), 2, WEFT_CHAN_LOCAL);
    weft_chan *b = weft_chan_new(sizeof(uint64_t), 0, WEFT_CHAN_MPMC);
    uint64_t x = 0, y = 0;
    weft_case cases[2] = {recv_case(a, &x), recv_case(b, &y)};

    // Nothing comes: UV_ETIMEDOUT after about the time; the scope around
    // it is not cancelled by the select's own timeout.
    weft_scope s;
    weft_scope_enter(&s, WEFT_NO_DEADLINE);
    int64_t t0 = weft_now();
    r.timed_out = weft_select(cases, 2, timeout);
    r.waited_ms = weft_now() - t0;
    r.scope_after_timeout = weft_scope_leave(&s);

    // No case registered afterwards.
    r.probe = weft_chan_try_send(b, &y);

    // Timeout 0: a poll.
    r.zero = weft_select(cases, 2, 0);
    uint64_t v = 8;
    weft_chan_try_send(a, &v);
    r.zero_ready = weft_select(cases, 2, 0);

    // A long select timeout inside a short scope deadline: the deadline wins.
    weft_scope_enter(&s, timeout);
    t0 = weft_now();
    r.long_timeout_in_deadline = weft_select(cases, 2, weft_test_ms(10000));
    r.deadline_waited_ms = weft_now() - t0;
    weft_scope_leave(&s);
    weft_chan_free(a);
    weft_chan_free(b);
    return 0;
  });
  CHECK(rc == 0);
  CHECK(r.timed_out == UV_ETIMEDOUT);
  CHECK(r.waited_ms >= timeout - 2);
  CHECK(r.waited_ms < timeout + weft_test_ms(500));
  CHECK(r.scope_after_timeout == 0);
  CHECK(r.probe == UV_EAGAIN);
  CHECK(r.zero == UV_EAGAIN);
  CHECK(r.zero_ready == 0);
  CHECK(r.long_timeout_in_deadline == UV_ETIMEDOUT);
  CHECK(r.deadline_waited_ms >= timeout - 2);
  CHECK(r.deadline_waited_ms < timeout + weft_test_ms(500));
}

TEST_CASE("a closed channel's case fires with WEFT_ECLOSED", "[select]") {
  int mode = GENERATE(as<int>{}, WEFT_CHAN_LOCAL, WEFT_CHAN_SPSC, WEFT_CHAN_MPMC);
  size_t cap = GENERATE(0, 4);
  INFO("mode " << mode_name(mode) << ", capacity " << cap);
  struct {
    int recv_closed = -1, recv_result = 1;
    int send_closed = -1, send_result = 1;
    int buffered_fired = -1, buffered_result = 1;
    uint64_t buffered_value = 0;
    int woken = -1, woken_result = 1;
    int64_t woken_ms = -1;
  } r;
  int executors = mode == WEFT_CHAN_LOCAL ? 1 : 2;
  int rc = run(executors, [&]() -> int {
    weft_chan *open_chan = weft_chan_new(sizeof(uint64_t), 1, WEFT_CHAN_LOCAL);
    weft_chan *c = weft_chan_new(sizeof(uint64_t), cap, mode);
    uint64_t x = 0, y = 0;
    if (cap > 0) {
      uint64_t v = 12;
      weft_chan_try_send(c, &v);
    }
    weft_chan_close(c);
    weft_case cases[2] = {recv_case(open_chan, &y), recv_case(c, &x)};
    if (cap > 0) {
      // What was buffered comes first, with result 0.
      r.buffered_fired = weft_select(cases, 2, 0);
      if (r.buffered_fired >= 0) r.buffered_result = cases[r.buffered_fired].result;
      r.buffered_value = x;
    }
    r.recv_closed = weft_select(cases, 2, 0);
    if (r.recv_closed >= 0) r.recv_result = cases[r.recv_closed].result;
    uint64_t one = 1;
    weft_chan_try_send(open_chan, &one);  // open_chan is now full
    weft_case sends[2] = {send_case(open_chan, &y), send_case(c, &y)};
    r.send_closed = weft_select(sends, 2, 0);
    if (r.send_closed >= 0) r.send_result = sends[r.send_closed].result;
    weft_chan_free(c);

    // A select that waits is woken by the close, from another task (on the
    // other executor for the cross-executor modes).
    weft_chan_try_recv(open_chan, &y);
    c = weft_chan_new(sizeof(uint64_t), cap, mode);
    Tasks closer;
    closer.spawn(executors == 1 ? 0 : 2, [&]() -> int {
      let_peer_wait(executors == 1, 5, 15);
      weft_chan_close(c);
      return 0;
    });
    weft_case w[2] = {recv_case(open_chan, &y), recv_case(c, &x)};
    int64_t t0 = weft_now();
    r.woken = weft_select(w, 2, weft_test_ms(5000));
    r.woken_ms = weft_now() - t0;
    if (r.woken >= 0) r.woken_result = w[r.woken].result;
    closer.join();
    weft_chan_free(c);
    weft_chan_free(open_chan);
    return 0;
  });
  CHECK(rc == 0);
  if (cap > 0) {
    CHECK(r.buffered_fired == 1);
    CHECK(r.buffered_result == 0);
    CHECK(r.buffered_value == 12);
  }
  CHECK(r.recv_closed == 1);
  CHECK(r.recv_result == WEFT_ECLOSED);
  CHECK(r.send_closed == 1);
  CHECK(r.send_result == WEFT_ECLOSED);
  CHECK(r.woken == 1);
  CHECK(r.woken_result == WEFT_ECLOSED);
  CHECK(r.woken_ms < weft_test_ms(1000));
}

TEST_CASE("select without a channel returns UV_EINVAL", "[select]") {
  struct {
    int empty = 1, all_null = 1;
  } r;
  int rc = run(1, [&]() -> int {
    r.empty = weft_select(nullptr, 0, 0);
    weft_case cases[3] = {recv_case(nullptr, nullptr), recv_case(nullptr, nullptr),
                          send_case(nullptr, nullptr)};
    r.all_null = weft_select(cases, 3, -1);
    return 0;
  });
  CHECK(rc == 0);
  CHECK(r.empty == UV_EINVAL);
  CHECK(r.all_null == UV_EINVAL);
}

TEST_CASE("a select cancelled while it waits leaves nothing registered",
          "[select][cancel]") {
  int how = GENERATE(BY_DEADLINE, BY_SCOPE_CANCEL, BY_GROUP_CANCEL);
  INFO("cancelled by " << how_name(how));
  CancelledWait w;
  struct {
    int probes[5] = {1, 1, 1, 1, 1};
    int reuse = 1;
    uint64_t reuse_value = 0;
  } r;
  const int64_t deadline = weft_test_ms(30);
  int rc = run(2, [&]() -> int {
    // Rendezvous channels of every mode, receive and send cases, and a
    // buffered ring. A LOCAL channel is only used by a select on this
    // executor.
    weft_chan *local0 = weft_chan_new(sizeof(uint64_t), 0, WEFT_CHAN_LOCAL);
    weft_chan *mpmc0 = weft_chan_new(sizeof(uint64_t), 0, WEFT_CHAN_MPMC);
    weft_chan *spsc0 = weft_chan_new(sizeof(uint64_t), 0, WEFT_CHAN_SPSC);
    weft_chan *mpmc_send0 = weft_chan_new(sizeof(uint64_t), 0, WEFT_CHAN_MPMC);
    weft_chan *ring = weft_chan_new(sizeof(uint64_t), 2, WEFT_CHAN_MPMC);
    int where = how == BY_GROUP_CANCEL ? 2 : 0;
    w = cancel_wait(how, where, deadline, [&]() -> int {
      uint64_t a = 0, b = 0, c = 0, d = 1, e = 0;
      weft_case cases[5] = {recv_case(where == 0 ? local0 : nullptr, &a),
                            recv_case(mpmc0, &b), recv_case(spsc0, &c),
                            send_case(mpmc_send0, &d), recv_case(ring, &e)};
      return weft_select(cases, 5, -1);
    });
    uint64_t v = 3;
    r.probes[0] = weft_chan_try_send(local0, &v);
    r.probes[1] = weft_chan_try_send(mpmc0, &v);
    r.probes[2] = weft_chan_try_send(spsc0, &v);
    r.probes[3] = weft_chan_try_recv(mpmc_send0, &v);
    r.probes[4] = weft_chan_try_recv(ring, &v);
    // The ring still works.
    uint64_t w = 99;
    r.reuse = weft_chan_try_send(ring, &w);
    weft_chan_try_recv(ring, &r.reuse_value);
    for (auto *c : {local0, mpmc0, spsc0, mpmc_send0, ring}) weft_chan_free(c);
    return 0;
  });
  CHECK(rc == 0);
  CHECK(w.op_rc == (how == BY_DEADLINE ? UV_ETIMEDOUT : UV_ECANCELED));
  if (how == BY_DEADLINE) CHECK(w.waited_ms >= deadline - 2);
  CHECK(w.waited_ms < weft_test_ms(2000));
  for (int i = 0; i < 5; i++) {
    INFO("probe " << i);
    CHECK(r.probes[i] == UV_EAGAIN);
  }
  CHECK(r.reuse == 0);
  CHECK(r.reuse_value == 99);
}

TEST_CASE("a select that waits is woken by a sender on another executor, many "
          "times over",
          "[select]") {
  // Two ring channels fed from executor 2 in turn; the select on executor 1
  // must see every item, whichever channel it came through.
  const int n = 2000;
  struct {
    int errors = 0;
    long sum = 0;
    int count = 0;
    int send_errors = 0;
  } r;
  int rc = run(2, [&]() -> int {
    weft_chan *a = weft_chan_new(sizeof(int), 1, WEFT_CHAN_SPSC);
    weft_chan *b = weft_chan_new(sizeof(int), 0, WEFT_CHAN_MPMC);
    Tasks feeder;
    feeder.spawn(2, [&]() -> int {
      for (int i = 1; i <= n; i++)
        if (weft_chan_send(i % 2 ? a : b, &i) != 0) r.send_errors++;
      return 0;
    });
    int x = 0, y = 0;
    weft_case cases[2] = {recv_case(a, &x), recv_case(b, &y)};
    while (r.count < n) {
      int k = weft_select(cases, 2, weft_test_ms(5000));
      if (k < 0) {
        r.errors++;
        break;
      }
      r.sum += k == 0 ? x : y;
      r.count++;
    }
    feeder.join();
    weft_chan_free(a);
    weft_chan_free(b);
    return 0;
  });
  CHECK(rc == 0);
  CHECK(r.errors == 0);
  CHECK(r.send_errors == 0);
  CHECK(r.count == n);
  CHECK(r.sum == (long)n * (n + 1) / 2);
}
