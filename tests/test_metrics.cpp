// Tests of weft/metrics.h: registration and name rules, counters and gauges
// updated from four executors and from plain threads, histogram quantiles
// against a sorted reference, and the JSON and Prometheus exports. (The dump
// on a signal is apps/common's: apps/common/tests/test_signals.c.)
//
// The registry is process-wide and outlives each test, so every test uses
// names of its own and compares against values read before it starts.

// With sanitizers, GCC 12 warns about std::function inside <regex> being
// maybe uninitialized, a false positive in libstdc++; it is reported at the
// header's lines, so it is silenced for the whole file, before any include.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

#include "metrics_internal.h"
#include "support.h"
#include "weft.h"
#include "weft/metrics.h"

namespace {

// ---- A small JSON reader, enough to check the export's structure -----------

struct Json {
  enum Kind { Null, Bool, Number, String, Array, Object } kind = Null;
  double number = 0;
  std::string text; // a string, or a number's digits
  std::vector<Json> items;
  std::vector<std::pair<std::string, Json>> members;

  const Json *get(const std::string &key) const {
    for (const auto &m : members)
      if (m.first == key) return &m.second;
    return nullptr;
  }
};

// A strict reader of RFC 8259 JSON: any fault makes parse() return false.
class JsonReader {
public:
  explicit JsonReader(const std::string &s) : s_(s) {}

  bool parse(Json *out) {
    if (!value(out, 0)) return false;
    space();
    return pos_ == s_.size();
  }

private:
  const std::string &s_;
  size_t pos_ = 0;

