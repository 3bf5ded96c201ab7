/* weft_ws.h: WebSocket (RFC 6455) server connections on weft tasks.
 *
 * A WebSocket starts as an HTTP/1.1 request: the handler given to
 * weft_http_serve_conn() calls weft_ws_upgrade(), which checks the request,
 * writes the 101 response and takes the connection over from the HTTP loop.
 * The handler then speaks WebSocket for the rest of the connection's life,
 * inside its own call, and frees the weft_ws before it returns:
 *
 *   static int chat(const weft_http_request *req, weft_http_response *res,
 *                   void *ctx) {
 *     weft_ws *ws;
 *     if (weft_ws_upgrade(req, res, NULL, &ws) != 0)
 *       return 0;                        // res holds the 400 or 426 answer
 *     weft_ws_msg msg;
 *     while (weft_ws_recv(ws, &msg) == 0)
 *       weft_ws_send(ws, msg.type, msg.data, msg.len);  // echo
 *     weft_ws_free(ws);
 *     return 0;
 *   }
 *
 * weft_ws_recv() returns whole messages: fragments are put together, pings
 * are answered with pongs, pongs are dropped and a close from the peer is
 * answered and reported as WEFT_ECLOSED. A peer that breaks the protocol
 * (unmasked frames, reserved bits, bad opcodes, oversized or fragmented
 * control frames, invalid UTF-8 in text, messages over the limit) is sent
 * the close code the RFC asks for and the connection ends.
 *
 * Compression: the permessage-deflate extension (RFC 7692) is accepted when
 * the client offers it (browsers do) unless the limits turn it off. Then
 * weft_ws_recv() inflates compressed messages (the size limit applies to
 * the inflated size, checked while inflating) and weft_ws_send() compresses
 * messages of deflate_min_bytes or more. Memory per connection: by default
 * the server compresses each message with a fresh compressor that is freed
 * once the message is out (server_no_context_takeover), so an idle
 * connection holds only the client's decompression window (1 <<
 * client_max_window_bits bytes, 32 KiB at most, plus about 7 KiB of zlib
 * state; nothing when the client offered client_no_context_takeover).
 * deflate_context_takeover = 1 keeps the compressor for the connection's
 * life, which compresses similar messages much better and costs
 * (1 << (deflate_window_bits + 2)) bytes plus 4 << deflate_window_bits
 * bytes of hash (up to 256 KiB at window 15). A compressed message that
 * does not inflate ends the connection with close 1007; the frame and
 * message limits bound its compressed bytes as they arrive as well.
 * The first offer the server can take is accepted; one it cannot (an
 * unknown, repeated or badly valued parameter, or server_max_window_bits=8,
 * a window zlib cannot keep to) is passed over, and with no offer left the
 * upgrade goes on without compression. weft_ws_extensions() tells which
 * parameters were agreed.
 *
 * Tasks and executors: a weft_ws belongs to its connection's executor.
 * One task at a time may receive; any number of tasks of that executor may
 * send at once (a chat room's broadcast): frames are written whole, one
 * after another, under a write lock, and never interleave. A call from a
 * task of another executor fails with UV_EINVAL; to send from there, pass
 * the message through a channel (weft_chan_new(..., WEFT_CHAN_MPMC)) to a
 * task on the connection's executor. weft_ws_free() ends the calls that
 * other tasks still have in progress on the weft_ws (they return
 * WEFT_ECLOSED) and waits for them to return before it frees it; no call
 * may start after it.
 *
 * Lifecycle: weft_ws_upgrade() allocates a weft_ws; weft_ws_free(), and
 * nothing else, frees it. "Close" here means the protocol's closing
 * handshake: weft_ws_close() sends a close frame and waits for the peer's
 * answer, and frees nothing, and neither does a close from the peer (after
 * either, the weft_ws still reports the code and reason until it is
 * freed). The socket under it is the HTTP connection's: its owner, the
 * caller of weft_http_serve_conn(), closes it (weft_tcp_close(), which
 * frees the weft_tcp) once the handler has returned.
 *
 * Every call that waits honours the caller's cancellation scope and returns
 * UV_ECANCELED or UV_ETIMEDOUT. A receive that is cancelled leaves the
 * weft_ws usable (the next weft_ws_recv() goes on where it stopped); a send
 * that is cancelled part-way ends the connection (weft_tcp closes a
 * connection whose write was cancelled).
 */
