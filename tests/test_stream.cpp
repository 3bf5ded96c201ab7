// Tests of streams and pipelines: order and the end (clean or with an
// error), each backpressure policy and its counters, memory held flat by
// backpressure while a slow reader lags, the stages (map in order and as
// completed, on one executor and spread over two, filter, batch by count and
// by time, tee), a failing stage cancelling its pipeline, and byte streams
// piping a file through a stage to another file and over a TCP connection.
//
// Results are recorded in plain variables inside tasks and asserted after
// the runtime returns.

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <algorithm>
#include <deque>
#include <functional>
#include <string>
#include <vector>

#include "closures.h"
#include "support.h"
#include "win_support.h"
#include "weft.h"
#include "weft/stream.h"

namespace {

// Resident set size in KiB, from /proc/self/status (-1 where there is none).
long vm_rss_kib() {
  FILE *f = fopen("/proc/self/status", "r");
  if (f == nullptr) return -1;
  char line[256];
  long kib = -1;
  while (fgets(line, sizeof line, f) != nullptr)
    if (strncmp(line, "VmRSS:", 6) == 0) {
      kib = strtol(line + 6, nullptr, 10);
      break;
    }
  fclose(f);
  return kib;
}

// A temporary directory, removed with what is in it at the end of the test.
struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/weft-stream-XXXXXX";
    char *p = mkdtemp(tmpl);
    path = p ? p : "";
  }
  ~TempDir() {
    if (!path.empty()) {
      std::string cmd = weft_test_rm_rf_command(path);
      if (system(cmd.c_str()) != 0) {
      }
    }
  }
  std::string file(const char *name) const { return path + "/" + name; }
};

std::vector<unsigned char> pattern_bytes(size_t n) {
  std::vector<unsigned char> v(n);
  uint32_t x = 12345;
  for (size_t i = 0; i < n; i++) {
    x = x * 1103515245u + 12345u;
    v[i] = (unsigned char)(x >> 16);
  }
  return v;
}

bool write_file(const std::string &path, const std::vector<unsigned char> &data) {
  FILE *f = fopen(path.c_str(), "wb");
  if (f == nullptr) return false;
  bool ok = fwrite(data.data(), 1, data.size(), f) == data.size();
  return fclose(f) == 0 && ok;
}

std::vector<unsigned char> read_file(const std::string &path) {
  std::vector<unsigned char> v;
  FILE *f = fopen(path.c_str(), "rb");
  if (f == nullptr) return v;
  unsigned char buf[65536];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, f)) > 0) v.insert(v.end(), buf, buf + n);
  fclose(f);
  return v;
}

// A byte-wise transform for the byte stream tests: inverts every byte of
// the chunk in place and moves the chunk to the output.
int invert_chunk(void *, void *in, void *out) {
  weft_chunk *c = static_cast<weft_chunk *>(in);
  for (size_t i = 0; i < c->len; i++) c->data[i] = (unsigned char)~c->data[i];
  *static_cast<weft_chunk *>(out) = *c;
  return 0;
}

const int kModes[] = {WEFT_STREAM_LOCAL, WEFT_STREAM_SPSC, WEFT_STREAM_MPMC};

}  // namespace

TEST_CASE("stream: items arrive in order and a clean end follows them", "[stream]") {
  for (int mode : kModes) {
    std::vector<int> got;
    int end_code = 0, write_after_end = 0;
    weft_stream_stats st{};
    int r = run(1, [&]() -> int {
      weft_stream_opts so{};
      so.mode = mode;
      weft_stream *s = weft_stream_new(sizeof(int), 8, &so);
      if (s == nullptr) return UV_ENOMEM;
      weft_group *g = weft_group_open(WEFT_FAIL_FAST);
      std::function<int()> writer = [&]() -> int {
        for (int i = 0; i < 1000; i++) {
          int err = weft_stream_write(s, &i);
          if (err != 0) return err;
        }
        return weft_stream_end(s, 0);
      };
      spawn_fn(g, &writer);
      int v, err;
      while ((err = weft_stream_read(s, &v)) == 0) got.push_back(v);
      end_code = err;
      int one = 1;
      write_after_end = weft_stream_write(s, &one);
      int jr = weft_group_join(g);
      weft_stream_stats_get(s, &st);
      weft_stream_free(s);
      return jr;
    });
    INFO("mode " << mode);
    REQUIRE(r == 0);
    REQUIRE(got.size() == 1000);
    for (int i = 0; i < 1000; i++) REQUIRE(got[i] == i);
    CHECK(end_code == WEFT_ECLOSED);
    CHECK(write_after_end == WEFT_ECLOSED);
    CHECK(st.items_in == 1000);
    CHECK(st.items_out == 1000);
    CHECK(st.dropped == 0);
    CHECK(st.high_water <= st.capacity);
    CHECK(st.blocked_ns > 0);  // 1000 items through 8 slots: the writer waited
  }
}

