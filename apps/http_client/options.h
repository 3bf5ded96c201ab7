/* options.h: the http_client's configuration, from config.json and flags.
 *
 * The option table (options.c) gives every JSON key and long flag through
 * apps/common's config loader. Two things the loader does not do are done
 * here before it runs: short flags as hey and oha spell them (-c 50 -n 1000
 * -z 10s) are rewritten to their long forms, and arguments that are not
 * flags are taken as URLs.
 */
#ifndef HTTP_CLIENT_OPTIONS_H
#define HTTP_CLIENT_OPTIONS_H

#include <stdint.h>

#include "config.h"

/** What to do with the URLs. */
typedef enum hc_mode {
  HC_MODE_AUTO = 0, /* load when -n or -z is given, else fetch */
  HC_MODE_FETCH,    /* every URL once */
  HC_MODE_LOAD      /* N requests or a duration over the (weighted) URLs */
} hc_mode;

/** Whether one JSON line is written per request. */
typedef enum hc_lines {
  HC_LINES_AUTO = 0, /* fetch mode: yes; load mode: only with --output */
  HC_LINES_ON,
  HC_LINES_OFF
} hc_lines;

/** How the summary is written on standard output. */
typedef enum hc_summary {
  HC_SUMMARY_AUTO = 0, /* text on a terminal, else one JSON line */
  HC_SUMMARY_TEXT,
  HC_SUMMARY_JSON,
  HC_SUMMARY_NONE
} hc_summary;

/** Every option. A field's name is its JSON key (see options.c). */
typedef struct hc_config {
  app_string_list urls;     /* URLs given as arguments or --urls */
  char *input;              /* a file of URLs, "-" for standard input */
  int mode;                 /* hc_mode */
  int64_t concurrency;      /* requests in flight at most */
  int64_t requests;         /* load mode: requests in all (0: none set) */
  int64_t duration;         /* load mode: issue requests this long, ms */
  double rate;              /* requests per second in all (0: no limit) */
  double host_rate;         /* requests per second per host (0: none) */
  int64_t burst;            /* tokens a limiter can save up */
  int64_t timeout;          /* one attempt at most this long, ms (0: none) */
  int64_t deadline;         /* the whole run at most this long, ms (0: none) */
  int64_t retries;          /* extra attempts (-1: 2 fetch, 0 load) */
  int64_t retry_backoff_ms; /* the first backoff */
  int64_t retry_max_backoff_ms; /* the longest backoff */
  int64_t retry_after_max;      /* longest Retry-After honoured, ms */
  char *method;                 /* GET unless given (POST with a body) */
  app_string_list header;       /* "Name: value" */
  char *body;                   /* request body text */
  char *body_file;              /* request body from a file */
  char *content_type;           /* Content-Type header shortcut */
  int redirects;                /* follow redirects */
  int64_t max_redirects;        /* at most this many */
  long http_version;            /* a CURL_HTTP_VERSION_* value */
  int tls_verify;               /* verify certificates and host names */
  char *output;                 /* request lines to this file */
  int lines;                    /* hc_lines */
  int summary;                  /* hc_summary */
  int progress;                 /* progress bar when stderr is a terminal */
  int64_t executors;            /* executor threads (0: one per core) */
  int64_t idle_spin_us;         /* weft_opts.idle_spin_us */
  int64_t shutdown_grace_ms;    /* SIGINT: wait this long for requests */
  int log_level;
} hc_config;

/**
 * Loads the configuration from argv: rewrites short flags, gathers the URL
 * arguments, runs app_config_load() and checks the options against each
 * other. Returns APP_RUN, APP_EXIT_OK (--help printed) or APP_EXIT_USAGE
 * (a message printed; cfg is then freed).
 */
int hc_options_load(hc_config *cfg, int argc, char **argv);

/** Frees what hc_options_load() stored in cfg. */
void hc_options_free(hc_config *cfg);

/** Logs the effective configuration at level debug. */
void hc_options_log(const hc_config *cfg);

/** The mode the run takes: cfg->mode with AUTO decided. */
hc_mode hc_options_mode(const hc_config *cfg);

/** The number of retries the run takes: cfg->retries with -1 decided. */
int64_t hc_options_retries(const hc_config *cfg);

/** Prints an error "http_client: ..." on stderr (for exit code 2). */
void hc_usage_error(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;

#endif /* HTTP_CLIENT_OPTIONS_H */
