/* config.c: options from the table's defaults, a JSON file and the flags. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <weft.h>

#include "compat.h"
#include "json.h"

/* A configuration file is a few lines; anything larger is a mistake. */
#define CONFIG_MAX_FILE ((size_t)1 << 20)

#define WHY_LEN 160

/* The built-in flag that is not an option of the table (--help is the
 * other, handled before anything else). */
static const char CONFIG_FLAG_CONFIG[] = "config";

static void *config_field(void *cfg, const app_option *o) {
  return (char *)cfg + o->offset;
}

#ifdef __MINGW32__
#define CONFIG_PRINTF gnu_printf /* C99 formats (%zu), not msvcrt's */
#else
#define CONFIG_PRINTF printf
#endif
static void config_error(const app_spec *spec, const char *fmt, ...)
    __attribute__((format(CONFIG_PRINTF, 2, 3)));

static void config_error(const app_spec *spec, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  fprintf(stderr, "%s: %s\n", spec->name, msg);
  fflush(stderr);
}

/* ---- Addresses ---------------------------------------------------------- */

static int addr_host_char_ok(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_';
}

int app_addr_parse(const char *text, app_addr *out, char *why, size_t why_len) {
  memset(out, 0, sizeof *out);
  const char *host = text, *host_end, *colon;
  if (text[0] == '[') {
    host = text + 1;
    host_end = strchr(host, ']');
    if (host_end == NULL) {
      snprintf(why, why_len, "missing ']' in \"%s\"", text);
      return -1;
    }
    colon = host_end + 1;
    if (*colon != ':') {
      snprintf(why, why_len, "expected HOST:PORT, as [::1]:7007, not \"%s\"",
               text);
      return -1;
    }
  } else {
    colon = strrchr(text, ':');
    if (colon == NULL) {
      snprintf(why, why_len,
               "expected HOST:PORT, as 127.0.0.1:7007, not \"%s\"", text);
      return -1;
    }
    host_end = colon;
    if (memchr(text, ':', (size_t)(colon - text)) != NULL) {
      snprintf(why, why_len,
               "an IPv6 address goes in brackets, as [::1]:7007, not \"%s\"",
               text);
      return -1;
    }
  }
  size_t host_len = (size_t)(host_end - host);
  if (host_len == 0 || host_len >= sizeof out->host) {
    snprintf(why, why_len, "bad host in \"%s\"", text);
    return -1;
  }
  memcpy(out->host, host, host_len);
  out->host[host_len] = '\0';

  if (text[0] == '[') {
    struct sockaddr_in6 sa6;
    if (uv_ip6_addr(out->host, 0, &sa6) != 0) {
      snprintf(why, why_len, "bad IPv6 address in \"%s\"", text);
      return -1;
    }
  } else {
    for (size_t i = 0; i < host_len; i++) {
      if (!addr_host_char_ok(out->host[i])) {
        snprintf(why, why_len, "bad host in \"%s\"", text);
        return -1;
      }
    }
  }

  const char *p = colon + 1;
  char *end;
  errno = 0;
  long port = strtol(p, &end, 10);
  if (*p < '0' || *p > '9' || *end != '\0' || errno != 0 || port < 0 ||
      port > 65535) {
    snprintf(why, why_len,
             "bad port in \"%s\" (0 to 65535; 0 picks a free port)", text);
    return -1;
  }
  out->port = (int)port;
  return 0;
}

void app_addr_format(const char *host, int port, char *buf, size_t len) {
  if (strchr(host, ':') != NULL)
    snprintf(buf, len, "[%s]:%d", host, port);
  else
    snprintf(buf, len, "%s:%d", host, port);
}

/* ---- Setting one value -------------------------------------------------- */

/* ---- Values for APP_OPT_CUSTOM options ----------------------------------- */

