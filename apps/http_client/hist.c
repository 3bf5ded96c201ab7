/* hist.c: the log-linear latency histogram. */
#include "hist.h"

#include <math.h>
#include <string.h>

#define SUB (1u << HC_HIST_SUB_BITS)

/* The bucket of v. */
static size_t bucket_of(uint64_t v) {
  if (v < HC_HIST_EXACT) return (size_t)v;
  int e = 63 - __builtin_clzll(v); /* 2^e <= v < 2^(e+1), e >= 6 */
  if (e > HC_HIST_MAX_EXP) return HC_HIST_BUCKETS - 1;
  uint64_t sub = (v >> (e - HC_HIST_SUB_BITS)) & (SUB - 1);
  return HC_HIST_EXACT + (size_t)(e - 6) * SUB + (size_t)sub;
}

/* The smallest value of bucket i, and its width in *width. */
static uint64_t bucket_low(size_t i, uint64_t *width) {
  if (i < HC_HIST_EXACT) {
    *width = 1;
    return i;
  }
  size_t k = i - HC_HIST_EXACT;
  int e = 6 + (int)(k / SUB);
  uint64_t sub = k % SUB;
  *width = (uint64_t)1 << (e - HC_HIST_SUB_BITS);
  return (SUB + sub) << (e - HC_HIST_SUB_BITS);
}

void hc_hist_init(hc_hist *h) { memset(h, 0, sizeof *h); }

void hc_hist_record(hc_hist *h, uint64_t v) {
  if (h->count == 0 || v < h->min) h->min = v;
  if (v > h->max) h->max = v;
  h->count++;
  h->sum += v;
  h->buckets[bucket_of(v)]++;
}

void hc_hist_merge(hc_hist *into, const hc_hist *from) {
  if (from->count == 0) return;
  if (into->count == 0 || from->min < into->min) into->min = from->min;
  if (from->max > into->max) into->max = from->max;
  into->count += from->count;
  into->sum += from->sum;
  for (size_t i = 0; i < HC_HIST_BUCKETS; i++)
    into->buckets[i] += from->buckets[i];
}

uint64_t hc_hist_quantile(const hc_hist *h, double q) {
  if (h->count == 0) return 0;
  if (q <= 0) return h->min;
  if (q >= 1) return h->max;
  uint64_t rank = (uint64_t)ceil(q * (double)h->count);
  if (rank == 0) rank = 1;
  uint64_t seen = 0;
  for (size_t i = 0; i < HC_HIST_BUCKETS; i++) {
    seen += h->buckets[i];
    if (seen >= rank) {
      uint64_t width, v = bucket_low(i, &width);
      v += width / 2;
      if (v < h->min) v = h->min;
      if (v > h->max) v = h->max;
      return v;
    }
  }
  return h->max;
}

size_t hc_hist_bars(const hc_hist *h, hc_hist_bar *out, size_t n) {
  if (h->count == 0 || n == 0) return 0;
  uint64_t span = h->max - h->min;
  if (span < n) n = span > 0 ? (size_t)span : 1;
  uint64_t step = (span + n - 1) / n;
  if (step == 0) step = 1;
  for (size_t b = 0; b < n; b++) {
    out[b].upper = b + 1 == n ? h->max : h->min + step * (b + 1);
    out[b].count = 0;
  }
  /* Each fine bucket falls in the bar of its middle value. */
  for (size_t i = 0; i < HC_HIST_BUCKETS; i++) {
    if (h->buckets[i] == 0) continue;
    uint64_t width, v = bucket_low(i, &width);
    v += width / 2;
    if (v < h->min) v = h->min;
    if (v > h->max) v = h->max;
    size_t b = (size_t)((v - h->min) / step);
    if (b >= n) b = n - 1;
    out[b].count += h->buckets[i];
  }
  return n;
}
