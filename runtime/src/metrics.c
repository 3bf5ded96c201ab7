/* metrics.c: the metrics registry, sharded updates, and the exporters. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef _WIN32
#include <pthread.h>
#endif

#include "internal.h"
#include "metrics_internal.h"

/* ---- Shards: one per updating thread ------------------------------------- */

/* Shard 0 is shared by every thread that found no free shard and is updated
 * with read-modify-write atomics; shards 1..63 each have one owner thread at
 * a time, which updates them with plain atomic loads and stores. The owner
 * is the only writer, so nothing is lost, and the loads and stores being
 * atomic keeps concurrent readers (and ThreadSanitizer) content. */
#define SHARDS 64

#ifndef _WIN32
/* Bit s set: shard s is owned. Bit 0 stands for the shared shard and is
 * always set. A thread that frees its shard releases the bit, and the next
 * owner acquires it, so the new owner sees every store of the old one. */
static uint64_t shards_taken = 1;
#endif
/* The calling thread's shard, or -1 before its first update. */
static WEFT__TLS int my_shard = -1;

#ifndef _WIN32
static pthread_key_t shard_key;
static int shard_key_ok;
static pthread_once_t shard_key_once = PTHREAD_ONCE_INIT;

static void shard_release(void *p) {
  int s = (int)(intptr_t)p;
  /* Destructors that run after this one may still update metrics: they go
   * to the shared shard from now on. */
  my_shard = 0;
  __atomic_fetch_and(&shards_taken, ~((uint64_t)1 << s), __ATOMIC_RELEASE);
}

static void shard_key_make(void) {
  shard_key_ok = pthread_key_create(&shard_key, shard_release) == 0;
}