int app_duration_parse(const char *text, const cJSON *json, double max_seconds,
                       int64_t *ms, char *why, size_t why_len) {
  double seconds;
  if (json != NULL && cJSON_IsNumber(json)) {
    seconds = json->valuedouble;
  } else {
    if (json != NULL) {
      if (!cJSON_IsString(json)) {
        snprintf(why, why_len,
                 "expected seconds or a duration such as \"250ms\", \"10s\", "
                 "\"2m\"");
        return -1;
      }
      text = json->valuestring;
    }
    char *end;
    double v = strtod(text, &end);
    double unit;
    if (end == text)
      unit = -1; /* NOLINT(bugprone-branch-clone): no number and an unknown unit fail alike */
    else if (strcmp(end, "ms") == 0)
      unit = 0.001;
    else if (strcmp(end, "s") == 0 || *end == '\0')
      unit = 1.0;
    else if (strcmp(end, "m") == 0)
      unit = 60.0;
    else if (strcmp(end, "h") == 0)
      unit = 3600.0;
    else
      unit = -1;
    if (unit < 0) {
      snprintf(why, why_len,
               "expected seconds or a duration such as 250ms, 10s, 2m, not "
               "\"%s\"",
               text);
      return -1;
    }
    seconds = v * unit;
  }
  /* NaN fails both comparisons, so it is refused here too. */
  if (!(seconds >= 0 && seconds <= max_seconds)) {
    snprintf(why, why_len, "a duration must be between 0 and %.10g seconds",
             max_seconds);
    return -1;
  }
  /* Whole milliseconds; a duration below one is one, not none (0 means no
   * limit for the timeouts). */
  int64_t v = (int64_t)llround(seconds * 1000.0);
  if (v == 0 && seconds > 0) v = 1;
  *ms = v;
  return 0;
}

int app_parse_duration_ms(void *field, const char *text, const cJSON *json,
                          char *why, size_t why_len) {
  return app_duration_parse(text, json, APP_DURATION_MAX_S, field, why,
                            why_len);
}

int app_parse_duration_ms_1e7(void *field, const char *text, const cJSON *json,
                              char *why, size_t why_len) {
  return app_duration_parse(text, json, APP_DURATION_MAX_S_1E7, field, why,
                            why_len);
}

int app_parse_duration_ms_2e6(void *field, const char *text, const cJSON *json,
                              char *why, size_t why_len) {
  return app_duration_parse(text, json, APP_DURATION_MAX_S_2E6, field, why,
                            why_len);
}

void app_format_duration_ms(const void *field, char *out, size_t len) {
  int64_t ms = *(const int64_t *)field;
  if (ms % 1000 == 0)
    snprintf(out, len, "%" PRId64 "s", ms / 1000);
  else
    snprintf(out, len, "%" PRId64 "ms", ms);
}

int app_rate_parse(const char *text, const cJSON *json, double max,
                   double *out, char *why, size_t why_len) {
  double v;
  if (json != NULL) {
    if (!cJSON_IsNumber(json)) {
      snprintf(why, why_len, "expected a number of requests per second");
      return -1;
    }
    v = json->valuedouble;
  } else {
    char *end;
    v = strtod(text, &end);
    if (end == text || *end != '\0') {
      snprintf(why, why_len, "expected requests per second, not \"%s\"", text);
      return -1;
    }
  }
  if (!(v >= 0 && v <= max)) {
    snprintf(why, why_len, "a rate must be between 0 (no limit) and %.10g", max);
    return -1;
  }
  *out = v;
  return 0;
}

int app_parse_rate(void *field, const char *text, const cJSON *json,
                   char *why, size_t why_len) {
  return app_rate_parse(text, json, APP_RATE_MAX, field, why, why_len);
}

int app_parse_rate_1e7(void *field, const char *text, const cJSON *json,
                       char *why, size_t why_len) {
  return app_rate_parse(text, json, APP_RATE_MAX_1E7, field, why, why_len);
}

void app_format_rate(const void *field, char *out, size_t len) {
  snprintf(out, len, "%g", *(const double *)field);
}

int app_size_parse(const char *text, const cJSON *json, int64_t *out,
                   char *why, size_t why_len) {
  if (json != NULL) {
    if (cJSON_IsNumber(json)) {
      double v = json->valuedouble;
      if (v < 0) {
        snprintf(why, why_len, "a size cannot be negative");
        return -1;
      }
      if (!(v <= APP_SIZE_MAX)) {
        snprintf(why, why_len, "a size must be at most %.10g bytes",
                 APP_SIZE_MAX);
        return -1;
      }
      *out = (int64_t)v;
      return 0;
    }
    if (!cJSON_IsString(json)) {
      snprintf(why, why_len, "expected a size (a number or \"4M\")");
      return -1;
    }
    text = json->valuestring;
  }
  char *end;
  double v = strtod(text, &end);
  int64_t mult = 1;
  switch (toupper((unsigned char)*end)) {
  case 'K':
    mult = (int64_t)1 << 10, end++;
    break;
  case 'M':
    mult = (int64_t)1 << 20, end++;
    break;
  case 'G':
    mult = (int64_t)1 << 30, end++;
    break;
  default:
    break;
  }
  if (toupper((unsigned char)*end) == 'I' && mult > 1) end++;
  if (toupper((unsigned char)*end) == 'B') end++;
  /* NaN fails both comparisons, so "nan" is refused too. */
  if (end == text || *end != '\0' ||
      !(v >= 0 && v * (double)mult <= APP_SIZE_MAX)) {
    snprintf(why, why_len, "\"%s\" is not a size (such as 4096, 64K, 1M)",
             text);
    return -1;
  }
  *out = (int64_t)(v * (double)mult);
  return 0;
}

