// Tests of actors and supervisors: tell and ask, the lifecycle hooks, ask
// timing out on a slow behaviour, the tell policies under a full mailbox,
// dead letters to a stopped actor, failure of an unsupervised actor reaching
// its group, supervised restarts with fresh or kept state, backoff, the
// restart limit escalating to the group, one-for-all restarting siblings,
// and actors used across executors.
//
// Results are recorded in plain variables inside tasks and asserted after
// the runtime returns.

#include <catch2/catch.hpp>

#include <string.h>

#include <functional>
#include <vector>

#include "closures.h"
#include "support.h"
#include "weft.h"
#include "weft/actor.h"

namespace {

// What the test actor understands.
enum Op { INC, GET, FAIL, SLOW, BLOCK, STARTS };

struct Msg {
  int op;
  long v;
};

// Counts kept outside the actor's state, which a fresh restart zeroes.
struct Hooks {
  int starts = 0;
  int stops = 0;
  int last_why = 1;
  int fail_start_after = -1;  // the start hook fails from this start on
  weft_chan *gate = nullptr;  // BLOCK waits until this closes
};

struct State {
  long count;
  Hooks *hooks;
};

int counter_start(weft_actor *, void *state, void *arg) {
  State *s = static_cast<State *>(state);
  s->hooks = static_cast<Hooks *>(arg);
  s->hooks->starts++;
  if (s->hooks->fail_start_after >= 0 && s->hooks->starts > s->hooks->fail_start_after)
    return UV_EBADF;
  return 0;
}

void counter_stop(weft_actor *, void *state, int why) {
  State *s = static_cast<State *>(state);
  s->hooks->stops++;
  s->hooks->last_why = why;
}

int counter_behaviour(weft_actor *, void *state, void *msg, void *reply) {
  State *s = static_cast<State *>(state);
  Msg *m = static_cast<Msg *>(msg);
  switch (m->op) {
  case INC:
    s->count += m->v;
    break;
  case GET:
    break;
  case FAIL:
    return UV_EIO;
  case SLOW: {
    int err = weft_sleep(m->v);
    if (err != 0) return err;
    break;
  }
  case BLOCK: {
    char c;
    weft_chan_recv(s->hooks->gate, &c);
    break;
  }
  case STARTS:
    if (reply) *static_cast<long *>(reply) = s->hooks->starts;
    return 0;
  }
  if (reply) *static_cast<long *>(reply) = s->count;
  return 0;
}

weft_actor_def counter_def(Hooks *h, const char *name = "counter") {
  weft_actor_def d{};
  d.name = name;
  d.msg_size = sizeof(Msg);
  d.reply_size = sizeof(long);
  d.state_size = sizeof(State);
  d.behaviour = counter_behaviour;
  d.start = counter_start;
  d.stop = counter_stop;
  d.arg = h;
  return d;
}

int tell(weft_actor *a, int op, long v = 0) {
  Msg m{op, v};
  return weft_actor_tell(a, &m);
}

int ask(weft_actor *a, int op, long *out, int64_t timeout_ms = -1, long v = 0) {
  Msg m{op, v};
  return weft_actor_ask(a, &m, out, timeout_ms);
}

}  // namespace

TEST_CASE("actor: tell and ask, with the lifecycle hooks", "[actor]") {
  for (int mode : {WEFT_ACTOR_LOCAL, WEFT_ACTOR_SHARED}) {
    Hooks h;
    long total = -1;
    int ask_code = 1, join_code = 1;
    weft_actor_stats st{};
    int r = run(1, [&]() -> int {
      weft_group *g = weft_group_open(WEFT_FAIL_FAST);
      weft_actor_def d = counter_def(&h);
      d.mailbox_mode = mode;
      d.mailbox = 8;
      weft_actor *a = nullptr;
      int err = weft_actor_spawn(g, &d, &a);
      if (err != 0) return err;
      for (int i = 1; i <= 100; i++) tell(a, INC, i);
      ask_code = ask(a, GET, &total);
      weft_actor_stop(a);
      join_code = weft_group_join(g);
      weft_actor_stats_get(a, &st);
      weft_actor_free(a);
      return 0;
    });
    INFO("mode " << mode);
    REQUIRE(r == 0);
    CHECK(ask_code == 0);
    CHECK(total == 5050);
    CHECK(join_code == 0);
    CHECK(h.starts == 1);
    CHECK(h.stops == 1);
    CHECK(h.last_why == 0);
    CHECK(st.told == 100);
    CHECK(st.asked == 1);
    CHECK(st.handled == 101);
    CHECK(st.dead_letters == 0);
  }
}

