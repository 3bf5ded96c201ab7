/* signals.h: shutting down on SIGINT and SIGTERM, stats on SIGUSR1, and
 * the runtime's metrics written out on a signal.
 *
 * One task waits for the signals and calls the application back:
 *
 *   first SIGINT or SIGTERM   begin(): stop taking new work, let what runs
 * finish second one, or grace_ms after the first           force(): cancel
 * whatever is still running SIGUSR1                   dump(): print the stats
 *
 * The task runs until it is cancelled (by the group it was spawned into);
 * spawn it on the executor of the state its callbacks touch. Start it
 * before the program tells the world it is ready (its first wait installs
 * the signal handlers; before that SIGTERM would kill the process): spawn
 * it, then weft_yield() once.
 *
 *   app_shutdown sd = {.begin = stop_accepting, .force = cancel_all,
 *                      .dump = print_stats, .ctx = srv, .grace_ms = 5000};
 *   weft_spawn(aux, app_shutdown_task, &sd);
 *   weft_yield();
 */
#ifndef APP_SIGNALS_H
#define APP_SIGNALS_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** What app_shutdown_task() calls; any callback may be NULL. */
typedef struct app_shutdown {
  void (*begin)(void *ctx, int signum); /**< first SIGINT/SIGTERM */
  void (*force)(void *ctx,
                int signum); /**< second one (signum), or grace over (0) */
  void (*dump)(void *ctx);   /**< SIGUSR1 */
  void *ctx;
  int64_t grace_ms; /**< < 0: force only on a second signal */
} app_shutdown;

/**
 * The body of the signal task; arg is an app_shutdown that outlives it.
 * Returns 0 when cancelled.
 */
int app_shutdown_task(void *arg);

/**
 * Ignores SIGPIPE for the whole process, so that writing to a connection the
 * peer has reset fails with UV_EPIPE instead of killing the program. Every
 * network application calls it once at start.
 */
void app_ignore_sigpipe(void);

/**
 * Waits for signal signum (SIGUSR1, say) and writes weft_metrics_json() and
 * a newline to file descriptor fd every time it arrives, until the calling
 * task is cancelled. Run it as a task of its own, in a group that is
 * cancelled at shutdown:
 *
 *     static int dump_metrics(void *arg) {
 *       (void)arg;
 *       return app_metrics_serve_signal(SIGUSR1, STDERR_FILENO);
 *     }
 *     ...
 *     weft_spawn(background, dump_metrics, NULL);
 *
 * Nothing runs in the signal handler itself; the signal is taken by
 * weft_signal_wait(), so it must not have a handler of the program's own.
 * Returns the error that ended it: UV_ECANCELED (or UV_ETIMEDOUT) when
 * cancelled, another error when waiting or writing failed, UV_ENOMEM when
 * the JSON could not be built.
 */
int app_metrics_serve_signal(int signum, int fd);

/** The name of a signal number ("SIGTERM"), or "signal". */
const char *app_signal_name(int signum);

#ifdef __cplusplus
}
#endif
#endif /* APP_SIGNALS_H */
