/* ws_deflate.c: permessage-deflate (RFC 7692) messages: compressing those
 * sent and inflating those received, with zlib. The framing calls these
 * (websocket.c); the extension is negotiated by the upgrade (ws_upgrade.c).
 */
#include "ws_internal.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

/* ---- Sending ------------------------------------------------------------- */

/* Drops the compressor (the next message gets a fresh one). */
void weft__ws_tx_drop(weft_ws *ws) {
  if (ws->tx == NULL) return;
  deflateEnd(ws->tx);
  free(ws->tx);
  ws->tx = NULL;
}

/* Makes the compressor when the message is the first since it was
 * dropped. Returns 0 or UV_ENOMEM. */
static int ws_tx_open(weft_ws *ws) {
  if (ws->tx != NULL) return 0;
  z_stream *z = calloc(1, sizeof *z);
  /* zlib's memory is (1 << (bits + 2)) + (1 << (memLevel + 9)): the
   * hash table shrinks with the window. */
  int mem_level = ws->tx_bits - 7 > 8 ? 8 : ws->tx_bits - 7;
  if (z == NULL ||
      deflateInit2(z, ws->lim.deflate_level, Z_DEFLATED, -ws->tx_bits,
                   mem_level, Z_DEFAULT_STRATEGY) != Z_OK) {
    free(z);
    return UV_ENOMEM;
  }
  ws->tx = z;
  return 0;
}

/* Compresses the len bytes at data as one message (RFC 7692 section
 * 7.2.1): a sync flush, whose 00 00 ff ff tail is left off. Returns 0 with
 * the bytes at *out + WS_ZHEAD (malloc'd at *out, the room before them
 * for the frame header) and their count in *out_len; 1 when the
 * message is better sent as it is (it would not shrink, and no context
 * that the peer must follow was kept); or UV_ENOMEM. Runs under the write
 * lock: the peer inflates messages in the order they were compressed. */
int weft__ws_deflate(weft_ws *ws, const void *data, size_t len, uint8_t **out,
                      size_t *out_len) {
  *out = NULL;
  if (ws_tx_open(ws) != 0) return UV_ENOMEM;
  z_stream *z = ws->tx;
  size_t cap = WS_ZHEAD + len + len / 64 + 64, got = WS_ZHEAD;
  uint8_t *buf = malloc(cap);
  if (buf == NULL) return UV_ENOMEM;
  const uint8_t *in = data;
  size_t left = len;
  z->avail_in = 0;
  for (;;) {
    /* zlib counts in uInt: feed and drain at most 1 GiB at a time. */
    if (z->avail_in == 0 && left > 0) {
      size_t chunk = left > ((size_t)1 << 30) ? (size_t)1 << 30 : left;
      z->next_in = (Bytef *)in;
      z->avail_in = (uInt)chunk;
      in += chunk;
      left -= chunk;
    }
    if (got == cap) {
      uint8_t *b = cap <= SIZE_MAX / 2 ? realloc(buf, cap * 2) : NULL;
      if (b == NULL) goto fail_nomem;
      buf = b;
      cap *= 2;
    }
    size_t room = cap - got > ((size_t)1 << 30) ? (size_t)1 << 30 : cap - got;
    z->next_out = buf + got;
    z->avail_out = (uInt)room;
    int zr = deflate(z, left == 0 ? Z_SYNC_FLUSH : Z_NO_FLUSH);
    got += room - z->avail_out;
    if (zr != Z_OK && zr != Z_BUF_ERROR) goto fail_nomem;
    if (left == 0 && z->avail_in == 0 && z->avail_out > 0) break;
  }
  /* A sync flush ends with an empty stored block: 00 00 ff ff. */
  assert(got >= WS_ZHEAD + 4 &&
         memcmp(buf + got - 4, "\x00\x00\xff\xff", 4) == 0);
  got -= WS_ZHEAD + 4;
  if (!ws->tx_takeover) {
    /* No context is kept: the compressor's memory goes back at once, and
     * a message that did not shrink may go out uncompressed. */
    weft__ws_tx_drop(ws);
    if (got >= len) {
      free(buf);
      return 1;
    }
  }
  *out = buf;
  *out_len = got;
  return 0;
fail_nomem:
  free(buf);
  weft__ws_tx_drop(ws);
  return UV_ENOMEM;
}

/* ---- Receiving ----------------------------------------------------------- */

/* Drops the decompressor (the next message gets a fresh one). */
void weft__ws_rx_drop(weft_ws *ws) {
  if (ws->rx == NULL) return;
  inflateEnd(ws->rx);
  free(ws->rx);
  ws->rx = NULL;
}

/* Makes the decompressor when the message is the first since it was
 * dropped. Returns 0 or UV_ENOMEM. */
static int ws_rx_open(weft_ws *ws) {
  if (ws->rx != NULL) return 0;
  z_stream *z = calloc(1, sizeof *z);
  /* zlib's own deflate writes for a window of 9 when asked for 8. */
  int bits = ws->rx_bits < 9 ? 9 : ws->rx_bits;
  if (z == NULL || inflateInit2(z, -bits) != Z_OK) {
    free(z);
    return UV_ENOMEM;
  }
  ws->rx = z;
  return 0;
}

