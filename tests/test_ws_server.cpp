// Tests of WebSocket server connections (runtime/ext/http/weft_ws.h) over
// real connections on 127.0.0.1: a server task accepts one connection and
// serves it with weft_http_serve_conn(), whose handler upgrades it and runs
// a session (an echo loop unless the test gives another); a client task
// written here speaks the protocol byte by byte, masking its frames, so
// that it can also break every rule on purpose.
//
// Proves: the handshake (accept value, subprotocol, refusals with 400 and
// 426), echo of text and binary messages at every length encoding up to
// 1 MiB, fragments put together around a ping, ping and pong, the closing
// handshake started by either side (and by one task while another
// receives), the close code for each protocol violation (1002), bad UTF-8
// (1007) and oversize (1009), frames that come in the request's packet,
// idle pings and the idle timeout, many tasks sending on one connection
// without interleaving, the write timeout, sends from another executor
// refused, weft_ws_free() ending the calls of other tasks, a receive
// cancelled part-way that resumes, and the cancellation of the
// connection's task mid-receive.

#include <catch2/catch.hpp>

#if defined(__has_include)
#if __has_include(<weft_ws.h>)
#define WEFT_TEST_HAVE_WS 1
#endif
#endif

#ifdef WEFT_TEST_HAVE_WS

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
std::string frame(int op, const std::string &payload, bool fin = true,
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

std::string close_payload(int code, const std::string &reason = "") {
  std::string p;
  p += (char)(code >> 8);
  p += (char)code;
  return p + reason;
}

std::string upgrade_request(const std::string &extra = "",
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
  std::vector<Msg> got;
  bool upgraded = false;
  weft_tcp *listener = nullptr;
  int port = 0;
};

// Receives and echoes until the connection ends; records how.
int echo_session(Server *srv, weft_ws *ws) {
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

int handler(const weft_http_request *req, weft_http_response *res, void *ctx) {
  auto *srv = static_cast<Server *>(ctx);
  weft_ws *ws = nullptr;
  srv->upgrade_rc =
      weft_ws_upgrade_protocols(req, res, &srv->limits, srv->protocols, &ws);
  if (srv->upgrade_rc != 0) return 0;
  srv->upgraded = true;
  srv->protocol = weft_ws_protocol(ws);
  int r = srv->session ? srv->session(ws) : echo_session(srv, ws);
  if (srv->session_frees) return r;
  srv->close_code = weft_ws_close_code(ws);
  srv->close_reason = weft_ws_close_reason(ws);
  weft_ws_free(ws);
  return r;
}

// Accepts one connection and serves it.
int serve_one(Server *srv) {
  weft_tcp *conn = nullptr;
  int r = weft_tcp_accept(srv->listener, &conn);
  if (r != 0) return r;
  srv->serve_rc = weft_http_serve_conn(conn, nullptr, handler, srv);
  weft_tcp_close(conn);
  return 0;
}

// Runs one server connection and the client function on one executor.
// Returns the root's result (0 when everything finished in time).
int run_ws(Server &srv, std::function<int(Client &)> client_fn,
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

std::string pattern(size_t n, int seed) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; i++) s[i] = (char)('a' + (i * 7 + seed) % 26);
  return s;
}

// The result of a client that breaks the protocol with bad bytes.
struct Violation {
  int send_rc = 1, handshake_rc = 1, frame_rc = 1, eof_rc = 1;
  Frame close;
};

Violation violate(Server &srv, const std::string &bytes, int *run_rc) {
  Violation v;
  *run_rc = run_ws(srv, [&](Client &c) {
    v.handshake_rc = c.handshake();
    v.send_rc = c.send(bytes);
    v.frame_rc = c.read_until_close(&v.close);
    v.eof_rc = c.read_eof();
    return 0;
  });
  return v;
}

// Bytes that break the protocol, named for the test's report.
struct BadBytes {
  const char *name;
  std::string bytes;
};

// For each case, a server of its own (set up by configure when given) gets
// the bytes after the handshake; checks that it closes with close_code, that
// its receive ends with recv_rc and that it received no message.
void check_violations(const std::vector<BadBytes> &cases, int close_code,
                      int recv_rc,
                      const std::function<void(Server &)> &configure = nullptr) {
  for (const BadBytes &k : cases) {
    Server srv;
    if (configure) configure(srv);
    int rc = 1;
    Violation v = violate(srv, k.bytes, &rc);
    INFO(k.name);
    REQUIRE(rc == 0);
    CHECK(v.handshake_rc == 0);
    CHECK(v.frame_rc == 0);
    CHECK(v.close.close_code() == close_code);
    CHECK(v.eof_rc == 0);
    CHECK(srv.recv_rc == recv_rc);
    CHECK(srv.got.empty());
  }
}

} // namespace

