/* echo.h: the echo server: every byte a client sends comes back to it.
 *
 * main.c fills an echo_config from config.json and the command line, then
 * runs echo_server_run() as the root task of weft_main_opts().
 */
#ifndef ECHO_H
#define ECHO_H

#include <stdint.h>

#include "config.h"

/** The echo server's options; each field's name is its JSON key. */
typedef struct echo_config {
  app_listen_list listen;   /* addresses to listen on */
  int64_t executors;        /* executor threads; 0: one per core */
  int64_t idle_spin_us;     /* weft_opts.idle_spin_us */
  int64_t max_connections;  /* served at once; 0: no limit */
  int64_t idle_timeout_ms;  /* close a connection without progress this long; 0:
                               never */
  int64_t max_buffer_bytes; /* the most bytes held for one connection */
  int64_t stats_interval_ms; /* log the stats this often; 0: never */
  int64_t
      shutdown_grace_ms; /* how long SIGINT/SIGTERM lets connections finish */
  int64_t backlog;       /* listen(2) backlog */
  int log_level;
} echo_config;

/**
 * Runs the server (the root task's body; arg is a const echo_config *)
 * until SIGINT or SIGTERM. Returns 0 after a clean shutdown, or an error
 * when it could not start.
 */
int echo_server_run(void *arg);

#endif /* ECHO_H */
