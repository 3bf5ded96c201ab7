// Tests of the SQLite module (runtime/ext/sqlite): databases in a temporary
// directory, used from tasks of one or two executors.
//
// Proves: group commit groups the writes of many tasks on two executors
// (fewer commits than writes) and every write is there after the database
// is reopened; a failing write is rolled back alone while the rest of its
// batch commits; data survives close and open; a full database
// (max_page_count) fails a write with UV_ENOSPC and keeps what committed;
// a read-only database reads and refuses writes; a path that cannot be
// opened and bad SQL give named errors. Built only with the module; without
// it, one test says so.

#include <catch2/catch.hpp>

#if defined(__has_include)
#if __has_include(<weft_sqlite.h>)
#define WEFT_TEST_HAVE_SQLITE 1
#endif
#endif

#ifdef WEFT_TEST_HAVE_SQLITE

#include <string.h>

#include <string>
#include <vector>

#include "closures.h"
#include "support.h"
#include "tempdir_support.h"
#include "weft.h"
#include "weft_sqlite.h"

namespace {

const char *const kSchema =
    "CREATE TABLE IF NOT EXISTS msg(id INTEGER PRIMARY KEY, body TEXT NOT NULL UNIQUE)";

// A row to insert (or, with fail set, two rows and then a failure).
struct Put {
  int64_t id;
  std::string body;
  bool fail = false;
};

int step_insert(sqlite3 *db, int64_t id, const char *body, int len) {
  sqlite3_stmt *st = nullptr;
  int rc = sqlite3_prepare_v2(db, "INSERT INTO msg(id, body) VALUES(?, ?)", -1, &st, nullptr);
  if (rc == SQLITE_OK) {
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_text(st, 2, body, len, SQLITE_TRANSIENT);
    rc = sqlite3_step(st);
  }
  sqlite3_finalize(st);
  return rc == SQLITE_DONE ? 0 : weft_sqlite_error(rc);
}

int put_fn(sqlite3 *db, void *arg) {
  auto *p = static_cast<Put *>(arg);
  int r = step_insert(db, p->id, p->body.c_str(), (int)p->body.size());
  if (r == 0 && p->fail) {
    // A second row, then a duplicate body: the whole write must go.
    r = step_insert(db, p->id + 1000000, "fail-extra", -1);
    if (r == 0) r = step_insert(db, p->id + 2000000, p->body.c_str(), (int)p->body.size());
  }
  return r;
}

// SELECT COUNT(*) (or another one-integer query).
struct Count {
  const char *sql;
  int64_t n = -1;
};

int count_fn(sqlite3 *db, void *arg) {
  auto *c = static_cast<Count *>(arg);
  sqlite3_stmt *st = nullptr;
  int rc = sqlite3_prepare_v2(db, c->sql, -1, &st, nullptr);
  if (rc == SQLITE_OK) {
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
      c->n = sqlite3_column_int64(st, 0);
      rc = SQLITE_OK;
    }
  }
  sqlite3_finalize(st);
  return weft_sqlite_error(rc);
}

int64_t count_rows(weft_sqlite *db, const char *sql, int *err) {
  Count c{sql};
  *err = weft_sqlite_read(db, count_fn, &c);
  return c.n;
}

}  // namespace

