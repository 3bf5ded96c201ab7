/* config.h: an application's options, from a JSON file and the command line.
 *
 * An application describes its options once, in a table; the table gives
 * the JSON keys of the configuration file, the command-line flags, the
 * defaults and the text of --help. A field's name in the configuration
 * struct is its JSON key, and its flag is the same name with dashes:
 *
 *   typedef struct my_config {
 *     app_listen_list listen;
 *     int64_t executors;
 *     int64_t max_connections;
 *     int log_level;
 *   } my_config;
 *
 *   static const app_option my_options[] = {
 *     APP_OPTION_LISTEN(my_config, listen, "127.0.0.1:8080"),
 *     APP_OPTION_EXECUTORS(my_config, executors, "0"),
 *     APP_OPTION_INT(my_config, max_connections, "1000", 0, INT64_MAX,
 *                    "connections served at once (0: no limit)"),
 *     APP_OPTION_LOG_LEVEL(my_config, log_level),
 *   };
 *   static const app_spec my_spec =
 *       APP_SPEC("my_server", "What it does.", my_options);
 *
 *   int main(int argc, char **argv) {
 *     my_config cfg;
 *     int rc = app_config_load(&my_spec, &cfg, argc, argv);
 *     if (rc != APP_RUN) return rc;       // --help (0) or a bad option (2)
 *     ...
 *     app_config_free(&my_spec, &cfg);
 *   }
 *
 * Order of precedence: the defaults of the table, then the file named by
 * --config FILE, then the flags in the order given. --help lists every
 * option with its default. Unknown keys or flags, values of the wrong type
 * or out of range are rejected with a message that names the file and the
 * line:column of the fault (or the flag), and exit code 2.
 */