int app_parse_size(void *field, const char *text, const cJSON *json,
                   char *why, size_t why_len) {
  return app_size_parse(text, json, field, why, why_len);
}

void app_format_size(const void *field, char *out, size_t len) {
  snprintf(out, len, "%" PRId64, *(const int64_t *)field);
}

static void config_clear(const app_option *o, void *field) {
  switch (o->type) {
  case APP_OPT_BOOL:
  case APP_OPT_LOG_LEVEL:
    *(int *)field = 0;
    break;
  case APP_OPT_INT:
    *(int64_t *)field = 0;
    break;
  case APP_OPT_STRING:
    free(*(char **)field);
    *(char **)field = NULL;
    break;
  case APP_OPT_STRING_LIST: {
    app_string_list *l = field;
    for (size_t i = 0; i < l->n; i++) free(l->items[i]);
    free(l->items);
    l->items = NULL;
    l->n = 0;
    break;
  }
  case APP_OPT_LISTEN: {
    app_listen_list *l = field;
    free(l->addrs);
    l->addrs = NULL;
    l->n = 0;
    break;
  }
  case APP_OPT_CUSTOM:
    if (o->free != NULL) o->free(field);
    break;
  }
}

static int config_parse_bool(const char *text, int *out) {
  static const char *const yes[] = {"true", "1", "yes", "on"};
  static const char *const no[] = {"false", "0", "no", "off"};
  for (size_t i = 0; i < 4; i++) {
    if (strcasecmp(text, yes[i]) == 0) return *out = 1, 0;
    if (strcasecmp(text, no[i]) == 0) return *out = 0, 0;
  }
  return -1;
}

static int config_int_check(const app_option *o, int64_t v, char *why) {
  if (v < o->min || v > o->max) {
    snprintf(why, WHY_LEN,
             "%" PRId64 " is out of range (%" PRId64 " to %" PRId64 ")", v,
             o->min, o->max);
    return -1;
  }
  return 0;
}

static int config_list_append(const app_option *o, void *field,
                              const char *text, char *why) {
  if (o->type == APP_OPT_LISTEN) {
    app_listen_list *l = field;
    app_addr addr;
    if (app_addr_parse(text, &addr, why, WHY_LEN) != 0) return -1;
    app_addr *grown = realloc(l->addrs, (l->n + 1) * sizeof *grown);
    if (grown == NULL) return snprintf(why, WHY_LEN, "out of memory"), -1;
    l->addrs = grown;
    l->addrs[l->n++] = addr;
    return 0;
  }
  app_string_list *l = field;
  char *copy = strdup(text);
  char **grown = copy ? realloc(l->items, (l->n + 1) * sizeof *grown) : NULL;
  if (grown == NULL) {
    free(copy);
    return snprintf(why, WHY_LEN, "out of memory"), -1;
  }
  l->items = grown;
  l->items[l->n++] = copy;
  return 0;
}

/* Sets field from a flag's text (or a default). A list gets text appended;
 * the caller clears it first when the value replaces the list. */
