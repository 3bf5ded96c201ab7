/* websocket.c: WebSocket (RFC 6455) server connections.
 *
 * The upgrade is checked against section 4.2.1 and answered with a 101 that
 * the module writes itself; then the HTTP loop lets go of the connection
 * (weft__http_hijack) and the handler owns it until it returns.
 *
 * Reading is a resumable state machine: a frame header is parsed only once
 * all of it is buffered, and the payload position (f_got) lives in the
 * weft_ws, so a receive that is cancelled part-way loses nothing and the
 * next one goes on from there. Small reads go through a read buffer; the
 * rest of a large payload is read straight into the message buffer.
 * Payloads are unmasked and, for text, checked as UTF-8 chunk by chunk, so
 * a bad byte is refused as soon as it arrives, even across fragments.
 *
 * Writing takes a lock per frame: every frame goes out whole, so tasks that
 * send at once never interleave their bytes. Small frames are written with
 * their header in one write (one segment, no Nagle delay behind it).
 *
 * permessage-deflate (RFC 7692): a compressed message is put together as
 * it came (RSV1 on its first frame) and inflated whole once its last frame
 * is in, into a second buffer that never grows past max_message_bytes + 1
 * (a small frame that inflates to gigabytes ends with close 1009). Sent
 * messages are compressed under the write lock, since with context
 * takeover the peer must inflate them in the order they were compressed.
 * A stream that does not inflate is close 1007: the frames were well
 * formed, their payload was not what a message of that kind may hold.
 */
#include "http_internal.h"
#include "sha1.h"
#include "weft_ws.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

/* Opcodes (section 5.2). */
enum {
  WS_OP_CONT = 0x0,
  WS_OP_TEXT = 0x1,
  WS_OP_BINARY = 0x2,
  WS_OP_CLOSE = 0x8,
  WS_OP_PING = 0x9,
  WS_OP_PONG = 0xa
};

/* Where the closing handshake stands. */
enum {
  WS_OPEN,       /* both ways open */
  WS_CLOSE_SENT, /* our close is out; waiting for the peer's */
  WS_CLOSED      /* the handshake is over, or the connection failed */
};

/* Payloads up to this size are written with their header from the stack. */
#define WS_STACK_FRAME 1024
/* Payloads up to this size are copied behind their header into one write;
 * larger ones go out as two writes under the same lock. */
#define WS_COALESCE_MAX (64 * 1024)
/* A message buffer larger than this is given back before the next message,
 * so that one large message does not pin memory for a connection's life. */
#define WS_KEEP_MSG_BYTES (64 * 1024)
/* After a failed connection, what the peer still sends is read and dropped
 * until it goes quiet this long, for at most WS_LINGER_BYTES: closing with
 * unread bytes would make the kernel reset the connection, and the peer
 * could lose our close frame. */
#define WS_LINGER_QUIET_MS 200
#define WS_LINGER_BYTES (256 * 1024)
/* The read buffer must hold the longest frame header (14 bytes). */
#define WS_MIN_READ_BUFFER 256

/* What ws_read() returns when one of the connection's own deadlines
 * passed: below both libuv's and weft's error ranges, never returned. */
#define WS_DUE_IDLE (-40001)
#define WS_DUE_CLOSE (-40002)

/* The UTF-8 checker's state when it has seen a bad byte. */
#define WS_UTF8_BAD UINT32_MAX

/* Room left before a compressed payload for its frame header. */
#define WS_ZHEAD 10
/* The longest Sec-WebSocket-Extensions answer we write. */
#define WS_EXT_MAX 160

/* How long weft_ws_free() waits for the calls it ended to return. */
#define WS_FREE_WAIT_MS 10000

/* A wait of some task inside a call on a weft_ws. Lives on that task's
 * stack; listed in the weft_ws so that weft_ws_free() can end it. */
typedef struct ws_wait {
  weft_scope scope;
  struct ws_wait *prev, *next;
} ws_wait;

struct weft_ws {
  weft_tcp *tcp;
  weft_ws_limits lim;
  int executor; /* the connection's executor */

  /* Reading. */
  char *rbuf;
  size_t rsize;      /* allocated size of rbuf */
  size_t rpos, rlen; /* unread bytes are rbuf[rpos..rlen) */
  int reading;       /* a task is reading (recv, or close draining) */
  int frame_open;    /* the current frame's header is parsed */
  int f_fin, f_op;
  uint8_t f_mask[4];
  uint64_t f_len, f_got; /* payload length and bytes of it read */
  uint8_t ctrl[128];     /* payload of a control frame */
  char *msg;             /* the message being put together */
  size_t msg_len, msg_cap;
  int msg_type;      /* WEFT_WS_TEXT/BINARY while a message is open, else 0 */
  int delivered;     /* msg was handed out; reset at the next receive */
  uint32_t utf8;     /* UTF-8 checker state across a text message */
  int64_t last_rx;   /* when the peer last sent a byte */
  int64_t last_ping; /* when we last sent an idle ping */

  /* The closing handshake. */
  int state;
  int err;                /* sticky error of the read side */
  int write_err;          /* sticky error of the write side */
  int64_t close_deadline; /* for the peer's close after ours; -1: none */
  int close_code;         /* the peer's, or 1006; 0 while open */
  char *close_reason;     /* the peer's, malloc'd; NULL: none */
  weft_event *ended; /* set once state is WS_CLOSED; made by the first
                        weft_ws_close() that waits for it */

  weft_mutex *wlock; /* one frame is written at a time */
  unsigned calls;    /* tasks inside a call on ws */
  ws_wait *waits;    /* the waits of those tasks */
  int freeing;       /* weft_ws_free() ends the calls and waits */
  weft_event *left;  /* set when the last call leaves while freeing (made
                        then) */

  /* permessage-deflate, when negotiated (pmd != 0). */
  int pmd;
  int tx_bits, rx_bits;         /* our window, the client's (log2 bytes) */
  int tx_takeover, rx_takeover; /* the context lives on between messages */
  z_stream *tx, *rx;            /* made when first needed */
  int msg_deflated;             /* the open message came with RSV1 */
  char *zmsg;                   /* the last inflated message */
  size_t zmsg_cap;
  const char *extensions;      /* what we answered, or "" (in names) */
  char protocol[];             /* the chosen subprotocol, or "", then the
                                  extensions' text */
};

/* ---- Small helpers ------------------------------------------------------- */

/* ch in lower case, for ASCII letters only (header tokens are ASCII). */
static int ascii_lower(int ch) {
  return ch >= 'A' && ch <= 'Z' ? ch + ('a' - 'A') : ch;
}

/* Compares len bytes of a with the NUL-terminated b without regard to case. */
static int token_equal(const char *a, size_t len, const char *b) {
  size_t i = 0;
  for (; i < len && b[i] != '\0'; i++)
    if (ascii_lower((unsigned char)a[i]) != ascii_lower((unsigned char)b[i]))
      return 0;
  return i == len && b[i] == '\0';
}

/* Calls fn on each comma-separated, whitespace-trimmed element of list
 * until fn returns non-zero; returns that value, or 0. */
static int list_each(const char *list,
                     int (*fn)(const char *tok, size_t len, void *arg),
                     void *arg) {
  const char *p = list;
  while (*p != '\0') {
    while (*p == ' ' || *p == '\t' || *p == ',') p++;
    const char *start = p;
    while (*p != '\0' && *p != ',') p++;
    const char *end = p;
    while (end > start && (end[-1] == ' ' || end[-1] == '\t')) end--;
    if (end > start) {
      int r = fn(start, (size_t)(end - start), arg);
      if (r != 0) return r;
    }
  }
  return 0;
}

/* list_each() callback: non-zero when tok is the token want. */
static int token_is(const char *tok, size_t len, void *want) {
  return token_equal(tok, len, want);
}

/* Non-zero when some header named name holds token in its list. */
static int header_has_token(const weft_http_request *req, const char *name,
                            const char *token) {
  size_t n = weft_http_request_header_count(req);
  for (size_t i = 0; i < n; i++) {
    const char *hn, *hv;
    if (weft_http_request_header_at(req, i, &hn, &hv) != 0) break;
    if (token_equal(hn, strlen(hn), name) &&
        list_each(hv, token_is, (void *)token))
      return 1;
  }
  return 0;
}

/* The number of headers named name; the first one's value in *value. */
static size_t header_count(const weft_http_request *req, const char *name,
                           const char **value) {
  size_t n = weft_http_request_header_count(req), count = 0;
  *value = NULL;
  for (size_t i = 0; i < n; i++) {
    const char *hn, *hv;
    if (weft_http_request_header_at(req, i, &hn, &hv) != 0) break;
    if (!token_equal(hn, strlen(hn), name)) continue;
    if (count++ == 0) *value = hv;
  }
  return count;
}

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Writes the base64 form (RFC 4648, padded) of len bytes to out, which has
 * room for 4 * ((len + 2) / 3) + 1 characters. */
