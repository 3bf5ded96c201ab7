/* io_tcp.c: TCP listeners and connections that suspend only the calling task.
 *
 * A weft_tcp wraps a uv_tcp_t. Every operation runs on the executor that
 * created the connection. Reads go straight into the reader's buffer, so
 * nothing is ever buffered here and a peer that sends faster than the
 * program reads is held back by the kernel's socket buffers. A read first
 * takes what the socket already holds with recv(2), without a loop turn;
 * otherwise it waits for the loop to report the socket readable (libuv is
 * given no buffer, so it reads nothing) and then takes the bytes itself,
 * once it runs. The loop thus touches no reader's stack or buffer: with
 * many connections, what a request touches is touched once, when its task
 * runs, rather than once in the loop and again after every other ready
 * connection has been read. (On Windows libuv reads into the buffer.) Writes try
 * uv_try_write() first and queue a uv_write() for what is left. One task
 * reads at a time (another gets UV_EBUSY); several may write at once, and
 * since uv_try_write() gives way to queued writes, each call's bytes go out
 * together, in call order.
 *
 * Lifetime: the struct is freed once three things hold: the user has called
 * weft_tcp_close(), libuv has run the close callback, and no operation of
 * any task is still inside a call on it (ops). So a task that is woken
 * because another task closed the connection can still look at it safely.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#ifndef _WIN32
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>
#endif
/* The calls only some systems have are found by cmake/weftPlatform.cmake
 * (docs/PORTING.md): sendfile(2) with Linux's signature, and the option
 * that spreads a port's connections over the listeners of several
 * executors, SO_REUSEPORT_LB (FreeBSD) or SO_REUSEPORT where it balances
 * (Linux, DragonFly). Elsewhere (macOS, OpenBSD, NetBSD, where
 * SO_REUSEPORT only shares the port) WEFT_TCP_REUSEPORT is UV_ENOTSUP and
 * a file is sent by reading and writing it. */
#ifdef WEFT_HAVE_SENDFILE_LINUX
#include <sys/sendfile.h>
#endif
#if defined(_WIN32)
#elif defined(WEFT_HAVE_SO_REUSEPORT_LB)
#define WEFT__SO_REUSEPORT SO_REUSEPORT_LB
#elif defined(WEFT_REUSEPORT_BALANCES)
#define WEFT__SO_REUSEPORT SO_REUSEPORT
#endif

#include "internal.h"
#include "metrics_internal.h"

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

static uv_loop_t *tcp_loop(void) { return &weft__current_exec->loop; }

static void tcp_maybe_free(weft_tcp *c) {
  if (c->user_closed && c->close_done && c->ops == 0) free(c);
}

static void tcp_on_close(uv_handle_t *h) {
  weft_tcp *c = h->data;
  c->close_done = 1;
  tcp_maybe_free(c);
}

/* Closes the libuv handle (once). A parked reader or acceptor is woken with
 * UV_ECANCELED here; pending writes, connects and shutdowns get UV_ECANCELED
 * from libuv itself when the close completes. */
static void tcp_close_handle(weft_tcp *c) {
  if (c->closing) return;
  c->closing = 1;
  if (c->read_op != NULL) {
    tcp_read_op *op = c->read_op;
    c->read_op = NULL;
    weft__wake(op->task, UV_ECANCELED);
  }
  if (c->acceptor != NULL) {
    weft__task *t = c->acceptor;
    c->acceptor = NULL;
    weft__wake(t, UV_ECANCELED);
  }
  /* A file sender waits on a duplicate of the socket, which keeps the
   * socket open: it must stop waiting and let go of the duplicate. */
  if (c->writable != NULL && c->writable->task != NULL) {
    weft__task *t = c->writable->task;
    c->writable->task = NULL;
    uv_poll_stop(&c->writable->poll);
    weft__wake(t, UV_ECANCELED);
  }
  uv_close((uv_handle_t *)&c->handle, tcp_on_close);
}

static void tcp_release(weft_tcp *c) {
  c->ops--;
  tcp_maybe_free(c);
}

