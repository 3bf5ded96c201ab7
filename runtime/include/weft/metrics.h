/* weft/metrics.h: counters, gauges and histograms, exported as JSON and as
 * Prometheus text.
 *
 * Metrics live in one process-wide registry. Registering is meant for start-up
 * (it takes a lock and may allocate); updating is meant for hot paths: every
 * handle keeps one cache-line-aligned shard per thread that updates it, so an
 * update touches memory no other thread writes, and a read merges the shards.
 * A thread claims a shard the first time it updates any metric and gives it
 * back when it exits; threads beyond the first 63 share one overflow shard,
 * updated with atomic read-modify-write operations, so they stay correct,
 * only slower.
 *
 * Handles are never freed: they stay valid until the process ends, so a
 * handle can be kept in a global and used from any thread without care.
 * Every update function accepts NULL (what a failed registration returns) and
 * then does nothing, so instrumentation never needs its own error path.
 *
 * Names follow Prometheus: [a-zA-Z_:][a-zA-Z0-9_:]*. By convention counter
 * names end in _total and names carry their unit (_seconds, _bytes); weft
 * exports every name exactly as registered.
 */
#ifndef WEFT_METRICS_H
#define WEFT_METRICS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** A monotonically increasing count (opaque). */
typedef struct weft_counter weft_counter;
/** A value that goes up and down (opaque). */
typedef struct weft_gauge weft_gauge;
/** A distribution of unsigned 64-bit values (opaque). */
typedef struct weft_histogram weft_histogram;

/* ---- Registering --------------------------------------------------------- */

/**
 * Returns the counter called name, registering it with help (one line of
 * text for # HELP; may be NULL) the first time. Registering a name again
 * returns the same handle (help is then ignored). Returns NULL when name is
 * not a valid metric name, when name is already registered as another kind
 * of metric, or when memory runs out. Thread-safe.
 */
weft_counter *weft_metrics_counter(const char *name, const char *help);

/**
 * Like weft_metrics_counter() for one series of a labelled family, such as
 * name "weft_errors_total", label "code", value "ECONNRESET". Each distinct
 * value is its own handle; all the handles of one name are exported together
 * under one # HELP and # TYPE. label must match [a-zA-Z_][a-zA-Z0-9_]* and
 * must not start with "__"; value may be any string (it is escaped on
 * export). Returns NULL on the same faults as weft_metrics_counter().
 */
weft_counter *weft_metrics_counter_labeled(const char *name, const char *help,
                                           const char *label,
                                           const char *value);

/** Returns the gauge called name; see weft_metrics_counter(). */
weft_gauge *weft_metrics_gauge(const char *name, const char *help);

/** Returns one series of a labelled gauge family; see
 * weft_metrics_counter_labeled(). */
weft_gauge *weft_metrics_gauge_labeled(const char *name, const char *help,
                                       const char *label, const char *value);

/**
 * Returns the histogram called name; see weft_metrics_counter(). Values are
 * recorded as unsigned integers in whatever unit suits the caller
 * (nanoseconds, bytes); export multiplies sums, extremes and quantiles by
 * scale, so that a histogram recorded in nanoseconds can be exported in
 * seconds (scale 1e-9, name ending in _seconds) as Prometheus prefers.
 * scale <= 0 means 1. The scale of the first registration is kept.
 */
weft_histogram *weft_metrics_histogram(const char *name, const char *help,
                                       double scale);

/**
 * Returns one series of a labelled histogram family; see
 * weft_metrics_counter_labeled() and weft_metrics_histogram(). The label
 * "quantile" is reserved (the Prometheus export uses it).
 */
weft_histogram *weft_metrics_histogram_labeled(const char *name,
                                               const char *help, double scale,
                                               const char *label,
                                               const char *value);

/**
 * Returns non-zero when name is a valid metric name
 * ([a-zA-Z_:][a-zA-Z0-9_:]*, not empty).
 */
int weft_metrics_valid_name(const char *name);

/* ---- Updating (hot paths) ------------------------------------------------ */

/** Adds n to c. */
void weft_counter_add(weft_counter *c, uint64_t n);

/** Adds 1 to c. */
void weft_counter_inc(weft_counter *c);