static void base64_encode(const uint8_t *in, size_t len, char *out) {
  size_t i = 0;
  for (; i + 3 <= len; i += 3) {
    uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
    *out++ = b64_alphabet[v >> 18];
    *out++ = b64_alphabet[(v >> 12) & 63];
    *out++ = b64_alphabet[(v >> 6) & 63];
    *out++ = b64_alphabet[v & 63];
  }
  if (len - i == 1) {
    uint32_t v = (uint32_t)in[i] << 16;
    *out++ = b64_alphabet[v >> 18];
    *out++ = b64_alphabet[(v >> 12) & 63];
    *out++ = '=';
    *out++ = '=';
  } else if (len - i == 2) {
    uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
    *out++ = b64_alphabet[v >> 18];
    *out++ = b64_alphabet[(v >> 12) & 63];
    *out++ = b64_alphabet[(v >> 6) & 63];
    *out++ = '=';
  }
  *out = '\0';
}

/* Non-zero when key is the padded base64 form of exactly 16 bytes: 22
 * characters of the alphabet, the last of which carries only 2 bits of
 * data (the other 4 must be 0, as an encoder writes them), then "==". */
static int ws_key_valid(const char *key) {
  if (key == NULL || strlen(key) != 24 || key[22] != '=' || key[23] != '=')
    return 0;
  for (int i = 0; i < 22; i++)
    if (key[i] == '\0' || strchr(b64_alphabet, key[i]) == NULL) return 0;
  size_t last = (size_t)(strchr(b64_alphabet, key[21]) - b64_alphabet);
  return (last & 15) == 0;
}

void weft_ws_accept_key(const char *key, char out[29]) {
  weft__sha1 s;
  uint8_t digest[WEFT__SHA1_DIGEST_BYTES];
  weft__sha1_init(&s);
  weft__sha1_update(&s, key, strlen(key));
  weft__sha1_update(&s, WS_GUID, sizeof WS_GUID - 1);
  weft__sha1_final(&s, digest);
  base64_encode(digest, sizeof digest, out);
}

/* Feeds n bytes to the UTF-8 checker and returns its new state (the count
 * of continuation bytes still due, and the range the next byte must fall
 * in), or WS_UTF8_BAD. The ranges are those of RFC 3629's syntax, which
 * leave out overlong forms, surrogates and code points past U+10FFFF. */
static uint32_t utf8_feed(uint32_t st, const uint8_t *p, size_t n) {
  unsigned need = st & 0xff, lo = (st >> 8) & 0xff, hi = (st >> 16) & 0xff;
  size_t i = 0;
  while (i < n) {
    if (need == 0) {
      /* ASCII runs are checked eight bytes at a time. */
      while (i + 8 <= n) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        if (w & UINT64_C(0x8080808080808080)) break;
        i += 8;
      }
      if (i == n) break;
      unsigned b = p[i++];
      if (b < 0x80) continue;
      if (b < 0xc2) return WS_UTF8_BAD;
      if (b < 0xe0) {
        need = 1;
        lo = 0x80;
        hi = 0xbf;
      } else if (b < 0xf0) {
        need = 2;
        lo = b == 0xe0 ? 0xa0 : 0x80;
        hi = b == 0xed ? 0x9f : 0xbf;
      } else if (b < 0xf5) {
        need = 3;
        lo = b == 0xf0 ? 0x90 : 0x80;
        hi = b == 0xf4 ? 0x8f : 0xbf;
      } else {
        return WS_UTF8_BAD;
      }
    } else {
      unsigned b = p[i++];
      if (b < lo || b > hi) return WS_UTF8_BAD;
      need--;
      lo = 0x80;
      hi = 0xbf;
    }
  }
  return need | lo << 8 | hi << 16;
}

/* Non-zero when the n bytes at p are whole, valid UTF-8. */
static int utf8_valid(const void *p, size_t n) {
  uint32_t st = utf8_feed(0, p, n);
  return st != WS_UTF8_BAD && (st & 0xff) == 0;
}

/* Non-zero for a close code a peer may send (section 7.4, and the codes
 * IANA registered since: 1012..1014). */
static int close_code_valid(int code) {
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
         (code >= 3000 && code <= 4999);
}

/* XORs n bytes at p with the mask, starting at payload offset off. */
static void unmask(uint8_t *p, size_t n, const uint8_t mask[4], uint64_t off) {
  size_t i = 0;
  unsigned k = (unsigned)(off & 3);
  /* Byte by byte up to a mask boundary, then eight bytes at a time. */
  for (; i < n && k != 0; i++, k = (k + 1) & 3) p[i] ^= mask[k];
  if (n - i >= 8) {
    uint8_t m8[8];
    for (int j = 0; j < 8; j++) m8[j] = mask[j & 3];
    uint64_t m;
    memcpy(&m, m8, 8);
    for (; i + 8 <= n; i += 8) {
      uint64_t w;
      memcpy(&w, p + i, 8);
      w ^= m;
      memcpy(p + i, &w, 8);
    }
  }
  for (; i < n; i++, k = (k + 1) & 3) p[i] ^= mask[k];
}

/* The earlier of two deadlines, where -1 means none. */
static int64_t min_deadline(int64_t a, int64_t b) {
  if (a < 0) return b;
  if (b < 0) return a;
  return a < b ? a : b;
}

/* ---- Calls and their waits ----------------------------------------------- */

/* Enters a call on ws: UV_EINVAL from a task of another executor (or from
 * outside a task), WEFT_ECLOSED once weft_ws_free() has begun. */
static int ws_enter(weft_ws *ws) {
  if (ws == NULL || !weft_in_task() || weft_executor_id() != ws->executor)
    return UV_EINVAL;
  if (ws->freeing) return WEFT_ECLOSED;
  ws->calls++;
  return 0;
}

/* Leaves a call. r is its result: a wait that weft_ws_free() ended turns
 * into WEFT_ECLOSED. Nothing touches ws after the last call has left while
 * it is being freed. */
static int ws_leave(weft_ws *ws, int r) {
  if (ws->freeing && r < 0) r = WEFT_ECLOSED;
  if (--ws->calls == 0 && ws->freeing && ws->left != NULL)
    weft_event_set(ws->left);
  return r;
}

/* Enters a scope with timeout_ms that weft_ws_free() can cancel. */
static void wait_enter(weft_ws *ws, ws_wait *w, int64_t timeout_ms) {
  weft_scope_enter(&w->scope, timeout_ms);
  w->prev = NULL;
  w->next = ws->waits;
  if (ws->waits != NULL) ws->waits->prev = w;
  ws->waits = w;
  if (ws->freeing) weft_scope_cancel(&w->scope);
}

/* Leaves it; returns weft_scope_leave()'s code. */
static int wait_leave(weft_ws *ws, ws_wait *w) {
  if (w->prev != NULL)
    w->prev->next = w->next;
  else
    ws->waits = w->next;
  if (w->next != NULL) w->next->prev = w->prev;
  return weft_scope_leave(&w->scope);
}

/* Non-zero when a wait whose scope's leave code is left was ended by a
 * deadline of ws's own (not the caller's scope, nor weft_ws_free()). */
static int wait_was_ours(const weft_ws *ws, int left) {
  return left != 0 && weft_cancelled() == 0 && !ws->freeing;
}

/* ---- Limits -------------------------------------------------------------- */

void weft_ws_limits_default(weft_ws_limits *limits) {
  limits->max_frame_bytes = (size_t)1 << 20;
  limits->max_message_bytes = (size_t)1 << 20;
  limits->ping_interval_ms = 30000;
  limits->idle_timeout_ms = 75000;
  limits->close_timeout_ms = 5000;
  limits->write_timeout_ms = 30000;
  limits->read_buffer_bytes = 16 * 1024;
  limits->deflate = 1;
  limits->deflate_level = 6;
  limits->deflate_min_bytes = 128;
  limits->deflate_window_bits = 15;
  limits->deflate_context_takeover = -1;
}

/* Fills *out from in (may be NULL), a default for every field left 0, and
 * brings sizes that make no sense back into range. */
static void limits_resolve(weft_ws_limits *out, const weft_ws_limits *in) {
  weft_ws_limits_default(out);
  if (in == NULL) return;
  if (in->max_frame_bytes) out->max_frame_bytes = in->max_frame_bytes;
  if (in->max_message_bytes) out->max_message_bytes = in->max_message_bytes;
  if (in->ping_interval_ms) out->ping_interval_ms = in->ping_interval_ms;
  if (in->idle_timeout_ms) out->idle_timeout_ms = in->idle_timeout_ms;
  if (in->close_timeout_ms) out->close_timeout_ms = in->close_timeout_ms;
  if (in->write_timeout_ms) out->write_timeout_ms = in->write_timeout_ms;
  if (in->read_buffer_bytes) out->read_buffer_bytes = in->read_buffer_bytes;
  if (in->deflate) out->deflate = in->deflate;
  if (in->deflate_level) out->deflate_level = in->deflate_level;
  if (in->deflate_min_bytes) out->deflate_min_bytes = in->deflate_min_bytes;
  if (in->deflate_window_bits)
    out->deflate_window_bits = in->deflate_window_bits;
  if (in->deflate_context_takeover)
    out->deflate_context_takeover = in->deflate_context_takeover;
  if (out->deflate_level < 1) out->deflate_level = 1;
  if (out->deflate_level > 9) out->deflate_level = 9;
  /* zlib's raw deflate cannot keep to a window of 8 (it uses 9). */
  if (out->deflate_window_bits < 9) out->deflate_window_bits = 9;
  if (out->deflate_window_bits > 15) out->deflate_window_bits = 15;
  if (out->read_buffer_bytes < WS_MIN_READ_BUFFER)
    out->read_buffer_bytes = WS_MIN_READ_BUFFER;
  /* Past this a size is a mistake (and max + 1 would overflow). */
  if (out->max_message_bytes > SIZE_MAX / 4)
    out->max_message_bytes = SIZE_MAX / 4;
  /* A message is at least one frame; a larger frame limit means nothing. */
  if (out->max_frame_bytes > out->max_message_bytes)
    out->max_frame_bytes = out->max_message_bytes;
}

