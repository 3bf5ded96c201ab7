/* file_processor: hashes, verifies and compresses file trees on weft.
 *
 * This file wires the options (options.c: config.json, the command word,
 * the flags and PATHs) to the run (run.c), which drives the pipeline of
 * walk.c, hash.c, verify.c and compress.c. See README.md.
 */
#include <weft.h>

#include "fp.h"

int main(int argc, char **argv) {
  fp_config cfg;
  fp_command cmd;
  int rc = fp_options_load(&cfg, &cmd, argc, argv);
  if (rc != APP_RUN) return rc;
  fp_options_log(&cfg);
  int code = fp_run_command(cmd, &cfg);
  fp_options_free(&cfg);
  return code;
}