static int config_set_text(const app_option *o, void *field, const char *text,
                           char *why) {
  switch (o->type) {
  case APP_OPT_BOOL:
    if (config_parse_bool(text, field) != 0) {
      snprintf(why, WHY_LEN, "expected true or false, not \"%s\"", text);
      return -1;
    }
    return 0;
  case APP_OPT_INT: {
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (end == text || *end != '\0' || errno != 0) {
      snprintf(why, WHY_LEN, "expected an integer, not \"%s\"", text);
      return -1;
    }
    if (config_int_check(o, v, why) != 0) return -1;
    *(int64_t *)field = v;
    return 0;
  }
  case APP_OPT_STRING: {
    char *copy = strdup(text);
    if (copy == NULL) return snprintf(why, WHY_LEN, "out of memory"), -1;
    free(*(char **)field);
    *(char **)field = copy;
    return 0;
  }
  case APP_OPT_STRING_LIST:
  case APP_OPT_LISTEN:
    if (text[0] == '\0' && o->type == APP_OPT_STRING_LIST) return 0;
    return config_list_append(o, field, text, why);
  case APP_OPT_LOG_LEVEL: {
    int level = weft_log_parse_level(text);
    if (level < 0) {
      snprintf(why, WHY_LEN,
               "expected debug, info, warn, error or off, not \"%s\"", text);
      return -1;
    }
    *(int *)field = level;
    return 0;
  }
  case APP_OPT_CUSTOM:
    return o->parse(field, text, NULL, why, WHY_LEN);
  }
  return -1;
}

static const char *config_json_type(const cJSON *v) {
  if (cJSON_IsBool(v)) return "a boolean";
  if (cJSON_IsNumber(v)) return "a number";
  if (cJSON_IsString(v)) return "a string";
  if (cJSON_IsArray(v)) return "an array";
  if (cJSON_IsObject(v)) return "an object";
  if (cJSON_IsNull(v)) return "null";
  return "an invalid value";
}

/* Sets field from a value of the configuration file. */
static int config_set_json(const app_option *o, void *field, const cJSON *v,
                           char *why) {
  switch (o->type) {
  case APP_OPT_BOOL:
    if (!cJSON_IsBool(v)) break;
    *(int *)field = cJSON_IsTrue(v) ? 1 : 0;
    return 0;
  case APP_OPT_INT: {
    if (!cJSON_IsNumber(v)) break;
    double d = v->valuedouble;
    /* The range first: converting a double outside it (or NaN) to an
     * integer is undefined. */
    if (!(d >= -9.2e18 && d <= 9.2e18) || d != (double)(int64_t)d) {
      snprintf(why, WHY_LEN, "expected an integer, not %g", d);
      return -1;
    }
    if (config_int_check(o, (int64_t)d, why) != 0) return -1;
    *(int64_t *)field = (int64_t)d;
    return 0;
  }
  case APP_OPT_STRING:
  case APP_OPT_LOG_LEVEL:
    if (!cJSON_IsString(v)) break;
    return config_set_text(o, field, v->valuestring, why);
  case APP_OPT_STRING_LIST:
  case APP_OPT_LISTEN: {
    config_clear(o, field);
    if (cJSON_IsString(v))
      return config_list_append(o, field, v->valuestring, why);
    if (!cJSON_IsArray(v)) break;
    const cJSON *item;
    cJSON_ArrayForEach(item, v) {
      if (!cJSON_IsString(item)) {
        snprintf(why, WHY_LEN, "expected an array of strings, with %s in it",
                 config_json_type(item));
        return -1;
      }
      if (config_list_append(o, field, item->valuestring, why) != 0) return -1;
    }
    if (o->type == APP_OPT_LISTEN && ((app_listen_list *)field)->n == 0) {
      snprintf(why, WHY_LEN,
               "expected at least one address, as [\"127.0.0.1:7007\"]");
      return -1;
    }
    return 0;
  }
  case APP_OPT_CUSTOM:
    return o->parse(field, NULL, v, why, WHY_LEN);
  }
  static const char *const wanted[] = {
      [APP_OPT_BOOL] = "true or false",
      [APP_OPT_INT] = "an integer",
      [APP_OPT_STRING] = "a string",
      [APP_OPT_STRING_LIST] = "a string or an array of strings",
      [APP_OPT_LISTEN] = "a string or an array of strings",
      [APP_OPT_LOG_LEVEL] = "a string",
      [APP_OPT_CUSTOM] = "a value",
  };
  snprintf(why, WHY_LEN, "expected %s, not %s", wanted[o->type],
           config_json_type(v));
  return -1;
}

/* ---- The configuration file --------------------------------------------- */