#ifndef _WIN32
/* libuv writes to sockets with write(2), which raises SIGPIPE when the peer
 * has gone; its default action would end the whole program. Unless the
 * program has chosen a disposition of its own, ignore it, so that the write
 * fails with UV_EPIPE instead. */
static uv_once_t tcp_sigpipe_once = UV_ONCE_INIT;

static void tcp_ignore_sigpipe(void) {
  struct sigaction sa;
  if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL) {
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_IGN;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGPIPE, &sa, NULL);
  }
}
#endif

/* Allocates a connection with an initialised handle on the current loop. */
static int tcp_new(weft_tcp **out) {
#ifndef _WIN32
  uv_once(&tcp_sigpipe_once, tcp_ignore_sigpipe);
#endif
  weft_tcp *c = calloc(1, sizeof(*c));
  if (c == NULL) return UV_ENOMEM;
  int r = uv_tcp_init(tcp_loop(), &c->handle);
  if (r < 0) {
    free(c);
    return r;
  }
  c->handle.data = c;
  *out = c;
  return 0;
}

/* Common entry checks of every call that may wait. */
static int tcp_enter(void) {
  if (weft__self() == NULL) return WEFT_ENOTASK;
  return weft__check_cancel();
}

/* ---- Listening and accepting -------------------------------------------- */

/* Fills addr from a numeric host, or resolves a name. */
static int tcp_resolve_one(const char *host, int port,
                           struct sockaddr_storage *addr) {
  memset(addr, 0, sizeof(*addr));
  if (host == NULL || host[0] == '\0') host = "0.0.0.0";
  if (uv_ip4_addr(host, port, (struct sockaddr_in *)addr) == 0) return 0;
  if (uv_ip6_addr(host, port, (struct sockaddr_in6 *)addr) == 0) return 0;
  int n = weft_dns_lookup(host, port, addr, 1);
  return n < 0 ? n : 0;
}

static void tcp_on_connection(uv_stream_t *server, int status) {
  weft_tcp *l = server->data;
  if (status < 0)
    l->accept_error = status;
  else
    l->accept_pending++;
  if (l->acceptor != NULL) {
    weft__task *t = l->acceptor;
    l->acceptor = NULL;
    weft__wake(t, 0);
  }
}

#ifdef WEFT__SO_REUSEPORT
/* Gives c a socket of its own with SO_REUSEPORT (or SO_REUSEPORT_LB) set,
 * before the bind (libuv 1.44 has no flag for it). */
static int tcp_open_reuseport(weft_tcp *c, int family) {
  int type = SOCK_STREAM;
#ifdef SOCK_CLOEXEC
  type |= SOCK_CLOEXEC;
#endif
  int fd = socket(family, type, 0);
  if (fd < 0) return uv_translate_sys_error(errno);
#ifndef SOCK_CLOEXEC
  fcntl(fd, F_SETFD, FD_CLOEXEC);
#endif
  int on = 1;
  int r = 0;
  if (setsockopt(fd, SOL_SOCKET, WEFT__SO_REUSEPORT, &on, sizeof(on)) != 0)
    r = uv_translate_sys_error(errno);
  if (r == 0) r = uv_tcp_open(&c->handle, fd);
  if (r < 0) close(fd);
  return r;
}
#endif

int weft_tcp_listen(const char *host, int port, int backlog, int flags,
                    weft_tcp **out) {
  if (out == NULL || port < 0 || port > 65535) return UV_EINVAL;
  *out = NULL;
  if (weft__current_exec == NULL) return WEFT_ENOTASK;
  if (backlog <= 0) backlog = 511;

  struct sockaddr_storage addr;
  int r = tcp_resolve_one(host, port, &addr);
  if (r < 0) return r;

  weft_tcp *c;
  r = tcp_new(&c);
  if (r < 0) return r;
  if (flags & WEFT_TCP_REUSEPORT) {
#ifdef WEFT__SO_REUSEPORT
    r = tcp_open_reuseport(c, addr.ss_family);
#else
    r = UV_ENOTSUP;
#endif
  }
  unsigned bind_flags = 0;
  if ((flags & WEFT_TCP_IPV6ONLY) && addr.ss_family == AF_INET6)
    bind_flags |= UV_TCP_IPV6ONLY;
  if (r == 0)
    r = uv_tcp_bind(&c->handle, (const struct sockaddr *)&addr, bind_flags);
  /* An address in use is reported by uv_listen(), not by the bind. */
  if (r == 0)
    r = uv_listen((uv_stream_t *)&c->handle, backlog, tcp_on_connection);
  if (r < 0) {
    weft_tcp_close(c);
    return r;
  }
  c->listener = 1;
  *out = c;
  return 0;
}

