/* io_fs.c: file system calls on libuv's thread pool.
 *
 * Each call puts a uv_fs_t on the task's stack, starts the request and
 * parks; the callback wakes the task, which then reads req.result and always
 * releases the request with uv_fs_req_cleanup(). Cancelling a queued request
 * drops it (uv_cancel); a request already running is waited for, and what it
 * did is undone where that matters (a file opened after all is closed).
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "internal.h"
#include "metrics_internal.h"

static void fs_on_done(uv_fs_t *req) { weft__wake(req->data, 0); }

static void fs_cancel(weft__task *t, void *data) {
  (void)t;
  uv_cancel((uv_req_t *)data);
}

static uv_loop_t *fs_loop(void) { return &weft__current_exec->loop; }

static int fs_enter(uv_fs_t *req) {
  req->data = weft__self();
  if (req->data == NULL) return WEFT_ENOTASK;
  return weft__check_cancel();
}

/* Waits for the request started with result start (the uv_fs_* return).
 * Returns 0 when req.result is to be read, or an error (the start error or
 * the cancellation code). */
static int fs_wait(uv_fs_t *req, int start) {
  if (start < 0) return start;
  return weft__park(fs_cancel, req);
}

static int weft__file_open_impl(const char *path, int flags, int mode) {
  uv_fs_t req;
  int r = fs_enter(&req);
  if (r != 0) return r;
  if (path == NULL) return UV_EINVAL;
  r = uv_fs_open(fs_loop(), &req, path, flags, mode, fs_on_done);
  if (r == 0) {
    r = weft__park(fs_cancel, &req);
    if (r == 0) {
      r = (int)req.result;
    } else if (req.result >= 0) {
      /* Cancelled after the file was opened: nobody will close it but us. */
      uv_fs_t creq;
      uv_fs_close(NULL, &creq, (uv_file)req.result, NULL);
      uv_fs_req_cleanup(&creq);
    }
  }
  uv_fs_req_cleanup(&req);
  return r;
}

static ssize_t weft__file_read_impl(int fd, void *buf, size_t len, int64_t offset) {
  uv_fs_t req;
  int r = fs_enter(&req);
  if (r != 0) return r;
  if (buf == NULL && len > 0) return UV_EINVAL;
  if (len > INT_MAX) len = INT_MAX;
  uv_buf_t b = uv_buf_init(buf, (unsigned)len);
  r = fs_wait(&req, uv_fs_read(fs_loop(), &req, fd, &b, 1,
                               offset < 0 ? -1 : offset, fs_on_done));
  ssize_t n = r == 0 ? req.result : r;
  uv_fs_req_cleanup(&req);
  return n;
}

static ssize_t weft__file_write_impl(int fd, const void *buf, size_t len, int64_t offset) {
  uv_fs_t req;
  int r = fs_enter(&req);
  if (r != 0) return r;
  if (buf == NULL && len > 0) return UV_EINVAL;
  if (len > INT_MAX) len = INT_MAX;
  uv_buf_t b = uv_buf_init((char *)buf, (unsigned)len);
  r = fs_wait(&req, uv_fs_write(fs_loop(), &req, fd, &b, 1,
                                offset < 0 ? -1 : offset, fs_on_done));
  ssize_t n = r == 0 ? req.result : r;
  uv_fs_req_cleanup(&req);
  return n;
}

int weft_file_fsync(int fd) {
  uv_fs_t req;
  int r = fs_enter(&req);
  if (r != 0) return r;
  r = fs_wait(&req, uv_fs_fsync(fs_loop(), &req, fd, fs_on_done));
  if (r == 0) r = (int)req.result;
  uv_fs_req_cleanup(&req);
  return r;
}

/* Closing is not a cancellation point: a close that gave up would leak the
 * descriptor, and the clean-up code that closes files typically runs while
 * its task is being cancelled. Outside a task the close runs synchronously. */
int weft_file_close(int fd) {
  uv_fs_t req;
  int r;
  if (weft__self() == NULL) {
    r = uv_fs_close(NULL, &req, fd, NULL);
  } else {
    req.data = weft__self();
    r = uv_fs_close(fs_loop(), &req, fd, fs_on_done);
    if (r == 0) {
      weft__park(NULL, NULL);
      r = (int)req.result;
    }
  }
  uv_fs_req_cleanup(&req);
  return r;
}

