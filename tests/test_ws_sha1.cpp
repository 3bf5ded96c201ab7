// Tests of the SHA-1 and the Sec-WebSocket-Accept computation under the
// WebSocket module (runtime/ext/http): FIPS 180 test vectors, input fed in
// pieces of every size, and RFC 6455's worked example. No network.

#include <catch2/catch.hpp>

#if defined(__has_include)
#if __has_include(<weft_ws.h>)
#define WEFT_TEST_HAVE_WS 1
#endif
#endif

#ifdef WEFT_TEST_HAVE_WS

#include <stdio.h>
#include <string.h>

#include <string>

#include "sha1.h"
#include "weft_ws.h"

namespace {

std::string hex(const uint8_t *p, size_t n) {
  std::string s;
  char b[3];
  for (size_t i = 0; i < n; i++) {
    snprintf(b, sizeof b, "%02x", p[i]);
    s += b;
  }
  return s;
}

std::string sha1_hex(const std::string &m) {
  uint8_t d[WEFT__SHA1_DIGEST_BYTES];
  weft__sha1_digest(m.data(), m.size(), d);
  return hex(d, sizeof d);
}

} // namespace

TEST_CASE("sha1: FIPS 180 test vectors", "[ws][sha1]") {
  CHECK(sha1_hex("") == "da39a3ee5e6b4b0d3255bfef95601890afd80709");
  CHECK(sha1_hex("abc") == "a9993e364706816aba3e25717850c26c9cd0d89d");
  CHECK(sha1_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq") ==
        "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
  CHECK(sha1_hex(
            "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmno"
            "ijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu") ==
        "a49b2446a02c645bf419f995b67091253a04a259");
  CHECK(sha1_hex(std::string(1000000, 'a')) ==
        "34aa973cd4c4daa4f61eeb2bdbad27316534016f");
  // 55, 56 and 64 bytes: the padding's edge cases.
  CHECK(sha1_hex(std::string(55, 'a')) ==
        "c1c8bbdc22796e28c0e15163d20899b65621d65a");
  CHECK(sha1_hex(std::string(56, 'a')) ==
        "c2db330f6083854c99d4b5bfb6e8f29f201be699");
  CHECK(sha1_hex(std::string(64, 'a')) ==
        "0098ba824b5c16427bd7a1122a5a442a25ec644d");
}

TEST_CASE("sha1: input fed in pieces gives the same digest", "[ws][sha1]") {
  std::string m;
  for (int i = 0; i < 300; i++) m += (char)(i * 7 + 3);
  std::string whole = sha1_hex(m);
  for (size_t step = 1; step <= 130; step++) {
    weft__sha1 s;
    weft__sha1_init(&s);
    for (size_t off = 0; off < m.size(); off += step)
      weft__sha1_update(&s, m.data() + off, std::min(step, m.size() - off));
    uint8_t d[WEFT__SHA1_DIGEST_BYTES];
    weft__sha1_final(&s, d);
    INFO("step " << step);
    CHECK(hex(d, sizeof d) == whole);
  }
}

TEST_CASE("ws: the accept value of RFC 6455's example key", "[ws][handshake]") {
  char out[29];
  weft_ws_accept_key("dGhlIHNhbXBsZSBub25jZQ==", out);
  CHECK(std::string(out) == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

#else

TEST_CASE("ws: module not built", "[ws]") {
  WARN("weft_http was not built (llhttp missing): WebSocket tests skipped");
}

#endif