/* ---- Writing ------------------------------------------------------------- */

/* Writes the header of a final, unmasked frame to hdr; returns its length. */
static size_t frame_header(uint8_t hdr[10], int op, size_t len) {
  hdr[0] = (uint8_t)(0x80 | op);
  if (len < 126) {
    hdr[1] = (uint8_t)len;
    return 2;
  }
  if (len <= 0xffff) {
    hdr[1] = 126;
    hdr[2] = (uint8_t)(len >> 8);
    hdr[3] = (uint8_t)len;
    return 4;
  }
  hdr[1] = 127;
  for (int i = 0; i < 8; i++)
    hdr[2 + i] = (uint8_t)((uint64_t)len >> (56 - 8 * i));
  return 10;
}

/* Drops the compressor (the next message gets a fresh one). */
static void ws_tx_drop(weft_ws *ws) {
  if (ws->tx == NULL) return;
  deflateEnd(ws->tx);
  free(ws->tx);
  ws->tx = NULL;
}

/* Compresses the len bytes at data as one message (RFC 7692 section
 * 7.2.1): a sync flush, whose 00 00 ff ff tail is left off. Returns 0 with
 * the bytes at *out + WS_ZHEAD (malloc'd at *out, the room before them
 * for the frame header) and their count in *out_len; 1 when the
 * message is better sent as it is (it would not shrink, and no context
 * that the peer must follow was kept); or UV_ENOMEM. Runs under the write
 * lock: the peer inflates messages in the order they were compressed. */
static int ws_deflate(weft_ws *ws, const void *data, size_t len, uint8_t **out,
                      size_t *out_len) {
  *out = NULL;
  if (ws->tx == NULL) {
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
  }
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
      if (b == NULL) {
        free(buf);
        ws_tx_drop(ws);
        return UV_ENOMEM;
      }
      buf = b;
      cap *= 2;
    }
    size_t room = cap - got > ((size_t)1 << 30) ? (size_t)1 << 30 : cap - got;
    z->next_out = buf + got;
    z->avail_out = (uInt)room;
    int zr = deflate(z, left == 0 ? Z_SYNC_FLUSH : Z_NO_FLUSH);
    got += room - z->avail_out;
    if (zr != Z_OK && zr != Z_BUF_ERROR) {
      free(buf);
      ws_tx_drop(ws);
      return UV_ENOMEM;
    }
    if (left == 0 && z->avail_in == 0 && z->avail_out > 0) break;
  }
  /* A sync flush ends with an empty stored block: 00 00 ff ff. */
  assert(got >= WS_ZHEAD + 4 &&
         memcmp(buf + got - 4, "\x00\x00\xff\xff", 4) == 0);
  got -= WS_ZHEAD + 4;
  if (!ws->tx_takeover) {
    /* No context is kept: the compressor's memory goes back at once, and
     * a message that did not shrink may go out uncompressed. */
    ws_tx_drop(ws);
    if (got >= len) {
      free(buf);
      return 1;
    }
  }
  *out = buf;
  *out_len = got;
  return 0;
}

/* Writes one frame whole, under the write lock and write_timeout_ms (both
 * the wait for the lock and the write). Data frames and pongs go out only
 * while the connection is open; a close frame moves it to next_state.
 * Data frames are compressed when permessage-deflate was agreed and they
 * are long enough. Returns 0, WEFT_ECLOSED, or an error; a failed write
 * is kept in write_err and fails every later send. */
static int ws_write_frame(weft_ws *ws, int op, const void *data, size_t len,
                          int next_state) {
  uint8_t small[10 + WS_STACK_FRAME];
  uint8_t hdr[10];
  uint8_t *zbuf = NULL;
  ws_wait w;
  wait_enter(ws, &w, ws->lim.write_timeout_ms);
  int r = weft_mutex_lock(ws->wlock);
  if (r != 0) {
    int left = wait_leave(ws, &w);
    return wait_was_ours(ws, left) ? UV_ETIMEDOUT : r;
  }
  if (ws->write_err != 0) {
    r = ws->write_err;
  } else if (ws->state != WS_OPEN) {
    r = WEFT_ECLOSED;
  } else {
    if (op == WS_OP_CLOSE) ws->state = next_state;
    int rsv1 = 0;
    if (ws->pmd && (op == WS_OP_TEXT || op == WS_OP_BINARY) &&
        len >= ws->lim.deflate_min_bytes) {
      size_t zlen = 0;
      r = ws_deflate(ws, data, len, &zbuf, &zlen);
      if (r == 0) {
        len = zlen;
        rsv1 = 1;
      } else if (r == 1) {
        r = 0;
      }
    }
    size_t hlen = frame_header(hdr, op, len);
    if (r != 0) {
      /* The compressor failed: its context may no longer match the
       * peer's, so the connection cannot go on. */
    } else if (rsv1) {
      /* RSV1 on the (only) frame marks the message compressed; the
       * header goes in the room left for it before the payload. */
      hdr[0] |= 0x40;
      uint8_t *at = zbuf + WS_ZHEAD - hlen;
      memcpy(at, hdr, hlen);
      r = weft_tcp_write(ws->tcp, at, hlen + len);
    } else if (len <= WS_STACK_FRAME) {
      memcpy(small, hdr, hlen);
      if (len > 0) memcpy(small + hlen, data, len);
      r = weft_tcp_write(ws->tcp, small, hlen + len);
    } else {
      uint8_t *one = len <= WS_COALESCE_MAX ? malloc(hlen + len) : NULL;
      if (one != NULL) {
        memcpy(one, hdr, hlen);
        memcpy(one + hlen, data, len);
        r = weft_tcp_write(ws->tcp, one, hlen + len);
        free(one);
      } else {
        r = weft_tcp_write(ws->tcp, hdr, hlen);
        if (r == 0) r = weft_tcp_write(ws->tcp, data, len);
      }
    }
    /* A write stopped part-way leaves the peer with half a frame: weft
     * closes such a connection, and nothing more can be sent on it. */
    if (r < 0) ws->write_err = r;
  }
  weft_mutex_unlock(ws->wlock);
  free(zbuf);
  int left = wait_leave(ws, &w);
  /* Our own deadline stopped the write (not the caller's scope). */
  if (r < 0 && wait_was_ours(ws, left)) {
    r = UV_ETIMEDOUT;
    if (ws->write_err != 0) ws->write_err = r;
  }
  return r;
}

/* Messages whose frames go out in one weft_tcp_writev(). */
#define WS_SEND_GROUP 32

/* ws_write_frame() of n data messages of type op, one frame each, under a
 * single hold of the write lock and write_timeout_ms: the frames of up to
 * WS_SEND_GROUP messages (headers and payloads, compressed or not) go out
 * in one writev, so a burst costs one system call rather than one each. */
/* Not inlined: its arrays stay off the stack of a single message's send,
 * which is what an idle connection's tasks touch. */
static __attribute__((noinline)) int ws_write_frames(weft_ws *ws, int op,
                                                     const uv_buf_t *msgs,
                                                     size_t n) {
  ws_wait w;
  wait_enter(ws, &w, ws->lim.write_timeout_ms);
  int r = weft_mutex_lock(ws->wlock);
  if (r != 0) {
    int left = wait_leave(ws, &w);
    return wait_was_ours(ws, left) ? UV_ETIMEDOUT : r;
  }
  if (ws->write_err != 0)
    r = ws->write_err;
  else if (ws->state != WS_OPEN)
    r = WEFT_ECLOSED;
  for (size_t at = 0; r == 0 && at < n;) {
    uint8_t hdr[WS_SEND_GROUP][10];
    uint8_t *zbuf[WS_SEND_GROUP];
    uv_buf_t iov[2 * WS_SEND_GROUP];
    size_t k = 0, nb = 0;
    for (; k < WS_SEND_GROUP && at + k < n; k++) {
      const char *data = msgs[at + k].base;
      size_t len = msgs[at + k].len;
      int rsv1 = 0;
      zbuf[k] = NULL;
      if (ws->pmd && len >= ws->lim.deflate_min_bytes) {
        size_t zlen = 0;
        r = ws_deflate(ws, data, len, &zbuf[k], &zlen);
        if (r == 0) {
          data = (const char *)zbuf[k] + WS_ZHEAD;
          len = zlen;
          rsv1 = 1;
        } else if (r == 1) {
          r = 0;
        } else {
          break; /* the compressor failed (zbuf[k] is NULL) */
        }
      }
      size_t hlen = frame_header(hdr[k], op, len);
      if (rsv1) hdr[k][0] |= 0x40;
      iov[nb++] = uv_buf_init((char *)hdr[k], (unsigned)hlen);
      if (len > 0) iov[nb++] = uv_buf_init((char *)data, (unsigned)len);
    }
    if (r == 0) r = weft_tcp_writev(ws->tcp, iov, nb);
    for (size_t i = 0; i < k; i++) free(zbuf[i]);
    at += k;
    /* As in ws_write_frame(): nothing more can be sent after a failure. */
    if (r < 0) ws->write_err = r;
  }
  weft_mutex_unlock(ws->wlock);
  int left = wait_leave(ws, &w);
  if (r < 0 && wait_was_ours(ws, left)) {
    r = UV_ETIMEDOUT;
    if (ws->write_err != 0) ws->write_err = r;
  }
  return r;
}

