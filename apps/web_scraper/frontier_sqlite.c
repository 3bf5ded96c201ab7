/* frontier_sqlite.c: the frontier in SQLite, for --state DIR.
 *
 * One table holds every URL seen, in the order it was first seen:
 *
 *   urls(seq INTEGER PRIMARY KEY, url TEXT UNIQUE, host, depth, referrer,
 *        flags, state)        state: 0 queued, 1 done, 2 being recorded,
 *                             3 seen only
 *   meta(key, value)          out_start: the output's size when the last
 *                             run started writing
 *
 * The UNIQUE index is the seen set, and a partial index on (host, depth,
 * seq) of the queued rows gives each host's queue in order of depth, then
 * of discovery. Memory stays bounded
 * whatever the size of the crawl: SQLite's page cache, and up to HEAD_BATCH
 * items read ahead per host. An item popped stays queued in the database
 * until done() marks it, after its record is written, so a crawl stopped
 * at any point queues again whatever it had not finished. Just before its
 * record is written an item is marked 2: a run that finds such items (the
 * process was killed in between) looks for their records in the output
 * written since out_start and marks each done or queued again, so that no
 * page is fetched or recorded twice. Every statement
 * runs on the database's own thread (weft_sqlite); the calling task waits.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <weft.h>
#include <weft_sqlite.h>

#include "frontier.h"
#include "output.h"
#include "strmap.h"

/* Items read ahead from one host's queue. */
#define HEAD_BATCH 32

/* The read-ahead of one host. */
typedef struct head_buf {
  ws_item items[HEAD_BATCH];
  int n, pos;
  int last_depth;   /* the (depth, seq) of the last item read: the */
  int64_t last_seq; /* next read starts after it */
} head_buf;

enum { ST_ADD, ST_SEEN, ST_NEXT, ST_DONE, ST_RECORDING, ST_COUNT };

static const char *const sql_text[ST_COUNT] = {
    "INSERT OR IGNORE INTO urls(url, host, depth, referrer, flags, state) "
    "VALUES(?1, ?2, ?3, ?4, ?5, 0)",
    "INSERT OR IGNORE INTO urls(url, host, depth, referrer, flags, state) "
    "VALUES(?1, '', 0, NULL, 0, 3)",
    "SELECT seq, url, depth, referrer, flags FROM urls "
    "WHERE host = ?1 AND state = 0 AND (depth, seq) > (?2, ?3) "
    "ORDER BY depth, seq LIMIT ?4",
    "UPDATE urls SET state = 1 WHERE url = ?1 AND state IN (0, 2)",
    "UPDATE urls SET state = 2 WHERE url = ?1 AND state = 0",
};

typedef struct sql_frontier {
  ws_frontier base;
  weft_sqlite *db;
  weft_mutex *lock; /* one read-ahead at a time */
  sqlite3_stmt *st[ST_COUNT]; /* used on the database's thread only */
  ws_strmap heads;            /* host -> head_buf */
  uint64_t seen, queued;
} sql_frontier;

static const char schema[] =
    "CREATE TABLE IF NOT EXISTS urls("
    "  seq INTEGER PRIMARY KEY,"
    "  url TEXT NOT NULL UNIQUE,"
    "  host TEXT NOT NULL,"
    "  depth INTEGER NOT NULL,"
    "  referrer TEXT,"
    "  flags INTEGER NOT NULL,"
    "  state INTEGER NOT NULL);"
    "CREATE INDEX IF NOT EXISTS urls_queued ON urls(host, depth, seq) "
    "WHERE state = 0;"
    "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value INTEGER);";

/* The statement i, prepared on first use (on the database's thread). */
static sqlite3_stmt *stmt(sql_frontier *s, sqlite3 *db, int i) {
  if (s->st[i] == NULL &&
      sqlite3_prepare_v3(db, sql_text[i], -1, SQLITE_PREPARE_PERSISTENT,
                         &s->st[i], NULL) != SQLITE_OK)
    return NULL;
  sqlite3_reset(s->st[i]);
  sqlite3_clear_bindings(s->st[i]);
  return s->st[i];
}

/* ---- Calls run on the database's thread --------------------------------- */

typedef struct add_call {
  sql_frontier *s;
  const char *host;
  const ws_item *it;
  int seen_only;
  int added;
} add_call;

