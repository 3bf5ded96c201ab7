/* runner.h: running the requests on weft.
 *
 * The run starts the runtime with --executors executors and spreads
 * --concurrency worker tasks over them; each worker makes one request at a
 * time, so no more than --concurrency are ever in flight. Each executor has
 * a weft_curl client of its own, used by its workers only. Workers take
 * request numbers from one shared counter; before each attempt they wait
 * for the per-host limiter, then the global one (weft_limiter, which serves
 * waiters in order of arrival, so the rate holds however many wait).
 *
 * Stopping: the end of -z DURATION, or a first SIGINT/SIGTERM, stops
 * workers taking new requests (and cuts short their waits for a limiter or
 * a backoff); requests in flight finish. After a signal they get
 * --shutdown-grace-ms, then are cancelled, as they are by a second signal
 * or by --deadline.
 */
#ifndef HTTP_CLIENT_RUNNER_H
#define HTTP_CLIENT_RUNNER_H

#include "fetch.h"
#include "options.h"
#include "report.h"
#include "urls.h"

/** What a run is given. */
typedef struct hc_run_input {
  const hc_config *cfg;
  const hc_targets *targets;
  const hc_request *request;
  hc_report *report; /* lines and progress counters */
  int progress;      /* draw the progress bar on stderr */
} hc_run_input;

/**
 * Runs every request of in, then fills *total (zeroed first) with the
 * merged tallies and *facts with how the run went. Returns 0, or a
 * negative error when the runtime or a client could not be started.
 */
int hc_run(const hc_run_input *in, hc_tally *total, hc_run_facts *facts);

#endif /* HTTP_CLIENT_RUNNER_H */