/**
 * Adds delta (which may be negative) to g. Adds go to the calling thread's
 * shard and cost about what a counter update costs.
 */
void weft_gauge_add(weft_gauge *g, int64_t delta);

/**
 * Sets g to v: a read right after sees v plus whatever weft_gauge_add() calls
 * other threads make after this one. Setting reads every shard, so it costs
 * more than an add; two sets racing with adds on other threads may each miss
 * the other's view of those adds. Use a gauge either as a level that is set
 * (queue length sampled by one task) or as a level that is added to (tasks
 * alive: +1 at start, -1 at end), not both at once.
 */
void weft_gauge_set(weft_gauge *g, int64_t v);

/**
 * Records one value in h. Buckets are log-linear: values below 128 are
 * counted exactly, and every power of two above is split into 64 equal
 * buckets, so a reported quantile is within 1/128 (0.79%) of a value that
 * was recorded at that rank. About 30 KiB per histogram per thread that
 * records into it, allocated on the thread's first record.
 */
void weft_histogram_record(weft_histogram *h, uint64_t value);

/* ---- Reading ------------------------------------------------------------- */

/** The current value of c (all shards summed); 0 for NULL. */
uint64_t weft_counter_value(const weft_counter *c);

/** The current value of g; 0 for NULL. */
int64_t weft_gauge_value(const weft_gauge *g);

/** What weft_histogram_read() reports, in recorded units (not scaled). */
typedef struct weft_histogram_stats {
  uint64_t count; /**< values recorded */
  uint64_t sum;   /**< their sum (wraps past 2^64) */
  uint64_t min;   /**< smallest value; 0 when count is 0 */
  uint64_t max;   /**< largest value; 0 when count is 0 */
  uint64_t p50;   /**< median */
  uint64_t p90;   /**< 90th percentile */
  uint64_t p99;   /**< 99th percentile */
  uint64_t p999;  /**< 99.9th percentile */
} weft_histogram_stats;

/**
 * Fills *out with a merged snapshot of h. Records made while it reads may be
 * partly seen (count, sum and buckets are read one after the other). All
 * zeros for NULL or an empty histogram.
 */
void weft_histogram_read(const weft_histogram *h, weft_histogram_stats *out);

/**
 * Returns the q-quantile (0 <= q <= 1) of h's values by the nearest-rank
 * method: an estimate of the value of rank ceil(q * count) in sorted order
 * (rank 1 for q = 0), within 1/128 of it relative, and clamped to [min, max].
 * Returns 0 for NULL or an empty histogram.
 */
uint64_t weft_histogram_quantile(const weft_histogram *h, double q);

/* ---- Export -------------------------------------------------------------- */

/**
 * Returns every registered metric as one JSON object, without a trailing
 * newline, in a string to be released with free(); NULL when memory runs
 * out. The shape is
 *
 *     {"counters":{"name":N,...},
 *      "gauges":{"name":N,...},
 *      "histograms":{"name":{"count":N,"sum":X,"min":X,"max":X,
 *                            "p50":X,"p90":X,"p99":X,"p999":X},...}}
 *
 * with keys sorted by name. A labelled series is keyed by its Prometheus
 * series name, such as "weft_errors_total{code=\"ECONNRESET\"}". Counts are
 * integers; sum, min, max and the quantiles are integers when the
 * histogram's scale is 1 and numbers otherwise, and 0 for an empty one.
 */
char *weft_metrics_json(void);

/**
 * Returns every registered metric in the Prometheus text exposition format,
 * version 0.0.4 (Content-Type: text/plain; version=0.0.4), in a string to be
 * released with free(); NULL when memory runs out. Each family has a # HELP
 * and a # TYPE line. Histograms are exported as summaries: quantiles 0.5,
 * 0.9, 0.99 and 0.999 (NaN while empty), then name_sum and name_count.
 */
char *weft_metrics_prometheus(void);

/**
 * Sets every registered metric back to zero (handles stay valid). Meant for
 * tests: updates that race with the reset may survive it.
 */
void weft_metrics_reset(void);

#ifdef __cplusplus
}
#endif
#endif /* WEFT_METRICS_H */
