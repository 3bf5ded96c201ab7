/* test_common.c: unit tests of weft_app_common that need no server: the
 * bounded JSON parser, the option table (every kind of option, flags over
 * the file, lists replaced then extended, errors), addresses, and stats
 * counted from several executors, the configuration's log line, and the
 * parsers and formatters of durations, rates and sizes, and what the server
 * reports outside app_server_run().
 *
 * A plain C program: each check prints what failed and the program exits 1.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <weft.h>

#include "check.h"
#include "config.h"
#include "json.h"
#include "server.h"
#include "stats.h"

/* ---- JSON -----------------------------------------------------------------
 */

static void test_json(void) {
  app_json_error err;
  const char *ok = "{\"a\": [1, {\"b\": \"[{\"}], \"c\": null}";
  cJSON *doc = app_json_parse(ok, strlen(ok), 3, &err);
  CHECK(doc != NULL); /* brackets inside strings do not count */
  cJSON_Delete(doc);

  char deep[300];
  memset(deep, '[', 100);
  memset(deep + 100, ']', 100);
  deep[200] = '\0';
  CHECK(app_json_parse(deep, 200, 64, &err) == NULL);
  CHECK(err.line == 1 && err.column == 65);
  CHECK(strstr(err.message, "64") != NULL);
  doc = app_json_parse(deep, 200, 100, &err);
  CHECK(doc != NULL);
  cJSON_Delete(doc);

  const char *bad = "{\n  \"a\": 1,\n  \"b\": tru\n}";
  CHECK(app_json_parse(bad, strlen(bad), 64, &err) == NULL);
  CHECK(err.line == 3 && err.column == 8);

  const char *cut = "{\"a\": [1, 2";
  CHECK(app_json_parse(cut, strlen(cut), 64, &err) == NULL);
  CHECK(strstr(err.message, "end of input") != NULL);

  const char *two = "{} {}";
  CHECK(app_json_parse(two, strlen(two), 64, &err) == NULL);
  CHECK(err.column == 4);

  /* Not NUL-terminated: only len bytes are read. */
  const char buf[] = {'[', '1', ']', 'x'};
  doc = app_json_parse(buf, 3, 64, &err);
  CHECK(doc != NULL && cJSON_IsArray(doc));
  cJSON_Delete(doc);

  const char *obj = "{ \"k1\" : 1, \"k2\": {\"x\": [1,2]}, \"k3\":\"v\" }";
  CHECK(app_json_member_offset(obj, strlen(obj), 0, 0) == 2);
  CHECK(app_json_member_offset(obj, strlen(obj), 0, 1) == 9);
  CHECK(app_json_member_offset(obj, strlen(obj), 2, 0) == 32);
  CHECK(app_json_member_offset(obj, strlen(obj), 2, 1) == 37);
  CHECK(app_json_member_offset(obj, strlen(obj), 3, 0) == -1);
}

/* ---- Options --------------------------------------------------------------
 */

typedef struct test_config {
  app_listen_list listen;
  int64_t count;
  int verbose;
  char *name;
  app_string_list tags;
  int log_level;
  int64_t ratio_percent; /* custom: "0.25" or 0.25 -> 25 */
} test_config;

static int parse_ratio(void *field, const char *text, const cJSON *json,
                       char *why, size_t why_len) {
  double v;
  if (text != NULL) {
    char *end;
    v = strtod(text, &end);
    if (end == text || *end != '\0')
      return snprintf(why, why_len, "not a number"), -1;
  } else if (cJSON_IsNumber(json)) {
    v = json->valuedouble;
  } else {
    return snprintf(why, why_len, "expected a number"), -1;
  }
  if (v < 0 || v > 1) return snprintf(why, why_len, "between 0 and 1"), -1;
  *(int64_t *)field = (int64_t)(v * 100 + 0.5);
  return 0;
}

static void format_ratio(const void *field, char *out, size_t len) {
  int64_t pct = *(const int64_t *)field;
  snprintf(out, len, "%d.%02d", (int)(pct / 100), (int)(pct % 100));
}

