// Tests of the permessage-deflate extension (RFC 7692) of WebSocket server
// connections (runtime/ext/http/weft_ws.h) over real connections on
// 127.0.0.1. As in test_ws_server.cpp, a server task serves one connection
// (an echo loop unless the test gives another session) and a client task
// written here speaks the protocol byte by byte; the client's compression
// and decompression are zlib's raw deflate, done outside the weft tasks
// (before the run, or on the frames recorded during it).
//
// Proves: the answer to an offer (with its parameters, the first acceptable
// of several offers, windows and context takeover as asked), offers that
// are declined without failing the upgrade, deflate turned off, compressed
// text and binary messages received whole (fragmented too, with context
// takeover across messages and without, ended with BFINAL), replies sent
// compressed with RSV1 and small ones sent plain (and ones that would not
// shrink), empty and large messages, the server's context
// takeover when turned on, and the close codes: RSV1 without the extension,
// on a continuation or a control frame (1002), a message that inflates past
// the limit (1009), a stream that does not inflate and compressed text that
// is not UTF-8 (1007).

#include <catch2/catch.hpp>

#include "ws_support.h"

#ifdef WEFT_TEST_HAVE_WS

#include <string.h>
#include <zlib.h>

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

// A chat-like text: compresses well, and better still against the
// previous message.
std::string chat_text(int seed) {
  std::string s;
  for (int i = 0; i < 8; i++)
    s += "{\"room\":\"lobby\",\"user\":\"user" + std::to_string(seed + i) +
         "\",\"text\":\"hello there, how are things today?\"}\n";
  return s;
}

// ---- The client's zlib side -------------------------------------------------

// A raw deflate compressor for client messages (RFC 7692 section 7.2.1).
class Deflater {
public:
  explicit Deflater(int bits = 15) {
    ok_ =
        deflateInit2(&z_, 6, Z_DEFLATED, -bits, 8, Z_DEFAULT_STRATEGY) == Z_OK;
  }
  ~Deflater() { deflateEnd(&z_); }

  // One message: a sync flush with its 00 00 ff ff tail taken off, or with
  // finish the stream ended (BFINAL) and restarted for the next message.
  std::string compress(const std::string &in, bool finish = false) {
    // An empty message is the single byte 00 (section 7.2.3.6): a second
    // sync flush in a row would give zlib nothing to write.
    if (in.empty() && !finish) return std::string(1, '\0');
    std::string out;
    std::vector<unsigned char> buf(in.size() + 1024);
    z_.next_in = (Bytef *)in.data();
    z_.avail_in = (uInt)in.size();
    int flush = finish ? Z_FINISH : Z_SYNC_FLUSH;
    do {
      z_.next_out = buf.data();
      z_.avail_out = (uInt)buf.size();
      int r = deflate(&z_, flush);
      if (r != Z_OK && r != Z_STREAM_END && r != Z_BUF_ERROR) ok_ = false;
      out.append((const char *)buf.data(), buf.size() - z_.avail_out);
    } while (z_.avail_out == 0);
    if (finish) {
      deflateReset(&z_);
    } else if (out.size() >= 4 &&
               out.compare(out.size() - 4, 4, std::string("\0\0\xff\xff", 4)) ==
                   0) {
      out.resize(out.size() - 4);
    } else {
      ok_ = false;
    }
    return out;
  }
  bool ok() const { return ok_; }

private:
  z_stream z_{};
  bool ok_ = false;
};

// A raw inflater for server messages (section 7.2.2).
class Inflater {
public:
  explicit Inflater(int bits = 15) { ok_ = inflateInit2(&z_, -bits) == Z_OK; }
  ~Inflater() { inflateEnd(&z_); }

  // Inflates one message's payload with the tail put back.
  std::string inflate_msg(const std::string &payload) {
    std::string in = payload + std::string("\0\0\xff\xff", 4), out;
    std::vector<unsigned char> buf(65536);
    z_.next_in = (Bytef *)in.data();
    z_.avail_in = (uInt)in.size();
    do {
      z_.next_out = buf.data();
      z_.avail_out = (uInt)buf.size();
      int r = inflate(&z_, Z_SYNC_FLUSH);
      if (r != Z_OK && r != Z_BUF_ERROR) {
        ok_ = false;
        break;
      }
      out.append((const char *)buf.data(), buf.size() - z_.avail_out);
    } while (z_.avail_out == 0 || z_.avail_in > 0);
    return out;
  }
  bool ok() const { return ok_; }

private:
  z_stream z_{};
  bool ok_ = false;
};

