/* template_app: a batch job on weft.
 *
 * This file wires the options (config.json and the command line) to the
 * job in job.c; see README.md for the report and every option.
 *
 * Exit codes: 0 when every file was read, 1 when some could not be (each is
 * named in the report), 2 for a bad option or configuration file, 130 or
 * 143 when SIGINT or SIGTERM stopped the job before its end.
 */
#include <stdint.h>
#include <stdio.h>

#include <weft.h>

#include "config.h"
#include "job.h"

static const app_option template_app_options[] = {
    APP_OPTION_STRING_LIST(template_app_config, input,
                           "a file to work on; repeat the flag (or give a "
                           "JSON array) for several"),
    APP_OPTION_INT(template_app_config, concurrency, "4", 1, 1024,
                   "files worked on at once"),
    APP_OPTION_INT(template_app_config, chunk_bytes, "65536", 1, 16 << 20,
                   "bytes read from a file at a time"),
    APP_OPTION_INT(template_app_config, max_bytes_per_s, "0", 0, INT64_MAX,
                   "the most bytes read per second, over every file "
                   "together (0: no limit)"),
    APP_OPTION_LOG_LEVEL(template_app_config, log_level),
};

static const app_spec template_app_spec =
    APP_SPEC("template_app",
             "A batch job built on weft: counts the lines, words and bytes "
             "of each --input file, several files at once, and prints one "
             "JSON report on stdout. SIGINT or SIGTERM stops it; the report "
             "then says which files were done.",
             template_app_options);

int main(int argc, char **argv) {
  template_app_config cfg;
  int rc = app_config_load(&template_app_spec, &cfg, argc, argv);
  if (rc != APP_RUN) return rc;
  if (cfg.input.n == 0) {
    fprintf(stderr, "template_app: no input: give --input FILE, or \"input\" "
                    "in the configuration file (see --help)\n");
    app_config_free(&template_app_spec, &cfg);
    return APP_EXIT_USAGE;
  }
  app_config_log(&template_app_spec, &cfg);

  template_app_job job = {.cfg = &cfg};
  int err = weft_main(template_app_run, &job);
  app_config_free(&template_app_spec, &cfg);
  if (err < 0) {
    fprintf(stderr, "template_app: %s\n", weft_strerror(err));
    return 1;
  }
  if (job.result.interrupted != 0) return 128 + job.result.interrupted;
  return job.result.failed > 0 ? 1 : 0;
}
