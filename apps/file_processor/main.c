/* file_processor: hashes, verifies and compresses file trees on weft.
 *
 * This file wires the options (options.c: config.json, the command word,
 * the flags and PATHs) to the run (run.c), which drives the pipeline of
 * walk.c, hash.c, verify.c and compress.c. See README.md.
 */
#include <stdlib.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include <weft.h>

#include "fp.h"

int main(int argc, char **argv) {
#ifdef __GLIBC__
  /* Blocks of a megabyte and more are mapped and unmapped as they come and
   * go: kept in the heaps of the pool's threads, freed blocks would hold
   * resident memory past the 64 MiB the run promises. */
  mallopt(M_MMAP_THRESHOLD, 1 << 20);
#endif
  fp_config cfg;
  fp_command cmd;
  int rc = fp_options_load(&cfg, &cmd, argc, argv);
  if (rc != APP_RUN) return rc;
  fp_options_log(&cfg);
  int code = fp_run_command(cmd, &cfg);
  fp_options_free(&cfg);
  return code;
}