// ---- Handshake --------------------------------------------------------------

TEST_CASE("ws: the handshake answers 101 with the accept value",
          "[ws][handshake]") {
  Server srv;
  int hs = 1, eof = 1;
  Frame close;
  int rc = run_ws(srv, [&](Client &c) {
    hs = c.handshake();
    c.send(frame(8, close_payload(1000)));
    c.read_until_close(&close);
    eof = c.read_eof();
    return 0;
  });
  REQUIRE(rc == 0);
  CHECK(hs == 0);
  CHECK(srv.upgrade_rc == 0);
  CHECK(srv.serve_rc == 0);
  CHECK(srv.protocol.empty());
  CHECK(eof == 0);
  CHECK(close.close_code() == 1000);
}

TEST_CASE("ws: the 101 response carries the RFC's accept value",
          "[ws][handshake]") {
  Server srv;
  std::string head;
  int rc = run_ws(srv, [&](Client &c) {
    c.handshake();
    head = c.head();
    c.send(frame(8, close_payload(1000)));
    return c.read_eof();
  });
  REQUIRE(rc == 0);
  CHECK(head.find("HTTP/1.1 101 Switching Protocols\r\n") == 0);
  CHECK(head.find("\r\nUpgrade: websocket\r\n") != std::string::npos);
  CHECK(head.find("\r\nConnection: Upgrade\r\n") != std::string::npos);
  CHECK(
      head.find("\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n") !=
      std::string::npos);
  CHECK(head.find("Sec-WebSocket-Protocol") == std::string::npos);
}

TEST_CASE("ws: a subprotocol is chosen in the client's order",
          "[ws][handshake]") {
  static const char *const protos[] = {"superchat", "chat", nullptr};
  Server srv;
  srv.protocols = protos;
  std::string head;
  int rc = run_ws(srv, [&](Client &c) {
    c.handshake("Sec-WebSocket-Protocol: foo, chat\r\nSec-WebSocket-Protocol: "
                "superchat\r\n");
    head = c.head();
    c.send(frame(8, close_payload(1000)));
    return c.read_eof();
  });
  REQUIRE(rc == 0);
  CHECK(srv.protocol == "chat");
  CHECK(head.find("\r\nSec-WebSocket-Protocol: chat\r\n") != std::string::npos);
}

TEST_CASE("ws: bad handshakes are refused with 400 or 426", "[ws][handshake]") {
  struct Case {
    const char *name;
    std::string request;
    int status;
  };
  const std::string ok_tail =
      "Sec-WebSocket-Key: " + std::string(kKey) + "\r\n";
  std::vector<Case> cases = {
      {"POST",
       "POST / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: "
       "Upgrade\r\n"
       "Sec-WebSocket-Version: 13\r\n" +
           ok_tail + "Content-Length: 0\r\n\r\n",
       400},
      {"HTTP/1.0",
       "GET / HTTP/1.0\r\nHost: x\r\nUpgrade: websocket\r\nConnection: "
       "Upgrade\r\n"
       "Sec-WebSocket-Version: 13\r\n" +
           ok_tail + "\r\n",
       400},
      {"no Upgrade",
       "GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n"
       "Sec-WebSocket-Version: 13\r\n" +
           ok_tail + "\r\n",
       400},
      {"Upgrade: h2c",
       "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n"
       "Sec-WebSocket-Version: 13\r\n" +
           ok_tail + "\r\n",
       400},
      {"no Connection token",
       "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
       "Connection: keep-alive\r\nSec-WebSocket-Version: 13\r\n" +
           ok_tail + "\r\n",
       400},
      {"version 8",
       "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: "
       "Upgrade\r\n"
       "Sec-WebSocket-Version: 8\r\n" +
           ok_tail + "\r\n",
       426},
      {"no version",
       "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: "
       "Upgrade\r\n" +
           ok_tail + "\r\n",
       426},
      {"no key",
       "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: "
       "Upgrade\r\n"
       "Sec-WebSocket-Version: 13\r\n\r\n",
       400},
      {"short key",
       "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: "
       "Upgrade\r\n"
       "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: "
       "dGhlIHNhbXBsZQ==\r\n\r\n",
       400},
      {"key with a bad character",
       "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
       "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
       "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZ*==\r\n\r\n",
       400},
      {"two keys",
       "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: "
       "Upgrade\r\n"
       "Sec-WebSocket-Version: 13\r\n" +
           ok_tail + ok_tail + "\r\n",
       400},
  };
  for (const Case &k : cases) {
    Server srv;
    std::string reply;
    int rc = run_ws(srv, [&](Client &c) {
      c.send(k.request);
      return c.read_all(&reply);
    });
    INFO(k.name << ": " << reply);
    REQUIRE(rc == 0);
    CHECK(srv.upgrade_rc == UV_EPROTO);
    CHECK(srv.serve_rc == 0);
    CHECK(reply.find("HTTP/1.1 " + std::to_string(k.status) + " ") == 0);
    CHECK(reply.find("Connection: close\r\n") != std::string::npos);
    if (k.status == 426)
      CHECK(reply.find("\r\nSec-WebSocket-Version: 13\r\n") !=
            std::string::npos);
  }
}