static int add_fn(sqlite3 *db, void *arg) {
  add_call *c = arg;
  sqlite3_stmt *q = stmt(c->s, db, c->seen_only ? ST_SEEN : ST_ADD);
  if (q == NULL) return weft_sqlite_error(sqlite3_errcode(db));
  sqlite3_bind_text(q, 1, c->it->url, -1, SQLITE_STATIC);
  if (!c->seen_only) {
    sqlite3_bind_text(q, 2, c->host, -1, SQLITE_STATIC);
    sqlite3_bind_int(q, 3, c->it->depth);
    if (c->it->referrer != NULL)
      sqlite3_bind_text(q, 4, c->it->referrer, -1, SQLITE_STATIC);
    sqlite3_bind_int(q, 5, (int)c->it->flags);
  }
  int rc = sqlite3_step(q);
  c->added = rc == SQLITE_DONE && sqlite3_changes(db) == 1;
  sqlite3_reset(q);
  return rc == SQLITE_DONE ? 0 : weft_sqlite_error(rc);
}

typedef struct next_call {
  sql_frontier *s;
  const char *host;
  head_buf *hb;
} next_call;

static int next_fn(sqlite3 *db, void *arg) {
  next_call *c = arg;
  sqlite3_stmt *q = stmt(c->s, db, ST_NEXT);
  if (q == NULL) return weft_sqlite_error(sqlite3_errcode(db));
  sqlite3_bind_text(q, 1, c->host, -1, SQLITE_STATIC);
  sqlite3_bind_int(q, 2, c->hb->last_depth);
  sqlite3_bind_int64(q, 3, c->hb->last_seq);
  sqlite3_bind_int(q, 4, HEAD_BATCH);
  int rc;
  head_buf *hb = c->hb;
  hb->n = hb->pos = 0;
  while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
    ws_item *it = &hb->items[hb->n];
    const char *url = (const char *)sqlite3_column_text(q, 1);
    const char *ref = (const char *)sqlite3_column_text(q, 3);
    it->url = strdup(url ? url : "");
    it->referrer = ref ? strdup(ref) : NULL;
    it->depth = sqlite3_column_int(q, 2);
    it->flags = (unsigned)sqlite3_column_int(q, 4);
    hb->last_seq = sqlite3_column_int64(q, 0);
    hb->last_depth = it->depth;
    hb->n++;
    if (it->url == NULL) {
      rc = SQLITE_NOMEM;
      break;
    }
  }
  sqlite3_reset(q);
  return rc == SQLITE_DONE ? 0 : weft_sqlite_error(rc);
}

typedef struct done_call {
  sql_frontier *s;
  const char *url;
  int which; /* ST_DONE or ST_RECORDING */
} done_call;

static int done_fn(sqlite3 *db, void *arg) {
  done_call *c = arg;
  sqlite3_stmt *q = stmt(c->s, db, c->which);
  if (q == NULL) return weft_sqlite_error(sqlite3_errcode(db));
  sqlite3_bind_text(q, 1, c->url, -1, SQLITE_STATIC);
  int rc = sqlite3_step(q);
  sqlite3_reset(q);
  return rc == SQLITE_DONE ? 0 : weft_sqlite_error(rc);
}

/* The queued counts by host and depth, read at open. */
typedef struct queued_row {
  char *host;
  int depth;
  int64_t n;
} queued_row;

typedef struct counts_call {
  queued_row *rows;
  size_t n, cap;
  int64_t seen;
} counts_call;

