/* web_scraper: a polite crawler with XPath extraction, on weft.
 *
 * This file holds the options and wires them to the parts: url.c
 * (resolving and normalising), robots.c (RFC 9309), frontier.c (the seen
 * set and the per-host queues), fetch.c (one request through weft_curl),
 * extract.c (charsets, libxml2, XPath), scope.c (domains, patterns, rules),
 * output.c (JSON lines) and crawl.c (the scheduler and the workers). See
 * README.md.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>
#include <libxml/parser.h>
#include <weft.h>

#include "config.h"
#include "crawl.h"
#include "scope.h"
#include "signals.h"
#include "url.h"

#define DEFAULT_AGENT "weft-web-scraper/" WEFT_VERSION_STRING

static void usage_error(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("web_scraper: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
}

/* ---- The table ---------------------------------------------------------- */

static const app_option options[] = {
    APP_OPTION_STRING_LIST(ws_config, seeds,
                           "a URL to start from (the arguments are seeds too)"),
    APP_OPTION_STRING(ws_config, input, NULL,
                      "read more seeds from FILE, one a line (- for standard "
                      "input)"),
    APP_OPTION_INT(ws_config, max_depth, "-1", -1, INT32_MAX,
                   "follow links this far from a seed (0: the seeds only; -1: "
                   "no limit)"),
    APP_OPTION_INT(ws_config, max_pages, "0", 0, INT64_MAX,
                   "fetch at most this many pages (0: no limit)"),
    APP_OPTION_STRING_LIST(ws_config, allow_domain,
                           "crawl this host and its subdomains; repeatable "
                           "(default: the seeds' hosts)"),
    APP_OPTION_STRING_LIST(ws_config, allow,
                           "crawl only URLs that match one of these extended "
                           "regular expressions; repeatable"),
    APP_OPTION_STRING_LIST(ws_config, deny,
                           "never crawl URLs that match this extended regular "
                           "expression; repeatable"),
    APP_OPTION_BOOL(ws_config, sitemap, "false",
                    "also crawl the URLs of the sitemaps that robots.txt "
                    "names (sitemap indexes followed)"),
    APP_OPTION_BOOL(ws_config, ignore_robots, "false",
                    "do not read or obey robots.txt"),
    APP_OPTION_CUSTOM(ws_config, robots_retry, "30s", "DURATION",
                      "a robots.txt answering 5xx, 429 or nothing disallows "
                      "its host this long, then is fetched again (the wait "
                      "doubling, 4 times at most; 0: disallow for the crawl)",
                      app_parse_duration_ms_1e7, NULL,
                      app_format_duration_ms),
    APP_OPTION_STRING(ws_config, user_agent, DEFAULT_AGENT,
                      "the User-Agent sent, and whose robots.txt groups apply"),
    APP_OPTION_INT(ws_config, concurrency, "16", 1, 10000,
                   "requests in flight in all"),
    APP_OPTION_INT(ws_config, per_host, "2", 1, 1000,
                   "requests in flight to one host:port"),
    APP_OPTION_CUSTOM(ws_config, delay, "0", "DURATION",
                      "wait this long between requests to one host (a "
                      "robots.txt Crawl-delay that is longer wins)",
                      app_parse_duration_ms_1e7, NULL,
                      app_format_duration_ms),
    APP_OPTION_CUSTOM(ws_config, rate, "0", "R",
                      "requests per second in all, robots.txt, redirects and "
                      "retries included (0: no limit)",
                      app_parse_rate_1e7, NULL, app_format_rate),
    APP_OPTION_INT(ws_config, retries, "2", 0, 100,
                   "extra attempts after a connection error, a timeout, 429 "
                   "or 5xx, with exponential back-off and jitter, or after "
                   "the Retry-After the server asks"),
    APP_OPTION_INT(ws_config, give_up_after, "8", 0, 1000000,
                   "pages that failed in a row (after their retries) after "
                   "which a host is given up, each failure pausing it a "
                   "little longer first (0: never)"),
    APP_OPTION_CUSTOM(ws_config, timeout, "30s", "DURATION",
                      "give up a request after this long",
                      app_parse_duration_ms_1e7, NULL, app_format_duration_ms),
    APP_OPTION_INT(ws_config, max_body, "10485760", 1, INT64_MAX,
                   "read at most this many bytes of a body"),
    APP_OPTION_INT(ws_config, max_redirects, "10", 0, 100,
                   "redirects followed from one URL"),
    APP_OPTION_STRING_LIST(ws_config, extract,
                           "NAME=XPATH: the string value of the first match "
                           "in each page, or NAME[]=XPATH: every match; "
                           "repeatable"),
    APP_OPTION_STRING(ws_config, rules, NULL,
                      "a JSON file of rules: per URL pattern, the fields to "
                      "extract and whether to follow links"),
    APP_OPTION_STRING(ws_config, output, NULL,
                      "write the JSON lines to FILE, appending (default: "
                      "standard output)"),
    APP_OPTION_STRING(ws_config, state, NULL,
                      "keep the frontier and the seen set in SQLite under DIR "
                      "so that an interrupted crawl resumes"),
    APP_OPTION_STRING(ws_config, redis, NULL,
                      "share the frontier and the seen set of --job through "
                      "Redis at HOST:PORT"),
    APP_OPTION_STRING(ws_config, job, NULL,
                      "the name of a crawl shared through --redis"),
    APP_OPTION_STRING(ws_config, node, NULL,
                      "with --redis, the name of this machine (default: its "
                      "host name): a process reads the output of a dead one "
                      "of its node to settle what it was recording"),
    APP_OPTION_CUSTOM(ws_config, claim_timeout, "10s", "DURATION",
                      "with --redis, how long after a process stops renewing "
                      "its lease (it died, or hangs) the others take again the "
                      "URLs it held (at least 1s)",
                      app_parse_duration_ms_1e7, NULL,
                      app_format_duration_ms),
    APP_OPTION_CUSTOM(ws_config, grace, "10s", "DURATION",
                      "after SIGINT or SIGTERM, how long the requests in "
                      "flight may take to finish",
                      app_parse_duration_ms_1e7, NULL,
                      app_format_duration_ms),
    APP_OPTION_BOOL(ws_config, progress, "true",
                    "draw a progress line on standard error when it is a "
                    "terminal"),
    APP_OPTION_LOG_LEVEL(ws_config, log_level),
};