/* ws_write_frame() of a control frame that a receive writes (the answer
 * to the peer's ping or close, our idle ping): shielded from the
 * receiving caller's scope, and bounded by the write timeout only, so
 * that a caller whose own deadline passes just then (a server that waits
 * a while before it tidies an idle connection, say) does not leave the
 * answer unsent, or half a frame on the wire. Not inlined, like
 * ws_on_close(): its scope stays off the stack of an idle receive. */
static __attribute__((noinline)) int ws_write_answer(weft_ws *ws, int op,
                                                     const void *data,
                                                     size_t len,
                                                     int next_state) {
  weft_scope s;
  weft_scope_enter_shielded(&s, WEFT_NO_DEADLINE);
  int r = ws_write_frame(ws, op, data, len, next_state);
  weft_scope_leave(&s);
  return r;
}

/* Sends a close frame with code (0: none) and reason. */
static int ws_send_close(weft_ws *ws, int code, const char *reason, size_t rlen,
                         int next_state) {
  uint8_t payload[125];
  size_t len = 0;
  if (code != 0) {
    payload[0] = (uint8_t)(code >> 8);
    payload[1] = (uint8_t)code;
    if (rlen > 123) rlen = 123;
    if (rlen > 0) memcpy(payload + 2, reason, rlen);
    len = 2 + rlen;
  }
  return ws_write_frame(ws, WS_OP_CLOSE, payload, len, next_state);
}

int weft_ws_send(weft_ws *ws, int type, const void *data, size_t len) {
  if ((type != WEFT_WS_TEXT && type != WEFT_WS_BINARY) ||
      (data == NULL && len > 0))
    return UV_EINVAL;
  /* Text that is not UTF-8 would make the peer fail the connection. */
  if (type == WEFT_WS_TEXT && !utf8_valid(data, len)) return UV_EINVAL;
  int r = ws_enter(ws);
  if (r != 0) return r;
  return ws_leave(ws, ws_write_frame(ws, type, data, len, WS_OPEN));
}

int weft_ws_send_many(weft_ws *ws, int type, const uv_buf_t *msgs, size_t n) {
  if ((type != WEFT_WS_TEXT && type != WEFT_WS_BINARY) ||
      (msgs == NULL && n > 0))
    return UV_EINVAL;
  for (size_t i = 0; i < n; i++) {
    if (msgs[i].base == NULL && msgs[i].len > 0) return UV_EINVAL;
    if (type == WEFT_WS_TEXT && !utf8_valid(msgs[i].base, msgs[i].len))
      return UV_EINVAL;
  }
  int r = ws_enter(ws);
  if (r != 0) return r;
  if (n == 1)
    r = ws_write_frame(ws, type, msgs[0].base, msgs[0].len, WS_OPEN);
  else
    r = ws_write_frames(ws, type, msgs, n);
  return ws_leave(ws, r);
}

int weft_ws_send_text(weft_ws *ws, const char *text, size_t len) {
  return weft_ws_send(ws, WEFT_WS_TEXT, text, len);
}

int weft_ws_send_binary(weft_ws *ws, const void *data, size_t len) {
  return weft_ws_send(ws, WEFT_WS_BINARY, data, len);
}

int weft_ws_send_ping(weft_ws *ws, const void *data, size_t len) {
  if (len > 125 || (data == NULL && len > 0)) return UV_EINVAL;
  int r = ws_enter(ws);
  if (r != 0) return r;
  return ws_leave(ws, ws_write_frame(ws, WS_OP_PING, data, len, WS_OPEN));
}

/* ---- Ending -------------------------------------------------------------- */

/* Marks the connection over with err (kept for every later receive). */
static int ws_end(weft_ws *ws, int err) {
  ws->state = WS_CLOSED;
  if (ws->err == 0) ws->err = err;
  if (ws->close_code == 0) ws->close_code = WEFT_WS_CLOSE_ABNORMAL;
  if (ws->ended != NULL) weft_event_set(ws->ended);
  return ws->err;
}

/* Sends FIN once queued writes are out, then reads and drops what the peer
 * still sends until it closes, goes quiet, or the limits pass. */
static void ws_linger(weft_ws *ws) {
  ws_wait w;
  int64_t total_ms =
      ws->lim.close_timeout_ms < 0 ? 30000 : ws->lim.close_timeout_ms;
  wait_enter(ws, &w, total_ms);
  size_t total = 0;
  if (weft_tcp_shutdown(ws->tcp) != 0) total = WS_LINGER_BYTES;
  char spare[WS_MIN_READ_BUFFER];
  char *drop = ws->rbuf != NULL ? ws->rbuf : spare;
  size_t drop_len = ws->rbuf != NULL ? ws->rsize : sizeof spare;
  while (total < WS_LINGER_BYTES) {
    weft_scope quiet;
    weft_scope_enter(&quiet, WS_LINGER_QUIET_MS);
    ssize_t n = weft_tcp_read(ws->tcp, drop, drop_len);
    weft_scope_leave(&quiet);
    if (n <= 0) break;
    total += (size_t)n;
  }
  wait_leave(ws, &w);
}

/* Fails the connection (section 7.1.7): sends a close with code unless one
 * was sent, lets the peer read it, and ends with err. */
static int ws_fail(weft_ws *ws, int code, int err) {
  if (ws->state == WS_OPEN) {
    const char *why = code == WEFT_WS_CLOSE_INVALID_DATA     ? "invalid UTF-8"
                      : code == WEFT_WS_CLOSE_TOO_BIG        ? "message too big"
                      : code == WEFT_WS_CLOSE_GOING_AWAY     ? "idle timeout"
                      : code == WEFT_WS_CLOSE_PROTOCOL_ERROR ? "protocol error"
                                                             : "";
    /* A peer that broke the rules gets close_timeout_ms to take the
     * close, not the longer write timeout. */
    ws_wait w;
    wait_enter(ws, &w, ws->lim.close_timeout_ms);
    ws_send_close(ws, code, why, strlen(why), WS_CLOSED);
    wait_leave(ws, &w);
  }
  ws->state = WS_CLOSED;
  ws_linger(ws);
  return ws_end(ws, err);
}

/* ---- Reading ------------------------------------------------------------- */

/* Reads up to len bytes into buf while keeping the connection's own
 * deadlines: sends a ping when the peer has been silent ping_interval_ms,
 * and returns WS_DUE_IDLE or WS_DUE_CLOSE when the idle timeout or the
 * wait for the peer's close passed. Otherwise returns the count (> 0),
 * UV_EOF, or an error (the caller's cancellation among them). */
static ssize_t ws_read(weft_ws *ws, void *buf, size_t len) {
  for (;;) {
    int64_t now = weft_now();
    int64_t idle_at = ws->lim.idle_timeout_ms < 0
                          ? -1
                          : ws->last_rx + ws->lim.idle_timeout_ms;
    int64_t ping_at = -1;
    if (ws->lim.ping_interval_ms >= 0 && ws->state == WS_OPEN) {
      int64_t since = ws->last_rx > ws->last_ping ? ws->last_rx : ws->last_ping;
      ping_at = since + ws->lim.ping_interval_ms;
    }
    int64_t close_at = ws->state == WS_CLOSE_SENT ? ws->close_deadline : -1;
    int64_t at = min_deadline(min_deadline(idle_at, ping_at), close_at);

    /* A deadline that passed while nobody was receiving still gets a
     * short read first: what the peer sent meanwhile is waiting in the
     * socket, and a peer that did send is not idle. */
    int64_t wait = at < 0 ? WEFT_NO_DEADLINE : at - now < 1 ? 1 : at - now;
    ws_wait w;
    wait_enter(ws, &w, wait);
    ssize_t n = weft_tcp_read(ws->tcp, buf, len);
    int left = wait_leave(ws, &w);
    if (ws->freeing) return WEFT_ECLOSED;
    /* Our own deadline, not the caller's scope, stopped the read. */
    int due = n < 0 && wait_was_ours(ws, left);
    if (!due) {
      if (n > 0) ws->last_rx = weft_now();
      return n == 0 ? UV_EOF : n;
    }
    now = weft_now();
    if (close_at >= 0 && now >= close_at) return WS_DUE_CLOSE;
    if (idle_at >= 0 && now >= idle_at) return WS_DUE_IDLE;
    if (ping_at >= 0 && now >= ping_at) {
      ws->last_ping = now;
      int r = ws_write_answer(ws, WS_OP_PING, NULL, 0, WS_OPEN);
      if (r < 0 && r != WEFT_ECLOSED) return r;
    }
  }
}