static const app_option *config_find(const app_spec *spec, const char *name,
                                     size_t len, int dashes) {
  for (size_t i = 0; i < spec->n_options; i++) {
    const char *n = spec->options[i].name;
    if (strlen(n) != len) continue;
    size_t k = 0;
    for (; k < len; k++) {
      char a = name[k], b = n[k];
      if (dashes && a == '-') a = '_';
      if (a != b) break;
    }
    if (k == len) return &spec->options[i];
  }
  return NULL;
}

static char *config_read_file(const app_spec *spec, const char *path,
                              size_t *len) {
  FILE *f = app_fopen(path, "rb");
  if (f == NULL) {
    config_error(spec, "cannot read the configuration file %s: %s", path,
                 strerror(errno));
    return NULL;
  }
  char *buf = malloc(CONFIG_MAX_FILE + 1);
  errno = 0;
  size_t n = buf ? fread(buf, 1, CONFIG_MAX_FILE + 1, f) : 0;
  int failed = buf == NULL || ferror(f);
  int why = buf == NULL ? ENOMEM : errno;
  fclose(f);
  if (failed) {
    /* A directory opens, and fails at the first read (EISDIR). */
    config_error(spec, "cannot read the configuration file %s: %s", path,
                 why != 0 ? strerror(why) : "read error");
    free(buf);
    return NULL;
  }
  if (n > CONFIG_MAX_FILE) {
    config_error(spec, "%s: larger than %zu bytes: not a configuration file",
                 path, CONFIG_MAX_FILE);
    free(buf);
    return NULL;
  }
  buf[n] = '\0';
  *len = n;
  return buf;
}

static void config_file_error(const app_spec *spec, const char *path,
                              const char *text, long offset, const char *msg) {
  int line = 1, column = 1;
  if (offset >= 0) app_json_position(text, (size_t)offset, &line, &column);
  config_error(spec, "%s:%d:%d: %s", path, line, column, msg);
}

static int config_load_file(const app_spec *spec, void *cfg, const char *path) {
  size_t len;
  char *text = config_read_file(spec, path, &len);
  if (text == NULL) return -1;
  app_json_error jerr;
  cJSON *doc = app_json_parse(text, len, APP_JSON_MAX_DEPTH, &jerr);
  int rc = -1;
  if (doc == NULL) {
    config_error(spec, "%s:%d:%d: %s", path, jerr.line, jerr.column,
                 jerr.message);
    goto out;
  }
  if (!cJSON_IsObject(doc)) {
    config_file_error(spec, path, text, (long)(strspn(text, " \t\r\n")),
                      "expected a JSON object of options, as {\"listen\": "
                      "\"127.0.0.1:7007\"}");
    goto out;
  }
  int index = 0;
  const cJSON *member;
  cJSON_ArrayForEach(member, doc) {
    const char *key = member->string;
    const app_option *o = config_find(spec, key, strlen(key), 0);
    char msg[WHY_LEN + 128];
    if (o == NULL) {
      snprintf(msg, sizeof msg,
               "unknown key \"%s\" (see --help for the options)", key);
      config_file_error(spec, path, text,
                        app_json_member_offset(text, len, index, 0), msg);
      goto out;
    }
    /* A key given twice is almost always an edit that went wrong. */
    int seen = 0;
    for (const cJSON *m = doc->child; m != member; m = m->next)
      if (strcmp(m->string, key) == 0) seen = 1;
    if (seen) {
      snprintf(msg, sizeof msg, "key \"%s\" given twice", key);
      config_file_error(spec, path, text,
                        app_json_member_offset(text, len, index, 0), msg);
      goto out;
    }
    char why[WHY_LEN];
    if (config_set_json(o, config_field(cfg, o), member, why) != 0) {
      snprintf(msg, sizeof msg, "\"%s\": %s", key, why);
      config_file_error(spec, path, text,
                        app_json_member_offset(text, len, index, 1), msg);
      goto out;
    }
    index++;
  }
  rc = 0;
out:
  cJSON_Delete(doc);
  free(text);
  return rc;
}

/* ---- Flags -------------------------------------------------------------- */

/* One flag of the command line, once recognised. */
typedef struct config_flag {
  const app_option *opt; /* NULL for --config */
  const char *value;     /* NULL for a bool given without a value */
  int negated;           /* --no-NAME */
  const char *arg;       /* the flag as written, for messages */
} config_flag;

static int config_is_help(const char *arg) {
  return strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0;
}

static int config_is_version(const char *arg) {
  return strcmp(arg, "--version") == 0;
}

