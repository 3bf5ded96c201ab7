/* store.c: the rooms' history in one SQLite table, through weft_sqlite. */
#include "store.h"

#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <weft.h>

#ifdef CHAT_HAVE_SQLITE
#include <weft_sqlite.h>

struct chat_store {
  weft_sqlite *db;
  /* The INSERT of append_fn(), prepared once on the database's thread,
   * finalized by chat_store_close(). */
  sqlite3_stmt *insert;
};

/* WAL pages between checkpoints (SQLite's default is 1000, 4 MB): a
 * checkpoint reads back and writes each page once, however many commits
 * changed it, and a commit writes a page for each room it touches. */
#define STORE_CHECKPOINT_PAGES 16384

static const char schema[] =
    "CREATE TABLE IF NOT EXISTS messages ("
    "  room TEXT NOT NULL,"
    "  seq INTEGER NOT NULL,"
    "  body TEXT NOT NULL,"
    "  PRIMARY KEY (room, seq)"
    ") WITHOUT ROWID";

int chat_store_open(const char *path, chat_store **out, char *why,
                    size_t why_len) {
  /* A clear word before SQLite's: the directory must take new files (the
   * database, its WAL and its shared-memory index). */
  char *copy = strdup(path);
  if (copy == NULL) return UV_ENOMEM;
  const char *dir = dirname(copy);
  if (access(dir, W_OK | X_OK) != 0) {
    snprintf(why, why_len, "%s: cannot write in the directory %s: %s", path,
             dir, strerror(errno));
    free(copy);
    return UV_EACCES;
  }
  free(copy);
  chat_store *s = calloc(1, sizeof *s);
  if (s == NULL) return UV_ENOMEM;
  /* synchronous=NORMAL: in WAL mode a commit survives the server's crash
   * or kill (it is in the WAL, which the next open reads); only a power
   * failure or an operating system crash may lose the last commits. */
  weft_sqlite_opts opts = {0};
  opts.synchronous_normal = 1;
  int r = weft_sqlite_open(path, &opts, &s->db);
  char pragma[64];
  snprintf(pragma, sizeof pragma, "PRAGMA wal_autocheckpoint=%d",
           STORE_CHECKPOINT_PAGES);
  if (r == 0) r = weft_sqlite_exec(s->db, pragma);
  if (r == 0) r = weft_sqlite_exec(s->db, schema);
  if (r != 0) {
    snprintf(why, why_len, "%s: %s", path, weft_sqlite_strerror(r));
    weft_sqlite_close(s->db);
    free(s);
    return r;
  }
  *out = s;
  return 0;
}

static int finalize_fn(sqlite3 *db, void *arg) {
  (void)db;
  chat_store *s = arg;
  sqlite3_finalize(s->insert);
  s->insert = NULL;
  return 0;
}

void chat_store_close(chat_store *s) {
  if (s == NULL) return;
  weft_sqlite_read(s->db, finalize_fn, s);
  weft_sqlite_close(s->db);
  free(s);
}

/* The message of the current row of a "SELECT seq, body" statement, as a
 * buffer with its seq, or NULL without memory. */
static chat_buf *row_message(sqlite3_stmt *st) {
  const char *body = (const char *)sqlite3_column_text(st, 1);
  size_t len = (size_t)sqlite3_column_bytes(st, 1); /* after the text */
  chat_sb sb;
  chat_sb_init(&sb);
  chat_sb_add(&sb, body, len);
  chat_buf *b = chat_sb_finish(&sb);
  if (b != NULL) b->seq = sqlite3_column_int64(st, 0);
  return b;
}

/* Frees the n messages read so far and their array (a failed read). */
static void free_messages(chat_buf **msgs, size_t n) {
  for (size_t i = 0; i < n; i++) chat_buf_unref(msgs[i]);
  free(msgs);
}

typedef struct load_args {
  const char *room;
  size_t max;
  int64_t last_seq;
  chat_buf **msgs;
  size_t n;
} load_args;

static int load_fn(sqlite3 *db, void *arg) {
  load_args *a = arg;
  sqlite3_stmt *st = NULL;
  int rc = sqlite3_prepare_v2(
      db, "SELECT seq, body FROM messages WHERE room = ?1 "
          "ORDER BY seq DESC LIMIT ?2",
      -1, &st, NULL);
  if (rc != SQLITE_OK) return weft_sqlite_error(rc);
  sqlite3_bind_text(st, 1, a->room, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 2, a->max > 0 ? (sqlite3_int64)a->max : 1);
  a->msgs = calloc(a->max > 0 ? a->max : 1, sizeof *a->msgs);
  if (a->msgs == NULL) {
    sqlite3_finalize(st);
    return UV_ENOMEM;
  }
  /* Newest first: the first row gives the last seq. */
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    int64_t seq = sqlite3_column_int64(st, 0);
    if (a->n == 0 && a->last_seq == 0) a->last_seq = seq;
    if (a->max == 0) break;
    chat_buf *b = row_message(st);
    if (b == NULL) {
      rc = SQLITE_NOMEM;
      break;
    }
    a->msgs[a->n++] = b;
  }
  sqlite3_finalize(st);
  if (rc != SQLITE_DONE && rc != SQLITE_ROW) return weft_sqlite_error(rc);
  /* Oldest first. */
  for (size_t i = 0; i < a->n / 2; i++) {
    chat_buf *t = a->msgs[i];
    a->msgs[i] = a->msgs[a->n - 1 - i];
    a->msgs[a->n - 1 - i] = t;
  }
  return 0;
}

