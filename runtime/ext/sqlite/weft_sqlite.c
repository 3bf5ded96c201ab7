/* weft_sqlite.c: an SQLite connection driven by a thread of its own.
 *
 * Calls are queued (the call's record lives on the caller's stack, which
 * waits in weft_park_remote() until the database's thread has run it and
 * woken it with weft_unpark_remote()). The thread takes either one call
 * that is not a write, or every write at the head of the queue (up to
 * max_batch): those share one transaction, each in a savepoint.
 */
#include "weft_sqlite.h"

#include <stdlib.h>
#include <string.h>

#include <uv.h>

/* SQLite result codes (extended ones included) map to -(BASE + rc). */
#define WEFT_SQLITE_ERR_BASE 32000
#define WEFT_SQLITE_ERR_LO (-(WEFT_SQLITE_ERR_BASE + 9999))
#define WEFT_SQLITE_ERR_HI (-(WEFT_SQLITE_ERR_BASE + 1))

enum { OP_OPEN = 1, OP_EXEC, OP_READ, OP_WRITE, OP_CLOSE };

typedef struct sqlite_op {
  struct sqlite_op *next;
  int kind;
  weft_sqlite_fn fn;
  void *arg;
  const char *sql;
  int result;
  int failed; /* a write whose function failed: left out of the batch */
  weft_parked *task;
} sqlite_op;

/* The statements of the module's own transactions, prepared once. */
enum { ST_BEGIN, ST_COMMIT, ST_ROLLBACK, ST_SAVEPOINT, ST_RELEASE, ST_ROLLBACK_TO, ST_COUNT };
static const char *const stmt_sql[ST_COUNT] = {
    "BEGIN IMMEDIATE", "COMMIT", "ROLLBACK", "SAVEPOINT weft_w", "RELEASE weft_w",
    "ROLLBACK TO weft_w"};

struct weft_sqlite {
  sqlite3 *db;        /* the database's thread's own */
  sqlite3_stmt *stmt[ST_COUNT];
  char *path;
  weft_sqlite_opts opts;
  uv_thread_t thread;
  uv_mutex_t lock;    /* guards the queue */
  uv_cond_t cond;     /* signalled when the queue becomes non-empty */
  sqlite_op *head;
  sqlite_op *tail;
  sqlite_op **batch;  /* the thread's: the writes of the running batch */
  uint64_t commits;   /* atomic */
  uint64_t writes;    /* atomic */
  uint64_t reads;     /* atomic */
};

/* ---- Errors ------------------------------------------------------------- */

static const char *sqlite_err_message(int err) {
  return sqlite3_errstr(-err - WEFT_SQLITE_ERR_BASE);
}

static const char *sqlite_err_name(int err) {
  static const char *const names[] = {
      "SQLITE_OK", "SQLITE_ERROR", "SQLITE_INTERNAL", "SQLITE_PERM", "SQLITE_ABORT",
      "SQLITE_BUSY", "SQLITE_LOCKED", "SQLITE_NOMEM", "SQLITE_READONLY", "SQLITE_INTERRUPT",
      "SQLITE_IOERR", "SQLITE_CORRUPT", "SQLITE_NOTFOUND", "SQLITE_FULL", "SQLITE_CANTOPEN",
      "SQLITE_PROTOCOL", "SQLITE_EMPTY", "SQLITE_SCHEMA", "SQLITE_TOOBIG", "SQLITE_CONSTRAINT",
      "SQLITE_MISMATCH", "SQLITE_MISUSE", "SQLITE_NOLFS", "SQLITE_AUTH", "SQLITE_FORMAT",
      "SQLITE_RANGE", "SQLITE_NOTADB"};
  int primary = (-err - WEFT_SQLITE_ERR_BASE) & 0xff;
  return primary < (int)(sizeof names / sizeof names[0]) ? names[primary] : "SQLITE_UNKNOWN";
}

static void register_errors_once(void) {
  weft_error_register(WEFT_SQLITE_ERR_LO, WEFT_SQLITE_ERR_HI, sqlite_err_message,
                      sqlite_err_name);
}