TEST_CASE("stream: an end with an error reaches the reader after the buffered items", "[stream]") {
  std::vector<int> got;
  int end_code = 0, write_code = 0, second_end = -1;
  int r = run(1, [&]() -> int {
    weft_stream *s = weft_stream_new(sizeof(int), 8, nullptr);
    for (int i = 0; i < 3; i++) weft_stream_write(s, &i);
    weft_stream_end(s, UV_EIO);
    second_end = weft_stream_end(s, UV_EPIPE);  // ignored: the first end counts
    int v = 7;
    write_code = weft_stream_write(s, &v);
    int err;
    while ((err = weft_stream_read(s, &v)) == 0) got.push_back(v);
    end_code = err;
    weft_stream_free(s);
    return 0;
  });
  REQUIRE(r == 0);
  REQUIRE(got == std::vector<int>({0, 1, 2}));
  CHECK(end_code == UV_EIO);
  CHECK(write_code == UV_EIO);
  CHECK(second_end == 1);
}

TEST_CASE("stream: a timed read times out, then takes an item", "[stream]") {
  int first = 0, second = -1, value = 0;
  int64_t waited = 0;
  int r = run(1, [&]() -> int {
    weft_stream_opts so{};
    so.mode = WEFT_STREAM_LOCAL;
    weft_stream *s = weft_stream_new(sizeof(int), 4, &so);
    int64_t t0 = weft_now();
    int v;
    first = weft_stream_read_timeout(s, &v, 30);
    waited = weft_now() - t0;
    int x = 42;
    weft_stream_write(s, &x);
    second = weft_stream_read_timeout(s, &value, 30);
    weft_stream_free(s);
    return 0;
  });
  REQUIRE(r == 0);
  CHECK(first == UV_ETIMEDOUT);
  CHECK(waited >= 25);
  CHECK(second == 0);
  CHECK(value == 42);
}

// The writer produces 100,000 items of 1 KiB (100 MB if nothing held it
// back) for a reader that yields after every item and sleeps now and then.
// The stream must never hold more than its capacity, and the process must
// not grow.
static void backpressure_memory(int executors, int mode, int writer_exec) {
  const int kItems = 100000;
  const size_t kCap = 64;
  struct Item {
    char bytes[1024];
  };
  long rss_warm = 0, rss_end = 0;
  weft_stream_stats st{};
  long received = 0;
  int bad = 0;
  int r = run(executors, [&]() -> int {
    weft_stream_opts so{};
    so.mode = mode;
    weft_stream *s = weft_stream_new(sizeof(Item), kCap, &so);
    if (s == nullptr) return UV_ENOMEM;
    weft_group *g = weft_group_open(WEFT_FAIL_FAST);
    std::function<int()> writer = [&]() -> int {
      Item it;
      memset(&it, 0, sizeof it);
      for (int i = 0; i < kItems; i++) {
        memcpy(it.bytes, &i, sizeof i);
        int err = weft_stream_write(s, &it);
        if (err != 0) return err;
      }
      return weft_stream_end(s, 0);
    };
    spawn_fn(g, &writer, writer_exec);
    Item it;
    int err;
    while ((err = weft_stream_read(s, &it)) == 0) {
      int v;
      memcpy(&v, it.bytes, sizeof v);
      if (v != received) bad++;
      received++;
      if (received == 2000) rss_warm = vm_rss_kib();
      weft_yield();
      if (received % 10000 == 0) weft_sleep(1);
    }
    rss_end = vm_rss_kib();
    int jr = weft_group_join(g);
    weft_stream_stats_get(s, &st);
    weft_stream_free(s);
    return err == WEFT_ECLOSED ? jr : err;
  });
  REQUIRE(r == 0);
  CHECK(received == kItems);
  CHECK(bad == 0);
  CHECK(st.items_in == (uint64_t)kItems);
  CHECK(st.items_out == (uint64_t)kItems);
  CHECK(st.high_water <= st.capacity);
  CHECK(st.capacity == kCap);
  CHECK(st.blocked_ns > 0);
  INFO("VmRSS after 2000 items " << rss_warm << " KiB, at the end " << rss_end << " KiB");
  if (rss_warm > 0) CHECK(rss_end - rss_warm < 2048);
}

