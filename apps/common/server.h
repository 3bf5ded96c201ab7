/* server.h: a TCP server on every executor, ready to be given a handler.
 *
 * app_server_run() does what every TCP server of the applications needs,
 * so that an application only writes what it does with a connection:
 *
 *   - listens on every address, on every executor: with SO_REUSEPORT each
 *     executor has a listener of its own per address and the kernel spreads
 *     the connections; without it, executor 1 takes them all; a port that
 *     another process holds is refused (UV_EADDRINUSE) as it would be
 *     without SO_REUSEPORT;
 *   - logs "listening on HOST:PORT" once per address, with the real port
 *     (port 0 picks a free one), once every executor accepts;
 *   - runs the handler in a task of its own per connection, on the executor
 *     that accepted it, and closes the connection when the handler returns;
 *   - enforces a connection limit: one connection more is closed at once
 *     and counted as rejected;
 *   - counts connections (accepted, active, rejected, closed_at_shutdown)
 *     in the application's stats, logs the stats every interval and prints
 *     them as JSON on SIGUSR1 and at exit;
 *   - on SIGINT or SIGTERM stops accepting, lets open connections finish
 *     for a grace period, then cancels them (at once on a second signal),
 *     and returns 0; app_server_stop_event() and the on_stop hook let
 *     connections that wait idle close at once rather than at the end.
 *
 * One server runs per process (the signals are the process's).
 */
#ifndef APP_SERVER_H
#define APP_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include <weft.h>

#include "config.h"
#include "stats.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * Serves one connection. Runs in a task of its own on the executor that
 * accepted conn (use conn from that executor only); it is cancelled when a
 * shutdown's grace period ends. The server closes conn once it returns.
 * Returns 0, or an error, which is logged at debug level.
 */
typedef int (*app_conn_fn)(weft_tcp *conn, void *ctx);

/** What app_server_run() serves, and how. */
typedef struct app_server_opts {
  const app_listen_list *listen; /**< one address at least */
  int backlog;                   /**< listen(2) backlog; <= 0: 511 */
  int64_t max_connections;       /**< served at once; 0: no limit */
  int64_t
      shutdown_grace_ms; /**< drain time after SIGINT/SIGTERM; < 0: no limit */
  int64_t stats_interval_ms; /**< log the stats this often; 0: never */
  size_t conn_stack_size;    /**< stack of a connection task; 0: the default */
  int nodelay;               /**< set TCP_NODELAY on every connection */
  app_conn_fn handler;
  void *ctx;        /**< passed to handler and on_stop */
  /**
   * NULL, or called once a shutdown begins (app_server_stop_event() is
   * set), on every executor that accepts, from a task of that executor,
   * after its listeners are closed: the place to close connections that
   * wait idle on that executor (weft_http_stop_idle()).
   */
  void (*on_stop)(void *ctx);
  app_stats *stats; /**< required; the server registers its counters here */
  /**
   * NULL, or called with a connection refused because max_connections are
   * served, in a task of its own, before the server closes it: the place
   * to tell the client (an HTTP server answers 503). It should be quick;
   * it is cancelled when a shutdown's grace period ends. Either way the
   * refusal is counted as rejected and logged once a second at most.
   */
  void (*on_reject)(weft_tcp *conn, void *ctx);
  /**
   * NULL, or one handler per address of listen, for a server that speaks
   * another protocol on some of its addresses (a NULL entry: handler).
   */
  const app_conn_fn *handlers;
  /**
   * NULL, or one word per address of listen (NULL entries: none), logged
   * with its "listening on" line as proto=WORD so that scripts can tell
   * the addresses apart.
   */
  const char *const *protocols;
} app_server_opts;

/**
 * Runs the server until SIGINT or SIGTERM and the drain that follows. Call
 * it from the root task of weft_main_opts(), which sets the number of
 * executors. Returns 0 after a clean shutdown, or an error (logged) when a
 * listener cannot be opened or a task of the server (the signal task, the
 * stats task, a worker) cannot be started: a server that could not handle
 * SIGTERM does not run.
 */
int app_server_run(const app_server_opts *opts);

/** Non-zero once a shutdown has begun (from any executor): whether
 * app_server_stop_event() is set; 0 outside app_server_run(). A handler may
 * use it to finish early, e.g. to stop keeping a connection alive. */
int app_server_stopping(void);

/**
 * An event set when a shutdown begins (with app_server_stopping()), for
 * handlers that wait on it or pass it on (weft_http_serve_opts.stop).
 * Valid while app_server_run() runs; NULL outside it.
 */
weft_event *app_server_stop_event(void);

#ifdef __cplusplus
}
#endif
#endif /* APP_SERVER_H */