/* Recognises argv into flags. Returns the number of flags, or -1 after
 * reporting an error. */
static int config_scan_flags(const app_spec *spec, int argc, char **argv,
                             config_flag *flags) {
  int n = 0;
  for (int i = 1; i < argc; i++) {
    const char *arg = argv[i];
    if (strncmp(arg, "--", 2) != 0 || arg[2] == '\0') {
      config_error(
          spec,
          "unexpected argument \"%s\" (options are --NAME VALUE; see --help)",
          arg);
      return -1;
    }
    const char *name = arg + 2;
    const char *eq = strchr(name, '=');
    size_t name_len = eq ? (size_t)(eq - name) : strlen(name);
    config_flag *f = &flags[n];
    memset(f, 0, sizeof *f);
    f->arg = arg;
    if (name_len == strlen(CONFIG_FLAG_CONFIG) &&
        strncmp(name, CONFIG_FLAG_CONFIG, name_len) == 0) {
      f->opt = NULL;
    } else {
      f->opt = config_find(spec, name, name_len, 1);
      if (f->opt == NULL && name_len > 3 && strncmp(name, "no-", 3) == 0) {
        const app_option *o = config_find(spec, name + 3, name_len - 3, 1);
        if (o != NULL && o->type == APP_OPT_BOOL) {
          if (eq != NULL) {
            config_error(spec, "%s takes no value", arg);
            return -1;
          }
          f->opt = o;
          f->negated = 1;
          n++;
          continue;
        }
      }
      if (f->opt == NULL) {
        config_error(spec, "unknown option --%.*s (see --help)", (int)name_len,
                     name);
        return -1;
      }
    }
    if (eq != NULL) {
      f->value = eq + 1;
    } else if (f->opt == NULL || f->opt->type != APP_OPT_BOOL) {
      if (i + 1 >= argc) {
        config_error(spec, "%s needs a value (see --help)", arg);
        return -1;
      }
      f->value = argv[++i];
    }
    n++;
  }
  return n;
}

/* Applies the flags in order; the first flag of a list replaces what the
 * file or the default gave, later ones add to it. */
static int config_apply_flags(const app_spec *spec, void *cfg,
                              config_flag *flags, int n) {
  unsigned char *replaced = calloc(spec->n_options + 1, 1);
  if (replaced == NULL) return config_error(spec, "out of memory"), -1;
  int rc = 0;
  for (int i = 0; i < n && rc == 0; i++) {
    const app_option *o = flags[i].opt;
    if (o == NULL) continue; /* --config, already loaded */
    void *field = config_field(cfg, o);
    size_t idx = (size_t)(o - spec->options);
    char why[WHY_LEN];
    if (o->type == APP_OPT_BOOL && flags[i].value == NULL) {
      *(int *)field = !flags[i].negated;
      continue;
    }
    if ((o->type == APP_OPT_LISTEN || o->type == APP_OPT_STRING_LIST) &&
        !replaced[idx]) {
      config_clear(o, field);
      replaced[idx] = 1;
    }
    if (config_set_text(o, field, flags[i].value, why) != 0) {
      config_error(spec, "%s: %s", flags[i].arg, why);
      rc = -1;
    }
  }
  free(replaced);
  return rc;
}

/* ---- Loading ------------------------------------------------------------ */

static int config_defaults(const app_spec *spec, void *cfg) {
  for (size_t i = 0; i < spec->n_options; i++) {
    const app_option *o = &spec->options[i];
    void *field = config_field(cfg, o);
    /* The field may hold anything: zero it without freeing. */
    switch (o->type) {
    case APP_OPT_BOOL:
    case APP_OPT_LOG_LEVEL:
      *(int *)field = 0;
      break;
    case APP_OPT_INT:
      *(int64_t *)field = 0;
      break;
    case APP_OPT_STRING:
      *(char **)field = NULL;
      break;
    case APP_OPT_STRING_LIST:
      memset(field, 0, sizeof(app_string_list));
      break;
    case APP_OPT_LISTEN:
      memset(field, 0, sizeof(app_listen_list));
      break;
    case APP_OPT_CUSTOM:
      break;
    }
  }
  for (size_t i = 0; i < spec->n_options; i++) {
    const app_option *o = &spec->options[i];
    const char *def = o->default_value;
    if (o->type == APP_OPT_LOG_LEVEL) {
      const char *env = getenv("WEFT_LOG_LEVEL");
      if (env != NULL && weft_log_parse_level(env) >= 0)
        def = env;
      else if (env != NULL && env[0] != '\0')
        config_error(spec,
                     "ignoring WEFT_LOG_LEVEL=\"%s\" (expected debug, info, "
                     "warn, error or off): the log level is %s",
                     env, def != NULL ? def : "info");
    }
    if (def == NULL) continue;
    char why[WHY_LEN];
    if (config_set_text(o, config_field(cfg, o), def, why) != 0) {
      /* The table is part of the program: a bad default is a bug. */
      config_error(spec, "bad default for %s: %s", o->name, why);
      return -1;
    }
  }
  return 0;
}

