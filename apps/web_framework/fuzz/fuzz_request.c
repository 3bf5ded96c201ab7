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
 * Every build also links it with fuzz/fuzz_replay_main.c into
 * web_framework_fuzz_replay, which replays the seed corpus under ctest.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <weft.h>

#include "fuzz_common.h"
#include "webapp.h"

/* CMake points this at the source tree; a build without it serves no
 * files. */
#ifndef WEBAPP_FUZZ_STATIC_DIR
#define WEBAPP_FUZZ_STATIC_DIR ""
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_input in = {.data = data, .size = size};
  fuzz_run_input("fuzz_request: weft_main", fuzz_task, &in);
  return 0;
}

/* Frees the app after the last replayed input, in a runtime of its own
 * (the app was built in one). */
static int fuzz_free_task(void *arg) {
  (void)arg;
  webapp_free(fuzz_app);
  fuzz_app = NULL;
  return 0;
}

void weft_fuzz_replay_done(void);
void weft_fuzz_replay_done(void) { weft_main(fuzz_free_task, NULL); }