  void space() {
    while (pos_ < s_.size() && std::strchr(" \t\r\n", s_[pos_]) != nullptr)
      pos_++;
  }
  bool eat(char c) {
    space();
    if (pos_ < s_.size() && s_[pos_] == c) {
      pos_++;
      return true;
    }
    return false;
  }
  bool literal(const char *word) {
    size_t n = std::strlen(word);
    if (s_.compare(pos_, n, word) != 0) return false;
    pos_ += n;
    return true;
  }
  bool string(std::string *out) {
    if (!eat('"')) return false;
    out->clear();
    while (pos_ < s_.size()) {
      unsigned char c = static_cast<unsigned char>(s_[pos_++]);
      if (c == '"') return true;
      if (c < 0x20) return false;
      if (c != '\\') {
        out->push_back(static_cast<char>(c));
        continue;
      }
      if (pos_ >= s_.size()) return false;
      char e = s_[pos_++];
      switch (e) {
      case '"':
        out->push_back('"');
        break;
      case '\\':
        out->push_back('\\');
        break;
      case '/':
        out->push_back('/');
        break;
      case 'b':
        out->push_back('\b');
        break;
      case 'f':
        out->push_back('\f');
        break;
      case 'n':
        out->push_back('\n');
        break;
      case 'r':
        out->push_back('\r');
        break;
      case 't':
        out->push_back('\t');
        break;
      case 'u': {
        if (pos_ + 4 > s_.size()) return false;
        unsigned v = 0;
        for (int i = 0; i < 4; i++) {
          char h = s_[pos_++];
          if (!std::isxdigit(static_cast<unsigned char>(h))) return false;
          v = v * 16 +
              static_cast<unsigned>(std::isdigit(static_cast<unsigned char>(h))
                                        ? h - '0'
                                        : std::tolower(h) - 'a' + 10);
        }
        if (v >= 0x80) return false; // the export only escapes control bytes
        out->push_back(static_cast<char>(v));
        break;
      }
      default:
        return false;
      }
    }
    return false;
  }
  bool number(Json *out) {
    static const std::regex re(
        R"(^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?)");
    std::smatch m;
    std::string rest = s_.substr(pos_, 64);
    if (!std::regex_search(rest, m, re)) return false;
    out->kind = Json::Number;
    out->text = m.str(0);
    out->number = std::strtod(out->text.c_str(), nullptr);
    pos_ += m.length(0);
    return true;
  }
  bool value(Json *out, int depth) {
    if (depth > 32) return false;
    space();
    if (pos_ >= s_.size()) return false;
    char c = s_[pos_];
    if (c == '{') {
      pos_++;
      out->kind = Json::Object;
      if (eat('}')) return true;
      do {
        std::string key;
        Json v;
        if (!string(&key) || !eat(':') || !value(&v, depth + 1)) return false;
        out->members.emplace_back(key, v);
      } while (eat(','));
      return eat('}');
    }
    if (c == '[') {
      pos_++;
      out->kind = Json::Array;
      if (eat(']')) return true;
      do {
        Json v;
        if (!value(&v, depth + 1)) return false;
        out->items.push_back(v);
      } while (eat(','));
      return eat(']');
    }
    if (c == '"') {
      out->kind = Json::String;
      return string(&out->text);
    }
    if (c == 't' || c == 'f') {
      out->kind = Json::Bool;
      return literal(c == 't' ? "true" : "false");
    }
    if (c == 'n') return literal("null");
    return number(out);
  }
};

std::string take(char *s) {
  std::string out = s ? s : "";
  std::free(s);
  return out;
}

// ---- Four executors --------------------------------------------------------

struct Spread {
  weft_counter *counter;
  weft_gauge *gauge;
  weft_histogram *hist;
  int per_task;
  std::atomic<int> seen[5]; // tasks that ran on executors 1..4
};

int spread_task(void *arg) {
  auto *x = static_cast<Spread *>(arg);
  int id = weft_executor_id();
  if (id >= 1 && id <= 4) x->seen[id]++;
  for (int i = 0; i < x->per_task; i++) {
    weft_counter_inc(x->counter);
    weft_counter_add(x->counter, 2);
    weft_gauge_add(x->gauge, 2);
    weft_gauge_add(x->gauge, -1);
    weft_histogram_record(x->hist, static_cast<uint64_t>(i));
    // Let the tasks of one executor interleave.
    if (i % 1000 == 0) weft_yield();
  }
  return 0;
}

int spread_root(void *arg) {
  auto *x = static_cast<Spread *>(arg);
  weft_group *g = weft_group_open(WEFT_FAIL_FAST);
  if (g == nullptr) return UV_ENOMEM;
  for (int t = 0; t < 16; t++) {
    weft_task_opts o{};
    o.executor = 1 + t % 4;
    int r = weft_spawn_opts(g, &o, spread_task, x);
    if (r != 0) {
      weft_group_cancel(g);
      weft_group_join(g);
      return r;
    }
  }
  return weft_group_join(g);
}

// ---- Quantiles against a sorted reference ----------------------------------

// The value of nearest rank ceil(q * n), as weft_histogram_quantile() defines
// it.
uint64_t reference_quantile(const std::vector<uint64_t> &sorted, double q) {
  size_t n = sorted.size();
  double r = std::ceil(q * static_cast<double>(n));
  size_t rank = r < 1                        ? 1
                : r > static_cast<double>(n) ? n
                                             : static_cast<size_t>(r);
  return sorted[rank - 1];
}

// Records values into h from three threads (so that shards are merged) and
// checks quantiles, count, sum, min and max against the sorted values.
void check_distribution(const char *name, std::vector<uint64_t> values) {
  weft_histogram *h =
      weft_metrics_histogram(name, "distribution under test", 0);
  REQUIRE(h != nullptr);
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; t++) {
    threads.emplace_back([h, &values, t] {
      for (size_t i = static_cast<size_t>(t); i < values.size(); i += 3)
        weft_histogram_record(h, values[i]);
    });
  }
  for (auto &th : threads) th.join();

  uint64_t sum = 0;
  for (uint64_t v : values) sum += v;
  std::sort(values.begin(), values.end());

  weft_histogram_stats st;
  weft_histogram_read(h, &st);
  CHECK(st.count == values.size());
  CHECK(st.sum == sum);
  CHECK(st.min == values.front());
  CHECK(st.max == values.back());