int weft_sqlite_error(int rc) {
  static uv_once_t once = UV_ONCE_INIT;
  uv_once(&once, register_errors_once);
  switch (rc & 0xff) {
  case SQLITE_OK:
  case SQLITE_ROW:
  case SQLITE_DONE:
    return 0;
  case SQLITE_FULL:
    return UV_ENOSPC;
  case SQLITE_NOMEM:
    return UV_ENOMEM;
  case SQLITE_IOERR:
    return UV_EIO;
  case SQLITE_BUSY:
  case SQLITE_LOCKED:
    return UV_EBUSY;
  case SQLITE_READONLY:
    return UV_EROFS;
  case SQLITE_TOOBIG:
    return UV_E2BIG;
  default:
    break;
  }
  if (rc < 0 || rc > 9999) rc = SQLITE_ERROR;
  return -(WEFT_SQLITE_ERR_BASE + rc);
}

const char *weft_sqlite_strerror(int err) {
  if (err >= WEFT_SQLITE_ERR_LO && err <= WEFT_SQLITE_ERR_HI) return sqlite_err_message(err);
  return weft_strerror(err);
}

/* ---- On the database's thread ------------------------------------------- */

/* SQLite's message, fit for a quoted logfmt value: double quotes become
 * single ones and backslashes slashes (messages quote names, as in
 * near "TABLEE": syntax error). */
static const char *log_text(const char *msg, char *buf, size_t size) {
  size_t i = 0;
  for (; msg[i] != '\0' && i + 1 < size; i++)
    buf[i] = msg[i] == '"' ? '\'' : msg[i] == '\\' ? '/' : msg[i]; /* NOLINT(bugprone-narrowing-conversions): char in, char out */
  buf[i] = '\0';
  return buf;
}

static int step_stmt(weft_sqlite *d, int which) {
  sqlite3_stmt *st = d->stmt[which];
  int rc = sqlite3_step(st);
  sqlite3_reset(st);
  return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : weft_sqlite_error(rc);
}

static void close_db(weft_sqlite *d) {
  for (int i = 0; i < ST_COUNT; i++) {
    sqlite3_finalize(d->stmt[i]);
    d->stmt[i] = NULL;
  }
  if (d->db != NULL && sqlite3_close(d->db) != SQLITE_OK) {
    /* A function left a statement unfinalized: say so, and let SQLite close
     * the connection once it is finalized (never, here). */
    weft_log(WEFT_LOG_ERROR, "sqlite: statements left unfinalized at close", "path=%s",
             d->path);
    sqlite3_close_v2(d->db);
  }
  d->db = NULL;
}

