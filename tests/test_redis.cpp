// Tests of the Redis module (runtime/ext/redis) against a redis-server of
// the test's own on a free loopback port (redis_support.h); each test skips
// with a message when redis-server is not installed.
//
// Proves: many tasks pipelining commands on one connection, on two
// executors with a connection each, every reply reaching its own task;
// error replies returned as replies; a refused connection; a killed server
// failing the waiting command and every later one with UV_ECONNRESET; the
// command timeout (UV_ETIMEDOUT, then the connection dropped); a cancelled
// command whose reply does not land on the next command; publish/subscribe
// order, patterns, binary payloads and the queue of messages that came
// while no task waited; close with commands and message waiters pending.
// Built only with the module; without it, one test says so.

#include <catch2/catch.hpp>

#if defined(__has_include)
#if __has_include(<weft_redis.h>)
#define WEFT_TEST_HAVE_REDIS 1
#endif
#endif

#ifdef WEFT_TEST_HAVE_REDIS

#include <string.h>

#include <algorithm>
#include <string>
#include <vector>

#include "closures.h"
#include "redis_support.h"
#include "support.h"
#include "weft.h"
#include "weft_redis.h"

namespace {

// A reply as plain data, recorded in a task and checked after the run.
struct Got {
  int err = 1;  // 1: never set
  int type = 0;
  long long integer = 0;
  std::string str;
};

// Runs one command and records what came back.
Got command(weft_redis *r, const char *fmt, const char *arg = nullptr) {
  Got g;
  redisReply *reply = nullptr;
  g.err = arg ? weft_redis_command(r, &reply, fmt, arg) : weft_redis_command(r, &reply, fmt);
  if (reply != nullptr) {
    g.type = reply->type;
    g.integer = reply->integer;
    if (reply->str != nullptr) g.str.assign(reply->str, reply->len);
    freeReplyObject(reply);
  }
  return g;
}

}  // namespace

TEST_CASE("many tasks pipeline commands and each gets its own reply", "[redis]") {
  REDIS_TEST_SERVER(server);
  const int kTasks = 100, kEach = 20;
  int connect_err[2] = {1, 1};
  std::vector<long long> seen[2];
  int errors = 0, mismatched = 0;
  int rc = run(2, [&]() -> int {
    Tasks execs;
    for (int e = 0; e < 2; e++) {
      execs.spawn(e + 1, [&, e]() -> int {
        weft_redis *r = nullptr;
        connect_err[e] = weft_redis_connect("127.0.0.1", server.port(), nullptr, &r);
        if (connect_err[e] != 0) return 0;
        Tasks tasks(WEFT_COLLECT);
        for (int t = 0; t < kTasks; t++) {
          tasks.spawn(0, [&, e, t]() -> int {
            std::string key = "k:" + std::to_string(e) + ":" + std::to_string(t);
            for (int i = 0; i < kEach; i++) {
              Got g = command(r, "INCR counter");
              if (g.err != 0 || g.type != REDIS_REPLY_INTEGER)
                errors++;
              else
                seen[e].push_back(g.integer);
              // A reply of this task's own: its key's value.
              std::string v = std::to_string(i);
              const char *argv[3] = {"SET", key.c_str(), v.c_str()};
              redisReply *rep = nullptr;
              if (weft_redis_commandv(r, &rep, 3, argv, nullptr) != 0) errors++;
              if (rep != nullptr) freeReplyObject(rep);
              Got back = command(r, "GET %s", key.c_str());
              if (back.err != 0 || back.str != v) mismatched++;
            }
            return 0;
          });
        }
        tasks.join();
        weft_redis_close(r);
        return 0;
      });
    }
    return execs.join();
  });
  REQUIRE(rc == 0);
  REQUIRE(connect_err[0] == 0);
  REQUIRE(connect_err[1] == 0);
  CHECK(errors == 0);
  CHECK(mismatched == 0);
  // Every INCR reply distinct, 1..N in all.
  std::vector<long long> all(seen[0]);
  all.insert(all.end(), seen[1].begin(), seen[1].end());
  std::sort(all.begin(), all.end());
  REQUIRE(all.size() == (size_t)2 * kTasks * kEach);
  for (size_t i = 0; i < all.size(); i++) CHECK(all[i] == (long long)i + 1);
  // And within one connection the replies came in the order sent.
  for (int e = 0; e < 2; e++) CHECK(seen[e].size() == (size_t)kTasks * kEach);
}

