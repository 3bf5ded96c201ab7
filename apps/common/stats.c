/* stats.c: counters sharded per executor, gauges, rates; logfmt and JSON. */
#include "stats.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <weft.h>

/* Counter shards: executor i adds to shard i % STATS_SHARDS. More executors
 * than shards share shards, which is still correct (the adds are atomic),
 * only slower. */
#define STATS_SHARDS 64
#define STATS_LINE 64

typedef struct stats_shard {
  uint64_t v[APP_STATS_MAX];
} __attribute__((aligned(STATS_LINE))) stats_shard;

struct app_counter {
  app_stats *st;
  int index;
  const char *name;
};

/* Each gauge on a line of its own: a busy gauge must not slow the others. */
struct app_gauge {
  int64_t value;
  const char *name;
} __attribute__((aligned(STATS_LINE)));

typedef struct stats_rate {
  const char *name;
  app_counter *counter;
} stats_rate;

struct app_stats {
  const char *name;
  stats_shard *shards;
  app_counter counters[APP_STATS_MAX];
  int n_counters;
  app_gauge *gauges;
  int n_gauges;
  stats_rate rates[APP_STATS_MAX];
  int n_rates;
  uint64_t start_ns;
  /* The last logged values, for the rates over an interval. */
  uv_mutex_t lock;
  uint64_t last_ns;
  uint64_t last[APP_STATS_MAX];
};

#ifdef _WIN32
/* Windows has no aligned_alloc() whose memory free() takes: plain malloc
 * (16-byte aligned) there, more false sharing, the same counts. */
#define aligned_alloc(align, size) malloc(size)
#endif

app_stats *app_stats_new(const char *name) {
  app_stats *st = calloc(1, sizeof *st);
  if (st == NULL) return NULL;
  st->shards = aligned_alloc(STATS_LINE, STATS_SHARDS * sizeof(stats_shard));
  st->gauges = aligned_alloc(STATS_LINE, APP_STATS_MAX * sizeof(app_gauge));
  if (st->shards == NULL || st->gauges == NULL ||
      uv_mutex_init(&st->lock) != 0) {
    free(st->shards);
    free(st->gauges);
    free(st);
    return NULL;
  }
  memset(st->shards, 0, STATS_SHARDS * sizeof(stats_shard));
  memset(st->gauges, 0, APP_STATS_MAX * sizeof(app_gauge));
  st->name = name;
  st->start_ns = uv_hrtime();
  st->last_ns = st->start_ns;
  return st;
}

void app_stats_free(app_stats *st) {
  if (st == NULL) return;
  uv_mutex_destroy(&st->lock);
  free(st->shards);
  free(st->gauges);
  free(st);
}

app_counter *app_stats_counter(app_stats *st, const char *name) {
  for (int i = 0; i < st->n_counters; i++)
    if (strcmp(st->counters[i].name, name) == 0) return &st->counters[i];
  if (st->n_counters == APP_STATS_MAX) return NULL;
  app_counter *c = &st->counters[st->n_counters];
  c->st = st;
  c->index = st->n_counters++;
  c->name = name;
  return c;
}

app_gauge *app_stats_gauge(app_stats *st, const char *name) {
  for (int i = 0; i < st->n_gauges; i++)
    if (strcmp(st->gauges[i].name, name) == 0) return &st->gauges[i];
  if (st->n_gauges == APP_STATS_MAX) return NULL;
  app_gauge *g = &st->gauges[st->n_gauges++];
  g->name = name;
  return g;
}

void app_stats_rate(app_stats *st, const char *name, app_counter *c) {
  if (c == NULL || st->n_rates == APP_STATS_MAX) return;
  st->rates[st->n_rates].name = name;
  st->rates[st->n_rates].counter = c;
  st->n_rates++;
}

void app_counter_add(app_counter *c, uint64_t n) {
  unsigned shard = (unsigned)weft_executor_id() % STATS_SHARDS;
  __atomic_fetch_add(&c->st->shards[shard].v[c->index], n, __ATOMIC_RELAXED);
}

uint64_t app_counter_value(const app_counter *c) {
  uint64_t sum = 0;
  for (int i = 0; i < STATS_SHARDS; i++)
    sum += __atomic_load_n(&c->st->shards[i].v[c->index], __ATOMIC_RELAXED);
  return sum;
}

