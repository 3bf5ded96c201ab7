/* sqlite_group_commit.c: committed writes per second through weft_sqlite,
 * with group commit against one transaction per write, in the same run.
 *
 *   sqlite_group_commit [WRITERS] [SECONDS] [EXECUTORS] [MAX_BATCH] [DIR]
 *
 * WRITERS tasks (default 512), spread over EXECUTORS executors (default 2),
 * each insert one chat message at a time into a WAL database with
 * synchronous=FULL (prepare, bind, step, finalize) and wait for its commit,
 * as a chat server does before it acknowledges a message. Three runs of
 * SECONDS each (default 3):
 *   group     weft_sqlite_write() with group commit (MAX_BATCH, default
 *             256, the module's default: a commit holds at most that many
 *             writes, so with a slow disk the rate is at most MAX_BATCH per
 *             fsync)
 *   single    the same with max_batch 1: one transaction, one fsync per write
 *   plain     the peer: one thread, SQLite's autocommit, one INSERT at a time
 * The database files live in DIR (default: a new directory under /tmp).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"

#if defined(__has_include)
#if __has_include(<weft_sqlite.h>)
#define BENCH_HAVE_SQLITE 1
#endif
#endif

#ifdef BENCH_HAVE_SQLITE

#include <unistd.h>

#include <weft.h>
#include <weft_sqlite.h>

static const char *const schema =
    "CREATE TABLE IF NOT EXISTS msg(id INTEGER PRIMARY KEY, room TEXT NOT NULL, "
    "body TEXT NOT NULL, ts INTEGER NOT NULL)";

typedef struct msg {
  int room;
  long seq;
} msg;

static int insert_msg(sqlite3 *db, const msg *m) {
  char room[32], body[96];
  snprintf(room, sizeof room, "room-%d", m->room);
  snprintf(body, sizeof body, "message %ld of a benchmark run, about sixty bytes long", m->seq);
  sqlite3_stmt *st = NULL;
  int rc = sqlite3_prepare_v2(db, "INSERT INTO msg(room, body, ts) VALUES(?, ?, ?)", -1, &st,
                              NULL);
  if (rc == SQLITE_OK) {
    sqlite3_bind_text(st, 1, room, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, body, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 3, m->seq);
    rc = sqlite3_step(st);
  }
  sqlite3_finalize(st);
  return rc == SQLITE_DONE ? 0 : weft_sqlite_error(rc);
}

static int put_fn(sqlite3 *db, void *arg) { return insert_msg(db, arg); }

typedef struct run {
  const char *path;
  int max_batch;
  long writers;
  double seconds;
  weft_sqlite *db;
  double deadline_ns;
  long done;   /* atomic: committed writes */
  long failed; /* atomic */
  weft_sqlite_stats stats;
  double wall_ns;
} run;

static int writer(void *arg) {
  run *r = arg;
  msg m = {(int)(__atomic_fetch_add(&r->done, 0, __ATOMIC_RELAXED) % 16), 0};
  while (bench_now_ns() < r->deadline_ns) {
    m.seq++;
    if (weft_sqlite_write(r->db, put_fn, &m) == 0)
      __atomic_fetch_add(&r->done, 1, __ATOMIC_RELAXED);
    else
      __atomic_fetch_add(&r->failed, 1, __ATOMIC_RELAXED);
  }
  return 0;
}

static int run_root(void *arg) {
  run *r = arg;
  weft_sqlite_opts opts = {.max_batch = r->max_batch};
  int err = weft_sqlite_open(r->path, &opts, &r->db);
  if (err == 0) err = weft_sqlite_exec(r->db, schema);
  if (err != 0) {
    fprintf(stderr, "sqlite_group_commit: %s: %s\n", r->path, weft_strerror(err));
    return err;
  }
  double t0 = bench_now_ns();
  r->deadline_ns = t0 + r->seconds * 1e9;
  weft_group *g = weft_group_open(WEFT_COLLECT);
  for (long i = 0; i < r->writers; i++) {
    weft_task_opts topts = {.executor = WEFT_EXEC_NEXT, .stack_size = 32 * 1024};
    weft_spawn_opts(g, &topts, writer, r);
  }
  weft_group_join(g);
  r->wall_ns = bench_now_ns() - t0;
  weft_sqlite_get_stats(r->db, &r->stats);
  weft_sqlite_close(r->db);
  return 0;
}

