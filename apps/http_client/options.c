/* options.c: the option table, short flags and URL arguments. */
#include "options.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <weft.h>

/* ---- Values the common loader does not know ------------------------------ */

/* Looks the text of a string option (flag or JSON) up among names; stores
 * the index plus base in the int field. */
static int parse_choice(void *field, const char *text, const cJSON *json,
                        char *why, size_t why_len, const char *const *names,
                        int n, const char *list) {
  if (json != NULL) {
    if (!cJSON_IsString(json)) {
      snprintf(why, why_len, "expected one of %s", list);
      return -1;
    }
    text = json->valuestring;
  }
  for (int i = 0; i < n; i++) {
    if (strcmp(text, names[i]) == 0) {
      *(int *)field = i;
      return 0;
    }
  }
  snprintf(why, why_len, "expected one of %s, not \"%s\"", list, text);
  return -1;
}

/* The parsers of the enumerated options: mode, lines, summary. */
static int parse_mode(void *field, const char *text, const cJSON *json,
                      char *why, size_t why_len) {
  static const char *const names[] = {"auto", "fetch", "load"};
  return parse_choice(field, text, json, why, why_len, names, 3,
                      "auto, fetch or load");
}

static int parse_lines(void *field, const char *text, const cJSON *json,
                       char *why, size_t why_len) {
  static const char *const names[] = {"auto", "on", "off"};
  return parse_choice(field, text, json, why, why_len, names, 3,
                      "auto, on or off");
}

static int parse_summary(void *field, const char *text, const cJSON *json,
                         char *why, size_t why_len) {
  static const char *const names[] = {"auto", "text", "json", "none"};
  return parse_choice(field, text, json, why, why_len, names, 4,
                      "auto, text, json or none");
}

/* Parses an HTTP version name into a CURL_HTTP_VERSION_* value. */
static int parse_http_version(void *field, const char *text, const cJSON *json,
                              char *why, size_t why_len) {
  static const char *const names[] = {"auto", "1.0", "1.1", "2",
                                      "2-prior-knowledge"};
  static const long values[] = {CURL_HTTP_VERSION_NONE, CURL_HTTP_VERSION_1_0,
                                CURL_HTTP_VERSION_1_1, CURL_HTTP_VERSION_2TLS,
                                CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE};
  int i;
  if (parse_choice(&i, text, json, why, why_len, names, 5,
                   "auto, 1.0, 1.1, 2 or 2-prior-knowledge") != 0)
    return -1;
  *(long *)field = values[i];
  return 0;
}

/* How the configuration's log line shows the values above, as a flag would
 * give them. */
static void format_choice(const void *field, char *out, size_t len,
                          const char *const *names, int n) {
  int i = *(const int *)field;
  snprintf(out, len, "%s", i >= 0 && i < n ? names[i] : "?");
}

static void format_mode(const void *field, char *out, size_t len) {
  static const char *const names[] = {"auto", "fetch", "load"};
  format_choice(field, out, len, names, 3);
}

static void format_lines(const void *field, char *out, size_t len) {
  static const char *const names[] = {"auto", "on", "off"};
  format_choice(field, out, len, names, 3);
}

static void format_summary(const void *field, char *out, size_t len) {
  static const char *const names[] = {"auto", "text", "json", "none"};
  format_choice(field, out, len, names, 4);
}

static void format_http_version(const void *field, char *out, size_t len) {
  long v = *(const long *)field;
  const char *name = v == CURL_HTTP_VERSION_1_0             ? "1.0"
                     : v == CURL_HTTP_VERSION_1_1           ? "1.1"
                     : v == CURL_HTTP_VERSION_2TLS          ? "2"
                     : v == CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE ? "2-prior-knowledge"
                                                            : "auto";
  snprintf(out, len, "%s", name);
}

/* ---- The table ----------------------------------------------------------- */