TEST_CASE("stream: backpressure holds memory flat while a slow reader lags", "[stream]") {
  backpressure_memory(1, WEFT_STREAM_LOCAL, 0);
}

TEST_CASE("stream: backpressure across executors holds memory flat", "[stream][executors]") {
  backpressure_memory(2, WEFT_STREAM_SPSC, 2);
  backpressure_memory(2, WEFT_STREAM_MPMC, 2);
}

namespace {
int g_disposed = 0;
void count_dispose(void *, void *) { g_disposed++; }
}  // namespace

TEST_CASE("stream: each drop policy counts what it drops", "[stream]") {
  struct Case {
    int policy;
    std::vector<int> expect_read;
    int expect_write_code;
    uint64_t dropped, rejected;
    int disposed;
  };
  std::vector<Case> cases = {
      {WEFT_STREAM_DROP_NEWEST, {0, 1, 2, 3}, WEFT_STREAM_DROPPED, 6, 0, 6},
      {WEFT_STREAM_DROP_OLDEST, {6, 7, 8, 9}, 0, 6, 0, 6},
      {WEFT_STREAM_FAIL, {0, 1, 2, 3}, UV_ENOBUFS, 0, 6, 0},
  };
  for (int mode : kModes) {
    for (const Case &c : cases) {
      std::vector<int> got;
      std::vector<int> codes;
      weft_stream_stats st{};
      g_disposed = 0;
      int r = run(1, [&]() -> int {
        weft_stream_item_ops ops{count_dispose, nullptr, nullptr};
        weft_stream_opts so{};
        so.mode = mode;
        so.policy = c.policy;
        so.ops = &ops;
        weft_stream *s = weft_stream_new(sizeof(int), 4, &so);
        if (s == nullptr) return UV_ENOMEM;
        for (int i = 0; i < 10; i++) codes.push_back(weft_stream_write(s, &i));
        weft_stream_end(s, 0);
        int v;
        while (weft_stream_read(s, &v) == 0) got.push_back(v);
        weft_stream_stats_get(s, &st);
        weft_stream_free(s);
        return 0;
      });
      INFO("mode " << mode << " policy " << c.policy);
      REQUIRE(r == 0);
      CHECK(got == c.expect_read);
      for (int i = 0; i < 4; i++) CHECK(codes[i] == 0);
      for (int i = 4; i < 10; i++) CHECK(codes[i] == c.expect_write_code);
      CHECK(st.dropped == c.dropped);
      CHECK(st.rejected == c.rejected);
      CHECK(st.items_in == (uint64_t)(c.policy == WEFT_STREAM_DROP_OLDEST ? 10 : 4));
      CHECK(st.items_out == 4);
      CHECK(st.high_water == 4);
      CHECK(g_disposed == c.disposed);
    }
  }
}

TEST_CASE("stream: items left in a freed stream are disposed of", "[stream]") {
  g_disposed = 0;
  int r = run(1, [&]() -> int {
    weft_stream_item_ops ops{count_dispose, nullptr, nullptr};
    weft_stream_opts so{};
    so.ops = &ops;
    weft_stream *s = weft_stream_new(sizeof(int), 8, &so);
    for (int i = 0; i < 5; i++) weft_stream_write(s, &i);
    weft_stream_free(s);
    return 0;
  });
  REQUIRE(r == 0);
  CHECK(g_disposed == 5);
}

// ---- Stages ----------------------------------------------------------------