static const app_spec spec = APP_SPEC(
    "web_scraper",
    "Crawls web sites from the seed URLs, politely (robots.txt, per-host "
    "limits, delays), extracting fields with XPath, and writes one JSON line "
    "per URL. Usage: web_scraper [OPTIONS] URL...",
    options);

/* Non-zero when the long flag arg takes the next argument as its value. */
static int flag_takes_value(const char *arg) {
  const char *name = arg + 2;
  if (strchr(name, '=') != NULL) return 0;
  if (strcmp(name, "config") == 0) return 1;
  char key[64];
  size_t len = strlen(name);
  if (len >= sizeof key) return 0;
  for (size_t i = 0; i <= len; i++) key[i] = name[i] == '-' ? '_' : name[i]; /* NOLINT(bugprone-narrowing-conversions): char in, char out */
  for (size_t i = 0; i < spec.n_options; i++)
    if (strcmp(spec.options[i].name, key) == 0)
      return spec.options[i].type != APP_OPT_BOOL;
  return 0;
}

/* Rewrites argv into out: URL arguments become --seeds URL, a lone "-"
 * becomes --input -. out has room for 2 * argc + 1. */
static int rewrite_args(int argc, char **argv, char **out) {
  int n = 0, urls_only = 0;
  out[n++] = argv[0];
  for (int i = 1; i < argc; i++) {
    char *arg = argv[i];
    if (!urls_only && strcmp(arg, "--") == 0) {
      urls_only = 1;
    } else if (urls_only || arg[0] != '-') {
      out[n++] = "--seeds";
      out[n++] = arg;
    } else if (strcmp(arg, "-") == 0) {
      out[n++] = "--input";
      out[n++] = "-";
    } else {
      out[n++] = arg;
      if (arg[1] == '-' && flag_takes_value(arg) && i + 1 < argc)
        out[n++] = argv[++i];
    }
  }
  return n;
}

/* ---- Seeds -------------------------------------------------------------- */