/* Takes the connection libuv holds for l. */
static int tcp_accept_one(weft_tcp *l, weft_tcp **out) {
  weft_tcp *c;
  int r = tcp_new(&c);
  if (r < 0) {
    /* libuv keeps the socket until uv_accept() is called: try again later. */
    l->accept_pending++;
    return r;
  }
  r = uv_accept((uv_stream_t *)&l->handle, (uv_stream_t *)&c->handle);
  if (r < 0) {
    weft_tcp_close(c);
    return r;
  }
  *out = c;
  return 0;
}

static void tcp_accept_cancel(weft__task *t, void *data) {
  weft_tcp *l = data;
  if (l->acceptor == t) {
    l->acceptor = NULL;
    weft__wake(t, 0);
  }
}

static int weft__tcp_accept_impl(weft_tcp *l, weft_tcp **out) {
  int r = tcp_enter();
  if (r != 0) return r;
  if (l == NULL || out == NULL || !l->listener) return UV_EINVAL;
  if (l->acceptor != NULL) return UV_EBUSY;
  *out = NULL;
  l->ops++;
  for (;;) {
    if (l->closing) {
      r = UV_ECANCELED;
      break;
    }
    if (l->accept_pending > 0) {
      l->accept_pending--;
      r = tcp_accept_one(l, out);
      break;
    }
    if (l->accept_error != 0) {
      r = l->accept_error;
      l->accept_error = 0;
      break;
    }
    l->acceptor = weft__self();
    r = weft__park(tcp_accept_cancel, l);
    if (r < 0) break;
  }
  tcp_release(l);
  return r;
}

/* ---- Connecting --------------------------------------------------------- */

static void tcp_on_connect(uv_connect_t *req, int status) {
  weft__wake(req->data, status);
}

/* A connect in flight can only be abandoned by closing the handle; libuv
 * then calls the connect callback with UV_ECANCELED. */
static void tcp_close_cancel(weft__task *t, void *data) {
  (void)t;
  tcp_close_handle(data);
}

int weft_tcp_connect_addr(const struct sockaddr *addr, weft_tcp **out) {
  if (addr == NULL || out == NULL) return UV_EINVAL;
  *out = NULL;
  int r = tcp_enter();
  if (r != 0) return r;
  weft_tcp *c;
  r = tcp_new(&c);
  if (r < 0) return r;
  uv_connect_t req;
  req.data = weft__self();
  r = uv_tcp_connect(&req, &c->handle, addr, tcp_on_connect);
  if (r == 0) r = weft__park(tcp_close_cancel, c);
  if (r < 0) {
    weft_tcp_close(c);
    return r;
  }
  *out = c;
  return 0;
}

static int weft__tcp_connect_impl(const char *host, int port, weft_tcp **out) {
  if (host == NULL || out == NULL || port < 0 || port > 65535) return UV_EINVAL;
  *out = NULL;
  struct sockaddr_storage addrs[8];
  int n = weft_dns_lookup(host, port, addrs, 8);
  if (n < 0) return n;
  int r = UV_EAI_NONAME;
  for (int i = 0; i < n; i++) {
    r = weft_tcp_connect_addr((const struct sockaddr *)&addrs[i], out);
    if (r == 0 || r == UV_ECANCELED || r == UV_ETIMEDOUT) break;
  }
  return r;
}

/* ---- Reading ------------------------------------------------------------ */

/* A marker wake result: the socket is readable, the reader reads. */
#define TCP_READABLE INT_MIN

static void tcp_on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  weft_tcp *c = h->data;
  (void)suggested;
