/* hist.h: a log-linear histogram of latencies in microseconds.
 *
 * Values below 64 are counted exactly; every power of two above is split
 * into 32 equal buckets, so a quantile read back is within 1/64 (1.6%) of a
 * value recorded at that rank. One histogram is about 9 KiB; each executor
 * keeps its own and they are merged at the end, so recording is a plain
 * increment.
 */
#ifndef HTTP_CLIENT_HIST_H
#define HTTP_CLIENT_HIST_H

#include <stddef.h>
#include <stdint.h>

/* Values up to 2^40 microseconds (12 days); larger ones are clamped. */
#define HC_HIST_EXACT 64
#define HC_HIST_SUB_BITS 5
#define HC_HIST_MAX_EXP 40
#define HC_HIST_BUCKETS                                                        \
  (HC_HIST_EXACT + (HC_HIST_MAX_EXP - 6 + 1) * (1 << HC_HIST_SUB_BITS))

typedef struct hc_hist {
  uint64_t count, sum, min, max;
  uint64_t buckets[HC_HIST_BUCKETS];
} hc_hist;

/** Empties h. */
void hc_hist_init(hc_hist *h);

/** Records value v. */
void hc_hist_record(hc_hist *h, uint64_t v);

/** Adds every value of from to into. */
void hc_hist_merge(hc_hist *into, const hc_hist *from);

/**
 * The q-quantile (0..1) by nearest rank: the middle of the bucket holding
 * the value of rank ceil(q * count), clamped to [min, max]; 0 when empty.
 */
uint64_t hc_hist_quantile(const hc_hist *h, double q);

/** One bar of a coarse histogram: values up to upper, and how many. */
typedef struct hc_hist_bar {
  uint64_t upper;
  uint64_t count;
} hc_hist_bar;

/**
 * Splits [min, max] into n equal bars (fewer when the values span less)
 * and counts the values of each, as hey prints them. Returns the bars
 * written to out.
 */
size_t hc_hist_bars(const hc_hist *h, hc_hist_bar *out, size_t n);

#endif /* HTTP_CLIENT_HIST_H */