TEST_CASE("actor: ask times out when the behaviour is slow", "[actor][ask]") {
  Hooks h;
  int slow_code = 1, fast_code = 1;
  int64_t waited = 0;
  long fast = -1;
  const int64_t slow = weft_test_ms(200);
  int r = run(1, [&]() -> int {
    weft_group *g = weft_group_open(WEFT_FAIL_FAST);
    weft_actor_def d = counter_def(&h);
    weft_actor *a = nullptr;
    if (weft_actor_spawn(g, &d, &a) != 0) return -1;
    tell(a, INC, 7);
    long out = 0;
    int64_t t0 = weft_now();
    slow_code = ask(a, SLOW, &out, 20, slow);
    waited = weft_now() - t0;
    // The slow message is still handled; its reply is thrown away, and the
    // next ask gets its own answer.
    fast_code = ask(a, GET, &fast, weft_test_ms(2000));
    weft_actor_stop(a);
    int jr = weft_group_join(g);
    weft_actor_free(a);
    return jr;
  });
  REQUIRE(r == 0);
  CHECK(slow_code == UV_ETIMEDOUT);
  CHECK(waited >= 15);
  CHECK(waited < slow);
  CHECK(fast_code == 0);
  CHECK(fast == 7);
}

TEST_CASE("actor: tell policies under a full mailbox", "[actor][tell]") {
  for (int overflow : {WEFT_ACTOR_DROP, WEFT_ACTOR_FAIL}) {
    Hooks h;
    std::vector<int> codes;
    int ask_code = 1, extra_dead = 0;
    long total = -1;
    weft_actor_stats st{};
    int r = run(1, [&]() -> int {
      h.gate = weft_chan_new(1, 1, WEFT_CHAN_LOCAL);
      weft_group *g = weft_group_open(WEFT_FAIL_FAST);
      weft_actor_def d = counter_def(&h);
      d.mailbox = 2;
      d.overflow = overflow;
      weft_actor *a = nullptr;
      if (weft_actor_spawn(g, &d, &a) != 0) return -1;
      tell(a, BLOCK);
      weft_yield();  // the actor takes BLOCK and waits at the gate
      for (int i = 0; i < 5; i++) codes.push_back(tell(a, INC, 1));
      long dummy;
      ask_code = ask(a, GET, &dummy, 100);
      weft_chan_close(h.gate);
      // The mailbox stays full until the actor runs again: retry the ask
      // (a refused ask is a dead letter too, counted apart below).
      int retries = 0;
      while (ask(a, GET, &total, weft_test_ms(2000)) == UV_ENOBUFS && retries < 1000) {
        retries++;
        weft_yield();
      }
      extra_dead = retries;
      weft_actor_stop(a);
      int jr = weft_group_join(g);
      weft_actor_stats_get(a, &st);
      weft_actor_free(a);
      weft_chan_free(h.gate);
      return jr;
    });
    INFO("overflow " << overflow);
    REQUIRE(r == 0);
    REQUIRE(codes.size() == 5);
    CHECK(codes[0] == 0);
    CHECK(codes[1] == 0);
    int expect = overflow == WEFT_ACTOR_DROP ? WEFT_ACTOR_DROPPED : UV_ENOBUFS;
    for (int i = 2; i < 5; i++) CHECK(codes[i] == expect);
    CHECK(ask_code == UV_ENOBUFS);
    CHECK(total == 2);
    CHECK(st.dead_letters == 4u + extra_dead);
    CHECK(st.dropped == (overflow == WEFT_ACTOR_DROP ? 4u + extra_dead : 0u));
    CHECK(st.rejected == (overflow == WEFT_ACTOR_FAIL ? 4u + extra_dead : 0u));
  }
}

TEST_CASE("actor: dead letters are counted when telling a stopped actor", "[actor][dead]") {
  Hooks h;
  int tell_code = 1, ask_code = 1;
  weft_actor_stats st{};
  int r = run(1, [&]() -> int {
    weft_group *g = weft_group_open(WEFT_FAIL_FAST);
    weft_actor_def d = counter_def(&h);
    weft_actor *a = nullptr;
    if (weft_actor_spawn(g, &d, &a) != 0) return -1;
    weft_actor_stop(a);
    int jr = weft_group_join(g);
    tell_code = tell(a, INC, 1);
    tell(a, INC, 1);
    tell(a, INC, 1);
    long out;
    ask_code = ask(a, GET, &out, 100);
    weft_actor_stats_get(a, &st);
    weft_actor_free(a);
    return jr;
  });
  REQUIRE(r == 0);
  CHECK(tell_code == WEFT_ECLOSED);
  CHECK(ask_code == WEFT_ECLOSED);
  CHECK(st.dead_letters == 4);
  CHECK(h.stops == 1);
}