TEST_CASE("group commit: writers on two executors share transactions, all durable", "[sqlite]") {
  TempDir dir("weft-sqlite");
  REQUIRE(!dir.path.empty());
  std::string path = dir / "chat.db";
  const int kTasks = 64, kPerTask = 20;
  int open_err = -1, schema_err = -1, errors = 0, first_error = 0;
  weft_sqlite_stats stats{};
  int64_t rows = -1, distinct = -1;
  int count_err = -1;
  int rc = run(2, [&]() -> int {
    weft_sqlite *db = nullptr;
    open_err = weft_sqlite_open(path.c_str(), nullptr, &db);
    if (open_err != 0) return 0;
    schema_err = weft_sqlite_exec(db, kSchema);
    Tasks tasks(WEFT_COLLECT);
    for (int t = 0; t < kTasks; t++) {
      tasks.spawn(1 + t % 2, [&, t]() -> int {
        for (int i = 0; i < kPerTask; i++) {
          Put p{(int64_t)t * kPerTask + i, "m" + std::to_string(t) + "." + std::to_string(i)};
          int r = weft_sqlite_write(db, put_fn, &p);
          if (r != 0 && __atomic_fetch_add(&errors, 1, __ATOMIC_RELAXED) == 0) first_error = r;
        }
        return 0;
      });
    }
    tasks.join();
    weft_sqlite_get_stats(db, &stats);
    weft_sqlite_close(db);
    // Reopened: every acknowledged write is there.
    open_err = weft_sqlite_open(path.c_str(), nullptr, &db);
    if (open_err != 0) return 0;
    rows = count_rows(db, "SELECT COUNT(*) FROM msg", &count_err);
    distinct = count_rows(db, "SELECT COUNT(DISTINCT body) FROM msg", &count_err);
    weft_sqlite_close(db);
    return 0;
  });
  REQUIRE(rc == 0);
  REQUIRE(open_err == 0);
  REQUIRE(schema_err == 0);
  INFO("first error: " << weft_strerror(first_error));
  REQUIRE(errors == 0);
  CHECK(stats.writes == (uint64_t)kTasks * kPerTask);
  CHECK(stats.commits < stats.writes);
  CHECK(stats.commits >= 1);
  REQUIRE(count_err == 0);
  CHECK(rows == kTasks * kPerTask);
  CHECK(distinct == kTasks * kPerTask);
}

TEST_CASE("a failing write is rolled back alone and the rest of its batch commits", "[sqlite]") {
  TempDir dir("weft-sqlite");
  REQUIRE(!dir.path.empty());
  std::string path = dir / "fail.db";
  const int kWriters = 40, kBad = 17;
  std::vector<int> results(kWriters, -1);
  int open_err = -1;
  int64_t rows = -1, extra = -1;
  int count_err = -1;
  weft_sqlite_stats stats{};
  int rc = run(1, [&]() -> int {
    weft_sqlite *db = nullptr;
    open_err = weft_sqlite_open(path.c_str(), nullptr, &db);
    if (open_err != 0) return 0;
    weft_sqlite_exec(db, kSchema);
    Tasks tasks(WEFT_COLLECT);
    for (int i = 0; i < kWriters; i++) {
      tasks.spawn(0, [&, i]() -> int {
        // Writer kBad inserts its row and an extra one, then a duplicate
        // of its own body: a UNIQUE failure after two good inserts.
        Put p{i, "row" + std::to_string(i), i == kBad};
        results[i] = weft_sqlite_write(db, put_fn, &p);
        return 0;
      });
    }
    tasks.join();
    weft_sqlite_get_stats(db, &stats);
    rows = count_rows(db, "SELECT COUNT(*) FROM msg", &count_err);
    extra = count_rows(db, "SELECT COUNT(*) FROM msg WHERE body = 'fail-extra' OR id = 17",
                       &count_err);
    weft_sqlite_close(db);
    return 0;
  });
  REQUIRE(rc == 0);
  REQUIRE(open_err == 0);
  int unique = weft_sqlite_error(SQLITE_CONSTRAINT_UNIQUE);
  CHECK(unique < 0);
  CHECK(std::string(weft_strerror(unique)) == "constraint failed");
  CHECK(std::string(weft_err_name(unique)) == "SQLITE_CONSTRAINT");
  for (int i = 0; i < kWriters; i++) {
    INFO("writer " << i << ": " << weft_strerror(results[i]));
    CHECK(results[i] == (i == kBad ? unique : 0));
  }
  REQUIRE(count_err == 0);
  CHECK(rows == kWriters - 1);
  CHECK(extra == 0);
  // The writes queued behind the first one shared transactions.
  CHECK(stats.writes == (uint64_t)kWriters - 1);
  CHECK(stats.commits < stats.writes);
}

