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

#include "ws_support.h"

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

TEST_CASE("ws: several messages sent at once arrive as their own frames",
          "[ws][echo]") {
  // More than one writev's worth (32), of every length encoding.
  const size_t sizes[] = {0, 1, 125, 126, 127, 65535, 65536, 100000};
  std::vector<std::string> sent;
  for (int i = 0; i < 40; i++)
    sent.push_back(pattern(sizes[i % 8], i));
  Server srv;
  int bad_rc = 1, many_rc = 1, bin_rc = 1, empty_rc = 1;
  srv.session = [&](weft_ws *ws) {
    // A batch with one message that is not UTF-8 sends nothing.
    uv_buf_t bad[2] = {uv_buf_init((char *)"fine", 4),
                       uv_buf_init((char *)"\xc3", 1)};
    bad_rc = weft_ws_send_many(ws, WEFT_WS_TEXT, bad, 2);
    empty_rc = weft_ws_send_many(ws, WEFT_WS_TEXT, nullptr, 0);
    std::vector<uv_buf_t> bufs;
    for (std::string &m : sent)
      bufs.push_back(uv_buf_init(&m[0], (unsigned)m.size()));
    many_rc = weft_ws_send_many(ws, WEFT_WS_TEXT, bufs.data(), bufs.size());
    bin_rc = weft_ws_send_many(ws, WEFT_WS_BINARY, bufs.data(), 2);
    return echo_session(&srv, ws);
  };
  std::vector<Frame> got;
  int rc = run_ws(srv, [&](Client &c) {
    if (c.handshake() != 0) return -1;
    for (size_t i = 0; i < sent.size() + 2; i++) {
      Frame f;
      if (c.read_frame(&f, 10000) != 0) return -2;
      got.push_back(f);
    }
    c.send(frame(8, close_payload(1000)));
    return c.read_eof();
  });
  REQUIRE(rc == 0);
  CHECK(bad_rc == UV_EINVAL);
  CHECK(empty_rc == 0);
  CHECK(many_rc == 0);
  CHECK(bin_rc == 0);
  REQUIRE(got.size() == sent.size() + 2);
  for (size_t i = 0; i < got.size(); i++) {
    size_t k = i < sent.size() ? i : i - sent.size();
    INFO("frame " << i);
    CHECK(got[i].op == (i < sent.size() ? 1 : 2));
    CHECK(got[i].fin == 1);
    CHECK(got[i].masked == 0);
    CHECK(got[i].payload == sent[k]);
  }
  CHECK(srv.recv_rc == WEFT_ECLOSED);
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

TEST_CASE("ws: weft_ws_trim between messages keeps the connection going",
          "[ws][trim]") {
  Server srv;
  std::vector<std::string> got;
  int trim_rc = 1;
  srv.session = [&](weft_ws *ws) {
    weft_ws_msg m;
    int r;
    // Each message is copied out, then the buffers are given back before
    // the next wait, as a server holding many idle connections does.
    while ((r = weft_ws_recv(ws, &m)) == 0) {
      std::string text((const char *)m.data, m.len);
      got.push_back(text);
      weft_ws_trim(ws);
      weft_ws_trim(ws);  // twice: nothing more to give back
      if (weft_ws_send_text(ws, text.data(), text.size()) != 0) break;
    }
    trim_rc = r;
    return 0;
  };
  Frame a, b, c2;
  int rc = run_ws(srv, [&](Client &c) {
    if (c.handshake() != 0) return -1;
    c.send(frame(1, "one"));
    c.read_frame(&a);
    // Two messages in one write: the second is read from a buffer made
    // again after the trim.
    c.send(frame(1, std::string(3000, 'x')) + frame(1, "three"));
    c.read_frame(&b);
    c.read_frame(&c2);
    c.send(frame(8, close_payload(1000)));
    Frame close;
    c.read_frame(&close);
    return 0;
  });
  REQUIRE(rc == 0);
  CHECK(a.payload == "one");
  CHECK(b.payload == std::string(3000, 'x'));
  CHECK(c2.payload == "three");
  REQUIRE(got.size() == 3);
  CHECK(trim_rc == WEFT_ECLOSED);
}