static const app_option hc_option_table[] = {
    APP_OPTION_STRING_LIST(hc_config, urls,
                           "a URL to fetch; plain arguments are URLs too"),
    APP_OPTION_STRING(hc_config, input, NULL,
                      "read URLs from this file, one a line (\"-\": standard "
                      "input); in load mode a line may be \"WEIGHT URL\""),
    APP_OPTION_CUSTOM(hc_config, mode, "auto", "MODE",
                      "fetch: every URL once; load: -n requests or -z "
                      "duration over the URLs; auto: load when -n or -z is "
                      "given",
                      parse_mode, NULL, format_mode),
    APP_OPTION_INT(hc_config, concurrency, "50", 1, 1000000,
                   "requests in flight at most (-c)"),
    APP_OPTION_INT(hc_config, requests, "0", 0, INT64_MAX,
                   "load mode: requests to make in all (-n; default 200 "
                   "without -z)"),
    APP_OPTION_CUSTOM(hc_config, duration, "0", "DURATION",
                      "load mode: keep issuing requests this long, as 10s, "
                      "2m, 500ms (-z; 0: until -n are made)",
                      app_parse_duration_ms, NULL, app_format_duration_ms),
    APP_OPTION_CUSTOM(hc_config, rate, "0", "R",
                      "requests per second in all, retries included (-q; 0: "
                      "no limit)",
                      app_parse_rate, NULL, app_format_rate),
    APP_OPTION_CUSTOM(hc_config, host_rate, "0", "R",
                      "requests per second to any one host:port (0: no limit)",
                      app_parse_rate, NULL, app_format_rate),
    APP_OPTION_INT(hc_config, burst, "1", 1, 1000000,
                   "requests the rate limiters let through at once after a "
                   "quiet spell"),
    APP_OPTION_CUSTOM(hc_config, timeout, "30s", "DURATION",
                      "one attempt of a request at most this long, in seconds "
                      "or with a unit (-t; 0: no limit)",
                      app_parse_duration_ms, NULL, app_format_duration_ms),
    APP_OPTION_CUSTOM(hc_config, deadline, "0", "DURATION",
                      "the whole run at most this long: requests still in "
                      "flight then are cancelled (0: no limit)",
                      app_parse_duration_ms, NULL, app_format_duration_ms),
    APP_OPTION_INT(hc_config, retries, "-1", -1, 100,
                   "extra attempts after a connection error, a 5xx or a 429 "
                   "(-1: 2 in fetch mode, 0 in load mode)"),
    APP_OPTION_INT(hc_config, retry_backoff_ms, "100", 0, INT32_MAX,
                   "the first backoff before a retry, in milliseconds; it "
                   "doubles per retry, with jitter"),
    APP_OPTION_INT(hc_config, retry_max_backoff_ms, "10000", 0, INT32_MAX,
                   "the longest backoff, in milliseconds"),
    APP_OPTION_CUSTOM(hc_config, retry_after_max, "60s", "DURATION",
                      "honour a Retry-After up to this long; a longer one "
                      "ends the request's retries",
                      app_parse_duration_ms, NULL, app_format_duration_ms),
    APP_OPTION_STRING(hc_config, method, NULL,
                      "the request method (-m; default GET, or POST with a "
                      "body)"),
    APP_OPTION_STRING_LIST(hc_config, header,
                           "a request header \"Name: value\"; repeat for "
                           "several (-H)"),
    APP_OPTION_STRING(hc_config, body, NULL, "the request body (-d)"),
    APP_OPTION_STRING(hc_config, body_file, NULL,
                      "send this file's contents as the body (-D)"),
    APP_OPTION_STRING(hc_config, content_type, NULL,
                      "the Content-Type of the body (-T)"),
    APP_OPTION_BOOL(hc_config, redirects, "true",
                    "follow redirects (--no-redirects: report the 3xx)"),
    APP_OPTION_INT(hc_config, max_redirects, "10", 0, 1000,
                   "redirects followed at most; one more fails the request "
                   "with too_many_redirects"),
    APP_OPTION_CUSTOM(hc_config, http_version, "auto", "VERSION",
                      "auto, 1.0, 1.1, 2 (over TLS) or 2-prior-knowledge",
                      parse_http_version, NULL, format_http_version),
    APP_OPTION_BOOL(hc_config, tls_verify, "true",
                    "verify TLS certificates and host names (-k or "
                    "--insecure: don't)"),
    APP_OPTION_STRING(hc_config, output, NULL,
                      "write the per-request JSON lines to this file instead "
                      "of standard output (-o)"),
    APP_OPTION_CUSTOM(hc_config, lines, "auto", "WHEN",
                      "one JSON line per request: on, off, or auto (fetch "
                      "mode: on; load mode: only with --output)",
                      parse_lines, NULL, format_lines),
    APP_OPTION_CUSTOM(hc_config, summary, "auto", "FORMAT",
                      "the summary on standard output: text, json, none, or "
                      "auto (text on a terminal, else one JSON line)",
                      parse_summary, NULL, format_summary),
    APP_OPTION_BOOL(hc_config, progress, "true",
                    "draw a progress bar on standard error when it is a "
                    "terminal"),
    APP_OPTION_EXECUTORS(hc_config, executors, "0"),
    APP_OPTION_IDLE_SPIN(hc_config, idle_spin_us),
    APP_OPTION_INT(hc_config, shutdown_grace_ms, "5000", 0, INT32_MAX,
                   "on SIGINT or SIGTERM, stop issuing and give requests in "
                   "flight this long, in milliseconds, before cancelling "
                   "them (a second signal cancels them at once)"),
    APP_OPTION_LOG_LEVEL(hc_config, log_level),
};