TEST_CASE("what was written survives close and open", "[sqlite]") {
  TempDir dir("weft-sqlite");
  REQUIRE(!dir.path.empty());
  std::string path = dir / "durable.db";
  int errs[4] = {-1, -1, -1, -1};
  int64_t rows = -1;
  int count_err = -1;
  int rc = run(1, [&]() -> int {
    for (int round = 0; round < 3; round++) {
      weft_sqlite *db = nullptr;
      errs[round] = weft_sqlite_open(path.c_str(), nullptr, &db);
      if (errs[round] != 0) return 0;
      weft_sqlite_exec(db, kSchema);
      Put p{round, "round" + std::to_string(round)};
      errs[round] = weft_sqlite_write(db, put_fn, &p);
      weft_sqlite_close(db);
    }
    weft_sqlite *db = nullptr;
    errs[3] = weft_sqlite_open(path.c_str(), nullptr, &db);
    if (errs[3] != 0) return 0;
    rows = count_rows(db, "SELECT COUNT(*) FROM msg WHERE body LIKE 'round%'", &count_err);
    weft_sqlite_close(db);
    return 0;
  });
  REQUIRE(rc == 0);
  for (int e : errs) CHECK(e == 0);
  CHECK(count_err == 0);
  CHECK(rows == 3);
}

TEST_CASE("a full database fails the write that does not fit with UV_ENOSPC", "[sqlite]") {
  TempDir dir("weft-sqlite");
  REQUIRE(!dir.path.empty());
  std::string path = dir / "full.db";
  const int kSmall = 30;
  std::vector<int> small(kSmall, -1);
  int big = 1, exec_err = -1, open_err = -1, after = -1, count_err = -1;
  int64_t rows = -1;
  int rc = run(1, [&]() -> int {
    weft_sqlite *db = nullptr;
    open_err = weft_sqlite_open(path.c_str(), nullptr, &db);
    if (open_err != 0) return 0;
    exec_err = weft_sqlite_exec(db, kSchema);
    // 64 pages of 4 KiB: room for the small rows, not for 1 MB.
    if (exec_err == 0) exec_err = weft_sqlite_exec(db, "PRAGMA max_page_count = 64");
    Tasks tasks(WEFT_COLLECT);
    tasks.spawn(0, [&]() -> int {
      Put p{999, std::string(1 << 20, 'x')};
      big = weft_sqlite_write(db, put_fn, &p);
      return 0;
    });
    for (int i = 0; i < kSmall; i++) {
      tasks.spawn(0, [&, i]() -> int {
        Put p{i, "small" + std::to_string(i)};
        small[i] = weft_sqlite_write(db, put_fn, &p);
        return 0;
      });
    }
    tasks.join();
    // The database still takes what fits.
    Put p{5000, "after"};
    after = weft_sqlite_write(db, put_fn, &p);
    rows = count_rows(db, "SELECT COUNT(*) FROM msg", &count_err);
    weft_sqlite_close(db);
    return 0;
  });
  REQUIRE(rc == 0);
  REQUIRE(open_err == 0);
  REQUIRE(exec_err == 0);
  CHECK(big == UV_ENOSPC);
  for (int i = 0; i < kSmall; i++) CHECK(small[i] == 0);
  CHECK(after == 0);
  CHECK(count_err == 0);
  CHECK(rows == kSmall + 1);
}