static const app_option test_options[] = {
    APP_OPTION_LISTEN(test_config, listen, "127.0.0.1:1"),
    APP_OPTION_INT(test_config, count, "3", 1, 10, "how many"),
    APP_OPTION_BOOL(test_config, verbose, "false", "say more"),
    APP_OPTION_STRING(test_config, name, "anon", "a name"),
    APP_OPTION_STRING_LIST(test_config, tags, "tags"),
    APP_OPTION_LOG_LEVEL(test_config, log_level),
    APP_OPTION_CUSTOM(test_config, ratio_percent, "0.5", "RATIO", "a ratio",
                      parse_ratio, NULL, format_ratio),
};
static const app_spec test_spec =
    APP_SPEC("test_common", "Tests.", test_options);

/* Loads argv (NULL-terminated); the bad cases print their message, which
 * is what a person would see. */
static int load(test_config *cfg, char **argv) {
  int argc = 0;
  while (argv[argc] != NULL) argc++;
  return app_config_load(&test_spec, cfg, argc, argv);
}

static void test_options_defaults_and_flags(void) {
  test_config cfg;
  char *a0[] = {"t", NULL};
  CHECK(load(&cfg, a0) == APP_RUN);
  CHECK(cfg.listen.n == 1 &&
        strcmp(cfg.listen.addrs[0].host, "127.0.0.1") == 0 &&
        cfg.listen.addrs[0].port == 1);
  CHECK(cfg.count == 3 && cfg.verbose == 0 && strcmp(cfg.name, "anon") == 0);
  CHECK(cfg.tags.n == 0 && cfg.ratio_percent == 50);
  app_config_free(&test_spec, &cfg);

  char *a1[] = {"t",
                "--listen",
                "[::1]:0",
                "--listen=10.0.0.1:80",
                "--count=7",
                "--verbose",
                "--name",
                "x",
                "--tags",
                "a",
                "--tags",
                "b",
                "--ratio-percent",
                "0.25",
                "--log-level",
                "warn",
                NULL};
  CHECK(load(&cfg, a1) == APP_RUN);
  CHECK(cfg.listen.n == 2 && strcmp(cfg.listen.addrs[0].host, "::1") == 0 &&
        cfg.listen.addrs[0].port == 0 && cfg.listen.addrs[1].port == 80);
  CHECK(cfg.count == 7 && cfg.verbose == 1 && strcmp(cfg.name, "x") == 0);
  CHECK(cfg.tags.n == 2 && strcmp(cfg.tags.items[1], "b") == 0);
  CHECK(cfg.ratio_percent == 25 && cfg.log_level == WEFT_LOG_WARN);
  CHECK(weft_log_get_level() == WEFT_LOG_WARN);
  app_config_free(&test_spec, &cfg);
  weft_log_set_level(WEFT_LOG_INFO);

  char *a2[] = {"t", "--verbose", "--no-verbose", NULL};
  CHECK(load(&cfg, a2) == APP_RUN && cfg.verbose == 0);
  app_config_free(&test_spec, &cfg);

  char *bad[][4] = {
      {"t", "--count", "11", NULL},    {"t", "--count", "x", NULL},
      {"t", "--nope", NULL, NULL},     {"t", "--count", NULL, NULL},
      {"t", "--listen", ":80", NULL},  {"t", "--ratio-percent", "2", NULL},
      {"t", "--no-count", NULL, NULL}, {"t", "-v", NULL, NULL},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    CHECK(load(&cfg, bad[i]) == APP_EXIT_USAGE);
  }
}