TEST_CASE("actor: asks queued when an actor fails for good return WEFT_ECLOSED", "[actor][dead]") {
  Hooks h;
  int join_code = 1;
  std::vector<int> codes(3, 1);
  int r = run(1, [&]() -> int {
    weft_group *g = weft_group_open(WEFT_COLLECT);
    weft_actor_def d = counter_def(&h);
    weft_actor *a = nullptr;
    if (weft_actor_spawn(g, &d, &a) != 0) return -1;
    tell(a, SLOW, 20);
    tell(a, FAIL);
    weft_group *askers = weft_group_open(WEFT_COLLECT);
    std::vector<std::function<int()>> fns;
    fns.reserve(3);
    for (int i = 0; i < 3; i++) {
      fns.push_back([&, i]() -> int {
        long out;
        codes[i] = ask(a, GET, &out, weft_test_ms(2000));
        return 0;
      });
      spawn_fn(askers, &fns.back());
    }
    weft_group_join(askers);
    join_code = weft_group_join(g);
    weft_actor_free(a);
    return 0;
  });
  REQUIRE(r == 0);
  CHECK(join_code == UV_EIO);
  for (int c : codes) CHECK(c == WEFT_ECLOSED);
}

TEST_CASE("actor: an unsupervised failure goes to the group", "[actor][fail]") {
  Hooks h;
  int join_code = 1, sibling = 1;
  int r = run(1, [&]() -> int {
    weft_group *g = weft_group_open(WEFT_FAIL_FAST);
    weft_actor_def d = counter_def(&h);
    weft_actor *a = nullptr;
    if (weft_actor_spawn(g, &d, &a) != 0) return -1;
    std::function<int()> waiter = [&]() -> int { return sibling = weft_sleep(weft_test_ms(10000)); };
    spawn_fn(g, &waiter);
    tell(a, FAIL);
    join_code = weft_group_join(g);
    weft_actor_free(a);
    return 0;
  });
  REQUIRE(r == 0);
  CHECK(join_code == UV_EIO);
  CHECK(sibling == UV_ECANCELED);
  CHECK(h.last_why == UV_EIO);
}

TEST_CASE("actor: restart with fresh or kept state", "[actor][supervisor]") {
  for (int restart : {WEFT_ACTOR_RESTART_FRESH, WEFT_ACTOR_RESTART_KEEP}) {
    Hooks h;
    long after = -1;
    int join_code = 1;
    weft_actor_stats st{};
    weft_supervisor_stats ss{};
    int r = run(1, [&]() -> int {
      weft_group *g = weft_group_open(WEFT_FAIL_FAST);
      weft_actor_def d = counter_def(&h);
      d.restart = restart;
      weft_supervisor_opts so{};
      so.backoff_ms = 1;
      weft_supervisor *s = nullptr;
      if (weft_supervisor_start(g, &so, &d, 1, &s) != 0) return -1;
      weft_actor *a = weft_supervisor_actor(s, 0);
      tell(a, INC, 1);
      tell(a, INC, 2);
      tell(a, FAIL);
      ask(a, GET, &after, weft_test_ms(2000));
      weft_actor_stop(a);
      join_code = weft_group_join(g);
      weft_actor_stats_get(a, &st);
      weft_supervisor_stats_get(s, &ss);
      weft_supervisor_free(s);
      return 0;
    });
    INFO("restart " << restart);
    REQUIRE(r == 0);
    CHECK(join_code == 0);
    CHECK(after == (restart == WEFT_ACTOR_RESTART_FRESH ? 0 : 3));
    CHECK(h.starts == 2);
    CHECK(h.stops == 2);
    CHECK(st.failures == 1);
    CHECK(st.restarts == 1);
    CHECK(ss.restarts == 1);
    CHECK(ss.escalated == 0);
  }
}

TEST_CASE("actor: restarts wait an exponential backoff", "[actor][supervisor]") {
  Hooks h;
  std::vector<int64_t> gaps;
  int r = run(1, [&]() -> int {
    weft_group *g = weft_group_open(WEFT_FAIL_FAST);
    weft_actor_def d = counter_def(&h);
    weft_supervisor_opts so{};
    so.backoff_ms = 40;
    so.max_restarts = 5;
    weft_supervisor *s = nullptr;
    if (weft_supervisor_start(g, &so, &d, 1, &s) != 0) return -1;
    weft_actor *a = weft_supervisor_actor(s, 0);
    for (int i = 0; i < 2; i++) {
      long out;
      int64_t t0 = weft_now();
      tell(a, FAIL);
      ask(a, GET, &out, weft_test_ms(2000));
      gaps.push_back(weft_now() - t0);
    }
    weft_actor_stop(a);
    int jr = weft_group_join(g);
    weft_supervisor_free(s);
    return jr;
  });
  REQUIRE(r == 0);
  REQUIRE(gaps.size() == 2);
  CHECK(gaps[0] >= 35);  // the first restart waits backoff_ms
  CHECK(gaps[1] >= 75);  // the second, twice that
}