static int counts_fn(sqlite3 *db, void *arg) {
  counts_call *c = arg;
  sqlite3_stmt *q;
  int rc = sqlite3_prepare_v2(db, "SELECT count(*) FROM urls", -1, &q, NULL);
  if (rc != SQLITE_OK) return weft_sqlite_error(rc);
  if (sqlite3_step(q) == SQLITE_ROW) c->seen = sqlite3_column_int64(q, 0);
  sqlite3_finalize(q);
  rc = sqlite3_prepare_v2(db,
                          "SELECT host, depth, count(*) FROM urls WHERE state = 0 "
                          "GROUP BY host, depth",
                          -1, &q, NULL);
  if (rc != SQLITE_OK) return weft_sqlite_error(rc);
  while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
    if (c->n == c->cap) {
      size_t cap = c->cap ? c->cap * 2 : 16;
      queued_row *g = realloc(c->rows, cap * sizeof *g);
      if (g == NULL) {
        rc = SQLITE_NOMEM;
        break;
      }
      c->rows = g;
      c->cap = cap;
    }
    queued_row *r = &c->rows[c->n];
    r->host = strdup((const char *)sqlite3_column_text(q, 0));
    r->depth = sqlite3_column_int(q, 1);
    r->n = sqlite3_column_int64(q, 2);
    if (r->host == NULL) {
      rc = SQLITE_NOMEM;
      break;
    }
    c->n++;
  }
  sqlite3_finalize(q);
  return rc == SQLITE_DONE ? 0 : weft_sqlite_error(rc);
}

static int finalize_fn(sqlite3 *db, void *arg) {
  (void)db;
  sql_frontier *s = arg;
  for (int i = 0; i < ST_COUNT; i++) {
    sqlite3_finalize(s->st[i]);
    s->st[i] = NULL;
  }
  return 0;
}

/* ---- The operations ----------------------------------------------------- */

static int sql_mark_seen(ws_frontier *f, const char *url) {
  sql_frontier *s = (sql_frontier *)f;
  ws_item it = {.url = (char *)url};
  add_call c = {.s = s, .it = &it, .seen_only = 1};
  int rc = weft_sqlite_write(s->db, add_fn, &c);
  if (rc != 0) return rc;
  if (c.added) s->seen++;
  return c.added;
}

static int sql_add(ws_frontier *f, const char *host, const ws_item *it) {
  sql_frontier *s = (sql_frontier *)f;
  add_call c = {.s = s, .host = host, .it = it};
  int rc = weft_sqlite_write(s->db, add_fn, &c);
  if (rc != 0) return rc;
  if (c.added) {
    s->seen++;
    s->queued++;
  }
  return c.added;
}

/* The read-ahead of host with at least one item, read when it is empty;
 * NULL when the host has nothing queued. */
static head_buf *head_of(sql_frontier *s, const char *host, int *err) {
  *err = 0;
  head_buf *hb = ws_strmap_get(&s->heads, host);
  if (hb != NULL && hb->pos < hb->n) return hb;
  if (hb == NULL) {
    hb = calloc(1, sizeof *hb);
    if (hb == NULL || ws_strmap_put(&s->heads, host, hb) != 0) {
      free(hb);
      *err = UV_ENOMEM;
      return NULL;
    }
  }
  /* One read-ahead at a time: another task may have read while this one
   * waited for the lock. */
  int rc = weft_mutex_lock(s->lock);
  if (rc != 0) {
    *err = rc;
    return NULL;
  }
  if (hb->pos >= hb->n) {
    next_call c = {.s = s, .host = host, .hb = hb};
    rc = weft_sqlite_read(s->db, next_fn, &c);
  }
  weft_mutex_unlock(s->lock);
  if (rc != 0) {
    *err = rc;
    return NULL;
  }
  return hb->pos < hb->n ? hb : NULL;
}

static int sql_head_depth(ws_frontier *f, const char *host) {
  int err;
  head_buf *hb = head_of((sql_frontier *)f, host, &err);
  return hb != NULL ? hb->items[hb->pos].depth : -1;
}

static int sql_pop(ws_frontier *f, const char *host, ws_item *out) {
  sql_frontier *s = (sql_frontier *)f;
  memset(out, 0, sizeof *out);
  int err;
  head_buf *hb = head_of(s, host, &err);
  if (hb == NULL) return err != 0 ? err : 1;
  *out = hb->items[hb->pos];
  memset(&hb->items[hb->pos], 0, sizeof hb->items[0]);
  hb->pos++;
  if (s->queued > 0) s->queued--;
  return 0;
}

static int sql_done(ws_frontier *f, const ws_item *it) {
  sql_frontier *s = (sql_frontier *)f;
  done_call c = {.s = s, .url = it->url, .which = ST_DONE};
  return weft_sqlite_write(s->db, done_fn, &c);
}

