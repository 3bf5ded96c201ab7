/* web_framework: an example REST application on the web framework.
 *
 * This file wires the options (config.json and the command line) to the
 * application of app/ (routes.c, items.c) and serves it on every executor;
 * see README.md for the routes, every option and how to run it.
 */
#include <stdint.h>
#include <stdio.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <stdlib.h>

#include <weft.h>

#include "config.h"
#include "server.h"
#include "signals.h"
#include "stats.h"
#include "webapp.h"
#include "wf.h"

static const app_option webapp_options[] = {
    APP_OPTION_LISTEN(webapp_config, listen, "127.0.0.1:8080"),
    APP_OPTION_EXECUTORS(webapp_config, executors, "0"),
    APP_OPTION_IDLE_SPIN(webapp_config, idle_spin_us),
    APP_OPTION_STRING(webapp_config, static_dir, "static",
                      "folder served under /static/ (\"\": none); a missing "
                      "folder is logged and the rest is served"),
    APP_OPTION_INT(webapp_config, max_connections, "10000", 0, 10000000,
                   "connections served at once; one more is closed at once "
                   "(0: no limit)"),
    APP_OPTION_INT(webapp_config, max_header_bytes, "8192", 256, 1 << 20,
                   "the most bytes of a request line and headers; more is "
                   "answered 431"),
    APP_OPTION_INT(webapp_config, max_headers, "100", 1, 10000,
                   "the most header fields of a request; more is answered 431"),
    APP_OPTION_INT(webapp_config, max_body_bytes, "1048576", 0, 1 << 30,
                   "the most bytes of a request body (after chunked "
                   "decoding); more is answered 413"),
    APP_OPTION_INT(webapp_config, header_timeout_ms, "10000", 0, INT32_MAX,
                   "time a client has to send a request's headers, in "
                   "milliseconds; over it is answered 408 (0: no limit)"),
    APP_OPTION_INT(webapp_config, body_timeout_ms, "30000", 0, INT32_MAX,
                   "time a client has to send a request's body, in "
                   "milliseconds; over it is answered 408 (0: no limit)"),
    APP_OPTION_INT(webapp_config, idle_timeout_ms, "60000", 0, INT32_MAX,
                   "close a keep-alive connection that sends no new request "
                   "for this long, in milliseconds (0: never)"),
    APP_OPTION_INT(webapp_config, write_timeout_ms, "30000", 0, INT32_MAX,
                   "close a connection that takes longer than this to read "
                   "one response, in milliseconds (0: no limit)"),
    APP_OPTION_INT(webapp_config, request_timeout_ms, "30000", 0, INT32_MAX,
                   "a handler under /api that takes longer than this is "
                   "answered 503, in milliseconds (0: no limit)"),
    APP_OPTION_INT(webapp_config, max_requests_per_connection, "1000", 1,
                   UINT32_MAX,
                   "requests served on one keep-alive connection; the last "
                   "is answered with Connection: close"),
    APP_OPTION_STRING_LIST(webapp_config, cors_origins,
                           "an origin allowed to call the server from a "
                           "browser (\"*\": any); repeat the flag for several; "
                           "none: no CORS headers"),
    APP_OPTION_BOOL(webapp_config, gzip, "true",
                    "compress text and JSON answers with gzip for clients "
                    "that accept it"),
    APP_OPTION_INT(webapp_config, gzip_min_bytes, "1024", 1, 1 << 30,
                   "answers shorter than this are sent uncompressed"),
    APP_OPTION_BOOL(webapp_config, access_log, "true",
                    "log one line per request at level info"),
    APP_OPTION_INT(webapp_config, max_items, "10000", 0, 10000000,
                   "the most items the in-memory store holds; a create "
                   "beyond it is answered 507"),
    APP_OPTION_INT(webapp_config, shutdown_grace_ms, "5000", 0, INT32_MAX,
                   "on SIGINT or SIGTERM, stop accepting and give requests "
                   "in flight this long to finish, in milliseconds (a second "
                   "signal ends them at once)"),
    APP_OPTION_INT(webapp_config, stats_interval_ms, "60000", 0, INT32_MAX,
                   "log the connection stats this often, in milliseconds "
                   "(0: never); SIGUSR1 prints them as JSON on stdout"),
    APP_OPTION_INT(webapp_config, backlog, "1024", 1, 65535,
                   "connections the kernel queues for each listener before "
                   "the server accepts them"),
    APP_OPTION_LOG_LEVEL(webapp_config, log_level),
};

static const app_spec webapp_spec = APP_SPEC(
    "web_framework",
    "An example REST application on weft's web framework: an in-memory "
    "items resource with validation (/api/items), static files (/static/), "
    "/plaintext, /json, /healthz and /metrics, behind request ids, access "
    "logs, CORS and gzip. SIGINT or SIGTERM lets requests in flight finish "
    "and exits 0.",
    webapp_options);

/* The longest wait /api/slow accepts, in milliseconds. */
#define WEBAPP_SLOW_MAX_MS 10000

/* The root task: builds the application and serves it until a signal. */
static int webapp_serve(void *arg) {
  const webapp_config *cfg = arg;
  webapp *w = webapp_build(cfg);
  if (w == NULL) return UV_ENOMEM;
  app_stats *stats = app_stats_new("web_framework");
  if (stats == NULL) {
    webapp_free(w);
    return UV_ENOMEM;
  }
  app_server_opts server = {
      .listen = &cfg->listen,
      .backlog = (int)cfg->backlog,
      .max_connections = cfg->max_connections,
      .shutdown_grace_ms = cfg->shutdown_grace_ms,
      .stats_interval_ms = cfg->stats_interval_ms,
      .nodelay = 1,
      .stats = stats,
  };
  int rc = wf_app_serve(webapp_app(w), &server);
  webapp_free(w);
  app_stats_free(stats);
  return rc;
}

/* Blocks of this size and more are mapped on their own (glibc). */
#define WEBAPP_MMAP_THRESHOLD (128 * 1024)

int main(int argc, char **argv) {
  webapp_config cfg;
  int rc = app_config_load(&webapp_spec, &cfg, argc, argv);
  if (rc != APP_RUN) return rc;
  cfg.slow_max_ms = WEBAPP_SLOW_MAX_MS;
  app_config_log(&webapp_spec, &cfg);
#ifdef __GLIBC__
  /* Request bodies (up to max_body_bytes) come and go in bursts, on every
   * executor's thread. glibc raises its mmap threshold each time such a
   * block is freed, after which they come from the threads' heaps and stay
   * there once the burst is over. A fixed threshold keeps big blocks in
   * their own mappings, given back to the system as soon as freed. */
  mallopt(M_MMAP_THRESHOLD, WEBAPP_MMAP_THRESHOLD);
#endif
  app_ignore_sigpipe();

  weft_opts opts = {.executors = (int)cfg.executors,
                    .idle_spin_us = (int)cfg.idle_spin_us};
  int err = weft_main_opts(&opts, webapp_serve, &cfg);
  app_config_free(&webapp_spec, &cfg);
  if (err < 0) {
    fprintf(stderr, "web_framework: %s\n", weft_strerror(err));
    return 1;
  }
  return 0;
}