TEST_CASE("a read-only database reads and refuses writes", "[sqlite]") {
  TempDir dir("weft-sqlite");
  REQUIRE(!dir.path.empty());
  std::string path = dir / "ro.db";
  int create_err = -1, ro_err = -1, write_err = 0, exec_err = 0, count_err = -1, missing = 0;
  int64_t rows = -1;
  int rc = run(1, [&]() -> int {
    weft_sqlite *db = nullptr;
    create_err = weft_sqlite_open(path.c_str(), nullptr, &db);
    if (create_err != 0) return 0;
    weft_sqlite_exec(db, kSchema);
    Put p{1, "one"};
    create_err = weft_sqlite_write(db, put_fn, &p);
    weft_sqlite_close(db);

    weft_sqlite_opts opts{};
    opts.read_only = 1;
    ro_err = weft_sqlite_open(path.c_str(), &opts, &db);
    if (ro_err != 0) return 0;
    rows = count_rows(db, "SELECT COUNT(*) FROM msg", &count_err);
    Put q{2, "two"};
    write_err = weft_sqlite_write(db, put_fn, &q);
    exec_err = weft_sqlite_exec(db, "INSERT INTO msg(id, body) VALUES(3, 'three')");
    weft_sqlite_close(db);

    // Read-only never creates.
    weft_sqlite *none = nullptr;
    std::string absent = dir / "absent.db";
    missing = weft_sqlite_open(absent.c_str(), &opts, &none);
    if (none != nullptr) weft_sqlite_close(none);
    return 0;
  });
  REQUIRE(rc == 0);
  REQUIRE(create_err == 0);
  REQUIRE(ro_err == 0);
  CHECK(count_err == 0);
  CHECK(rows == 1);
  CHECK(write_err == UV_EROFS);
  CHECK(exec_err == UV_EROFS);
  CHECK(missing == weft_sqlite_error(SQLITE_CANTOPEN));
}

TEST_CASE("bad paths, bad SQL and bad arguments give named errors", "[sqlite]") {
  TempDir dir("weft-sqlite");
  REQUIRE(!dir.path.empty());
  int bad_path = 0, null_path = 0, null_out = 0, open_err = -1, bad_sql = 0, good_after = -1;
  int outside = 0;
  weft_sqlite *out = reinterpret_cast<weft_sqlite *>(&bad_path);
  int rc = run(1, [&]() -> int {
    std::string nowhere = dir / "no/such/dir/x.db";
    bad_path = weft_sqlite_open(nowhere.c_str(), nullptr, &out);
    weft_sqlite *tmp = nullptr;
    null_path = weft_sqlite_open(nullptr, nullptr, &tmp);
    null_out = weft_sqlite_open("x.db", nullptr, nullptr);
    std::string path = dir / "ok.db";
    weft_sqlite *db = nullptr;
    open_err = weft_sqlite_open(path.c_str(), nullptr, &db);
    if (open_err != 0) return 0;
    bad_sql = weft_sqlite_exec(db, "CREATE TABLEE nope(x)");
    good_after = weft_sqlite_exec(db, kSchema);
    weft_sqlite_close(db);
    return 0;
  });
  weft_sqlite *never = nullptr;
  outside = weft_sqlite_open("x.db", nullptr, &never);
  REQUIRE(rc == 0);
  CHECK(bad_path == weft_sqlite_error(SQLITE_CANTOPEN));
  CHECK(out == nullptr);
  CHECK(std::string(weft_sqlite_strerror(bad_path)) == "unable to open database file");
  CHECK(std::string(weft_strerror(bad_path)) == "unable to open database file");
  CHECK(null_path == UV_EINVAL);
  CHECK(null_out == UV_EINVAL);
  REQUIRE(open_err == 0);
  CHECK(bad_sql == weft_sqlite_error(SQLITE_ERROR));
  CHECK(std::string(weft_err_name(bad_sql)) == "SQLITE_ERROR");
  CHECK(good_after == 0);
  CHECK(outside == WEFT_ENOTASK);
  CHECK(never == nullptr);
  // The mapping callers rely on.
  CHECK(weft_sqlite_error(SQLITE_OK) == 0);
  CHECK(weft_sqlite_error(SQLITE_FULL) == UV_ENOSPC);
  CHECK(weft_sqlite_error(SQLITE_NOMEM) == UV_ENOMEM);
  CHECK(weft_sqlite_error(SQLITE_BUSY) == UV_EBUSY);
  CHECK(weft_sqlite_strerror(UV_ENOSPC) == std::string(weft_strerror(UV_ENOSPC)));
}

#else

TEST_CASE("sqlite module not built", "[sqlite]") {
  WARN("weft_sqlite was not built (libsqlite3-dev missing): nothing to test");
}

#endif