static int sql_recording(ws_frontier *f, ws_item *it) {
  sql_frontier *s = (sql_frontier *)f;
  done_call c = {.s = s, .url = it->url, .which = ST_RECORDING};
  int rc = weft_sqlite_write(s->db, done_fn, &c);
  return rc == 0 ? 1 : rc;
}

/* ---- Items being recorded when the last run was killed ------------------ */

typedef struct unsure_call {
  char **urls;
  size_t n, cap;
  int64_t out_start; /* -1: not known */
  int *found;        /* for the write */
  int64_t new_start; /* -1: leave it */
} unsure_call;

static int unsure_read_fn(sqlite3 *db, void *arg) {
  unsure_call *c = arg;
  sqlite3_stmt *q;
  int rc = sqlite3_prepare_v2(db, "SELECT url FROM urls WHERE state = 2", -1, &q, NULL);
  if (rc != SQLITE_OK) return weft_sqlite_error(rc);
  while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
    if (c->n == c->cap) {
      size_t cap = c->cap ? c->cap * 2 : 16;
      char **g = realloc(c->urls, cap * sizeof *g);
      if (g == NULL) {
        rc = SQLITE_NOMEM;
        break;
      }
      c->urls = g;
      c->cap = cap;
    }
    c->urls[c->n] = strdup((const char *)sqlite3_column_text(q, 0));
    if (c->urls[c->n] == NULL) {
      rc = SQLITE_NOMEM;
      break;
    }
    c->n++;
  }
  sqlite3_finalize(q);
  if (rc != SQLITE_DONE) return weft_sqlite_error(rc);
  c->out_start = -1;
  rc = sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE key = 'out_start'", -1,
                          &q, NULL);
  if (rc != SQLITE_OK) return weft_sqlite_error(rc);
  if (sqlite3_step(q) == SQLITE_ROW) c->out_start = sqlite3_column_int64(q, 0);
  sqlite3_finalize(q);
  return 0;
}

static int unsure_write_fn(sqlite3 *db, void *arg) {
  unsure_call *c = arg;
  sqlite3_stmt *q;
  int rc = sqlite3_prepare_v2(db, "UPDATE urls SET state = ?2 WHERE url = ?1", -1, &q,
                              NULL);
  if (rc != SQLITE_OK) return weft_sqlite_error(rc);
  for (size_t i = 0; i < c->n && rc == SQLITE_OK; i++) {
    sqlite3_bind_text(q, 1, c->urls[i], -1, SQLITE_STATIC);
    sqlite3_bind_int(q, 2, c->found[i] ? 1 : 0);
    rc = sqlite3_step(q) == SQLITE_DONE ? SQLITE_OK : sqlite3_errcode(db);
    sqlite3_reset(q);
  }
  sqlite3_finalize(q);
  if (rc != SQLITE_OK) return weft_sqlite_error(rc);
  if (c->new_start < 0) return 0;
  rc = sqlite3_prepare_v2(db, "INSERT OR REPLACE INTO meta(key, value) VALUES('out_start', ?1)",
                          -1, &q, NULL);
  if (rc != SQLITE_OK) return weft_sqlite_error(rc);
  sqlite3_bind_int64(q, 1, c->new_start);
  rc = sqlite3_step(q);
  sqlite3_finalize(q);
  return rc == SQLITE_DONE ? 0 : weft_sqlite_error(rc);
}

/* Settles the items the last run was recording when it was killed: done
 * when the output holds their record, queued again when not. Then notes
 * where this run starts writing. */
static int settle_unsure(sql_frontier *s, const ws_output_info *oi) {
  unsure_call c = {0};
  int rc = weft_sqlite_read(s->db, unsure_read_fn, &c);
  if (rc == 0 && c.n > 0) {
    c.found = calloc(c.n, sizeof *c.found);
    if (c.found == NULL) rc = UV_ENOMEM;
  }
  if (rc == 0 && c.n > 0) {
    if (oi->path != NULL) {
      int e = ws_output_find(oi->path, c.out_start > 0 ? c.out_start : 0, c.urls, c.n,
                             c.found);
      if (e != 0)
        weft_log(WEFT_LOG_WARN, "cannot read the output to resume: pages fetched again",
                 "path=%s error=\"%s\"", oi->path, weft_strerror(e));
    } else {
      weft_log(WEFT_LOG_WARN,
               "the last run was killed while recording pages and the output is "
               "not a file to look in: those pages are fetched again",
               "pages=%zu", c.n);
    }
    size_t hit = 0;
    for (size_t i = 0; i < c.n; i++) hit += c.found[i] != 0;
    weft_log(WEFT_LOG_INFO, "pages being recorded when the last run stopped",
             "pages=%zu recorded=%zu queued_again=%zu", c.n, hit, c.n - hit);
  }
  c.new_start = oi->path != NULL ? oi->size : -1;
  if (rc == 0 && (c.n > 0 || c.new_start >= 0))
    rc = weft_sqlite_write(s->db, unsure_write_fn, &c);
  for (size_t i = 0; i < c.n; i++) free(c.urls[i]);
  free(c.urls);
  free(c.found);
  return rc;
}

