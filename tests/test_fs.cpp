// Tests of the file calls: write and read back, stat, rename, unlink, and
// directories, all in a fresh temporary directory.
//
// Results are recorded inside the tasks and asserted after weft_main()
// returns.

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <algorithm>
#include <string>
#include <vector>

#include "support.h"
#include "win_support.h"
#include "weft.h"

namespace {

// A temporary directory, removed (if still there) when the test ends.
struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/weft-fs-XXXXXX";
    const char *p = mkdtemp(tmpl);
    if (p != nullptr) path = p;
  }
  ~TempDir() {
    if (!path.empty()) {
      std::string cmd = weft_test_rm_rf_command(path);
      if (system(cmd.c_str()) != 0) {
      }
    }
  }
  std::string operator/(const char *name) const { return path + "/" + name; }
};

struct ReadBack {
  std::string file;
  int fd = -1;
  ssize_t wrote = -1;
  ssize_t wrote_at = -1;
  int fsync_rc = 1;
  int close_rc = 1;
  int fd2 = -1;
  char buf[64] = {0};
  ssize_t got = -1;
  ssize_t got_at = -1;
  char buf_at[8] = {0};
  ssize_t at_eof = -1;
  int close2_rc = 1;
  int open_missing = 0;
  ssize_t read_bad_fd = 0;
};

int read_back_run(void *arg) {
  auto *x = static_cast<ReadBack *>(arg);
  x->fd = weft_file_open(x->file.c_str(), O_CREAT | O_WRONLY | O_TRUNC, 0644);
  if (x->fd < 0) return 0;
  x->wrote = weft_file_write(x->fd, "hello, file", 11, -1);
  x->wrote_at = weft_file_write(x->fd, "HELLO", 5, 0);
  x->fsync_rc = weft_file_fsync(x->fd);
  x->close_rc = weft_file_close(x->fd);

  x->fd2 = weft_file_open(x->file.c_str(), O_RDONLY, 0);
  if (x->fd2 >= 0) {
    x->got = weft_file_read(x->fd2, x->buf, sizeof x->buf - 1, -1);
    x->got_at = weft_file_read(x->fd2, x->buf_at, 4, 7);
    x->at_eof = weft_file_read(x->fd2, x->buf, sizeof x->buf, 11);
    x->close2_rc = weft_file_close(x->fd2);
  }
  std::string missing = x->file + ".missing";
  x->open_missing = weft_file_open(missing.c_str(), O_RDONLY, 0);
  x->read_bad_fd = weft_file_read(-1, x->buf, 1, -1);
  return 0;
}

}  // namespace

TEST_CASE("a file written and read back", "[fs]") {
  TempDir dir;
  REQUIRE(!dir.path.empty());
  ReadBack x;
  x.file = dir / "greeting.txt";
  REQUIRE(run_bounded(read_back_run, &x) == 0);
  REQUIRE(x.fd >= 0);
  CHECK(x.wrote == 11);
  CHECK(x.wrote_at == 5);
  CHECK(x.fsync_rc == 0);
  CHECK(x.close_rc == 0);
  REQUIRE(x.fd2 >= 0);
  CHECK(x.got == 11);
  CHECK(std::string(x.buf, 11) == "HELLO, file");
  CHECK(x.got_at == 4);
  CHECK(std::string(x.buf_at, 4) == "file");
  CHECK(x.at_eof == 0);
  CHECK(x.close2_rc == 0);
  CHECK(x.open_missing == UV_ENOENT);
  CHECK(x.read_bad_fd == UV_EBADF);
}

namespace {

struct StatRename {
  std::string dir, a, b;
  int stat_file_rc = 1;
  weft_stat file_st{};
  int stat_dir_rc = 1;
  weft_stat dir_st{};
  int rename_rc = 1;
  int stat_old_rc = 0;
  int stat_new_rc = 1;
  int unlink_rc = 1;
  int stat_gone_rc = 0;
  int unlink_again_rc = 0;
  int64_t now_ms = 0;
};

int stat_rename_run(void *arg) {
  auto *x = static_cast<StatRename *>(arg);
  int fd = weft_file_open(x->a.c_str(), O_CREAT | O_WRONLY | O_TRUNC, 0600);
  if (fd < 0) return fd;
  weft_file_write(fd, "0123456789", 10, -1);
  weft_file_close(fd);
  x->stat_file_rc = weft_file_stat(x->a.c_str(), &x->file_st);
  x->stat_dir_rc = weft_file_stat(x->dir.c_str(), &x->dir_st);
  x->rename_rc = weft_fs_rename(x->a.c_str(), x->b.c_str());
  weft_stat st;
  x->stat_old_rc = weft_file_stat(x->a.c_str(), &st);
  x->stat_new_rc = weft_file_stat(x->b.c_str(), &st);
  x->unlink_rc = weft_fs_unlink(x->b.c_str());
  x->stat_gone_rc = weft_file_stat(x->b.c_str(), &st);
  x->unlink_again_rc = weft_fs_unlink(x->b.c_str());
  return 0;
}

}  // namespace