int chat_store_load(chat_store *s, const char *room, size_t max,
                    int64_t *last_seq, chat_buf ***msgs, size_t *n) {
  load_args a = {.room = room, .max = max};
  int r = weft_sqlite_read(s->db, load_fn, &a);
  if (r != 0) {
    free_messages(a.msgs, a.n);
    return r;
  }
  *last_seq = a.last_seq;
  *msgs = a.msgs;
  *n = a.n;
  return 0;
}

typedef struct range_args {
  const char *room;
  int64_t after, upto;
  size_t max, max_bytes;
  chat_buf **msgs;
  size_t n;
  int more;
} range_args;

static int range_fn(sqlite3 *db, void *arg) {
  range_args *a = arg;
  sqlite3_stmt *st = NULL;
  int rc = sqlite3_prepare_v2(
      db, "SELECT seq, body FROM messages WHERE room = ?1 AND seq > ?2 "
          "AND seq <= ?3 ORDER BY seq LIMIT ?4",
      -1, &st, NULL);
  if (rc != SQLITE_OK) return weft_sqlite_error(rc);
  sqlite3_bind_text(st, 1, a->room, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 2, a->after);
  sqlite3_bind_int64(st, 3, a->upto);
  sqlite3_bind_int64(st, 4, (sqlite3_int64)a->max + 1);
  a->msgs = calloc(a->max + 1, sizeof *a->msgs);
  if (a->msgs == NULL) {
    sqlite3_finalize(st);
    return UV_ENOMEM;
  }
  size_t bytes = 0;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    size_t len = (size_t)sqlite3_column_bytes(st, 1);
    /* One row past the page, or past its bytes (but never none): more. */
    if (a->n == a->max || (a->n > 0 && bytes + len > a->max_bytes)) {
      a->more = 1;
      break;
    }
    chat_buf *b = row_message(st);
    if (b == NULL) {
      rc = SQLITE_NOMEM;
      break;
    }
    a->msgs[a->n++] = b;
    bytes += len;
  }
  sqlite3_finalize(st);
  if (rc != SQLITE_DONE && rc != SQLITE_ROW) return weft_sqlite_error(rc);
  return 0;
}

int chat_store_range(chat_store *s, const char *room, int64_t after,
                     int64_t upto, size_t max, size_t max_bytes,
                     chat_buf ***msgs, size_t *n, int *more) {
  range_args a = {.room = room, .after = after, .upto = upto, .max = max,
                  .max_bytes = max_bytes};
  int r = weft_sqlite_read(s->db, range_fn, &a);
  if (r != 0) {
    free_messages(a.msgs, a.n);
    return r;
  }
  *msgs = a.msgs;
  *n = a.n;
  *more = a.more;
  return 0;
}

typedef struct append_args {
  chat_store *store;
  const char *room;
  chat_buf *const *msgs;
  size_t n;
} append_args;

static int append_fn(sqlite3 *db, void *arg) {
  append_args *a = arg;
  chat_store *s = a->store;
  int rc = SQLITE_OK;
  if (s->insert == NULL)
    rc = sqlite3_prepare_v3(
        db, "INSERT OR IGNORE INTO messages (room, seq, body) VALUES (?1, ?2, ?3)", -1,
        SQLITE_PREPARE_PERSISTENT, &s->insert, NULL);
  if (rc != SQLITE_OK) return weft_sqlite_error(rc);
  sqlite3_stmt *st = s->insert;
  sqlite3_bind_text(st, 1, a->room, -1, SQLITE_STATIC);
  for (size_t i = 0; i < a->n && rc == SQLITE_OK; i++) {
    const chat_buf *b = a->msgs[i];
    sqlite3_bind_int64(st, 2, b->seq);
    sqlite3_bind_text(st, 3, b->data, (int)b->len - 1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    rc = rc == SQLITE_DONE ? SQLITE_OK : rc;
    sqlite3_reset(st);
  }
  sqlite3_clear_bindings(st);
  return weft_sqlite_error(rc);
}

int chat_store_append(chat_store *s, const char *room, chat_buf *const *msgs,
                      size_t n) {
  append_args a = {.store = s, .room = room, .msgs = msgs, .n = n};
  return weft_sqlite_write(s->db, append_fn, &a);
}

#else /* a build without the weft_sqlite module */

int chat_store_open(const char *path, chat_store **out, char *why,
                    size_t why_len) {
  (void)out;
  snprintf(why, why_len,
           "%s: this build has no SQLite module (weft_sqlite); install "
           "libsqlite3-dev and build again",
           path);
  return UV_ENOTSUP;
}

void chat_store_close(chat_store *s) { (void)s; }

int chat_store_load(chat_store *s, const char *room, size_t max,
                    int64_t *last_seq, chat_buf ***msgs, size_t *n) {
  (void)s, (void)room, (void)max, (void)last_seq, (void)msgs, (void)n;
  return UV_ENOTSUP;
}

int chat_store_append(chat_store *s, const char *room, chat_buf *const *msgs,
                      size_t n) {
  (void)s, (void)room, (void)msgs, (void)n;
  return UV_ENOTSUP;
}

int chat_store_range(chat_store *s, const char *room, int64_t after,
                     int64_t upto, size_t max, size_t max_bytes,
                     chat_buf ***msgs, size_t *n, int *more) {
  (void)s, (void)room, (void)after, (void)upto, (void)max, (void)max_bytes;
  (void)msgs, (void)n, (void)more;
  return UV_ENOTSUP;
}
#endif