  const double qs[] = {0,    0.001, 0.01, 0.1,   0.25,   0.5,
                       0.75, 0.9,   0.99, 0.999, 0.9999, 1};
  for (double q : qs) {
    uint64_t want = reference_quantile(values, q);
    uint64_t got = weft_histogram_quantile(h, q);
    double err =
        want == 0
            ? static_cast<double>(got)
            : std::fabs(static_cast<double>(got) - static_cast<double>(want)) /
                  static_cast<double>(want);
    INFO(name << " q=" << q << " reference " << want << " estimate " << got);
    CHECK(err <= 0.01);
  }
  // The four exported quantiles are the same estimates.
  CHECK(st.p50 == weft_histogram_quantile(h, 0.5));
  CHECK(st.p90 == weft_histogram_quantile(h, 0.9));
  CHECK(st.p99 == weft_histogram_quantile(h, 0.99));
  CHECK(st.p999 == weft_histogram_quantile(h, 0.999));
}

} // namespace

TEST_CASE("names follow the Prometheus rules", "[metrics]") {
  CHECK(weft_metrics_valid_name("a"));
  CHECK(weft_metrics_valid_name("_"));
  CHECK(weft_metrics_valid_name(":x"));
  CHECK(weft_metrics_valid_name("http_requests_total"));
  CHECK(weft_metrics_valid_name("job:rate5m:sum9"));
  CHECK_FALSE(weft_metrics_valid_name(nullptr));
  CHECK_FALSE(weft_metrics_valid_name(""));
  CHECK_FALSE(weft_metrics_valid_name("1abc"));
  CHECK_FALSE(weft_metrics_valid_name("a-b"));
  CHECK_FALSE(weft_metrics_valid_name("a b"));
  CHECK_FALSE(weft_metrics_valid_name("a.b"));
  CHECK_FALSE(weft_metrics_valid_name("caf\xc3\xa9"));

  CHECK(weft_metrics_counter("bad name", "") == nullptr);
  CHECK(weft_metrics_gauge("9lives", "") == nullptr);
  CHECK(weft_metrics_histogram("", "", 1) == nullptr);
  CHECK(weft_metrics_counter(nullptr, "") == nullptr);

  // Label names: [a-zA-Z_][a-zA-Z0-9_]*, not "__...", no colon; a value is
  // required.
  CHECK(weft_metrics_counter_labeled("test_names_total", "", "__code", "x") ==
        nullptr);
  CHECK(weft_metrics_counter_labeled("test_names_total", "", "1code", "x") ==
        nullptr);
  CHECK(weft_metrics_counter_labeled("test_names_total", "", "a:b", "x") ==
        nullptr);
  CHECK(weft_metrics_counter_labeled("test_names_total", "", "", "x") ==
        nullptr);
  CHECK(weft_metrics_counter_labeled("test_names_total", "", "code", nullptr) ==
        nullptr);
  CHECK(weft_metrics_counter_labeled("test_names_total", "", nullptr, "x") ==
        nullptr);
  CHECK(weft_metrics_histogram_labeled("test_names_seconds", "", 1, "quantile",
                                       "x") == nullptr);
  CHECK(weft_metrics_counter_labeled("test_names_total", "", "quantile", "x") !=
        nullptr);
}

