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
 * together, in call order. The writes and the sending of files are
 * io_tcp_write.c's; the connection's structure is io_tcp_internal.h.
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

#include "io_tcp_internal.h"
#include "metrics_internal.h"

static void tcp_on_close(uv_handle_t *h) {
  weft_tcp *c = h->data;
  c->close_done = 1;
  weft__tcp_maybe_free(c);
}

/* Closes the libuv handle (once). A parked reader or acceptor is woken with
 * UV_ECANCELED here; pending writes, connects and shutdowns get UV_ECANCELED
 * from libuv itself when the close completes. */
void weft__tcp_close_handle(weft_tcp *c) {
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
  int r = uv_tcp_init(weft__tcp_loop(), &c->handle);
  if (r < 0) {
    free(c);
    return r;
  }
  c->handle.data = c;
  *out = c;
  return 0;
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

static int tcp_accept_impl(weft_tcp *l, weft_tcp **out) {
  int r = weft__tcp_enter();
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
  weft__tcp_release(l);
  return r;
}

/* ---- Connecting --------------------------------------------------------- */

static void tcp_on_connect(uv_connect_t *req, int status) {
  weft__wake(req->data, status);
}

/* A connect in flight can only be abandoned by closing the handle; libuv
 * then calls the connect callback with UV_ECANCELED. */
void weft__tcp_close_cancel(weft__task *t, void *data) {
  (void)t;
  weft__tcp_close_handle(data);
}

int weft_tcp_connect_addr(const struct sockaddr *addr, weft_tcp **out) {
  if (addr == NULL || out == NULL) return UV_EINVAL;
  *out = NULL;
  int r = weft__tcp_enter();
  if (r != 0) return r;
  weft_tcp *c;
  r = tcp_new(&c);
  if (r < 0) return r;
  uv_connect_t req;
  req.data = weft__self();
  r = uv_tcp_connect(&req, &c->handle, addr, tcp_on_connect);
  if (r == 0) r = weft__park(weft__tcp_close_cancel, c);
  if (r < 0) {
    weft_tcp_close(c);
    return r;
  }
  *out = c;
  return 0;
}

static int tcp_connect_impl(const char *host, int port, weft_tcp **out) {
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

static ssize_t tcp_read_impl(weft_tcp *c, void *buf, size_t len) {
  int r = weft__tcp_enter();
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
      weft__tcp_release(c);
      return n;
    }
#endif
    break;
  }
  weft__tcp_release(c);
  return r;
}

static void tcp_on_shutdown(uv_shutdown_t *req, int status) {
  weft__wake(req->data, status);
}

int weft_tcp_shutdown(weft_tcp *c) {
  int r = weft__tcp_enter();
  if (r != 0) return r;
  if (c == NULL || c->listener) return UV_EINVAL;
  if (c->closing) return UV_ECANCELED;
  uv_shutdown_t req;
  req.data = weft__self();
  r = uv_shutdown(&req, (uv_stream_t *)&c->handle, tcp_on_shutdown);
  if (r < 0) return r;
  c->ops++;
  r = weft__park(weft__tcp_close_cancel, c);
  weft__tcp_release(c);
  return r;
}

void weft_tcp_close(weft_tcp *c) {
  if (c == NULL || c->user_closed) return;
  c->user_closed = 1;
  weft__tcp_close_handle(c);
  weft__tcp_maybe_free(c);
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
  int r = tcp_accept_impl(l, out);
  if (r < 0) weft__metrics_error((int)r);
  return r;
}

int weft_tcp_connect(const char *host, int port, weft_tcp **out) {
  int r = tcp_connect_impl(host, port, out);
  if (r < 0) weft__metrics_error((int)r);
  return r;
}

ssize_t weft_tcp_read(weft_tcp *c, void *buf, size_t len) {
  ssize_t r = tcp_read_impl(c, buf, len);
  if (r > 0) weft_counter_add(weft__m_bytes_read, (uint64_t)r);
  if (r < 0) weft__metrics_error((int)r);
  return r;
}