int64_t app_gauge_add(app_gauge *g, int64_t delta) {
  return __atomic_add_fetch(&g->value, delta, __ATOMIC_RELAXED);
}

int64_t app_gauge_value(const app_gauge *g) {
  return __atomic_load_n(&g->value, __ATOMIC_RELAXED);
}

/* Per second, guarding against an interval too short to mean anything. */
static double stats_per_s(uint64_t delta, uint64_t ns) {
  return ns < 1000000 ? 0.0 : (double)delta * 1e9 / (double)ns;
}

void app_stats_log(app_stats *st) {
  char kv[1536];
  size_t len = 0;
  uint64_t now = uv_hrtime();
  uv_mutex_lock(&st->lock);
  uint64_t elapsed = now - st->last_ns;
  uint64_t values[APP_STATS_MAX];
  for (int i = 0; i < st->n_counters; i++) {
    values[i] = app_counter_value(&st->counters[i]);
    len += (size_t)snprintf(kv + len, len < sizeof kv ? sizeof kv - len : 0,
                            "%s%s=%" PRIu64, len ? " " : "",
                            st->counters[i].name, values[i]);
  }
  for (int i = 0; i < st->n_gauges; i++)
    len += (size_t)snprintf(kv + len, len < sizeof kv ? sizeof kv - len : 0,
                            "%s%s=%" PRId64, len ? " " : "", st->gauges[i].name,
                            app_gauge_value(&st->gauges[i]));
  for (int i = 0; i < st->n_rates; i++) {
    int idx = st->rates[i].counter->index;
    len += (size_t)snprintf(kv + len, len < sizeof kv ? sizeof kv - len : 0,
                            "%s%s=%.1f", len ? " " : "", st->rates[i].name,
                            stats_per_s(values[idx] - st->last[idx], elapsed)); /* cppcheck-suppress uninitvar ; idx < n_counters, all set above */
  }
  for (int i = 0; i < st->n_counters; i++) st->last[i] = values[i];
  st->last_ns = now;
  uv_mutex_unlock(&st->lock);
  weft_log(WEFT_LOG_INFO, "stats", "%s", kv);
}

void app_stats_print_json(app_stats *st, FILE *out) {
  uint64_t now = uv_hrtime();
  cJSON *o = cJSON_CreateObject();
  if (o == NULL) return;
  cJSON_AddStringToObject(o, "app", st->name ? st->name : "");
  cJSON_AddNumberToObject(o, "uptime_s", (double)(now - st->start_ns) / 1e9);
  uint64_t values[APP_STATS_MAX];
  for (int i = 0; i < st->n_counters; i++) {
    values[i] = app_counter_value(&st->counters[i]);
    cJSON_AddNumberToObject(o, st->counters[i].name, (double)values[i]);
  }
  for (int i = 0; i < st->n_gauges; i++)
    cJSON_AddNumberToObject(o, st->gauges[i].name,
                            (double)app_gauge_value(&st->gauges[i]));
  uv_mutex_lock(&st->lock);
  for (int i = 0; i < st->n_rates; i++) {
    int idx = st->rates[i].counter->index;
    char avg[96];
    snprintf(avg, sizeof avg, "%s_avg", st->rates[i].name);
    double last = stats_per_s(values[idx] - st->last[idx], now - st->last_ns);
    double all = stats_per_s(values[idx], now - st->start_ns);
    /* Two decimals are plenty for a rate and keep the line short. */
    cJSON_AddNumberToObject(o, st->rates[i].name,
                            (double)(int64_t)(last * 100) / 100);
    cJSON_AddNumberToObject(o, avg, (double)(int64_t)(all * 100) / 100);
  }
  uv_mutex_unlock(&st->lock);
  char *text = cJSON_PrintUnformatted(o);
  if (text != NULL) {
    fprintf(out, "%s\n", text);
    fflush(out);
    cJSON_free(text);
  }
  cJSON_Delete(o);
}

int app_stats_periodic_task(void *arg) {
  app_stats_periodic *p = arg;
  weft_task_set_name("stats");
  if (p->interval_ms <= 0) return 0;
  while (weft_sleep(p->interval_ms) == 0) app_stats_log(p->stats);
  return 0;
}
