/* http_client: an HTTP client and load generator on weft.
 *
 * This file wires the options (config.json and the command line) to the
 * modules: urls.c reads the URLs, fetch.c makes one attempt through
 * weft_curl, runner.c runs the workers over the executors, report.c writes
 * the per-request lines, the progress bar and the summary. See README.md.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>
#include <weft.h>

#include "fetch.h"
#include "options.h"
#include "report.h"
#include "runner.h"
#include "signals.h"
#include "urls.h"

/* Opens where the per-request lines go: NULL when they are off. Returns 0,
 * or -1 after printing why. */
static int open_lines(const hc_config *cfg, FILE **out) {
  int on = cfg->lines == HC_LINES_ON ||
           (cfg->lines == HC_LINES_AUTO &&
            (hc_options_mode(cfg) == HC_MODE_FETCH || cfg->output != NULL));
  *out = NULL;
  if (!on) return 0;
  if (cfg->output == NULL || strcmp(cfg->output, "-") == 0) {
    *out = stdout;
    return 0;
  }
  *out = fopen(cfg->output, "w");
  if (*out == NULL) {
    hc_usage_error("--output: cannot write %s: %m", cfg->output);
    return -1;
  }
  /* Lines are written whole by one fwrite each; a big buffer makes that
   * one write(2) per many lines. */
  setvbuf(*out, NULL, _IOFBF, 1 << 16);
  return 0;
}

/* Loads the options and the URLs, runs, writes the summary. Exits 0 when
 * every request succeeded, 1 when some failed, 2 for a bad option. */
int main(int argc, char **argv) {
  hc_config cfg;
  int rc = hc_options_load(&cfg, argc, argv);
  if (rc != APP_RUN) return rc;
  hc_options_log(&cfg);
  app_ignore_sigpipe();
  curl_global_init(CURL_GLOBAL_DEFAULT);

  hc_targets targets;
  hc_request request;
  FILE *lines = NULL;
  char why[256];
  int exit_code = APP_EXIT_USAGE;
  if (hc_targets_load(&targets, &cfg.urls, cfg.input,
                      hc_options_mode(&cfg) == HC_MODE_LOAD, why,
                      sizeof why) != 0) {
    hc_usage_error("%s", why);
    goto out_cfg;
  }
  /* In load mode a bad URL fails every request sent to it: say so once,
   * up front, rather than only in the summary. */
  for (size_t i = 0; i < targets.n; i++)
    if (targets.items[i].error != NULL && hc_options_mode(&cfg) == HC_MODE_LOAD)
      weft_log(WEFT_LOG_WARN, "malformed URL: its requests will fail",
               "url=\"%s\" why=\"%s\"", targets.items[i].url,
               targets.items[i].error);
  if (hc_request_init(&request, &cfg) != 0) goto out_targets;
  if (open_lines(&cfg, &lines) != 0) goto out_request;

  hc_report report;
  memset(&report, 0, sizeof report);
  report.lines = lines;
  /* The bar redraws its line in place: lines printed on the same terminal
   * would break it up, so it is left out then. */
  int progress = cfg.progress && isatty(STDERR_FILENO) &&
                 !(lines == stdout && isatty(STDOUT_FILENO));
  report.counting = progress;
  hc_run_input in = {.cfg = &cfg,
                     .targets = &targets,
                     .request = &request,
                     .report = &report,
                     .progress = progress};
  static hc_tally total; /* 17 KiB: not on the stack */
  hc_run_facts facts;
  int err = hc_run(&in, &total, &facts);
  if (lines != NULL) fflush(lines);

  int format = cfg.summary;
  if (format == HC_SUMMARY_AUTO)
    format = isatty(STDOUT_FILENO) ? HC_SUMMARY_TEXT : HC_SUMMARY_JSON;
  if (format == HC_SUMMARY_TEXT)
    hc_report_summary_text(stdout, &total, &facts);
  else if (format == HC_SUMMARY_JSON)
    hc_report_summary_json(stdout, &total, &facts);

  if (err < 0) {
    fprintf(stderr, "http_client: %s\n", weft_strerror(err));
    exit_code = 1;
  } else {
    exit_code = total.failed > 0 || facts.not_sent > 0 ? 1 : 0;
  }
  if (lines != NULL && lines != stdout && fclose(lines) != 0) {
    fprintf(stderr, "http_client: --output: cannot write %s: %m\n", cfg.output);
    exit_code = 1;
  }
out_request:
  hc_request_free(&request);
out_targets:
  hc_targets_free(&targets);
out_cfg:
  curl_global_cleanup();
  hc_options_free(&cfg);
  return exit_code;
}
