/* options.c: the option table, the command word, short flags and PATHs.
 *
 * apps/common's loader takes --NAME VALUE flags only; this file turns the
 * command line users type (file_processor hash -a sha256 -j4 dir) into
 * that form: the command word is taken off the front, short flags become
 * their long spellings, and every PATH becomes --paths PATH.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "fp.h"

void fp_error(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("file_processor: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
}

static const app_option fp_options[] = {
    APP_OPTION_STRING_LIST(fp_config, paths,
                           "files and folders to process (the arguments)"),
    APP_OPTION_STRING(fp_config, algorithms, NULL,
                      "-a: digests, comma-separated: sha256, sha512, sha1, "
                      "md5, blake2b, xxh128, blake3 (default: sha256; verify: "
                      "from the manifest's digest length)"),
    APP_OPTION_STRING(fp_config, output, NULL,
                      "-o: hash: the manifest file (default: standard "
                      "output); compress and decompress: the folder to write "
                      "under, at the same relative paths"),
    APP_OPTION_STRING(fp_config, format, "sum",
                      "manifest format: sum (as sha256sum and b3sum write), "
                      "bsd (as --tag), or jsonl"),
    APP_OPTION_STRING(fp_config, update, NULL,
                      "hash: reuse the digests of this manifest for files "
                      "not modified since it was written; write it anew "
                      "(or to -o)"),
    APP_OPTION_STRING(fp_config, manifest, NULL, "-m: verify: the manifest"),
    APP_OPTION_BOOL(fp_config, ignore_missing, "false",
                    "verify: do not report files missing from disk"),
    APP_OPTION_STRING(fp_config, codec, "gzip", "compress: gzip or zstd"),
    APP_OPTION_INT(fp_config, level, "-1", -1, 22,
                   "-l: compression level (-1: 6 for gzip, 3 for zstd)"),
    APP_OPTION_CUSTOM(fp_config, block_size, "0", "SIZE",
                      "compress: files larger than this are cut into blocks "
                      "compressed in parallel (0: 1M)",
                      app_parse_size, NULL, app_format_size),
    APP_OPTION_BOOL(fp_config, rm, "false",
                    "compress, decompress: remove each input once its "
                    "output is in place"),
    APP_OPTION_BOOL(fp_config, to_stdout, "false",
                    "-c: compress, decompress: write to standard output"),
    APP_OPTION_INT(fp_config, jobs, "0", 0, 256,
                   "-j: parallel workers (0: one per core)"),
    APP_OPTION_STRING_LIST(fp_config, include,
                           "process only files matching this glob (a glob "
                           "without / matches the file name, one with / the "
                           "path); repeatable"),
    APP_OPTION_STRING_LIST(fp_config, exclude,
                           "skip files and folders matching this glob; "
                           "repeatable"),
    APP_OPTION_BOOL(fp_config, recursive, "true",
                    "descend into sub-folders (--no-recursive: only the "
                    "files directly in the folders given)"),
    APP_OPTION_BOOL(fp_config, follow_symlinks, "false",
                    "-L: follow symbolic links (without it they are skipped "
                    "and counted)"),
    APP_OPTION_BOOL(fp_config, one_file_system, "false",
                    "do not descend into folders on other file systems"),
    APP_OPTION_INT(fp_config, max_depth, "-1", -1, 100000,
                   "take files at most this many levels below each PATH, as "
                   "find -maxdepth (1: only the files in it; -1: no limit)"),
    APP_OPTION_CUSTOM(fp_config, min_size, "0", "SIZE",
                      "skip files smaller than this", app_parse_size, NULL,
                      app_format_size),
    APP_OPTION_CUSTOM(fp_config, max_size, "0", "SIZE",
                      "skip files larger than this (0: no limit)",
                      app_parse_size, NULL, app_format_size),
    APP_OPTION_STRING(fp_config, files_from, NULL,
                      "read the paths from this file, one a line (- : "
                      "standard input), in the order given"),
    APP_OPTION_BOOL(fp_config, null, "false",
                    "-0: --files-from separates paths with NUL bytes"),
    APP_OPTION_STRING(fp_config, order, "sorted",
                      "sorted (by path, in byte order, whatever -j) or any "
                      "(as finished)"),
    APP_OPTION_STRING(fp_config, progress, "auto",
                      "auto (on a terminal), always or never; SIGUSR1 prints "
                      "a status line at any time"),
    APP_OPTION_STRING(fp_config, journal, NULL,
                      "record each finished item in this file"),
    APP_OPTION_BOOL(fp_config, resume, "false",
                    "skip what --journal shows done and unchanged, and remove "
                    "the temporary files a crash left"),
    APP_OPTION_CUSTOM(fp_config, journal_memory, "8M", "SIZE",
                      "--resume: memory for the journal's finished items; "
                      "a longer journal is sorted into runs in a temporary "
                      "file beside it",
                      app_parse_size, NULL, app_format_size),
    APP_OPTION_STRING(fp_config, on_error, "skip",
                      "skip (name the path, go on, exit 2) or stop"),
    APP_OPTION_STRING(fp_config, summary_json, NULL,
                      "write the summary as JSON to this file (- : standard "
                      "output)"),
    APP_OPTION_BOOL(fp_config, fsync, "false",
                    "also fsync the folder after each rename"),
    APP_OPTION_INT(fp_config, fail_writes_after, "-1", -1, INT64_MAX,
                   "testing: writes of outputs fail with ENOSPC past this "
                   "many bytes (-1: never)"),
    APP_OPTION_LOG_LEVEL(fp_config, log_level),
};

static const app_spec fp_spec = APP_SPEC(
    "file_processor",
    "Hashes, verifies and compresses file trees. Commands: hash, verify, "
    "compress, decompress, scan (file_processor COMMAND [PATH...] "
    "[options]). Exit codes: 0 all good, 1 a verify mismatch, 2 an error; "
    "130 on SIGINT, 143 on SIGTERM.",
    fp_options);

typedef struct short_flag {
  char letter;
  const char *flag;
  int takes_value;
} short_flag;

static const short_flag short_flags[] = {
    {'a', "--algorithms", 1},
    {'o', "--output", 1},
    {'m', "--manifest", 1},
    {'l', "--level", 1},
    {'j', "--jobs", 1},
    {'c', "--to-stdout", 0},
    {'L', "--follow-symlinks", 0},
    {'0', "--null", 0},
};

static const struct {
  const char *alias, *flag;
} long_aliases[] = {
    {"--stdout", "--to-stdout"},
    {"--no-stdout", "--no-to-stdout"},
    {"--algorithm", "--algorithms"},
    {"--dereference", "--follow-symlinks"},
};

static const struct {
  const char *name;
  fp_command cmd;
} commands[] = {
    {"hash", FP_HASH},         {"verify", FP_VERIFY},
    {"compress", FP_COMPRESS}, {"decompress", FP_DECOMPRESS},
    {"scan", FP_SCAN},
};

static int long_flag_takes_value(const char *arg) {
  const char *name = arg + 2;
  if (strchr(name, '=') != NULL) return 0;
  if (strcmp(name, "config") == 0) return 1;
  char key[64];
  size_t len = strlen(name);
  if (len >= sizeof key) return 0;
  for (size_t i = 0; i <= len; i++) key[i] = name[i] == '-' ? '_' : name[i]; /* NOLINT(bugprone-narrowing-conversions): char in, char out */
  for (size_t i = 0; i < fp_spec.n_options; i++)
    if (strcmp(fp_spec.options[i].name, key) == 0)
      return fp_spec.options[i].type != APP_OPT_BOOL;
  return 0;
}