// The value of header name in a response head, or "" when absent.
std::string header_value(const std::string &head, const std::string &name) {
  size_t at = head.find("\r\n" + name + ": ");
  if (at == std::string::npos) return "";
  at += name.size() + 4;
  return head.substr(at, head.find("\r\n", at) - at);
}

const char kOffer[] = "Sec-WebSocket-Extensions: permessage-deflate; "
                      "client_max_window_bits\r\n";

// A client session: handshake with extra headers, send each of the frames,
// read one reply per expected reply, then close. Records everything.
struct Exchange {
  int handshake_rc = 1, eof_rc = 1;
  std::string head;
  std::vector<Frame> replies;
  Frame close;
};

int exchange(Server &srv, const std::string &extra,
             const std::vector<std::string> &frames, size_t replies,
             Exchange *ex) {
  return run_ws(srv, [&](Client &c) {
    ex->handshake_rc = c.handshake(extra);
    ex->head = c.head();
    if (ex->handshake_rc != 0) return 0;
    for (const std::string &f : frames)
      if (c.send(f) != 0) return 0;
    for (size_t i = 0; i < replies; i++) {
      Frame f;
      if (c.read_frame(&f) != 0) return 0;
      ex->replies.push_back(f);
    }
    c.send(frame(8, close_payload(1000)));
    c.read_until_close(&ex->close);
    ex->eof_rc = c.read_eof();
    return 0;
  });
}

// A compressed client frame: RSV1 set on the first frame of the message.
std::string zframe(int op, const std::string &payload, bool fin = true) {
  return frame(op, payload, fin, true, 4);
}

} // namespace

// ---- Negotiation ------------------------------------------------------------

TEST_CASE("ws deflate: a browser's offer is accepted", "[ws][deflate]") {
  Server srv;
  Exchange ex;
  int rc = exchange(srv, kOffer, {}, 0, &ex);
  REQUIRE(rc == 0);
  CHECK(ex.handshake_rc == 0);
  // By default the server compresses each message afresh and lets the
  // client keep its window as it likes.
  CHECK(header_value(ex.head, "Sec-WebSocket-Extensions") ==
        "permessage-deflate; server_no_context_takeover; "
        "client_max_window_bits=15");
  CHECK(srv.extensions == header_value(ex.head, "Sec-WebSocket-Extensions"));
  CHECK(ex.close.close_code() == 1000);
  CHECK(ex.eof_rc == 0);
}

