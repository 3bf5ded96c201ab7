/* weft/io.h: TCP, files, DNS, signals and blocking work.
 *
 * Every call here suspends only the calling task. Every call that waits is a
 * cancellation point: when the task's scope is cancelled or its deadline
 * passes, the call returns UV_ECANCELED or UV_ETIMEDOUT and leaves no libuv
 * handle, request or memory behind. A TCP connection whose read or write was
 * cancelled part-way is closed (its byte stream is no longer well defined);
 * the caller still frees it with weft_tcp_close().
 *
 * Closing: weft_tcp_close() closes the socket and frees the connection
 * (unlike a channel's close, which frees nothing, and a WebSocket's, which
 * sends a close frame: docs/ARCHITECTURE.md, "Who allocates, who frees").
 *
 * SIGPIPE: libuv writes to sockets with write(2), which raises SIGPIPE when
 * the peer has gone, and its default action ends the program. So the first
 * TCP handle a program makes sets SIGPIPE to ignored for the whole process,
 * unless the program has already chosen a disposition of its own (a
 * handler, or SIG_IGN); a write to a gone peer then fails with UV_EPIPE.
 * (There is no per-socket way on Linux: MSG_NOSIGNAL applies to send(2),
 * which libuv does not use, and SO_NOSIGPIPE exists only on the BSDs and
 * macOS.) Windows raises no SIGPIPE.
 *
 * Errors are negative libuv codes (weft_strerror() names them). Besides the
 * codes each call lists, every call here may return:
 *   - UV_EINVAL      a NULL or out-of-range argument;
 *   - WEFT_ENOTASK   called outside a weft task (the calls that wait);
 *   - UV_ECANCELED / UV_ETIMEDOUT  the calling task's scope was cancelled or
 *                    its deadline passed (the calls that wait);
 *   - UV_ENOMEM      out of memory;
 *   - the system's own error, as libuv maps it (UV_ECONNREFUSED,
 *     UV_ECONNRESET, UV_EPIPE, UV_EADDRINUSE, UV_ENOENT, UV_EACCES, UV_ENOSPC,
 *     ...), passed through unchanged.
 */
#ifndef WEFT_IO_H
#define WEFT_IO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <uv.h>

#include "executor.h"

