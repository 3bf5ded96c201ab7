/* io_tcp_write.c: writing to a TCP connection: plain writes and gathered
 * writes (writev) try uv_try_write() first and queue a uv_write() for what
 * is left; a file is sent with sendfile(2) where the system has it, and by
 * reading and writing it elsewhere. The connection itself is io_tcp.c's. */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#ifndef _WIN32
#include <fcntl.h>
#include <unistd.h>
#endif
#ifdef WEFT_HAVE_SENDFILE_LINUX
#include <sys/sendfile.h>
#endif

#include "io_tcp_internal.h"
#include "metrics_internal.h"

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
    r = weft__park(weft__tcp_close_cancel, c);
    p += chunk;
    len -= chunk;
  }
  weft__tcp_release(c);
  return r;
}

/* Entry checks of the writes. A file being sent on c holds the socket: a
 * write now would land in the middle of the file's bytes. */
static int tcp_write_enter(weft_tcp *c) {
  int r = weft__tcp_enter();
  if (r != 0) return r;
  if (c == NULL || c->listener) return UV_EINVAL;
  if (c->sending_file) return UV_EBUSY;
  return 0;
}

static int tcp_write_impl(weft_tcp *c, const void *buf, size_t len) {
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

static int tcp_writev_impl(weft_tcp *c, const uv_buf_t *bufs, size_t n) {
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
    r = weft__park(weft__tcp_close_cancel, c);
    break;
  }
  weft__tcp_release(c);
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
    int r = uv_poll_init(weft__tcp_loop(), &w->poll, fd);
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

static int tcp_sendfile_impl(weft_tcp *c, int fd, int64_t offset,
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
  if ((r == UV_ECANCELED || r == UV_ETIMEDOUT) && *sent > 0) weft__tcp_close_handle(c);
  weft__tcp_release(c);
  return r;
}

/* ---- Public entry points: the work above, counted in the metrics ------- */

int weft_tcp_write(weft_tcp *c, const void *buf, size_t len) {
  int r = tcp_write_impl(c, buf, len);
  if (r == 0) weft_counter_add(weft__m_bytes_written, len);
  if (r < 0) weft__metrics_error((int)r);
  return r;
}

int weft_tcp_writev(weft_tcp *c, const uv_buf_t *bufs, size_t n) {
  int r = tcp_writev_impl(c, bufs, n);
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
  int r = tcp_sendfile_impl(c, fd, offset, len, &sent);
  if (sent > 0) weft_counter_add(weft__m_bytes_written, sent);
  if (r < 0) weft__metrics_error((int)r);
  return r;
}