// ---- Messages ---------------------------------------------------------------

TEST_CASE("ws: text and binary messages of every length encoding are echoed",
          "[ws][echo]") {
  const size_t sizes[] = {
      0, 1, 125, 126, 127, 65535, 65536, 100000, (size_t)1 << 20};
  Server srv;
  std::vector<Frame> echoes;
  std::vector<std::string> sent;
  int rc = run_ws(srv, [&](Client &c) {
    if (c.handshake() != 0) return -1;
    int seed = 0;
    for (size_t n : sizes) {
      for (int op = 1; op <= 2; op++) {
        std::string p = pattern(n, seed++);
        sent.push_back(p);
        if (c.send(frame(op, p)) != 0) return -2;
        Frame f;
        int fr = c.read_frame(&f, 10000);
        if (fr != 0) {
          fprintf(stderr, "echo of %zu bytes: %s\n", n, weft_err_name(fr));
          return -3;
        }
        echoes.push_back(f);
      }
    }
    c.send(frame(8, close_payload(1000)));
    return c.read_eof();
  });
  REQUIRE(rc == 0);
  REQUIRE(echoes.size() == sent.size());
  for (size_t i = 0; i < sent.size(); i++) {
    INFO("message " << i << " of " << sent[i].size() << " bytes");
    CHECK(echoes[i].op == (int)(i % 2) + 1);
    CHECK(echoes[i].fin == 1);
    CHECK(echoes[i].masked == 0);
    CHECK(echoes[i].payload == sent[i]);
  }
  CHECK(srv.recv_rc == WEFT_ECLOSED);
  CHECK(srv.close_code == 1000);
}

TEST_CASE("ws: fragments are put together around a ping", "[ws][echo]") {
  Server srv;
  Frame pong, echo, echo2;
  int rc = run_ws(srv, [&](Client &c) {
    if (c.handshake() != 0) return -1;
    // "Hello wörld": the two bytes of ö come in different fragments.
    c.send(frame(1, "Hel", false));
    c.send(frame(9, "are you there", true));
    c.send(frame(0, "lo w\xc3", false));
    c.send(frame(0, "\xb6rld", true));
    if (c.read_frame(&pong) != 0) return -2;
    if (c.read_frame(&echo) != 0) return -3;
    // A binary message in three fragments, the middle one empty.
    c.send(frame(2, "ab", false) + frame(0, "", false) + frame(0, "cd", true));
    if (c.read_frame(&echo2) != 0) return -4;
    c.send(frame(8, close_payload(1000)));
    return c.read_eof();
  });
  REQUIRE(rc == 0);
  CHECK(pong.op == 10);
  CHECK(pong.payload == "are you there");
  CHECK(echo.op == 1);
  CHECK(echo.payload == "Hello w\xc3\xb6rld");
  CHECK(echo2.op == 2);
  CHECK(echo2.payload == "abcd");
  REQUIRE(srv.got.size() == 2);
  CHECK(srv.got[0].type == WEFT_WS_TEXT);
}

TEST_CASE("ws: a ping is answered with its payload and a pong is ignored",
          "[ws][control]") {
  Server srv;
  Frame pong, echo;
  int rc = run_ws(srv, [&](Client &c) {
    if (c.handshake() != 0) return -1;
    c.send(frame(10, "unsolicited"));
    c.send(frame(9, std::string(125, 'p')));
    c.send(frame(1, "after"));
    if (c.read_frame(&pong) != 0) return -2;
    if (c.read_frame(&echo) != 0) return -3;
    c.send(frame(8, close_payload(1000)));
    return c.read_eof();
  });
  REQUIRE(rc == 0);
  CHECK(pong.op == 10);
  CHECK(pong.payload == std::string(125, 'p'));
  CHECK(echo.payload == "after");
  CHECK(srv.got.size() == 1);
}

