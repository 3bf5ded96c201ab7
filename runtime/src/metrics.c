/* metrics.c: the metrics registry and the sharded updates of the hot path.
 * The exporters (JSON, Prometheus text) are metrics_export.c. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef _WIN32
#include <pthread.h>
#endif

#include "metrics_registry.h"

/* ---- Shards: one per updating thread ------------------------------------- */


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

static inline unsigned bucket_of(uint64_t v) {
  if (v < WEFT__SUB_COUNT) return (unsigned)v;
  unsigned e = 63u - (unsigned)__builtin_clzll(v);
  return ((e - WEFT__SUB_BITS + 1) << WEFT__SUB_BITS) +
         (unsigned)((v >> (e - WEFT__SUB_BITS)) & (WEFT__SUB_COUNT - 1));
}

/* The midpoint of bucket i: the value a quantile in it is reported as. */
static uint64_t bucket_mid(unsigned i) {
  if (i < 2 * WEFT__SUB_COUNT) return i;
  unsigned e = (i >> WEFT__SUB_BITS) + WEFT__SUB_BITS - 1;
  uint64_t sub = i & (WEFT__SUB_COUNT - 1);
  uint64_t width = (uint64_t)1 << (e - WEFT__SUB_BITS);
  uint64_t lo = (WEFT__SUB_COUNT + sub) << (e - WEFT__SUB_BITS);
  return lo + (width - 1) / 2;
}

/* ---- Metrics and their shards -------------------------------------------- */

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
  uint64_t buckets[WEFT__BUCKETS];
} hist_shard;

struct weft_counter {
  weft__metric m;
};
struct weft_gauge {
  weft__metric m;
};
struct weft_histogram {
  weft__metric m;
};

static void hist_shard_clear(hist_shard *h) {
  __atomic_store_n(&h->count, 0, __ATOMIC_RELAXED);
  __atomic_store_n(&h->sum, 0, __ATOMIC_RELAXED);
  __atomic_store_n(&h->min, UINT64_MAX, __ATOMIC_RELAXED);
  __atomic_store_n(&h->max, 0, __ATOMIC_RELAXED);
  for (unsigned i = 0; i < WEFT__BUCKETS; i++)
    __atomic_store_n(&h->buckets[i], 0, __ATOMIC_RELAXED);
}

/* Allocates m's shard s (cache-line aligned) unless another thread got there
 * first. Returns the shard, or NULL when memory runs out (the update that
 * needed it is then dropped). */
