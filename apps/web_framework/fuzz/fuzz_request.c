/* fuzz_request: the example application's request path under a fuzzer.
 *
 * Each input is the bytes a client sends on one connection. They go
 * through everything a real connection meets: llhttp and the limits of
 * weft_http, the framework's router and middleware (request id, logger,
 * recover, CORS, gzip, the /api timeout) and the example's handlers (the
 * items resource, static files, echo, ...), served from memory by
 * wf_app_serve_memory() inside weft_main(). The items store is emptied
 * before each input, so an input replays the same way every time.
 *
 * Built with -DWEFT_FUZZ=ON under clang this is a libFuzzer target:
 *
 *   ./web_framework_fuzz -max_total_time=300 corpus-copy/ SEED_DIR
 *
 * Otherwise (the normal build, and the sanitizer builds) it is a program
 * that replays every file of the directories or files it is given, by
 * default the seed corpus, so that ctest runs the corpus on every build:
 *
 *   ./web_framework_fuzz_replay [DIR|FILE]...
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <weft.h>

#include "webapp.h"

/* CMake points these at the source tree; a build without them serves no
 * files and replays the current directory. */
#ifndef WEBAPP_FUZZ_STATIC_DIR
#define WEBAPP_FUZZ_STATIC_DIR ""
#endif
#ifndef WEBAPP_FUZZ_CORPUS_DIR
#define WEBAPP_FUZZ_CORPUS_DIR "."
#endif

/* The app is built on the first input and kept for the rest: building it
 * registers metrics, which live as long as the process. */
static webapp_config fuzz_cfg;
static webapp *fuzz_app;
static char *fuzz_origins[] = {"http://a.example"};

/* A configuration like the shipped one, with small bounds so that one
 * input cannot take long or hold much memory. */
static void fuzz_config(webapp_config *cfg) {
  memset(cfg, 0, sizeof *cfg);
  cfg->executors = 1;
  cfg->static_dir = WEBAPP_FUZZ_STATIC_DIR;
  cfg->max_header_bytes = 4096;
  cfg->max_headers = 32;
  cfg->max_body_bytes = 64 * 1024;
  /* Serving from memory never waits for the client: the input's end is
   * the client closing. Timeouts still bound what the handlers do. */
  cfg->header_timeout_ms = 1000;
  cfg->body_timeout_ms = 1000;
  cfg->idle_timeout_ms = 1000;
  cfg->write_timeout_ms = 1000;
  cfg->request_timeout_ms = 1000;
  cfg->max_requests_per_connection = 100;
  cfg->cors_origins.n = 1;
  cfg->cors_origins.items = fuzz_origins;
  cfg->gzip = 1;
  cfg->gzip_min_bytes = 64;
  cfg->access_log = 1;
  cfg->max_items = 64;
  /* /api/slow answers only ms=0: a fuzzer must not wait. */
  cfg->slow_max_ms = 0;
}

typedef struct fuzz_input {
  const uint8_t *data;
  size_t size;
  int rc; /* what wf_app_serve_memory() returned */
} fuzz_input;

/* The root task of one input: serves it and drops the output. */
static int fuzz_task(void *arg) {
  fuzz_input *in = arg;
  if (fuzz_app == NULL) {
    fuzz_config(&fuzz_cfg);
    fuzz_app = webapp_build(&fuzz_cfg);
    if (fuzz_app == NULL) return UV_ENOMEM;
  }
  webapp_reset(fuzz_app);
  char *out = NULL;
  size_t out_len = 0;
  in->rc = wf_app_serve_memory(webapp_app(fuzz_app), in->data, in->size, &out,
                               &out_len);
  /* Whatever the input, the output is a sequence of responses: it can
   * only be empty or start like one. */
  if (out_len > 0 && (out_len < 9 || memcmp(out, "HTTP/1.", 7) != 0)) {
    fprintf(stderr,
            "fuzz_request: output does not start with a status line: "
            "%.*s\n",
            (int)(out_len < 40 ? out_len : 40), out);
    abort();
  }
  free(out);
  return 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Silences the log (the logger middleware writes a line per request)
 * unless WEFT_LOG_LEVEL asks for it. */
int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  if (getenv("WEFT_LOG_LEVEL") == NULL) weft_log_set_level(WEFT_LOG_OFF);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_input in = {.data = data, .size = size};
  weft_opts opts = {.executors = 1};
  int rc = weft_main_opts(&opts, fuzz_task, &in);
  if (rc < 0) {
    fprintf(stderr, "fuzz_request: weft_main: %s\n", weft_strerror(rc));
    abort();
  }
  return 0;
}