TEST_CASE("registering a name again returns the same handle", "[metrics]") {
  weft_counter *c = weft_metrics_counter("test_same_total", "help");
  REQUIRE(c != nullptr);
  CHECK(weft_metrics_counter("test_same_total", "other help") == c);

  weft_gauge *g = weft_metrics_gauge("test_same_gauge", "");
  REQUIRE(g != nullptr);
  CHECK(weft_metrics_gauge("test_same_gauge", nullptr) == g);

  weft_histogram *h = weft_metrics_histogram("test_same_seconds", "", 1e-9);
  REQUIRE(h != nullptr);
  CHECK(weft_metrics_histogram("test_same_seconds", "", 1) == h);

  // One name is one kind of metric.
  CHECK(weft_metrics_gauge("test_same_total", "") == nullptr);
  CHECK(weft_metrics_histogram("test_same_total", "", 1) == nullptr);
  CHECK(weft_metrics_counter("test_same_gauge", "") == nullptr);
  CHECK(weft_metrics_gauge_labeled("test_same_total", "", "a", "b") == nullptr);

  // A labelled family: one handle per value, the same handle for the same
  // value.
  weft_counter *a =
      weft_metrics_counter_labeled("test_same_total", "", "code", "A");
  weft_counter *b =
      weft_metrics_counter_labeled("test_same_total", "", "code", "B");
  REQUIRE(a != nullptr);
  REQUIRE(b != nullptr);
  CHECK(a != b);
  CHECK(a != c);
  CHECK(weft_metrics_counter_labeled("test_same_total", "", "code", "A") == a);
  weft_counter_add(a, 3);
  weft_counter_add(b, 4);
  CHECK(weft_counter_value(a) == 3);
  CHECK(weft_counter_value(b) == 4);

  // Registration from many threads at once agrees on one handle.
  std::vector<std::thread> threads;
  std::vector<weft_counter *> got(8);
  for (int t = 0; t < 8; t++)
    threads.emplace_back([&got, t] {
      got[t] = weft_metrics_counter("test_same_race_total", "");
    });
  for (auto &th : threads) th.join();
  REQUIRE(got[0] != nullptr);
  for (auto *p : got) CHECK(p == got[0]);
}

TEST_CASE("updates through NULL handles are ignored", "[metrics]") {
  weft_counter_inc(nullptr);
  weft_counter_add(nullptr, 5);
  weft_gauge_add(nullptr, 1);
  weft_gauge_set(nullptr, 1);
  weft_histogram_record(nullptr, 1);
  CHECK(weft_counter_value(nullptr) == 0);
  CHECK(weft_gauge_value(nullptr) == 0);
  CHECK(weft_histogram_quantile(nullptr, 0.5) == 0);
  weft_histogram_stats st;
  std::memset(&st, 0xff, sizeof st);
  weft_histogram_read(nullptr, &st);
  CHECK(st.count == 0);
  CHECK(st.max == 0);
}

TEST_CASE("counters and gauges updated on four executors add up", "[metrics]") {
  Spread x;
  x.counter =
      weft_metrics_counter("test_spread_total", "updates from four executors");
  x.gauge = weft_metrics_gauge("test_spread_gauge", "");
  x.hist = weft_metrics_histogram("test_spread_values", "", 0);
  x.per_task = 20000;
  for (auto &s : x.seen) s = 0;
  REQUIRE(x.counter != nullptr);
  REQUIRE(x.gauge != nullptr);
  REQUIRE(x.hist != nullptr);

  // A plain thread updates at the same time as the executors.
  std::atomic<bool> go{true};
  std::atomic<uint64_t> outside{0};
  std::thread other([&] {
    while (go.load()) {
      weft_counter_inc(x.counter);
      weft_gauge_add(x.gauge, 1);
      outside++;
    }
  });
  weft_opts opts{};
  opts.executors = 4;
  int r = weft_main_opts(&opts, spread_root, &x);
  go = false;
  other.join();
  REQUIRE(r == 0);
  for (int e = 1; e <= 4; e++) CHECK(x.seen[e] == 4);

  uint64_t updates = 16ull * static_cast<uint64_t>(x.per_task);
  CHECK(weft_counter_value(x.counter) == 3 * updates + outside.load());
  CHECK(weft_gauge_value(x.gauge) ==
        static_cast<int64_t>(updates + outside.load()));
  weft_histogram_stats st;
  weft_histogram_read(x.hist, &st);
  CHECK(st.count == updates);
  CHECK(st.min == 0);
  CHECK(st.max == static_cast<uint64_t>(x.per_task - 1));
  CHECK(st.sum ==
        16ull * (static_cast<uint64_t>(x.per_task) * (x.per_task - 1) / 2));
}