TEST_CASE("ws deflate: offer parameters are answered", "[ws][deflate]") {
  struct Case {
    const char *offer;
    int window_bits;    // the server's limit (0: default)
    int takeover;       // deflate_context_takeover (0: default)
    const char *answer; // "" when declined
  };
  std::vector<Case> cases = {
      {"permessage-deflate", 0, 0,
       "permessage-deflate; server_no_context_takeover"},
      {"permessage-deflate", 0, 1, "permessage-deflate"},
      {"permessage-deflate; server_no_context_takeover", 0, 1,
       "permessage-deflate; server_no_context_takeover"},
      {"permessage-deflate; client_no_context_takeover", 0, 1,
       "permessage-deflate; client_no_context_takeover"},
      {"Permessage-Deflate; Server_Max_Window_Bits=\"10\"", 0, 1,
       "permessage-deflate; server_max_window_bits=10"},
      {"permessage-deflate; server_max_window_bits=12", 10, 1,
       "permessage-deflate; server_max_window_bits=10"},
      {"permessage-deflate", 11, 1,
       "permessage-deflate; server_max_window_bits=11"},
      {"permessage-deflate; client_max_window_bits=9", 0, 1,
       "permessage-deflate; client_max_window_bits=9"},
      {"permessage-deflate; client_max_window_bits", 12, 1,
       "permessage-deflate; server_max_window_bits=12; "
       "client_max_window_bits=12"},
      {"permessage-deflate ; client_no_context_takeover ; "
       "server_no_context_takeover ; server_max_window_bits = 15",
       0, 1,
       "permessage-deflate; server_no_context_takeover; "
       "client_no_context_takeover; server_max_window_bits=15"},
      // The first acceptable offer wins, across lists and headers.
      {"x-webkit-deflate-frame, permessage-deflate; server_max_window_bits=8, "
       "permessage-deflate; client_max_window_bits=10",
       0, 1, "permessage-deflate; client_max_window_bits=10"},
      // Declined: the upgrade goes on without the extension.
      {"permessage-deflate; server_max_window_bits=7", 0, 0, ""},
      {"permessage-deflate; server_max_window_bits=16", 0, 0, ""},
      {"permessage-deflate; server_max_window_bits=08", 0, 0, ""},
      {"permessage-deflate; server_max_window_bits", 0, 0, ""},
      {"permessage-deflate; client_max_window_bits=1x", 0, 0, ""},
      {"permessage-deflate; server_no_context_takeover=1", 0, 0, ""},
      {"permessage-deflate; server_no_context_takeover; "
       "server_no_context_takeover",
       0, 0, ""},
      {"permessage-deflate; client_max_window_bits; client_max_window_bits=9",
       0, 0, ""},
      {"permessage-deflate; unknown_parameter", 0, 0, ""},
      {"permessage-deflate;", 0, 0, ""},
      {"permessage-deflate=1", 0, 0, ""},
      {"deflate-frame", 0, 0, ""},
      {", ,", 0, 0, ""},
      {"permessage-deflate; server_max_window_bits=\"9", 0, 0, ""},
  };
  for (const Case &k : cases) {
    Server srv;
    srv.limits.deflate_window_bits = k.window_bits;
    srv.limits.deflate_context_takeover = k.takeover;
    Exchange ex;
    int rc = exchange(
        srv, std::string("Sec-WebSocket-Extensions: ") + k.offer + "\r\n", {},
        0, &ex);
    INFO(k.offer << ": " << ex.head);
    REQUIRE(rc == 0);
    CHECK(ex.handshake_rc == 0);
    CHECK(header_value(ex.head, "Sec-WebSocket-Extensions") == k.answer);
    CHECK(srv.extensions == k.answer);
    if (*k.answer == '\0')
      CHECK(ex.head.find("Sec-WebSocket-Extensions") == std::string::npos);
    CHECK(ex.close.close_code() == 1000);
  }
}

TEST_CASE("ws deflate: turned off, an offer gets no answer", "[ws][deflate]") {
  Server srv;
  srv.limits.deflate = -1;
  Exchange ex;
  std::string text = chat_text(1);
  int rc = exchange(srv, kOffer, {frame(1, text)}, 1, &ex);
  REQUIRE(rc == 0);
  CHECK(ex.handshake_rc == 0);
  CHECK(ex.head.find("Sec-WebSocket-Extensions") == std::string::npos);
  CHECK(srv.extensions.empty());
  REQUIRE(ex.replies.size() == 1);
  CHECK(ex.replies[0].rsv == 0);
  CHECK(ex.replies[0].payload == text);
}

// ---- Messages ---------------------------------------------------------------