typedef struct seed_list {
  char **items;
  size_t n, cap;
} seed_list;

/* Normalises text as a seed and adds it. Returns 0, or -1 after naming the
 * malformed seed (where says where it came from). */
static int add_seed(seed_list *l, const char *text, const char *where) {
  char *url, why[128];
  if (ws_url_resolve(NULL, text, &url, why, sizeof why) != 0) {
    usage_error("%s: malformed seed URL \"%s\": %s", where, text, why);
    return -1;
  }
  if (l->n == l->cap) {
    size_t cap = l->cap ? l->cap * 2 : 16;
    char **g = realloc(l->items, cap * sizeof *g);
    if (g == NULL) {
      free(url);
      usage_error("out of memory");
      return -1;
    }
    l->items = g;
    l->cap = cap;
  }
  l->items[l->n++] = url;
  return 0;
}

/* Reads seeds from path ("-": stdin), one a line; blank lines and lines
 * starting with '#' are skipped. */
static int read_seeds(seed_list *l, const char *path) {
  FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
  if (f == NULL) {
    usage_error("--input: cannot read %s: %s", path, strerror(errno));
    return -1;
  }
  char *line = NULL;
  size_t cap = 0;
  ssize_t n;
  int rc = 0, lineno = 0;
  while (rc == 0 && (n = getline(&line, &cap, f)) >= 0) {
    lineno++;
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r' ||
                     line[n - 1] == ' ' || line[n - 1] == '\t'))
      line[--n] = '\0';
    char *s = line;
    while (*s == ' ' || *s == '\t') s++;
    if (*s == '\0' || *s == '#') continue;
    char where[600];
    snprintf(where, sizeof where, "%s:%d", strcmp(path, "-") ? path : "stdin",
             lineno);
    rc = add_seed(l, s, where);
  }
  free(line);
  if (f != stdin) fclose(f);
  return rc;
}

static void seeds_free(seed_list *l) {
  for (size_t i = 0; i < l->n; i++) free(l->items[i]);
  free(l->items);
}

/* ---- Running ------------------------------------------------------------ */

typedef struct run_args {
  ws_crawl_input in;
  ws_totals totals;
  int rc;
} run_args;

static int run_root(void *arg) {
  run_args *a = arg;
  weft_task_set_name("crawl");
  a->rc = ws_crawl_run(&a->in, &a->totals);
  return 0;
}

/* The summary on standard error: pages by status, bytes, time, rate. */
static void print_summary(const ws_totals *t) {
  char status[1024] = "";
  size_t off = 0;
  for (int s = 0; s < 600 && off < sizeof status - 32; s++)
    if (t->by_status[s] > 0)
      off += (size_t)snprintf(status + off, sizeof status - off,
                              " status_%d=%" PRIu64, s, t->by_status[s]);
  fprintf(stderr,
          "web_scraper: summary pages=%" PRIu64 " bytes=%" PRIu64
          " seconds=%.3f pages_per_s=%.1f requests=%" PRIu64
          " errors=%" PRIu64 " disallowed=%" PRIu64 "%s%s\n",
          t->pages, t->bytes, t->seconds,
          t->seconds > 0 ? (double)t->pages / t->seconds : 0.0, t->requests,
          t->errors, t->disallowed, status,
          t->interrupted ? " interrupted=1" : "");
}

