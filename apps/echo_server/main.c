/* echo_server: a TCP echo server on weft.
 *
 * This file wires the options (config.json and the command line) to the
 * server in echo.c; see README.md for every option and how to run it.
 */
#include <stdint.h>
#include <stdio.h>

#include <weft.h>

#include "config.h"
#include "echo.h"

static const app_option echo_options[] = {
    APP_OPTION_LISTEN(echo_config, listen, "127.0.0.1:7007"),
    APP_OPTION_EXECUTORS(echo_config, executors, "0"),
    APP_OPTION_IDLE_SPIN(echo_config, idle_spin_us),
    APP_OPTION_INT(echo_config, max_connections, "10000", 0, 10000000,
                   "connections served at once; one more is closed at once and "
                   "counted as rejected (0: no limit)"),
    APP_OPTION_INT(echo_config, idle_timeout_ms, "60000", 0, INT32_MAX,
                   "close a connection that neither sends nor takes its echo "
                   "for this long, in milliseconds (0: never)"),
    APP_OPTION_INT(echo_config, max_buffer_bytes, "65536", 1, 64 << 20,
                   "the most bytes held for one connection: the server reads "
                   "this much at most, writes it all back, then reads again"),
    APP_OPTION_INT(echo_config, stats_interval_ms, "10000", 0, INT32_MAX,
                   "log the stats this often, in milliseconds (0: never); "
                   "SIGUSR1 prints them as JSON on stdout at any time"),
    APP_OPTION_INT(echo_config, shutdown_grace_ms, "5000", 0, INT32_MAX,
                   "on SIGINT or SIGTERM, stop accepting and give open "
                   "connections this long to finish, in milliseconds, before "
                   "closing them (a second signal closes them at once)"),
    APP_OPTION_INT(echo_config, backlog, "1024", 1, 65535,
                   "connections the kernel queues for each listener before "
                   "the server accepts them"),
    APP_OPTION_LOG_LEVEL(echo_config, log_level),
};

static const app_spec echo_spec =
    APP_SPEC("echo_server",
             "A TCP echo server built on weft: every connection gets back "
             "exactly the bytes it sends. Stats are logged every interval and "
             "printed as JSON on SIGUSR1 and at exit; SIGINT or SIGTERM drains "
             "the connections and exits 0.",
             echo_options);

int main(int argc, char **argv) {
  echo_config cfg;
  int rc = app_config_load(&echo_spec, &cfg, argc, argv);
  if (rc != APP_RUN) return rc;
  app_config_log(&echo_spec, &cfg);

  weft_opts opts = {.executors = (int)cfg.executors,
                    .idle_spin_us = (int)cfg.idle_spin_us};
  int err = weft_main_opts(&opts, echo_server_run, &cfg);
  app_config_free(&echo_spec, &cfg);
  if (err < 0) {
    fprintf(stderr, "echo_server: %s\n", weft_strerror(err));
    return 1;
  }
  return 0;
}