TEST_CASE("error replies are replies, bad calls and refused connections are errors",
          "[redis]") {
  REDIS_TEST_SERVER(server);
  Got wrong_type, unknown, after;
  int connect_err = 1, refused = 1, null_reply = 1, bad_port = 1, outside = 1, bad_host = 1;
  weft_redis *refused_conn = reinterpret_cast<weft_redis *>(&refused);
  int closed_port = redis_test_free_port();
  int rc = run(1, [&]() -> int {
    weft_redis *r = nullptr;
    connect_err = weft_redis_connect("localhost", server.port(), nullptr, &r);
    if (connect_err != 0) return 0;
    command(r, "SET s notanumber");
    wrong_type = command(r, "INCR s");
    unknown = command(r, "NOSUCHCOMMAND");
    after = command(r, "ECHO %s", "still in step");
    null_reply = weft_redis_command(r, nullptr, "PING");
    weft_redis_close(r);
    refused = weft_redis_connect("127.0.0.1", closed_port, nullptr, &refused_conn);
    weft_redis *none = nullptr;
    bad_port = weft_redis_connect("127.0.0.1", 0, nullptr, &none);
    bad_host = weft_redis_connect("no-such-host.invalid", 6379, nullptr, &none);
    return 0;
  });
  weft_redis *never = nullptr;
  outside = weft_redis_connect("127.0.0.1", server.port(), nullptr, &never);
  REQUIRE(rc == 0);
  REQUIRE(connect_err == 0);
  CHECK(wrong_type.err == 0);
  CHECK(wrong_type.type == REDIS_REPLY_ERROR);
  CHECK(wrong_type.str.find("not an integer") != std::string::npos);
  CHECK(unknown.err == 0);
  CHECK(unknown.type == REDIS_REPLY_ERROR);
  CHECK(after.err == 0);
  CHECK(after.str == "still in step");
  CHECK(null_reply == UV_EINVAL);
  CHECK(refused == UV_ECONNREFUSED);
  CHECK(refused_conn == nullptr);
  CHECK(bad_port == UV_EINVAL);
  CHECK(bad_host < 0);
  CHECK(outside == WEFT_ENOTASK);
}

TEST_CASE("a killed server fails the waiting command and every later one", "[redis]") {
  REDIS_TEST_SERVER(server);
  int connect_err = 1, blocked = 1, later = 1, connected_after = 1, blocked_started = 0;
  int rc = run(1, [&]() -> int {
    weft_redis *r = nullptr;
    connect_err = weft_redis_connect("127.0.0.1", server.port(), nullptr, &r);
    if (connect_err != 0) return 0;
    Tasks tasks(WEFT_COLLECT);
    tasks.spawn(0, [&]() -> int {
      blocked_started = 1;
      redisReply *reply = nullptr;
      blocked = weft_redis_command(r, &reply, "BLPOP never 0");  // waits forever
      if (reply != nullptr) freeReplyObject(reply);
      return 0;
    });
    weft_sleep(100);  // the BLPOP is sent and blocks in the server
    server.kill();
    tasks.join();
    connected_after = weft_redis_connected(r);
    redisReply *reply = nullptr;
    later = weft_redis_command(r, &reply, "PING");
    weft_redis_close(r);
    return 0;
  });
  REQUIRE(rc == 0);
  REQUIRE(connect_err == 0);
  CHECK(blocked_started == 1);
  CHECK(blocked == UV_ECONNRESET);
  CHECK(connected_after == 0);
  CHECK(later == UV_ECONNRESET);
}

