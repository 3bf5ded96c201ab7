/* io_tcp_internal.h: what io_tcp.c (handles, listening, connecting,
 * reading, closing) and io_tcp_write.c (writes, gathered writes, sending
 * a file) share: the connection's structure and its small helpers. */
#ifndef WEFT_IO_TCP_INTERNAL_H
#define WEFT_IO_TCP_INTERNAL_H

#include <stdlib.h>

#include "internal.h"

/* Immediate completions (fast-path reads and writes) allowed in a row before
 * an operation goes through the loop anyway, so that a task talking to a
 * fast peer cannot keep the other tasks of its executor from running. */
#define TCP_FAST_BUDGET 32

/* The largest piece handed to libuv at once (uv_buf_init takes an unsigned
 * int length). */
#define TCP_CHUNK ((size_t)1 << 30)

/* What a parked reader waits with; lives on the reader's stack. */
typedef struct tcp_read_op {
  weft__task *task;
  char *buf;
  size_t len;
} tcp_read_op;

/* Waiting for the socket to take more bytes while a file is sent. libuv
 * allows one poll handle per descriptor and none on the descriptor of a
 * uv_tcp_t, so the poll watches a dup(2) of it: the same socket, a
 * separate registration. Lives on the sending task's stack. */
typedef struct tcp_writable {
  uv_poll_t poll;
  int fd;            /* the duplicate; -1 before the first wait */
  weft__task *task;  /* the waiting task */
} tcp_writable;

struct weft_tcp {
  uv_tcp_t handle;
  unsigned listener : 1;     /* uv_listen() succeeded */
  unsigned closing : 1;      /* uv_close() called */
  unsigned close_done : 1;   /* the close callback ran */
  unsigned user_closed : 1;  /* weft_tcp_close() called: free when possible */
  unsigned reading : 1;      /* uv_read_start() in effect */
  unsigned more : 1;         /* the last read filled its buffer */
  unsigned sending_file : 1; /* weft_tcp_sendfile() in progress */
  int read_status;           /* 0: open; 1: end of stream seen; < 0: read error */
  unsigned ops;              /* calls in progress on this connection */
  unsigned fast_ops;         /* immediate completions in a row */
  tcp_read_op *read_op;      /* the parked reader, if any */
  weft__task *reader;        /* its task, kept here so waking it reads no stack */
  tcp_writable *writable;    /* the file sender's poll, if any */
  weft__task *acceptor;      /* the parked acceptor, if any */
  int accept_pending;        /* accepted sockets libuv holds for us: at
                                most one on Unix, where libuv stops
                                accepting until uv_accept(); on Windows
                                each completed AcceptEx adds one */
  int accept_error;          /* error reported by the connection callback */
};

static inline uv_loop_t *weft__tcp_loop(void) { return &weft__current_exec->loop; }

/* Frees c once the user closed it, libuv closed its handle and no call is
 * inside it. */
static inline void weft__tcp_maybe_free(weft_tcp *c) {
  if (c->user_closed && c->close_done && c->ops == 0) free(c);
}

/* Ends a call on c (c->ops was counted up at its start). */
static inline void weft__tcp_release(weft_tcp *c) {
  c->ops--;
  weft__tcp_maybe_free(c);
}

/* Common entry checks of every call that may wait. */
static inline int weft__tcp_enter(void) {
  if (weft__self() == NULL) return WEFT_ENOTASK;
  return weft__check_cancel();
}

/* Closes the libuv handle of c (once), waking a parked reader, acceptor or
 * file sender with UV_ECANCELED. */
void weft__tcp_close_handle(weft_tcp *c);
/* Closes c's handle as the cancellation of a task parked on a request that
 * only a close can abandon (a connect, a write); libuv then completes the
 * request with UV_ECANCELED. */
void weft__tcp_close_cancel(weft__task *t, void *data);

#endif /* WEFT_IO_TCP_INTERNAL_H */