static int open_db(weft_sqlite *d) {
  int flags = SQLITE_OPEN_NOMUTEX | (d->opts.read_only ? SQLITE_OPEN_READONLY
                                                       : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
  int rc = sqlite3_open_v2(d->path, &d->db, flags, NULL);
  const char *what = "open";
  if (rc == SQLITE_OK) {
    sqlite3_extended_result_codes(d->db, 1);
    sqlite3_busy_timeout(d->db, d->opts.busy_timeout_ms);
    /* A read-only connection cannot switch the journal mode: it reads the
     * database in the mode it was written in. */
    if (!d->opts.read_only) {
      what = "set WAL mode";
      rc = sqlite3_exec(d->db, "PRAGMA journal_mode=WAL", NULL, NULL, NULL);
    }
    if (rc == SQLITE_OK) {
      what = "set synchronous";
      rc = sqlite3_exec(d->db,
                        d->opts.synchronous_normal ? "PRAGMA synchronous=NORMAL"
                                                   : "PRAGMA synchronous=FULL",
                        NULL, NULL, NULL);
    }
    if (rc == SQLITE_OK) what = "prepare";
    for (int i = 0; i < ST_COUNT && rc == SQLITE_OK; i++)
      rc = sqlite3_prepare_v3(d->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &d->stmt[i],
                              NULL);
  }
  if (rc == SQLITE_OK) return 0;
  char buf[256];
  weft_log(WEFT_LOG_ERROR, "sqlite: cannot open database", "path=%s step=%s error=\"%s\"",
           d->path, what,
           log_text(d->db ? sqlite3_errmsg(d->db) : sqlite3_errstr(rc), buf, sizeof buf));
  close_db(d);
  int err = weft_sqlite_error(rc);
  return err != 0 ? err : UV_EIO;
}

static int exec_sql(weft_sqlite *d, const char *sql) {
  char *msg = NULL;
  int rc = sqlite3_exec(d->db, sql, NULL, NULL, &msg);
  char buf[256];
  if (rc != SQLITE_OK)
    weft_log(WEFT_LOG_WARN, "sqlite: statement failed", "path=%s error=\"%s\"", d->path,
             log_text(msg ? msg : sqlite3_errstr(rc), buf, sizeof buf));
  sqlite3_free(msg);
  return weft_sqlite_error(rc);
}

/* Runs one write in a savepoint of the open transaction. Returns 0, or the
 * write's error (its changes rolled back, or the whole transaction when
 * SQLite rolled it back itself: sqlite3_get_autocommit() then says so). */
static int run_write(weft_sqlite *d, sqlite_op *op) {
  int r = step_stmt(d, ST_SAVEPOINT);
  if (r != 0) return r;
  r = op->fn(d->db, op->arg);
  if (r == 0) r = step_stmt(d, ST_RELEASE);
  if (r != 0 && !sqlite3_get_autocommit(d->db)) {
    step_stmt(d, ST_ROLLBACK_TO);
    step_stmt(d, ST_RELEASE);
  }
  return r;
}

/* Runs a batch of writes in one transaction. A write that fails is marked
 * and left out; if its failure took the transaction with it (SQLite rolls
 * back the whole transaction on some errors, SQLITE_FULL among them), the
 * batch starts over without it, so that each failure costs only its own
 * write. */
static void run_batch(weft_sqlite *d, sqlite_op **ops, size_t n) {
  size_t ok;
  int r;
again:
  ok = 0;
  r = step_stmt(d, ST_BEGIN);
  if (r != 0) {
    for (size_t i = 0; i < n; i++)
      if (!ops[i]->failed) ops[i]->result = r;
    return;
  }
  for (size_t i = 0; i < n; i++) {
    if (ops[i]->failed) continue;
    r = run_write(d, ops[i]);
    if (r == 0) {
      ok++;
      continue;
    }
    ops[i]->failed = 1;
    ops[i]->result = r;
    if (sqlite3_get_autocommit(d->db)) goto again;
  }
  r = step_stmt(d, ST_COMMIT);
  if (r != 0) {
    char buf[256];
    weft_log(WEFT_LOG_ERROR, "sqlite: commit failed", "path=%s writes=%zu error=\"%s\"", d->path,
             ok, log_text(sqlite3_errmsg(d->db), buf, sizeof buf));
    if (!sqlite3_get_autocommit(d->db)) step_stmt(d, ST_ROLLBACK);
  } else {
    __atomic_add_fetch(&d->commits, 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&d->writes, ok, __ATOMIC_RELAXED);
  }
  for (size_t i = 0; i < n; i++)
    if (!ops[i]->failed) ops[i]->result = r;
}

static void db_thread(void *arg) {
  weft_sqlite *d = arg;
  size_t max_batch = (size_t)d->opts.max_batch;
  for (;;) {
    uv_mutex_lock(&d->lock);
    while (d->head == NULL) uv_cond_wait(&d->cond, &d->lock);
    size_t n = 0;
    sqlite_op *op = d->head;
    if (op->kind == OP_WRITE) {
      while (op != NULL && op->kind == OP_WRITE && n < max_batch) {
        d->batch[n++] = op;
        op = op->next;
      }
      d->head = op;
    } else {
      d->head = op->next;
    }
    if (d->head == NULL) d->tail = NULL;
    uv_mutex_unlock(&d->lock);

    if (n > 0) {
      run_batch(d, d->batch, n);
      /* Once woken, a caller's record may be gone: read nothing after. */
      for (size_t i = 0; i < n; i++) weft_unpark_remote(d->batch[i]->task, d->batch[i]->result);
      continue;
    }
    int kind = op->kind;
    switch (kind) {
    case OP_OPEN:
      op->result = open_db(d);
      break;
    case OP_EXEC:
      op->result = exec_sql(d, op->sql);
      __atomic_add_fetch(&d->reads, 1, __ATOMIC_RELAXED);
      break;
    case OP_READ:
      op->result = op->fn(d->db, op->arg);
      __atomic_add_fetch(&d->reads, 1, __ATOMIC_RELAXED);
      break;
    case OP_CLOSE:
      close_db(d);
      break;
    }
    int stop = kind == OP_CLOSE || (kind == OP_OPEN && op->result != 0);
    weft_unpark_remote(op->task, op->result);
    if (stop) return;
  }
}

/* ---- In the calling task ------------------------------------------------ */

/* Queues op and waits for the database's thread to have run it. The wait
 * ignores cancellation (see weft_sqlite.h). */
static int submit(weft_sqlite *d, sqlite_op *op) {
  op->next = NULL;
  op->result = 0;
  op->failed = 0;
  op->task = weft_park_self();
  uv_mutex_lock(&d->lock);
  int was_empty = d->head == NULL;
  if (d->tail != NULL)
    d->tail->next = op;
  else
    d->head = op;
  d->tail = op;
  uv_mutex_unlock(&d->lock);
  /* The thread waits on the condition only when the queue is empty. */
  if (was_empty) uv_cond_signal(&d->cond);
  return weft_park_remote(NULL, NULL);
}

static void free_handle(weft_sqlite *d) {
  uv_cond_destroy(&d->cond);
  uv_mutex_destroy(&d->lock);
  free(d->batch);
  free(d->path);
  free(d);
}

int weft_sqlite_open(const char *path, const weft_sqlite_opts *opts, weft_sqlite **out) {
  if (out != NULL) *out = NULL;
  if (path == NULL || out == NULL) return UV_EINVAL;
  if (!weft_in_task()) return WEFT_ENOTASK;
  weft_sqlite_error(0); /* registers the error names */
  weft_sqlite *d = calloc(1, sizeof *d);
  if (d == NULL) return UV_ENOMEM;
  if (opts != NULL) d->opts = *opts;
  if (d->opts.busy_timeout_ms <= 0) d->opts.busy_timeout_ms = 5000;
  if (d->opts.max_batch <= 0) d->opts.max_batch = 256;
  d->path = strdup(path);
  d->batch = malloc((size_t)d->opts.max_batch * sizeof *d->batch);
  if (d->path == NULL || d->batch == NULL) {
    free(d->batch);
    free(d->path);
    free(d);
    return UV_ENOMEM;
  }
  uv_mutex_init(&d->lock);
  uv_cond_init(&d->cond);
  int err = uv_thread_create(&d->thread, db_thread, d);
  if (err != 0) {
    free_handle(d);
    return err;
  }
  sqlite_op op = {.kind = OP_OPEN};
  err = submit(d, &op);
  if (err != 0) {
    /* The thread has returned (or is about to). */
    uv_thread_join(&d->thread);
    free_handle(d);
    return err;
  }
  *out = d;
  return 0;
}

int weft_sqlite_exec(weft_sqlite *db, const char *sql) {
  if (db == NULL || sql == NULL) return UV_EINVAL;
  if (!weft_in_task()) return WEFT_ENOTASK;
  sqlite_op op = {.kind = OP_EXEC, .sql = sql};
  return submit(db, &op);
}

int weft_sqlite_read(weft_sqlite *db, weft_sqlite_fn fn, void *arg) {
  if (db == NULL || fn == NULL) return UV_EINVAL;
  if (!weft_in_task()) return WEFT_ENOTASK;
  sqlite_op op = {.kind = OP_READ, .fn = fn, .arg = arg};
  return submit(db, &op);
}

int weft_sqlite_write(weft_sqlite *db, weft_sqlite_fn fn, void *arg) {
  if (db == NULL || fn == NULL) return UV_EINVAL;
  if (!weft_in_task()) return WEFT_ENOTASK;
  sqlite_op op = {.kind = OP_WRITE, .fn = fn, .arg = arg};
  return submit(db, &op);
}

void weft_sqlite_close(weft_sqlite *db) {
  if (db == NULL) return;
  sqlite_op op = {.kind = OP_CLOSE};
  submit(db, &op);
  /* The thread returns right after it woke us. */
  uv_thread_join(&db->thread);
  free_handle(db);
}

void weft_sqlite_get_stats(weft_sqlite *db, weft_sqlite_stats *out) {
  if (out == NULL) return;
  memset(out, 0, sizeof *out);
  if (db == NULL) return;
  out->commits = __atomic_load_n(&db->commits, __ATOMIC_RELAXED);
  out->writes = __atomic_load_n(&db->writes, __ATOMIC_RELAXED);
  out->reads = __atomic_load_n(&db->reads, __ATOMIC_RELAXED);
}
