/* config.c: options from the table's defaults, a JSON file and the flags.
 *
 * app_config_load() walks the application's option table (config.h) three
 * times: the defaults, the --config file, then the flags, each value set
 * through config_set_text() or config_set_json(). Addresses are parsed in
 * config_addr.c, the values of custom options in config_value.c, and
 * --help, --version and the configuration log line are in config_help.c.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
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

/* The room for the reason a value is refused; the message that carries it
 * adds the file, line and column or the flag. */
#define WHY_LEN 160

/* The built-in flag that is not an option of the table (--help is the
 * other, handled before anything else). */
static const char CONFIG_FLAG_CONFIG[] = "config";

/* Where option o's value lives in the configuration struct cfg. */
static void *config_field(void *cfg, const app_option *o) {
  return (char *)cfg + o->offset;
}

/* Prints "NAME: message" to stderr, where every refusal of a file or a flag
 * goes before the program exits with APP_EXIT_USAGE. */
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

/* ---- Setting one value -------------------------------------------------- */

/* Zeroes option o's field without freeing what it holds: the field may
 * hold anything before the defaults are set. A custom field is left to its
 * parser and free function. */
static void config_zero(const app_option *o, void *field) {
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

/* Frees what option o's field holds and leaves it empty: before a value
 * replaces a list, and when the configuration is freed. */
static void config_clear(const app_option *o, void *field) {
  switch (o->type) {
  case APP_OPT_STRING:
    free(*(char **)field);
    break;
  case APP_OPT_STRING_LIST: {
    app_string_list *l = field;
    for (size_t i = 0; i < l->n; i++) free(l->items[i]);
    free(l->items);
    break;
  }
  case APP_OPT_LISTEN:
    free(((app_listen_list *)field)->addrs);
    break;
  case APP_OPT_CUSTOM:
    if (o->free != NULL) o->free(field);
    break;
  default:
    break;
  }
  config_zero(o, field);
}

/* Parses a flag's boolean: true, 1, yes, on or their opposites, in any
 * case. Returns 0 with the value in *out, or -1. */
static int config_parse_bool(const char *text, int *out) {
  static const char *const yes[] = {"true", "1", "yes", "on"};
  static const char *const no[] = {"false", "0", "no", "off"};
  for (size_t i = 0; i < 4; i++) {
    if (strcasecmp(text, yes[i]) == 0) return *out = 1, 0;
    if (strcasecmp(text, no[i]) == 0) return *out = 0, 0;
  }
  return -1;
}

/* Checks v against an integer option's range. Returns 0, or -1 with the
 * reason in why. */
static int config_int_check(const app_option *o, int64_t v, char *why) {
  if (v < o->min || v > o->max) {
    snprintf(why, WHY_LEN,
             "%" PRId64 " is out of range (%" PRId64 " to %" PRId64 ")", v,
             o->min, o->max);
    return -1;
  }
  return 0;
}

/* Appends one entry, text, to a list option's field: an address for
 * APP_OPT_LISTEN (parsed here), a copy of the string for
 * APP_OPT_STRING_LIST. Returns 0, or -1 with the reason in why. */
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

/* The kind of a JSON value, for "expected X, not Y" messages. */
static const char *config_json_type(const cJSON *v) {
  if (cJSON_IsBool(v)) return "a boolean";
  if (cJSON_IsNumber(v)) return "a number";
  if (cJSON_IsString(v)) return "a string";
  if (cJSON_IsArray(v)) return "an array";
  if (cJSON_IsObject(v)) return "an object";
  if (cJSON_IsNull(v)) return "null";
  return "an invalid value";
}

/* Sets field from a value of the configuration file: a value of the type
 * the option takes (a list also from one string), checked as a flag's
 * text would be. Returns 0, or -1 with the reason in why. */
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
  /* A value of the wrong JSON type: say what the option takes. */
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

/* The option called name (len bytes, not NUL-terminated), or NULL. A
 * flag's name has dashes where the key has underscores (dashes != 0). */
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

/* Reads the configuration file at path, whole and NUL-terminated, its
 * length in *len. Returns it (malloc'ed), or NULL after reporting why: it
 * cannot be read, or it is larger than CONFIG_MAX_FILE. */
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

/* Reports msg as "PATH:LINE:COLUMN: msg", the position that of byte
 * offset of text (-1: 1:1). */
static void config_file_error(const app_spec *spec, const char *path,
                              const char *text, long offset, const char *msg) {
  int line = 1, column = 1;
  if (offset >= 0) app_json_position(text, (size_t)offset, &line, &column);
  config_error(spec, "%s:%d:%d: %s", path, line, column, msg);
}

/* Sets the options the file at path names: a JSON object whose keys are
 * option names, each given once. Returns 0, or -1 after reporting the
 * first fault with its position. */
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

/* Whether arg asks for --help (which wins over everything else). */
static int config_is_help(const char *arg) {
  return strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0;
}

/* Whether arg asks for --version. */
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
        /* --no-NAME sets a boolean false; it takes no value. */
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
    /* The value: after '=', or the next argument (a boolean takes none). */
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

/* Sets every option to its default from the table (the log level to
 * $WEFT_LOG_LEVEL when that is valid). cfg may hold anything before.
 * Returns 0, or -1 after reporting a bad default, which is a bug of the
 * table. */
static int config_defaults(const app_spec *spec, void *cfg) {
  for (size_t i = 0; i < spec->n_options; i++)
    config_zero(&spec->options[i], config_field(cfg, &spec->options[i]));
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
  /* --help, then --version, whatever else the command line holds. */
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
  /* The flags are recognised first, so that --config FILE is read before
   * any flag is applied, wherever it stands: the flags override the file. */
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
  /* The log level applies at once: what follows logs at it. */
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
