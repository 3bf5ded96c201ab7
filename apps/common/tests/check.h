/* CHECK for the applications' plain C unit tests (the ones that need no
 * Catch2): a false condition is reported with its file, line and the name of
 * the case that was running, and counted, and the test goes on so that one run
 * shows every failure. main() ends with `return check_report();`. */
#ifndef APP_TESTS_CHECK_H
#define APP_TESTS_CHECK_H

#include <stdio.h>

static int check_failures;
/* The case under way, set by each case ("router", "json"...). */
static const char *check_case = "-";

#define CHECK(cond)                                                            \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "%s:%d: [%s] CHECK failed: %s\n", __FILE__, __LINE__,    \
              check_case, #cond);                                              \
      check_failures++;                                                        \
    }                                                                          \
  } while (0)

/* 0 when every CHECK held; otherwise says how many failed and returns 1. */
static inline int check_report(void) {
  if (check_failures == 0) return 0;
  fprintf(stderr, "%d check(s) failed\n", check_failures);
  return 1;
}

#endif /* APP_TESTS_CHECK_H */
