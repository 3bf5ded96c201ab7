/* ws_internal.h: what the parts of a WebSocket connection share:
 * websocket.c (the framing), ws_deflate.c (permessage-deflate's
 * compression) and ws_upgrade.c (the handshake). Not installed. */
#ifndef WEFT_WS_INTERNAL_H
#define WEFT_WS_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <zlib.h>

#include "http_internal.h"
#include "weft_ws.h"

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

/* ---- websocket.c --------------------------------------------------------- */

/* Fails the connection (section 7.1.7): sends a close with code unless one
 * was sent, lets the peer read it, and ends with err, which it returns. */
int weft__ws_fail(weft_ws *ws, int code, int err);

/* A wait of the calling task inside a call on ws: a scope with timeout_ms
 * that weft_ws_free() can cancel, entered and left (the leave returns
 * weft_scope_leave()'s code); whether a wait that ended with that code was
 * ended by ws's own deadline. */
void weft__ws_wait_enter(weft_ws *ws, ws_wait *w, int64_t timeout_ms);
int weft__ws_wait_leave(weft_ws *ws, ws_wait *w);
int weft__ws_wait_was_ours(const weft_ws *ws, int left);

/* ---- ws_deflate.c -------------------------------------------------------- */

int weft__ws_deflate(weft_ws *ws, const void *data, size_t len, uint8_t **out,
                     size_t *out_len);
void weft__ws_tx_drop(weft_ws *ws);
void weft__ws_rx_drop(weft_ws *ws);
int weft__ws_inflate(weft_ws *ws, size_t *out_len);

#endif /* WEFT_WS_INTERNAL_H */
