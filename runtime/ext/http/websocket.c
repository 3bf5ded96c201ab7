/* websocket.c: WebSocket (RFC 6455) server connections: the framing.
 *
 * This file reads and writes frames, and closes; ws_upgrade.c answers the
 * handshake (and negotiates permessage-deflate), ws_deflate.c compresses
 * and inflates messages, and ws_internal.h holds what they share.
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
#include "ws_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- Small helpers ------------------------------------------------------- */

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
void weft__ws_wait_enter(weft_ws *ws, ws_wait *w, int64_t timeout_ms) {
  weft_scope_enter(&w->scope, timeout_ms);
  w->prev = NULL;
  w->next = ws->waits;
  if (ws->waits != NULL) ws->waits->prev = w;
  ws->waits = w;
  if (ws->freeing) weft_scope_cancel(&w->scope);
}

/* Leaves it; returns weft_scope_leave()'s code. */
int weft__ws_wait_leave(weft_ws *ws, ws_wait *w) {
  if (w->prev != NULL)
    w->prev->next = w->next;
  else
    ws->waits = w->next;
  if (w->next != NULL) w->next->prev = w->prev;
  return weft_scope_leave(&w->scope);
}

/* Non-zero when a wait whose scope's leave code is left was ended by a
 * deadline of ws's own (not the caller's scope, nor weft_ws_free()). */
