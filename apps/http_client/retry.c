/* retry.c: retry decisions, backoff and Retry-After. */
#include "retry.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

int hc_retry_status(long status) {
  return status == 429 || (status >= 500 && status <= 599);
}

uint64_t hc_random(uint64_t *state) {
  uint64_t x = *state ? *state : 0x9e3779b97f4a7c15ull;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  *state = x;
  return x * 0x2545f4914f6cdd1dull;
}

int64_t hc_retry_backoff_ms(int retry, int64_t base_ms, int64_t max_ms,
                            uint64_t *rng) {
  if (retry < 1) retry = 1;
  int64_t d = base_ms;
  /* Doubling stops at the ceiling, so it never overflows. */
  for (int i = 1; i < retry && d < max_ms; i++) d *= 2;
  if (d > max_ms) d = max_ms;
  if (d <= 1) return d;
  int64_t half = d / 2;
  return half + (int64_t)(hc_random(rng) % (uint64_t)(d - half + 1));
}

int64_t hc_retry_after_ms(const char *value, int64_t now_ms) {
  while (isspace((unsigned char)*value)) value++;
  if (*value == '\0') return -1;
  if (isdigit((unsigned char)*value)) {
    char *end;
    unsigned long long s = strtoull(value, &end, 10);
    while (isspace((unsigned char)*end)) end++;
    if (*end == '\0') {
      if (s > 100000000ull) s = 100000000ull;
      return (int64_t)s * 1000;
    }
  }
  /* curl_getdate() reads the three date formats RFC 9110 allows. */
  time_t when = curl_getdate(value, NULL);
  if (when == (time_t)-1) return -1;
  int64_t delta = (int64_t)when * 1000 - now_ms;
  return delta > 0 ? delta : 0;
}