TEST_CASE("ws deflate: compressed messages are received and answered "
          "compressed",
          "[ws][deflate]") {
  // The client keeps its context across messages (no
  // client_no_context_takeover); the server, by default, does not.
  Deflater d;
  std::vector<std::string> msgs = {chat_text(1), chat_text(2),
                                   pattern(100000, 3), chat_text(3)};
  std::string bin(5000, '\0');
  for (size_t i = 0; i < bin.size(); i++) bin[i] = (char)(i % 7 == 0 ? i : 0);
  std::vector<std::string> frames;
  frames.push_back(zframe(1, d.compress(msgs[0])));
  frames.push_back(zframe(1, d.compress(msgs[1])));
  frames.push_back(zframe(1, d.compress(msgs[2])));
  // A fragmented message: RSV1 on the first frame only.
  std::string z3 = d.compress(msgs[3]);
  size_t third = z3.size() / 3;
  frames.push_back(zframe(1, z3.substr(0, third), false));
  frames.push_back(frame(9, "ping")); // a control frame in between
  frames.push_back(frame(0, z3.substr(third, third), false));
  frames.push_back(frame(0, z3.substr(2 * third), true));
  frames.push_back(zframe(2, d.compress(bin)));
  REQUIRE(d.ok());
  Server srv;
  Exchange ex;
  int rc = exchange(srv, kOffer, frames, 6, &ex); // five echoes, one pong
  REQUIRE(rc == 0);
  CHECK(ex.handshake_rc == 0);
  REQUIRE(srv.got.size() == 5);
  for (size_t i = 0; i < 4; i++) {
    CHECK(srv.got[i].type == WEFT_WS_TEXT);
    CHECK(srv.got[i].data == msgs[i]);
  }
  CHECK(srv.got[4].type == WEFT_WS_BINARY);
  CHECK(srv.got[4].data == bin);
  REQUIRE(ex.replies.size() == 6);
  std::vector<std::string> expect = {msgs[0], msgs[1], msgs[2],
                                     "ping",  msgs[3], bin};
  for (size_t i = 0; i < ex.replies.size(); i++) {
    const Frame &f = ex.replies[i];
    INFO("reply " << i);
    if (i == 3) {
      CHECK(f.op == 10);
      CHECK(f.rsv == 0); // control frames are never compressed
      CHECK(f.payload == "ping");
      continue;
    }
    CHECK(f.op == (i == 5 ? 2 : 1));
    CHECK(f.fin == 1);
    CHECK(f.rsv == 4);
    CHECK(f.payload.size() < expect[i].size() / 2);
    // No context takeover: each reply inflates on its own.
    Inflater in;
    CHECK(in.inflate_msg(f.payload) == expect[i]);
    CHECK(in.ok());
  }
  CHECK(ex.close.close_code() == 1000);
  CHECK(srv.recv_rc == WEFT_ECLOSED);
}

TEST_CASE("ws deflate: small messages go out uncompressed", "[ws][deflate]") {
  Deflater d;
  std::string small = "hi there";
  std::string edge = pattern(127, 1), at = pattern(128, 2);
  Server srv;
  Exchange ex;
  int rc = exchange(
      srv, kOffer,
      {zframe(1, d.compress(small)), frame(1, edge), zframe(1, d.compress(at))},
      3, &ex);
  REQUIRE(rc == 0);
  REQUIRE(srv.got.size() == 3);
  CHECK(srv.got[0].data == small);
  CHECK(srv.got[1].data == edge); // a plain message once deflate is agreed
  CHECK(srv.got[2].data == at);
  REQUIRE(ex.replies.size() == 3);
  CHECK(ex.replies[0].rsv == 0);
  CHECK(ex.replies[0].payload == small);
  CHECK(ex.replies[1].rsv == 0);
  CHECK(ex.replies[1].payload == edge);
  CHECK(ex.replies[2].rsv == 4);
  Inflater in;
  CHECK(in.inflate_msg(ex.replies[2].payload) == at);
}

// n bytes that deflate cannot shrink.
std::string noise_bytes(size_t n) {
  std::string noise(n, '\0');
  uint32_t x = 12345;
  for (char &ch : noise) {
    x = x * 1103515245u + 12345u;
    ch = (char)(x >> 24);
  }
  return noise;
}

TEST_CASE("ws deflate: a message that does not shrink goes out as it is",
          "[ws][deflate]") {
  // Without server context takeover, bytes that deflate cannot shrink are
  // sent plain.
  std::string noise = noise_bytes(4000);
  Server srv;
  Exchange ex;
  int rc = exchange(srv, kOffer, {frame(2, noise)}, 1, &ex);
  REQUIRE(rc == 0);
  REQUIRE(ex.replies.size() == 1);
  CHECK(ex.replies[0].rsv == 0);
  CHECK(ex.replies[0].payload == noise);
}