int weft__ws_wait_was_ours(const weft_ws *ws, int left) {
  return left != 0 && weft_cancelled() == 0 && !ws->freeing;
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
  weft__ws_wait_enter(ws, &w, ws->lim.write_timeout_ms);
  int r = weft_mutex_lock(ws->wlock);
  if (r != 0) {
    int left = weft__ws_wait_leave(ws, &w);
    return weft__ws_wait_was_ours(ws, left) ? UV_ETIMEDOUT : r;
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
      r = weft__ws_deflate(ws, data, len, &zbuf, &zlen);
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
  int left = weft__ws_wait_leave(ws, &w);
  /* Our own deadline stopped the write (not the caller's scope). */
  if (r < 0 && weft__ws_wait_was_ours(ws, left)) {
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
  weft__ws_wait_enter(ws, &w, ws->lim.write_timeout_ms);
  int r = weft_mutex_lock(ws->wlock);
  if (r != 0) {
    int left = weft__ws_wait_leave(ws, &w);
    return weft__ws_wait_was_ours(ws, left) ? UV_ETIMEDOUT : r;
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
        r = weft__ws_deflate(ws, data, len, &zbuf[k], &zlen);
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
  int left = weft__ws_wait_leave(ws, &w);
  if (r < 0 && weft__ws_wait_was_ours(ws, left)) {
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
  weft__ws_wait_enter(ws, &w, total_ms);
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
  weft__ws_wait_leave(ws, &w);
}

/* Fails the connection (section 7.1.7): sends a close with code unless one
 * was sent, lets the peer read it, and ends with err. */
int weft__ws_fail(weft_ws *ws, int code, int err) {
  if (ws->state == WS_OPEN) {
    const char *why = code == WEFT_WS_CLOSE_INVALID_DATA     ? "invalid UTF-8"
                      : code == WEFT_WS_CLOSE_TOO_BIG        ? "message too big"
                      : code == WEFT_WS_CLOSE_GOING_AWAY     ? "idle timeout"
                      : code == WEFT_WS_CLOSE_PROTOCOL_ERROR ? "protocol error"
                                                             : "";
    /* A peer that broke the rules gets close_timeout_ms to take the
     * close, not the longer write timeout. */
    ws_wait w;
    weft__ws_wait_enter(ws, &w, ws->lim.close_timeout_ms);
    ws_send_close(ws, code, why, strlen(why), WS_CLOSED);
    weft__ws_wait_leave(ws, &w);
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
    weft__ws_wait_enter(ws, &w, wait);
    ssize_t n = weft_tcp_read(ws->tcp, buf, len);
    int left = weft__ws_wait_leave(ws, &w);
    if (ws->freeing) return WEFT_ECLOSED;
    /* Our own deadline, not the caller's scope, stopped the read. */
    int due = n < 0 && weft__ws_wait_was_ours(ws, left);
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
    return weft__ws_fail(ws, WEFT_WS_CLOSE_GOING_AWAY, UV_ETIMEDOUT);
  if (n == WS_DUE_CLOSE) return ws_end(ws, UV_ETIMEDOUT);
  /* A write that failed closed the connection under the reader. */
  if (ws->write_err != 0) return ws_end(ws, ws->write_err);
  return ws_end(ws, (int)n);
}

/* Whether the first two bytes of a frame header, at p, break a rule of the
 * protocol. */
static int ws_header_bad(const weft_ws *ws, const uint8_t *p) {
  int fin = p[0] >> 7, rsv = p[0] & 0x70, op = p[0] & 0x0f;
  int masked = p[1] >> 7, len7 = p[1] & 0x7f;
  /* Section 5.2: a reserved bit is 0 unless an extension gives it a
   * meaning; section 5.1: a client masks every frame. */
  if ((rsv & 0x30) != 0 || !masked) return 1;
  /* RFC 7692 section 6: RSV1 marks the first frame of a compressed
   * message, once permessage-deflate was agreed, and nothing else. */
  if (rsv != 0 && (!ws->pmd || op == WS_OP_CONT || op >= 8)) return 1;
  /* Section 5.5: control frames are short and never fragmented. */
  if (op >= 8) return op > WS_OP_PONG || !fin || len7 > 125;
  if (op > WS_OP_BINARY) return 1;
  /* A continuation with no message open, or a new message while one is
   * still open (section 5.4). */
  return (op == WS_OP_CONT) != (ws->msg_type != 0);
}

/* The length of the frame header that starts with p[0], p[1]. */
static size_t ws_header_len(const uint8_t *p) {
  int len7 = p[1] & 0x7f;
  return 2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0) + 4;
}

/* Opens the frame whose whole header (hlen bytes, checked by
 * ws_header_bad()) is at p, the next unread bytes. Returns 0, or the error
 * the connection failed with. */
static int ws_header_open(weft_ws *ws, const uint8_t *p, size_t hlen) {
  int fin = p[0] >> 7, rsv = p[0] & 0x70, op = p[0] & 0x0f;
  int len7 = p[1] & 0x7f;
  uint64_t len = (uint64_t)len7;
  if (len7 == 126) {
    len = (uint64_t)p[2] << 8 | p[3];
  } else if (len7 == 127) {
    len = 0;
    for (int i = 0; i < 8; i++) len = len << 8 | p[2 + i];
    if (len >> 63) return weft__ws_fail(ws, WEFT_WS_CLOSE_PROTOCOL_ERROR, UV_EPROTO);
  }
  if (op < 8) {
    /* Checked before a byte of payload is stored. The buffer grows
     * only as bytes arrive: a header alone costs no memory. */
    if (len > ws->lim.max_frame_bytes ||
        len > ws->lim.max_message_bytes - ws->msg_len)
      return weft__ws_fail(ws, WEFT_WS_CLOSE_TOO_BIG, UV_EMSGSIZE);
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

/* Reads more of a frame header of which avail bytes are buffered.
 * Returns 0, or the receive's error. */
static int ws_header_more(weft_ws *ws, size_t avail) {
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
    return 0;
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
  return 0;
}

/* Reads and checks the next frame header. Returns 0 with the frame open,
 * or the receive's error. */
static int ws_read_header(weft_ws *ws) {
  for (;;) {
    size_t avail = ws->rlen - ws->rpos;
    const uint8_t *p = (const uint8_t *)ws->rbuf + ws->rpos;
    if (avail >= 2) {
      if (ws_header_bad(ws, p))
        return weft__ws_fail(ws, WEFT_WS_CLOSE_PROTOCOL_ERROR, UV_EPROTO);
      size_t hlen = ws_header_len(p);
      if (avail >= hlen) return ws_header_open(ws, p, hlen);
    }
    int r = ws_header_more(ws, avail);
    if (r < 0) return r;
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
  if (m == NULL) return weft__ws_fail(ws, WEFT_WS_CLOSE_INTERNAL_ERROR, UV_ENOMEM);
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
      return weft__ws_fail(ws, WEFT_WS_CLOSE_INVALID_DATA, UV_EILSEQ);
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

/* Acts on a whole close frame from the peer. Returns WEFT_ECLOSED or the
 * error it failed the connection with. */
static __attribute__((noinline)) int ws_on_close(weft_ws *ws) {
  size_t len = (size_t)ws->f_len;
  int code = WEFT_WS_CLOSE_NO_STATUS;
  if (len == 1) return weft__ws_fail(ws, WEFT_WS_CLOSE_PROTOCOL_ERROR, UV_EPROTO);
  if (len >= 2) {
    code = ws->ctrl[0] << 8 | ws->ctrl[1];
    if (!close_code_valid(code))
      return weft__ws_fail(ws, WEFT_WS_CLOSE_PROTOCOL_ERROR, UV_EPROTO);
    if (!utf8_valid(ws->ctrl + 2, len - 2))
      return weft__ws_fail(ws, WEFT_WS_CLOSE_INVALID_DATA, UV_EILSEQ);
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
      weft__ws_wait_enter(ws, &w, ws->lim.write_timeout_ms);
      weft_tcp_shutdown(ws->tcp);
      weft__ws_wait_leave(ws, &w);
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
      if ((r = weft__ws_inflate(ws, &len)) != 0) return r;
      data = ws->zmsg;
      if (ws->msg_type == WEFT_WS_TEXT && !utf8_valid(data, len))
        return weft__ws_fail(ws, WEFT_WS_CLOSE_INVALID_DATA, UV_EILSEQ);
    } else {
      if (ws->msg_type == WEFT_WS_TEXT && (ws->utf8 & 0xff) != 0)
        return weft__ws_fail(ws, WEFT_WS_CLOSE_INVALID_DATA, UV_EILSEQ);
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
    weft__ws_wait_enter(ws, &w, ws->lim.close_timeout_ms);
    r = weft_event_wait(ws->ended);
    int left = weft__ws_wait_leave(ws, &w);
    if (r != 0 && weft__ws_wait_was_ours(ws, left)) r = UV_ETIMEDOUT;
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
      weft__ws_wait_enter(ws, &w, ws->lim.write_timeout_ms);
      weft_tcp_shutdown(ws->tcp);
      weft__ws_wait_leave(ws, &w);
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