TEST_CASE("ws: frames sent in the request's packet are read",
          "[ws][handshake]") {
  Server srv;
  Frame pong, echo;
  int hs = 1;
  int rc = run_ws(srv, [&](Client &c) {
    // The last frame is longer than what the HTTP loop reads at once, so
    // its start comes with the request and its end from the socket.
    hs = c.handshake("", frame(9, "x") + frame(1, "first") +
                             frame(2, std::string(300, 'b')) +
                             frame(2, pattern(40000, 1)));
    if (hs != 0) return -1;
    if (c.read_frame(&pong) != 0) return -2;
    if (c.read_frame(&echo) != 0) return -3;
    Frame e2, e3;
    if (c.read_frame(&e2) != 0 || c.read_frame(&e3) != 0) return -4;
    c.send(frame(8, close_payload(1000)));
    return c.read_eof();
  });
  REQUIRE(rc == 0);
  CHECK(hs == 0);
  CHECK(pong.op == 10);
  CHECK(pong.payload == "x");
  CHECK(echo.payload == "first");
  REQUIRE(srv.got.size() == 3);
  CHECK(srv.got[1].data == std::string(300, 'b'));
  CHECK(srv.got[2].data == pattern(40000, 1));
}

// ---- Closing ----------------------------------------------------------------

TEST_CASE("ws: a close from the client is answered with its code",
          "[ws][close]") {
  Server srv;
  Frame close;
  int fr = 1, eof = 1;
  int rc = run_ws(srv, [&](Client &c) {
    if (c.handshake() != 0) return -1;
    c.send(frame(8, close_payload(4001, "bye now")));
    fr = c.read_frame(&close);
    eof = c.read_eof();
    return 0;
  });
  REQUIRE(rc == 0);
  CHECK(fr == 0);
  CHECK(close.op == 8);
  CHECK(close.close_code() == 4001);
  CHECK(eof == 0);
  CHECK(srv.recv_rc == WEFT_ECLOSED);
  CHECK(srv.close_code == 4001);
  CHECK(srv.close_reason == "bye now");
}

TEST_CASE("ws: a close without a code is reported as 1005", "[ws][close]") {
  Server srv;
  Frame close;
  int rc = run_ws(srv, [&](Client &c) {
    if (c.handshake() != 0) return -1;
    c.send(frame(8, ""));
    c.read_frame(&close);
    return c.read_eof();
  });
  REQUIRE(rc == 0);
  CHECK(close.op == 8);
  CHECK(close.payload.empty());
  CHECK(srv.close_code == WEFT_WS_CLOSE_NO_STATUS);
}

TEST_CASE(
    "ws: the server closes with a code and reason and waits for the answer",
    "[ws][close]") {
  Server srv;
  int close_rc = 1, send_after = 1, recv_after = 1;
  srv.session = [&](weft_ws *ws) {
    weft_ws_send_text(ws, "last words", 10);
    close_rc = weft_ws_close(ws, 4000, "done");
    send_after = weft_ws_send_text(ws, "x", 1);
    weft_ws_msg m;
    recv_after = weft_ws_recv(ws, &m);
    return 0;
  };
  Frame msg, close;
  int eof = 1;
  int rc = run_ws(srv, [&](Client &c) {
    if (c.handshake() != 0) return -1;
    c.read_frame(&msg);
    // A message still on its way when the server closed is dropped.
    c.send(frame(1, "late"));
    c.read_frame(&close);
    c.send(frame(8, close_payload(4000)));
    eof = c.read_eof();
    return 0;
  });
  REQUIRE(rc == 0);
  CHECK(msg.payload == "last words");
  CHECK(close.op == 8);
  CHECK(close.close_code() == 4000);
  CHECK(close.payload.substr(2) == "done");
  CHECK(close_rc == 0);
  CHECK(send_after == WEFT_ECLOSED);
  CHECK(recv_after == WEFT_ECLOSED);
  CHECK(srv.close_code == 4000);
  CHECK(eof == 0);
}

