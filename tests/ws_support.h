/* ws_support.h: what the tests of WebSocket server connections share.
 * C++ only.
 *
 * test_ws_server.cpp and test_ws_deflate.cpp both run one server
 * connection (weft_http_serve_conn() with a handler that upgrades it and
 * runs a session, an echo loop unless the test gives another) against a
 * client written here that speaks the protocol byte by byte, so that it can
 * break every rule on purpose: the frame builder, the client, the server
 * and run_ws() that starts both are here, once.
 *
 * The module is optional: this header defines WEFT_TEST_HAVE_WS when
 * weft_ws.h can be found, and only then declares the helpers. A test file
 * includes it after Catch2 and compiles its cases under
 * #ifdef WEFT_TEST_HAVE_WS.
 *
 * The helpers run inside weft tasks and never assert: they return weft's
 * codes, record what they saw, and the tests check it after the runtime
 * returns. */
#ifndef WEFT_TEST_WS_SUPPORT_H
#define WEFT_TEST_WS_SUPPORT_H

#if defined(__has_include)
#if __has_include(<weft_ws.h>)
#define WEFT_TEST_HAVE_WS 1
#endif
#endif

#ifdef WEFT_TEST_HAVE_WS

#include <stdint.h>
#include <string.h>

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "closures.h"
#include "support.h"
#include "weft.h"
#include "weft_http.h"
#include "weft_ws.h"

namespace {

const char kKey[] = "dGhlIHNhbXBsZSBub25jZQ==";

// ---- The client: raw bytes and frames ---------------------------------------

struct Frame {
  int fin = 0, rsv = 0, op = -1, masked = 0;
  std::string payload;
  int close_code() const {
    return payload.size() >= 2
               ? ((uint8_t)payload[0] << 8 | (uint8_t)payload[1])
               : 0;
  }
};

// Builds a client frame. len_override sets the length field's bytes by
// hand (for the 64-bit length with its top bit set).
inline std::string frame(int op, const std::string &payload, bool fin = true,
                         bool mask = true, int rsv = 0,
                         const std::string *len_override = nullptr) {
  std::string f;
  f += (char)((fin ? 0x80 : 0) | (rsv << 4) | op);
  size_t n = payload.size();
  char m = mask ? (char)0x80 : 0;
  if (len_override) {
    f += (char)(m | 127);
    f += *len_override;
  } else if (n < 126) {
    f += (char)(m | (int)n);
  } else if (n <= 0xffff) {
    f += (char)(m | 126);
    f += (char)(n >> 8);
    f += (char)n;
  } else {
    f += (char)(m | 127);
    for (int i = 7; i >= 0; i--) f += (char)((uint64_t)n >> (8 * i));
  }
  const uint8_t key[4] = {0x37, 0xfa, 0x21, 0x3d};
  if (mask) {
    f.append((const char *)key, 4);
    for (size_t i = 0; i < n; i++) f += (char)(payload[i] ^ key[i & 3]);
  } else {
    f += payload;
  }
  return f;
}

inline std::string close_payload(int code, const std::string &reason = "") {
  std::string p;
  p += (char)(code >> 8);
  p += (char)code;
  return p + reason;
}

inline std::string upgrade_request(const std::string &extra = "",
                                   const char *key = kKey) {
  return std::string(
             "GET /chat HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
             "Connection: keep-alive, Upgrade\r\nSec-WebSocket-Key: ") +
         key + "\r\nSec-WebSocket-Version: 13\r\n" + extra + "\r\n";
}

class Client {
public:
  int connect(int port) { return weft_tcp_connect("127.0.0.1", port, &tcp_); }
  ~Client() { weft_tcp_close(tcp_); }

  int send(const std::string &bytes) {
    return weft_tcp_write(tcp_, bytes.data(), bytes.size());
  }

  // Reads the response head (up to the blank line); what follows stays
  // buffered for the frames.
  int read_head(std::string *head) {
    for (;;) {
      size_t end = buf_.find("\r\n\r\n");
      if (end != std::string::npos) {
        *head = buf_.substr(0, end + 4);
        buf_.erase(0, end + 4);
        return 0;
      }
      int r = fill();
      if (r != 0) return r;
    }
  }

  // Sends the upgrade request (and any bytes after it in the same write)
  // and reads the 101. Returns 0 when the upgrade was accepted.
  int handshake(const std::string &extra = "", const std::string &after = "") {
    int r = send(upgrade_request(extra) + after);
    if (r != 0) return r;
    r = read_head(&head_);
    if (r != 0) return r;
    return head_.compare(0, 13, "HTTP/1.1 101 ") == 0 ? 0 : -1;
  }

  // Reads one server frame, waiting at most ms (scaled).
  int read_frame(Frame *f, int64_t ms = 5000) {
    weft_scope s;
    weft_scope_enter(&s, weft_test_ms(ms));
    int r = read_frame_inner(f);
    weft_scope_leave(&s);
    return r;
  }

  // Reads frames until a close frame (returned in *f), answering nothing.
  int read_until_close(Frame *f, int64_t ms = 5000) {
    for (;;) {
      int r = read_frame(f, ms);
      if (r != 0) return r;
      if (f->op == 8) return 0;
    }
  }

  // Reads until the server ends the connection; returns 0 at end of stream.
  int read_eof(int64_t ms = 5000) {
    weft_scope s;
    weft_scope_enter(&s, weft_test_ms(ms));
    int r;
    while ((r = fill()) == 0) buf_.clear();
    weft_scope_leave(&s);
    return r == UV_EOF ? 0 : r;
  }