TEST_CASE("ws deflate: empty and large compressed messages", "[ws][deflate]") {
  // An empty message compresses to one byte; a large one that does not
  // shrink is sent compressed all the same when the server keeps its
  // context (the client's inflater must see every byte).
  Deflater d;
  std::string big = noise_bytes(300000);
  std::string zbig = d.compress(big);
  std::string zempty = d.compress("");
  REQUIRE(d.ok());
  Server srv;
  srv.limits.deflate_context_takeover = 1;
  Exchange ex;
  int rc =
      exchange(srv, kOffer,
               {zframe(2, zempty), zframe(2, zbig.substr(0, 100000), false),
                frame(0, zbig.substr(100000), true), zframe(1, zempty)},
               3, &ex);
  REQUIRE(rc == 0);
  REQUIRE(srv.got.size() == 3);
  CHECK(srv.got[0].data.empty());
  CHECK(srv.got[1].data == big);
  CHECK(srv.got[2].type == WEFT_WS_TEXT);
  CHECK(srv.got[2].data.empty());
  REQUIRE(ex.replies.size() == 3);
  CHECK(ex.replies[0].rsv == 0);
  CHECK(ex.replies[0].payload.empty());
  CHECK(ex.replies[1].rsv == 4);
  Inflater in;
  CHECK(in.inflate_msg(ex.replies[1].payload) == big);
  CHECK(in.ok());
}

TEST_CASE("ws deflate: server context takeover when turned on",
          "[ws][deflate]") {
  Server srv;
  srv.limits.deflate_context_takeover = 1;
  srv.limits.deflate_min_bytes = 1;
  Exchange ex;
  std::string text = chat_text(7);
  int rc = exchange(
      srv, "Sec-WebSocket-Extensions: permessage-deflate\r\n",
      {frame(1, text), frame(1, text), frame(1, text), frame(1, "x")}, 4, &ex);
  REQUIRE(rc == 0);
  CHECK(srv.extensions == "permessage-deflate");
  REQUIRE(ex.replies.size() == 4);
  // One inflater for the connection: the later replies refer back to the
  // earlier ones, and come out far smaller.
  Inflater in;
  for (size_t i = 0; i < 3; i++) {
    CHECK(ex.replies[i].rsv == 4);
    CHECK(in.inflate_msg(ex.replies[i].payload) == text);
  }
  CHECK(ex.replies[3].rsv == 4); // deflate_min_bytes = 1
  CHECK(in.inflate_msg(ex.replies[3].payload) == "x");
  CHECK(in.ok());
  CHECK(ex.replies[1].payload.size() * 3 < ex.replies[0].payload.size());
  CHECK(ex.replies[2].payload.size() * 3 < ex.replies[0].payload.size());
}

TEST_CASE("ws deflate: client_no_context_takeover and BFINAL streams",
          "[ws][deflate]") {
  // Each message from a fresh compressor, one of them ended with a final
  // block, and a small window.
  std::vector<std::string> msgs = {chat_text(1), chat_text(2), chat_text(3)};
  std::vector<std::string> frames;
  for (size_t i = 0; i < msgs.size(); i++) {
    Deflater d(10);
    frames.push_back(zframe(1, d.compress(msgs[i], i == 1)));
    REQUIRE(d.ok());
  }
  Server srv;
  Exchange ex;
  int rc = exchange(srv,
                    "Sec-WebSocket-Extensions: permessage-deflate; "
                    "client_no_context_takeover; client_max_window_bits=10\r\n",
                    frames, 3, &ex);
  REQUIRE(rc == 0);
  CHECK(srv.extensions ==
        "permessage-deflate; server_no_context_takeover; "
        "client_no_context_takeover; client_max_window_bits=10");
  REQUIRE(srv.got.size() == 3);
  for (size_t i = 0; i < 3; i++) CHECK(srv.got[i].data == msgs[i]);
  CHECK(srv.recv_rc == WEFT_ECLOSED);
}

TEST_CASE("ws deflate: the server keeps to a window it was given",
          "[ws][deflate]") {
  // A message that repeats at a distance of 4 KiB: a 1 KiB window cannot
  // refer that far back, and an inflater with a 1 KiB window would fail on
  // a reference that did.
  std::string block = pattern(4096, 5), text = block + block + block;
  Server srv;
  srv.limits.deflate_context_takeover = 1;
  Exchange ex;
  int rc = exchange(srv,
                    "Sec-WebSocket-Extensions: permessage-deflate; "
                    "server_max_window_bits=10\r\n",
                    {frame(1, text), frame(1, text)}, 2, &ex);
  REQUIRE(rc == 0);
  CHECK(srv.extensions == "permessage-deflate; server_max_window_bits=10");
  REQUIRE(ex.replies.size() == 2);
  Inflater in(10);
  for (const Frame &f : ex.replies) {
    CHECK(f.rsv == 4);
    CHECK(in.inflate_msg(f.payload) == text);
  }
  CHECK(in.ok());
}

