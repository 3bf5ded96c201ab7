/* stats.h: an application's counters, printed every interval, on SIGUSR1
 * and at exit.
 *
 * Counters only go up (bytes in, connections accepted); gauges go up and
 * down (connections active); a rate is a counter per second, computed when
 * the stats are printed. Counters are kept per executor, each on cache lines
 * of its own, so that executors counting at the same time never contend;
 * reading one sums the executors. Gauges are one shared atomic word, since
 * their value is what the program decides on (a connection limit).
 *
 *   app_stats *st = app_stats_new("echo_server");
 *   app_counter *in = app_stats_counter(st, "bytes_in");
 *   app_stats_rate(st, "messages_per_s", app_stats_counter(st, "messages"));
 *   ...
 *   app_counter_add(in, n);               // any executor, any time
 *
 * Counters and gauges are registered before the runtime starts counting
 * (registration is not thread-safe); adding and reading are, from any
 * thread. The names and calls mirror a metrics registry, so the same calls
 * can later be backed by the runtime's metrics without touching the code
 * that counts.
 */
#ifndef APP_STATS_H
#define APP_STATS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/** The most counters, gauges and rates one stats object holds, each. */
#define APP_STATS_MAX 32

typedef struct app_stats app_stats;
typedef struct app_counter app_counter;
typedef struct app_gauge app_gauge;

/** Makes an empty stats object; name appears in the JSON ("app"). */
app_stats *app_stats_new(const char *name);

/** Frees st and its counters and gauges. */
void app_stats_free(app_stats *st);

/**
 * Registers a counter (a static string name); returns it, or NULL when
 * APP_STATS_MAX are already registered. Registering a name twice returns the
 * same counter.
 */
app_counter *app_stats_counter(app_stats *st, const char *name);

/** Registers a gauge, like app_stats_counter(). */
app_gauge *app_stats_gauge(app_stats *st, const char *name);

/** Reports counter c per second under name. */
void app_stats_rate(app_stats *st, const char *name, app_counter *c);

/** Adds n to c. Cheap: one uncontended atomic add on the caller's executor's
 * line. */
void app_counter_add(app_counter *c, uint64_t n);

/** The sum of c over every executor. */
uint64_t app_counter_value(const app_counter *c);

/** Adds delta (may be negative) to g and returns the new value. */
int64_t app_gauge_add(app_gauge *g, int64_t delta);

/** The value of g. */
int64_t app_gauge_value(const app_gauge *g);

/**
 * Logs one logfmt line (msg=stats) with every counter and gauge, and each
 * rate over the time since the previous call (since the start, at first).
 * Meant for one periodic task.
 */
void app_stats_log(app_stats *st);

/**
 * Writes st as one line of JSON to out and flushes it: "app", "uptime_s",
 * every counter and gauge, each rate over the last interval (the time since
 * the last app_stats_log(), or the start) and since the start ("NAME_avg").
 * Safe to call while the counters are being added to.
 */
void app_stats_print_json(app_stats *st, FILE *out);

/**
 * The body of a task that calls app_stats_log() every interval_ms until it
 * is cancelled; arg is an app_stats_periodic. Returns 0.
 */
typedef struct app_stats_periodic {
  app_stats *stats;
  int64_t interval_ms;
} app_stats_periodic;
int app_stats_periodic_task(void *arg);

#ifdef __cplusplus
}
#endif
#endif /* APP_STATS_H */