namespace {

// Feeds values 0..n-1 into a new stream from a task of the pipeline.
struct Source {
  std::function<int()> fn;
  weft_stream *s = nullptr;
  Source(weft_pipeline *p, int n, int mode = WEFT_STREAM_MPMC, int sleep_every = 0,
         int64_t sleep_ms = 0) {
    weft_stream_opts so{};
    so.mode = mode;
    s = weft_stream_new(sizeof(int), 16, &so);
    fn = [this, n, sleep_every, sleep_ms]() -> int {
      for (int i = 0; i < n; i++) {
        if (sleep_every > 0 && i > 0 && i % sleep_every == 0) weft_sleep(sleep_ms);
        int err = weft_stream_write(s, &i);
        if (err != 0) {
          weft_stream_end(s, err);
          return err == WEFT_ECLOSED ? 0 : err;
        }
      }
      weft_stream_end(s, 0);
      return 0;
    };
    spawn_fn(weft_pipeline_group(p), &fn);
  }
  ~Source() { weft_stream_free(s); }
};

template <typename T>
int drain(weft_stream *s, std::vector<T> &out) {
  T v;
  int err;
  while ((err = weft_stream_read(s, &v)) == 0) out.push_back(v);
  return err;
}

// Sleeps longer for earlier items, so that later ones finish first.
int slow_then_fast(void *, void *in, void *out) {
  int v = *static_cast<int *>(in);
  weft_sleep(weft_test_ms((8 - v) * 4));
  *static_cast<int *>(out) = v * 10;
  return 0;
}

int times_two(void *, void *in, void *out) {
  *static_cast<int *>(out) = *static_cast<int *>(in) * 2;
  return 0;
}

}  // namespace

TEST_CASE("stream: map in order and as completed", "[stream][map]") {
  for (int order : {WEFT_MAP_ORDERED, WEFT_MAP_AS_COMPLETED}) {
    std::vector<int> got;
    int end_code = 0;
    int r = run(1, [&]() -> int {
      weft_pipeline *p = weft_pipeline_open();
      Source src(p, 8);
      weft_stage_opts o{};
      o.workers = 8;
      o.order = order;
      weft_stream *out = weft_stream_map(p, src.s, sizeof(int), slow_then_fast, nullptr, &o);
      end_code = out ? drain(out, got) : UV_EINVAL;
      return weft_pipeline_join(p);
    });
    INFO("order " << order);
    REQUIRE(r == 0);
    CHECK(end_code == WEFT_ECLOSED);
    REQUIRE(got.size() == 8);
    std::vector<int> sorted = got;
    std::sort(sorted.begin(), sorted.end());
    CHECK(sorted == std::vector<int>({0, 10, 20, 30, 40, 50, 60, 70}));
    if (order == WEFT_MAP_ORDERED)
      CHECK(got == sorted);
    else
      CHECK(got.front() == 70);  // the last input finished first
  }
}

TEST_CASE("stream: map with workers spread over executors keeps order", "[stream][map][executors]") {
  for (int order : {WEFT_MAP_ORDERED, WEFT_MAP_AS_COMPLETED}) {
    std::vector<int> got;
    int r = run(2, [&]() -> int {
      weft_pipeline *p = weft_pipeline_open();
      Source src(p, 20000);
      weft_stage_opts o{};
      o.workers = 4;
      o.order = order;
      o.executor = WEFT_EXEC_NEXT;
      weft_stream *out = weft_stream_map(p, src.s, sizeof(int), times_two, nullptr, &o);
      if (out) drain(out, got);
      return weft_pipeline_join(p);
    });
    INFO("order " << order);
    REQUIRE(r == 0);
    REQUIRE(got.size() == 20000);
    if (order == WEFT_MAP_ORDERED) {
      for (int i = 0; i < 20000; i++) REQUIRE(got[i] == 2 * i);
    } else {
      std::sort(got.begin(), got.end());
      for (int i = 0; i < 20000; i++) REQUIRE(got[i] == 2 * i);
    }
  }
}

TEST_CASE("stream: filter keeps what its predicate accepts", "[stream]") {
  std::vector<int> got;
  int r = run(1, [&]() -> int {
    weft_pipeline *p = weft_pipeline_open();
    Source src(p, 100, WEFT_STREAM_LOCAL);
    weft_stage_opts o{};
    o.mode = WEFT_STREAM_LOCAL;
    weft_stream *even = weft_stream_filter(
        p, src.s, [](void *, const void *item) -> int { return *(const int *)item % 2 == 0; },
        nullptr, &o);
    weft_stream *out = weft_stream_map(p, even, sizeof(int), times_two, nullptr, &o);
    if (out) drain(out, got);
    return weft_pipeline_join(p);
  });
  REQUIRE(r == 0);
  REQUIRE(got.size() == 50);
  for (int i = 0; i < 50; i++) CHECK(got[i] == 4 * i);
}