static const char *alias_of(const char *arg) {
  for (size_t k = 0; k < sizeof long_aliases / sizeof long_aliases[0]; k++)
    if (strcmp(arg, long_aliases[k].alias) == 0) return long_aliases[k].flag;
  return arg;
}

/* Rewrites argv[first..] into out. Returns the new argc or -1. */
static int rewrite_args(int argc, char **argv, int first, char **out) {
  int n = 0, paths_only = 0;
  out[n++] = argv[0];
  for (int i = first; i < argc; i++) {
    char *arg = argv[i];
    if (!paths_only && strcmp(arg, "--") == 0) {
      paths_only = 1;
      continue;
    }
    if (paths_only || arg[0] != '-' || arg[1] == '\0') {
      out[n++] = "--paths";
      out[n++] = arg;
      continue;
    }
    if (arg[1] == '-') {
      const char *flag = alias_of(arg);
      out[n++] = (char *)flag;
      if (long_flag_takes_value(flag) && i + 1 < argc) out[n++] = argv[++i];
      continue;
    }
    /* Short flags: -j4, -j 4, -cL (several without values). */
    for (const char *p = arg + 1; *p; p++) {
      const short_flag *sf = NULL;
      for (size_t k = 0; k < sizeof short_flags / sizeof short_flags[0]; k++)
        if (short_flags[k].letter == *p) sf = &short_flags[k];
      if (sf == NULL) {
        fp_error("unknown option -%c in %s (see --help)", *p, arg);
        return -1;
      }
      out[n++] = (char *)alias_of(sf->flag);
      if (!sf->takes_value) continue;
      if (p[1] != '\0') {
        out[n++] = (char *)(p + 1);
      } else if (i + 1 < argc) {
        out[n++] = argv[++i];
      } else {
        fp_error("-%c needs a value (see --help)", *p);
        return -1;
      }
      break;
    }
  }
  return n;
}