/* Turns a failed ws_read() into the receive's result: the caller's
 * cancellation is passed on and leaves ws usable; anything else ends it. */
static int ws_read_failed(weft_ws *ws, ssize_t n) {
  int cancelled = weft_cancelled();
  if (cancelled != 0) return cancelled;
  if (n == WS_DUE_IDLE)
    return ws_fail(ws, WEFT_WS_CLOSE_GOING_AWAY, UV_ETIMEDOUT);
  if (n == WS_DUE_CLOSE) return ws_end(ws, UV_ETIMEDOUT);
  /* A write that failed closed the connection under the reader. */
  if (ws->write_err != 0) return ws_end(ws, ws->write_err);
  return ws_end(ws, (int)n);
}

/* Reads and checks the next frame header. Returns 0 with the frame open,
 * or the receive's error. */
static int ws_read_header(weft_ws *ws) {
  for (;;) {
    size_t avail = ws->rlen - ws->rpos;
    const uint8_t *p = (const uint8_t *)ws->rbuf + ws->rpos;
    if (avail >= 2) {
      int fin = p[0] >> 7, rsv = p[0] & 0x70, op = p[0] & 0x0f;
      int masked = p[1] >> 7, len7 = p[1] & 0x7f;
      /* Section 5.2: a reserved bit is 0 unless an extension gives it a
       * meaning; section 5.1: a client masks every frame. */
      if ((rsv & 0x30) != 0 || !masked)
        return ws_fail(ws, WEFT_WS_CLOSE_PROTOCOL_ERROR, UV_EPROTO);
      /* RFC 7692 section 6: RSV1 marks the first frame of a compressed
       * message, once permessage-deflate was agreed, and nothing else. */
      if (rsv != 0 && (!ws->pmd || op == WS_OP_CONT || op >= 8))
        return ws_fail(ws, WEFT_WS_CLOSE_PROTOCOL_ERROR, UV_EPROTO);
      if (op >= 8) {
        if (op > WS_OP_PONG)
          return ws_fail(ws, WEFT_WS_CLOSE_PROTOCOL_ERROR, UV_EPROTO);
        /* Section 5.5: control frames are short and never fragmented. */
        if (!fin || len7 > 125)
          return ws_fail(ws, WEFT_WS_CLOSE_PROTOCOL_ERROR, UV_EPROTO);
      } else if (op > WS_OP_BINARY) { /* NOLINT(bugprone-branch-clone): each protocol error has its own rule */
        return ws_fail(ws, WEFT_WS_CLOSE_PROTOCOL_ERROR, UV_EPROTO);
      } else if ((op == WS_OP_CONT) != (ws->msg_type != 0)) {
        /* A continuation with no message open, or a new message while
         * one is still open (section 5.4). */
        return ws_fail(ws, WEFT_WS_CLOSE_PROTOCOL_ERROR, UV_EPROTO);
      }
      size_t hlen = 2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0) + 4;
      if (avail >= hlen) {
        uint64_t len = (uint64_t)len7;
        if (len7 == 126) {
          len = (uint64_t)p[2] << 8 | p[3];
        } else if (len7 == 127) {
          len = 0;
          for (int i = 0; i < 8; i++) len = len << 8 | p[2 + i];
          if (len >> 63)
            return ws_fail(ws, WEFT_WS_CLOSE_PROTOCOL_ERROR, UV_EPROTO);
        }
        if (op < 8) {
          /* Checked before a byte of payload is stored. The buffer grows
           * only as bytes arrive: a header alone costs no memory. */
          if (len > ws->lim.max_frame_bytes ||
              len > ws->lim.max_message_bytes - ws->msg_len)
            return ws_fail(ws, WEFT_WS_CLOSE_TOO_BIG, UV_EMSGSIZE);
          if (op != WS_OP_CONT) {
            ws->msg_type = op;
            ws->utf8 = 0;
            ws->msg_deflated = rsv != 0;
          }
        }
        memcpy(ws->f_mask, p + hlen - 4, 4);
        ws->f_fin = fin;
        ws->f_op = op;
        ws->f_len = len;
        ws->f_got = 0;
        ws->frame_open = 1;
        ws->rpos += hlen;
        return 0;
      }
    }
    if (ws->rbuf == NULL) {
      /* Given back by weft_ws_trim(): the buffer is made again once the
       * peer sends, not while the connection waits. */
      char first[16];
      ssize_t n = ws_read(ws, first, sizeof first);
      if (n < 0) return ws_read_failed(ws, n);
      ws->rbuf = malloc(ws->rsize);
      if (ws->rbuf == NULL) return ws_end(ws, UV_ENOMEM);
      memcpy(ws->rbuf, first, (size_t)n);
      ws->rpos = 0;
      ws->rlen = (size_t)n;
      continue;
    }
    /* Keep the partial header at the start of the buffer, and read more. */
    if (ws->rpos > 0) {
      memmove(ws->rbuf, ws->rbuf + ws->rpos, avail);
      ws->rpos = 0;
      ws->rlen = avail;
    }
    ssize_t n = ws_read(ws, ws->rbuf + ws->rlen, ws->rsize - ws->rlen);
    if (n < 0) return ws_read_failed(ws, n);
    ws->rlen += (size_t)n;
  }
}

/* Makes room in the message buffer for extra more bytes of the open data
 * frame (and the NUL after the message), growing it by doubling. Returns 0
 * or the error the connection failed with. */
static int ws_msg_room(weft_ws *ws, size_t extra) {
  size_t need = ws->msg_len + (size_t)ws->f_got + extra + 1;
  if (need <= ws->msg_cap) return 0;
  size_t cap = ws->msg_cap ? ws->msg_cap : 256;
  while (cap < need && cap <= SIZE_MAX / 4) cap *= 2;
  if (cap < need) cap = need;
  /* The frame's checked length bounds need; the limit bounds the rest. */
  if (cap > ws->lim.max_message_bytes + 1) cap = ws->lim.max_message_bytes + 1;
  char *m = realloc(ws->msg, cap);
  if (m == NULL) return ws_fail(ws, WEFT_WS_CLOSE_INTERNAL_ERROR, UV_ENOMEM);
  ws->msg = m;
  ws->msg_cap = cap;
  return 0;
}

/* Unmasks (and for text, checks) n newly read payload bytes at dst. */
static int ws_took(weft_ws *ws, uint8_t *dst, size_t n) {
  unmask(dst, n, ws->f_mask, ws->f_got);
  ws->f_got += n;
  /* Compressed text is checked once inflated. */
  if (ws->f_op < 8 && ws->msg_type == WEFT_WS_TEXT && !ws->msg_deflated) {
    ws->utf8 = utf8_feed(ws->utf8, dst, n);
    if (ws->utf8 == WS_UTF8_BAD)
      return ws_fail(ws, WEFT_WS_CLOSE_INVALID_DATA, UV_EILSEQ);
  }
  return 0;
}

/* Reads the rest of the open frame's payload. Returns 0 or an error. */
static int ws_read_payload(weft_ws *ws) {
  int control = ws->f_op >= 8;
  /* Even an empty data frame needs the buffer, for the NUL at the end. */
  if (!control) {
    int r = ws_msg_room(ws, 0);
    if (r < 0) return r;
  }
  while (ws->f_got < ws->f_len) {
    size_t want = (size_t)(ws->f_len - ws->f_got);
    if (ws->rpos < ws->rlen) {
      size_t n = ws->rlen - ws->rpos < want ? ws->rlen - ws->rpos : want;
      if (!control) {
        int r = ws_msg_room(ws, n);
        if (r < 0) return r;
      }
      uint8_t *at = control ? ws->ctrl + ws->f_got
                            : (uint8_t *)ws->msg + ws->msg_len + ws->f_got;
      memcpy(at, ws->rbuf + ws->rpos, n);
      ws->rpos += n;
      int r = ws_took(ws, at, n);
      if (r < 0) return r;
      continue;
    }
    ws->rpos = ws->rlen = 0;
    /* A large remainder goes straight to its place, as far as the buffer
     * has grown; a small one through the read buffer, which then also
     * picks up the frames behind it. */
    if (!control && want >= ws->rsize) {
      int r = ws_msg_room(ws, ws->rsize);
      if (r < 0) return r;
      size_t room = ws->msg_cap - 1 - ws->msg_len - (size_t)ws->f_got;
      if (want > room) want = room;
      uint8_t *at = (uint8_t *)ws->msg + ws->msg_len + ws->f_got;
      ssize_t n = ws_read(ws, at, want);
      if (n < 0) return ws_read_failed(ws, n);
      r = ws_took(ws, at, (size_t)n);
      if (r < 0) return r;
    } else {
      ssize_t n = ws_read(ws, ws->rbuf, ws->rsize);
      if (n < 0) return ws_read_failed(ws, n);
      ws->rlen = (size_t)n;
    }
  }
  ws->frame_open = 0;
  return 0;
}

/* Drops the decompressor (the next message gets a fresh one). */
static void ws_rx_drop(weft_ws *ws) {
  if (ws->rx == NULL) return;
  inflateEnd(ws->rx);
  free(ws->rx);
  ws->rx = NULL;
}