TEST_CASE("a command that outlives the command timeout fails and drops the connection",
          "[redis]") {
  REDIS_TEST_SERVER(server);
  int connect_err = 1, slow = 1, behind = 1, later = 1, connected_after = 1;
  int64_t took = -1;
  int rc = run(1, [&]() -> int {
    weft_redis_opts opts{};
    opts.command_timeout_ms = 150;
    weft_redis *r = nullptr;
    connect_err = weft_redis_connect("127.0.0.1", server.port(), &opts, &r);
    if (connect_err != 0) return 0;
    Tasks tasks(WEFT_COLLECT);
    tasks.spawn(0, [&]() -> int {
      int64_t t0 = weft_now();
      redisReply *reply = nullptr;
      slow = weft_redis_command(r, &reply, "BLPOP never 5");
      took = weft_now() - t0;
      if (reply != nullptr) freeReplyObject(reply);
      return 0;
    });
    tasks.spawn(0, [&]() -> int {
      weft_sleep(20);  // queued behind the BLPOP
      redisReply *reply = nullptr;
      behind = weft_redis_command(r, &reply, "PING");
      if (reply != nullptr) freeReplyObject(reply);
      return 0;
    });
    tasks.join();
    connected_after = weft_redis_connected(r);
    redisReply *reply = nullptr;
    later = weft_redis_command(r, &reply, "PING");
    weft_redis_close(r);
    return 0;
  });
  REQUIRE(rc == 0);
  REQUIRE(connect_err == 0);
  CHECK(slow == UV_ETIMEDOUT);
  CHECK(took >= 140);
  CHECK(took < weft_test_ms(3000));
  CHECK(behind == UV_ECONNRESET);
  CHECK(connected_after == 0);
  CHECK(later == UV_ECONNRESET);
}

TEST_CASE("a cancelled command's reply does not land on the next command", "[redis]") {
  REDIS_TEST_SERVER(server);
  int connect_err = 1, cancelled = 1, connected_after = 0;
  Got next, pushed;
  int rc = run(1, [&]() -> int {
    weft_redis *r = nullptr;
    connect_err = weft_redis_connect("127.0.0.1", server.port(), nullptr, &r);
    if (connect_err != 0) return 0;
    {
      // The server answers this BLPOP only after 300 ms (nil); the caller
      // gives up after 30.
      weft_scope s;
      weft_scope_enter(&s, 30);
      redisReply *reply = nullptr;
      cancelled = weft_redis_command(r, &reply, "BLPOP nothing 0.3");
      if (reply != nullptr) freeReplyObject(reply);
      weft_scope_leave(&s);
    }
    // Sent behind the BLPOP: its reply must be its own.
    next = command(r, "ECHO %s", "mine");
    pushed = command(r, "RPUSH nothing x");
    connected_after = weft_redis_connected(r);
    weft_redis_close(r);
    return 0;
  });
  REQUIRE(rc == 0);
  REQUIRE(connect_err == 0);
  CHECK(cancelled == UV_ETIMEDOUT);
  CHECK(next.err == 0);
  CHECK(next.type == REDIS_REPLY_STRING);
  CHECK(next.str == "mine");
  // The list was not popped by the abandoned BLPOP (it timed out first).
  CHECK(pushed.err == 0);
  CHECK(pushed.integer == 1);
  CHECK(connected_after == 1);
}