TEST_CASE("ws: a close from one task while another receives", "[ws][close]") {
  Server srv;
  int close_rc = 1, recv_rc = 1, busy_rc = 1;
  srv.session = [&](weft_ws *ws) {
    Tasks t;
    t.spawn(0, [&] {
      weft_ws_msg m;
      while ((recv_rc = weft_ws_recv(ws, &m)) == 0) {
      }
      return 0;
    });
    t.spawn(0, [&] {
      weft_sleep(20);
      weft_ws_msg m;
      busy_rc = weft_ws_recv(ws, &m); // one receiver at a time
      close_rc = weft_ws_close(ws, 1001, "going");
      return 0;
    });
    return t.join();
  };
  Frame close;
  int rc = run_ws(srv, [&](Client &c) {
    if (c.handshake() != 0) return -1;
    c.read_until_close(&close);
    c.send(frame(8, close_payload(1001)));
    return c.read_eof();
  });
  REQUIRE(rc == 0);
  CHECK(close.close_code() == 1001);
  CHECK(busy_rc == UV_EBUSY);
  CHECK(close_rc == 0);
  CHECK(recv_rc == WEFT_ECLOSED);
  CHECK(srv.close_code == 1001);
}

TEST_CASE("ws: a peer that never answers our close is given up on",
          "[ws][close]") {
  Server srv;
  srv.limits.close_timeout_ms = 100;
  int close_rc = 1;
  srv.session = [&](weft_ws *ws) {
    close_rc = weft_ws_close(ws, 1000, nullptr);
    return 0;
  };
  Frame close;
  int rc = run_ws(srv, [&](Client &c) {
    if (c.handshake() != 0) return -1;
    c.read_until_close(&close);
    return c.read_eof(); // without answering
  });
  REQUIRE(rc == 0);
  CHECK(close.close_code() == 1000);
  CHECK(close_rc == UV_ETIMEDOUT);
}

TEST_CASE("ws: bad close arguments are refused", "[ws][close]") {
  Server srv;
  std::vector<int> rcs;
  srv.session = [&](weft_ws *ws) {
    rcs.push_back(weft_ws_close(ws, 1005, nullptr));
    rcs.push_back(weft_ws_close(ws, 999, nullptr));
    rcs.push_back(weft_ws_close(ws, 1000, std::string(124, 'r').c_str()));
    rcs.push_back(weft_ws_close(ws, 1000, "\xff"));
    rcs.push_back(weft_ws_close(ws, 0, "reason without a code"));
    rcs.push_back(weft_ws_send_text(ws, "\xc3", 1));
    rcs.push_back(weft_ws_send_ping(ws, std::string(126, 'p').data(), 126));
    rcs.push_back(weft_ws_send(ws, 3, "x", 1));
    return echo_session(&srv, ws);
  };
  int rc = run_ws(srv, [&](Client &c) {
    if (c.handshake() != 0) return -1;
    c.send(frame(8, close_payload(1000)));
    return c.read_eof();
  });
  REQUIRE(rc == 0);
  REQUIRE(rcs.size() == 8);
  for (int r : rcs) CHECK(r == UV_EINVAL);
  CHECK(srv.recv_rc == WEFT_ECLOSED);
}

// ---- Protocol violations ----------------------------------------------------

TEST_CASE("ws: each protocol violation is closed with 1002",
          "[ws][violation]") {
  const std::string top_bit("\x80\x00\x00\x00\x00\x00\x00\x01", 8);
  std::vector<BadBytes> cases = {
      {"unmasked frame", frame(1, "hi", true, false)},
      {"RSV1 set", frame(1, "hi", true, true, 4)},
      {"RSV3 set", frame(2, "hi", true, true, 1)},
      {"opcode 3", frame(3, "hi")},
      {"opcode 0xB", frame(11, "")},
      {"ping of 126 bytes", frame(9, std::string(126, 'p'))},
      {"fragmented ping", frame(9, "p", false)},
      {"continuation first", frame(0, "x")},
      {"new message inside a fragmented one",
       frame(1, "a", false) + frame(1, "b")},
      {"64-bit length with its top bit set",
       frame(2, "", true, true, 0, &top_bit)},
      {"close of one byte", frame(8, std::string(1, '\x03'))},
      {"close code 1005", frame(8, close_payload(1005))},
      {"close code 999", frame(8, close_payload(999))},
      {"close code 2000", frame(8, close_payload(2000))},
  };
  check_violations(cases, 1002, UV_EPROTO);
}

