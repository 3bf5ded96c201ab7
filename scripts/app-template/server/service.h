/* service.h: template_app's line service and its options.
 *
 * main.c fills a template_app_config from config.json and the command line,
 * then runs template_app_run() as the root task of weft_main_opts().
 */
#ifndef TEMPLATE_APP_SERVICE_H
#define TEMPLATE_APP_SERVICE_H

#include <stdint.h>

#include "config.h"

/** The options; each field's name is its JSON key and, with dashes, its
 * flag. */
typedef struct template_app_config {
  app_listen_list listen;    /* addresses to listen on */
  int64_t executors;         /* executor threads; 0: one per core */
  int64_t max_connections;   /* served at once; 0: no limit */
  int64_t idle_timeout_ms;   /* close a silent connection; 0: never */
  int64_t max_line_bytes;    /* the longest request line accepted */
  int64_t stats_interval_ms; /* log the stats this often; 0: never */
  int64_t shutdown_grace_ms; /* how long SIGINT/SIGTERM lets clients finish */
  char *greeting;            /* the first line every client gets */
  int log_level;
} template_app_config;

/**
 * Serves connections (the root task's body; arg is a const
 * template_app_config *) until SIGINT or SIGTERM. Returns 0 after a clean
 * shutdown, or an error when it could not start.
 */
int template_app_run(void *arg);

#endif /* TEMPLATE_APP_SERVICE_H */
