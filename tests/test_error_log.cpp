// Tests of error names and messages, and of the logfmt logger: its format,
// quoting, level filtering and the WEFT_LOG_LEVEL environment variable.
//
// The logger writes to file descriptor 2; the tests point that descriptor at
// a temporary file around each call and read the file back.

#include <catch2/catch.hpp>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include <fcntl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "support.h"
#include "weft.h"

TEST_CASE("weft_strerror names weft's and libuv's errors", "[error]") {
  std::string canceled = weft_strerror(UV_ECANCELED);
  std::string timedout = weft_strerror(UV_ETIMEDOUT);
  CHECK(canceled == uv_strerror(UV_ECANCELED));
  CHECK(timedout == uv_strerror(UV_ETIMEDOUT));
  CHECK(canceled.find("cancel") != std::string::npos);
  CHECK(timedout.find("timed out") != std::string::npos);

  CHECK(std::string(weft_strerror(WEFT_ECLOSED)) == "channel or stream closed");
  CHECK(std::string(weft_strerror(WEFT_ENOTASK)) == "called outside a weft task");
  CHECK(std::string(weft_strerror(WEFT_ESTACKSIZE)) == "invalid stack size");
  CHECK(weft_strerror(WEFT_EGROUP) != nullptr);
}

TEST_CASE("weft_strerror gives unknown error for unknown codes",
          "[error]") {
  // Below every code, in weft's range but unassigned, in libuv's range but
  // unassigned, and positive.
  const int unknown[] = {-99999, -30999, -5000, 12345};
  for (int err : unknown) {
    INFO("err = " << err);
    const char *s = weft_strerror(err);
    REQUIRE(s != nullptr);
    CHECK(std::string(s) == "unknown error");
  }
}

TEST_CASE("weft_err_name gives symbolic names", "[error]") {
  CHECK(std::string(weft_err_name(UV_ECANCELED)) == "ECANCELED");
  CHECK(std::string(weft_err_name(UV_ETIMEDOUT)) == "ETIMEDOUT");
  CHECK(std::string(weft_err_name(UV_EAGAIN)) == "EAGAIN");
  CHECK(std::string(weft_err_name(WEFT_ECLOSED)) == "ECLOSED");
  CHECK(std::string(weft_err_name(WEFT_ENOTASK)) == "ENOTASK");
  CHECK(std::string(weft_err_name(WEFT_EGROUP)) == "EGROUP");
  const int unknown[] = {-99999, -30999, -5000, 12345};
  for (int err : unknown) {
    INFO("err = " << err);
    CHECK(std::string(weft_err_name(err)) == "UNKNOWN");
  }
}

TEST_CASE("weft's own codes lie outside libuv's range", "[error]") {
  // libuv's codes are negated errno values and its own UV__EAI_* codes, all
  // far above -30000.
  CHECK(WEFT_ECLOSED < -30000);
  CHECK(WEFT_EGROUP < -30000);
  CHECK(UV_ECANCELED > -30000);
  CHECK(UV_EAI_ADDRFAMILY > -30000);
}

TEST_CASE("weft_log_parse_level", "[log]") {
  CHECK(weft_log_parse_level("debug") == WEFT_LOG_DEBUG);
  CHECK(weft_log_parse_level("info") == WEFT_LOG_INFO);
  CHECK(weft_log_parse_level("warn") == WEFT_LOG_WARN);
  CHECK(weft_log_parse_level("warning") == WEFT_LOG_WARN);
  CHECK(weft_log_parse_level("error") == WEFT_LOG_ERROR);
  CHECK(weft_log_parse_level("off") == WEFT_LOG_OFF);
  // Any case.
  CHECK(weft_log_parse_level("DEBUG") == WEFT_LOG_DEBUG);
  CHECK(weft_log_parse_level("Info") == WEFT_LOG_INFO);
  CHECK(weft_log_parse_level("WARNING") == WEFT_LOG_WARN);
  // Unknown names.
  CHECK(weft_log_parse_level("") == -1);
  CHECK(weft_log_parse_level("verbose") == -1);
  CHECK(weft_log_parse_level("info ") == -1);
  CHECK(weft_log_parse_level("1") == -1);
}

namespace {

// Points file descriptor 2 at a temporary file while it lives; text()
// returns what was written so far. Restores the old descriptor on
// destruction.
class StderrCapture {
 public:
  StderrCapture() {
    fflush(stderr);
    file_ = tmpfile();
    saved_ = dup(STDERR_FILENO);
    if (file_ && saved_ >= 0) dup2(fileno(file_), STDERR_FILENO);
  }
  ~StderrCapture() {
    restore();
    if (file_) fclose(file_);
  }
  std::string text() {
    std::string out;
    if (!file_) return out;
    fflush(stderr);
    int fd = fileno(file_);
    off_t end = lseek(fd, 0, SEEK_END);
    char buf[4096];
    for (off_t off = 0; off < end;) {
      ssize_t n = pread(fd, buf, sizeof buf, off);
      if (n <= 0) break;
      out.append(buf, static_cast<size_t>(n));
      off += n;
    }
    return out;
  }
  void restore() {
    if (saved_ >= 0) {
      fflush(stderr);
      dup2(saved_, STDERR_FILENO);
      close(saved_);
      saved_ = -1;
    }
  }