  // Reads everything up to the end of stream (for refused handshakes).
  int read_all(std::string *out, int64_t ms = 5000) {
    weft_scope s;
    weft_scope_enter(&s, weft_test_ms(ms));
    int r;
    while ((r = fill()) == 0) {
    }
    weft_scope_leave(&s);
    *out = buf_;
    return r == UV_EOF ? 0 : r;
  }

  const std::string &head() const { return head_; }
  weft_tcp *tcp() { return tcp_; }

private:
  // Reads what is there into buf_ (through a heap buffer: task stacks are
  // small).
  int fill() {
    ssize_t n = weft_tcp_read(tcp_, tmp_.data(), tmp_.size());
    if (n == 0) return UV_EOF;
    if (n < 0) return (int)n;
    buf_.append(tmp_.data(), (size_t)n);
    return 0;
  }
  int need(size_t n) {
    while (buf_.size() < n) {
      int r = fill();
      if (r != 0) return r;
    }
    return 0;
  }
  int read_frame_inner(Frame *f) {
    int r = need(2);
    if (r != 0) return r;
    uint8_t b0 = buf_[0], b1 = buf_[1];
    f->fin = b0 >> 7;
    f->rsv = (b0 >> 4) & 7;
    f->op = b0 & 15;
    f->masked = b1 >> 7;
    int len7 = b1 & 127;
    uint64_t len = (uint64_t)len7;
    size_t hlen = len7 == 126 ? 4 : len7 == 127 ? 10 : 2;
    if ((r = need(hlen)) != 0) return r;
    if (len7 == 126) len = (uint8_t)buf_[2] << 8 | (uint8_t)buf_[3];
    if (len7 == 127) {
      len = 0;
      for (int i = 0; i < 8; i++) len = len << 8 | (uint8_t)buf_[2 + i];
    }
    if ((r = need(hlen + len)) != 0) return r;
    f->payload = buf_.substr(hlen, len);
    buf_.erase(0, hlen + len);
    return 0;
  }

  weft_tcp *tcp_ = nullptr;
  std::vector<char> tmp_ = std::vector<char>(65536);
  std::string buf_;
  std::string head_;
};

// ---- The server -------------------------------------------------------------

struct Msg {
  int type;
  std::string data;
};

struct Server {
  // Set by the test.
  weft_ws_limits limits{};
  const char *const *protocols = nullptr;
  std::function<int(weft_ws *)> session; // empty: echo until the end
  bool session_frees = false;            // the session calls weft_ws_free()

  // Recorded.
  int upgrade_rc = 1;
  int serve_rc = 1;
  int recv_rc = 1; // how the echo loop ended
  int close_code = -1;
  std::string close_reason;
  std::string protocol;
  std::string extensions;
  std::vector<Msg> got;
  bool upgraded = false;
  weft_tcp *listener = nullptr;
  int port = 0;
};

// Receives and echoes until the connection ends; records how.
inline int echo_session(Server *srv, weft_ws *ws) {
  weft_ws_msg m;
  int r;
  while ((r = weft_ws_recv(ws, &m)) == 0) {
    srv->got.push_back({m.type, std::string((const char *)m.data, m.len)});
    int s = weft_ws_send(ws, m.type, m.data, m.len);
    if (s != 0) return s;
  }
  srv->recv_rc = r;
  return 0;
}

inline int handler(const weft_http_request *req, weft_http_response *res,
                   void *ctx) {
  auto *srv = static_cast<Server *>(ctx);
  weft_ws *ws = nullptr;
  srv->upgrade_rc =
      weft_ws_upgrade_protocols(req, res, &srv->limits, srv->protocols, &ws);
  if (srv->upgrade_rc != 0) return 0;
  srv->upgraded = true;
  srv->protocol = weft_ws_protocol(ws);
  srv->extensions = weft_ws_extensions(ws);
  int r = srv->session ? srv->session(ws) : echo_session(srv, ws);
  if (srv->session_frees) return r;
  srv->close_code = weft_ws_close_code(ws);
  srv->close_reason = weft_ws_close_reason(ws);
  weft_ws_free(ws);
  return r;
}

// Accepts one connection and serves it.
inline int serve_one(Server *srv) {
  weft_tcp *conn = nullptr;
  int r = weft_tcp_accept(srv->listener, &conn);
  if (r != 0) return r;
  srv->serve_rc = weft_http_serve_conn(conn, nullptr, handler, srv);
  weft_tcp_close(conn);
  return 0;
}

// Runs one server connection and the client function on one executor.
// Returns the root's result (0 when everything finished in time).
inline int run_ws(Server &srv, std::function<int(Client &)> client_fn,
                  int executors = 1) {
  return run(executors, [&]() -> int {
    int r = weft_tcp_listen("127.0.0.1", 0, 0, 0, &srv.listener);
    if (r != 0) return r;
    srv.port = weft_tcp_local_port(srv.listener);
    Tasks t;
    t.spawn(
        0, [&] { return serve_one(&srv); }, "server");
    t.spawn(
        0,
        [&] {
          Client c;
          int cr = c.connect(srv.port);
          if (cr != 0) return cr;
          return client_fn(c);
        },
        "client");
    r = t.join();
    weft_tcp_close(srv.listener);
    return r;
  });
}

inline std::string pattern(size_t n, int seed) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; i++) s[i] = (char)('a' + (i * 7 + seed) % 26);
  return s;
}

} // namespace

#endif // WEFT_TEST_HAVE_WS
#endif // WEFT_TEST_WS_SUPPORT_H