#ifndef WEFT_WS_H
#define WEFT_WS_H

#include <stddef.h>
#include <stdint.h>

#include "weft_http.h"

#ifdef __cplusplus
extern "C" {
#endif

/** A WebSocket server connection (opaque). */
typedef struct weft_ws weft_ws;

/** Message types, the RFC's opcodes for data frames. */
enum {
  WEFT_WS_TEXT = 1,  /**< UTF-8 text */
  WEFT_WS_BINARY = 2 /**< bytes */
};

/** Close status codes of RFC 6455 section 7.4.1. */
enum {
  WEFT_WS_CLOSE_NORMAL = 1000,
  WEFT_WS_CLOSE_GOING_AWAY = 1001,
  WEFT_WS_CLOSE_PROTOCOL_ERROR = 1002,
  WEFT_WS_CLOSE_UNSUPPORTED = 1003,
  WEFT_WS_CLOSE_NO_STATUS =
      1005, /**< reported only: the peer's close had no code */
  WEFT_WS_CLOSE_ABNORMAL = 1006, /**< reported only: no close frame at all */
  WEFT_WS_CLOSE_INVALID_DATA = 1007, /**< text that is not UTF-8 */
  WEFT_WS_CLOSE_POLICY = 1008,
  WEFT_WS_CLOSE_TOO_BIG = 1009,
  WEFT_WS_CLOSE_INTERNAL_ERROR = 1011
};

/**
 * Limits of a WebSocket connection. A field left 0 takes its default (shown
 * after the field); weft_ws_limits_default() fills them all in. A timeout or
 * interval below 0 means none.
 */
typedef struct weft_ws_limits {
  size_t max_frame_bytes;   /**< payload of one data frame; 1 MiB; over: close
                               1009 */
  size_t max_message_bytes; /**< a whole message, fragments together; 1 MiB;
                               over: close 1009 */
  int64_t ping_interval_ms; /**< recv sends a ping when the peer was silent this
                               long; 30 s */
  int64_t idle_timeout_ms;  /**< recv gives up (close 1001) when the peer was
                               silent this long; 75 s */
  int64_t close_timeout_ms; /**< wait for the peer's close after ours; 5 s */
  int64_t write_timeout_ms; /**< to write one frame; 30 s; over: the connection
                               ends */
  size_t read_buffer_bytes; /**< bytes read from the socket at once; 16 KiB */
  /* permessage-deflate (RFC 7692); these fields came last, so code that
   * zero-fills the structure gets the defaults. */
  int deflate;                  /**< accept permessage-deflate when offered: 1
                                   yes, -1 no; 1 */
  int deflate_level;            /**< zlib level 1..9 for sent messages; 6 */
  size_t deflate_min_bytes;     /**< shorter messages are sent uncompressed;
                                   128 */
  int deflate_window_bits;      /**< 9..15: log2 of the largest LZ77 window
                                   the server compresses with, and asks the
                                   client to keep to when its offer allows
                                   (smaller windows take less memory and
                                   compress less); 15 */
  int deflate_context_takeover; /**< 1: the server keeps its compressor from
                                   one message to the next; -1: a fresh one
                                   per message (server_no_context_takeover,
                                   less memory); -1 */
} weft_ws_limits;

/** Fills *limits with the defaults. */
void weft_ws_limits_default(weft_ws_limits *limits);

/** A received message (see weft_ws_recv()). */
typedef struct weft_ws_msg {
  int type;         /**< WEFT_WS_TEXT or WEFT_WS_BINARY */
  const void *data; /**< the payload, followed by a NUL that is not counted */
  size_t len;       /**< bytes */
} weft_ws_msg;

/**
 * Accepts the WebSocket upgrade asked for by req. The request must be a
 * GET of HTTP/1.1 or later with a Host, "Upgrade: websocket", a Connection
 * header holding the "upgrade" token, "Sec-WebSocket-Version: 13", a
 * Sec-WebSocket-Key that is the base64 form of 16 bytes, and no body.
 *
 * On success writes the 101 Switching Protocols response itself, takes the
 * connection over from the HTTP loop (which writes nothing for res and ends
 * once the handler returns), sets TCP_NODELAY, and returns 0 with the new
 * connection in *out, to be freed with weft_ws_free() before the handler
 * returns. limits may be NULL for the defaults. The request's buffers are
 * given back at once (a WebSocket may live for hours): after a successful
 * upgrade, req's method, path, query, headers and body read as empty, so a
 * handler copies what it needs of them before the call.
 *
 * Otherwise sets res to the answer (400 Bad Request, or 426 Upgrade
 * Required with "Sec-WebSocket-Version: 13" for another version) and
 * returns UV_EPROTO; the handler returns 0 to send it. Returns UV_EINVAL for
 * a bad argument or a call from another executor, UV_ENOMEM, or the error
 * of writing the 101 response (the connection is then taken over and ends).
 */
int weft_ws_upgrade(const weft_http_request *req, weft_http_response *res,
                    const weft_ws_limits *limits, weft_ws **out);

/**
 * weft_ws_upgrade() with subprotocol negotiation. protocols is the server's
 * NULL-terminated list of subprotocols (may be NULL); the first one of the
 * client's Sec-WebSocket-Protocol list that is in it (compared exactly) is
 * chosen and sent back. When none matches, the upgrade still succeeds with
 * no subprotocol: a handler that needs one checks weft_ws_protocol().
 */
int weft_ws_upgrade_protocols(const weft_http_request *req,
                              weft_http_response *res,
                              const weft_ws_limits *limits,
                              const char *const *protocols, weft_ws **out);

/** The chosen subprotocol, or "" when none was. */
const char *weft_ws_protocol(const weft_ws *ws);

/**
 * The permessage-deflate parameters the server answered with (for example
 * "permessage-deflate; server_no_context_takeover"), or "" when the
 * extension was not negotiated.
 */
const char *weft_ws_extensions(const weft_ws *ws);

/**
 * Waits for the next whole message and describes it in *msg. The payload
 * stays valid until the next weft_ws_recv() or weft_ws_free(). One task at a
 * time may receive (another gets UV_EBUSY).
 *
 * While it waits it answers pings, sends a ping when the peer has been
 * silent for ping_interval_ms, and gives up after idle_timeout_ms of
 * silence. Pings go out only while a task waits here, but the silence is
 * counted from the peer's last byte whether or not one did: a connection
 * is meant to have a task receiving all along (as a chat connection has).
 * Returns 0, or:
 *   WEFT_ECLOSED   the close handshake is done (the peer closed and was
 *                  answered, or it answered weft_ws_close()); see
 *                  weft_ws_close_code() and weft_ws_close_reason();
 *   UV_EOF         the peer ended the connection without a close frame;
 *   UV_EPROTO      the peer broke the protocol (sent close 1002);
 *   UV_EILSEQ      a text message or close reason was not UTF-8, or a
 *                  compressed message did not inflate (close 1007);
 *   UV_EMSGSIZE    a frame or message over the limits, a compressed one
 *                  counted at its inflated size (close 1009);
 *   UV_ETIMEDOUT   idle_timeout_ms of silence (close 1001), or no answer to
 *                  our close in close_timeout_ms, or the caller's deadline;
 *   UV_ECANCELED   the caller's scope was cancelled (the weft_ws stays
 *                  usable), or an I/O error.
 * After any error but cancellation, every later call returns it again.
 */
int weft_ws_recv(weft_ws *ws, weft_ws_msg *msg);

/**
 * Sends one message of type WEFT_WS_TEXT or WEFT_WS_BINARY in a single
 * frame, compressed when permessage-deflate was negotiated and len is at
 * least deflate_min_bytes (a message that would not shrink goes out as it
 * is, unless the compressor keeps its context, which the peer must follow
 * message by message). Text must be UTF-8. Returns 0 once the frame is
 * handed to the socket, WEFT_ECLOSED after a close was sent or received,
 * UV_ENOMEM when compression had no memory (the connection then ends),
 * UV_EINVAL for a
 * bad argument or text that is not UTF-8, UV_ETIMEDOUT when the write took
 * longer than write_timeout_ms (the connection then ends), or an error.
 */
int weft_ws_send(weft_ws *ws, int type, const void *data, size_t len);

/**
 * Sends n messages of type (WEFT_WS_TEXT or WEFT_WS_BINARY), msgs[i] being
 * the i-th, each as its own frame exactly as weft_ws_send() would, in
 * order and with no other task's frame between them. The frames go out
 * together (up to 32 messages per system call), so a burst of small
 * messages costs one write rather than one per message. write_timeout_ms
 * bounds the whole call. Checks every message first: nothing is sent when
 * one is not UTF-8 text (UV_EINVAL). Returns as weft_ws_send(); after an
 * error some of the messages may have been sent, and the connection ends.
 */
int weft_ws_send_many(weft_ws *ws, int type, const uv_buf_t *msgs, size_t n);

/**
 * Gives back the buffers of a connection that waits between messages
 * (its read buffer when it holds nothing unread, and the last message's),
 * for a server that holds many idle connections; they are made again when
 * the peer sends. The message of the last weft_ws_recv() is no longer
 * valid. Does nothing while a receive is in progress or a message is
 * half read. Call from the connection's executor.
 */
void weft_ws_trim(weft_ws *ws);

/** weft_ws_send() of a text message of len bytes. */
int weft_ws_send_text(weft_ws *ws, const char *text, size_t len);

/** weft_ws_send() of a binary message. */
int weft_ws_send_binary(weft_ws *ws, const void *data, size_t len);

/**
 * Sends a ping with up to 125 bytes of payload (the peer answers with a
 * pong, which weft_ws_recv() drops). Returns as weft_ws_send().
 */
int weft_ws_send_ping(weft_ws *ws, const void *data, size_t len);

/**
 * Starts or finishes the closing handshake (sends a frame; frees nothing:
 * ws stays valid until weft_ws_free()): sends a close frame with code
 * (1000..1003, 1007..1014 or 3000..4999; 0 sends a close without a code)
 * and reason (UTF-8, at most 123 bytes; may be NULL), then waits up to
 * close_timeout_ms for the peer's close. While no other task receives, it
 * reads (and drops) what the peer still sends; otherwise the receiving
 * task sees the peer's close and its weft_ws_recv() returns WEFT_ECLOSED.
 * Sending stops at once: later sends return WEFT_ECLOSED.
 *
 * Returns 0 when the peer answered (or ended the connection), UV_ETIMEDOUT
 * when it did not in time, WEFT_ECLOSED when a close was sent already,
 * UV_EINVAL for a bad code or reason, or an error.
 */
int weft_ws_close(weft_ws *ws, int code, const char *reason);

/**
 * The code of the peer's close frame (WEFT_WS_CLOSE_NO_STATUS when it had
 * none), WEFT_WS_CLOSE_ABNORMAL when the connection ended without one, or 0
 * while the connection is open.
 */
int weft_ws_close_code(const weft_ws *ws);

/** The reason in the peer's close frame, NUL-terminated; "" when none. */
const char *weft_ws_close_reason(const weft_ws *ws);

/**
 * Frees ws, whether or not it was closed (weft_ws_close() or the peer's
 * close); the only call that frees a weft_ws. Calls that other tasks of its executor are still making on ws
 * (a send held up by a slow peer, a receive, a close waiting for the
 * answer) are ended first: they return WEFT_ECLOSED, and weft_ws_free()
 * waits for them to return, even when the caller is cancelled (a send
 * ended part-way leaves the connection unusable, which no longer matters).
 * No call may start once weft_ws_free() has been called. The connection
 * itself is closed by weft_http_serve_conn()'s caller once the handler
 * returns; a peer that was not sent a close sees it end (1006).
 */
void weft_ws_free(weft_ws *ws);

/**
 * Computes the Sec-WebSocket-Accept value for a Sec-WebSocket-Key:
 * base64(SHA-1(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")), 28
 * characters and a NUL in out.
 */
void weft_ws_accept_key(const char *key, char out[29]);

#ifdef __cplusplus
}
#endif
#endif /* WEFT_WS_H */
