/* metrics_registry.h: the records of the metrics registry, shared by
 * metrics.c (the registry and the updates of the hot path) and
 * metrics_export.c (JSON and Prometheus text). */
#ifndef WEFT_METRICS_REGISTRY_H
#define WEFT_METRICS_REGISTRY_H

#include <stddef.h>
#include <stdint.h>

#include "internal.h"
#include "metrics_internal.h"

/* Shard 0 is shared by every thread that found no free shard and is updated
 * with read-modify-write atomics; shards 1..63 each have one owner thread at
 * a time, which updates them with plain atomic loads and stores. The owner
 * is the only writer, so nothing is lost, and the loads and stores being
 * atomic keeps concurrent readers (and ThreadSanitizer) content. */
#define WEFT__SHARDS 64

/* Values below 64 have a bucket each. From 64 on, the values in
 * [2^e, 2^(e+1)) are split into 64 buckets of width 2^(e-6), so a bucket is
 * never wider than 1/64 of its lowest value, and its midpoint is within
 * 1/128 of any value in it. e = 6 gives width 1 too, hence exact below 128. */
#define WEFT__SUB_BITS 6
#define WEFT__SUB_COUNT (1u << WEFT__SUB_BITS)
#define WEFT__BUCKETS ((64 - WEFT__SUB_BITS + 1) * WEFT__SUB_COUNT) /* 3776 */

enum { WEFT__KIND_COUNTER = 1, WEFT__KIND_GAUGE, WEFT__KIND_HISTOGRAM };

/* Every kind of metric is this one structure; the public handle types are
 * pointers to it under three names. */
typedef struct weft__metric {
  int kind;
  char *name;
  char *help;  /* "" when none was given */
  char *label; /* NULL for an unlabelled series */
  char *value;
  double scale;        /* histograms: export multiplier */
  uint64_t gauge_base; /* gauges: the value minus the shards' deltas */
  void *shard[WEFT__SHARDS]; /* cell or hist_shard, allocated on first use */
} weft__metric;

/* A histogram merged over its shards. */
typedef struct weft__hist_merged {
  uint64_t count; /* the buckets' total, which the ranks use */
  uint64_t sum;
  uint64_t min;
  uint64_t max;
  uint64_t buckets[WEFT__BUCKETS];
} weft__hist_merged;

/* Locks the registry (made on first use) and returns its records, sorted
 * by name, label and value, and their number in *len. */
weft__metric *const *weft__metrics_lock(size_t *len);
void weft__metrics_unlock(void);
/* The sum of a counter's or gauge's shards. */
uint64_t weft__cell_sum(const weft__metric *m);
/* Merges a histogram's shards into *out. */
void weft__hist_merge(const weft__metric *m, weft__hist_merged *out);
/* Fills values[k] with the estimate of quantile qs[k], for n quantiles in
 * increasing order. */
void weft__hist_quantiles(const weft__hist_merged *h, const double *qs, uint64_t *values, int n);
/* The quantiles the exports give: 0.5, 0.9, 0.99, 0.999. */
extern const double weft__export_qs[4];

#endif /* WEFT_METRICS_REGISTRY_H */