// ---- Violations -------------------------------------------------------------

namespace {

// The result of a client that breaks the protocol with bad bytes.
struct Violation {
  int send_rc = 1, handshake_rc = 1, frame_rc = 1, eof_rc = 1;
  Frame close;
};

// Sends bytes after a handshake with extra headers; records the close.
Violation violate_with(Server &srv, const std::string &extra,
                       const std::string &bytes, int *run_rc) {
  Violation v;
  *run_rc = run_ws(srv, [&](Client &c) {
    v.handshake_rc = c.handshake(extra);
    v.send_rc = c.send(bytes);
    v.frame_rc = c.read_until_close(&v.close);
    v.eof_rc = c.read_eof();
    return 0;
  });
  return v;
}

void check_close(const char *name, Server &srv, const std::string &extra,
                 const std::string &bytes, int close_code, int recv_rc) {
  int rc = 1;
  Violation v = violate_with(srv, extra, bytes, &rc);
  INFO(name);
  REQUIRE(rc == 0);
  CHECK(v.handshake_rc == 0);
  CHECK(v.frame_rc == 0);
  CHECK(v.close.close_code() == close_code);
  CHECK(v.eof_rc == 0);
  CHECK(srv.recv_rc == recv_rc);
  CHECK(srv.got.empty());
}

} // namespace

TEST_CASE("ws deflate: RSV1 where it has no meaning is a protocol error",
          "[ws][deflate]") {
  Deflater d;
  std::string z = d.compress(chat_text(1));
  {
    Server srv;
    check_close("RSV1 without an offer", srv, "", zframe(1, z), 1002,
                UV_EPROTO);
  }
  {
    Server srv;
    srv.limits.deflate = -1;
    check_close("RSV1 with deflate off", srv, kOffer, zframe(1, z), 1002,
                UV_EPROTO);
  }
  {
    Server srv;
    check_close("RSV1 on a continuation", srv, kOffer,
                zframe(1, z.substr(0, 5), false) + zframe(0, z.substr(5)), 1002,
                UV_EPROTO);
  }
  {
    Server srv;
    check_close("RSV1 on a ping", srv, kOffer, frame(9, "x", true, true, 4),
                1002, UV_EPROTO);
  }
  {
    Server srv;
    check_close("RSV2", srv, kOffer, frame(1, "x", true, true, 2), 1002,
                UV_EPROTO);
  }
}

TEST_CASE("ws deflate: a message that inflates past the limit is 1009",
          "[ws][deflate]") {
  // 1 MiB of zeros deflates to about a kilobyte: far under the frame
  // limit, far over the message limit once inflated.
  Deflater d;
  std::string bomb = d.compress(std::string(1 << 20, '\0'));
  REQUIRE(bomb.size() < 4096);
  Server srv;
  srv.limits.max_message_bytes = 8192;
  check_close("zip bomb", srv, kOffer, zframe(2, bomb), 1009, UV_EMSGSIZE);

  // At the limit exactly it is fine.
  Deflater d2;
  Server ok;
  ok.limits.max_message_bytes = 8192;
  Exchange ex;
  int rc = exchange(ok, kOffer,
                    {zframe(2, d2.compress(std::string(8192, '\0')))}, 1, &ex);
  REQUIRE(rc == 0);
  REQUIRE(ok.got.size() == 1);
  CHECK(ok.got[0].data == std::string(8192, '\0'));
}

TEST_CASE("ws deflate: a corrupt stream or bad text is 1007", "[ws][deflate]") {
  {
    Server srv;
    // 0xff: a final block of the reserved type 3.
    check_close("corrupt stream", srv, kOffer, zframe(2, "\xff\xff\xff\xff"),
                1007, UV_EILSEQ);
  }
  {
    Deflater d;
    Server srv;
    check_close("compressed text that is not UTF-8", srv, kOffer,
                zframe(1, d.compress("caf\xc3 and more")), 1007, UV_EILSEQ);
  }
}

#endif // WEFT_TEST_HAVE_WS
