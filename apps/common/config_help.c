/* config_help.c: what the option table prints: --help, --version and the
 * configuration log line. */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <weft.h>

/* The name of o's value in --help: the table's, or one from its type;
 * NULL for a boolean, which takes none. */
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

/* Writes the flag of option name (its key, with '-' for '_') into buf. */
static void config_flag_name(const char *name, char *buf, size_t len) {
  size_t i = 0;
  for (; name[i] && i + 1 < len; i++) buf[i] = name[i] == '_' ? '-' : name[i]; /* NOLINT(bugprone-narrowing-conversions): char in, char out */
  buf[i] = '\0';
}

/* The build gives the project's version (apps/common/CMakeLists.txt); a
 * build without it says the runtime's, which is the same release. */
#ifndef APP_VERSION
#define APP_VERSION WEFT_VERSION_STRING
#endif

const char *app_version(void) { return APP_VERSION; }

void app_config_version(const app_spec *spec) {
  printf("%s %s (weft %s, libuv %s)\n", spec->name, APP_VERSION,
         WEFT_VERSION_STRING, uv_version_string());
  fflush(stdout);
}

/* Usage, the summary, how the sources of options combine, then each option
 * with its flag, help, key, default and range, wrapped for a terminal. */
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
    /* One paragraph: the help, then what a reader needs to set it. */
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

/* One logfmt line of NAME=VALUE pairs, each value as a flag would give it
 * (strings quoted, lists comma-separated); an empty value shows as "". */
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