TEST_CASE("stream: batch by count", "[stream][batch]") {
  std::vector<std::vector<int>> batches;
  int r = run(1, [&]() -> int {
    weft_pipeline *p = weft_pipeline_open();
    Source src(p, 10);
    weft_stream *out = weft_stream_batch(p, src.s, 4, 0, nullptr);
    if (out != nullptr) {
      std::vector<unsigned char> buf(weft_stream_item_size(out));
      while (weft_stream_read(out, buf.data()) == 0) {
        weft_batch *b = reinterpret_cast<weft_batch *>(buf.data());
        std::vector<int> v;
        for (size_t i = 0; i < b->count; i++) v.push_back(*(int *)weft_batch_item(b, i));
        batches.push_back(v);
      }
    }
    return weft_pipeline_join(p);
  });
  REQUIRE(r == 0);
  REQUIRE(batches.size() == 3);
  CHECK(batches[0] == std::vector<int>({0, 1, 2, 3}));
  CHECK(batches[1] == std::vector<int>({4, 5, 6, 7}));
  CHECK(batches[2] == std::vector<int>({8, 9}));
}

TEST_CASE("stream: batch by time", "[stream][batch]") {
  std::vector<std::vector<int>> batches;
  std::vector<int64_t> when;
  const int64_t pause = weft_test_ms(150);
  int r = run(1, [&]() -> int {
    weft_pipeline *p = weft_pipeline_open();
    // Three items, a pause of 150 ms, three more: with batches of up to 100
    // items or 30 ms, the pause splits them.
    Source src(p, 6, WEFT_STREAM_MPMC, 3, pause);
    weft_stream *out = weft_stream_batch(p, src.s, 100, 30, nullptr);
    int64_t t0 = weft_now();
    if (out != nullptr) {
      std::vector<unsigned char> buf(weft_stream_item_size(out));
      while (weft_stream_read(out, buf.data()) == 0) {
        weft_batch *b = reinterpret_cast<weft_batch *>(buf.data());
        std::vector<int> v;
        for (size_t i = 0; i < b->count; i++) v.push_back(*(int *)weft_batch_item(b, i));
        batches.push_back(v);
        when.push_back(weft_now() - t0);
      }
    }
    return weft_pipeline_join(p);
  });
  REQUIRE(r == 0);
  REQUIRE(batches.size() == 2);
  CHECK(batches[0] == std::vector<int>({0, 1, 2}));
  CHECK(batches[1] == std::vector<int>({3, 4, 5}));
  // The first batch went out by time, well before the pause ended.
  CHECK(when[0] >= 25);
  CHECK(when[0] < pause);
}

TEST_CASE("stream: tee gives every output every item", "[stream][tee]") {
  std::vector<int> a, b, c;
  int r = run(1, [&]() -> int {
    weft_pipeline *p = weft_pipeline_open();
    Source src(p, 500);
    weft_stream *outs[3];
    int err = weft_stream_tee(p, src.s, 3, outs, nullptr);
    if (err != 0) return weft_pipeline_join(p);
    weft_group *g = weft_pipeline_group(p);
    std::function<int()> ra = [&]() -> int { return drain(outs[0], a) == WEFT_ECLOSED ? 0 : -1; };
    std::function<int()> rb = [&]() -> int { return drain(outs[1], b) == WEFT_ECLOSED ? 0 : -1; };
    spawn_fn(g, &ra);
    spawn_fn(g, &rb);
    drain(outs[2], c);
    return weft_pipeline_join(p);
  });
  REQUIRE(r == 0);
  REQUIRE(a.size() == 500);
  CHECK(a == b);
  CHECK(a == c);
  for (int i = 0; i < 500; i++) REQUIRE(a[i] == i);
}

