/* urls.h: the URLs a run requests, read from arguments, a file or stdin.
 *
 * Every URL is checked once when it is read. A malformed one stays in the
 * list with the reason, so that it is reported in its turn like any other
 * request that failed, and never stops the run.
 */
#ifndef HTTP_CLIENT_URLS_H
#define HTTP_CLIENT_URLS_H

#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>

#include "config.h"

/** One URL to request. */
typedef struct hc_target {
  char *url;       /* as given, for the report */
  char *host;      /* "host:port", the per-host limiter's key; NULL if bad */
  char *error;     /* why the URL is malformed; NULL when it is fine */
  CURLU *parsed;   /* load mode: the URL parsed once, for CURLOPT_CURLU */
  uint64_t weight; /* load mode: its share of the requests */
} hc_target;

/** The URLs of a run, with their weights summed up for picking. */
typedef struct hc_targets {
  size_t n;
  hc_target *items;
  uint64_t *cumulative; /* cumulative[i]: the weights of items 0..i */
  uint64_t total_weight;
} hc_targets;

/**
 * Fills t from the URL arguments and, when input is not NULL, from the file
 * input ("-" for standard input), one URL a line; blank lines and lines
 * starting with '#' are skipped. With weighted set a line may read
 * "WEIGHT URL", and every good URL is kept parsed as well (load mode
 * requests the same URLs again and again: libcurl then skips parsing them
 * each time). Returns 0, or -1 with the reason in why (a file that cannot
 * be read, a bad weight, no URL at all); t is then empty.
 */
int hc_targets_load(hc_targets *t, const app_string_list *urls,
                    const char *input, int weighted, char *why, size_t len);

/**
 * The target of request number index: in fetch mode the index-th URL, in
 * load mode the URLs in turn, each as often as its weight says.
 */
const hc_target *hc_targets_pick(const hc_targets *t, uint64_t index);

/** Frees what hc_targets_load() stored. */
void hc_targets_free(hc_targets *t);

#endif /* HTTP_CLIENT_URLS_H */