 private:
  FILE *file_ = nullptr;
  int saved_ = -1;
};

// Sets the log level for the duration of a test and restores the old one.
class LevelGuard {
 public:
  explicit LevelGuard(weft_log_level level) : saved_(weft_log_get_level()) {
    weft_log_set_level(level);
  }
  ~LevelGuard() { weft_log_set_level(saved_); }

 private:
  weft_log_level saved_;
};

bool contains(const std::string &s, const std::string &part) {
  return s.find(part) != std::string::npos;
}

}  // namespace

TEST_CASE("weft_log writes one logfmt line", "[log]") {
  LevelGuard level(WEFT_LOG_INFO);
  std::string out;
  {
    StderrCapture cap;
    weft_log(WEFT_LOG_INFO, "listening", "addr=%s port=%d", "::1", 8080);
    out = cap.text();
  }
  INFO("logged: " << out);
  // ts=2026-11-26T09:58:01.123Z level=info msg=listening addr=::1 port=8080
  REQUIRE(out.size() > 0);
  CHECK(out.compare(0, 3, "ts=") == 0);
  CHECK(out.back() == '\n');
  CHECK(std::count(out.begin(), out.end(), '\n') == 1);
  CHECK(contains(out, " level=info msg=listening addr=::1 port=8080"));

  // The timestamp is UTC with milliseconds: ts=YYYY-MM-DDTHH:MM:SS.mmmZ.
  std::string ts = out.substr(3, out.find(' ') - 3);
  REQUIRE(ts.size() == 24);
  CHECK(ts[4] == '-');
  CHECK(ts[7] == '-');
  CHECK(ts[10] == 'T');
  CHECK(ts[13] == ':');
  CHECK(ts[16] == ':');
  CHECK(ts[19] == '.');
  CHECK(ts[23] == 'Z');
}

TEST_CASE("weft_log quotes a message that needs it", "[log]") {
  LevelGuard level(WEFT_LOG_DEBUG);
  std::string spaced, quoted, empty, no_kv;
  {
    StderrCapture cap;
    weft_log(WEFT_LOG_WARN, "connection reset by peer", "fd=%d", 7);
    spaced = cap.text();
  }
  {
    StderrCapture cap;
    weft_log(WEFT_LOG_ERROR, "say \"hi\"", nullptr);
    quoted = cap.text();
  }
  {
    StderrCapture cap;
    weft_log(WEFT_LOG_DEBUG, "", nullptr);
    empty = cap.text();
  }
  {
    StderrCapture cap;
    weft_log(WEFT_LOG_INFO, "a=b", nullptr);
    no_kv = cap.text();
  }
  INFO("logged: " << spaced << quoted << empty << no_kv);
  CHECK(contains(spaced, " level=warn msg=\"connection reset by peer\" fd=7\n"));
  CHECK(contains(quoted, " level=error msg=\"say \\\"hi\\\"\"\n"));
  CHECK(contains(empty, " level=debug msg=\"\"\n"));
  // An '=' in the message would read as a key: it is quoted too.
  CHECK(contains(no_kv, " level=info msg=\"a=b\"\n"));
}

namespace {

int log_from_named_task(void *) {
  weft_log(WEFT_LOG_INFO, "from-task", "n=%d", 1);
  return 0;
}

}  // namespace

TEST_CASE("weft_log adds the name of the calling task", "[log]") {
  LevelGuard level(WEFT_LOG_INFO);
  std::string inside, outside;
  {
    StderrCapture cap;
    weft_main(
        [](void *) -> int {
          weft_group *g = weft_group_open(WEFT_FAIL_FAST);
          if (!g) return UV_ENOMEM;
          weft_spawn_named(g, "worker-1", log_from_named_task, nullptr);
          return weft_group_join(g);
        },
        nullptr);
    inside = cap.text();
  }
  {
    StderrCapture cap;
    weft_log(WEFT_LOG_INFO, "outside", nullptr);
    outside = cap.text();
  }
  INFO("logged: " << inside << outside);
  CHECK(contains(inside, " msg=from-task n=1 task=worker-1\n"));
  CHECK(!contains(outside, "task="));
}

