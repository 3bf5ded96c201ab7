/* fuzz_common.c: see fuzz_common.h. */
#include "fuzz_common.h"

#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  if (getenv("WEFT_LOG_LEVEL") == NULL) weft_log_set_level(WEFT_LOG_OFF);
  return 0;
}

void fuzz_run_input(const char *name, weft_fn fn, void *arg) {
  weft_opts opts = {.executors = 1};
  int rc = weft_main_opts(&opts, fn, arg);
  if (rc < 0) {
    fprintf(stderr, "%s: %s\n", name, weft_strerror(rc));
    abort();
  }
}