TEST_CASE("stream: a failing stage cancels the pipeline and its error reaches the caller",
          "[stream][fail]") {
  std::vector<int> got;
  int read_end = 0, source_result = 1, sink_result = 1;
  int r = run(1, [&]() -> int {
    weft_pipeline *p = weft_pipeline_open();
    // An endless source: only the failure downstream stops it.
    weft_stream *src = weft_stream_new(sizeof(int), 4, nullptr);
    std::function<int()> source = [&]() -> int {
      int err;
      for (int i = 0;; i++)
        if ((err = weft_stream_write(src, &i)) != 0) break;
      source_result = err;
      return err;
    };
    spawn_fn(weft_pipeline_group(p), &source);
    weft_stream *mapped = weft_stream_map(
        p, src, sizeof(int),
        [](void *, void *in, void *out) -> int {
          int v = *(int *)in;
          if (v == 5) return UV_EIO;
          *(int *)out = v;
          return 0;
        },
        nullptr, nullptr);
    // A slow stage after it that would otherwise wait forever.
    weft_stream *slow = weft_stream_map(
        p, mapped, sizeof(int),
        [](void *, void *in, void *out) -> int {
          *(int *)out = *(int *)in;
          return weft_sleep(1);
        },
        nullptr, nullptr);
    std::function<int()> sink = [&]() -> int {
      sink_result = drain(slow, got);
      return sink_result;
    };
    spawn_fn(weft_pipeline_group(p), &sink);
    int jr = weft_pipeline_join(p);
    read_end = sink_result;
    weft_stream_free(src);
    return jr;
  });
  CHECK(r == UV_EIO);
  CHECK(read_end != 0);
  CHECK(source_result < 0);
  CHECK(got.size() <= 5);
  for (size_t i = 0; i < got.size(); i++) CHECK(got[i] == (int)i);
}

TEST_CASE("stream: a failing stage stops a caller writing its input", "[stream][fail]") {
  int write_code = 0, writes = 0;
  int r = run(1, [&]() -> int {
    weft_pipeline *p = weft_pipeline_open();
    weft_stream_opts so{};
    so.mode = WEFT_STREAM_LOCAL;
    weft_stream *src = weft_stream_new(sizeof(int), 4, &so);
    weft_stream_for_each(
        p, src,
        [](void *, void *item) -> int { return *(int *)item == 10 ? UV_EPROTO : 0; }, nullptr);
    for (int i = 0; i < 1000000; i++) {
      write_code = weft_stream_write(src, &i);
      if (write_code != 0) break;
      writes++;
    }
    int jr = weft_pipeline_join(p);
    weft_stream_free(src);
    return jr;
  });
  CHECK(r == UV_EPROTO);
  CHECK(write_code == UV_EPROTO);
  CHECK(writes < 100);
}

TEST_CASE("stream: a cancelled pipeline and a bad stage both reach join", "[stream][fail]") {
  int cancelled = 0, bad = 0;
  int r = run(1, [&]() -> int {
    weft_pipeline *p = weft_pipeline_open();
    weft_stream *src = weft_stream_new(sizeof(int), 4, nullptr);
    weft_stream *out = weft_stream_map(p, src, sizeof(int), times_two, nullptr, nullptr);
    weft_stream_for_each(p, out, [](void *, void *) -> int { return 0; }, nullptr);
    weft_sleep(5);
    weft_pipeline_cancel(p);
    cancelled = weft_pipeline_join(p);
    weft_stream_free(src);

    p = weft_pipeline_open();
    weft_stream *none = weft_stream_map(p, nullptr, sizeof(int), times_two, nullptr, nullptr);
    weft_stream *still = weft_stream_filter(
        p, none, [](void *, const void *) -> int { return 1; }, nullptr, nullptr);
    bad = still == nullptr ? weft_pipeline_join(p) : -1;
    return 0;
  });
  REQUIRE(r == 0);
  CHECK(cancelled == UV_ECANCELED);
  CHECK(bad == UV_EINVAL);
}

// ---- Byte streams ----------------------------------------------------------

