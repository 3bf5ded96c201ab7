/* weft_sqlite.h: an SQLite database used from weft tasks, with every
 * statement run off the event loop.
 *
 * A weft_sqlite handle owns one SQLite connection and one thread of its own
 * that runs everything done with it, so that no executor's loop ever waits
 * for the disk. A task hands the database a function (weft_sqlite_read() or
 * weft_sqlite_write()) and is suspended, that task only, until the function
 * has run on the database's thread; tasks of any executor may do so at the
 * same time.
 *
 *   weft_sqlite *db;
 *   int err = weft_sqlite_open("state.db", NULL, &db);     // in a task
 *   if (err == 0)
 *     err = weft_sqlite_exec(db, "CREATE TABLE IF NOT EXISTS kv(k, v)");
 *   struct put p = {"a", "1"};
 *   if (err == 0)
 *     err = weft_sqlite_write(db, put_fn, &p);  // returns once committed
 *   weft_sqlite_close(db);
 *
 * Durability: the database is opened in WAL mode. weft_sqlite_write()
 * returns 0 only after the transaction holding the function's changes has
 * committed, so a program may acknowledge a write to its clients as soon as
 * the call returns (with synchronous=FULL, the default here, the commit is
 * on disk; opts.synchronous_normal trades that for speed).
 *
 * Group commit: writes that are queued while a commit is running share the
 * next transaction (up to opts.max_batch of them), so many small writes cost
 * one fsync. Each write runs inside a SAVEPOINT of that transaction: a write
 * function that fails has its own changes rolled back and its error returned
 * to its caller, and the other writes of the batch commit. A failed COMMIT
 * fails every write of the batch. When a write's failure makes SQLite roll
 * back the whole transaction itself (SQLITE_FULL and SQLITE_IOERR may), the
 * other writes of the batch run again in a new transaction: a write
 * function may run more than once, and must leave its outputs in arg
 * correct for its last run. It must not end the transaction itself (no
 * COMMIT, ROLLBACK or RELEASE of savepoints it did not open).
 *
 * Cancellation: a call that has been queued is not taken back (its function
 * may already be running, and arg lives on the caller's stack), so the wait
 * ignores the caller's scope: the call returns the function's result, and a
 * cancelled caller sees its cancellation at its next wait. The database's
 * thread never runs long enough for this to matter: a function should do a
 * bounded amount of work.
 *
 * Threads: the handle may be used from tasks of every executor, and from
 * several tasks at once; functions run one at a time, in the order they
 * were queued. weft_sqlite_open() and the calls must be made from tasks.
 */
#ifndef WEFT_SQLITE_H
#define WEFT_SQLITE_H

#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>
#include <weft.h>

#ifdef __cplusplus
extern "C" {
#endif

/** A database with its own thread (opaque). */
typedef struct weft_sqlite weft_sqlite;

/** Options for weft_sqlite_open(); zero everywhere gives the defaults. */
typedef struct weft_sqlite_opts {
  int read_only;          /**< open an existing database read-only */
  int synchronous_normal; /**< PRAGMA synchronous=NORMAL instead of FULL */
  int busy_timeout_ms;    /**< wait for other processes' locks; 0: 5000 */
  int max_batch;          /**< writes grouped in one transaction; 0: 256 */
} weft_sqlite_opts;

/**
 * A function run on the database's thread. It may prepare, step and
 * finalize statements on db (it must finalize what it prepares), and
 * returns 0 or an error: an SQLite result code made negative with
 * weft_sqlite_error(), or any weft error.
 */
typedef int (*weft_sqlite_fn)(sqlite3 *db, void *arg);

/**
 * Opens (creating it when missing, unless read-only) the database at path,
 * sets WAL mode and starts its thread. Returns 0 and *out, or an error:
 * UV_EINVAL for a NULL argument, UV_ENOMEM, or the SQLite error that
 * opening gave (weft_sqlite_error()); the message is logged with the path.
 */
int weft_sqlite_open(const char *path, const weft_sqlite_opts *opts, weft_sqlite **out);

/**
 * Runs SQL text (one or more statements, such as a schema) on the
 * database's thread, outside any grouped transaction. Returns 0 or the
 * error (logged with SQLite's message).
 */
int weft_sqlite_exec(weft_sqlite *db, const char *sql);

/**
 * Runs fn(db, arg) on the database's thread outside any transaction of the
 * module's (for reads, or for work that manages its own transaction).
 * Returns what fn returned.
 */
int weft_sqlite_read(weft_sqlite *db, weft_sqlite_fn fn, void *arg);

/**
 * Runs fn(db, arg) inside a write transaction, possibly shared with other
 * writes (see Group commit above), and returns once that transaction has
 * committed: 0, fn's error (its changes rolled back), or the commit's error.
 */
int weft_sqlite_write(weft_sqlite *db, weft_sqlite_fn fn, void *arg);

/**
 * Waits for every queued call to finish, stops the thread and closes the
 * connection (finalizing nothing for the caller: functions finalize their
 * own statements). Call it once no other task uses db. NULL is ignored.
 */
void weft_sqlite_close(weft_sqlite *db);

/**
 * An SQLite result code as a weft error (a negative number outside libuv's
 * range that weft_strerror() and weft_sqlite_strerror() name); SQLITE_OK
 * gives 0. SQLITE_FULL gives UV_ENOSPC and SQLITE_NOMEM UV_ENOMEM, so that
 * callers can tell a full disk without knowing SQLite; likewise
 * SQLITE_IOERR gives UV_EIO, SQLITE_BUSY and SQLITE_LOCKED UV_EBUSY,
 * SQLITE_READONLY UV_EROFS and SQLITE_TOOBIG UV_E2BIG. Every other code,
 * extended codes kept (SQLITE_CONSTRAINT_UNIQUE, ...), gives
 * -(32000 + rc); weft_err_name() names its primary code ("SQLITE_CONSTRAINT").
 */
int weft_sqlite_error(int sqlite_rc);

/** The message of an error from weft_sqlite_error() (or of any weft error). */
const char *weft_sqlite_strerror(int err);

/** Counters since open: transactions committed and writes they held. */
typedef struct weft_sqlite_stats {
  uint64_t commits; /**< grouped transactions committed */
  uint64_t writes;  /**< weft_sqlite_write() calls those commits held */
  uint64_t reads;   /**< weft_sqlite_read() and weft_sqlite_exec() calls run */
} weft_sqlite_stats;

/** Reads the counters (safe from any task). */
void weft_sqlite_get_stats(weft_sqlite *db, weft_sqlite_stats *out);

#ifdef __cplusplus
}
#endif

#endif /* WEFT_SQLITE_H */