int app_config_load(const app_spec *spec, void *cfg, int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    if (config_is_help(argv[i])) {
      app_config_help(spec);
      return APP_EXIT_OK;
    }
  }
  for (int i = 1; i < argc; i++) {
    if (config_is_version(argv[i])) {
      app_config_version(spec);
      return APP_EXIT_OK;
    }
  }
  if (config_defaults(spec, cfg) != 0) {
    app_config_free(spec, cfg);
    return APP_EXIT_USAGE;
  }
  config_flag *flags = calloc((size_t)(argc > 0 ? argc : 1), sizeof *flags);
  int n = flags ? config_scan_flags(spec, argc, argv, flags) : -1;
  int rc = n < 0 ? -1 : 0;
  const char *path = NULL;
  for (int i = 0; i < n; i++)
    if (flags[i].opt == NULL) path = flags[i].value;
  if (rc == 0 && path != NULL) rc = config_load_file(spec, cfg, path);
  if (rc == 0) rc = config_apply_flags(spec, cfg, flags, n);
  free(flags);
  if (rc != 0) {
    app_config_free(spec, cfg);
    return APP_EXIT_USAGE;
  }
  for (size_t i = 0; i < spec->n_options; i++) {
    const app_option *o = &spec->options[i];
    if (o->type == APP_OPT_LOG_LEVEL)
      weft_log_set_level((weft_log_level) * (int *)config_field(cfg, o));
  }
  return APP_RUN;
}

void app_config_free(const app_spec *spec, void *cfg) {
  for (size_t i = 0; i < spec->n_options; i++)
    config_clear(&spec->options[i], config_field(cfg, &spec->options[i]));
}

/* ---- --help and the configuration log ------------------------------------ */

static const char *config_metavar(const app_option *o) {
  if (o->metavar != NULL) return o->metavar;
  switch (o->type) {
  case APP_OPT_BOOL:
    return NULL;
  case APP_OPT_INT:
    return "N";
  case APP_OPT_STRING: /* NOLINT(bugprone-branch-clone): one label per kind */
    return "TEXT";
  case APP_OPT_STRING_LIST:
    return "TEXT";
  case APP_OPT_LISTEN:
    return "HOST:PORT";
  case APP_OPT_LOG_LEVEL:
    return "LEVEL";
  case APP_OPT_CUSTOM:
    return "VALUE";
  }
  return "VALUE";
}

/* Prints text wrapped at about 78 columns, each line indented. */
static void config_wrap(const char *text, int indent) {
  const int width = 78;
  int col = 0;
  const char *p = text;
  while (*p) {
    while (*p == ' ') p++;
    size_t word = strcspn(p, " ");
    if (word == 0) break;
    if (col == 0) {
      col = printf("%*s", indent, "");
    } else if (col + 1 + (int)word > width) {
      printf("\n");
      col = printf("%*s", indent, "");
    } else {
      col += printf(" ");
    }
    col += printf("%.*s", (int)word, p);
    p += word;
  }
  if (col > 0) printf("\n");
}

static void config_flag_name(const char *name, char *buf, size_t len) {
  size_t i = 0;
  for (; name[i] && i + 1 < len; i++) buf[i] = name[i] == '_' ? '-' : name[i]; /* NOLINT(bugprone-narrowing-conversions): char in, char out */
  buf[i] = '\0';
}

#ifndef APP_VERSION
#define APP_VERSION WEFT_VERSION_STRING
#endif

const char *app_version(void) { return APP_VERSION; }

void app_config_version(const app_spec *spec) {
  printf("%s %s (weft %s, libuv %s)\n", spec->name, APP_VERSION,
         WEFT_VERSION_STRING, uv_version_string());
  fflush(stdout);
}