/* Inflates the compressed message in msg, with the 00 00 ff ff tail that
 * the sender left off (RFC 7692 section 7.2.2), into zmsg, NUL-terminated;
 * its length in *out_len. The output never grows past max_message_bytes +
 * 1. Returns 0, or the error the connection failed with: UV_EMSGSIZE
 * (1009) past the limit, UV_EILSEQ (1007) for a stream that does not
 * inflate. */
static int ws_inflate(weft_ws *ws, size_t *out_len) {
  static const uint8_t tail[4] = {0x00, 0x00, 0xff, 0xff};
  if (ws->rx == NULL) {
    z_stream *z = calloc(1, sizeof *z);
    /* zlib's own deflate writes for a window of 9 when asked for 8. */
    int bits = ws->rx_bits < 9 ? 9 : ws->rx_bits;
    if (z == NULL || inflateInit2(z, -bits) != Z_OK) {
      free(z);
      return ws_fail(ws, WEFT_WS_CLOSE_INTERNAL_ERROR, UV_ENOMEM);
    }
    ws->rx = z;
  }
  z_stream *z = ws->rx;
  size_t max = ws->lim.max_message_bytes, got = 0;
  const uint8_t *in = (const uint8_t *)ws->msg;
  size_t left = ws->msg_len;
  int tail_fed = 0, zr;
  z->avail_in = 0;
  for (;;) {
    if (z->avail_in == 0 && left > 0) {
      size_t chunk = left > ((size_t)1 << 30) ? (size_t)1 << 30 : left;
      z->next_in = (Bytef *)in;
      z->avail_in = (uInt)chunk;
      in += chunk;
      left -= chunk;
    } else if (z->avail_in == 0 && !tail_fed) {
      z->next_in = (Bytef *)tail;
      z->avail_in = sizeof tail;
      tail_fed = 1;
    }
    /* Room for one byte past the limit (to see it passed) and the NUL. */
    if (got + 1 >= ws->zmsg_cap) {
      if (ws->zmsg_cap >= max + 2) {
        ws_rx_drop(ws);
        return ws_fail(ws, WEFT_WS_CLOSE_TOO_BIG, UV_EMSGSIZE);
      }
      size_t cap = ws->zmsg_cap ? ws->zmsg_cap * 2 : 4096;
      if (cap < ws->msg_len * 2) cap = ws->msg_len * 2;
      if (cap > max + 2) cap = max + 2;
      char *b = realloc(ws->zmsg, cap);
      if (b == NULL) {
        ws_rx_drop(ws);
        return ws_fail(ws, WEFT_WS_CLOSE_INTERNAL_ERROR, UV_ENOMEM);
      }
      ws->zmsg = b;
      ws->zmsg_cap = cap;
    }
    size_t room = ws->zmsg_cap - 1 - got;
    if (room > ((size_t)1 << 30)) room = (size_t)1 << 30;
    z->next_out = (Bytef *)ws->zmsg + got;
    z->avail_out = (uInt)room;
    zr = inflate(z, Z_SYNC_FLUSH);
    got += room - z->avail_out;
    if (got > max) {
      ws_rx_drop(ws);
      return ws_fail(ws, WEFT_WS_CLOSE_TOO_BIG, UV_EMSGSIZE);
    }
    if (zr == Z_STREAM_END) {
      /* The sender ended the stream (BFINAL): the next message starts a
       * new one, and whatever is left here (our tail) is dropped. */
      inflateReset(z);
      break;
    }
    if (zr == Z_MEM_ERROR) {
      ws_rx_drop(ws);
      return ws_fail(ws, WEFT_WS_CLOSE_INTERNAL_ERROR, UV_ENOMEM);
    }
    if (zr != Z_OK && zr != Z_BUF_ERROR) {
      ws_rx_drop(ws);
      return ws_fail(ws, WEFT_WS_CLOSE_INVALID_DATA, UV_EILSEQ);
    }
    if (left == 0 && tail_fed && z->avail_in == 0 && z->avail_out > 0) break;
  }
  /* Without context takeover the client starts each message afresh: the
   * window's memory is not needed between messages. */
  if (!ws->rx_takeover) ws_rx_drop(ws);
  ws->zmsg[got] = '\0';
  *out_len = got;
  return 0;
}

/* Acts on a whole close frame from the peer. Returns WEFT_ECLOSED or the
 * error it failed the connection with. */
static __attribute__((noinline)) int ws_on_close(weft_ws *ws) {
  size_t len = (size_t)ws->f_len;
  int code = WEFT_WS_CLOSE_NO_STATUS;
  if (len == 1) return ws_fail(ws, WEFT_WS_CLOSE_PROTOCOL_ERROR, UV_EPROTO);
  if (len >= 2) {
    code = ws->ctrl[0] << 8 | ws->ctrl[1];
    if (!close_code_valid(code))
      return ws_fail(ws, WEFT_WS_CLOSE_PROTOCOL_ERROR, UV_EPROTO);
    if (!utf8_valid(ws->ctrl + 2, len - 2))
      return ws_fail(ws, WEFT_WS_CLOSE_INVALID_DATA, UV_EILSEQ);
    if (len > 2 && ws->close_reason == NULL) {
      ws->close_reason = malloc(len - 1);
      if (ws->close_reason != NULL) {
        memcpy(ws->close_reason, ws->ctrl + 2, len - 2);
        ws->close_reason[len - 2] = '\0';
      }
    }
  }
  ws->close_code = code;
  if (ws->state == WS_OPEN) {
    /* Answer with the same code (section 5.5.1), then send FIN: the peer
     * sends nothing after its close. */
    int echo = code == WEFT_WS_CLOSE_NO_STATUS ? 0 : code;
    /* Shielded as ws_write_answer() is; each wait has its deadline. */
    weft_scope s;
    weft_scope_enter_shielded(&s, WEFT_NO_DEADLINE);
    if (ws_send_close(ws, echo, NULL, 0, WS_CLOSED) == 0) {
      ws_wait w;
      wait_enter(ws, &w, ws->lim.write_timeout_ms);
      weft_tcp_shutdown(ws->tcp);
      wait_leave(ws, &w);
    }
    weft_scope_leave(&s);
  }
  return ws_end(ws, WEFT_ECLOSED);
}

/* Reads frames until a whole message is in msg (returns 0) or the
 * connection ends (returns the error). */
static int ws_next_message(weft_ws *ws, weft_ws_msg *msg) {
  if (ws->delivered) {
    ws->delivered = 0;
    ws->msg_len = 0;
    if (ws->msg_cap > WS_KEEP_MSG_BYTES) {
      free(ws->msg);
      ws->msg = NULL;
      ws->msg_cap = 0;
    }
    if (ws->zmsg_cap > WS_KEEP_MSG_BYTES) {
      free(ws->zmsg);
      ws->zmsg = NULL;
      ws->zmsg_cap = 0;
    }
  }
  for (;;) {
    int r;
    if (!ws->frame_open && (r = ws_read_header(ws)) != 0) return r;
    if ((r = ws_read_payload(ws)) != 0) return r;
    switch (ws->f_op) {
    case WS_OP_PING:
      /* A pong carries the ping's payload (section 5.5.3); once our
       * close is out, nothing more is sent. */
      if (ws->state == WS_OPEN) {
        r = ws_write_answer(ws, WS_OP_PONG, ws->ctrl, (size_t)ws->f_len,
                            WS_OPEN);
        if (r < 0 && r != WEFT_ECLOSED) {
          int cancelled = weft_cancelled();
          return cancelled ? cancelled : ws_end(ws, r);
        }
      }
      continue;
    case WS_OP_PONG:
      continue;
    case WS_OP_CLOSE:
      return ws_on_close(ws);
    default:
      break;
    }
    ws->msg_len += (size_t)ws->f_len;
    if (!ws->f_fin) continue;
    const char *data = ws->msg;
    size_t len = ws->msg_len;
    if (ws->msg_deflated) {
      if ((r = ws_inflate(ws, &len)) != 0) return r;
      data = ws->zmsg;
      if (ws->msg_type == WEFT_WS_TEXT && !utf8_valid(data, len))
        return ws_fail(ws, WEFT_WS_CLOSE_INVALID_DATA, UV_EILSEQ);
    } else {
      if (ws->msg_type == WEFT_WS_TEXT && (ws->utf8 & 0xff) != 0)
        return ws_fail(ws, WEFT_WS_CLOSE_INVALID_DATA, UV_EILSEQ);
      ws->msg[ws->msg_len] = '\0';
    }
    msg->type = ws->msg_type;
    msg->data = data;
    msg->len = len;
    ws->msg_type = 0;
    ws->delivered = 1;
    return 0;
  }
}

int weft_ws_recv(weft_ws *ws, weft_ws_msg *msg) {
  if (msg == NULL) return UV_EINVAL;
  int r = ws_enter(ws);
  if (r != 0) return r;
  if (ws->err != 0) return ws_leave(ws, ws->err);
  if (ws->reading) return ws_leave(ws, UV_EBUSY);
  ws->reading = 1;
  r = ws_next_message(ws, msg);
  ws->reading = 0;
  return ws_leave(ws, r);
}