TEST_CASE("stream: a file piped through a stage to another file, byte for byte",
          "[stream][bytes]") {
  TempDir dir;
  REQUIRE(!dir.path.empty());
  std::vector<unsigned char> data = pattern_bytes(1234567);
  REQUIRE(write_file(dir.file("in.bin"), data));
  std::string in = dir.file("in.bin"), out = dir.file("out.bin"),
              copy = dir.file("copy.bin");
  int r = run(1, [&]() -> int {
    weft_pipeline *p = weft_pipeline_open();
    weft_stream *chunks = weft_stream_from_file(p, in.c_str(), 4096, nullptr);
    weft_stage_opts o{};
    o.ops = weft_chunk_ops();
    o.workers = 3;  // in order, over several workers
    weft_stream *inverted =
        weft_stream_map(p, chunks, sizeof(weft_chunk), invert_chunk, nullptr, &o);
    weft_stream *outs[2];
    weft_stream_tee(p, inverted, 2, outs, nullptr);
    weft_stream_to_file(p, outs[0], out.c_str());
    weft_stream_to_file(p, outs[1], copy.c_str());
    return weft_pipeline_join(p);
  });
  REQUIRE(r == 0);
  std::vector<unsigned char> expect = data;
  for (auto &b : expect) b = (unsigned char)~b;
  std::vector<unsigned char> got = read_file(out);
  REQUIRE(got.size() == expect.size());
  CHECK(got == expect);
  CHECK(read_file(copy) == expect);
}

TEST_CASE("stream: a missing file fails the pipeline", "[stream][bytes]") {
  TempDir dir;
  std::string in = dir.file("missing.bin"), out = dir.file("out.bin");
  int r = run(1, [&]() -> int {
    weft_pipeline *p = weft_pipeline_open();
    weft_stream *chunks = weft_stream_from_file(p, in.c_str(), 4096, nullptr);
    weft_stream_to_file(p, chunks, out.c_str());
    return weft_pipeline_join(p);
  });
  CHECK(r == UV_ENOENT);
}

TEST_CASE("stream: a file piped over a TCP connection through a stage", "[stream][bytes][tcp]") {
  TempDir dir;
  REQUIRE(!dir.path.empty());
  std::vector<unsigned char> data = pattern_bytes(777777);
  REQUIRE(write_file(dir.file("in.bin"), data));
  std::string in = dir.file("in.bin"), out = dir.file("out.bin");
  int server_result = 1, client_result = 1;
  int r = run(1, [&]() -> int {
    weft_tcp *listener = nullptr;
    int err = weft_tcp_listen("127.0.0.1", 0, 0, 0, &listener);
    if (err != 0) return err;
    int port = weft_tcp_local_port(listener);
    weft_group *g = weft_group_open(WEFT_FAIL_FAST);
    // The server: socket -> invert -> file.
    std::function<int()> server = [&]() -> int {
      weft_tcp *conn = nullptr;
      int e = weft_tcp_accept(listener, &conn);
      if (e != 0) return server_result = e;
      weft_pipeline *p = weft_pipeline_open();
      weft_stream *chunks = weft_stream_from_tcp(p, conn, 16384, nullptr);
      weft_stage_opts o{};
      o.ops = weft_chunk_ops();
      weft_stream *inverted =
          weft_stream_map(p, chunks, sizeof(weft_chunk), invert_chunk, nullptr, &o);
      weft_stream_to_file(p, inverted, out.c_str());
      server_result = weft_pipeline_join(p);
      weft_tcp_close(conn);
      return server_result;
    };
    // The client: file -> socket.
    std::function<int()> client = [&]() -> int {
      weft_tcp *conn = nullptr;
      int e = weft_tcp_connect("127.0.0.1", port, &conn);
      if (e != 0) return client_result = e;
      weft_pipeline *p = weft_pipeline_open();
      weft_stream *chunks = weft_stream_from_file(p, in.c_str(), 10000, nullptr);
      weft_stream_to_tcp(p, chunks, conn);
      client_result = weft_pipeline_join(p);
      weft_tcp_close(conn);
      return client_result;
    };
    spawn_fn(g, &server);
    spawn_fn(g, &client);
    err = weft_group_join(g);
    weft_tcp_close(listener);
    return err;
  });
  REQUIRE(r == 0);
  CHECK(server_result == 0);
  CHECK(client_result == 0);
  std::vector<unsigned char> expect = data;
  for (auto &b : expect) b = (unsigned char)~b;
  std::vector<unsigned char> got = read_file(out);
  REQUIRE(got.size() == expect.size());
  CHECK(got == expect);
}