TEST_CASE("ws: text that is not UTF-8 is closed with 1007", "[ws][violation]") {
  std::vector<BadBytes> cases = {
      {"0xFF", frame(1, "ab\xff")},
      {"overlong NUL", frame(1, "\xc0\x80")},
      {"overlong three bytes", frame(1, "\xe0\x80\xaf")},
      {"surrogate", frame(1, "\xed\xa0\x80")},
      {"past U+10FFFF", frame(1, "\xf4\x90\x80\x80")},
      {"truncated at the end", frame(1, "abc\xe2\x82")},
      {"broken across fragments", frame(1, "\xe2\x82", false) + frame(0, "A")},
      {"truncated in the last fragment",
       frame(1, "ok", false) + frame(0, "\xf0\x9f\x98")},
      {"close reason", frame(8, close_payload(1000, "\xff"))},
  };
  check_violations(cases, 1007, UV_EILSEQ);
}

TEST_CASE("ws: valid UTF-8 of every length passes", "[ws][echo]") {
  // U+007F, U+0080, U+07FF, U+0800, U+FFFF, U+10000, U+10FFFF, and an
  // emoji split into four fragments of one byte.
  const std::string text = "\x7f\xc2\x80\xdf\xbf\xe0\xa0\x80\xef\xbf\xbf\xf0"
                           "\x90\x80\x80\xf4\x8f\xbf\xbf";
  Server srv;
  Frame e1, e2;
  int rc = run_ws(srv, [&](Client &c) {
    if (c.handshake() != 0) return -1;
    c.send(frame(1, text));
    c.send(frame(1, "\xf0", false) + frame(0, "\x9f", false) +
           frame(0, "\x98", false) + frame(0, "\x80", true));
    c.read_frame(&e1);
    c.read_frame(&e2);
    c.send(frame(8, close_payload(1000)));
    return c.read_eof();
  });
  REQUIRE(rc == 0);
  CHECK(e1.payload == text);
  CHECK(e2.payload == "\xf0\x9f\x98\x80");
}

TEST_CASE("ws: a message over the limits is closed with 1009",
          "[ws][violation]") {
  const std::string four_gib("\x00\x00\x00\x01\x00\x00\x00\x00", 8);
  std::vector<BadBytes> cases = {
      {"one frame", frame(2, std::string(1001, 'x'))},
      {"fragments", frame(2, std::string(600, 'x'), false) +
                        frame(0, std::string(600, 'y'))},
      {"a frame over the frame limit", frame(2, std::string(801, 'x'), false)},
      {"a 64-bit length", frame(2, "", true, true, 0, &four_gib)},
  };
  check_violations(cases, 1009, UV_EMSGSIZE, [](Server &srv) {
    srv.limits.max_message_bytes = 1000;
    srv.limits.max_frame_bytes = 800;
  });
}

// ---- Time -------------------------------------------------------------------

TEST_CASE("ws: a silent peer is pinged, then closed with 1001", "[ws][idle]") {
  Server srv;
  srv.limits.ping_interval_ms = 30;
  srv.limits.idle_timeout_ms = 200;
  std::vector<int> ops;
  int eof = 1;
  int rc = run_ws(srv, [&](Client &c) {
    if (c.handshake() != 0) return -1;
    Frame f;
    // Answer the first two pings, then go quiet.
    int answered = 0;
    while (c.read_frame(&f) == 0) {
      ops.push_back(f.op);
      if (f.op == 8) break;
      if (f.op == 9 && answered < 2) {
        answered++;
        c.send(frame(10, f.payload));
      }
    }
    eof = c.read_eof();
    return 0;
  });
  REQUIRE(rc == 0);
  REQUIRE(ops.size() >= 4);
  CHECK(ops[0] == 9);
  CHECK(ops[1] == 9);
  CHECK(ops[2] == 9);
  CHECK(ops.back() == 8);
  CHECK(srv.recv_rc == UV_ETIMEDOUT);
  CHECK(eof == 0);
}

// ---- Tasks ------------------------------------------------------------------