static void test_options_file(void) {
  char path[] = "/tmp/weft-app-common-XXXXXX";
  int fd = mkstemp(path);
  CHECK(fd >= 0);
  const char *text =
      "{\"listen\": [\"127.0.0.1:5\", \"127.0.0.1:6\"], \"count\": 9, "
      "\"verbose\": true,\n"
      " \"tags\": \"solo\", \"ratio_percent\": 0.75, \"name\": \"file\"}";
  CHECK(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
  close(fd);

  test_config cfg;
  char *a[] = {"t",  "--count",  "2",           "--config",
               path, "--listen", "127.0.0.1:7", NULL};
  CHECK(load(&cfg, a) == APP_RUN);
  /* Flags win over the file whatever their place; a list flag replaces. */
  CHECK(cfg.count == 2 && cfg.verbose == 1 && strcmp(cfg.name, "file") == 0);
  CHECK(cfg.listen.n == 1 && cfg.listen.addrs[0].port == 7);
  CHECK(cfg.tags.n == 1 && strcmp(cfg.tags.items[0], "solo") == 0);
  CHECK(cfg.ratio_percent == 75);
  app_config_free(&test_spec, &cfg);
  unlink(path);
}

/* ---- Durations, rates and sizes ------------------------------------------
 */

/* Parses JSON text with cJSON for the JSON side of the parsers. */
static cJSON *json_of(const char *text) {
  cJSON *v = cJSON_Parse(text);
  CHECK(v != NULL);
  return v;
}

static void test_durations(void) {
  char why[160];
  int64_t ms = -7;
  static const struct {
    const char *text;
    int64_t ms;
  } good[] = {
      {"0", 0},        {"2", 2000},      {"0.5", 500},         {"250ms", 250},
      {"10s", 10000},  {"2m", 120000},   {"1h", 3600000},      {"1.5s", 1500},
      {"0.0001", 1}, /* below 1 ms is 1 ms, not 0 ("no limit") */
      {"0.4ms", 1},    {"1e9", 1000000000000LL},
  };
  for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
    CHECK(app_parse_duration_ms(&ms, good[i].text, NULL, why, sizeof why) ==
              0 &&
          ms == good[i].ms);
  }
  static const char *const bad[] = {"", "soon", "10 parsecs", "5d", "-1",
                                    "1e10", "nan", "inf", "10sec", "ms"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    ms = -7;
    why[0] = '\0';
    CHECK(app_parse_duration_ms(&ms, bad[i], NULL, why, sizeof why) == -1);
    CHECK(ms == -7 && strstr(why, "duration") != NULL);
  }
  /* The bounds of the variants: each takes its own and refuses above. */
  CHECK(app_parse_duration_ms_1e7(&ms, "1e7", NULL, why, sizeof why) == 0 &&
        ms == 10000000000LL);
  CHECK(app_parse_duration_ms_1e7(&ms, "10000001", NULL, why, sizeof why) ==
        -1);
  CHECK(app_parse_duration_ms_2e6(&ms, "2e6", NULL, why, sizeof why) == 0 &&
        ms == 2000000000LL && ms <= INT32_MAX);
  CHECK(app_parse_duration_ms_2e6(&ms, "2000001", NULL, why, sizeof why) ==
        -1);
  CHECK(app_parse_duration_ms_2e6(&ms, "33334m", NULL, why, sizeof why) == -1);
  CHECK(app_duration_parse("3", NULL, 2.5, &ms, why, sizeof why) == -1 &&
        strstr(why, "2.5") != NULL);

  /* JSON: a number of seconds or a string as the flag takes. */
  cJSON *j = json_of("1.25");
  CHECK(app_parse_duration_ms(&ms, NULL, j, why, sizeof why) == 0 &&
        ms == 1250);
  cJSON_Delete(j);
  j = json_of("\"2m\"");
  CHECK(app_parse_duration_ms_2e6(&ms, NULL, j, why, sizeof why) == 0 &&
        ms == 120000);
  cJSON_Delete(j);
  static const char *const bad_json[] = {"true", "[1]", "\"soon\"", "-3",
                                         "3e6"};
  for (size_t i = 0; i < sizeof bad_json / sizeof bad_json[0]; i++) {
    j = json_of(bad_json[i]);
    CHECK(app_parse_duration_ms_2e6(&ms, NULL, j, why, sizeof why) == -1);
    cJSON_Delete(j);
  }

  char out[32];
  ms = 30000;
  app_format_duration_ms(&ms, out, sizeof out);
  CHECK(strcmp(out, "30s") == 0);
  ms = 250;
  app_format_duration_ms(&ms, out, sizeof out);
  CHECK(strcmp(out, "250ms") == 0);
  ms = 0;
  app_format_duration_ms(&ms, out, sizeof out);
  CHECK(strcmp(out, "0s") == 0);
  /* What the formatter writes, the parser reads back to the same value. */
  static const int64_t round_trip[] = {1, 999, 1000, 1500, 86400000};
  for (size_t i = 0; i < sizeof round_trip / sizeof round_trip[0]; i++) {
    int64_t back = -1;
    app_format_duration_ms(&round_trip[i], out, sizeof out);
    CHECK(app_parse_duration_ms(&back, out, NULL, why, sizeof why) == 0 &&
          back == round_trip[i]);
  }
}