TEST_CASE("more threads than shards share one without losing updates",
          "[metrics]") {
  weft_counter *c = weft_metrics_counter("test_many_threads_total", "");
  weft_histogram *h = weft_metrics_histogram("test_many_threads_values", "", 0);
  REQUIRE(c != nullptr);
  REQUIRE(h != nullptr);
  // Every thread stays alive until all have updated, so that more threads
  // than there are shards hold one at the same time.
  const int n = 100, per = 2000;
  std::mutex mu;
  std::condition_variable cv;
  int done = 0;
  std::vector<std::thread> threads;
  for (int t = 0; t < n; t++) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < per; i++) {
        weft_counter_inc(c);
        weft_histogram_record(h, static_cast<uint64_t>(t));
      }
      std::unique_lock<std::mutex> lock(mu);
      done++;
      cv.notify_all();
      cv.wait(lock, [&] { return done == n; });
    });
  }
  for (auto &th : threads) th.join();
  CHECK(weft_counter_value(c) == static_cast<uint64_t>(n) * per);
  weft_histogram_stats st;
  weft_histogram_read(h, &st);
  CHECK(st.count == static_cast<uint64_t>(n) * per);
  CHECK(st.min == 0);
  CHECK(st.max == static_cast<uint64_t>(n - 1));
  CHECK(st.sum == static_cast<uint64_t>(per) * (n * (n - 1) / 2));
  // Shards released by the threads that ended are taken again by new ones.
  std::thread later([c] { weft_counter_add(c, 5); });
  later.join();
  CHECK(weft_counter_value(c) == static_cast<uint64_t>(n) * per + 5);
}

TEST_CASE("a gauge is set, then added to", "[metrics]") {
  weft_gauge *g = weft_metrics_gauge("test_gauge_set", "");
  REQUIRE(g != nullptr);
  weft_gauge_add(g, 5);
  std::thread([g] { weft_gauge_add(g, 7); }).join();
  CHECK(weft_gauge_value(g) == 12);
  weft_gauge_set(g, 10);
  CHECK(weft_gauge_value(g) == 10);
  weft_gauge_add(g, -3);
  CHECK(weft_gauge_value(g) == 7);
  weft_gauge_set(g, -42);
  CHECK(weft_gauge_value(g) == -42);
  std::thread([g] { weft_gauge_add(g, 2); }).join();
  CHECK(weft_gauge_value(g) == -40);
  weft_gauge_set(g, INT64_MIN);
  CHECK(weft_gauge_value(g) == INT64_MIN);
}

TEST_CASE("histogram quantiles match a sorted reference within 1%",
          "[metrics]") {
  const size_t n = 100000;
  std::mt19937_64 rng(20240611);

  SECTION("uniform") {
    std::uniform_int_distribution<uint64_t> d(0, 1000000000);
    std::vector<uint64_t> v(n);
    for (auto &x : v) x = d(rng);
    check_distribution("test_q_uniform", v);
  }
  SECTION("exponential") {
    std::exponential_distribution<double> d(1.0 / 1e6);
    std::vector<uint64_t> v(n);
    for (auto &x : v) x = static_cast<uint64_t>(d(rng));
    check_distribution("test_q_exponential", v);
  }
  SECTION("Pareto, heavy-tailed") {
    // Inverse transform: x = xm / U^(1/alpha), alpha 1.1 (infinite variance).
    std::uniform_real_distribution<double> u(0.0, 1.0);
    std::vector<uint64_t> v(n);
    for (auto &x : v) {
      double s = 1.0 - u(rng); // (0, 1]
      double p = 1000.0 / std::pow(s, 1.0 / 1.1);
      x = p >= 1.8e19 ? UINT64_MAX : static_cast<uint64_t>(p);
    }
    check_distribution("test_q_pareto", v);
  }
  SECTION("small values are exact") {
    std::vector<uint64_t> v(n);
    for (size_t i = 0; i < n; i++) v[i] = i % 128;
    check_distribution("test_q_small", v);
    weft_histogram *h = weft_metrics_histogram("test_q_small", "", 0);
    for (uint64_t k = 0; k < 128; k++) {
      double q = (static_cast<double>(k) + 0.5) / 128.0;
      CHECK(weft_histogram_quantile(h, q) == k);
    }
  }
  SECTION("the extremes of uint64_t") {
    weft_histogram *h = weft_metrics_histogram("test_q_extremes", "", 0);
    REQUIRE(h != nullptr);
    weft_histogram_record(h, 0);
    weft_histogram_record(h, UINT64_MAX);
    weft_histogram_record(h, UINT64_MAX - 1);
    weft_histogram_record(h, uint64_t(1) << 63);
    CHECK(weft_histogram_quantile(h, 0) == 0);
    CHECK(weft_histogram_quantile(h, 1) == UINT64_MAX);
    uint64_t p50 = weft_histogram_quantile(h, 0.5);
    CHECK(std::fabs(static_cast<double>(p50) - 9223372036854775808.0) /
              9223372036854775808.0 <=
          0.01);
  }
  SECTION("an empty histogram reports zeros") {
    weft_histogram *h = weft_metrics_histogram("test_q_empty", "", 0);
    REQUIRE(h != nullptr);
    weft_histogram_stats st;
    weft_histogram_read(h, &st);
    CHECK(st.count == 0);
    CHECK(st.min == 0);
    CHECK(st.max == 0);
    CHECK(st.p999 == 0);
    CHECK(weft_histogram_quantile(h, 0.5) == 0);
  }
}