#ifndef _WIN32
  /* No buffer: libuv reports UV_ENOBUFS, which says the socket is readable
   * (or at its end, or failed), and the reader's recv(2) finds out which. */
  (void)c;
  *buf = uv_buf_init(NULL, 0);
  return;
#endif
  if (c->read_op != NULL)
    *buf = uv_buf_init(c->read_op->buf, (unsigned)c->read_op->len);
  else
    *buf = uv_buf_init(NULL, 0); /* libuv reports UV_ENOBUFS */
}

static void tcp_on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  weft_tcp *c = s->data;
  (void)buf;
  if (nread == 0) return; /* EAGAIN: keep waiting */
#ifndef _WIN32
  if (nread == UV_ENOBUFS) {
    if (c->read_op != NULL) {
      c->read_op = NULL;
      weft__wake(c->reader, TCP_READABLE);
    } else {
      /* Readable with nobody reading: stop watching until the next read,
       * or the loop, told again on every turn, would spin. */
      uv_read_stop(s);
      c->reading = 0;
    }
    return;
  }
#endif
  if (nread < 0) {
    uv_read_stop(s);
    c->reading = 0;
  }
  if (nread == UV_ENOBUFS && c->read_op == NULL) return;
  if (nread > 0 && c->read_op != NULL) c->more = (size_t)nread == c->read_op->len;
  if (nread < 0) c->read_status = nread == UV_EOF ? 1 : (int)nread;
  if (c->read_op != NULL) {
    tcp_read_op *op = c->read_op;
    c->read_op = NULL;
    weft__wake(op->task, nread == UV_EOF ? 0 : (int)nread);
  }
}

/* A read that only waits has consumed nothing: stop waiting, and the
 * connection stays usable. */
static void tcp_read_cancel(weft__task *t, void *data) {
  weft_tcp *c = data;
  if (c->read_op != NULL && c->read_op->task == t) {
    c->read_op = NULL;
    uv_read_stop((uv_stream_t *)&c->handle);
    c->reading = 0;
    weft__wake(t, 0);
  }
}

#ifndef _WIN32
/* Reads what the socket already holds without going through the loop.
 * Returns the count, 0 at end of stream, an error, or UV_EAGAIN. */
static ssize_t tcp_try_read(weft_tcp *c, void *buf, size_t len) {
  uv_os_fd_t fd;
  if (uv_fileno((const uv_handle_t *)&c->handle, &fd) != 0) return UV_EAGAIN;
  ssize_t n;
  do
    n = recv(fd, buf, len, 0);
  while (n < 0 && errno == EINTR);
  if (n >= 0) return n;
  if (errno == EAGAIN || errno == EWOULDBLOCK) return UV_EAGAIN;
  return uv_translate_sys_error(errno);
}
#endif

static ssize_t weft__tcp_read_impl(weft_tcp *c, void *buf, size_t len) {
  int r = tcp_enter();
  if (r != 0) return r;
  if (c == NULL || (buf == NULL && len > 0) || c->listener) return UV_EINVAL;
  if (c->read_op != NULL) return UV_EBUSY;
  /* A connection closed because an operation on it was cancelled. */
  if (c->closing) return UV_ECANCELED;
  if (c->read_status != 0) return c->read_status > 0 ? 0 : c->read_status;
  if (len == 0) return 0;
  if (len > INT_MAX) len = INT_MAX;

#ifndef _WIN32
  if (c->fast_ops < TCP_FAST_BUDGET && (c->more || !c->reading)) {
    ssize_t n = tcp_try_read(c, buf, len);
    if (n != UV_EAGAIN) {
      c->more = (size_t)n == len;
      c->fast_ops++;
      if (n == 0) c->read_status = 1;
      if (n < 0) c->read_status = (int)n;
      return n;
    }
  }
#endif
  c->fast_ops = 0;

  tcp_read_op op;
  op.task = weft__self();
  op.buf = buf;
  op.len = len;
  if (!c->reading) {
    r = uv_read_start((uv_stream_t *)&c->handle, tcp_on_alloc, tcp_on_read);
    if (r < 0) return r;
    c->reading = 1;
  }
  c->read_op = &op;
  c->reader = op.task;
  c->ops++;
  for (;;) {
    r = weft__park(tcp_read_cancel, c);
#ifndef _WIN32
    if (r == TCP_READABLE) {
      /* A close after the wake did not wake the reader again. */
      if (c->closing) {
        r = UV_ECANCELED;
        break;
      }
      ssize_t n = tcp_try_read(c, buf, len);
      if (n == UV_EAGAIN) {
        /* Readable, but the bytes are gone or never came: wait again. */
        c->read_op = &op;
        continue;
      }
      c->more = (size_t)n == len;
      if (n == 0) c->read_status = 1;
      if (n < 0) c->read_status = (int)n;
      tcp_release(c);
      return n;
    }
#endif
    break;
  }
  tcp_release(c);
  return r;
}

