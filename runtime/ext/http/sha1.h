/* sha1.h: SHA-1 (FIPS 180-4), for the WebSocket handshake. Not installed.
 *
 * SHA-1 is broken for collision resistance; RFC 6455 uses it only to prove
 * that the server understood the handshake, which is all it is used for
 * here. */
#ifndef WEFT_SHA1_H
#define WEFT_SHA1_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define WEFT__SHA1_DIGEST_BYTES 20

/* An incremental SHA-1 computation. */
typedef struct weft__sha1 {
  uint32_t h[5];     /* the chaining state */
  uint64_t bytes;    /* message bytes taken so far */
  uint8_t block[64]; /* a partial block */
  size_t used;       /* bytes of block in use */
} weft__sha1;

/* Starts a computation. */
void weft__sha1_init(weft__sha1 *s);

/* Adds len bytes of message. */
void weft__sha1_update(weft__sha1 *s, const void *data, size_t len);

/* Pads the message and writes the 20-byte digest to out. */
void weft__sha1_final(weft__sha1 *s, uint8_t out[WEFT__SHA1_DIGEST_BYTES]);

/* The digest of one buffer. */
void weft__sha1_digest(const void *data, size_t len,
                       uint8_t out[WEFT__SHA1_DIGEST_BYTES]);

#ifdef __cplusplus
}
#endif
#endif /* WEFT_SHA1_H */