TEST_CASE("the JSON export parses and holds every metric", "[metrics]") {
  weft_counter *c = weft_metrics_counter("test_json_total", "a counter");
  weft_counter *lc = weft_metrics_counter_labeled("test_json_labeled_total", "",
                                                  "code", "E\"X\\\n");
  weft_gauge *g = weft_metrics_gauge("test_json_gauge", "");
  weft_histogram *h = weft_metrics_histogram("test_json_bytes", "", 0);
  weft_histogram *hs = weft_metrics_histogram("test_json_seconds", "", 1e-9);
  REQUIRE(c != nullptr);
  REQUIRE(lc != nullptr);
  REQUIRE(g != nullptr);
  REQUIRE(h != nullptr);
  REQUIRE(hs != nullptr);
  uint64_t c0 = weft_counter_value(c);
  weft_counter_add(c, 42);
  weft_counter_add(lc, 3);
  weft_gauge_set(g, -7);
  for (uint64_t v = 1; v <= 1000; v++) {
    weft_histogram_record(h, v);
    weft_histogram_record(hs, v * 1000000); // 1 ms .. 1 s
  }

  std::string text = take(weft_metrics_json());
  INFO(text);
  REQUIRE(!text.empty());
  CHECK(text.back() == '}');
  Json root;
  REQUIRE(JsonReader(text).parse(&root));
  REQUIRE(root.kind == Json::Object);
  const Json *counters = root.get("counters");
  const Json *gauges = root.get("gauges");
  const Json *hists = root.get("histograms");
  REQUIRE(counters != nullptr);
  REQUIRE(gauges != nullptr);
  REQUIRE(hists != nullptr);
  CHECK(root.members.size() == 3);

  const Json *cv = counters->get("test_json_total");
  REQUIRE(cv != nullptr);
  CHECK(cv->kind == Json::Number);
  CHECK(cv->text == std::to_string(c0 + 42));
  // A labelled series is keyed by its Prometheus series name.
  const Json *lv =
      counters->get("test_json_labeled_total{code=\"E\\\"X\\\\\\n\"}");
  REQUIRE(lv != nullptr);
  CHECK(lv->number == 3);
  const Json *gv = gauges->get("test_json_gauge");
  REQUIRE(gv != nullptr);
  CHECK(gv->text == "-7");
  // The built-in metrics are always there.
  CHECK(counters->get("weft_tasks_spawned_total") != nullptr);
  CHECK(gauges->get("weft_tasks_alive") != nullptr);
  CHECK(hists->get("weft_loop_lag_seconds") != nullptr);

  const Json *hv = hists->get("test_json_bytes");
  REQUIRE(hv != nullptr);
  REQUIRE(hv->kind == Json::Object);
  const char *keys[] = {"count", "sum", "min", "max",
                        "p50",   "p90", "p99", "p999"};
  for (const char *k : keys) {
    const Json *f = hv->get(k);
    REQUIRE(f != nullptr);
    CHECK(f->kind == Json::Number);
  }
  CHECK(hv->members.size() == 8);
  CHECK(hv->get("count")->text == "1000");
  CHECK(hv->get("sum")->text == "500500");
  CHECK(hv->get("min")->text == "1");
  CHECK(hv->get("max")->text == "1000");
  CHECK(std::fabs(hv->get("p50")->number - 500) <= 5);
  CHECK(std::fabs(hv->get("p999")->number - 999) <= 10);

  // A scaled histogram is exported in its unit: seconds here.
  const Json *sv = hists->get("test_json_seconds");
  REQUIRE(sv != nullptr);
  CHECK(sv->get("count")->text == "1000");
  CHECK(sv->get("sum")->number == Approx(500.5));
  CHECK(sv->get("min")->number == Approx(0.001));
  CHECK(sv->get("max")->number == Approx(1.0));
  CHECK(sv->get("p90")->number == Approx(0.9).epsilon(0.01));

  // The keys of each section come sorted, so dumps compare line by line.
  for (const Json *section : {counters, gauges, hists}) {
    for (size_t i = 1; i < section->members.size(); i++)
      CHECK(section->members[i - 1].first < section->members[i].first);
  }
}