static void test_rates(void) {
  char why[160];
  double r = -1;
  CHECK(app_parse_rate(&r, "0", NULL, why, sizeof why) == 0 && r == 0);
  CHECK(app_parse_rate(&r, "2.5", NULL, why, sizeof why) == 0 && r == 2.5);
  CHECK(app_parse_rate(&r, "1e9", NULL, why, sizeof why) == 0 && r == 1e9);
  CHECK(app_parse_rate_1e7(&r, "1e7", NULL, why, sizeof why) == 0 && r == 1e7);
  r = -1;
  static const char *const bad[] = {"", "fast", "5/s", "-1", "nan", "2e9"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    CHECK(app_parse_rate(&r, bad[i], NULL, why, sizeof why) == -1 && r == -1);
  CHECK(app_parse_rate_1e7(&r, "1.5e7", NULL, why, sizeof why) == -1 &&
        strstr(why, "rate") != NULL && r == -1);
  cJSON *j = json_of("12");
  CHECK(app_parse_rate(&r, NULL, j, why, sizeof why) == 0 && r == 12);
  cJSON_Delete(j);
  j = json_of("\"12\"");
  CHECK(app_parse_rate(&r, NULL, j, why, sizeof why) == -1);
  cJSON_Delete(j);
  char out[32];
  r = 0.25;
  app_format_rate(&r, out, sizeof out);
  CHECK(strcmp(out, "0.25") == 0);
}

static void test_sizes(void) {
  char why[160];
  int64_t n = -1;
  static const struct {
    const char *text;
    int64_t n;
  } good[] = {
      {"0", 0},          {"4096", 4096},    {"64K", 65536},
      {"64k", 65536},    {"1M", 1048576},   {"1MiB", 1048576},
      {"1mb", 1048576},  {"2G", 2147483648LL}, {"1.5K", 1536},
      {"10B", 10},
  };
  for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
    CHECK(app_parse_size(&n, good[i].text, NULL, why, sizeof why) == 0 &&
          n == good[i].n);
  }
  static const char *const bad[] = {"", "big", "-1", "4T", "1Mx", "nan",
                                    "inf", "1e19", "9e9G", "1iB"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    n = -1;
    CHECK(app_parse_size(&n, bad[i], NULL, why, sizeof why) == -1 && n == -1);
  }
  cJSON *j = json_of("1024");
  CHECK(app_parse_size(&n, NULL, j, why, sizeof why) == 0 && n == 1024);
  cJSON_Delete(j);
  j = json_of("\"4M\"");
  CHECK(app_parse_size(&n, NULL, j, why, sizeof why) == 0 && n == 4194304);
  cJSON_Delete(j);
  static const char *const bad_json[] = {"-1", "1e30", "true", "\"x\""};
  for (size_t i = 0; i < sizeof bad_json / sizeof bad_json[0]; i++) {
    n = -1;
    j = json_of(bad_json[i]);
    CHECK(app_parse_size(&n, NULL, j, why, sizeof why) == -1 && n == -1);
    cJSON_Delete(j);
  }
  char out[32];
  n = 1048576;
  app_format_size(&n, out, sizeof out);
  CHECK(strcmp(out, "1048576") == 0);
}

/* ---- Addresses ------------------------------------------------------------
 */

static void test_addresses(void) {
  app_addr a;
  char why[128], buf[96];
  CHECK(app_addr_parse("[2001:db8::1]:443", &a, why, sizeof why) == 0);
  CHECK(strcmp(a.host, "2001:db8::1") == 0 && a.port == 443);
  app_addr_format(a.host, a.port, buf, sizeof buf);
  CHECK(strcmp(buf, "[2001:db8::1]:443") == 0);
  CHECK(app_addr_parse("localhost:0", &a, why, sizeof why) == 0 && a.port == 0);
  CHECK(app_addr_parse("[::1]", &a, why, sizeof why) != 0);
  CHECK(app_addr_parse("[zz::1]:80", &a, why, sizeof why) != 0);
  CHECK(app_addr_parse("1.2.3.4:65536", &a, why, sizeof why) != 0);
  CHECK(app_addr_parse("1.2.3.4:-1", &a, why, sizeof why) != 0);
  CHECK(app_addr_parse("a b:1", &a, why, sizeof why) != 0);
}

