/* redis_support.h: a redis-server of the test's own, on a free loopback
 * port in a temporary directory, for the tests of the Redis module. C++
 * only; used outside the runtime (before and after weft_main()), except
 * kill(), which may be called from a task (it does not wait).
 *
 * The server saves nothing and is killed when the object goes. Tests skip
 * (with a message) when redis-server is not installed. */
#ifndef WEFT_TEST_REDIS_SUPPORT_H
#define WEFT_TEST_REDIS_SUPPORT_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <string>

#include "support.h"
#include "tempdir_support.h"

namespace {

// A loopback port that nothing listens on (just now).
inline int redis_test_free_port() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  struct sockaddr_in a = {};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  int port = -1;
  if (bind(fd, reinterpret_cast<sockaddr *>(&a), sizeof a) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr *>(&a), &len) == 0)
    port = ntohs(a.sin_port);
  close(fd);
  return port;
}

inline bool redis_test_can_connect(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return false;
  struct sockaddr_in a = {};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(port));
  bool ok = connect(fd, reinterpret_cast<sockaddr *>(&a), sizeof a) == 0;
  close(fd);
  return ok;
}

class RedisServer {
 public:
  // Where redis-server is, or "" when it is not installed.
  static std::string binary() {
    for (const char *p : {"/usr/bin/redis-server", "/usr/local/bin/redis-server"})
      if (access(p, X_OK) == 0) return p;
    return "";
  }

  // Starts the server and waits (5 s, scaled) until it accepts connections;
  // tries another port if the first was taken meanwhile. ok() says whether
  // it runs.
  RedisServer() : dir_("weft-redis") {
    std::string bin = binary();
    if (bin.empty() || dir_.path.empty()) return;
    for (int attempt = 0; attempt < 3 && pid_ <= 0; attempt++) start(bin);
  }
  ~RedisServer() { kill(); }
  RedisServer(const RedisServer &) = delete;
  RedisServer &operator=(const RedisServer &) = delete;

  bool ok() const { return pid_ > 0; }
  int port() const { return port_; }

  // Kills the server at once (SIGKILL) and reaps it.
  void kill() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    int status;
    waitpid(pid_, &status, 0);
    pid_ = -1;
  }

 private:
  void start(const std::string &bin) {
    port_ = redis_test_free_port();
    if (port_ <= 0) return;
    std::string port = std::to_string(port_);
    std::string log = dir_ / "redis.log";
    pid_t pid = fork();
    if (pid < 0) return;
    if (pid == 0) {
      execl(bin.c_str(), bin.c_str(), "--port", port.c_str(), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--dir", dir_.path.c_str(), "--logfile", log.c_str(),
            "--daemonize", "no", static_cast<char *>(nullptr));
      _exit(127);
    }
    int64_t deadline_ms = weft_test_ms(5000);
    for (int64_t waited = 0; waited < deadline_ms; waited += 10) {
      if (redis_test_can_connect(port_)) {
        pid_ = pid;
        return;
      }
      int status;
      if (waitpid(pid, &status, WNOHANG) == pid) return;  // exited: port taken?
      struct timespec ts = {0, 10 * 1000 * 1000};
      nanosleep(&ts, nullptr);
    }
    ::kill(pid, SIGKILL);
    int status;
    waitpid(pid, &status, 0);
  }

  TempDir dir_;
  pid_t pid_ = -1;
  int port_ = -1;
};

}  // namespace

// Skips the test case (with a warning naming the reason) when no server
// could be started.
#define REDIS_TEST_SERVER(name)                                              \
  RedisServer name;                                                          \
  if (!name.ok()) {                                                          \
    WARN((RedisServer::binary().empty() ? "redis-server is not installed"    \
                                        : "redis-server did not start") \
         << ": skipped");                                                    \
    return;                                                                  \
  }

#endif