/* ---- Writing ------------------------------------------------------------ */

static void tcp_on_write(uv_write_t *req, int status) {
  weft__wake(req->data, status);
}

/* Writes len bytes of buf (the checks of the entry points done). */
static int tcp_write_all(weft_tcp *c, const char *p, size_t len) {
  int r = 0;
  c->ops++;
  while (len > 0 && r == 0) {
    if (c->closing) {
      r = UV_ECANCELED;
      break;
    }
    size_t chunk = len < TCP_CHUNK ? len : TCP_CHUNK;
    uv_buf_t b = uv_buf_init((char *)p, (unsigned)chunk);
    if (c->fast_ops < TCP_FAST_BUDGET) {
      int n = uv_try_write((uv_stream_t *)&c->handle, &b, 1);
      if (n >= 0) {
        c->fast_ops++;
        p += n;
        len -= (size_t)n;
        if ((size_t)n == chunk) continue;
        chunk -= (size_t)n;
        b = uv_buf_init((char *)p, (unsigned)chunk);
      } else if (n != UV_EAGAIN) {
        r = n;
        break;
      }
    }
    c->fast_ops = 0;
    uv_write_t req;
    req.data = weft__self();
    r = uv_write(&req, (uv_stream_t *)&c->handle, &b, 1, tcp_on_write);
    if (r < 0) break;
    /* A write in flight cannot be taken back: cancelling it closes the
     * connection, and libuv then completes it with UV_ECANCELED. */
    r = weft__park(tcp_close_cancel, c);
    p += chunk;
    len -= chunk;
  }
  tcp_release(c);
  return r;
}

/* Entry checks of the writes. A file being sent on c holds the socket: a
 * write now would land in the middle of the file's bytes. */
static int tcp_write_enter(weft_tcp *c) {
  int r = tcp_enter();
  if (r != 0) return r;
  if (c == NULL || c->listener) return UV_EINVAL;
  if (c->sending_file) return UV_EBUSY;
  return 0;
}

static int weft__tcp_write_impl(weft_tcp *c, const void *buf, size_t len) {
  int r = tcp_write_enter(c);
  if (r != 0) return r;
  if (buf == NULL && len > 0) return UV_EINVAL;
  return tcp_write_all(c, buf, len);
}

/* Up to this many buffers are copied on the stack; more are copied to the
 * heap, since the copy is advanced as bytes go out. */
#define TCP_IOV_SMALL 16

/* Moves *i and v[*i] past n written bytes, and past empty buffers. */
static void tcp_iov_advance(uv_buf_t *v, size_t *i, size_t nbufs, size_t n) {
  while (*i < nbufs && n >= v[*i].len) {
    n -= v[*i].len;
    (*i)++;
  }
  if (*i < nbufs && n > 0) {
    v[*i].base += n;
    v[*i].len -= n;
  }
}

