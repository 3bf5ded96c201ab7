/* service.c: one task per connection reads request lines and answers each
 * with one line.
 *
 * The protocol (replace it with your own):
 *
 *   (on connect)        <- the greeting
 *   PING                <- PONG
 *   ECHO some text      <- some text
 *   QUIT                <- BYE, then the server closes the connection
 *   anything else       <- ERR unknown command
 *
 * Lines end with "\n" ("\r\n" is accepted). Memory per connection is one
 * buffer of max_line_bytes: a line that does not fit gets "ERR line too
 * long" and the connection is closed. A connection that sends no complete
 * line for idle_timeout_ms is closed (a deadline on a scope around the
 * read).
 */
#include "service.h"

#include <stdlib.h>
#include <string.h>

#include <weft.h>

#include "server.h"
#include "stats.h"

typedef struct template_app_service {
  const template_app_config *cfg;
  app_counter *lines;     /* request lines answered */
  app_counter *errors;    /* lines refused (unknown, too long) */
  app_counter *timed_out; /* connections closed for being idle */
} template_app_service;

/* Writes text (len bytes) and a newline as one write. Returns 0 or an
 * error. */
static int write_line(weft_tcp *c, const char *text, size_t len) {
  uv_buf_t bufs[2] = {uv_buf_init((char *)text, (unsigned)len),
                      uv_buf_init((char *)"\n", 1)};
  return weft_tcp_writev(c, bufs, 2);
}

#define WRITE_LITERAL(c, s) write_line((c), (s), sizeof(s) - 1)

/* Answers one request line (without its line end). Sets *quit when the
 * connection should close after the answer. Returns 0 or a write error. */
static int answer(template_app_service *svc, weft_tcp *c, const char *line,
                  size_t len, int *quit) {
  if (len == 4 && memcmp(line, "PING", 4) == 0) return WRITE_LITERAL(c, "PONG");
  if (len >= 5 && memcmp(line, "ECHO ", 5) == 0)
    return write_line(c, line + 5, len - 5);
  if (len == 4 && memcmp(line, "QUIT", 4) == 0) {
    *quit = 1;
    return WRITE_LITERAL(c, "BYE");
  }
  app_counter_add(svc->errors, 1);
  return WRITE_LITERAL(c, "ERR unknown command");
}

/* Reads up to len bytes under the idle deadline. Returns the bytes read
 * (> 0), 0 at the end of the stream, UV_ETIMEDOUT when the idle timeout
 * passed, or another error (a reset, or the cancellation of a shutdown). */
static ssize_t read_some(weft_tcp *c, char *buf, size_t len,
                         int64_t timeout_ms) {
  weft_scope idle;
  weft_scope_enter(&idle, timeout_ms > 0 ? timeout_ms : WEFT_NO_DEADLINE);
  ssize_t n = weft_tcp_read(c, buf, len);
  weft_scope_leave(&idle);
  /* A read cut short by the shutdown reports the shutdown, not the idle
   * timeout: the outer scope is cancelled as well. */
  int outer = weft_cancelled();
  if (n < 0 && outer != 0) return outer;
  return n;
}

static int serve_connection(weft_tcp *c, void *ctx) {
  template_app_service *svc = ctx;
  const template_app_config *cfg = svc->cfg;
  size_t cap = (size_t)cfg->max_line_bytes;
  char *buf = malloc(cap);
  if (buf == NULL) return UV_ENOMEM;

  int r = write_line(c, cfg->greeting, strlen(cfg->greeting));
  size_t have = 0;
  int quit = 0;
  while (r == 0 && !quit) {
    /* Answer every complete line in the buffer. */
    size_t start = 0;
    char *nl;
    while (r == 0 && !quit &&
           (nl = memchr(buf + start, '\n', have - start)) != NULL) {
      size_t len = (size_t)(nl - (buf + start));
      if (len > 0 && buf[start + len - 1] == '\r') len--;
      r = answer(svc, c, buf + start, len, &quit);
      app_counter_add(svc->lines, 1);
      start = (size_t)(nl - buf) + 1;
    }
    if (r != 0 || quit) break;
    memmove(buf, buf + start, have - start);
    have -= start;
    if (have == cap) {
      app_counter_add(svc->errors, 1);
      r = WRITE_LITERAL(c, "ERR line too long");
      break;
    }

    ssize_t n = read_some(c, buf + have, cap - have, cfg->idle_timeout_ms);
    if (n > 0) {
      have += (size_t)n;
    } else if (n == 0) {
      break; /* the client closed its side */
    } else if (n == UV_ETIMEDOUT) {
      app_counter_add(svc->timed_out, 1);
      break; /* the timed-out read has closed the connection */
    } else {
      r = (int)n;
    }
  }
  free(buf);
  return r;
}

int template_app_run(void *arg) {
  const template_app_config *cfg = arg;
  app_stats *st = app_stats_new("template_app");
  if (st == NULL) return UV_ENOMEM;
  template_app_service svc = {
      .cfg = cfg,
      .lines = app_stats_counter(st, "lines"),
      .errors = app_stats_counter(st, "errors"),
      .timed_out = app_stats_counter(st, "timed_out"),
  };
  app_stats_rate(st, "lines_per_s", svc.lines);

  app_server_opts opts = {
      .listen = &cfg->listen,
      .max_connections = cfg->max_connections,
      .shutdown_grace_ms = cfg->shutdown_grace_ms,
      .stats_interval_ms = cfg->stats_interval_ms,
      .nodelay = 1,
      .handler = serve_connection,
      .ctx = &svc,
      .stats = st,
  };
  int r = app_server_run(&opts);
  app_stats_free(st);
  return r;
}