#ifndef WEBAPP_LIBFUZZER

/* Frees the app, in a runtime of its own (the app was built in one). */
static int fuzz_free_task(void *arg) {
  (void)arg;
  webapp_free(fuzz_app);
  fuzz_app = NULL;
  return 0;
}

/* Reads a whole file; returns its bytes (malloc'ed) or NULL. */
static uint8_t *fuzz_read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) return NULL;
  uint8_t *buf = NULL;
  size_t cap = 0, n = 0;
  for (;;) {
    if (n == cap) {
      cap = cap ? cap * 2 : 4096;
      uint8_t *grown = realloc(buf, cap);
      if (grown == NULL) {
        free(buf);
        fclose(f);
        return NULL;
      }
      buf = grown;
    }
    size_t got = fread(buf + n, 1, cap - n, f);
    n += got;
    if (got == 0) break;
  }
  int bad = ferror(f);
  fclose(f);
  if (bad) {
    free(buf);
    return NULL;
  }
  *len = n;
  return buf;
}

/* Replays one file; returns 0, or -1 when it cannot be read. */
static int fuzz_replay_file(const char *path) {
  size_t len = 0;
  uint8_t *data = fuzz_read_file(path, &len);
  if (data == NULL) {
    fprintf(stderr, "fuzz_request: cannot read %s\n", path);
    return -1;
  }
  LLVMFuzzerTestOneInput(data, len);
  free(data);
  return 0;
}

static int fuzz_compare_names(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Replays every regular file of dir, in name order (so that a failure is
 * reported the same way every run). Returns the number replayed, or -1. */
static int fuzz_replay_dir(const char *dir) {
  DIR *d = opendir(dir);
  if (d == NULL) {
    fprintf(stderr, "fuzz_request: cannot open %s\n", dir);
    return -1;
  }
  char **names = NULL;
  size_t n = 0, cap = 0;
  struct dirent *e;
  int rc = 0;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.') continue;
    if (n == cap) {
      cap = cap ? cap * 2 : 32;
      char **grown = realloc(names, cap * sizeof *names);
      if (grown == NULL) {
        rc = -1;
        break;
      }
      names = grown;
    }
    size_t len = strlen(dir) + strlen(e->d_name) + 2;
    if ((names[n] = malloc(len)) == NULL) {
      rc = -1;
      break;
    }
    snprintf(names[n++], len, "%s/%s", dir, e->d_name);
  }
  closedir(d);
  if (n > 0) qsort(names, n, sizeof *names, fuzz_compare_names);
  int replayed = 0;
  for (size_t i = 0; i < n; i++) {
    struct stat st;
    if (rc == 0 && stat(names[i], &st) == 0 && S_ISREG(st.st_mode)) {
      if (fuzz_replay_file(names[i]) < 0)
        rc = -1;
      else
        replayed++;
    }
    free(names[i]);
  }
  free(names);
  return rc < 0 ? -1 : replayed;
}

/* Replays the corpus directories and files named on the command line, or
 * the seed corpus. Exits 0 when every input ran (a crash aborts). */
int main(int argc, char **argv) {
  LLVMFuzzerInitialize(&argc, &argv);
  const char *fallback[] = {WEBAPP_FUZZ_CORPUS_DIR};
  const char **paths = argc > 1 ? (const char **)argv + 1 : fallback;
  int n_paths = argc > 1 ? argc - 1 : 1;
  int total = 0, failed = 0;
  for (int i = 0; i < n_paths; i++) {
    struct stat st;
    if (stat(paths[i], &st) != 0) {
      fprintf(stderr, "fuzz_request: no such file or directory: %s\n",
              paths[i]);
      failed = 1;
    } else if (S_ISDIR(st.st_mode)) {
      int n = fuzz_replay_dir(paths[i]);
      if (n < 0)
        failed = 1;
      else
        total += n;
    } else if (fuzz_replay_file(paths[i]) < 0) {
      failed = 1;
    } else {
      total++;
    }
  }
  weft_main(fuzz_free_task, NULL);
  printf("fuzz_request: replayed %d input%s\n", total, total == 1 ? "" : "s");
  if (total == 0) failed = 1;
  return failed ? 1 : 0;
}

#endif /* WEBAPP_LIBFUZZER */