#ifndef APP_CONFIG_H
#define APP_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#ifdef __cplusplus
extern "C" {
#endif

/** What app_config_load() tells the program to do. */
enum {
  APP_RUN = -1,      /**< options are loaded: run */
  APP_EXIT_OK = 0,   /**< --help was printed: exit 0 */
  APP_EXIT_USAGE = 2 /**< a bad option or file was reported: exit 2 */
};

/** The kinds of options, and the C type of the field each one fills. */
typedef enum app_opt_type {
  APP_OPT_BOOL,        /**< int, 0 or 1. JSON true/false; --name, --no-name,
                          --name=false */
  APP_OPT_INT,         /**< int64_t within [min, max] */
  APP_OPT_STRING,      /**< char *, owned by the configuration */
  APP_OPT_STRING_LIST, /**< app_string_list; the flag may be repeated */
  APP_OPT_LISTEN, /**< app_listen_list of HOST:PORT; the flag may be repeated */
  APP_OPT_LOG_LEVEL, /**< int, a weft_log_level; applied by app_config_load() */
  APP_OPT_CUSTOM     /**< anything: the option's parse and free functions */
} app_opt_type;

/** A list of strings (APP_OPT_STRING_LIST). */
typedef struct app_string_list {
  size_t n;
  char **items;
} app_string_list;

/** One address to listen on: a host (numeric IPv4 or IPv6 without brackets,
 * or a name) and a port (0: any free port). */
typedef struct app_addr {
  char host[64];
  int port;
} app_addr;

/** The addresses of an APP_OPT_LISTEN option. */
typedef struct app_listen_list {
  size_t n;
  app_addr *addrs;
} app_listen_list;

/**
 * Parses a custom option's value into field, from a flag's text (json NULL)
 * or from the configuration file (text NULL). Returns 0, or -1 with the
 * reason in why.
 */
typedef int (*app_opt_parse_fn)(void *field, const char *text,
                                const cJSON *json, char *why, size_t why_len);
/** Releases what a custom option's parse function stored in field. */
typedef void (*app_opt_free_fn)(void *field);
/** Writes a custom option's value as its flag would give it (for the
 * configuration log line), at most len bytes with the terminating NUL. */
typedef void (*app_opt_format_fn)(const void *field, char *out, size_t len);

/** One option. Build entries with the APP_OPTION_* macros below. */
typedef struct app_option {
  const char *name; /**< JSON key; the flag is --name with '-' for '_' */
  app_opt_type type;
  size_t offset; /**< offsetof() the field in the configuration struct */
  const char
      *default_value;  /**< the default, as a flag would give it; NULL: none */
  const char *help;    /**< one sentence for --help */
  int64_t min, max;    /**< APP_OPT_INT: the accepted range */
  const char *metavar; /**< the value's name in --help; NULL: from the type */
  app_opt_parse_fn parse;   /**< APP_OPT_CUSTOM */
  app_opt_free_fn free;     /**< APP_OPT_CUSTOM, may be NULL */
  app_opt_format_fn format; /**< APP_OPT_CUSTOM, may be NULL: the log line
                               then says "(custom)" */
} app_option;

/** An application's options and its description for --help. */
typedef struct app_spec {
  const char *name;    /**< the program's name in messages */
  const char *summary; /**< a paragraph for --help */
  const app_option *options;
  size_t n_options;
  /** What the usage line shows after the options, as "[URL ...]"; NULL:
   * nothing (the program takes no arguments but options). */
  const char *operands;
} app_spec;

#define APP_SPEC(prog, text, table)                                            \
  {                                                                            \
    .name = (prog), .summary = (text), .options = (table),                     \
    .n_options = sizeof(table) / sizeof((table)[0])                            \
  }

/* What every entry of the table names: its key (the field's name), its
 * kind and where its field lies. For the APP_OPTION_* macros below. */
#define APP_OPTION_ENTRY_(conf, field, kind)                                   \
  .name = #field, .type = (kind), .offset = offsetof(conf, field)

/** A boolean option: --NAME, --no-NAME, --NAME=false; def "true" or
 * "false" (NULL: false). */
#define APP_OPTION_BOOL(conf, field, def, text)                                \
  {                                                                            \
    APP_OPTION_ENTRY_(conf, field, APP_OPT_BOOL), .default_value = (def),      \
                                                  .help = (text)               \
  }

/** An integer option, within [lo, hi]. */
#define APP_OPTION_INT(conf, field, def, lo, hi, text)                         \
  {                                                                            \
    APP_OPTION_ENTRY_(conf, field, APP_OPT_INT),                               \
        .default_value = (def), .help = (text), .min = (lo), .max = (hi)       \
  }

/** A string option (NULL def: none). */
#define APP_OPTION_STRING(conf, field, def, text)                              \
  {                                                                            \
    APP_OPTION_ENTRY_(conf, field, APP_OPT_STRING), .default_value = (def),    \
                                                    .help = (text)             \
  }

/** A list of strings, the flag repeatable; empty by default. */
#define APP_OPTION_STRING_LIST(conf, field, text)                              \
  { APP_OPTION_ENTRY_(conf, field, APP_OPT_STRING_LIST), .help = (text) }

/** --listen HOST:PORT, repeatable; def is one address. */
#define APP_OPTION_LISTEN(conf, field, def)                                    \
  {                                                                            \
    APP_OPTION_ENTRY_(conf, field, APP_OPT_LISTEN),                            \
        .default_value = (def),                                                \
        .help = "address to listen on; repeat the flag (or give a JSON "       \
                "array) for several; IPv6 in brackets, as [::1]:PORT; port "   \
                "0 picks a free port"                                          \
  }

/** --executors N: executor threads (0: one per core). */
#define APP_OPTION_EXECUTORS(conf, field, def)                                 \
  APP_OPTION_INT(conf, field, def, 0, 1024,                                    \
                 "executor threads, each with its own event loop and, for a "  \
                 "server, its own listeners (0: one per core)")

/** --idle-spin-us N: weft_opts.idle_spin_us (0: the runtime's default). */
#define APP_OPTION_IDLE_SPIN(conf, field)                                      \
  APP_OPTION_INT(conf, field, "0", -1, 1000,                                   \
                 "with several executors, how long one that runs out of work " \
                 "watches for messages from the others before it sleeps, in "  \
                 "microseconds (0: the runtime's default, 50; -1: not at "     \
                 "all, which saves CPU when the work is mostly I/O)")

/** --log-level LEVEL; its default is $WEFT_LOG_LEVEL when set, else info. */
#define APP_OPTION_LOG_LEVEL(conf, field)                                      \
  {                                                                            \
    APP_OPTION_ENTRY_(conf, field, APP_OPT_LOG_LEVEL),                         \
        .default_value = "info", .help = "debug, info, warn, error or off"     \
  }

/** An option of any type: parse_fn reads it, free_fn (may be NULL) frees
 * what it stored, format_fn (may be NULL) writes it for the log line; meta
 * names its value in --help. */
#define APP_OPTION_CUSTOM(conf, field, def, meta, text, parse_fn, free_fn,     \
                          format_fn)                                           \
  {                                                                            \
    APP_OPTION_ENTRY_(conf, field, APP_OPT_CUSTOM),                            \
        .default_value = (def), .help = (text), .metavar = (meta),             \
        .parse = (parse_fn), .free = (free_fn), .format = (format_fn)          \
  }

/* ---- Values for APP_OPT_CUSTOM options -----------------------------------
 *
 * Parsers and formatters that plug into APP_OPTION_CUSTOM as its parse_fn
 * and format_fn, for the kinds of values several applications take:
 *
 *   APP_OPTION_CUSTOM(my_config, timeout, "30s", "DURATION",
 *                     "give up a request after this long (0: never)",
 *                     app_parse_duration_ms, NULL, app_format_duration_ms),
 *
 * Each comes as a function with an explicit bound (app_duration_parse(),
 * app_rate_parse(), app_size_parse()), for a program's own checks, and as
 * table callbacks with a fixed bound: an application picks the variant whose
 * bound its use of the field needs.
 */

/** The largest duration app_parse_duration_ms() takes, in seconds. */
#define APP_DURATION_MAX_S 1e9
/** The largest duration app_parse_duration_ms_1e7() takes (about 115 days). */
#define APP_DURATION_MAX_S_1E7 1e7
/** The largest duration app_parse_duration_ms_2e6() takes (about 23 days):
 * its milliseconds, 2e9, fit in an int. */