int main(int argc, char **argv) {
  char **args = calloc((size_t)argc * 2 + 2, sizeof *args);
  if (args == NULL) return APP_EXIT_USAGE;
  int n = rewrite_args(argc, argv, args);
  ws_config cfg;
  int rc = app_config_load(&spec, &cfg, n, args);
  free(args);
  if (rc != APP_RUN) return rc;
  int exit_code = APP_EXIT_USAGE;
  seed_list seeds = {0};
  ws_field *fields = NULL;
  size_t n_fields = 0;
  ws_scope *scope = NULL;
  FILE *out = NULL;
  xmlInitParser();

  for (size_t i = 0; i < cfg.seeds.n; i++)
    if (add_seed(&seeds, cfg.seeds.items[i], "seed") != 0) goto done;
  if (cfg.input != NULL && read_seeds(&seeds, cfg.input) != 0) goto done;
  if (seeds.n == 0) {
    usage_error("no seed URLs: give them as arguments, with --input FILE, or "
                "on standard input with - (see --help)");
    goto done;
  }
  if ((cfg.redis != NULL) != (cfg.job != NULL)) {
    usage_error("--redis and --job go together: the Redis server and the name "
                "of the crawl its processes share");
    goto done;
  }
  if (cfg.redis != NULL) {
    app_addr addr;
    char why[128];
    if (app_addr_parse(cfg.redis, &addr, why, sizeof why) != 0) {
      usage_error("--redis: %s", why);
      goto done;
    }
#ifndef WS_HAVE_REDIS
    usage_error("--redis: this build has no Redis (the weft_redis module)");
    goto done;
#endif
    if (cfg.claim_timeout < 1000) {
      usage_error("--claim-timeout: at least 1s: a live process renews its "
                  "lease several times within it");
      goto done;
    }
    if (cfg.state != NULL) {
      usage_error("--state and --redis exclude each other: the frontier is in "
                  "one place");
      goto done;
    }
  }
#ifndef WS_HAVE_SQLITE
  if (cfg.state != NULL) {
    usage_error("--state: this build has no SQLite (the weft_sqlite module)");
    goto done;
  }
#endif
  fields = calloc(cfg.extract.n ? cfg.extract.n : 1, sizeof *fields);
  if (fields == NULL) goto done;
  for (size_t i = 0; i < cfg.extract.n; i++) {
    char why[256];
    if (ws_field_parse(cfg.extract.items[i], &fields[i], why, sizeof why) != 0) {
      usage_error("--extract: %s", why);
      goto done;
    }
    n_fields++;
  }
  scope = ws_scope_new(cfg.allow_domain.items, cfg.allow_domain.n, seeds.items,
                       seeds.n, cfg.allow.items, cfg.allow.n, cfg.deny.items,
                       cfg.deny.n, cfg.rules);
  if (scope == NULL) goto done;
  if (cfg.output != NULL && strcmp(cfg.output, "-") != 0) {
    out = fopen(cfg.output, "a");
    if (out == NULL) {
      usage_error("--output: cannot write %s: %s", cfg.output, strerror(errno));
      goto done;
    }
  } else {
    out = stdout;
  }
  setvbuf(out, NULL, _IOFBF, 1 << 16);
  if (weft_log_enabled(WEFT_LOG_DEBUG)) app_config_log(&spec, &cfg);
  app_ignore_sigpipe();
  curl_global_init(CURL_GLOBAL_DEFAULT);

  static run_args ra; /* the totals are 5 KiB: not on the stack */
  memset(&ra, 0, sizeof ra);
  ra.in = (ws_crawl_input){.cfg = &cfg,
                           .seeds = seeds.items,
                           .n_seeds = seeds.n,
                           .scope = scope,
                           .fields = fields,
                           .n_fields = n_fields,
                           .out = out,
                           .progress = cfg.progress && isatty(STDERR_FILENO)};
  weft_opts wo = {.executors = 1};
  int err = weft_main_opts(&wo, run_root, &ra);
  if (err == 0) err = ra.rc;
  if (fflush(out) != 0 || ferror(out)) {
    usage_error("cannot write the output: %s", strerror(errno));
    exit_code = 1;
  } else if (err < 0) {
    usage_error("%s", weft_strerror(err));
    exit_code = 1;
  } else {
    print_summary(&ra.totals);
    /* With --state or --redis an interrupted crawl is a paused one: what
     * it left stays queued for the next run or the other processes. */
    if (ra.totals.interrupted && cfg.state == NULL && cfg.redis == NULL)
      exit_code = 128 + ra.totals.interrupted;
    else
      exit_code = ra.totals.seeds_tried > 0 && ra.totals.seeds_fetched == 0 ? 1 : 0;
  }
  curl_global_cleanup();
done:
  if (out != NULL && out != stdout) fclose(out);
  for (size_t i = 0; i < n_fields; i++) ws_field_free(&fields[i]);
  free(fields);
  ws_scope_free(scope);
  seeds_free(&seeds);
  xmlCleanupParser();
  app_config_free(&spec, &cfg);
  return exit_code;
}