static int weft__tcp_writev_impl(weft_tcp *c, const uv_buf_t *bufs, size_t n) {
  int r = tcp_write_enter(c);
  if (r != 0) return r;
  if (bufs == NULL && n > 0) return UV_EINVAL;
  /* libuv counts the bytes of one write in an int: past TCP_CHUNK in all,
   * the buffers go one by one (each still in order, in pieces). */
  size_t total = 0;
  int huge = n > UINT_MAX;
  for (size_t k = 0; k < n; k++) {
    if (bufs[k].base == NULL && bufs[k].len > 0) return UV_EINVAL;
    if (bufs[k].len > TCP_CHUNK - total) huge = 1;
    if (!huge) total += bufs[k].len;
  }
  if (huge) {
    for (size_t k = 0; k < n && r == 0; k++) r = tcp_write_all(c, bufs[k].base, bufs[k].len);
    return r;
  }
  uv_buf_t small[TCP_IOV_SMALL];
  uv_buf_t *v = small;
  if (n > TCP_IOV_SMALL) {
    v = malloc(n * sizeof(*v));
    if (v == NULL) return UV_ENOMEM;
  }
  if (n > 0) memcpy(v, bufs, n * sizeof(*v));
  size_t i = 0;
  tcp_iov_advance(v, &i, n, 0);
  c->ops++;
  while (i < n) {
    if (c->closing) {
      r = UV_ECANCELED;
      break;
    }
    if (c->fast_ops < TCP_FAST_BUDGET) {
      int w = uv_try_write((uv_stream_t *)&c->handle, v + i, (unsigned)(n - i));
      if (w >= 0) {
        c->fast_ops++;
        tcp_iov_advance(v, &i, n, (size_t)w);
        if (i == n) break;
      } else if (w != UV_EAGAIN) {
        r = w;
        break;
      }
    }
    c->fast_ops = 0;
    uv_write_t req;
    req.data = weft__self();
    /* libuv copies the array of buffers; the bytes stay the caller's. */
    r = uv_write(&req, (uv_stream_t *)&c->handle, v + i, (unsigned)(n - i), tcp_on_write);
    if (r < 0) break;
    r = weft__park(tcp_close_cancel, c);
    break;
  }
  tcp_release(c);
  if (v != small) free(v);
  return r;
}

/* ---- Sending a file ----------------------------------------------------- */

/* The piece read and written at once where the file's bytes are copied. */
#define TCP_FILE_PIECE (64 * 1024)

/* Sends one piece of the file by reading it and writing it: the way for
 * systems without sendfile(2), for files it does not take, and for keeping
 * order behind writes libuv still has queued. */
static int tcp_send_file_piece(weft_tcp *c, int fd, int64_t *offset,
                               size_t *len, char **piece) {
  if (*piece == NULL) {
    *piece = malloc(TCP_FILE_PIECE);
    if (*piece == NULL) return UV_ENOMEM;
  }
  size_t want = *len < TCP_FILE_PIECE ? *len : TCP_FILE_PIECE;
  ssize_t n = weft_file_read(fd, *piece, want, *offset);
  if (n < 0) return (int)n;
  if (n == 0) return UV_EOF;
  int r = tcp_write_all(c, *piece, (size_t)n);
  if (r < 0) return r;
  *offset += n;
  *len -= (size_t)n;
  return 0;
}

#ifdef WEFT_HAVE_SENDFILE_LINUX

static void tcp_on_writable(uv_poll_t *h, int status, int events) {
  tcp_writable *w = h->data;
  (void)events;
  uv_poll_stop(h);
  if (w->task != NULL) {
    weft__task *t = w->task;
    w->task = NULL;
    weft__wake(t, status);
  }
}

static void tcp_writable_cancel(weft__task *t, void *data) {
  tcp_writable *w = data;
  if (w->task == t) {
    w->task = NULL;
    uv_poll_stop(&w->poll);
    weft__wake(t, 0);
  }
}

/* Suspends until sockfd is writable. Returns 0 or an error. */
static int tcp_wait_writable(tcp_writable *w, int sockfd) {
  if (w->fd < 0) {
    int fd = fcntl(sockfd, F_DUPFD_CLOEXEC, 0);
    if (fd < 0) return uv_translate_sys_error(errno);
    int r = uv_poll_init(tcp_loop(), &w->poll, fd);
    if (r < 0) {
      close(fd);
      return r;
    }
    w->poll.data = w;
    w->fd = fd;
  }
  int r = uv_poll_start(&w->poll, UV_WRITABLE, tcp_on_writable);
  if (r < 0) return r;
  w->task = weft__self();
  return weft__park(tcp_writable_cancel, w);
}