static int sql_each_queued(ws_frontier *f,
                           int (*fn)(void *, const char *, int, int64_t),
                           void *ctx) {
  sql_frontier *s = (sql_frontier *)f;
  counts_call c = {0};
  int rc = weft_sqlite_read(s->db, counts_fn, &c);
  s->seen = (uint64_t)c.seen;
  s->queued = 0;
  for (size_t i = 0; i < c.n; i++) {
    if (rc == 0) rc = fn(ctx, c.rows[i].host, c.rows[i].depth, c.rows[i].n);
    s->queued += (uint64_t)c.rows[i].n;
    free(c.rows[i].host);
  }
  free(c.rows);
  return rc;
}

static uint64_t sql_seen_count(ws_frontier *f) {
  return ((sql_frontier *)f)->seen;
}

static uint64_t sql_queued_count(ws_frontier *f) {
  return ((sql_frontier *)f)->queued;
}

static void free_head(void *ctx, const char *key, void *value) {
  (void)ctx;
  (void)key;
  head_buf *hb = value;
  for (int i = hb->pos; i < hb->n; i++) ws_item_clear(&hb->items[i]);
  free(hb);
}

static void sql_close(ws_frontier *f) {
  sql_frontier *s = (sql_frontier *)f;
  if (s->db != NULL) {
    weft_sqlite_read(s->db, finalize_fn, s);
    weft_sqlite_close(s->db);
  }
  ws_strmap_each(&s->heads, free_head, NULL);
  ws_strmap_free(&s->heads);
  if (s->lock != NULL) weft_mutex_free(s->lock);
  free(s);
}

static const ws_frontier_ops sql_ops = {
    .mark_seen = sql_mark_seen,
    .add = sql_add,
    .head_depth = sql_head_depth,
    .pop = sql_pop,
    .recording = sql_recording,
    .done = sql_done,
    .each_queued = sql_each_queued,
    .seen_count = sql_seen_count,
    .queued_count = sql_queued_count,
    .close = sql_close,
};

int ws_frontier_sqlite(const char *dir, const ws_output_info *oi,
                       ws_frontier **out) {
  *out = NULL;
  if (mkdir(dir, 0777) != 0 && errno != EEXIST) {
    int err = -errno;
    weft_log(WEFT_LOG_ERROR, "cannot make the state directory", "dir=%s error=\"%s\"",
             dir, weft_strerror(err));
    return err;
  }
  sql_frontier *s = calloc(1, sizeof *s);
  if (s == NULL) return UV_ENOMEM;
  s->base.ops = &sql_ops;
  s->lock = weft_mutex_new();
  size_t n = strlen(dir) + 16;
  char *path = malloc(n);
  if (s->lock == NULL || path == NULL) {
    free(path);
    sql_close(&s->base);
    return UV_ENOMEM;
  }
  snprintf(path, n, "%s/frontier.db", dir);
  /* synchronous=NORMAL: in WAL mode a commit survives the process dying;
   * only a power cut may lose the last ones, and the records written
   * meanwhile with them. */
  weft_sqlite_opts o = {.synchronous_normal = 1};
  int rc = weft_sqlite_open(path, &o, &s->db);
  free(path);
  if (rc == 0) rc = weft_sqlite_exec(s->db, schema);
  if (rc == 0) rc = settle_unsure(s, oi);
  if (rc != 0) {
    sql_close(&s->base);
    return rc;
  }
  *out = &s->base;
  return 0;
}