TEST_CASE("pub/sub: messages in order, queued while no task waits, patterns, timeouts",
          "[redis]") {
  REDIS_TEST_SERVER(server);
  const int kQueued = 50;
  int errs[4] = {1, 1, 1, 1};
  int command_on_sub = 1, empty_timeout = 1, published = 0, waited = 1;
  std::vector<std::string> channels, payloads;
  std::string waited_payload, binary;
  size_t binary_len = 0;
  int rc = run(1, [&]() -> int {
    weft_redis *sub = nullptr, *pub = nullptr;
    errs[0] = weft_redis_connect("127.0.0.1", server.port(), nullptr, &sub);
    errs[1] = weft_redis_connect("127.0.0.1", server.port(), nullptr, &pub);
    if (errs[0] != 0 || errs[1] != 0) {
      weft_redis_close(sub);
      weft_redis_close(pub);
      return 0;
    }
    errs[2] = weft_redis_subscribe(sub, "room:1", 0);
    errs[3] = weft_redis_subscribe(sub, "news.*", 1);
    redisReply *reply = nullptr;
    command_on_sub = weft_redis_command(sub, &reply, "PING");
    // Published while no task waits: queued, in order.
    for (int i = 0; i < kQueued; i++) {
      Got g = command(pub, "PUBLISH room:1 %s", ("m" + std::to_string(i)).c_str());
      if (g.err == 0) published += (int)g.integer;
    }
    Got g = command(pub, "PUBLISH news.sport %s", "goal");
    if (g.err == 0) published += (int)g.integer;
    const char bin[5] = {'a', '\0', 'b', '\0', 'c'};
    redisReply *rep = nullptr;
    if (weft_redis_command(pub, &rep, "PUBLISH room:1 %b", bin, sizeof bin) == 0) {
      published += (int)rep->integer;
      freeReplyObject(rep);
    }
    weft_sleep(50);  // let every message reach the subscriber
    for (int i = 0; i < kQueued + 2; i++) {
      char *ch = nullptr, *pl = nullptr;
      size_t len = 0;
      int r = weft_redis_next_message(sub, 1000, &ch, &pl, &len);
      if (r != 0) break;
      channels.push_back(ch);
      if (i == kQueued + 1) {
        binary.assign(pl, len);
        binary_len = len;
      } else {
        payloads.push_back(std::string(pl, len));
      }
      free(ch);
      free(pl);
    }
    char *ch = nullptr, *pl = nullptr;
    size_t len = 0;
    empty_timeout = weft_redis_next_message(sub, 30, &ch, &pl, &len);
    // A task that waits first gets the message when it comes.
    Tasks tasks;
    tasks.spawn(0, [&]() -> int {
      char *c = nullptr, *p = nullptr;
      size_t n = 0;
      waited = weft_redis_next_message(sub, -1, &c, &p, &n);
      if (waited == 0) waited_payload = p;
      free(c);
      free(p);
      return 0;
    });
    weft_sleep(20);
    command(pub, "PUBLISH room:1 %s", "late");
    tasks.join();
    weft_redis_close(sub);
    weft_redis_close(pub);
    return 0;
  });
  REQUIRE(rc == 0);
  for (int e : errs) CHECK(e == 0);
  CHECK(command_on_sub == UV_EINVAL);
  CHECK(published == kQueued + 2);
  REQUIRE(channels.size() == (size_t)kQueued + 2);
  for (int i = 0; i < kQueued; i++) {
    CHECK(channels[i] == "room:1");
    CHECK(payloads[i] == "m" + std::to_string(i));
  }
  CHECK(channels[kQueued] == "news.sport");
  CHECK(payloads[kQueued] == "goal");
  CHECK(binary_len == 5);
  CHECK(binary == std::string("a\0b\0c", 5));
  CHECK(empty_timeout == UV_ETIMEDOUT);
  CHECK(waited == 0);
  CHECK(waited_payload == "late");
}

TEST_CASE("close fails the commands and message waits still pending", "[redis]") {
  REDIS_TEST_SERVER(server);
  const int kBlocked = 3;
  int errs[2] = {1, 1}, sub_err = 1, message_wait = 1, after_close = 1;
  std::vector<int> blocked(kBlocked, 1);
  int rc = run(1, [&]() -> int {
    weft_redis *r = nullptr, *sub = nullptr;
    errs[0] = weft_redis_connect("127.0.0.1", server.port(), nullptr, &r);
    errs[1] = weft_redis_connect("127.0.0.1", server.port(), nullptr, &sub);
    if (errs[0] != 0 || errs[1] != 0) {
      weft_redis_close(r);
      weft_redis_close(sub);
      return 0;
    }
    sub_err = weft_redis_subscribe(sub, "quiet", 0);
    Tasks tasks(WEFT_COLLECT);
    for (int i = 0; i < kBlocked; i++) {
      tasks.spawn(0, [&, i]() -> int {
        redisReply *reply = nullptr;
        blocked[i] = weft_redis_command(r, &reply, "BLPOP never 0");
        if (reply != nullptr) freeReplyObject(reply);
        return 0;
      });
    }
    tasks.spawn(0, [&]() -> int {
      char *c = nullptr, *p = nullptr;
      size_t n = 0;
      message_wait = weft_redis_next_message(sub, -1, &c, &p, &n);
      free(c);
      free(p);
      return 0;
    });
    weft_sleep(50);
    weft_redis_close(r);
    weft_redis_close(sub);
    after_close = tasks.join();
    return 0;
  });
  REQUIRE(rc == 0);
  REQUIRE(errs[0] == 0);
  REQUIRE(errs[1] == 0);
  CHECK(sub_err == 0);
  for (int b : blocked) CHECK(b == UV_ECONNRESET);
  CHECK(message_wait == UV_ECONNRESET);
  CHECK(after_close == 0);
}

#else

TEST_CASE("redis module not built", "[redis]") {
  WARN("weft_redis was not built (libhiredis-dev missing): nothing to test");
}

#endif