TEST_CASE("the Prometheus export follows the text format", "[metrics]") {
  weft_counter *c = weft_metrics_counter("test_prom_total",
                                         "Things counted,\nwith a \\ in help.");
  weft_counter *la = weft_metrics_counter_labeled(
      "test_prom_errors_total", "Errors by code.", "code", "EA");
  weft_counter *lb = weft_metrics_counter_labeled("test_prom_errors_total", "",
                                                  "code", "quote\"d");
  weft_gauge *g = weft_metrics_gauge("test_prom_gauge", "");
  weft_histogram *h =
      weft_metrics_histogram("test_prom_seconds", "Latency.", 1e-9);
  weft_histogram *e =
      weft_metrics_histogram("test_prom_empty_seconds", "", 1e-9);
  REQUIRE((c && la && lb && g && h && e));
  weft_metrics_reset();
  weft_counter_add(c, 7);
  weft_counter_add(la, 1);
  weft_counter_add(lb, 2);
  weft_gauge_set(g, -3);
  for (uint64_t v = 1; v <= 100; v++) weft_histogram_record(h, v * 1000000);

  std::string text = take(weft_metrics_prometheus());
  INFO(text);
  REQUIRE(!text.empty());
  CHECK(text.back() == '\n');

  const std::string name = "[a-zA-Z_:][a-zA-Z0-9_:]*";
  const std::string labels =
      R"((\{[a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\[\\"n])*"(,[a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\[\\"n])*")*\})?)";
  const std::string number =
      R"(([-+]?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?|NaN|[+-]Inf))";
  const std::regex help_re("^# HELP (" + name + ") ([^\\\\\n]|\\\\[\\\\n])*$");
  const std::regex type_re("^# TYPE (" + name +
                           ") (counter|gauge|summary|histogram|untyped)$");
  const std::regex sample_re("^(" + name + ")" + labels + " " + number + "$");

  std::istringstream in(text);
  std::string line;
  std::map<std::string, std::string> types; // family -> type
  std::string family;                       // the last # TYPE
  int lines = 0;
  while (std::getline(in, line)) {
    lines++;
    std::smatch m;
    INFO("line: " << line);
    if (std::regex_match(line, m, help_re)) continue;
    if (std::regex_match(line, m, type_re)) {
      CHECK(types.count(m.str(1)) == 0); // one # TYPE per family
      types[m.str(1)] = m.str(2);
      family = m.str(1);
      continue;
    }
    REQUIRE(std::regex_match(line, m, sample_re));
    // A sample belongs to the family whose # TYPE came last.
    std::string series = m.str(1);
    bool ok = series == family || series == family + "_sum" ||
              series == family + "_count";
    CHECK(ok);
  }
  CHECK(lines > 10);

  auto has = [&text](const std::string &l) {
    return text.find("\n" + l + "\n") != std::string::npos;
  };
  CHECK(has("# HELP test_prom_total Things counted,\\nwith a \\\\ in help."));
  CHECK(has("# TYPE test_prom_total counter"));
  CHECK(has("test_prom_total 7"));
  CHECK(types["test_prom_errors_total"] == "counter");
  CHECK(has("# HELP test_prom_errors_total Errors by code."));
  CHECK(has("test_prom_errors_total{code=\"EA\"} 1"));
  CHECK(has("test_prom_errors_total{code=\"quote\\\"d\"} 2"));
  CHECK(has("# TYPE test_prom_gauge gauge"));
  CHECK(has("test_prom_gauge -3"));
  CHECK(has("# TYPE test_prom_seconds summary"));
  // Quantiles are estimates: within 1% of 50 ms and 99 ms.
  auto value_of = [&text](const std::string &series) {
    size_t at = text.find("\n" + series + " ");
    if (at == std::string::npos) return -1.0;
    return std::strtod(text.c_str() + at + series.size() + 2, nullptr);
  };
  CHECK(value_of("test_prom_seconds{quantile=\"0.5\"}") ==
        Approx(0.050).epsilon(0.01));
  CHECK(value_of("test_prom_seconds{quantile=\"0.99\"}") ==
        Approx(0.099).epsilon(0.01));
  CHECK(has("test_prom_seconds_sum 5.05"));
  CHECK(has("test_prom_seconds_count 100"));
  CHECK(has("test_prom_empty_seconds{quantile=\"0.999\"} NaN"));
  CHECK(has("test_prom_empty_seconds_count 0"));
}

