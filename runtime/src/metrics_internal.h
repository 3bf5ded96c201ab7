/* metrics_internal.h: the runtime's own metrics, updated from the core.
 *
 * weft__metrics_builtin_init() registers them once per process (later calls
 * do nothing); weft_main() calls it before any executor starts, and the
 * exporters call it too, so the built-in families are always listed. Until
 * it runs the handles are NULL, which every update function ignores, so a
 * hook never needs a check of its own.
 */
#ifndef WEFT_METRICS_INTERNAL_H
#define WEFT_METRICS_INTERNAL_H

#include <stdint.h>

#include "weft/metrics.h"

/* Tests of internals include this header from C++. */
#ifdef __cplusplus
extern "C" {
#endif

/* weft_tasks_spawned_total: tasks started (root tasks included). */
extern weft_counter *weft__m_tasks_spawned;
/* weft_tasks_alive: tasks started and not yet ended; +1 / -1 with
 * weft_gauge_add. */
extern weft_gauge *weft__m_tasks_alive;
/* weft_context_switches_total: switches into a task or back to the loop. */
extern weft_counter *weft__m_context_switches;
/* weft_loop_turn_seconds: time an executor spends running ready tasks
 * between two polls of its loop; record nanoseconds (scale 1e-9). */
extern weft_histogram *weft__m_loop_turn;
/* weft_loop_lag_seconds: how late a timer fires after its deadline;
 * record nanoseconds (scale 1e-9). */
extern weft_histogram *weft__m_loop_lag;
/* weft_chan_ops_total{op="send"} and {op="recv"}: completed channel sends
 * and receives, blocking and try forms alike (a batch counts its items).
 * LOCAL channels and rendezvous count each operation; SPSC and MPMC rings
 * count 64 at a time as their indices pass a multiple of 64 and the rest
 * in weft_chan_free(), so a live ring's count lags by up to 63 a side. */
extern weft_counter *weft__m_chan_sends;
extern weft_counter *weft__m_chan_recvs;
/* weft_io_read_bytes_total and weft_io_written_bytes_total: bytes moved by
 * TCP and file reads and writes. */
extern weft_counter *weft__m_bytes_read;
extern weft_counter *weft__m_bytes_written;
/* weft_executor_idle_total{end="spin"} and {end="sleep"}: with several
 * executors, how an executor's idle spells ended: work came while it
 * watched its inbox (weft_opts.idle_spin_us), or it went to sleep in its
 * poll. */
extern weft_counter *weft__m_idle_spin;
extern weft_counter *weft__m_idle_sleep;
/* weft_chan_watch_total{end="done"} and {end="parked"}: how the watches of
 * tasks waiting on a rendezvous across executors ended: the partner came
 * while the task watched, or the task parked. */
extern weft_counter *weft__m_watch_done;
extern weft_counter *weft__m_watch_parked;

/* Registers the handles above. Thread-safe and idempotent. */
void weft__metrics_builtin_init(void);

/* Counts one error in weft_errors_total{code="NAME"}, NAME being
 * weft_err_name(code). The handle of each code is cached after its first
 * use, so a repeated code costs about a counter increment; the first use
 * of a code registers its series (a lock and an allocation). code >= 0 is
 * ignored. */
void weft__metrics_error(int code);

#ifdef __cplusplus
}
#endif
#endif /* WEFT_METRICS_INTERNAL_H */