#define APP_DURATION_MAX_S_2E6 2e6

/**
 * Parses a duration into whole milliseconds: a number of seconds ("2",
 * "0.5") or a number with a unit, "ms", "s", "m" or "h" ("250ms", "10s",
 * "2m", "1h"), from a flag's text (json NULL) or from JSON (a number of
 * seconds or such a string). It must lie within [0, max_seconds]; NaN is
 * refused. A positive duration below one millisecond becomes 1 ms, never 0
 * (which means "no limit" or "never" for most options). Returns 0, or -1
 * with the reason in why (the word "duration" in it).
 */
int app_duration_parse(const char *text, const cJSON *json, double max_seconds,
                       int64_t *ms, char *why, size_t why_len);

/** app_opt_parse_fn of an int64_t field of milliseconds, up to
 * APP_DURATION_MAX_S seconds. */
int app_parse_duration_ms(void *field, const char *text, const cJSON *json,
                          char *why, size_t why_len);
/** The same up to APP_DURATION_MAX_S_1E7 seconds. */
int app_parse_duration_ms_1e7(void *field, const char *text, const cJSON *json,
                              char *why, size_t why_len);
/** The same up to APP_DURATION_MAX_S_2E6 seconds (milliseconds within an
 * int). */
int app_parse_duration_ms_2e6(void *field, const char *text, const cJSON *json,
                              char *why, size_t why_len);

/** app_opt_format_fn of an int64_t of milliseconds: "30s" when whole
 * seconds, else "250ms". */
void app_format_duration_ms(const void *field, char *out, size_t len);

/** The largest rate app_parse_rate() takes, per second. */
#define APP_RATE_MAX 1e9
/** The largest rate app_parse_rate_1e7() takes, per second. */
#define APP_RATE_MAX_1E7 1e7

/**
 * Parses a rate, a number per second within [0, max] (0: no limit by
 * convention), from a flag's text (json NULL) or a JSON number. NaN is
 * refused. Returns 0, or -1 with the reason in why.
 */
int app_rate_parse(const char *text, const cJSON *json, double max,
                   double *out, char *why, size_t why_len);

/** app_opt_parse_fn of a double field of requests per second, up to
 * APP_RATE_MAX. */
int app_parse_rate(void *field, const char *text, const cJSON *json,
                   char *why, size_t why_len);
/** The same up to APP_RATE_MAX_1E7. */
int app_parse_rate_1e7(void *field, const char *text, const cJSON *json,
                       char *why, size_t why_len);

/** app_opt_format_fn of a double rate: as printf's "%g". */
void app_format_rate(const void *field, char *out, size_t len);

/** The largest size app_size_parse() takes, in bytes. */
#define APP_SIZE_MAX 9e18

/**
 * Parses a size in bytes: a number with an optional K, M or G suffix
 * (powers of 1024; "KiB", "KB", "kb" and "K" are the same), from a flag's
 * text (json NULL) or from JSON (a number of bytes or such a string). It
 * must lie within [0, APP_SIZE_MAX]; a fraction of a byte is dropped.
 * Returns 0, or -1 with the reason in why.
 */
int app_size_parse(const char *text, const cJSON *json, int64_t *out,
                   char *why, size_t why_len);

/** app_opt_parse_fn of an int64_t field of bytes (app_size_parse()). */
int app_parse_size(void *field, const char *text, const cJSON *json,
                   char *why, size_t why_len);

/** app_opt_format_fn of an int64_t of bytes: the plain number. */
void app_format_size(const void *field, char *out, size_t len);

/**
 * Fills cfg (a struct the table describes, of any size) from the defaults,
 * the --config file and the flags in argv, and applies the log level.
 * Returns APP_RUN, or APP_EXIT_OK after printing --help or --version
 * ("NAME VERSION", the weft version the build was made from) to stdout, or
 * APP_EXIT_USAGE after printing a message to stderr (cfg is then already
 * freed).
 */
int app_config_load(const app_spec *spec, void *cfg, int argc, char **argv);

/** Frees the strings and lists app_config_load() stored in cfg. */
void app_config_free(const app_spec *spec, void *cfg);

/** Prints --help for spec to stdout. */
void app_config_help(const app_spec *spec);

/** Prints --version for spec to stdout: "NAME VERSION" and the versions of
 * weft and libuv it runs on. */
void app_config_version(const app_spec *spec);

/** The version of the applications (the build's project version). */
const char *app_version(void);

/** Logs the effective configuration as one line at level info. */
void app_config_log(const app_spec *spec, const void *cfg);

/**
 * Parses "HOST:PORT" ("127.0.0.1:80", "[::1]:80", "localhost:0") into out.
 * Returns 0, or -1 with the reason in why.
 */
int app_addr_parse(const char *text, app_addr *out, char *why, size_t why_len);

/** Formats host and port as "127.0.0.1:80" or "[::1]:80". */
void app_addr_format(const char *host, int port, char *buf, size_t len);

#ifdef __cplusplus
}
#endif
#endif /* APP_CONFIG_H */