TEST_CASE("actor: more than K failures within T escalate to the group", "[actor][supervisor]") {
  Hooks h;
  int join_code = 1, sibling = 1, ask_after = 1;
  weft_supervisor_stats ss{};
  weft_actor_stats st{};
  int r = run(1, [&]() -> int {
    weft_group *g = weft_group_open(WEFT_FAIL_FAST);
    weft_actor_def d = counter_def(&h);
    weft_supervisor_opts so{};
    so.max_restarts = 2;
    so.within_ms = 5000;
    so.backoff_ms = 1;
    weft_supervisor *s = nullptr;
    if (weft_supervisor_start(g, &so, &d, 1, &s) != 0) return -1;
    std::function<int()> waiter = [&]() -> int { return sibling = weft_sleep(weft_test_ms(10000)); };
    spawn_fn(g, &waiter);
    weft_actor *a = weft_supervisor_actor(s, 0);
    for (int i = 0; i < 3; i++) tell(a, FAIL);  // K + 1 = 3 failures
    join_code = weft_group_join(g);
    long out;
    ask_after = ask(a, GET, &out, 100);
    weft_supervisor_stats_get(s, &ss);
    weft_actor_stats_get(a, &st);
    weft_supervisor_free(s);
    return 0;
  });
  REQUIRE(r == 0);
  CHECK(join_code == UV_EIO);
  CHECK(sibling == UV_ECANCELED);
  CHECK(ask_after == WEFT_ECLOSED);
  CHECK(ss.failures == 3);
  CHECK(ss.restarts == 2);
  CHECK(ss.escalated == UV_EIO);
  CHECK(st.failures == 3);
  CHECK(h.starts == 3);
}

TEST_CASE("actor: failures spread wider than T do not escalate", "[actor][supervisor]") {
  Hooks h;
  int join_code = 1;
  weft_supervisor_stats ss{};
  int r = run(1, [&]() -> int {
    weft_group *g = weft_group_open(WEFT_FAIL_FAST);
    weft_actor_def d = counter_def(&h);
    weft_supervisor_opts so{};
    so.max_restarts = 1;
    so.within_ms = 40;
    so.backoff_ms = -1;
    weft_supervisor *s = nullptr;
    if (weft_supervisor_start(g, &so, &d, 1, &s) != 0) return -1;
    weft_actor *a = weft_supervisor_actor(s, 0);
    for (int i = 0; i < 4; i++) {
      tell(a, FAIL);
      weft_sleep(weft_test_ms(100));
    }
    weft_actor_stop(a);
    join_code = weft_group_join(g);
    weft_supervisor_stats_get(s, &ss);
    weft_supervisor_free(s);
    return 0;
  });
  REQUIRE(r == 0);
  CHECK(join_code == 0);
  CHECK(ss.failures == 4);
  CHECK(ss.restarts == 4);
  CHECK(ss.escalated == 0);
}

TEST_CASE("actor: a failing start hook counts as a failure", "[actor][supervisor]") {
  Hooks h;
  h.fail_start_after = 1;  // the first start succeeds, every restart fails
  int join_code = 1;
  int r = run(1, [&]() -> int {
    weft_group *g = weft_group_open(WEFT_FAIL_FAST);
    weft_actor_def d = counter_def(&h);
    weft_supervisor_opts so{};
    so.max_restarts = 2;
    so.backoff_ms = 1;
    weft_supervisor *s = nullptr;
    if (weft_supervisor_start(g, &so, &d, 1, &s) != 0) return -1;
    tell(weft_supervisor_actor(s, 0), FAIL);
    join_code = weft_group_join(g);
    weft_supervisor_free(s);
    return 0;
  });
  REQUIRE(r == 0);
  CHECK(join_code == UV_EBADF);
  CHECK(h.starts == 3);
}