TEST_CASE("reset sets every metric back to zero", "[metrics]") {
  weft_counter *c = weft_metrics_counter("test_reset_total", "");
  weft_gauge *g = weft_metrics_gauge("test_reset_gauge", "");
  weft_histogram *h = weft_metrics_histogram("test_reset_values", "", 0);
  REQUIRE((c && g && h));
  weft_counter_add(c, 9);
  weft_gauge_set(g, 9);
  weft_gauge_add(g, 1);
  weft_histogram_record(h, 900);
  weft_metrics_reset();
  CHECK(weft_counter_value(c) == 0);
  CHECK(weft_gauge_value(g) == 0);
  weft_histogram_stats st;
  weft_histogram_read(h, &st);
  CHECK(st.count == 0);
  CHECK(st.max == 0);
  // The handles still work, and min starts afresh.
  weft_counter_inc(c);
  weft_histogram_record(h, 1000);
  CHECK(weft_counter_value(c) == 1);
  weft_histogram_read(h, &st);
  CHECK(st.min == 1000);
  CHECK(st.max == 1000);
}

TEST_CASE("errors are counted by code", "[metrics]") {
  weft_counter *reset = weft_metrics_counter_labeled("weft_errors_total", "",
                                                     "code", "ECONNRESET");
  weft_counter *closed =
      weft_metrics_counter_labeled("weft_errors_total", "", "code", "ECLOSED");
  REQUIRE((reset && closed));
  uint64_t r0 = weft_counter_value(reset), c0 = weft_counter_value(closed);
  weft__metrics_error(UV_ECONNRESET);
  weft__metrics_error(UV_ECONNRESET);
  weft__metrics_error(WEFT_ECLOSED);
  weft__metrics_error(0);
  weft__metrics_error(-1000000); // unknown: counted as "UNKNOWN"
  CHECK(weft_counter_value(reset) == r0 + 2);
  CHECK(weft_counter_value(closed) == c0 + 1);
  std::string text = take(weft_metrics_prometheus());
  CHECK(text.find("weft_errors_total{code=\"ECONNRESET\"}") !=
        std::string::npos);
  CHECK(text.find("weft_errors_total{code=\"UNKNOWN\"}") != std::string::npos);
}
