/* Byte streams: pipeline stages that read a file or a TCP connection into
 * a stream of weft_chunk, and write such a stream to a file or a
 * connection. */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#include "stream_internal.h"

/* ---- Byte streams: files and TCP ---------------------------------------- */

typedef struct {
  weft__stage st;
  size_t chunk_size;
  weft_tcp *conn;
  char path[];
} weft__bytes_stage;

/* Sends chunks to the stage's output; read_fn fills one. Returns 0 at end
 * of input (or when the reader went away), or an error. */
static int bytes_source(weft__bytes_stage *b, int fd) {
  int64_t offset = 0;
  for (;;) {
    weft_chunk c;
    if (weft_chunk_alloc(&c, b->chunk_size) != 0) return UV_ENOMEM;
    ssize_t n = fd >= 0 ? weft_file_read(fd, c.data, b->chunk_size, offset)
                        : weft_tcp_read(b->conn, c.data, b->chunk_size);
    if (n <= 0) {
      weft_chunk_free(&c);
      return (int)n;
    }
    c.len = (size_t)n;
    offset += n;
    int w = weft__stage_write(b->st.out, &c);
    if (w != 0) {
      weft_chunk_free(&c);
      return w == 1 ? 0 : w;
    }
  }
}

static int from_file_task(void *arg) {
  weft__bytes_stage *b = arg;
  int fd = weft_file_open(b->path, O_RDONLY, 0);
  if (fd < 0) return weft__stage_finish(&b->st, fd);
  int r = bytes_source(b, fd);
  weft_file_close(fd);
  return weft__stage_finish(&b->st, r);
}

static int from_tcp_task(void *arg) {
  weft__bytes_stage *b = arg;
  return weft__stage_finish(&b->st, bytes_source(b, -1));
}

/* Takes chunks from the stage's input and writes them to fd or the
 * connection. Returns 0 at a clean end of the input, or an error. */
static int bytes_sink(weft__bytes_stage *b, int fd) {
  weft_chunk c;
  int r;
  while ((r = weft_stream_read(b->st.in, &c)) == 0) {
    if (fd >= 0) {
      size_t done = 0;
      while (done < c.len && r == 0) {
        ssize_t n = weft_file_write(fd, c.data + done, c.len - done, -1);
        if (n < 0)
          r = (int)n;
        else
          done += (size_t)n;
      }
    } else {
      r = weft_tcp_write(b->conn, c.data, c.len);
    }
    weft_chunk_free(&c);
    if (r != 0) break;
  }
  return weft__read_end(r);
}

static int to_file_task(void *arg) {
  weft__bytes_stage *b = arg;
  int fd = weft_file_open(b->path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) return weft__stage_finish(&b->st, fd);
  int r = bytes_sink(b, fd);
  int c = weft_file_close(fd);
  if (r == 0) r = c;
  return weft__stage_finish(&b->st, r);
}

static int to_tcp_task(void *arg) {
  weft__bytes_stage *b = arg;
  int r = bytes_sink(b, -1);
  if (r == 0) r = weft_tcp_shutdown(b->conn);
  return weft__stage_finish(&b->st, r);
}

static weft__bytes_stage *bytes_stage_new(weft_pipeline *p,
                                                weft_stream *in,
                                                const char *path) {
  size_t len = path ? strlen(path) + 1 : 1;
  weft__bytes_stage *b = weft__stage_new(p, sizeof *b + len, in, 0);
  if (b == NULL) {
    weft__pipe_fail(p, UV_ENOMEM);
    return NULL;
  }
  memcpy(b->path, path ? path : "", len);
  return b;
}

static weft_stream *bytes_from(weft_pipeline *p, const char *path,
                                     weft_tcp *conn, size_t chunk_size,
                                     const weft_stage_opts *opts) {
  if (p == NULL) return NULL;
  if (weft__current_task == NULL) return NULL;
  if (chunk_size == 0 || (path == NULL && conn == NULL)) {
    weft__pipe_fail(p, UV_EINVAL);
    return NULL;
  }
  weft__bytes_stage *b = bytes_stage_new(p, NULL, path);
  if (b == NULL) return NULL;
  b->chunk_size = chunk_size;
  b->conn = conn;
  b->st.out = weft__pipe_stream(p, sizeof(weft_chunk), opts, weft_chunk_ops());
  if (b->st.out == NULL) return NULL;
  weft_fn fn = path ? from_file_task : from_tcp_task;
  if (weft__stage_spawn(p, weft__stage_name(opts, path ? "from_file" : "from_tcp"),
                        fn, b))
    return NULL;
  return b->st.out;
}

static int bytes_to(weft_pipeline *p, weft_stream *in, const char *path,
                          weft_tcp *conn) {
  int err = weft__stage_check(p, in);
  if (err != 0) return err;
  if (in->item_size != sizeof(weft_chunk) || (path == NULL && conn == NULL)) {
    weft__pipe_fail(p, UV_EINVAL);
    return UV_EINVAL;
  }
  weft__bytes_stage *b = bytes_stage_new(p, in, path);
  if (b == NULL) return UV_ENOMEM;
  b->conn = conn;
  return weft__stage_spawn(p, path ? "to_file" : "to_tcp",
                           path ? to_file_task : to_tcp_task, b);
}

weft_stream *weft_stream_from_file(weft_pipeline *p, const char *path,
                                   size_t chunk_size,
                                   const weft_stage_opts *opts) {
  if (path == NULL) {
    weft__pipe_fail(p, UV_EINVAL);
    return NULL;
  }
  return bytes_from(p, path, NULL, chunk_size, opts);
}

int weft_stream_to_file(weft_pipeline *p, weft_stream *in, const char *path) {
  if (path == NULL) {
    weft__pipe_fail(p, UV_EINVAL);
    return UV_EINVAL;
  }
  return bytes_to(p, in, path, NULL);
}

weft_stream *weft_stream_from_tcp(weft_pipeline *p, weft_tcp *conn,
                                  size_t chunk_size,
                                  const weft_stage_opts *opts) {
  if (conn == NULL) {
    weft__pipe_fail(p, UV_EINVAL);
    return NULL;
  }
  return bytes_from(p, NULL, conn, chunk_size, opts);
}

int weft_stream_to_tcp(weft_pipeline *p, weft_stream *in, weft_tcp *conn) {
  if (conn == NULL) {
    weft__pipe_fail(p, UV_EINVAL);
    return UV_EINVAL;
  }
  return bytes_to(p, in, NULL, conn);
}
