/* fuzz_config: the JSON configuration loader under a fuzzer.
 *
 * An input is a configuration file. It is loaded with --config through
 * app_config_load(), with a table of every kind of option (bool, int,
 * string, string list, listen addresses, log level), as an application
 * loads its file; the JSON parser and the positions an error names
 * (app_json_member_offset) are also run on it directly. A file is valid
 * or refused (exit code 2); nothing else may happen. See
 * cmake/weftFuzz.cmake for the builds.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "json.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
void weft_fuzz_replay_done(void);

typedef struct fuzz_config {
  app_listen_list listen;
  int64_t executors;
  int64_t max_connections;
  int gzip;
  char *name;
  app_string_list origins;
  int log_level;
} fuzz_config;

static const app_option fuzz_options[] = {
    APP_OPTION_LISTEN(fuzz_config, listen, "127.0.0.1:0"),
    APP_OPTION_EXECUTORS(fuzz_config, executors, "1"),
    APP_OPTION_INT(fuzz_config, max_connections, "1000", 0, INT64_MAX,
                   "connections served at once (0: no limit)"),
    APP_OPTION_BOOL(fuzz_config, gzip, "true", "compress responses"),
    APP_OPTION_STRING(fuzz_config, name, "weft", "a name"),
    APP_OPTION_STRING_LIST(fuzz_config, origins, "allowed origins"),
    APP_OPTION_LOG_LEVEL(fuzz_config, log_level),
};
static const app_spec fuzz_spec =
    APP_SPEC("fuzz_config", "Loads configuration files.", fuzz_options);

static char fuzz_path[] = "/tmp/weft-fuzz-config-XXXXXX";
static int fuzz_fd = -1;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  fuzz_fd = mkstemp(fuzz_path);
  if (fuzz_fd < 0) abort();
  return 0;
}

void weft_fuzz_replay_done(void) {
  close(fuzz_fd);
  unlink(fuzz_path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  /* The parser and the positions of members. */
  app_json_error err;
  cJSON *doc = app_json_parse((const char *)data, size, APP_JSON_MAX_DEPTH,
                              &err);
  if (doc == NULL && (err.line < 1 || err.column < 1 || err.offset > size)) {
    fprintf(stderr, "fuzz_config: error at no position\n");
    abort();
  }
  int members = cJSON_IsObject(doc) ? cJSON_GetArraySize(doc) : 0;
  cJSON_Delete(doc);
  for (int i = 0; i <= members && i < 64; i++)
    for (int value = 0; value < 2; value++) {
      long off = app_json_member_offset((const char *)data, size, i, value);
      if (off < -1 || off > (long)size) {
        fprintf(stderr, "fuzz_config: member %d at %ld of %zu\n", i, off,
                size);
        abort();
      }
    }

  /* The loader, from the file. */
  if (ftruncate(fuzz_fd, 0) != 0 ||
      pwrite(fuzz_fd, data, size, 0) != (ssize_t)size)
    abort();
  char *argv[] = {"fuzz_config", "--config", fuzz_path, NULL};
  fuzz_config cfg;
  /* A refused file is reported on stderr: `make fuzz` runs the fuzzers
   * with -close_fd_mask=2, which keeps the crash reports. */
  int rc = app_config_load(&fuzz_spec, &cfg, 3, argv);
  if (rc == APP_RUN) {
    app_config_free(&fuzz_spec, &cfg);
  } else if (rc != APP_EXIT_USAGE) {
    fprintf(stderr, "fuzz_config: app_config_load returned %d\n", rc);
    abort();
  }
  return 0;
}