void weft_ws_trim(weft_ws *ws) {
  if (ws_enter(ws) != 0) return;
  /* Only between messages: nothing of a frame or a message is held. */
  if (!ws->reading && !ws->frame_open && ws->msg_type == 0) {
    if (ws->rpos == ws->rlen) {
      free(ws->rbuf);
      ws->rbuf = NULL;
      ws->rpos = ws->rlen = 0;
    }
    free(ws->msg);
    ws->msg = NULL;
    ws->msg_len = ws->msg_cap = 0;
    free(ws->zmsg);
    ws->zmsg = NULL;
    ws->zmsg_cap = 0;
    ws->delivered = 0;
  }
  ws_leave(ws, 0);
}

/* ---- Closing ------------------------------------------------------------- */

int weft_ws_close(weft_ws *ws, int code, const char *reason) {
  size_t rlen = reason != NULL ? strlen(reason) : 0;
  if (code != 0 && !close_code_valid(code)) return UV_EINVAL;
  if (rlen > 123 || (rlen > 0 && code == 0) || !utf8_valid(reason, rlen))
    return UV_EINVAL;
  int r = ws_enter(ws);
  if (r != 0) return r;
  if (ws->state != WS_OPEN) return ws_leave(ws, WEFT_ECLOSED);
  /* Made here, while open: ws_end() has not run yet, and sets it. */
  if (ws->ended == NULL && (ws->ended = weft_event_new()) == NULL)
    return ws_leave(ws, UV_ENOMEM);
  ws->close_deadline =
      ws->lim.close_timeout_ms < 0 ? -1 : weft_now() + ws->lim.close_timeout_ms;
  r = ws_send_close(ws, code, reason, rlen, WS_CLOSE_SENT);
  if (r == 0 && ws->reading) {
    /* Another task receives: it will see the peer's close (or the close
     * deadline) and end the connection; wait for that. */
    ws_wait w;
    wait_enter(ws, &w, ws->lim.close_timeout_ms);
    r = weft_event_wait(ws->ended);
    int left = wait_leave(ws, &w);
    if (r != 0 && wait_was_ours(ws, left)) r = UV_ETIMEDOUT;
    if (r == 0 && ws->err != WEFT_ECLOSED && ws->err != UV_EOF) r = ws->err;
  } else if (r == 0) {
    /* Nobody else reads: drain until the peer's close, dropping the
     * messages that were still on their way. */
    ws->reading = 1;
    weft_ws_msg m;
    do r = ws_next_message(ws, &m);
    while (r == 0);
    ws->reading = 0;
    if (r == WEFT_ECLOSED || r == UV_EOF) r = 0;
    if (r == 0 && ws->err == WEFT_ECLOSED) {
      ws_wait w;
      wait_enter(ws, &w, ws->lim.write_timeout_ms);
      weft_tcp_shutdown(ws->tcp);
      wait_leave(ws, &w);
    }
  }
  return ws_leave(ws, r);
}

int weft_ws_close_code(const weft_ws *ws) {
  return ws != NULL ? ws->close_code : 0;
}

const char *weft_ws_close_reason(const weft_ws *ws) {
  return ws != NULL && ws->close_reason != NULL ? ws->close_reason : "";
}

const char *weft_ws_protocol(const weft_ws *ws) {
  return ws != NULL ? ws->protocol : "";
}

const char *weft_ws_extensions(const weft_ws *ws) {
  return ws != NULL ? ws->extensions : "";
}

void weft_ws_free(weft_ws *ws) {
  if (ws == NULL) return;
  if (ws->calls > 0) {
    /* Other tasks are inside calls (a sender blocked by a slow peer, a
     * receiver, a close waiting for the answer): end their waits, and let
     * them return before the memory goes. The wait is shielded, since a
     * cancelled caller must still not free ws under them. */
    if (ws->left == NULL) ws->left = weft_event_new(); /* NULL: leaked */
    ws->freeing = 1;
    for (ws_wait *w = ws->waits; w != NULL; w = w->next)
      weft_scope_cancel(&w->scope);
    weft_scope s;
    weft_scope_enter_shielded(&s, WS_FREE_WAIT_MS);
    while (ws->left != NULL && ws->calls > 0 && weft_event_wait(ws->left) == 0) {
    }
    weft_scope_leave(&s);
    if (ws->calls > 0) {
      /* Leaking is the only safe choice left; it needs a task that is
       * stuck outside every wait of ws, which should not happen. */
      weft_log(WEFT_LOG_ERROR, "websocket not freed", "calls=%u", ws->calls);
      return;
    }
  }
  weft_mutex_free(ws->wlock);
  weft_event_free(ws->ended);
  weft_event_free(ws->left);
  ws_tx_drop(ws);
  ws_rx_drop(ws);
  free(ws->zmsg);
  free(ws->msg);
  free(ws->rbuf);
  free(ws->close_reason);
  free(ws);
}

/* ---- The upgrade --------------------------------------------------------- */

/* Sets res to a refusal of the upgrade with status and why. */
static int refuse(weft_http_response *res, int status, const char *why) {
  weft_http_response_status(res, status);
  if (status == 426)
    weft_http_response_header(res, "Sec-WebSocket-Version", "13");
  weft_http_response_header(res, "Content-Type", "text/plain; charset=utf-8");
  weft_http_response_body(res, why, strlen(why));
  weft_http_response_append(res, "\n", 1);
  weft_http_response_close(res);
  return UV_EPROTO;
}

/* What the subprotocol choice looks through. */
typedef struct proto_pick {
  const char *const *protocols;
  const char *chosen;
} proto_pick;

/* list_each() callback: chooses tok if the server speaks it. */
static int proto_match(const char *tok, size_t len, void *arg) {
  proto_pick *pick = arg;
  for (const char *const *p = pick->protocols; *p != NULL; p++) {
    if (strlen(*p) == len && memcmp(*p, tok, len) == 0) {
      pick->chosen = *p;
      return 1;
    }
  }
  return 0;
}

/* ---- permessage-deflate negotiation (RFC 7692 section 7.1) -------------- */

/* One offer's parameters; a window of 0 was not named, -1 was named with
 * no value (client_max_window_bits alone). */
typedef struct pmd_offer {
  int server_no_takeover, client_no_takeover;
  int server_bits, client_bits;
} pmd_offer;

/* What the negotiation looks through: the server's settings in, the
 * answer out. */
typedef struct pmd_pick {
  const weft_ws_limits *lim;
  int accepted;
  int tx_bits, rx_bits, tx_takeover, rx_takeover;
  char answer[WS_EXT_MAX];
} pmd_pick;

/* Parses a window size: 8..15 in decimal without leading zeros, maybe in
 * quotes (section 7.1.2). Returns it, or 0 when it is not one. */
static int pmd_bits(const char *v, size_t len) {
  if (len >= 2 && v[0] == '"' && v[len - 1] == '"') {
    v++;
    len -= 2;
  }
  if (len == 1 && v[0] == '8') return 8;
  if (len == 1 && v[0] == '9') return 9;
  if (len == 2 && v[0] == '1' && v[1] >= '0' && v[1] <= '5')
    return 10 + (v[1] - '0');
  return 0;
}

/* Parses one extension element "name; param[=value]; ...". Returns 1 when
 * it is a permessage-deflate offer whose parameters are all known, each
 * named once, with valid values (section 7.1: anything else makes the
 * offer one to decline), with them in *o; 0 otherwise. */
static int pmd_parse(const char *tok, size_t len, pmd_offer *o) {
  memset(o, 0, sizeof *o);
  const char *end = tok + len, *p = tok;
  int first = 1;
  while (p <= end) {
    const char *semi = memchr(p, ';', (size_t)(end - p));
    const char *stop = semi != NULL ? semi : end;
    const char *a = p, *b = stop;
    while (a < b && (*a == ' ' || *a == '\t')) a++;
    while (b > a && (b[-1] == ' ' || b[-1] == '\t')) b--;
    const char *eq = memchr(a, '=', (size_t)(b - a));
    const char *nend = eq != NULL ? eq : b;
    while (nend > a && (nend[-1] == ' ' || nend[-1] == '\t')) nend--;
    size_t nlen = (size_t)(nend - a);
    const char *v = NULL;
    size_t vlen = 0;
    if (eq != NULL) {
      v = eq + 1;
      while (v < b && (*v == ' ' || *v == '\t')) v++;
      vlen = (size_t)(b - v);
    }
    if (first) {
      if (eq != NULL || !token_equal(a, nlen, "permessage-deflate")) return 0;
      first = 0;
    } else if (token_equal(a, nlen, "server_no_context_takeover")) {
      if (eq != NULL || o->server_no_takeover) return 0;
      o->server_no_takeover = 1;
    } else if (token_equal(a, nlen, "client_no_context_takeover")) {
      if (eq != NULL || o->client_no_takeover) return 0;
      o->client_no_takeover = 1;
    } else if (token_equal(a, nlen, "server_max_window_bits")) {
      if (eq == NULL || o->server_bits != 0) return 0;
      if ((o->server_bits = pmd_bits(v, vlen)) == 0) return 0;
    } else if (token_equal(a, nlen, "client_max_window_bits")) {
      if (o->client_bits != 0) return 0;
      o->client_bits = eq == NULL ? -1 : pmd_bits(v, vlen);
      if (o->client_bits == 0) return 0;
    } else {
      return 0;
    }
    if (semi == NULL) break;
    p = semi + 1;
  }
  return 1;
}