void app_config_help(const app_spec *spec) {
  printf("Usage: %s [--config FILE] [OPTIONS]%s%s\n\n", spec->name,
         spec->operands != NULL ? " " : "",
         spec->operands != NULL ? spec->operands : "");
  if (spec->summary != NULL) {
    config_wrap(spec->summary, 0);
    printf("\n");
  }
  printf("Options come from the defaults below, then the JSON file given with\n"
         "--config (its keys are the option names with '_'), then the flags,\n"
         "each overriding the one before. A bad file or flag exits with code "
         "2.\n\n");
  printf("  --config FILE\n");
  config_wrap(
      "read options from a JSON object in FILE, as {\"log_level\": \"debug\"}",
      6);
  for (size_t i = 0; i < spec->n_options; i++) {
    const app_option *o = &spec->options[i];
    char flag[64];
    config_flag_name(o->name, flag, sizeof flag);
    const char *meta = config_metavar(o);
    if (o->type == APP_OPT_BOOL)
      printf("  --%s, --no-%s\n", flag, flag);
    else
      printf("  --%s %s\n", flag, meta);
    char text[1024];
    char range[96] = "";
    if (o->type == APP_OPT_INT)
      snprintf(range, sizeof range, "; %" PRId64 " to %" PRId64, o->min,
               o->max);
    const char *def = o->default_value;
    int repeat = o->type == APP_OPT_LISTEN || o->type == APP_OPT_STRING_LIST;
    snprintf(text, sizeof text, "%s%s [key \"%s\"; default: %s%s%s]",
             o->help ? o->help : "", repeat ? " (repeatable)" : "", o->name,
             def && *def ? def : "none", range,
             o->type == APP_OPT_LOG_LEVEL ? ", or $WEFT_LOG_LEVEL" : "");
    config_wrap(text, 6);
  }
  printf("  -h, --help\n");
  config_wrap("print this help and exit", 6);
  printf("  --version\n");
  config_wrap("print the version and exit", 6);
  fflush(stdout);
}

void app_config_log(const app_spec *spec, const void *cfg) {
  char line[1536];
  size_t len = 0;
  line[0] = '\0';
  for (size_t i = 0; i < spec->n_options && len < sizeof line; i++) {
    const app_option *o = &spec->options[i];
    const void *field = (const char *)cfg + o->offset;
    char value[512] = "";
    switch (o->type) {
    case APP_OPT_BOOL:
      snprintf(value, sizeof value, "%s",
               *(const int *)field ? "true" : "false");
      break;
    case APP_OPT_INT:
      snprintf(value, sizeof value, "%" PRId64, *(const int64_t *)field);
      break;
    case APP_OPT_STRING: {
      const char *s = *(char *const *)field;
      snprintf(value, sizeof value, "\"%s\"", s ? s : "");
      break;
    }
    case APP_OPT_STRING_LIST: {
      const app_string_list *l = field;
      size_t vl = 0;
      for (size_t k = 0; k < l->n && vl < sizeof value; k++)
        vl += (size_t)snprintf(value + vl, sizeof value - vl, "%s%s",
                               k ? "," : "", l->items[k]);
      break;
    }
    case APP_OPT_LISTEN: {
      const app_listen_list *l = field;
      size_t vl = 0;
      for (size_t k = 0; k < l->n && vl < sizeof value; k++) {
        char a[96];
        app_addr_format(l->addrs[k].host, l->addrs[k].port, a, sizeof a);
        vl += (size_t)snprintf(value + vl, sizeof value - vl, "%s%s",
                               k ? "," : "", a);
      }
      break;
    }
    case APP_OPT_LOG_LEVEL: {
      static const char *const names[] = {"debug", "info", "warn", "error",
                                          "off"};
      int lv = *(const int *)field;
      snprintf(value, sizeof value, "%s", lv >= 0 && lv <= 4 ? names[lv] : "?");
      break;
    }
    case APP_OPT_CUSTOM:
      if (o->format != NULL)
        o->format(field, value, sizeof value);
      else
        snprintf(value, sizeof value, "(custom)");
      break;
    }
    len += (size_t)snprintf(line + len, sizeof line - len, "%s%s=%s",
                            len ? " " : "", o->name, value[0] ? value : "\"\"");
  }
  weft_log(WEFT_LOG_INFO, "config", "%s", line);
}