TEST_CASE("ws: many tasks sending on one connection never interleave frames",
          "[ws][concurrency]") {
  const int kSenders = 8, kEach = 25;
  Server srv;
  std::vector<int> send_rcs(kSenders, 1);
  int recv_rc = 1;
  srv.session = [&](weft_ws *ws) {
    Tasks t(WEFT_COLLECT);
    // The receiver answers the client's pings in between the senders'
    // frames, and ends at the client's close.
    t.spawn(0, [&] {
      weft_ws_msg m;
      while ((recv_rc = weft_ws_recv(ws, &m)) == 0) {
      }
      return 0;
    });
    for (int s = 0; s < kSenders; s++) {
      t.spawn(0, [&, s] {
        int r = 0;
        for (int i = 0; i < kEach && r == 0; i++) {
          // Sizes from a few bytes to 200 KB: the large ones are written
          // in several pieces, with other tasks waiting to write.
          size_t n = 16 + (size_t)((s * 7919 + i * 104729) % 5) * 50000;
          std::string p =
              "s" + std::to_string(s) + " m" + std::to_string(i) + " ";
          p += std::string(n - p.size(), (char)('a' + s));
          r = weft_ws_send_binary(ws, p.data(), p.size());
          if (i % 8 == 0) weft_yield();
        }
        send_rcs[s] = r;
        return 0;
      });
    }
    return t.join();
  };
  int bad = 0, frames = 0, pongs = 0;
  std::map<int, int> next;
  int rc = run_ws(srv, [&](Client &c) {
    if (c.handshake() != 0) return -1;
    // Let the senders fill the socket before reading anything.
    weft_sleep(50);
    for (int k = 0; k < 5; k++) c.send(frame(9, "k" + std::to_string(k)));
    while (frames < kSenders * kEach) {
      Frame f;
      if (c.read_frame(&f, 10000) != 0) return -2;
      if (f.op == 10) {
        pongs++;
        continue;
      }
      frames++;
      int s = -1, i = -1;
      if (f.op != 2 || !f.fin ||
          sscanf(f.payload.c_str(), "s%d m%d ", &s, &i) != 2 || s < 0 ||
          s >= kSenders || next[s] != i) {
        bad++;
        continue;
      }
      next[s] = i + 1;
      size_t start = f.payload.find(' ', f.payload.find(' ') + 1) + 1;
      if (f.payload.find_first_not_of((char)('a' + s), start) !=
          std::string::npos)
        bad++;
    }
    c.send(frame(8, close_payload(1000)));
    Frame close;
    c.read_until_close(&close);
    return c.read_eof();
  });
  REQUIRE(rc == 0);
  CHECK(bad == 0);
  CHECK(frames == kSenders * kEach);
  CHECK(pongs == 5);
  for (int r : send_rcs) CHECK(r == 0);
  CHECK(recv_rc == WEFT_ECLOSED);
}

TEST_CASE("ws: a send to a peer that does not read times out",
          "[ws][concurrency]") {
  Server srv;
  srv.limits.write_timeout_ms = 100;
  int send_rc = 1, again_rc = 1, sent = 0;
  bool done = false;
  srv.session = [&](weft_ws *ws) {
    std::string chunk(64 * 1024, 'w');
    while ((send_rc = weft_ws_send_binary(ws, chunk.data(), chunk.size())) == 0)
      sent++;
    again_rc = weft_ws_send_text(ws, "x", 1);
    done = true;
    return 0;
  };
  int rc = run_ws(srv, [&](Client &c) {
    if (c.handshake() != 0) return -1;
    wait_until([&] { return done; }, 10000);
    c.read_eof(10000);
    return 0;
  });
  REQUIRE(rc == 0);
  CHECK(sent > 0);
  CHECK(send_rc == UV_ETIMEDOUT);
  CHECK(again_rc == UV_ETIMEDOUT);
}

TEST_CASE("ws: a send from another executor is refused", "[ws][concurrency]") {
  Server srv;
  int foreign_rc = 1, own_rc = 1;
  srv.session = [&](weft_ws *ws) {
    Tasks t;
    t.spawn(2, [&] {
      foreign_rc = weft_ws_send_text(ws, "x", 1);
      return 0;
    });
    t.join();
    own_rc = weft_ws_send_text(ws, "y", 1);
    return echo_session(&srv, ws);
  };
  Frame f;
  int rc = run_ws(
      srv,
      [&](Client &c) {
        if (c.handshake() != 0) return -1;
        c.read_frame(&f);
        c.send(frame(8, close_payload(1000)));
        return c.read_eof();
      },
      2);
  REQUIRE(rc == 0);
  CHECK(foreign_rc == UV_EINVAL);
  CHECK(own_rc == 0);
  CHECK(f.payload == "y");
}

