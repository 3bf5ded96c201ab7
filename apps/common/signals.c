/* signals.c: the shutdown task, and the metrics dump on a signal. */
#include "signals.h"

#include <signal.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <weft.h>

const char *app_signal_name(int signum) {
  switch (signum) {
  case SIGINT:
    return "SIGINT";
  case SIGTERM:
    return "SIGTERM";
#ifdef _WIN32
  case SIGBREAK:
    return "SIGBREAK";
  case SIGHUP:
    return "SIGHUP";
#else
  case SIGUSR1:
    return "SIGUSR1";
#endif
  default:
    return "signal";
  }
}

void app_ignore_sigpipe(void) {
#ifndef _WIN32 /* Winsock raises no SIGPIPE */
  struct sigaction sa;
  sa.sa_handler = SIG_IGN;
  sa.sa_flags = 0;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGPIPE, &sa, NULL);
#endif
}

int app_shutdown_task(void *arg) {
  app_shutdown *sd = arg;
#ifdef _WIN32
  /* libuv emulates these three on Windows: Ctrl+C, Ctrl+Break and the
   * console closing stop the application; there is no SIGTERM to catch and
   * no SIGUSR1 for a dump (docs/PORTING.md). */
  static const int sigs[] = {SIGINT, SIGBREAK, SIGHUP};
#else
  static const int sigs[] = {SIGINT, SIGTERM, SIGUSR1};
#endif
  int stops = 0;
  weft_task_set_name("signals");
  for (;;) {
    /* Once a shutdown has begun, the wait for the second signal is also the
     * grace period: its deadline forces the end. */
    weft_scope grace;
    int timed = stops == 1 && sd->grace_ms >= 0;
    weft_scope_enter(&grace, timed ? sd->grace_ms : WEFT_NO_DEADLINE);
    int sig = weft_signal_wait(sigs, 3);
    weft_scope_leave(&grace);
    if (sig < 0) {
      /* Our own deadline, not the cancellation of the task. */
      if (sig == UV_ETIMEDOUT && timed && weft_cancelled() == 0) {
        weft_log(WEFT_LOG_WARN, "grace period over: closing what is left",
                 "grace_ms=%lld", (long long)sd->grace_ms);
        stops = 2;
        if (sd->force) sd->force(sd->ctx, 0);
        continue;
      }
      return 0;
    }
#ifndef _WIN32
    if (sig == SIGUSR1) {
      if (sd->dump) sd->dump(sd->ctx);
      continue;
    }
#endif
    stops++;
    if (stops == 1) {
      weft_log(WEFT_LOG_INFO, "shutting down", "signal=%s grace_ms=%lld",
               app_signal_name(sig), (long long)sd->grace_ms);
      if (sd->begin) sd->begin(sd->ctx, sig);
    } else if (stops == 2) {
      weft_log(WEFT_LOG_WARN, "second signal: closing what is left",
               "signal=%s", app_signal_name(sig));
      if (sd->force) sd->force(sd->ctx, sig);
    }
  }
}

/* Writes all len bytes of p to fd. Returns 0 or an error. */
static int write_all(int fd, const char *p, size_t len) {
  size_t off = 0;
  while (off < len) {
    ssize_t n = weft_file_write(fd, p + off, len - off, -1);
    if (n <= 0) return n < 0 ? (int)n : UV_EIO;
    off += (size_t)n;
  }
  return 0;
}

/* weft_metrics_json() with a newline, in one buffer so that it goes out in
 * one write when the descriptor takes it. NULL without memory. */
static char *metrics_json_line(size_t *len) {
  char *json = weft_metrics_json();
  if (json == NULL) return NULL;
  size_t n = strlen(json);
  char *line = realloc(json, n + 2);
  if (line == NULL) {
    free(json);
    return NULL;
  }
  line[n] = '\n';
  line[n + 1] = '\0';
  *len = n + 1;
  return line;
}

int app_metrics_serve_signal(int signum, int fd) {
  for (;;) {
    int r = weft_signal_wait(&signum, 1);
    if (r < 0) return r;
    size_t len = 0;
    char *json = metrics_json_line(&len);
    if (json == NULL) return UV_ENOMEM;
    r = write_all(fd, json, len);
    free(json);
    if (r != 0) return r;
  }
}