TEST_CASE("actor: one-for-all restarts the siblings, one-for-one does not", "[actor][supervisor]") {
  for (int strategy : {WEFT_SUPERVISE_ONE_FOR_ALL, WEFT_SUPERVISE_ONE_FOR_ONE}) {
    Hooks ha, hb;
    long a_count = -1, b_count = -1;
    int join_code = 1;
    int r = run(1, [&]() -> int {
      weft_group *g = weft_group_open(WEFT_FAIL_FAST);
      weft_actor_def defs[2] = {counter_def(&ha, "a"), counter_def(&hb, "b")};
      weft_supervisor_opts so{};
      so.strategy = strategy;
      so.backoff_ms = 1;
      weft_supervisor *s = nullptr;
      if (weft_supervisor_start(g, &so, defs, 2, &s) != 0) return -1;
      weft_actor *a = weft_supervisor_actor(s, 0), *b = weft_supervisor_actor(s, 1);
      tell(a, INC, 5);
      tell(b, INC, 6);
      long tmp;
      ask(a, GET, &tmp, weft_test_ms(2000));  // a has handled its INC
      tell(b, FAIL);
      ask(b, GET, &b_count, weft_test_ms(2000));  // b has restarted
      ask(a, GET, &a_count, weft_test_ms(2000));
      weft_actor_stop(a);
      weft_actor_stop(b);
      join_code = weft_group_join(g);
      weft_supervisor_free(s);
      return 0;
    });
    INFO("strategy " << strategy);
    REQUIRE(r == 0);
    CHECK(join_code == 0);
    CHECK(b_count == 0);
    CHECK(hb.starts == 2);
    if (strategy == WEFT_SUPERVISE_ONE_FOR_ALL) {
      CHECK(ha.starts == 2);
      CHECK(a_count == 0);
      CHECK(ha.stops == 2);
    } else {
      CHECK(ha.starts == 1);
      CHECK(a_count == 5);
      CHECK(ha.stops == 1);
    }
  }
}

TEST_CASE("actor: cancelling the group stops the supervisor and its actors", "[actor][supervisor]") {
  Hooks h;
  int join_code = 1;
  int r = run(1, [&]() -> int {
    weft_group *g = weft_group_open(WEFT_FAIL_FAST);
    weft_actor_def d = counter_def(&h);
    weft_supervisor *s = nullptr;
    if (weft_supervisor_start(g, nullptr, &d, 1, &s) != 0) return -1;
    tell(weft_supervisor_actor(s, 0), SLOW, 10000);
    weft_sleep(5);
    weft_group_cancel(g);
    join_code = weft_group_join(g);
    weft_supervisor_free(s);
    return 0;
  });
  REQUIRE(r == 0);
  CHECK(join_code == UV_ECANCELED);
  CHECK(h.stops == 1);
  CHECK(h.last_why == UV_ECANCELED);
}

TEST_CASE("actor: tell and ask across executors", "[actor][executors]") {
  Hooks h;
  long total = -1;
  int slow_code = 1, tellers = 1;
  weft_actor_stats st{};
  int r = run(2, [&]() -> int {
    weft_group *g = weft_group_open(WEFT_FAIL_FAST);
    weft_actor_def d = counter_def(&h);
    d.executor = 2;
    d.mailbox = 16;
    weft_supervisor_opts so{};
    so.backoff_ms = 1;
    weft_supervisor *s = nullptr;
    if (weft_supervisor_start(g, &so, &d, 1, &s) != 0) return -1;
    weft_actor *a = weft_supervisor_actor(s, 0);
    weft_group *tg = weft_group_open(WEFT_FAIL_FAST);
    std::function<int()> teller = [&]() -> int {
      for (int i = 0; i < 20000; i++) {
        int err = tell(a, INC, 1);
        if (err != 0) return err;
        if (i % 1000 == 0) {
          long out;
          err = ask(a, GET, &out, weft_test_ms(5000));
          if (err != 0) return err;
        }
      }
      return 0;
    };
    spawn_fn(tg, &teller, 1);
    spawn_fn(tg, &teller, 2);
    tellers = weft_group_join(tg);
    ask(a, GET, &total, weft_test_ms(5000));
    // An ask that times out across executors, then a failure and restart
    // on the other executor.
    long out;
    slow_code = ask(a, SLOW, &out, 10, 100);
    tell(a, FAIL);
    ask(a, GET, &out, weft_test_ms(5000));
    weft_actor_stop(a);
    int jr = weft_group_join(g);
    weft_actor_stats_get(a, &st);
    weft_supervisor_free(s);
    return jr;
  });
  REQUIRE(r == 0);
  CHECK(tellers == 0);
  CHECK(total == 40000);
  CHECK(slow_code == UV_ETIMEDOUT);
  CHECK(st.told == 40001);
  CHECK(st.restarts == 1);
}