/* The peer: SQLite alone, on this thread, each INSERT its own transaction. */
static double run_plain(const char *path, double seconds, long *done) {
  sqlite3 *db = NULL;
  if (sqlite3_open(path, &db) != SQLITE_OK) return 0;
  sqlite3_exec(db, "PRAGMA journal_mode=WAL", NULL, NULL, NULL);
  sqlite3_exec(db, "PRAGMA synchronous=FULL", NULL, NULL, NULL);
  sqlite3_exec(db, schema, NULL, NULL, NULL);
  double t0 = bench_now_ns(), end = t0 + seconds * 1e9;
  msg m = {0, 0};
  *done = 0;
  while (bench_now_ns() < end) {
    m.seq++;
    if (insert_msg(db, &m) == 0) ++*done;
  }
  double wall = bench_now_ns() - t0;
  sqlite3_close(db);
  return wall;
}

int main(int argc, char **argv) {
  const char *prog = "sqlite_group_commit";
  long writers = bench_arg_long(prog, argc, argv, 1, 512);
  long seconds = bench_arg_long(prog, argc, argv, 2, 3);
  long executors = bench_arg_long(prog, argc, argv, 3, 2);
  long max_batch = bench_arg_long(prog, argc, argv, 4, 256);
  char tmpl[] = "/tmp/weft-bench-sqlite-XXXXXX";
  const char *dir = argc > 5 ? argv[5] : mkdtemp(tmpl);
  if (dir == NULL) {
    perror("mkdtemp");
    return 1;
  }
  weft_log_set_level(WEFT_LOG_WARN);
  printf("sqlite_group_commit: %ld writers on %ld executors, %ld s per run, WAL, "
         "synchronous=FULL, max_batch %ld, files in %s\n",
         writers, executors, seconds, max_batch, dir);
  printf("%-8s %10s %10s %9s %12s %12s\n", "mode", "writes", "commits", "per-txn", "writes/s",
         "vs plain");
  const struct {
    const char *name;
    int max_batch;
  } modes[] = {{"group", (int)max_batch}, {"single", 1}};
  double rates[2] = {0, 0};
  char path[4096];
  run runs[2];
  for (int i = 0; i < 2; i++) {
    snprintf(path, sizeof path, "%s/%s.db", dir, modes[i].name);
    runs[i] = (run){.path = path, .max_batch = modes[i].max_batch, .writers = writers,
                    .seconds = (double)seconds};
    weft_opts o = {.executors = (int)executors};
    if (weft_main_opts(&o, run_root, &runs[i]) != 0) return 1;
    rates[i] = (double)runs[i].done / (runs[i].wall_ns / 1e9);
  }
  long plain_done = 0;
  snprintf(path, sizeof path, "%s/plain.db", dir);
  double plain_wall = run_plain(path, (double)seconds, &plain_done);
  double plain_rate = plain_wall > 0 ? (double)plain_done / (plain_wall / 1e9) : 0;
  for (int i = 0; i < 2; i++)
    printf("%-8s %10ld %10llu %9.1f %12.0f %11.1fx%s\n", modes[i].name, runs[i].done,
           (unsigned long long)runs[i].stats.commits,
           runs[i].stats.commits ? (double)runs[i].stats.writes / (double)runs[i].stats.commits
                                 : 0.0,
           rates[i], plain_rate > 0 ? rates[i] / plain_rate : 0.0,
           runs[i].failed ? "  (some writes failed)" : "");
  printf("%-8s %10ld %10ld %9.1f %12.0f %11.1fx\n", "plain", plain_done, plain_done, 1.0,
         plain_rate, 1.0);
  printf("group / single: %.1fx\n", rates[1] > 0 ? rates[0] / rates[1] : 0.0);
  if (argc <= 5) {
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "%s: could not remove %s\n", prog, dir);
  }
  return 0;
}

#else

int main(void) {
  printf("sqlite_group_commit: weft_sqlite was not built (libsqlite3-dev missing)\n");
  return 0;
}

#endif