/* list_each() callback: accepts the offer in tok if it is one the server
 * can take, and writes the answer (section 7.1.1, 7.1.2). */
static int pmd_consider(const char *tok, size_t len, void *arg) {
  pmd_pick *pick = arg;
  pmd_offer o;
  if (!pmd_parse(tok, len, &o)) return 0;
  int own = pick->lim->deflate_window_bits;
  /* zlib cannot compress within a window of 8: decline, and let the
   * client's next offer (if any) be considered. */
  if (o.server_bits == 8) return 0;
  pick->tx_bits =
      o.server_bits != 0 && o.server_bits < own ? o.server_bits : own;
  pick->tx_takeover =
      !o.server_no_takeover && pick->lim->deflate_context_takeover > 0;
  pick->rx_takeover = !o.client_no_takeover;
  /* The client may be told a smaller window only if it said it can take
   * one (client_max_window_bits in the offer). */
  pick->rx_bits = 15;
  if (o.client_bits != 0) {
    int offered = o.client_bits > 0 ? o.client_bits : 15;
    pick->rx_bits = offered < own ? offered : own;
  }
  char *a = pick->answer;
  size_t cap = sizeof pick->answer, n;
  n = (size_t)snprintf(a, cap, "permessage-deflate");
  if (!pick->tx_takeover)
    n += (size_t)snprintf(a + n, cap - n, "; server_no_context_takeover");
  if (!pick->rx_takeover)
    n += (size_t)snprintf(a + n, cap - n, "; client_no_context_takeover");
  /* The server may name its own window even when it was not asked. */
  if (o.server_bits != 0 || pick->tx_bits < 15)
    n += (size_t)snprintf(a + n, cap - n, "; server_max_window_bits=%d",
                          pick->tx_bits);
  if (o.client_bits != 0)
    snprintf(a + n, cap - n, "; client_max_window_bits=%d", pick->rx_bits);
  pick->accepted = 1;
  return 1;
}

/* Looks through the client's Sec-WebSocket-Extensions offers, in order,
 * for the first permessage-deflate offer the server accepts. Fills *pick;
 * pick->accepted is 0 when there is none (or deflate is off). */
static void pmd_negotiate(const weft_http_request *req,
                          const weft_ws_limits *lim, pmd_pick *pick) {
  memset(pick, 0, sizeof *pick);
  pick->lim = lim;
  if (lim->deflate < 0) return;
  size_t n = weft_http_request_header_count(req);
  for (size_t i = 0; i < n && !pick->accepted; i++) {
    const char *hn, *hv;
    if (weft_http_request_header_at(req, i, &hn, &hv) != 0) break;
    if (token_equal(hn, strlen(hn), "Sec-WebSocket-Extensions"))
      list_each(hv, pmd_consider, pick);
  }
}

/* Checks the handshake of section 4.2.1. Returns 0, or sets res to the
 * refusal and returns UV_EPROTO. */
static int check_handshake(const weft_http_request *req,
                           weft_http_response *res, const char **key) {
  const char *v;
  if (strcmp(weft_http_request_method(req), "GET") != 0)
    return refuse(res, 400, "a WebSocket handshake is a GET");
  if (weft_http_request_version(req) < 11)
    return refuse(res, 400, "a WebSocket handshake needs HTTP/1.1");
  if (weft_http_request_header(req, "Host") == NULL)
    return refuse(res, 400, "no Host header");
  if (!header_has_token(req, "Upgrade", "websocket"))
    return refuse(res, 400, "no \"Upgrade: websocket\" header");
  if (!header_has_token(req, "Connection", "upgrade"))
    return refuse(res, 400, "no \"upgrade\" in the Connection header");
  if (header_count(req, "Sec-WebSocket-Version", &v) != 1 ||
      strcmp(v, "13") != 0)
    return refuse(res, 426, "only WebSocket version 13 is spoken here");
  if (header_count(req, "Sec-WebSocket-Key", key) != 1 || !ws_key_valid(*key))
    return refuse(res, 400, "Sec-WebSocket-Key is not 16 bytes in base64");
  size_t body_len = 0;
  weft_http_request_body(req, &body_len);
  if (body_len != 0)
    return refuse(res, 400, "a WebSocket handshake has no body");
  return 0;
}

int weft_ws_upgrade_protocols(const weft_http_request *req,
                              weft_http_response *res,
                              const weft_ws_limits *limits,
                              const char *const *protocols, weft_ws **out) {
  if (out != NULL) *out = NULL;
  if (req == NULL || res == NULL || out == NULL || !weft_in_task())
    return UV_EINVAL;
  const char *key = NULL;
  int r = check_handshake(req, res, &key);
  if (r != 0) return r;

  /* The first of the client's subprotocols that the server speaks. */
  proto_pick pick = {protocols, NULL};
  if (protocols != NULL) {
    size_t n = weft_http_request_header_count(req);
    for (size_t i = 0; i < n && pick.chosen == NULL; i++) {
      const char *hn, *hv;
      if (weft_http_request_header_at(req, i, &hn, &hv) != 0) break;
      if (token_equal(hn, strlen(hn), "Sec-WebSocket-Protocol"))
        list_each(hv, proto_match, &pick);
    }
  }
  const char *proto = pick.chosen ? pick.chosen : "";
  /* A subprotocol goes into a header line: refuse one that would break it. */
  if (strpbrk(proto, "\r\n") != NULL) return UV_EINVAL;

  size_t rest_len = 0;
  const void *rest = weft__http_request_rest(req, &rest_len);
  size_t plen = strlen(proto);
  weft_ws_limits lim;
  limits_resolve(&lim, limits);
  pmd_pick pmd;
  pmd_negotiate(req, &lim, &pmd);
  const char *ext = pmd.accepted ? pmd.answer : "";
  size_t elen = strlen(ext);
  /* The names at the end of the struct: one block, as small as they. */
  weft_ws *ws = calloc(1, sizeof *ws + plen + 1 + elen + 1);
  if (ws == NULL) return UV_ENOMEM;
  ws->lim = lim;
  memcpy(ws->protocol, proto, plen + 1);
  memcpy(ws->protocol + plen + 1, ext, elen + 1);
  ws->extensions = ws->protocol + plen + 1;
  if (pmd.accepted) {
    ws->pmd = 1;
    ws->tx_bits = pmd.tx_bits;
    ws->rx_bits = pmd.rx_bits;
    ws->tx_takeover = pmd.tx_takeover;
    ws->rx_takeover = pmd.rx_takeover;
  }
  ws->tcp = weft__http_request_tcp(req);
  ws->executor = weft_executor_id();
  ws->state = WS_OPEN;
  ws->close_deadline = -1;
  ws->last_rx = ws->last_ping = weft_now();
  /* The client's first frames may have come in with the request. */
  ws->rsize = rest_len > ws->lim.read_buffer_bytes ? rest_len
                                                   : ws->lim.read_buffer_bytes;
  ws->rbuf = malloc(ws->rsize);
  ws->wlock = weft_mutex_new();
  if (ws->rbuf == NULL || ws->wlock == NULL) {
    weft_ws_free(ws);
    return UV_ENOMEM;
  }
  if (rest_len > 0) memcpy(ws->rbuf, rest, rest_len);
  ws->rlen = rest_len;

  char accept[29];
  weft_ws_accept_key(key, accept);
  size_t cap = 200 + plen + WS_EXT_MAX + 40;
  char *head = malloc(cap);
  if (head == NULL) {
    weft_ws_free(ws);
    return UV_ENOMEM;
  }
  int hlen =
      snprintf(head, cap,
               "HTTP/1.1 101 Switching Protocols\r\n"
               "Upgrade: websocket\r\n"
               "Connection: Upgrade\r\n"
               "Sec-WebSocket-Accept: %s\r\n"
               "%s%s%s"
               "%s%s%s"
               "\r\n",
               accept, plen ? "Sec-WebSocket-Protocol: " : "", proto,
               plen ? "\r\n" : "", ws->pmd ? "Sec-WebSocket-Extensions: " : "",
               ws->extensions, ws->pmd ? "\r\n" : "");
  /* From here on the bytes on the connection are ours: the HTTP loop must
   * not answer this request, even if the 101 cannot be written. */
  weft__http_hijack(res);
  /* The request's buffers are of no more use (its first frames are
   * copied): a connection that lives for hours does not keep them. */
  weft__http_request_release(req);
  weft_tcp_nodelay(ws->tcp, 1);
  ws_wait w;
  wait_enter(ws, &w, ws->lim.write_timeout_ms);
  r = weft_tcp_write(ws->tcp, head, (size_t)hlen);
  int left = wait_leave(ws, &w);
  free(head);
  if (r != 0) {
    if (wait_was_ours(ws, left)) r = UV_ETIMEDOUT;
    weft_ws_free(ws);
    return r;
  }
  *out = ws;
  return 0;
}

int weft_ws_upgrade(const weft_http_request *req, weft_http_response *res,
                    const weft_ws_limits *limits, weft_ws **out) {
  return weft_ws_upgrade_protocols(req, res, limits, NULL, out);
}