TEST_CASE("weft_log drops messages below the level", "[log]") {
  LevelGuard level(WEFT_LOG_WARN);
  CHECK(weft_log_get_level() == WEFT_LOG_WARN);
  CHECK(weft_log_enabled(WEFT_LOG_DEBUG) == 0);
  CHECK(weft_log_enabled(WEFT_LOG_INFO) == 0);
  CHECK(weft_log_enabled(WEFT_LOG_WARN) != 0);
  CHECK(weft_log_enabled(WEFT_LOG_ERROR) != 0);

  std::string warn_level, off_level;
  {
    StderrCapture cap;
    weft_log(WEFT_LOG_DEBUG, "d", nullptr);
    weft_log(WEFT_LOG_INFO, "i", nullptr);
    weft_log(WEFT_LOG_WARN, "w", nullptr);
    weft_log(WEFT_LOG_ERROR, "e", nullptr);
    warn_level = cap.text();
  }
  weft_log_set_level(WEFT_LOG_OFF);
  CHECK(weft_log_enabled(WEFT_LOG_ERROR) == 0);
  {
    StderrCapture cap;
    weft_log(WEFT_LOG_ERROR, "e", nullptr);
    off_level = cap.text();
  }
  weft_log_set_level(WEFT_LOG_DEBUG);
  CHECK(weft_log_enabled(WEFT_LOG_DEBUG) != 0);

  INFO("logged: " << warn_level);
  CHECK(!contains(warn_level, "msg=d"));
  CHECK(!contains(warn_level, "msg=i"));
  CHECK(contains(warn_level, " level=warn msg=w\n"));
  CHECK(contains(warn_level, " level=error msg=e\n"));
  CHECK(std::count(warn_level.begin(), warn_level.end(), '\n') == 2);
  CHECK(off_level.empty());
}

// Run only as a child of the next test, in a fresh process, where the level
// has not been read yet: checks that the first use reads WEFT_LOG_LEVEL.
TEST_CASE("log level from WEFT_LOG_LEVEL (child)", "[.][log-env-child]") {
  const char *expected = getenv("WEFT_TEST_EXPECTED_LEVEL");
  REQUIRE(expected != nullptr);
  CHECK(static_cast<int>(weft_log_get_level()) == atoi(expected));
}

namespace {

// Runs this test program again with WEFT_LOG_LEVEL=value and only the child
// test above; returns its exit status (0: passed), or -1 on failure to run.
int run_env_child(const char *value, int expected_level) {
  char self[4096];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0) return -1;
  self[n] = '\0';
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    if (value) {
      setenv("WEFT_LOG_LEVEL", value, 1);
    } else {
      unsetenv("WEFT_LOG_LEVEL");
    }
    char expected[16];
    snprintf(expected, sizeof expected, "%d", expected_level);
    setenv("WEFT_TEST_EXPECTED_LEVEL", expected, 1);
    int devnull = open("/dev/null", O_WRONLY);
    if (devnull >= 0) {
      dup2(devnull, STDOUT_FILENO);
      dup2(devnull, STDERR_FILENO);
    }
    // "--warn NoTests" turns a test spec that matches nothing into a failure.
    // Under an emulator (a cross build run under qemu) the program is not
    // one this machine runs by itself: the shell starts it through it.
    const char *emulator = getenv("WEFT_TEST_EMULATOR");
    if (emulator != nullptr && emulator[0] != '\0')
      execl("/bin/sh", "sh", "-c", "exec $WEFT_TEST_EMULATOR \"$0\" \"$@\"", self,
            "--warn", "NoTests", "[log-env-child]", static_cast<char *>(nullptr));
    execl(self, self, "--warn", "NoTests", "[log-env-child]",
          static_cast<char *>(nullptr));
    _exit(127);
  }
  // Wait at most ten (scaled) seconds.
  int status = 0;
  struct timespec tick = {0, 10 * 1000 * 1000};
  for (int64_t waited = 0; waited < weft_test_ms(10000); waited += 10) {
    pid_t w = waitpid(pid, &status, WNOHANG);
    if (w == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
    nanosleep(&tick, nullptr);
  }
  kill(pid, SIGKILL);
  waitpid(pid, &status, 0);
  return -1;
}

}  // namespace

TEST_CASE("the log level is read from WEFT_LOG_LEVEL at first use", "[log]") {
  CHECK(run_env_child("error", WEFT_LOG_ERROR) == 0);
  CHECK(run_env_child("DEBUG", WEFT_LOG_DEBUG) == 0);
  CHECK(run_env_child("off", WEFT_LOG_OFF) == 0);
  // Unset or unknown: the default, info.
  CHECK(run_env_child(nullptr, WEFT_LOG_INFO) == 0);
  CHECK(run_env_child("loud", WEFT_LOG_INFO) == 0);
}