static void print_help(void) {
  printf("usage: file_processor hash       [PATH...] [-a ALG[,ALG...]] [-o "
         "MANIFEST] [--format sum|bsd|jsonl] [--update MANIFEST]\n"
         "       file_processor verify     -m MANIFEST [PATH...] "
         "[--ignore-missing]\n"
         "       file_processor compress   [PATH...] [--codec gzip|zstd] [-l "
         "LEVEL] [-o DIR] [--block-size SIZE] [--rm] [-c]\n"
         "       file_processor decompress [PATH...] [-o DIR] [-c]\n"
         "       file_processor scan       [PATH...]\n\n");
  app_config_help(&fp_spec);
  printf("\nShort flags:\n"
         "  -a ALGS   --algorithms ALGS     -o PATH  --output PATH\n"
         "  -m FILE   --manifest FILE       -l N     --level N\n"
         "  -j N      --jobs N              -c       --stdout\n"
         "  -L        --follow-symlinks     -0       --null\n"
         "\nExamples:\n"
         "  file_processor hash -a blake3 -o tree.b3 tree\n"
         "  file_processor verify -m tree.sha256 tree\n"
         "  file_processor compress --codec zstd -o out tree\n");
}

static int check_choice(const char *flag, const char *value,
                        const char *const *choices) {
  for (int i = 0; choices[i]; i++)
    if (strcmp(value, choices[i]) == 0) return i;
  fp_error("--%s: \"%s\" is not one of the choices (see --help)", flag, value);
  return -1;
}

static int check_options(fp_config *cfg, fp_command cmd) {
  static const char *const formats[] = {"sum", "bsd", "jsonl", NULL};
  static const char *const codecs[] = {"gzip", "zstd", NULL};
  static const char *const orders[] = {"sorted", "any", NULL};
  static const char *const progress[] = {"auto", "always", "never", NULL};
  static const char *const on_error[] = {"skip", "stop", NULL};
  if (check_choice("format", cfg->format, formats) < 0 ||
      check_choice("codec", cfg->codec, codecs) < 0 ||
      check_choice("order", cfg->order, orders) < 0 ||
      check_choice("progress", cfg->progress, progress) < 0 ||
      check_choice("on-error", cfg->on_error, on_error) < 0)
    return -1;
  fp_alg algs[FP_MAX_ALGS];
  char why[128];
  if (cfg->algorithms &&
      fp_algs_parse(cfg->algorithms, algs, why, sizeof why) < 0) {
    fp_error("--algorithms: %s", why);
    return -1;
  }
  if (cmd == FP_VERIFY && cfg->manifest == NULL) {
    fp_error("verify needs -m MANIFEST (see --help)");
    return -1;
  }
  if (cfg->resume && cfg->journal == NULL) {
    fp_error("--resume needs --journal FILE");
    return -1;
  }
  if (cfg->to_stdout && cfg->output != NULL) {
    fp_error("-c (--stdout) and -o (--output) exclude each other");
    return -1;
  }
  if (cmd != FP_VERIFY && cmd != FP_SCAN && cfg->paths.n == 0 &&
      cfg->files_from == NULL) {
    fp_error("no PATH given (see --help)");
    return -1;
  }
  return 0;
}

int fp_options_load(fp_config *cfg, fp_command *cmd, int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--") == 0) break;
    if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
      print_help();
      return APP_EXIT_OK;
    }
    if (strcmp(argv[i], "--version") == 0) {
      printf("file_processor %s (weft %s)\n", FP_VERSION, WEFT_VERSION_STRING);
      return APP_EXIT_OK;
    }
  }
  if (argc < 2 || argv[1][0] == '-') {
    fp_error("a command comes first: hash, verify, compress, decompress or "
             "scan (see --help)");
    return APP_EXIT_USAGE;
  }
  int found = -1;
  for (size_t k = 0; k < sizeof commands / sizeof commands[0]; k++)
    if (strcmp(argv[1], commands[k].name) == 0) found = (int)k;
  if (found < 0) {
    fp_error("unknown command \"%s\" (hash, verify, compress, decompress or "
             "scan; see --help)",
             argv[1]);
    return APP_EXIT_USAGE;
  }
  *cmd = commands[found].cmd;
  char **args = calloc((size_t)argc * 2 + 2, sizeof *args);
  if (args == NULL) return APP_EXIT_USAGE;
  int n = rewrite_args(argc, argv, 2, args);
  if (n < 0) {
    free(args);
    return APP_EXIT_USAGE;
  }
  int rc = app_config_load(&fp_spec, cfg, n, args);
  free(args);
  if (rc != APP_RUN) return rc;
  if (check_options(cfg, *cmd) != 0) {
    app_config_free(&fp_spec, cfg);
    return APP_EXIT_USAGE;
  }
  return APP_RUN;
}

void fp_options_free(fp_config *cfg) { app_config_free(&fp_spec, cfg); }

void fp_options_log(const fp_config *cfg) {
  if (weft_log_enabled(WEFT_LOG_DEBUG)) app_config_log(&fp_spec, cfg);
}