static void tcp_writable_on_close(uv_handle_t *h) {
  weft__wake(((tcp_writable *)h->data)->task, 0);
}

/* Closes the poll and the duplicate, waiting for libuv to let go of the
 * handle (it lives on the caller's stack); this wait is not cancellable. */
static void tcp_writable_close(tcp_writable *w) {
  if (w->fd < 0) return;
  w->task = weft__self();
  uv_close((uv_handle_t *)&w->poll, tcp_writable_on_close);
  weft__park(NULL, NULL);
  close(w->fd);
  w->fd = -1;
}

/* Sends with sendfile(2); see weft_tcp_sendfile(). *sent counts the bytes
 * that went out. */
static int tcp_sendfile_linux(weft_tcp *c, int fd, int64_t offset, size_t len,
                              size_t *sent) {
  uv_os_fd_t sockfd;
  int r = uv_fileno((const uv_handle_t *)&c->handle, &sockfd);
  if (r < 0) return r;
  tcp_writable w;
  w.fd = -1;
  w.task = NULL;
  c->writable = &w;
  char *piece = NULL;
  int use_sendfile = 1;
  unsigned fast = 0;
  while (len > 0) {
    if (c->closing) {
      r = UV_ECANCELED;
      break;
    }
    /* Bytes of earlier writes still queued in libuv go first: this piece
     * is written behind them. */
    if (!use_sendfile || uv_stream_get_write_queue_size((uv_stream_t *)&c->handle) > 0) {
      size_t before = len;
      r = tcp_send_file_piece(c, fd, &offset, &len, &piece);
      *sent += before - len;
      if (r < 0) break;
      continue;
    }
    /* A reader as fast as the disk would keep this task running: after a
     * run of immediate sends, wait for the loop like any other write. */
    if (fast >= TCP_FAST_BUDGET) {
      fast = 0;
      r = tcp_wait_writable(&w, sockfd);
      if (r < 0) break;
      continue;
    }
    off_t off = (off_t)offset;
    size_t chunk = len < TCP_CHUNK ? len : TCP_CHUNK;
    ssize_t n = sendfile(sockfd, fd, &off, chunk);
    if (n > 0) {
      offset += n;
      len -= (size_t)n;
      *sent += (size_t)n;
      fast++;
      continue;
    }
    if (n == 0) {
      r = UV_EOF;
      break;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      fast = 0;
      r = tcp_wait_writable(&w, sockfd);
      if (r < 0) break;
      continue;
    }
    /* A file sendfile(2) cannot map (a pipe, some file systems). */
    if (errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP) {
      use_sendfile = 0;
      continue;
    }
    r = uv_translate_sys_error(errno);
    break;
  }
  c->writable = NULL;
  tcp_writable_close(&w);
  free(piece);
  return r;
}
#endif

static int weft__tcp_sendfile_impl(weft_tcp *c, int fd, int64_t offset,
                                   size_t len, size_t *sent) {
  int r = tcp_write_enter(c);
  if (r != 0) return r;
  if (fd < 0 || offset < 0) return UV_EINVAL;
  if (c->closing) return UV_ECANCELED;
  c->ops++;
  c->sending_file = 1;
#ifdef WEFT_HAVE_SENDFILE_LINUX
  r = tcp_sendfile_linux(c, fd, offset, len, sent);
#else
  char *piece = NULL;
  while (len > 0) {
    size_t before = len;
    r = tcp_send_file_piece(c, fd, &offset, &len, &piece);
    *sent += before - len;
    if (r < 0) break;
  }
  free(piece);
#endif
  c->sending_file = 0;
  /* Part of the file went out: the byte stream is no longer well defined. */
  if ((r == UV_ECANCELED || r == UV_ETIMEDOUT) && *sent > 0) tcp_close_handle(c);
  tcp_release(c);
  return r;
}

static void tcp_on_shutdown(uv_shutdown_t *req, int status) {
  weft__wake(req->data, status);
}