static int shard_claim(void) {
  pthread_once(&shard_key_once, shard_key_make);
  my_shard = 0;
  if (!shard_key_ok) return 0;
  uint64_t taken = __atomic_load_n(&shards_taken, __ATOMIC_RELAXED);
  while (taken != UINT64_MAX) {
    int s = __builtin_ctzll(~taken);
    uint64_t want = taken | ((uint64_t)1 << s);
    if (__atomic_compare_exchange_n(&shards_taken, &taken, want, 0,
                                    __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) {
      if (pthread_setspecific(shard_key, (void *)(intptr_t)s) != 0) { /* NOLINT(performance-no-int-to-ptr): a shard index as a key */
        __atomic_fetch_and(&shards_taken, ~((uint64_t)1 << s),
                           __ATOMIC_RELEASE);
        return 0;
      }
      my_shard = s;
      return s;
    }
  }
  return 0;
}
#else
/* Without thread-exit hooks every thread shares shard 0. */
static int shard_claim(void) {
  my_shard = 0;
  return 0;
}
#endif

static inline int shard_index(void) {
  int s = my_shard;
  if (WEFT__UNLIKELY(s < 0)) s = shard_claim();
  return s;
}

/* ---- Histogram buckets --------------------------------------------------- */

/* Values below 64 have a bucket each. From 64 on, the values in
 * [2^e, 2^(e+1)) are split into 64 buckets of width 2^(e-6), so a bucket is
 * never wider than 1/64 of its lowest value, and its midpoint is within
 * 1/128 of any value in it. e = 6 gives width 1 too, hence exact below 128. */
#define SUB_BITS 6
#define SUB_COUNT (1u << SUB_BITS)
#define BUCKETS ((64 - SUB_BITS + 1) * SUB_COUNT) /* 3776 */

static inline unsigned bucket_of(uint64_t v) {
  if (v < SUB_COUNT) return (unsigned)v;
  unsigned e = 63u - (unsigned)__builtin_clzll(v);
  return ((e - SUB_BITS + 1) << SUB_BITS) +
         (unsigned)((v >> (e - SUB_BITS)) & (SUB_COUNT - 1));
}

/* The midpoint of bucket i: the value a quantile in it is reported as. */
static uint64_t bucket_mid(unsigned i) {
  if (i < 2 * SUB_COUNT) return i;
  unsigned e = (i >> SUB_BITS) + SUB_BITS - 1;
  uint64_t sub = i & (SUB_COUNT - 1);
  uint64_t width = (uint64_t)1 << (e - SUB_BITS);
  uint64_t lo = (SUB_COUNT + sub) << (e - SUB_BITS);
  return lo + (width - 1) / 2;
}

/* ---- Metrics and their shards -------------------------------------------- */

enum { KIND_COUNTER = 1, KIND_GAUGE, KIND_HISTOGRAM };

/* A counter's or gauge's shard: one value alone on its cache line. */
typedef struct cell {
  uint64_t v; /* a gauge's deltas, two's complement */
  char pad[56];
} cell;

/* A histogram's shard. */
typedef struct hist_shard {
  uint64_t count;
  uint64_t sum;
  uint64_t min; /* UINT64_MAX while empty */
  uint64_t max;
  char pad[32];
  uint64_t buckets[BUCKETS];
} hist_shard;

/* Every kind of metric is this one structure; the public handle types are
 * pointers to it under three names. */
typedef struct metric {
  int kind;
  char *name;
  char *help;  /* "" when none was given */
  char *label; /* NULL for an unlabelled series */
  char *value;
  double scale;        /* histograms: export multiplier */
  uint64_t gauge_base; /* gauges: the value minus the shards' deltas */
  void *shard[SHARDS]; /* cell or hist_shard, allocated on first use */
} metric;

struct weft_counter {
  metric m;
};
struct weft_gauge {
  metric m;
};
struct weft_histogram {
  metric m;
};

static void hist_shard_clear(hist_shard *h) {
  __atomic_store_n(&h->count, 0, __ATOMIC_RELAXED);
  __atomic_store_n(&h->sum, 0, __ATOMIC_RELAXED);
  __atomic_store_n(&h->min, UINT64_MAX, __ATOMIC_RELAXED);
  __atomic_store_n(&h->max, 0, __ATOMIC_RELAXED);
  for (unsigned i = 0; i < BUCKETS; i++)
    __atomic_store_n(&h->buckets[i], 0, __ATOMIC_RELAXED);
}

/* Allocates m's shard s (cache-line aligned) unless another thread got there
 * first. Returns the shard, or NULL when memory runs out (the update that
 * needed it is then dropped). */
static WEFT__COLD void *shard_alloc(metric *m, int s) {
  size_t size = m->kind == KIND_HISTOGRAM ? sizeof(hist_shard) : sizeof(cell);
  void *p = NULL;
  if (posix_memalign(&p, 64, size) != 0) return NULL;
  memset(p, 0, size);
  if (m->kind == KIND_HISTOGRAM) ((hist_shard *)p)->min = UINT64_MAX;
  void *expected = NULL;
  if (!__atomic_compare_exchange_n(&m->shard[s], &expected, p, 0,
                                   __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
    free(p);
    return expected;
  }
  return p;
}

static inline void *shard_get(metric *m, int s) {
  void *p = __atomic_load_n(&m->shard[s], __ATOMIC_ACQUIRE);
  if (WEFT__UNLIKELY(p == NULL)) p = shard_alloc(m, s);
  return p;
}

/* Adds n to a counter's or gauge's shard of the calling thread. */
static inline void cell_add(metric *m, uint64_t n) {
  int s = shard_index();
  cell *c = shard_get(m, s);
  if (WEFT__UNLIKELY(c == NULL)) return;
  if (WEFT__LIKELY(s != 0))
    __atomic_store_n(&c->v, __atomic_load_n(&c->v, __ATOMIC_RELAXED) + n,
                     __ATOMIC_RELAXED);
  else
    __atomic_fetch_add(&c->v, n, __ATOMIC_RELAXED);
}

/* The sum of every shard's cell. */
static uint64_t cell_sum(const metric *m) {
  uint64_t sum = 0;
  for (int s = 0; s < SHARDS; s++) {
    cell *c = __atomic_load_n(&m->shard[s], __ATOMIC_ACQUIRE);
    if (c != NULL) sum += __atomic_load_n(&c->v, __ATOMIC_RELAXED);
  }
  return sum;
}

void weft_counter_add(weft_counter *c, uint64_t n) {
  if (WEFT__UNLIKELY(c == NULL)) return;
  cell_add(&c->m, n);
}

void weft_counter_inc(weft_counter *c) {
  if (WEFT__UNLIKELY(c == NULL)) return;
  cell_add(&c->m, 1);
}

void weft_gauge_add(weft_gauge *g, int64_t delta) {
  if (WEFT__UNLIKELY(g == NULL)) return;
  cell_add(&g->m, (uint64_t)delta);
}

void weft_gauge_set(weft_gauge *g, int64_t v) {
  if (g == NULL) return;
  /* The shards keep their deltas; the base absorbs them so that base plus
   * deltas is v. Wrapping unsigned arithmetic makes negative values work. */
  __atomic_store_n(&g->m.gauge_base, (uint64_t)v - cell_sum(&g->m),
                   __ATOMIC_RELAXED);
}

uint64_t weft_counter_value(const weft_counter *c) {
  return c == NULL ? 0 : cell_sum(&c->m);
}

int64_t weft_gauge_value(const weft_gauge *g) {
  if (g == NULL) return 0;
  uint64_t base = __atomic_load_n(&g->m.gauge_base, __ATOMIC_RELAXED);
  return (int64_t)(base + cell_sum(&g->m));
}

void weft_histogram_record(weft_histogram *hg, uint64_t v) {
  if (WEFT__UNLIKELY(hg == NULL)) return;
  int s = shard_index();
  hist_shard *h = shard_get(&hg->m, s);
  if (WEFT__UNLIKELY(h == NULL)) return;
  uint64_t *b = &h->buckets[bucket_of(v)];
  if (WEFT__LIKELY(s != 0)) {
    __atomic_store_n(b, __atomic_load_n(b, __ATOMIC_RELAXED) + 1,
                     __ATOMIC_RELAXED);
    __atomic_store_n(&h->count,
                     __atomic_load_n(&h->count, __ATOMIC_RELAXED) + 1,
                     __ATOMIC_RELAXED);
    __atomic_store_n(&h->sum, __atomic_load_n(&h->sum, __ATOMIC_RELAXED) + v,
                     __ATOMIC_RELAXED);
    if (v < __atomic_load_n(&h->min, __ATOMIC_RELAXED))
      __atomic_store_n(&h->min, v, __ATOMIC_RELAXED);
    if (v > __atomic_load_n(&h->max, __ATOMIC_RELAXED))
      __atomic_store_n(&h->max, v, __ATOMIC_RELAXED);
    return;
  }
  __atomic_fetch_add(b, 1, __ATOMIC_RELAXED);
  __atomic_fetch_add(&h->count, 1, __ATOMIC_RELAXED);
  __atomic_fetch_add(&h->sum, v, __ATOMIC_RELAXED);
  uint64_t cur = __atomic_load_n(&h->min, __ATOMIC_RELAXED);
  while (v < cur &&
         !__atomic_compare_exchange_n(&h->min, &cur, v, 1, __ATOMIC_RELAXED,
                                      __ATOMIC_RELAXED)) {
  }
  cur = __atomic_load_n(&h->max, __ATOMIC_RELAXED);
  while (v > cur &&
         !__atomic_compare_exchange_n(&h->max, &cur, v, 1, __ATOMIC_RELAXED,
                                      __ATOMIC_RELAXED)) {
  }
}

/* ---- Reading histograms -------------------------------------------------- */

/* A histogram merged over its shards. */
typedef struct hist_merged {
  uint64_t count; /* the buckets' total, which the ranks use */
  uint64_t sum;
  uint64_t min;
  uint64_t max;
  uint64_t buckets[BUCKETS];
} hist_merged;

static void hist_merge(const metric *m, hist_merged *out) {
  memset(out, 0, sizeof *out);
  out->min = UINT64_MAX;
  for (int s = 0; s < SHARDS; s++) {
    hist_shard *h = __atomic_load_n(&m->shard[s], __ATOMIC_ACQUIRE);
    if (h == NULL) continue;
    out->sum += __atomic_load_n(&h->sum, __ATOMIC_RELAXED);
    uint64_t mn = __atomic_load_n(&h->min, __ATOMIC_RELAXED);
    uint64_t mx = __atomic_load_n(&h->max, __ATOMIC_RELAXED);
    if (mn < out->min) out->min = mn;
    if (mx > out->max) out->max = mx;
    for (unsigned i = 0; i < BUCKETS; i++) {
      uint64_t n = __atomic_load_n(&h->buckets[i], __ATOMIC_RELAXED);
      out->buckets[i] += n;
      out->count += n;
    }
  }
  if (out->count == 0) out->min = out->max = 0;
}

/* The nearest rank of quantile q among count values: ceil(q * count),
 * between 1 and count. */
static uint64_t quantile_rank(double q, uint64_t count) {
  if (!(q > 0)) return 1;
  if (q >= 1) return count;
  double r = ceil(q * (double)count);
  if (r < 1) return 1;
  if (r >= (double)count) return count;
  return (uint64_t)r;
}

/* Fills values[k] with the estimate of quantile qs[k], for n quantiles in
 * increasing order, in one walk over the buckets. */
static void hist_quantiles(const hist_merged *h, const double *qs,
                           uint64_t *values, int n) {
  if (h->count == 0) {
    for (int k = 0; k < n; k++) values[k] = 0;
    return;
  }
  uint64_t seen = 0;
  unsigned i = 0;
  for (int k = 0; k < n; k++) {
    uint64_t rank = quantile_rank(qs[k], h->count);
    while (i < BUCKETS && seen + h->buckets[i] < rank) seen += h->buckets[i++];
    uint64_t v = i < BUCKETS ? bucket_mid(i) : h->max;
    /* The extremes are known exactly: the first and last ranks are them,
     * and no estimate lies outside them. */
    if (rank == 1 || v < h->min) v = h->min;
    if (rank == h->count || v > h->max) v = h->max;
    values[k] = v;
  }
}

static const double export_qs[4] = {0.5, 0.9, 0.99, 0.999};

void weft_histogram_read(const weft_histogram *hg, weft_histogram_stats *out) {
  memset(out, 0, sizeof *out);
  if (hg == NULL) return;
  hist_merged *h = malloc(sizeof *h);
  if (h == NULL) return;
  hist_merge(&hg->m, h);
  uint64_t v[4];
  hist_quantiles(h, export_qs, v, 4);
  out->count = h->count;
  out->sum = h->sum;
  out->min = h->min;
  out->max = h->max;
  out->p50 = v[0];
  out->p90 = v[1];
  out->p99 = v[2];
  out->p999 = v[3];
  free(h);
}

uint64_t weft_histogram_quantile(const weft_histogram *hg, double q) {
  if (hg == NULL) return 0;
  hist_merged *h = malloc(sizeof *h);
  if (h == NULL) return 0;
  hist_merge(&hg->m, h);
  uint64_t v;
  hist_quantiles(h, &q, &v, 1);
  free(h);
  return v;
}

/* ---- The registry -------------------------------------------------------- */

static uv_once_t registry_once = UV_ONCE_INIT;
static uv_mutex_t registry_lock;
/* Every metric, sorted by name, then label, then value, so that a family's
 * series are adjacent and exports come out in a stable order. */
static metric **registry;
static size_t registry_len;
static size_t registry_cap;

static void registry_init(void) {
  if (uv_mutex_init(&registry_lock) != 0) abort();
}

int weft_metrics_valid_name(const char *name) {
  if (name == NULL || *name == '\0') return 0;
  for (const char *p = name; *p; p++) {
    char c = *p;
    int alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                c == ':';
    if (!alpha && !(p > name && c >= '0' && c <= '9')) return 0;
  }
  return 1;
}

static int valid_label(const char *label, int kind) {
  if (label == NULL || *label == '\0') return 0;
  if (label[0] == '_' && label[1] == '_') return 0;
  if (kind == KIND_HISTOGRAM && strcmp(label, "quantile") == 0) return 0;
  for (const char *p = label; *p; p++) {
    char c = *p;
    int alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
    if (!alpha && !(p > label && c >= '0' && c <= '9')) return 0;
  }
  return 1;
}

static int series_cmp(const char *name, const char *label, const char *value,
                      const metric *m) {
  int c = strcmp(name, m->name);
  if (c != 0) return c;
  c = strcmp(label ? label : "", m->label ? m->label : "");
  if (c != 0) return c;
  return strcmp(value ? value : "", m->value ? m->value : "");
}

static char *dup_or_null(const char *s) { return s == NULL ? NULL : strdup(s); }

static void metric_free(metric *m) {
  free(m->name);
  free(m->help);
  free(m->label);
  free(m->value);
  free(m);
}

/* Finds or registers a series. Returns NULL for a bad name or label, a kind
 * that differs from the family's, or no memory. */
static metric *metric_get(int kind, const char *name, const char *help,
                          const char *label, const char *value, double scale) {
  if (!weft_metrics_valid_name(name)) return NULL;
  if ((label != NULL || value != NULL) &&
      (!valid_label(label, kind) || value == NULL))
    return NULL;
  uv_once(&registry_once, registry_init);
  uv_mutex_lock(&registry_lock);
  metric *found = NULL;
  size_t at = registry_len;
  int clash = 0;
  for (size_t i = 0; i < registry_len; i++) {
    metric *m = registry[i];
    int c = series_cmp(name, label, value, m);
    if (strcmp(name, m->name) == 0 && m->kind != kind) clash = 1;
    if (c == 0) found = m;
    if (c < 0 && at == registry_len) at = i;
  }
  if (clash || found != NULL) {
    uv_mutex_unlock(&registry_lock);
    return clash ? NULL : found;
  }
  metric *m = calloc(1, sizeof *m);
  if (m == NULL) goto oom;
  m->kind = kind;
  m->scale = scale > 0 ? scale : 1.0;
  m->name = strdup(name);
  m->help = strdup(help ? help : "");
  m->label = dup_or_null(label);
  m->value = dup_or_null(value);
  if (m->name == NULL || m->help == NULL || (label && !m->label) ||
      (value && !m->value))
    goto oom;
  if (registry_len == registry_cap) {
    size_t cap = registry_cap ? registry_cap * 2 : 64;
    metric **r = realloc(registry, cap * sizeof *r);
    if (r == NULL) goto oom;
    registry = r;
    registry_cap = cap;
  }
  memmove(registry + at + 1, registry + at,
          (registry_len - at) * sizeof *registry);
  registry[at] = m;
  registry_len++;
  uv_mutex_unlock(&registry_lock);
  return m;
oom:
  uv_mutex_unlock(&registry_lock);
  if (m != NULL) metric_free(m);
  return NULL;
}

weft_counter *weft_metrics_counter(const char *name, const char *help) {
  return (weft_counter *)metric_get(KIND_COUNTER, name, help, NULL, NULL, 1);
}

weft_counter *weft_metrics_counter_labeled(const char *name, const char *help,
                                           const char *label,
                                           const char *value) {
  if (label == NULL) return NULL;
  return (weft_counter *)metric_get(KIND_COUNTER, name, help, label, value, 1);
}

weft_gauge *weft_metrics_gauge(const char *name, const char *help) {
  return (weft_gauge *)metric_get(KIND_GAUGE, name, help, NULL, NULL, 1);
}

weft_gauge *weft_metrics_gauge_labeled(const char *name, const char *help,
                                       const char *label, const char *value) {
  if (label == NULL) return NULL;
  return (weft_gauge *)metric_get(KIND_GAUGE, name, help, label, value, 1);
}

weft_histogram *weft_metrics_histogram(const char *name, const char *help,
                                       double scale) {
  return (weft_histogram *)metric_get(KIND_HISTOGRAM, name, help, NULL, NULL,
                                      scale);
}

weft_histogram *weft_metrics_histogram_labeled(const char *name,
                                               const char *help, double scale,
                                               const char *label,
                                               const char *value) {
  if (label == NULL) return NULL;
  return (weft_histogram *)metric_get(KIND_HISTOGRAM, name, help, label, value,
                                      scale);
}

void weft_metrics_reset(void) {
  uv_once(&registry_once, registry_init);
  uv_mutex_lock(&registry_lock);
  for (size_t i = 0; i < registry_len; i++) {
    metric *m = registry[i];
    __atomic_store_n(&m->gauge_base, 0, __ATOMIC_RELAXED);
    for (int s = 0; s < SHARDS; s++) {
      void *p = __atomic_load_n(&m->shard[s], __ATOMIC_ACQUIRE);
      if (p == NULL) continue;
      if (m->kind == KIND_HISTOGRAM)
        hist_shard_clear(p);
      else
        __atomic_store_n(&((cell *)p)->v, 0, __ATOMIC_RELAXED);
    }
  }
  uv_mutex_unlock(&registry_lock);
}

/* ---- Built-in metrics ---------------------------------------------------- */

weft_counter *weft__m_tasks_spawned;
weft_gauge *weft__m_tasks_alive;
weft_counter *weft__m_context_switches;
weft_histogram *weft__m_loop_turn;
weft_histogram *weft__m_loop_lag;
weft_counter *weft__m_chan_sends;
weft_counter *weft__m_chan_recvs;
weft_counter *weft__m_bytes_read;
weft_counter *weft__m_bytes_written;
weft_counter *weft__m_idle_spin;
weft_counter *weft__m_idle_sleep;
weft_counter *weft__m_watch_done;
weft_counter *weft__m_watch_parked;

static uv_once_t builtin_once = UV_ONCE_INIT;

static void builtin_register(void) {
  weft__m_tasks_spawned =
      weft_metrics_counter("weft_tasks_spawned_total", "Tasks started.");
  weft__m_tasks_alive = weft_metrics_gauge("weft_tasks_alive",
                                           "Tasks started and not yet ended.");
  weft__m_context_switches =
      weft_metrics_counter("weft_context_switches_total",
                           "Switches into a task or back to the loop.");
  weft__m_loop_turn = weft_metrics_histogram(
      "weft_loop_turn_seconds",
      "Time an executor spends running ready tasks between two polls.", 1e-9);
  weft__m_loop_lag = weft_metrics_histogram(
      "weft_loop_lag_seconds", "How late timers fire after their deadline.",
      1e-9);
  const char *chan_help =
      "Completed channel operations (rings count in steps of 64).";
  weft__m_chan_sends = weft_metrics_counter_labeled("weft_chan_ops_total",
                                                    chan_help, "op", "send");
  weft__m_chan_recvs = weft_metrics_counter_labeled("weft_chan_ops_total",
                                                    chan_help, "op", "recv");
  weft__m_bytes_read = weft_metrics_counter(
      "weft_io_read_bytes_total", "Bytes read from sockets and files.");
  weft__m_bytes_written = weft_metrics_counter(
      "weft_io_written_bytes_total", "Bytes written to sockets and files.");
  const char *idle_help =
      "How the idle spells of an executor of several ended: work came while "
      "it watched its inbox (spin), or it slept in its poll (sleep).";
  weft__m_idle_spin = weft_metrics_counter_labeled("weft_executor_idle_total",
                                                   idle_help, "end", "spin");
  weft__m_idle_sleep = weft_metrics_counter_labeled("weft_executor_idle_total",
                                                    idle_help, "end", "sleep");
  const char *watch_help =
      "How the watches of tasks waiting on a rendezvous across executors "
      "ended: the partner came while the task watched (done), or it parked.";
  weft__m_watch_done = weft_metrics_counter_labeled("weft_chan_watch_total",
                                                    watch_help, "end", "done");
  weft__m_watch_parked = weft_metrics_counter_labeled("weft_chan_watch_total",
                                                      watch_help, "end", "parked");
}

void weft__metrics_builtin_init(void) {
  uv_once(&builtin_once, builtin_register);
}

/* The series of each error code, looked up once per code. libuv's codes are
 * negated errno values (below 4096 on every system libuv supports) and
 * getaddrinfo codes around -3000; weft's own start at -30001. Anything else
 * goes through the registry every time, which is slower but still right. */
#define ERR_SYS_MAX 4096
#define ERR_WEFT_MAX 64
static weft_counter *err_sys[ERR_SYS_MAX];
static weft_counter *err_weft[ERR_WEFT_MAX];

void weft__metrics_error(int code) {
  if (code >= 0) return;
  weft_counter **slot = NULL;
  if (code > -ERR_SYS_MAX)
    slot = &err_sys[-code];
  else if (code < -30000 && code > -30000 - ERR_WEFT_MAX)
    slot = &err_weft[-code - 30000];
  weft_counter *c = slot ? __atomic_load_n(slot, __ATOMIC_ACQUIRE) : NULL;
  if (WEFT__UNLIKELY(c == NULL)) {
    c = weft_metrics_counter_labeled("weft_errors_total",
                                     "Errors returned by weft calls, by code.",
                                     "code", weft_err_name(code));
    if (slot != NULL) __atomic_store_n(slot, c, __ATOMIC_RELEASE);
  }
  weft_counter_inc(c);
}

/* ---- Export -------------------------------------------------------------- */

/* A growing string. Out of memory sticks: every later append is dropped and
 * the caller sees failed set. */
typedef struct strbuf {
  char *p;
  size_t len;
  size_t cap;
  int failed;
} strbuf;

static int sb_reserve(strbuf *b, size_t more) {
  if (b->failed) return 0;
  if (b->len + more + 1 <= b->cap) return 1;
  size_t cap = b->cap ? b->cap : 4096;
  while (cap < b->len + more + 1) cap *= 2;
  char *p = realloc(b->p, cap);
  if (p == NULL) {
    b->failed = 1;
    return 0;
  }
  b->p = p;
  b->cap = cap;
  return 1;
}

static void sb_put(strbuf *b, const char *s, size_t n) {
  if (!sb_reserve(b, n)) return;
  memcpy(b->p + b->len, s, n);
  b->len += n;
  b->p[b->len] = '\0';
}

static void sb_puts(strbuf *b, const char *s) { sb_put(b, s, strlen(s)); }

static void sb_printf(strbuf *b, const char *fmt, ...) {
  char tmp[128];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  if (n < 0) {
    b->failed = 1;
    return;
  }
  /* Every format used here fits in tmp. */
  sb_put(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

/* Appends a number. Integral values are printed as integers; a locale with
 * a decimal comma is undone, as both formats need a point. */
static void sb_double(strbuf *b, double v, int json) {
  if (!isfinite(v)) {
    if (json)
      sb_puts(b, "0");
    else
      sb_puts(b, isnan(v) ? "NaN" : v > 0 ? "+Inf" : "-Inf");
    return;
  }
  char tmp[64];
  snprintf(tmp, sizeof tmp, "%.12g", v);
  for (char *p = tmp; *p; p++)
    if (*p == ',') *p = '.';
  sb_puts(b, tmp);
}

/* Appends v of a histogram with the given scale: exact when scale is 1. */
static void sb_scaled(strbuf *b, uint64_t v, double scale, int json) {
  if (scale == 1.0)
    sb_printf(b, "%llu", (unsigned long long)v);
  else
    sb_double(b, (double)v * scale, json);
}

/* Appends s as the inside of a JSON string. */
static void sb_json_escape(strbuf *b, const char *s) {
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') {
      char esc[2] = {'\\', (char)c};
      sb_put(b, esc, 2);
    } else if (c < 0x20) {
      sb_printf(b, "\\u%04x", c);
    } else {
      sb_put(b, (const char *)&c, 1);
    }
  }
}

/* Appends s escaped for a Prometheus label value (\\, \" and \n) or, with
 * help set, for a # HELP line (\\ and \n). */
static void sb_prom_escape(strbuf *b, const char *s, int help) {
  for (; *s; s++) {
    if (*s == '\\')
      sb_puts(b, "\\\\");
    else if (*s == '\n')
      sb_puts(b, "\\n");
    else if (*s == '"' && !help)
      sb_puts(b, "\\\"");
    else
      sb_put(b, s, 1);
  }
}

/* Appends m's Prometheus series name with suffix after the name and an
 * optional extra label (the quantile), such as
 * name_sum{code="ECONNRESET"} or name{quantile="0.5"}. */
static void sb_series(strbuf *b, const metric *m, const char *suffix,
                      const char *extra_label, const char *extra_value) {
  sb_puts(b, m->name);
  sb_puts(b, suffix);
  if (m->label == NULL && extra_label == NULL) return;
  sb_puts(b, "{");
  if (m->label != NULL) {
    sb_puts(b, m->label);
    sb_puts(b, "=\"");
    sb_prom_escape(b, m->value, 0);
    sb_puts(b, "\"");
  }
  if (extra_label != NULL) {
    if (m->label != NULL) sb_puts(b, ",");
    sb_puts(b, extra_label);
    sb_puts(b, "=\"");
    sb_puts(b, extra_value);
    sb_puts(b, "\"");
  }
  sb_puts(b, "}");
}

/* Appends m's series name as a JSON key (with its colon). */
static void sb_json_key(strbuf *b, const metric *m) {
  strbuf name = {0};
  sb_series(&name, m, "", NULL, NULL);
  sb_puts(b, "\"");
  if (name.failed)
    b->failed = 1;
  else
    sb_json_escape(b, name.p);
  sb_puts(b, "\":");
  free(name.p);
}

static void json_section(strbuf *b, int kind, hist_merged *scratch) {
  int first = 1;
  sb_puts(b, "{");
  for (size_t i = 0; i < registry_len; i++) {
    const metric *m = registry[i];
    if (m->kind != kind) continue;
    if (!first) sb_puts(b, ",");
    first = 0;
    sb_json_key(b, m);
    if (kind == KIND_COUNTER) {
      sb_printf(b, "%llu", (unsigned long long)cell_sum(m));
    } else if (kind == KIND_GAUGE) {
      sb_printf(b, "%lld", (long long)weft_gauge_value((const weft_gauge *)m));
    } else {
      uint64_t q[4];
      hist_merge(m, scratch);
      hist_quantiles(scratch, export_qs, q, 4);
      sb_printf(b,
                "{\"count\":%llu,\"sum\":", (unsigned long long)scratch->count);
      sb_scaled(b, scratch->sum, m->scale, 1);
      sb_puts(b, ",\"min\":");
      sb_scaled(b, scratch->min, m->scale, 1);
      sb_puts(b, ",\"max\":");
      sb_scaled(b, scratch->max, m->scale, 1);
      static const char *keys[4] = {"p50", "p90", "p99", "p999"};
      for (int k = 0; k < 4; k++) {
        sb_printf(b, ",\"%s\":", keys[k]);
        sb_scaled(b, q[k], m->scale, 1);
      }
      sb_puts(b, "}");
    }
  }
  sb_puts(b, "}");
}

/* Builds the JSON export, with a newline at the end if asked. */
static char *json_build(int newline, size_t *len) {
  weft__metrics_builtin_init();
  hist_merged *scratch = malloc(sizeof *scratch);
  if (scratch == NULL) return NULL;
  strbuf b = {0};
  uv_once(&registry_once, registry_init);
  uv_mutex_lock(&registry_lock);
  sb_puts(&b, "{\"counters\":");
  json_section(&b, KIND_COUNTER, scratch);
  sb_puts(&b, ",\"gauges\":");
  json_section(&b, KIND_GAUGE, scratch);
  sb_puts(&b, ",\"histograms\":");
  json_section(&b, KIND_HISTOGRAM, scratch);
  sb_puts(&b, newline ? "}\n" : "}");
  uv_mutex_unlock(&registry_lock);
  free(scratch);
  if (b.failed) {
    free(b.p);
    return NULL;
  }
  if (len != NULL) *len = b.len;
  return b.p;
}

char *weft_metrics_json(void) { return json_build(0, NULL); }

char *weft_metrics_prometheus(void) {
  static const char *quantile_names[4] = {"0.5", "0.9", "0.99", "0.999"};
  static const char *type_names[4] = {"", "counter", "gauge", "summary"};
  weft__metrics_builtin_init();
  hist_merged *scratch = malloc(sizeof *scratch);
  if (scratch == NULL) return NULL;
  strbuf b = {0};
  uv_once(&registry_once, registry_init);
  uv_mutex_lock(&registry_lock);
  for (size_t i = 0; i < registry_len; i++) {
    const metric *m = registry[i];
    if (i == 0 || strcmp(registry[i - 1]->name, m->name) != 0) {
      /* A family's first series: the help of the first series that has one. */
      const char *help = m->help;
      for (size_t j = i; *help == '\0' && j < registry_len &&
                         strcmp(registry[j]->name, m->name) == 0;
           j++)
        help = registry[j]->help;
      if (*help != '\0') {
        sb_printf(&b, "# HELP %s ", m->name);
        sb_prom_escape(&b, help, 1);
        sb_puts(&b, "\n");
      }
      sb_printf(&b, "# TYPE %s %s\n", m->name, type_names[m->kind]);
    }
    if (m->kind == KIND_COUNTER || m->kind == KIND_GAUGE) {
      sb_series(&b, m, "", NULL, NULL);
      if (m->kind == KIND_COUNTER)
        sb_printf(&b, " %llu\n", (unsigned long long)cell_sum(m));
      else
        sb_printf(&b, " %lld\n",
                  (long long)weft_gauge_value((const weft_gauge *)m));
      continue;
    }
    uint64_t q[4];
    hist_merge(m, scratch);
    hist_quantiles(scratch, export_qs, q, 4);
    for (int k = 0; k < 4; k++) {
      sb_series(&b, m, "", "quantile", quantile_names[k]);
      sb_puts(&b, " ");
      if (scratch->count == 0)
        sb_puts(&b, "NaN");
      else
        sb_scaled(&b, q[k], m->scale, 0);
      sb_puts(&b, "\n");
    }
    sb_series(&b, m, "_sum", NULL, NULL);
    sb_puts(&b, " ");
    sb_scaled(&b, scratch->sum, m->scale, 0);
    sb_puts(&b, "\n");
    sb_series(&b, m, "_count", NULL, NULL);
    sb_printf(&b, " %llu\n", (unsigned long long)scratch->count);
  }
  uv_mutex_unlock(&registry_lock);
  free(scratch);
  if (b.failed || b.p == NULL) {
    /* An empty registry still gives a string. */
    if (!b.failed && b.p == NULL) return strdup("");
    free(b.p);
    return NULL;
  }
  return b.p;
}

/* ---- Dump on a signal ---------------------------------------------------- */

int weft_metrics_serve_signal(int signum, int fd) {
  for (;;) {
    int r = weft_signal_wait(&signum, 1);
    if (r < 0) return r;
    size_t len = 0;
    char *json = json_build(1, &len);
    if (json == NULL) return UV_ENOMEM;
    size_t off = 0;
    while (off < len) {
      ssize_t n = weft_file_write(fd, json + off, len - off, -1);
      if (n <= 0) {
        free(json);
        return n < 0 ? (int)n : UV_EIO;
      }
      off += (size_t)n;
    }
    free(json);
  }
}
