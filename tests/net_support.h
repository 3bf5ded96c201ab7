/* net_support.h: loopback servers, raw clients and temporary files for the
 * tests of TCP, HTTP, WebSocket and the libcurl client. C++ only (it builds
 * on closures.h).
 *
 * Everything here runs inside weft tasks and never asserts: the helpers
 * return weft's codes and the tests check them after weft_main() returns. */
#ifndef WEFT_TEST_NET_SUPPORT_H
#define WEFT_TEST_NET_SUPPORT_H

#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "closures.h"
#include "weft.h"

namespace {

// A temporary file holding data, removed at the end of the scope. An empty
// path means it could not be created (the tests then fail on its contents).
struct TempFile {
  std::string path;
  std::string data;
  explicit TempFile(std::string bytes, const char *prefix = "weft-test")
      : data(std::move(bytes)) {
    std::string tmpl = std::string("/tmp/") + prefix + "-XXXXXX";
    int fd = mkstemp(&tmpl[0]);
    if (fd < 0) return;
    path = tmpl;
    size_t off = 0;
    while (off < data.size()) {
      ssize_t n = write(fd, data.data() + off, data.size() - off);
      if (n <= 0) break;
      off += static_cast<size_t>(n);
    }
    close(fd);
  }
  TempFile(const TempFile &) = delete;
  TempFile &operator=(const TempFile &) = delete;
  ~TempFile() {
    if (!path.empty()) unlink(path.c_str());
  }
  // Opens the file for reading; returns the descriptor or -1.
  int open_ro() const { return open(path.c_str(), O_RDONLY); }
};

// FNV-1a of s: compares megabytes without printing them when they differ.
inline uint64_t fnv1a(const std::string &s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char ch : s) {
    h ^= ch;
    h *= 1099511628211ull;
  }
  return h;
}

// Reads c until the end of the stream or an error, sleeping pause_ms between
// reads when it is positive (a slow reader). Returns what arrived; *last gets
// the read that ended it (0 at the end of the stream) when last is not NULL.
inline std::string read_all(weft_tcp *c, int64_t pause_ms = 0, ssize_t *last = nullptr) {
  std::string got;
  // On the heap: task stacks are small.
  std::vector<char> buf(64 * 1024);
  for (;;) {
    ssize_t n = weft_tcp_read(c, buf.data(), buf.size());
    if (n <= 0) {
      if (last != nullptr) *last = n;
      break;
    }
    got.append(buf.data(), static_cast<size_t>(n));
    if (pause_ms > 0) weft_sleep(pause_ms);
  }
  return got;
}

// A connected pair on loopback: *server is the accepted side. Returns 0 or
// the first error (nothing is left open then).
inline int connect_pair(weft_tcp **client, weft_tcp **server) {
  weft_tcp *l = nullptr;
  int r = weft_tcp_listen("127.0.0.1", 0, 0, 0, &l);
  if (r < 0) return r;
  Tasks t;
  int ar = 1;
  t.spawn(0, [&] { return ar = weft_tcp_accept(l, server); });
  r = weft_tcp_connect("127.0.0.1", weft_tcp_local_port(l), client);
  if (r < 0) t.cancel();
  t.join();
  weft_tcp_close(l);
  if (r < 0 || ar < 0) {
    if (r == 0) weft_tcp_close(*client);
    if (ar == 0) weft_tcp_close(*server);
    *client = *server = nullptr;
  }
  return r < 0 ? r : ar;
}

// Listens on 127.0.0.1 port 0 and runs client(port) on the calling task
// while a task of its own (on the calling executor) accepts one connection,
// passes it to serve and closes it afterwards. When the client fails the
// serving task is cancelled. Returns the listen error, else the client's
// result, else the serving task's (the accept error or serve's result).
inline int serve_one_conn(const std::function<int(weft_tcp *)> &serve,
                          const std::function<int(int port)> &client) {
  weft_tcp *l = nullptr;
  int r = weft_tcp_listen("127.0.0.1", 0, 0, 0, &l);
  if (r < 0) return r;
  Tasks t(WEFT_COLLECT);
  t.spawn(
      0,
      [&] {
        weft_tcp *c = nullptr;
        int ar = weft_tcp_accept(l, &c);
        if (ar < 0) return ar;
        int sr = serve(c);
        weft_tcp_close(c);
        return sr;
      },
      "server");
  r = client(weft_tcp_local_port(l));
  if (r != 0) t.cancel();
  int j = t.join();
  weft_tcp_close(l);
  return r != 0 ? r : j;
}

// A server on 127.0.0.1 port 0 that accepts connections until stop() and
// serves each on a task of its own, all in one group that stop() cancels.
// Not copyable: its tasks point at it.
struct LoopbackServer {
  weft_tcp *listener = nullptr;
  int port = 0;
  int accepted = 0;  // connections accepted
  weft_group *group = nullptr;

  LoopbackServer() = default;
  LoopbackServer(const LoopbackServer &) = delete;
  LoopbackServer &operator=(const LoopbackServer &) = delete;

  // Starts listening and accepting; each connection goes to serve, then is
  // closed. Returns 0 or an error (stop() cleans up either way).
  int start(std::function<void(weft_tcp *)> serve) {
    serve_ = std::move(serve);
    int r = weft_tcp_listen("127.0.0.1", 0, 0, 0, &listener);
    if (r < 0) return r;
    port = weft_tcp_local_port(listener);
    group = weft_group_open(WEFT_COLLECT);
    if (group == nullptr) return UV_ENOMEM;
    return weft_spawn(group, accept_loop, this);
  }

  // Cancels the accepting task and every connection's, waits for them, and
  // closes the listener. Safe to call twice, or after a failed start().
  void stop() {
    if (group != nullptr) {
      weft_group_cancel(group);
      weft_group_join(group);
      group = nullptr;
    }
    if (listener != nullptr) weft_tcp_close(listener);
    listener = nullptr;
  }

  // "http://127.0.0.1:<port><path>".
  std::string url(const char *path) const {
    return "http://127.0.0.1:" + std::to_string(port) + path;
  }

 private:
  struct Conn {
    LoopbackServer *srv;
    weft_tcp *tcp;
  };
  static int serve_conn(void *arg) {
    auto *c = static_cast<Conn *>(arg);
    c->srv->serve_(c->tcp);
    weft_tcp_close(c->tcp);
    delete c;
    return 0;
  }
  static int accept_loop(void *arg) {
    auto *srv = static_cast<LoopbackServer *>(arg);
    for (;;) {
      weft_tcp *tcp = nullptr;
      if (weft_tcp_accept(srv->listener, &tcp) < 0) return 0;
      srv->accepted++;
      auto *c = new Conn{srv, tcp};
      if (weft_spawn(srv->group, serve_conn, c) < 0) {
        weft_tcp_close(tcp);
        delete c;
      }
    }
  }
  std::function<void(weft_tcp *)> serve_;
};

}  // namespace

#endif