int weft_tcp_shutdown(weft_tcp *c) {
  int r = tcp_enter();
  if (r != 0) return r;
  if (c == NULL || c->listener) return UV_EINVAL;
  if (c->closing) return UV_ECANCELED;
  uv_shutdown_t req;
  req.data = weft__self();
  r = uv_shutdown(&req, (uv_stream_t *)&c->handle, tcp_on_shutdown);
  if (r < 0) return r;
  c->ops++;
  r = weft__park(tcp_close_cancel, c);
  tcp_release(c);
  return r;
}

void weft_tcp_close(weft_tcp *c) {
  if (c == NULL || c->user_closed) return;
  c->user_closed = 1;
  tcp_close_handle(c);
  tcp_maybe_free(c);
}

/* ---- Options and addresses ---------------------------------------------- */

int weft_tcp_nodelay(weft_tcp *c, int on) {
  if (c == NULL) return UV_EINVAL;
  if (c->closing) return UV_ECANCELED;
  return uv_tcp_nodelay(&c->handle, on != 0);
}

int weft_tcp_sockname(const weft_tcp *c, struct sockaddr_storage *addr) {
  if (c == NULL || addr == NULL) return UV_EINVAL;
  if (c->closing) return UV_ECANCELED;
  int len = (int)sizeof(*addr);
  memset(addr, 0, sizeof(*addr));
  return uv_tcp_getsockname(&c->handle, (struct sockaddr *)addr, &len);
}

int weft_tcp_peername(const weft_tcp *c, struct sockaddr_storage *addr) {
  if (c == NULL || addr == NULL) return UV_EINVAL;
  if (c->closing) return UV_ECANCELED;
  int len = (int)sizeof(*addr);
  memset(addr, 0, sizeof(*addr));
  return uv_tcp_getpeername(&c->handle, (struct sockaddr *)addr, &len);
}

int weft_tcp_local_port(const weft_tcp *c) {
  struct sockaddr_storage addr;
  int r = weft_tcp_sockname(c, &addr);
  if (r < 0) return r;
  if (addr.ss_family == AF_INET)
    return ntohs(((const struct sockaddr_in *)&addr)->sin_port);
  if (addr.ss_family == AF_INET6)
    return ntohs(((const struct sockaddr_in6 *)&addr)->sin6_port);
  return UV_EAFNOSUPPORT;
}

/* ---- Public entry points: the work above, counted in the metrics ------- */

int weft_tcp_accept(weft_tcp *l, weft_tcp **out) {
  int r = weft__tcp_accept_impl(l, out);
  if (r < 0) weft__metrics_error((int)r);
  return r;
}

int weft_tcp_connect(const char *host, int port, weft_tcp **out) {
  int r = weft__tcp_connect_impl(host, port, out);
  if (r < 0) weft__metrics_error((int)r);
  return r;
}

ssize_t weft_tcp_read(weft_tcp *c, void *buf, size_t len) {
  ssize_t r = weft__tcp_read_impl(c, buf, len);
  if (r > 0) weft_counter_add(weft__m_bytes_read, (uint64_t)r);
  if (r < 0) weft__metrics_error((int)r);
  return r;
}

int weft_tcp_write(weft_tcp *c, const void *buf, size_t len) {
  int r = weft__tcp_write_impl(c, buf, len);
  if (r == 0) weft_counter_add(weft__m_bytes_written, len);
  if (r < 0) weft__metrics_error((int)r);
  return r;
}

int weft_tcp_writev(weft_tcp *c, const uv_buf_t *bufs, size_t n) {
  int r = weft__tcp_writev_impl(c, bufs, n);
  if (r == 0) {
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++) total += bufs[i].len;
    weft_counter_add(weft__m_bytes_written, total);
  }
  if (r < 0) weft__metrics_error((int)r);
  return r;
}

int weft_tcp_sendfile(weft_tcp *c, int fd, int64_t offset, size_t len) {
  size_t sent = 0;
  int r = weft__tcp_sendfile_impl(c, fd, offset, len, &sent);
  if (sent > 0) weft_counter_add(weft__m_bytes_written, sent);
  if (r < 0) weft__metrics_error((int)r);
  return r;
}
