/* template_app: a TCP line service on weft.
 *
 * This file wires the options (config.json and the command line) to the
 * service in service.c; see README.md for the protocol and every option.
 */
#include <stdint.h>
#include <stdio.h>

#include <weft.h>

#include "config.h"
#include "service.h"

static const app_option template_app_options[] = {
    APP_OPTION_LISTEN(template_app_config, listen, "127.0.0.1:7070"),
    APP_OPTION_EXECUTORS(template_app_config, executors, "1"),
    APP_OPTION_INT(template_app_config, max_connections, "1000", 0, 10000000,
                   "connections served at once; one more is closed at once "
                   "and counted as rejected (0: no limit)"),
    APP_OPTION_INT(template_app_config, idle_timeout_ms, "60000", 0, INT32_MAX,
                   "close a connection that sends no line for this long, in "
                   "milliseconds (0: never)"),
    APP_OPTION_INT(template_app_config, max_line_bytes, "4096", 16, 1 << 20,
                   "the longest request line, in bytes; a longer one gets "
                   "an error and the connection is closed"),
    APP_OPTION_STRING(template_app_config, greeting, "template_app ready",
                      "the first line every client gets"),
    APP_OPTION_INT(template_app_config, stats_interval_ms, "10000", 0,
                   INT32_MAX,
                   "log the stats this often, in milliseconds (0: never); "
                   "SIGUSR1 prints them as JSON on stdout at any time"),
    APP_OPTION_INT(template_app_config, shutdown_grace_ms, "2000", 0, INT32_MAX,
                   "on SIGINT or SIGTERM, stop accepting and give open "
                   "connections this long to finish, in milliseconds"),
    APP_OPTION_LOG_LEVEL(template_app_config, log_level),
};

static const app_spec template_app_spec =
    APP_SPEC("template_app",
             "A TCP line service built on weft: each request is one line "
             "(PING, ECHO TEXT, QUIT) and each answer is one line. Stats are "
             "logged every interval and printed as JSON on SIGUSR1 and at "
             "exit; SIGINT or SIGTERM drains the connections and exits 0.",
             template_app_options);

int main(int argc, char **argv) {
  template_app_config cfg;
  int rc = app_config_load(&template_app_spec, &cfg, argc, argv);
  if (rc != APP_RUN) return rc;
  app_config_log(&template_app_spec, &cfg);

  weft_opts opts = {.executors = (int)cfg.executors};
  int err = weft_main_opts(&opts, template_app_run, &cfg);
  app_config_free(&template_app_spec, &cfg);
  if (err < 0) {
    fprintf(stderr, "template_app: %s\n", weft_strerror(err));
    return 1;
  }
  return 0;
}