static WEFT__COLD void *shard_alloc(weft__metric *m, int s) {
  size_t size = m->kind == WEFT__KIND_HISTOGRAM ? sizeof(hist_shard) : sizeof(cell);
  void *p = NULL;
  if (posix_memalign(&p, 64, size) != 0) return NULL;
  memset(p, 0, size);
  if (m->kind == WEFT__KIND_HISTOGRAM) ((hist_shard *)p)->min = UINT64_MAX;
  void *expected = NULL;
  if (!__atomic_compare_exchange_n(&m->shard[s], &expected, p, 0,
                                   __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
    free(p);
    return expected;
  }
  return p;
}

static inline void *shard_get(weft__metric *m, int s) {
  void *p = __atomic_load_n(&m->shard[s], __ATOMIC_ACQUIRE);
  if (WEFT__UNLIKELY(p == NULL)) p = shard_alloc(m, s);
  return p;
}

/* Adds n to a counter's or gauge's shard of the calling thread. */
static inline void cell_add(weft__metric *m, uint64_t n) {
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
uint64_t weft__cell_sum(const weft__metric *m) {
  uint64_t sum = 0;
  for (int s = 0; s < WEFT__SHARDS; s++) {
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
  __atomic_store_n(&g->m.gauge_base, (uint64_t)v - weft__cell_sum(&g->m),
                   __ATOMIC_RELAXED);
}

uint64_t weft_counter_value(const weft_counter *c) {
  return c == NULL ? 0 : weft__cell_sum(&c->m);
}

int64_t weft_gauge_value(const weft_gauge *g) {
  if (g == NULL) return 0;
  uint64_t base = __atomic_load_n(&g->m.gauge_base, __ATOMIC_RELAXED);
  return (int64_t)(base + weft__cell_sum(&g->m));
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

void weft__hist_merge(const weft__metric *m, weft__hist_merged *out) {
  memset(out, 0, sizeof *out);
  out->min = UINT64_MAX;
  for (int s = 0; s < WEFT__SHARDS; s++) {
    hist_shard *h = __atomic_load_n(&m->shard[s], __ATOMIC_ACQUIRE);
    if (h == NULL) continue;
    out->sum += __atomic_load_n(&h->sum, __ATOMIC_RELAXED);
    uint64_t mn = __atomic_load_n(&h->min, __ATOMIC_RELAXED);
    uint64_t mx = __atomic_load_n(&h->max, __ATOMIC_RELAXED);
    if (mn < out->min) out->min = mn;
    if (mx > out->max) out->max = mx;
    for (unsigned i = 0; i < WEFT__BUCKETS; i++) {
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
void weft__hist_quantiles(const weft__hist_merged *h, const double *qs, uint64_t *values,
                          int n) {
  if (h->count == 0) {
    for (int k = 0; k < n; k++) values[k] = 0;
    return;
  }
  uint64_t seen = 0;
  unsigned i = 0;
  for (int k = 0; k < n; k++) {
    uint64_t rank = quantile_rank(qs[k], h->count);
    while (i < WEFT__BUCKETS && seen + h->buckets[i] < rank) seen += h->buckets[i++];
    uint64_t v = i < WEFT__BUCKETS ? bucket_mid(i) : h->max;
    /* The extremes are known exactly: the first and last ranks are them,
     * and no estimate lies outside them. */
    if (rank == 1 || v < h->min) v = h->min;
    if (rank == h->count || v > h->max) v = h->max;
    values[k] = v;
  }
}

const double weft__export_qs[4] = {0.5, 0.9, 0.99, 0.999};

void weft_histogram_read(const weft_histogram *hg, weft_histogram_stats *out) {
  memset(out, 0, sizeof *out);
  if (hg == NULL) return;
  weft__hist_merged *h = malloc(sizeof *h);
  if (h == NULL) return;
  weft__hist_merge(&hg->m, h);
  uint64_t v[4];
  weft__hist_quantiles(h, weft__export_qs, v, 4);
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
  weft__hist_merged *h = malloc(sizeof *h);
  if (h == NULL) return 0;
  weft__hist_merge(&hg->m, h);
  uint64_t v;
  weft__hist_quantiles(h, &q, &v, 1);
  free(h);
  return v;
}

/* ---- The registry -------------------------------------------------------- */

static uv_once_t registry_once = UV_ONCE_INIT;
static uv_mutex_t registry_lock;
/* Every metric, sorted by name, then label, then value, so that a family's
 * series are adjacent and exports come out in a stable order. */
static weft__metric **registry;
static size_t registry_len;
static size_t registry_cap;

static void registry_init(void) {
  if (uv_mutex_init(&registry_lock) != 0) abort();
}

weft__metric *const *weft__metrics_lock(size_t *len) {
  uv_once(&registry_once, registry_init);
  uv_mutex_lock(&registry_lock);
  *len = registry_len;
  return registry;
}

void weft__metrics_unlock(void) { uv_mutex_unlock(&registry_lock); }

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
  if (kind == WEFT__KIND_HISTOGRAM && strcmp(label, "quantile") == 0) return 0;
  for (const char *p = label; *p; p++) {
    char c = *p;
    int alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
    if (!alpha && !(p > label && c >= '0' && c <= '9')) return 0;
  }
  return 1;
}

static int series_cmp(const char *name, const char *label, const char *value,
                      const weft__metric *m) {
  int c = strcmp(name, m->name);
  if (c != 0) return c;
  c = strcmp(label ? label : "", m->label ? m->label : "");
  if (c != 0) return c;
  return strcmp(value ? value : "", m->value ? m->value : "");
}

static char *dup_or_null(const char *s) { return s == NULL ? NULL : strdup(s); }

static void metric_free(weft__metric *m) {
  free(m->name);
  free(m->help);
  free(m->label);
  free(m->value);
  free(m);
}

/* Finds or registers a series. Returns NULL for a bad name or label, a kind
 * that differs from the family's, or no memory. */
static weft__metric *metric_get(int kind, const char *name, const char *help,
                          const char *label, const char *value, double scale) {
  if (!weft_metrics_valid_name(name)) return NULL;
  if ((label != NULL || value != NULL) &&
      (!valid_label(label, kind) || value == NULL))
    return NULL;
  uv_once(&registry_once, registry_init);
  uv_mutex_lock(&registry_lock);
  weft__metric *found = NULL;
  size_t at = registry_len;
  int clash = 0;
  for (size_t i = 0; i < registry_len; i++) {
    weft__metric *m = registry[i];
    int c = series_cmp(name, label, value, m);
    if (strcmp(name, m->name) == 0 && m->kind != kind) clash = 1;
    if (c == 0) found = m;
    if (c < 0 && at == registry_len) at = i;
  }
  if (clash || found != NULL) {
    uv_mutex_unlock(&registry_lock);
    return clash ? NULL : found;
  }
  weft__metric *m = calloc(1, sizeof *m);
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
    weft__metric **r = realloc(registry, cap * sizeof *r);
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
  return (weft_counter *)metric_get(WEFT__KIND_COUNTER, name, help, NULL, NULL, 1);
}

weft_counter *weft_metrics_counter_labeled(const char *name, const char *help,
                                           const char *label,
                                           const char *value) {
  if (label == NULL) return NULL;
  return (weft_counter *)metric_get(WEFT__KIND_COUNTER, name, help, label, value, 1);
}

weft_gauge *weft_metrics_gauge(const char *name, const char *help) {
  return (weft_gauge *)metric_get(WEFT__KIND_GAUGE, name, help, NULL, NULL, 1);
}

weft_gauge *weft_metrics_gauge_labeled(const char *name, const char *help,
                                       const char *label, const char *value) {
  if (label == NULL) return NULL;
  return (weft_gauge *)metric_get(WEFT__KIND_GAUGE, name, help, label, value, 1);
}

weft_histogram *weft_metrics_histogram(const char *name, const char *help,
                                       double scale) {
  return (weft_histogram *)metric_get(WEFT__KIND_HISTOGRAM, name, help, NULL, NULL,
                                      scale);
}

weft_histogram *weft_metrics_histogram_labeled(const char *name,
                                               const char *help, double scale,
                                               const char *label,
                                               const char *value) {
  if (label == NULL) return NULL;
  return (weft_histogram *)metric_get(WEFT__KIND_HISTOGRAM, name, help, label, value,
                                      scale);
}

void weft_metrics_reset(void) {
  uv_once(&registry_once, registry_init);
  uv_mutex_lock(&registry_lock);
  for (size_t i = 0; i < registry_len; i++) {
    weft__metric *m = registry[i];
    __atomic_store_n(&m->gauge_base, 0, __ATOMIC_RELAXED);
    for (int s = 0; s < WEFT__SHARDS; s++) {
      void *p = __atomic_load_n(&m->shard[s], __ATOMIC_ACQUIRE);
      if (p == NULL) continue;
      if (m->kind == WEFT__KIND_HISTOGRAM)
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
