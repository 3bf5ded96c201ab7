/* retry.h: when to try a request again, and how long to wait first.
 *
 * A request is tried again after a connection error (refused, reset, or
 * closed without a reply), a 5xx or a 429. The wait is the response's
 * Retry-After when it has one (seconds or an HTTP date), else an
 * exponential backoff with jitter: the n-th retry waits between half and
 * all of min(max, base * 2^(n-1)), so that clients that failed together do
 * not come back together.
 */
#ifndef HTTP_CLIENT_RETRY_H
#define HTTP_CLIENT_RETRY_H

#include <stdint.h>

/** Non-zero for a status worth another attempt (429 and 5xx). */
int hc_retry_status(long status);

/**
 * The backoff before retry number retry (from 1), in milliseconds: a random
 * value in [d/2, d] with d = min(max_ms, base_ms * 2^(retry-1)). rng is the
 * caller's random state (any non-zero seed), advanced.
 */
int64_t hc_retry_backoff_ms(int retry, int64_t base_ms, int64_t max_ms,
                            uint64_t *rng);

/**
 * Parses a Retry-After value: delta-seconds ("120") or an HTTP date ("Wed,
 * 21 Oct 2015 07:28:00 GMT") compared with now_ms (milliseconds since the
 * epoch).
 * Returns the wait in milliseconds (0 for a date in the past), or -1 when
 * the value is neither.
 */
int64_t hc_retry_after_ms(const char *value, int64_t now_ms);

/** A step of a xorshift64* generator: the next pseudo-random value. */
uint64_t hc_random(uint64_t *state);

#endif /* HTTP_CLIENT_RETRY_H */