static const app_spec hc_spec = {
    .name = "http_client",
    .summary =
    "An HTTP client built on weft. Fetch mode fetches every URL once (from "
    "the arguments, --input FILE or --input - for standard input); load mode "
    "sends -n requests or keeps sending for -z DURATION to one URL or a "
    "weighted list, like hey or oha. One JSON line per request, a summary "
    "with counts, throughput, latency percentiles and a histogram at the "
    "end. Exit code 0 when every request succeeded (a response below 400), "
    "1 when some failed, 2 for a bad option.",
    .options = hc_option_table,
    .n_options = sizeof hc_option_table / sizeof hc_option_table[0],
    .operands = "[URL ...]",
};

/* ---- Short flags and URL arguments --------------------------------------- */

/* A short flag and the long flag it stands for. */
typedef struct short_flag {
  char letter;
  const char *flag;
  int takes_value;
} short_flag;

static const short_flag short_flags[] = {
    {'c', "--concurrency", 1},   {'n', "--requests", 1},
    {'z', "--duration", 1},      {'q', "--rate", 1},
    {'t', "--timeout", 1},       {'m', "--method", 1},
    {'H', "--header", 1},        {'d', "--body", 1},
    {'D', "--body-file", 1},     {'T', "--content-type", 1},
    {'o', "--output", 1},        {'i', "--input", 1},
    {'k', "--no-tls-verify", 0},
};

/* Long spellings the table does not have, as oha and curl users type
 * them. */
static const struct {
  const char *alias, *flag;
} long_aliases[] = {
    {"--insecure", "--no-tls-verify"},
    {"--url", "--urls"},
    {"--http2", "--http-version=2"},
};

