/* report.h: what a run tells: a JSON line per request, the progress bar
 * and the summary.
 *
 * Each executor tallies the requests its tasks make in an hc_tally of its
 * own (no sharing, no atomics); the tallies are merged once the run is
 * over. The few numbers the progress bar needs are shared atomics.
 */
#ifndef HTTP_CLIENT_REPORT_H
#define HTTP_CLIENT_REPORT_H

#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>

#include "hist.h"

/** Why a request failed without a usable response. */
typedef enum hc_error {
  HC_OK = 0,
  HC_ERR_MALFORMED_URL,
  HC_ERR_CONNECTION_REFUSED,
  HC_ERR_DNS,
  HC_ERR_TIMEOUT,
  HC_ERR_TOO_MANY_REDIRECTS,
  HC_ERR_TLS,
  HC_ERR_CONNECTION_RESET,
  HC_ERR_SEND,
  HC_ERR_EMPTY_REPLY,
  HC_ERR_PROTOCOL,
  HC_ERR_TRUNCATED,
  HC_ERR_CANCELLED,
  HC_ERR_DEADLINE,
  HC_ERR_OTHER,
  HC_ERR_COUNT
} hc_error;

/** The stable name of an error ("connection_refused"). */
const char *hc_error_name(hc_error e);

/** What became of one request, after its last attempt. */
typedef struct hc_result {
  const char *url;
  long status;              /* HTTP status of the last response; 0: none */
  uint64_t bytes;           /* body bytes of the last response */
  int64_t ttfb_us;          /* last attempt: first byte; -1 when none */
  int64_t total_us;         /* last attempt: whole transfer; -1 when none */
  int64_t elapsed_us;       /* from the first attempt to the end, backoffs in */
  int attempts;             /* attempts made (0 for a malformed URL) */
  long redirects;           /* redirects followed in the last attempt */
  const char *http_version; /* of the last response ("1.1", "2"); NULL */
  hc_error error;           /* HC_OK when a response came */
  const char *detail;       /* what went wrong, in words; NULL when nothing */
} hc_result;

/** Non-zero when r counts as a success: a response below 400. */
int hc_result_ok(const hc_result *r);

/** The largest status counted by value; larger ones count as 999. */
#define HC_STATUS_MAX 999

/** One executor's count of the requests its tasks made. */
typedef struct hc_tally {
  hc_hist latency;                    /* total_us of requests with a response */
  uint64_t status[HC_STATUS_MAX + 1]; /* responses by status */
  uint64_t errors[HC_ERR_COUNT];      /* failures without a response */
  uint64_t requests, ok, failed, attempts, bytes;
} hc_tally;

/** Where the per-request lines go, and the shared progress counters. */
typedef struct hc_report {
  FILE *lines;                /* NULL: no per-request lines */
  int counting;               /* keep done and failed (for the progress
                                 bar): atomics shared by the executors
                                 cost each request a contended cache line */
  _Atomic uint64_t done;      /* requests finished */
  _Atomic uint64_t failed;    /* of which failed */
  _Atomic uint64_t in_flight; /* attempts in flight now */
  _Atomic uint64_t max_in_flight;
} hc_report;

/**
 * Counts r in t (the calling executor's tally), bumps the shared counters
 * and writes r's JSON line when lines are on. One fwrite() per line, so
 * lines of different executors never interleave.
 */
void hc_report_request(hc_report *rep, hc_tally *t, const hc_result *r);

/** Adds every count of from to into. */
void hc_tally_merge(hc_tally *into, const hc_tally *from);

/** The facts about a run that the summary states besides the tally. */
typedef struct hc_run_facts {
  const char *mode;  /* "fetch" or "load" */
  double elapsed_s;  /* from the first request to the end */
  uint64_t planned;  /* requests meant to be made; 0: unbounded */
  uint64_t not_sent; /* planned requests never made (stopped early) */
  int concurrency, executors;
  int workers;         /* workers started: at most concurrency, and requests */
  double rate;         /* 0: no limit */
  const char *stopped; /* NULL, "signal", "deadline" */
} hc_run_facts;

/** Writes the summary as one JSON line {"summary": {...}} to out. */
void hc_report_summary_json(FILE *out, const hc_tally *t,
                            const hc_run_facts *f);

/** Writes the summary as text, with a histogram, to out. */
void hc_report_summary_text(FILE *out, const hc_tally *t,
                            const hc_run_facts *f);

/**
 * Draws the progress bar on out (a terminal) in place: done of planned
 * (planned 0: by elapsed of duration_ms; both 0: a count), the rate so far
 * and the failures. final clears the line.
 */
void hc_report_progress(FILE *out, const hc_report *rep, uint64_t planned,
                        int64_t elapsed_ms, int64_t duration_ms, int final);

#endif /* HTTP_CLIENT_REPORT_H */