/* ---- Stats ----------------------------------------------------------------
 */

typedef struct stats_job {
  app_counter *c;
  app_gauge *g;
} stats_job;

static int count_task(void *arg) {
  stats_job *j = arg;
  for (int i = 0; i < 100000; i++) app_counter_add(j->c, 1);
  app_gauge_add(j->g, 1);
  return 0;
}

static int stats_root(void *arg) {
  stats_job *j = arg;
  weft_group *g = weft_group_open(WEFT_FAIL_FAST);
  for (int i = 0; i < 8; i++) {
    weft_task_opts o = {.executor = WEFT_EXEC_NEXT};
    weft_spawn_opts(g, &o, count_task, j);
  }
  return weft_group_join(g);
}

static void test_stats(void) {
  app_stats *st = app_stats_new("test");
  stats_job j = {app_stats_counter(st, "ops"), app_stats_gauge(st, "done")};
  CHECK(app_stats_counter(st, "ops") == j.c);
  app_stats_rate(st, "ops_per_s", j.c);
  weft_opts o = {.executors = 3};
  CHECK(weft_main_opts(&o, stats_root, &j) == 0);
  CHECK(app_counter_value(j.c) == 800000);
  CHECK(app_gauge_value(j.g) == 8);

  char *text = NULL;
  size_t len = 0;
  FILE *mem = open_memstream(&text, &len);
  app_stats_print_json(st, mem);
  fclose(mem);
  cJSON *doc = cJSON_Parse(text);
  CHECK(doc != NULL);
  CHECK(cJSON_GetObjectItem(doc, "ops")->valuedouble == 800000);
  CHECK(cJSON_GetObjectItem(doc, "done")->valuedouble == 8);
  CHECK(cJSON_IsNumber(cJSON_GetObjectItem(doc, "ops_per_s_avg")));
  cJSON_Delete(doc);
  free(text);
  app_stats_free(st);
}

/* The configuration's log line, read back from standard error (weft_log
 * writes there with write(2)). */
static void test_config_log(void) {
  test_config cfg;
  char *argv[] = {"t", "--ratio-percent", "0.07", "--name", "x", NULL};
  CHECK(load(&cfg, argv) == APP_RUN);
  char path[] = "/tmp/weft-test-common-XXXXXX";
  int fd = mkstemp(path);
  CHECK(fd >= 0);
  if (fd < 0) return;
  int saved = dup(STDERR_FILENO);
  dup2(fd, STDERR_FILENO);
  app_config_log(&test_spec, &cfg);
  dup2(saved, STDERR_FILENO);
  close(saved);
  char text[4096] = "";
  ssize_t n = pread(fd, text, sizeof text - 1, 0);
  close(fd);
  unlink(path);
  CHECK(n > 0);
  if (n > 0) text[n] = '\0';
  CHECK(strstr(text, "ratio_percent=0.07") != NULL);
  CHECK(strstr(text, " name=\"x\"") != NULL);
  CHECK(strstr(text, "count=3") != NULL);
  CHECK(strstr(text, "(custom)") == NULL);
  app_config_free(&test_spec, &cfg);
}

/* ---- The server, outside a run ------------------------------------------- */

/* The stop event is the one record of a shutdown: outside app_server_run()
 * there is none, and nothing is stopping. Options app_server_run() cannot
 * serve are refused before anything starts. */
static void test_server_outside_run(void) {
  CHECK(app_server_stop_event() == NULL);
  CHECK(app_server_stopping() == 0);
  CHECK(app_server_run(NULL) == UV_EINVAL);
  app_listen_list none = {0};
  app_server_opts o = {.listen = &none};
  CHECK(app_server_run(&o) == UV_EINVAL);
  CHECK(app_server_stopping() == 0);
}

int main(void) {
  test_json();
  test_options_defaults_and_flags();
  test_config_log();
  test_options_file();
  test_addresses();
  test_durations();
  test_rates();
  test_sizes();
  test_stats();
  test_server_outside_run();
  if (check_report() != 0) return 1;
  printf("all checks passed\n");
  return 0;
}