void hc_usage_error(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("http_client: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
}

/* Non-zero when the long flag arg (with its leading dashes, maybe with
 * "=value") takes the next argument as its value. */
static int long_flag_takes_value(const char *arg) {
  const char *name = arg + 2;
  if (strchr(name, '=') != NULL) return 0;
  if (strcmp(name, "config") == 0) return 1;
  char key[64];
  size_t len = strlen(name);
  if (len >= sizeof key) return 0;
  for (size_t i = 0; i <= len; i++) key[i] = name[i] == '-' ? '_' : name[i]; /* NOLINT(bugprone-narrowing-conversions): char in, char out */
  for (size_t i = 0; i < hc_spec.n_options; i++) {
    if (strcmp(hc_spec.options[i].name, key) == 0)
      return hc_spec.options[i].type != APP_OPT_BOOL;
  }
  /* --no-NAME of a bool, or an unknown flag the loader will report. */
  return 0;
}

/* Rewrites argv into out (long flags only, URLs as --urls URL). Returns the
 * new argc, or -1 after printing an error. out has room for 2 * argc + 2. */
static int rewrite_args(int argc, char **argv, char **out) {
  int n = 0, urls_only = 0;
  out[n++] = argv[0];
  for (int i = 1; i < argc; i++) {
    char *arg = argv[i];
    if (!urls_only && strcmp(arg, "--") == 0) {
      urls_only = 1;
      continue;
    }
    if (urls_only || arg[0] != '-') {
      out[n++] = "--urls";
      out[n++] = arg;
      continue;
    }
    if (strcmp(arg, "-") == 0) {
      out[n++] = "--input";
      out[n++] = "-";
      continue;
    }
    if (arg[1] == '-') {
      const char *flag = arg;
      for (size_t k = 0; k < sizeof long_aliases / sizeof long_aliases[0]; k++)
        if (strcmp(arg, long_aliases[k].alias) == 0)
          flag = long_aliases[k].flag;
      out[n++] = (char *)flag;
      if (long_flag_takes_value(flag) && i + 1 < argc) out[n++] = argv[++i];
      continue;
    }
    /* A short flag: -c 10, -c10, or -k. */
    const short_flag *sf = NULL;
    for (size_t k = 0; k < sizeof short_flags / sizeof short_flags[0]; k++)
      if (short_flags[k].letter == arg[1]) sf = &short_flags[k];
    if (sf == NULL || (!sf->takes_value && arg[2] != '\0')) {
      hc_usage_error("unknown option %s (see --help)", arg);
      return -1;
    }
    out[n++] = (char *)sf->flag;
    if (!sf->takes_value) continue;
    if (arg[2] != '\0') {
      out[n++] = arg + 2;
    } else if (i + 1 < argc) {
      out[n++] = argv[++i];
    } else {
      hc_usage_error("%s needs a value (see --help)", arg);
      return -1;
    }
  }
  return n;
}

/* Prints --help: the table's options, then the short flags and examples. */
static void print_help(void) {
  app_config_help(&hc_spec);
  printf("\nShort flags, as hey and oha have them:\n"
         "  -c N          --concurrency N\n"
         "  -n N          --requests N\n"
         "  -z DURATION   --duration DURATION\n"
         "  -q R          --rate R\n"
         "  -t SECONDS    --timeout SECONDS\n"
         "  -m METHOD     --method METHOD\n"
         "  -H HEADER     --header HEADER\n"
         "  -d BODY       --body BODY\n"
         "  -D FILE       --body-file FILE\n"
         "  -T TYPE       --content-type TYPE\n"
         "  -o FILE       --output FILE\n"
         "  -i FILE       --input FILE (a lone - reads standard input)\n"
         "  -k            --no-tls-verify (also --insecure)\n"
         "\nExamples:\n"
         "  http_client https://example.com/ https://example.org/\n"
         "  http_client -i urls.txt --rate 20 --host-rate 2 -o results.jsonl\n"
         "  http_client -c 100 -n 100000 http://127.0.0.1:8080/\n"
         "  http_client -c 50 -z 30s --rate 1000 http://127.0.0.1:8080/\n");
}

/* ---- Loading ------------------------------------------------------------- */

hc_mode hc_options_mode(const hc_config *cfg) {
  if (cfg->mode != HC_MODE_AUTO) return (hc_mode)cfg->mode;
  return cfg->requests > 0 || cfg->duration > 0 ? HC_MODE_LOAD : HC_MODE_FETCH;
}

int64_t hc_options_retries(const hc_config *cfg) {
  if (cfg->retries >= 0) return cfg->retries;
  return hc_options_mode(cfg) == HC_MODE_LOAD ? 0 : 2;
}

/* Checks the options against each other. Returns 0, or -1 after printing
 * why. */
static int check_options(hc_config *cfg) {
  hc_mode mode = hc_options_mode(cfg);
  if (mode == HC_MODE_FETCH && (cfg->requests > 0 || cfg->duration > 0)) {
    hc_usage_error("--requests (-n) and --duration (-z) are for load mode, "
                   "not --mode fetch");
    return -1;
  }
  if (cfg->urls.n == 0 && cfg->input == NULL) {
    hc_usage_error("no URLs: give them as arguments, in a file with --input "
                   "FILE, or on standard input with --input - (see --help)");
    return -1;
  }
  if (cfg->body != NULL && cfg->body_file != NULL) {
    hc_usage_error("--body (-d) and --body-file (-D) exclude each other");
    return -1;
  }
  if (cfg->method != NULL) {
    size_t len = strlen(cfg->method);
    for (size_t i = 0; i < len; i++) {
      if (!isupper((unsigned char)cfg->method[i]) && cfg->method[i] != '-') {
        hc_usage_error("--method: \"%s\" is not a method (GET, POST, ...)",
                       cfg->method);
        return -1;
      }
    }
    if (len == 0) {
      hc_usage_error("--method: empty");
      return -1;
    }
  }
  for (size_t i = 0; i < cfg->header.n; i++) {
    const char *h = cfg->header.items[i];
    const char *colon = strchr(h, ':');
    if (colon == NULL || colon == h || strpbrk(h, "\r\n") != NULL) {
      hc_usage_error("--header: \"%s\" is not \"Name: value\"", h);
      return -1;
    }
  }
  if (mode == HC_MODE_LOAD && cfg->requests == 0 && cfg->duration == 0)
    cfg->requests = 200;
  return 0;
}

int hc_options_load(hc_config *cfg, int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--") == 0) break;
    if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
      print_help();
      return APP_EXIT_OK;
    }
  }
  char **args = calloc((size_t)argc * 2 + 2, sizeof *args);
  if (args == NULL) {
    hc_usage_error("out of memory");
    return APP_EXIT_USAGE;
  }
  int n = rewrite_args(argc, argv, args);
  if (n < 0) {
    free(args);
    return APP_EXIT_USAGE;
  }
  int rc = app_config_load(&hc_spec, cfg, n, args);
  free(args);
  if (rc != APP_RUN) return rc;
  if (check_options(cfg) != 0) {
    app_config_free(&hc_spec, cfg);
    return APP_EXIT_USAGE;
  }
  return APP_RUN;
}

void hc_options_free(hc_config *cfg) { app_config_free(&hc_spec, cfg); }

void hc_options_log(const hc_config *cfg) {
  if (weft_log_enabled(WEFT_LOG_DEBUG)) app_config_log(&hc_spec, cfg);
}