TEST_CASE("ws: freeing ends the calls other tasks are making", "[ws][cancel]") {
  Server srv;
  srv.session_frees = true;
  int sender_rc = 1, reader_rc = 1, sent = 0;
  bool freed = false;
  srv.session = [&](weft_ws *ws) {
    Tasks t(WEFT_COLLECT);
    t.spawn(0, [&] {
      weft_ws_msg m;
      reader_rc = weft_ws_recv(ws, &m);
      return 0;
    });
    t.spawn(0, [&] {
      // The client reads nothing: this sender ends up waiting on a full
      // socket.
      std::string chunk(64 * 1024, 'q');
      while ((sender_rc =
                  weft_ws_send_binary(ws, chunk.data(), chunk.size())) == 0)
        sent++;
      return 0;
    });
    wait_until([&] { return sent >= 4; }, 5000);
    weft_sleep(50);
    weft_ws_free(ws);
    freed = true;
    int r = t.join();
    return r;
  };
  int eof = 1;
  int rc = run_ws(srv, [&](Client &c) {
    if (c.handshake() != 0) return -1;
    wait_until([&] { return freed; }, 10000);
    eof = c.read_eof(10000);
    return 0;
  });
  REQUIRE(rc == 0);
  CHECK(freed);
  CHECK(sent >= 4);
  CHECK(sender_rc == WEFT_ECLOSED);
  CHECK(reader_rc == WEFT_ECLOSED);
  CHECK(eof == 0);
}

TEST_CASE("ws: a receive cancelled part-way goes on where it stopped",
          "[ws][cancel]") {
  Server srv;
  int first = 1, second = 1;
  bool half_sent = false, first_done = false;
  std::string got;
  srv.session = [&](weft_ws *ws) {
    wait_until([&] { return half_sent; }, 5000);
    weft_ws_msg m;
    weft_scope s;
    weft_scope_enter(&s, 50);
    first = weft_ws_recv(ws, &m);
    weft_scope_leave(&s);
    first_done = true;
    second = weft_ws_recv(ws, &m);
    if (second == 0) got.assign((const char *)m.data, m.len);
    return echo_session(&srv, ws);
  };
  int rc = run_ws(srv, [&](Client &c) {
    if (c.handshake() != 0) return -1;
    std::string f = frame(1, "resumed " + pattern(40000, 3), false) +
                    frame(9, "ping") + frame(0, " end");
    // Half of the first frame's header, then half of its payload.
    c.send(f.substr(0, 3));
    half_sent = true;
    weft_sleep(10);
    c.send(f.substr(3, 20000));
    wait_until([&] { return first_done; }, 5000);
    c.send(f.substr(20003));
    Frame pong;
    c.read_frame(&pong);
    c.send(frame(8, close_payload(1000)));
    return c.read_eof();
  });
  REQUIRE(rc == 0);
  CHECK(first == UV_ETIMEDOUT);
  CHECK(second == 0);
  CHECK(got == "resumed " + pattern(40000, 3) + " end");
  CHECK(srv.recv_rc == WEFT_ECLOSED);
}

TEST_CASE(
    "ws: cancelling the connection's task mid-receive leaves nothing behind",
    "[ws][cancel]") {
  Server srv;
  bool receiving = false;
  int recv_rc = 1;
  srv.session = [&](weft_ws *ws) {
    weft_ws_msg m;
    receiving = true;
    recv_rc = weft_ws_recv(ws, &m);
    return recv_rc;
  };
  int eof = 1, serve_task_rc = 1;
  int rc = run(1, [&]() -> int {
    int r = weft_tcp_listen("127.0.0.1", 0, 0, 0, &srv.listener);
    if (r != 0) return r;
    srv.port = weft_tcp_local_port(srv.listener);
    Tasks server;
    server.spawn(0, [&] { return serve_task_rc = serve_one(&srv); });
    Tasks client;
    client.spawn(0, [&] {
      Client c;
      if (c.connect(srv.port) != 0 || c.handshake() != 0) return -1;
      // Half a frame: the server is inside a frame when it is cancelled.
      c.send(frame(2, std::string(1000, 'z')).substr(0, 500));
      wait_until([&] { return receiving; }, 5000);
      weft_sleep(20);
      server.cancel();
      eof = c.read_eof();
      return 0;
    });
    int cr = client.join();
    server.join();
    weft_tcp_close(srv.listener);
    return cr;
  });
  REQUIRE(rc == 0);
  CHECK(recv_rc == UV_ECANCELED);
  CHECK(srv.serve_rc == UV_ECANCELED);
  CHECK(eof == 0);
}

#else

TEST_CASE("ws: module not built", "[ws]") {
  WARN("weft_http was not built (llhttp missing): WebSocket tests skipped");
}

#endif
