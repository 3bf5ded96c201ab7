/* crawl.h: the crawl: its options, and running it.
 *
 * One executor runs it all: --concurrency worker tasks take jobs from a
 * scheduler that looks over the hosts in turn and hands out the first URL
 * whose host is ready (robots.txt known, a free slot of --per-host, its
 * --delay or Crawl-delay passed, no back-off pending) and whose depth is
 * the level being served, so the crawl is breadth first and every page's
 * depth is its shortest distance from a seed. Each host has a semaphore
 * (requests in flight) and a token bucket (the delay between requests);
 * --rate is one token bucket for all. Pages are parsed on the thread pool
 * (weft_blocking) while the workers go on fetching.
 */
#ifndef WS_CRAWL_H
#define WS_CRAWL_H

#include <stdint.h>
#include <stdio.h>

#include "config.h"
#include "extract.h"
#include "frontier.h"
#include "scope.h"

/** The options (main.c's table fills it). */
typedef struct ws_config {
  app_string_list seeds; /**< the URL arguments */
  char *input;           /**< more seeds, one a line; "-": stdin */
  int64_t max_depth;     /**< -1: no limit */
  int64_t max_pages;     /**< 0: no limit */
  app_string_list allow_domain;
  app_string_list allow;
  app_string_list deny;
  int sitemap; /**< also read the sitemaps robots.txt names */
  int ignore_robots;
  int64_t robots_retry; /**< ms a host whose robots.txt failed waits before
                            it is fetched again (doubling); 0: never */
  char *user_agent;
  int64_t concurrency;
  int64_t per_host;
  int64_t delay;   /**< ms between requests to one host */
  double rate;     /**< requests per second in all; 0: no limit */
  int64_t retries; /**< extra attempts */
  int64_t give_up_after; /**< failed pages in a row that give a host up */
  int64_t timeout; /**< ms per request */
  int64_t max_body;
  int64_t max_redirects;
  app_string_list extract;
  char *rules;
  char *output;
  char *state;
  char *redis;
  char *job;
  char *node; /**< this machine's name in a --redis job; NULL: its host name */
  int64_t claim_timeout; /**< ms a process's lease lasts unrenewed */
  int64_t grace; /**< ms to finish in-flight requests after a signal */
  int progress;
  int log_level;
} ws_config;

/** What a crawl did, for the summary and the exit code. */
typedef struct ws_totals {
  uint64_t pages;      /**< records written */
  uint64_t bytes;
  uint64_t errors;     /**< records with an error */
  uint64_t disallowed; /**< URLs robots.txt kept us from */
  uint64_t requests;   /**< HTTP requests made (robots, hops, retries) */
  uint64_t seeds, seeds_tried, seeds_fetched; /**< records of seeds, with a response */
  uint64_t by_status[600];
  int interrupted; /**< the signal number that stopped it, or 0 */
  double seconds;
} ws_totals;

/** What main.c prepared: the checked options, seeds and fields. */
typedef struct ws_crawl_input {
  const ws_config *cfg;
  char **seeds; /**< normalised */
  size_t n_seeds;
  ws_scope *scope;
  ws_field *fields; /**< from --extract */
  size_t n_fields;
  FILE *out;
  int progress; /**< draw the progress line */
} ws_crawl_input;

/** Runs the crawl to its end (or a signal) inside weft_main(). Returns 0,
 * or a negative error when it could not start. */
int ws_crawl_run(const ws_crawl_input *in, ws_totals *totals);

#endif /* WS_CRAWL_H */