TEST_CASE("stat and rename and unlink", "[fs]") {
  TempDir dir;
  REQUIRE(!dir.path.empty());
  StatRename x;
  x.dir = dir.path;
  x.a = dir / "a.dat";
  x.b = dir / "b.dat";
  time_t before = time(nullptr);
  REQUIRE(run_bounded(stat_rename_run, &x) == 0);
  CHECK(x.stat_file_rc == 0);
  CHECK(x.file_st.size == 10);
  CHECK(x.file_st.is_file);
  CHECK(!x.file_st.is_dir);
#ifdef _WIN32
  CHECK((x.file_st.mode & 0777) == 0666); /* no permission bits: writable */
#else
  CHECK((x.file_st.mode & 0777) == 0600);
#endif
  CHECK(x.file_st.mtime_ms / 1000 >= (int64_t)before - 5);
  CHECK(x.stat_dir_rc == 0);
  CHECK(x.dir_st.is_dir);
  CHECK(!x.dir_st.is_file);
  CHECK(x.rename_rc == 0);
  CHECK(x.stat_old_rc == UV_ENOENT);
  CHECK(x.stat_new_rc == 0);
  CHECK(x.unlink_rc == 0);
  CHECK(x.stat_gone_rc == UV_ENOENT);
  CHECK(x.unlink_again_rc == UV_ENOENT);
}

namespace {

struct Dirs {
  std::string root, sub;
  int mkdir_rc = 1;
  int mkdir_again_rc = 0;
  int n = -1;
  std::vector<std::pair<std::string, int>> entries;
  int n_empty = -1;
  int rmdir_full_rc = 0;
  int rmdir_rc = 1;
  int readdir_missing = 0;
};

int dirs_run(void *arg) {
  auto *x = static_cast<Dirs *>(arg);
  x->mkdir_rc = weft_fs_mkdir(x->sub.c_str(), 0755);
  x->mkdir_again_rc = weft_fs_mkdir(x->sub.c_str(), 0755);
  const char *names[] = {"one", "two", "three"};
  for (const char *name : names) {
    std::string p = x->sub + "/" + name;
    int fd = weft_file_open(p.c_str(), O_CREAT | O_WRONLY, 0644);
    if (fd >= 0) weft_file_close(fd);
  }
  std::string nested = x->sub + "/nested";
  weft_fs_mkdir(nested.c_str(), 0755);

  weft_dirent *list = nullptr;
  x->n = weft_fs_readdir(x->sub.c_str(), &list);
  for (int i = 0; i < x->n; i++) x->entries.emplace_back(list[i].name, list[i].type);
  weft_fs_dirents_free(list, x->n);

  x->rmdir_full_rc = weft_fs_rmdir(x->sub.c_str());
  for (const char *name : names) {
    std::string p = x->sub + "/" + name;
    weft_fs_unlink(p.c_str());
  }
  weft_fs_rmdir(nested.c_str());

  list = nullptr;
  x->n_empty = weft_fs_readdir(x->sub.c_str(), &list);
  weft_fs_dirents_free(list, x->n_empty);
  x->rmdir_rc = weft_fs_rmdir(x->sub.c_str());
  list = nullptr;
  x->readdir_missing = weft_fs_readdir(x->sub.c_str(), &list);
  return 0;
}

}  // namespace

TEST_CASE("mkdir and readdir and rmdir", "[fs]") {
  TempDir dir;
  REQUIRE(!dir.path.empty());
  Dirs x;
  x.root = dir.path;
  x.sub = dir / "sub";
  REQUIRE(run_bounded(dirs_run, &x) == 0);
  CHECK(x.mkdir_rc == 0);
  CHECK(x.mkdir_again_rc == UV_EEXIST);
  REQUIRE(x.n == 4);
  std::sort(x.entries.begin(), x.entries.end());
  CHECK(x.entries[0].first == "nested");
  CHECK(x.entries[0].second == UV_DIRENT_DIR);
  CHECK(x.entries[1].first == "one");
  CHECK(x.entries[1].second == UV_DIRENT_FILE);
  CHECK(x.entries[2].first == "three");
  CHECK(x.entries[3].first == "two");
  CHECK(x.rmdir_full_rc == UV_ENOTEMPTY);
  CHECK(x.n_empty == 0);
  CHECK(x.rmdir_rc == 0);
  CHECK(x.readdir_missing == UV_ENOENT);
}

TEST_CASE("file calls outside a task", "[fs]") {
  weft_stat st;
  CHECK(weft_file_stat("/", &st) == WEFT_ENOTASK);
  CHECK(weft_file_open("/dev/null", O_RDONLY, 0) == WEFT_ENOTASK);
  // Closing works anywhere, so that clean-up code can always release a file.
  int fd = open("/dev/null", O_RDONLY);
  REQUIRE(fd >= 0);
  CHECK(weft_file_close(fd) == 0);
}
