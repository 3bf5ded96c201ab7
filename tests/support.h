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
#include <string.h>

#include "weft.h"

/* Every test proves that it leaks nothing, as libuv's tests do with
 * MAKE_VALGRIND_HAPPY(): the runtime runs with weft_opts.handles_strict on,
 * so a libuv handle left open when it ends (by the runtime or by the test)
 * makes weft_main() and weft_main_opts() return WEFT_EHANDLES instead of
 * only logging a warning. The two names below stand for the calls with the
 * switch on; opts and the rest are as the test passed them. */
static inline int weft_test_main_strict(const weft_opts *opts, int executors, weft_fn fn,
                                        void *arg) {
  weft_opts o;
  memset(&o, 0, sizeof o);
  if (opts != NULL)
    o = *opts;
  else
    o.executors = executors;
  o.handles_strict = 1;
  return (weft_main_opts)(&o, fn, arg);
}
/* weft_main() is weft_main_opts() with one executor. */
#define weft_main(fn, arg) weft_test_main_strict(NULL, 1, (fn), (arg))
#define weft_main_opts(opts, fn, arg) weft_test_main_strict((opts), 0, (fn), (arg))

/* Timeouts in tests are multiplied by WEFT_TEST_TIMEOUT_SCALE (default 1),
 * which sanitizer and Valgrind runs set higher. */
static inline int64_t weft_test_ms(int64_t ms) {
  const char *s = getenv("WEFT_TEST_TIMEOUT_SCALE");
  double scale = s ? atof(s) : 1.0;
  if (scale < 1.0) scale = 1.0;
  return (int64_t)(ms * scale);
}

/* Runs fn(arg) as the root task inside a scope with a deadline of ms
 * (scaled), so that a broken test fails instead of hanging. Returns fn's
 * result, or the scope's code if fn returned 0 but the deadline passed. */
typedef struct {
  weft_fn fn;
  void *arg;
  int64_t ms;
} weft_test_bounded;

static inline int weft_test_bounded_root(void *p) {
  weft_test_bounded *b = (weft_test_bounded *)p;
  weft_scope s;
  weft_scope_enter(&s, weft_test_ms(b->ms));
  int r = b->fn(b->arg);
  int left = weft_scope_leave(&s);
  return r != 0 ? r : left;
}

#ifdef __cplusplus
static inline int run_bounded(weft_fn fn, void *arg, int64_t ms = 15000) {
  weft_test_bounded b = {fn, arg, ms};
  return weft_main(weft_test_bounded_root, &b);
}
#endif

#endif
