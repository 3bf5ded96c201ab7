/* echo.c: one task per connection reads and writes back what it read.
 *
 * Memory per connection is bounded by max_buffer_bytes: the task reads into
 * one buffer, writes all of it, and only then reads again, so a client that
 * does not read stops the server from reading that client (the kernel's
 * socket buffers then hold the client back), and nothing piles up.
 *
 * An idle connection costs almost nothing: the first reads go into a small
 * buffer on the task's stack, and only a connection whose reads fill it gets
 * a heap buffer of max_buffer_bytes, kept until it closes.
 */
#include "echo.h"

#include <stdlib.h>

#include <weft.h>

#include "server.h"
#include "stats.h"

/* Bytes read on the task's stack before a connection earns a heap buffer.
 * Small enough that a waiting connection touches one page of its stack. */
#define ECHO_STACK_BUFFER 1024

typedef struct echo_server {
  const echo_config *cfg;
  app_counter *bytes_in;
  app_counter *bytes_out;
  app_counter *messages; /* reads that returned data */
  app_counter *timed_out;
  app_counter *errors; /* connections ended by an error (a reset, ...) */
} echo_server;

/* The idle timeout is a deadline on a scope around the connection's reads
 * and writes. Moving a deadline costs a timer-heap update, so it is moved
 * only once an eighth of the timeout has passed since it was last set; a
 * read whose deadline fires early waits again for the rest of the time. */
typedef struct echo_idle {
  weft_scope scope;
  int64_t timeout; /* ms; 0: none */
  int64_t armed;   /* when the deadline was last set */
  int64_t last;    /* the last progress, read or written */
} echo_idle;

static void echo_idle_enter(echo_idle *idle, int64_t timeout_ms) {
  idle->timeout = timeout_ms;
  idle->armed = idle->last = weft_now();
  weft_scope_enter(&idle->scope,
                   timeout_ms > 0 ? timeout_ms : WEFT_NO_DEADLINE);
}

/* Records progress; moves the deadline when it has fallen behind. */
static void echo_idle_progress(echo_idle *idle) {
  if (idle->timeout <= 0) return;
  int64_t now = weft_now();
  idle->last = now;
  if (now - idle->armed > idle->timeout / 8) {
    weft_scope_set_timeout(&idle->scope, idle->timeout);
    idle->armed = now;
  }
}

/* After a wait failed with a cancellation code: leaves the scope and says
 * what happened. Returns 1 when the connection has been idle for the whole
 * timeout, 0 when a read should wait again (the scope is re-entered for the
 * time left), or the cancellation code of a shutdown. */
static int echo_idle_expired(echo_idle *idle, int during_write) {
  weft_scope_leave(&idle->scope);
  int outer = weft_cancelled();
  if (outer != 0) return outer;
  int64_t quiet = weft_now() - idle->last;
  /* A cancelled write has closed the connection: it cannot wait again. */
  if (during_write || idle->timeout <= 0 || quiet >= idle->timeout) return 1;
  int64_t left = idle->timeout - quiet;
  idle->armed = idle->last;
  weft_scope_enter(&idle->scope, left);
  return 0;
}

static int echo_connection(weft_tcp *c, void *ctx) {
  echo_server *es = ctx;
  const size_t max_buffer = (size_t)es->cfg->max_buffer_bytes;
  char stack_buffer[ECHO_STACK_BUFFER];
  char *heap = NULL;
  char *buf = stack_buffer;
  size_t cap =
      max_buffer < sizeof stack_buffer ? max_buffer : sizeof stack_buffer;
  int result = 0;

  echo_idle idle;
  echo_idle_enter(&idle, es->cfg->idle_timeout_ms);
  for (;;) {
    ssize_t n = weft_tcp_read(c, buf, cap);
    int during_write = 0;
    if (n > 0) {
      app_counter_add(es->bytes_in, (uint64_t)n);
      app_counter_add(es->messages, 1);
      echo_idle_progress(&idle);
      int r = weft_tcp_write(c, buf, (size_t)n);
      if (r == 0) {
        app_counter_add(es->bytes_out, (uint64_t)n);
        /* A full small read means a busy connection: give it the big buffer. */
        if (heap == NULL && (size_t)n == cap && cap < max_buffer) {
          heap = malloc(max_buffer);
          if (heap != NULL) {
            buf = heap;
            cap = max_buffer;
          }
        }
        continue;
      }
      n = r;
      during_write = 1;
    }
    if (n == 0) break; /* the client closed its side: all of it was echoed */
    if (n == UV_ETIMEDOUT || n == UV_ECANCELED) {
      int why = echo_idle_expired(&idle, during_write);
      if (why == 0) continue;
      if (why == 1)
        app_counter_add(es->timed_out, 1);
      else
        result = why;
      free(heap);
      return result;
    }
    /* A reset or another error of the connection: nothing more to do. */
    app_counter_add(es->errors, 1);
    result = (int)n;
    break;
  }
  weft_scope_leave(&idle.scope);
  free(heap);
  return result;
}

int echo_server_run(void *arg) {
  const echo_config *cfg = arg;
  app_stats *st = app_stats_new("echo_server");
  if (st == NULL) return UV_ENOMEM;
  echo_server es = {
      .cfg = cfg,
      .bytes_in = app_stats_counter(st, "bytes_in"),
      .bytes_out = app_stats_counter(st, "bytes_out"),
      .messages = app_stats_counter(st, "messages"),
      .timed_out = app_stats_counter(st, "timed_out"),
      .errors = app_stats_counter(st, "errors"),
  };
  app_stats_rate(st, "messages_per_s", es.messages);

  app_server_opts opts = {
      .listen = &cfg->listen,
      .backlog = (int)cfg->backlog,
      .max_connections = cfg->max_connections,
      .shutdown_grace_ms = cfg->shutdown_grace_ms,
      .stats_interval_ms = cfg->stats_interval_ms,
      .nodelay = 1,
      .handler = echo_connection,
      .ctx = &es,
      .stats = st,
  };
  int r = app_server_run(&opts);
  app_stats_free(st);
  return r;
}
