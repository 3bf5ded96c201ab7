/* sha1.c: SHA-1 as FIPS 180-4 section 6.1 describes it. */
#include "sha1.h"

#include <string.h>

/* x rotated left by n bits (0 < n < 32). */
static uint32_t rotl32(uint32_t x, int n) { return (x << n) | (x >> (32 - n)); }

/* Runs the compression function over one 64-byte block. */
static void sha1_block(uint32_t h[5], const uint8_t *p) {
  uint32_t w[80];
  for (int t = 0; t < 16; t++)
    w[t] = (uint32_t)p[4 * t] << 24 | (uint32_t)p[4 * t + 1] << 16 |
           (uint32_t)p[4 * t + 2] << 8 | (uint32_t)p[4 * t + 3];
  for (int t = 16; t < 80; t++)
    w[t] = rotl32(w[t - 3] ^ w[t - 8] ^ w[t - 14] ^ w[t - 16], 1);

  uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
  for (int t = 0; t < 80; t++) {
    uint32_t f, k;
    if (t < 20) {
      f = (b & c) | (~b & d); /* Ch */
      k = 0x5a827999;
    } else if (t < 40) {
      f = b ^ c ^ d; /* Parity */
      k = 0x6ed9eba1;
    } else if (t < 60) {
      f = (b & c) | (b & d) | (c & d); /* Maj */
      k = 0x8f1bbcdc;
    } else {
      f = b ^ c ^ d;
      k = 0xca62c1d6;
    }
    uint32_t tmp = rotl32(a, 5) + f + e + k + w[t];
    e = d;
    d = c;
    c = rotl32(b, 30);
    b = a;
    a = tmp;
  }
  h[0] += a;
  h[1] += b;
  h[2] += c;
  h[3] += d;
  h[4] += e;
}

void weft__sha1_init(weft__sha1 *s) {
  s->h[0] = 0x67452301;
  s->h[1] = 0xefcdab89;
  s->h[2] = 0x98badcfe;
  s->h[3] = 0x10325476;
  s->h[4] = 0xc3d2e1f0;
  s->bytes = 0;
  s->used = 0;
}

void weft__sha1_update(weft__sha1 *s, const void *data, size_t len) {
  const uint8_t *p = data;
  s->bytes += len;
  /* Fill a partial block first, then take whole blocks straight from the
   * input, and keep what is left for later. */
  if (s->used > 0) {
    size_t take = 64 - s->used < len ? 64 - s->used : len;
    memcpy(s->block + s->used, p, take);
    s->used += take;
    p += take;
    len -= take;
    if (s->used < 64) return;
    sha1_block(s->h, s->block);
    s->used = 0;
  }
  for (; len >= 64; p += 64, len -= 64) sha1_block(s->h, p);
  if (len > 0) memcpy(s->block, p, len);
  s->used = len;
}

void weft__sha1_final(weft__sha1 *s, uint8_t out[WEFT__SHA1_DIGEST_BYTES]) {
  uint64_t bits = s->bytes * 8;
  /* A 1 bit, zeros up to 56 bytes into a block, then the length in bits as
   * a big-endian 64-bit number. */
  s->block[s->used++] = 0x80;
  if (s->used > 56) {
    memset(s->block + s->used, 0, 64 - s->used);
    sha1_block(s->h, s->block);
    s->used = 0;
  }
  memset(s->block + s->used, 0, 56 - s->used);
  for (int i = 0; i < 8; i++)
    s->block[56 + i] = (uint8_t)(bits >> (56 - 8 * i));
  sha1_block(s->h, s->block);
  for (int i = 0; i < 5; i++) {
    out[4 * i] = (uint8_t)(s->h[i] >> 24);
    out[4 * i + 1] = (uint8_t)(s->h[i] >> 16);
    out[4 * i + 2] = (uint8_t)(s->h[i] >> 8);
    out[4 * i + 3] = (uint8_t)s->h[i];
  }
}

void weft__sha1_digest(const void *data, size_t len,
                       uint8_t out[WEFT__SHA1_DIGEST_BYTES]) {
  weft__sha1 s;
  weft__sha1_init(&s);
  weft__sha1_update(&s, data, len);
  weft__sha1_final(&s, out);
}