/* What weft__ws_inflate() has still to feed zlib: the message, then the tail. */
typedef struct ws_zin {
  const uint8_t *in;
  size_t left;
  int tail_fed;
} ws_zin;

/* Gives z its next input once it has used up the last: the message in
 * pieces zlib's counters can hold, then the 00 00 ff ff tail that the
 * sender left off (RFC 7692 section 7.2.2). */
static void ws_inflate_feed(z_stream *z, ws_zin *src) {
  static const uint8_t tail[4] = {0x00, 0x00, 0xff, 0xff};
  if (z->avail_in == 0 && src->left > 0) {
    size_t chunk = src->left > ((size_t)1 << 30) ? (size_t)1 << 30 : src->left;
    z->next_in = (Bytef *)src->in;
    z->avail_in = (uInt)chunk;
    src->in += chunk;
    src->left -= chunk;
  } else if (z->avail_in == 0 && !src->tail_fed) {
    z->next_in = (Bytef *)tail;
    z->avail_in = sizeof tail;
    src->tail_fed = 1;
  }
}

/* Grows zmsg, which is full, by doubling, up to max_message_bytes + 2 (one
 * byte past the limit, to see it passed, and the NUL). Returns 0,
 * UV_EMSGSIZE when it is that large already, or UV_ENOMEM. */
static int ws_zmsg_grow(weft_ws *ws) {
  size_t max = ws->lim.max_message_bytes;
  if (ws->zmsg_cap >= max + 2) return UV_EMSGSIZE;
  size_t cap = ws->zmsg_cap ? ws->zmsg_cap * 2 : 4096;
  if (cap < ws->msg_len * 2) cap = ws->msg_len * 2;
  if (cap > max + 2) cap = max + 2;
  char *b = realloc(ws->zmsg, cap);
  if (b == NULL) return UV_ENOMEM;
  ws->zmsg = b;
  ws->zmsg_cap = cap;
  return 0;
}

/* Inflates the compressed message in msg, with the 00 00 ff ff tail that
 * the sender left off (RFC 7692 section 7.2.2), into zmsg, NUL-terminated;
 * its length in *out_len. The output never grows past max_message_bytes +
 * 1. Returns 0, or the error the connection failed with: UV_EMSGSIZE
 * (1009) past the limit, UV_EILSEQ (1007) for a stream that does not
 * inflate. */
int weft__ws_inflate(weft_ws *ws, size_t *out_len) {
  if (ws_rx_open(ws) != 0) goto fail_nomem;
  z_stream *z = ws->rx;
  size_t max = ws->lim.max_message_bytes, got = 0;
  ws_zin src = {(const uint8_t *)ws->msg, ws->msg_len, 0};
  z->avail_in = 0;
  for (;;) {
    ws_inflate_feed(z, &src);
    /* Room for one byte past the limit (to see it passed) and the NUL. */
    if (got + 1 >= ws->zmsg_cap) {
      int r = ws_zmsg_grow(ws);
      if (r == UV_EMSGSIZE) goto fail_too_big;
      if (r < 0) goto fail_nomem;
    }
    size_t room = ws->zmsg_cap - 1 - got;
    if (room > ((size_t)1 << 30)) room = (size_t)1 << 30;
    z->next_out = (Bytef *)ws->zmsg + got;
    z->avail_out = (uInt)room;
    int zr = inflate(z, Z_SYNC_FLUSH);
    got += room - z->avail_out;
    if (got > max) goto fail_too_big;
    if (zr == Z_STREAM_END) {
      /* The sender ended the stream (BFINAL): the next message starts a
       * new one, and whatever is left here (our tail) is dropped. */
      inflateReset(z);
      break;
    }
    if (zr == Z_MEM_ERROR) goto fail_nomem;
    if (zr != Z_OK && zr != Z_BUF_ERROR) goto fail_invalid;
    if (src.left == 0 && src.tail_fed && z->avail_in == 0 && z->avail_out > 0)
      break;
  }
  /* Without context takeover the client starts each message afresh: the
   * window's memory is not needed between messages. */
  if (!ws->rx_takeover) weft__ws_rx_drop(ws);
  ws->zmsg[got] = '\0';
  *out_len = got;
  return 0;
fail_too_big:
  weft__ws_rx_drop(ws);
  return weft__ws_fail(ws, WEFT_WS_CLOSE_TOO_BIG, UV_EMSGSIZE);
fail_nomem:
  weft__ws_rx_drop(ws);
  return weft__ws_fail(ws, WEFT_WS_CLOSE_INTERNAL_ERROR, UV_ENOMEM);
fail_invalid:
  weft__ws_rx_drop(ws);
  return weft__ws_fail(ws, WEFT_WS_CLOSE_INVALID_DATA, UV_EILSEQ);
}