int weft_file_stat(const char *path, weft_stat *st) {
  uv_fs_t req;
  int r = fs_enter(&req);
  if (r != 0) return r;
  if (path == NULL || st == NULL) return UV_EINVAL;
  r = fs_wait(&req, uv_fs_stat(fs_loop(), &req, path, fs_on_done));
  if (r == 0) r = (int)req.result;
  if (r == 0) {
    const uv_stat_t *s = &req.statbuf;
    memset(st, 0, sizeof(*st));
    st->size = s->st_size;
    st->mode = s->st_mode;
    st->mtime_ms = (int64_t)s->st_mtim.tv_sec * 1000 + s->st_mtim.tv_nsec / 1000000;
    st->is_dir = (s->st_mode & S_IFMT) == S_IFDIR;
    st->is_file = (s->st_mode & S_IFMT) == S_IFREG;
  }
  uv_fs_req_cleanup(&req);
  return r;
}

int weft_fs_rename(const char *from, const char *to) {
  uv_fs_t req;
  int r = fs_enter(&req);
  if (r != 0) return r;
  if (from == NULL || to == NULL) return UV_EINVAL;
  r = fs_wait(&req, uv_fs_rename(fs_loop(), &req, from, to, fs_on_done));
  if (r == 0) r = (int)req.result;
  uv_fs_req_cleanup(&req);
  return r;
}

int weft_fs_unlink(const char *path) {
  uv_fs_t req;
  int r = fs_enter(&req);
  if (r != 0) return r;
  if (path == NULL) return UV_EINVAL;
  r = fs_wait(&req, uv_fs_unlink(fs_loop(), &req, path, fs_on_done));
  if (r == 0) r = (int)req.result;
  uv_fs_req_cleanup(&req);
  return r;
}

int weft_fs_mkdir(const char *path, int mode) {
  uv_fs_t req;
  int r = fs_enter(&req);
  if (r != 0) return r;
  if (path == NULL) return UV_EINVAL;
  r = fs_wait(&req, uv_fs_mkdir(fs_loop(), &req, path, mode, fs_on_done));
  if (r == 0) r = (int)req.result;
  uv_fs_req_cleanup(&req);
  return r;
}

int weft_fs_rmdir(const char *path) {
  uv_fs_t req;
  int r = fs_enter(&req);
  if (r != 0) return r;
  if (path == NULL) return UV_EINVAL;
  r = fs_wait(&req, uv_fs_rmdir(fs_loop(), &req, path, fs_on_done));
  if (r == 0) r = (int)req.result;
  uv_fs_req_cleanup(&req);
  return r;
}

int weft_fs_readdir(const char *path, weft_dirent **entries) {
  uv_fs_t req;
  if (entries != NULL) *entries = NULL;
  int r = fs_enter(&req);
  if (r != 0) return r;
  if (path == NULL || entries == NULL) return UV_EINVAL;
  r = fs_wait(&req, uv_fs_scandir(fs_loop(), &req, path, 0, fs_on_done));
  if (r == 0) r = (int)req.result;
  if (r < 0) {
    uv_fs_req_cleanup(&req);
    return r;
  }
  int cap = r;
  weft_dirent *list = calloc(cap > 0 ? (size_t)cap : 1, sizeof(*list));
  int n = 0;
  int failed = list == NULL;
  uv_dirent_t ent;
  /* Iterate to UV_EOF even when giving up: libuv 1.44 frees the last entry
   * only there, uv_fs_req_cleanup() does not. */
  while (uv_fs_scandir_next(&req, &ent) == 0) {
    if (failed || n == cap) continue;
    list[n].name = strdup(ent.name);
    list[n].type = ent.type;
    if (list[n].name == NULL)
      failed = 1;
    else
      n++;
  }
  uv_fs_req_cleanup(&req);
  if (failed) {
    weft_fs_dirents_free(list, n);
    return UV_ENOMEM;
  }
  *entries = list;
  return n;
}

void weft_fs_dirents_free(weft_dirent *entries, int n) {
  if (entries == NULL) return;
  for (int i = 0; i < n; i++) free(entries[i].name);
  free(entries);
}

/* ---- Public entry points: the work above, counted in the metrics ------- */

int weft_file_open(const char *path, int flags, int mode) {
  int r = weft__file_open_impl(path, flags, mode);
  if (r < 0) weft__metrics_error((int)r);
  return r;
}

ssize_t weft_file_read(int fd, void *buf, size_t len, int64_t offset) {
  ssize_t r = weft__file_read_impl(fd, buf, len, offset);
  if (r > 0) weft_counter_add(weft__m_bytes_read, (uint64_t)r);
  if (r < 0) weft__metrics_error((int)r);
  return r;
}

ssize_t weft_file_write(int fd, const void *buf, size_t len, int64_t offset) {
  ssize_t r = weft__file_write_impl(fd, buf, len, offset);
  if (r > 0) weft_counter_add(weft__m_bytes_written, (uint64_t)r);
  if (r < 0) weft__metrics_error((int)r);
  return r;
}
