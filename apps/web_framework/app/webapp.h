/* webapp.h: the example application of the web framework.
 *
 * main.c fills a webapp_config from config.json and the command line, and
 * webapp_build() turns it into a wf_app with every route and middleware;
 * the fuzz target builds the same app from a config of its own, so that it
 * exercises exactly what the binary serves.
 *
 *   webapp *w = webapp_build(&cfg);
 *   wf_app_serve(webapp_app(w), &server_opts);
 *   webapp_free(w);
 */
#ifndef WEBAPP_H
#define WEBAPP_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "wf.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Every option of the example; the field names are the JSON keys. */
typedef struct webapp_config {
  app_listen_list listen;
  int64_t executors;
  int64_t idle_spin_us;
  char *static_dir; /* "" serves no files */
  int64_t max_connections;
  int64_t max_header_bytes;
  int64_t max_headers;
  int64_t max_body_bytes;
  int64_t header_timeout_ms; /* 0: none, for this and the other timeouts */
  int64_t body_timeout_ms;
  int64_t idle_timeout_ms;
  int64_t write_timeout_ms;
  int64_t request_timeout_ms; /* deadline of a handler under /api */
  int64_t max_requests_per_connection;
  app_string_list cors_origins; /* none: no CORS headers at all */
  int gzip;
  int64_t gzip_min_bytes;
  int access_log;
  int64_t max_items;
  int64_t shutdown_grace_ms;
  int64_t stats_interval_ms;
  int64_t backlog;
  int log_level;
  /* Not options: set by the program after loading. */
  int64_t slow_max_ms; /* the longest wait /api/slow accepts */
} webapp_config;

/** The built application (opaque). */
typedef struct webapp webapp;

/**
 * Builds the application for cfg: middleware, the demo routes, the items
 * resource and the static files. cfg must outlive it. A static_dir that is
 * not a directory is logged as a warning and no files are served. Returns
 * NULL (with the reason logged) when memory runs out.
 */
webapp *webapp_build(const webapp_config *cfg);

/** The framework app to serve. */
wf_app *webapp_app(webapp *w);

/** Empties the items store (ids start at 1 again). For the fuzz target,
 * which wants every input to start from the same state. */
void webapp_reset(webapp *w);

/** Frees w and its app. Not while it is serving. */
void webapp_free(webapp *w);

/* ---- The items resource (items.c) -----------------------------------------
 */

/** The in-memory store of items, shared by every executor (opaque). */
typedef struct items_store items_store;

/** Makes an empty store that holds at most max_items. NULL: out of memory. */
items_store *items_store_new(size_t max_items);

/** Removes every item and starts the ids at 1 again. Not while serving. */
void items_store_clear(items_store *s);

/** Frees s and its items. */
void items_store_free(items_store *s);

/**
 * Routes the resource under g: GET and POST on /items, GET, PUT, PATCH and
 * DELETE on /items/:id. Returns 0 or the first wf_route() error.
 */
int items_routes(wf_group *g, items_store *s);

#ifdef __cplusplus
}
#endif
#endif /* WEBAPP_H */