#ifdef __cplusplus
extern "C" {
#endif

struct sockaddr;
struct sockaddr_storage;

/* ---- TCP ---------------------------------------------------------------- */

/** A TCP listener or connection (opaque). */
typedef struct weft_tcp weft_tcp;

/** Flags for weft_tcp_listen(). */
enum {
  WEFT_TCP_REUSEPORT = 1, /**< SO_REUSEPORT where the system has it */
  WEFT_TCP_IPV6ONLY = 2   /**< an IPv6 listener that does not take IPv4 */
};

/**
 * Listens on host:port. host is a numeric IPv4 or IPv6 address or a name
 * (resolved first); port 0 picks a free port (read it back with
 * weft_tcp_local_port()). backlog <= 0 means 511. Returns 0 and the listener
 * in *out, or an error: UV_EADDRINUSE (the address is taken), UV_EACCES (a
 * privileged port), UV_EADDRNOTAVAIL (not an address of this machine),
 * UV_EAI_NONAME (a name that does not resolve).
 */
int weft_tcp_listen(const char *host, int port, int backlog, int flags,
                    weft_tcp **out);

/**
 * Waits for the next connection on listener and returns it in *out.
 * Returns 0 or an error: UV_EBUSY when another task already waits on this
 * listener, UV_ECANCELED / UV_ETIMEDOUT when cancelled, UV_EMFILE when the
 * process is out of descriptors.
 */
int weft_tcp_accept(weft_tcp *listener, weft_tcp **out);

/**
 * Connects to host:port (host resolved with weft_dns_lookup(); each address
 * is tried in turn). Returns 0 and the connection in *out, or an error: the
 * last address's (UV_ECONNREFUSED, UV_ETIMEDOUT, UV_ENETUNREACH, ...), or
 * UV_EAI_NONAME for a name that does not resolve.
 */
int weft_tcp_connect(const char *host, int port, weft_tcp **out);

/** Connects to a resolved address. Returns 0 and the connection in *out, or
 * an error as weft_tcp_connect(). */
int weft_tcp_connect_addr(const struct sockaddr *addr, weft_tcp **out);

/**
 * Reads up to len bytes. Returns the number read (> 0), 0 at end of stream,
 * or an error: UV_EBUSY when another task is reading c, UV_ECANCELED when c
 * was closed or cancelled, UV_ECONNRESET when the peer reset it. Waits only
 * when nothing is buffered.
 */
ssize_t weft_tcp_read(weft_tcp *c, void *buf, size_t len);

/**
 * Writes all len bytes, waiting while the peer does not read. Returns 0 or an
 * error: UV_EPIPE / UV_ECONNRESET when the peer has gone, UV_EBUSY while a
 * weft_tcp_sendfile() runs on c, UV_ECANCELED when c was closed. A cancelled
 * write closes the connection.
 */
int weft_tcp_write(weft_tcp *c, const void *buf, size_t len);

/**
 * Writes the n buffers in order as one write: all their bytes, waiting while
 * the peer does not read. Returns 0 or an error, as weft_tcp_write().
 */
int weft_tcp_writev(weft_tcp *c, const uv_buf_t *bufs, size_t n);

/**
 * Sends len bytes of the open file fd, from offset, on c, after the bytes
 * of earlier writes. Where the system has sendfile(2) (Linux) the bytes go
 * from the file to the socket without passing through the program;
 * elsewhere, or for a file sendfile(2) does not take, they are read and
 * written. The file's own position is left alone, and fd stays the
 * caller's. While it runs, a write or another send on c from another task
 * returns UV_EBUSY (its bytes would land inside the file's). Returns 0 once
 * all len bytes are sent, UV_EOF when the file ends before them (the bytes
 * before the end were sent), or an error; cancelled part-way (UV_ECANCELED
 * / UV_ETIMEDOUT) it closes the connection, as a cancelled write does.
 */
int weft_tcp_sendfile(weft_tcp *c, int fd, int64_t offset, size_t len);

/** Shuts down the sending side once queued writes are done. Returns 0 or an
 * error (UV_ECANCELED when c was closed, UV_ENOTCONN). */
int weft_tcp_shutdown(weft_tcp *c);

/**
 * Closes c and frees it. Never waits and never fails; pending operations of
 * other tasks on c return UV_ECANCELED.
 */
void weft_tcp_close(weft_tcp *c);

/** Sets TCP_NODELAY (on != 0). Returns 0 or an error (UV_ECANCELED when c was
 * closed). */
int weft_tcp_nodelay(weft_tcp *c, int on);

/** The local port of a listener or connection, or a negative error
 * (UV_EAFNOSUPPORT for an address that is not IPv4 or IPv6). */
int weft_tcp_local_port(const weft_tcp *c);

/** Stores the local address of c in *addr. Returns 0 or an error
 * (UV_ECANCELED when c was closed). */
int weft_tcp_sockname(const weft_tcp *c, struct sockaddr_storage *addr);

/** Stores the peer's address of connection c in *addr. Returns 0 or an
 * error (UV_ECANCELED when c was closed, UV_ENOTCONN). */
int weft_tcp_peername(const weft_tcp *c, struct sockaddr_storage *addr);

/* ---- DNS ---------------------------------------------------------------- */

/**
 * Resolves host (and port, for the addresses' port field) to up to max
 * addresses, IPv4 and IPv6, in the resolver's order. Returns the number of
 * addresses (> 0) or an error (UV_EAI_NONAME for an unknown name).
 */
int weft_dns_lookup(const char *host, int port, struct sockaddr_storage *addrs,
                    int max);

/* ---- Files -------------------------------------------------------------- */

/** Opens path with open(2) flags and mode. Returns a file descriptor (>= 0)
 * or an error (UV_ENOENT, UV_EACCES, UV_EEXIST with O_EXCL, UV_EISDIR,
 * UV_EMFILE, ...). */
int weft_file_open(const char *path, int flags, int mode);

/**
 * Reads up to len bytes at offset (offset < 0: the current position). Returns
 * the number read, 0 at end of file, or an error (UV_EBADF, UV_EISDIR,
 * UV_EIO).
 */
ssize_t weft_file_read(int fd, void *buf, size_t len, int64_t offset);

/** Writes len bytes at offset (< 0: current position). Returns the number
 * written or an error (UV_ENOSPC when the disk is full, UV_EBADF, UV_EIO). */
ssize_t weft_file_write(int fd, const void *buf, size_t len, int64_t offset);

/** Flushes fd to stable storage. Returns 0 or an error (UV_EIO, UV_ENOSPC,
 * UV_EBADF). */
int weft_file_fsync(int fd);

/** Closes fd. Returns 0 or an error (UV_EBADF; UV_EIO or UV_ENOSPC when a
 * write-back failed). */
int weft_file_close(int fd);

/** What weft_file_stat() reports. */
typedef struct weft_stat {
  uint64_t size;          /**< bytes */
  uint64_t mode;          /**< st_mode: type and permission bits */
  int64_t mtime_ms;       /**< last modification, ms since the epoch */
  int is_dir;             /**< non-zero for a directory */
  int is_file;            /**< non-zero for a regular file */
} weft_stat;

/** Stats path (following links). Returns 0 or an error (UV_ENOENT, ...). */
int weft_file_stat(const char *path, weft_stat *st);

/** Renames from to to. Returns 0 or an error (UV_ENOENT, UV_EXDEV across
 * file systems, UV_EACCES, ...). */
int weft_fs_rename(const char *from, const char *to);

/** Removes a file. Returns 0 or an error (UV_ENOENT, UV_EISDIR / UV_EPERM for
 * a directory, UV_EACCES). */
int weft_fs_unlink(const char *path);

/** Creates a directory. Returns 0 or an error (UV_EEXIST if it exists). */
int weft_fs_mkdir(const char *path, int mode);

/** Removes an empty directory. Returns 0 or an error (UV_ENOTEMPTY,
 * UV_ENOENT, UV_ENOTDIR). */
int weft_fs_rmdir(const char *path);

/** One directory entry. */
typedef struct weft_dirent {
  char *name;             /**< file name, without the directory */
  int type;               /**< a uv_dirent_type_t value (UV_DIRENT_FILE, ...) */
} weft_dirent;

/**
 * Lists the entries of directory path (without "." and ".."). On success
 * returns the number of entries and an array in *entries, to be released
 * with weft_fs_dirents_free(). Returns an error otherwise (UV_ENOENT,
 * UV_ENOTDIR, UV_EACCES).
 */
int weft_fs_readdir(const char *path, weft_dirent **entries);

/** Frees what weft_fs_readdir() returned. */
void weft_fs_dirents_free(weft_dirent *entries, int n);

/* ---- Signals ------------------------------------------------------------ */

/**
 * Waits until one of the n signals in signums (such as SIGINT, SIGTERM)
 * arrives and returns its number, or an error (UV_EINVAL for n outside
 * 1..64 or a signal that cannot be caught). Signals that arrive while no
 * task waits are counted and returned by the next wait.
 */
int weft_signal_wait(const int *signums, int n);

/* ---- Blocking work ------------------------------------------------------ */

/**
 * Runs fn(arg) on libuv's thread pool and returns its result, suspending only
 * the calling task. fn must not call weft. If the caller is cancelled before
 * fn starts, returns UV_ECANCELED at once and fn never runs; if fn has
 * started, returns UV_ECANCELED (or UV_ETIMEDOUT) as soon as fn returns, so
 * the caller's memory is never left in use.
 */
int weft_blocking(weft_fn fn, void *arg);

#ifdef __cplusplus
}
#endif
#endif /* WEFT_IO_H */
