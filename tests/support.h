/* support.h: helpers shared by the tests.
 *
 * Catch2's assertions throw C++ exceptions, which must never cross a weft
 * task's stack: tests record what happened inside tasks in plain variables
 * and assert after weft_main() returns.
 */
#ifndef WEFT_TEST_SUPPORT_H
#define WEFT_TEST_SUPPORT_H

#include <stdint.h>
#include <stdlib.h>

#include "weft.h"

/* Timeouts in tests are multiplied by WEFT_TEST_TIMEOUT_SCALE (default 1),
 * which sanitizer and Valgrind runs set higher. */
static inline int64_t weft_test_ms(int64_t ms) {
  const char *s = getenv("WEFT_TEST_TIMEOUT_SCALE");
  double scale = s ? atof(s) : 1.0;
  if (scale < 1.0) scale = 1.0;
  return (int64_t)(ms * scale);
}

#endif
