/* weft/chan.h: channels and select.
 *
 * A channel carries fixed-size items between tasks, in order. Three modes
 * share one API:
 *
 *   WEFT_CHAN_LOCAL  tasks of one executor only; no atomics at all.
 *   WEFT_CHAN_SPSC   one sending task and one receiving task at a time, on
 *                    any executors; a lock-free ring on the data path.
 *   WEFT_CHAN_MPMC   any tasks on any executors; a lock-free ring.
 *
 * Capacity 0 makes a rendezvous channel: a send completes only when a
 * receiver takes the item. A task that has to wait is suspended; its thread
 * keeps running other tasks. Every wait honours cancellation and deadlines.
 *
 * Closing: senders get WEFT_ECLOSED at once; receivers drain what is
 * buffered, then get WEFT_ECLOSED. Closing a channel frees nothing:
 * weft_chan_free() does, once no task uses it. (In weft "close" means three
 * things: a channel's or a stream's close ends it and frees nothing, a TCP
 * close frees the connection, a WebSocket close sends a close frame; see
 * docs/ARCHITECTURE.md, "Who allocates, who frees".)
 */
#ifndef WEFT_CHAN_H
#define WEFT_CHAN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** A channel (opaque). */
typedef struct weft_chan weft_chan;

/** Channel modes. */
enum {
  WEFT_CHAN_LOCAL = 0,
  WEFT_CHAN_SPSC = 1,
  WEFT_CHAN_MPMC = 2
};

/**
 * Makes a channel of items of elem_size bytes (1 to 65536) holding up to
 * capacity items (0: rendezvous). Cross-executor rings round the capacity
 * up to a power of two. Returns NULL on bad arguments (elem_size 0 or over
 * 65536, an unknown mode, a capacity over 2^30) or out of memory; the two
 * cannot be told apart, so check the arguments first where that matters.
 * (It keeps this form for the programs that use it; constructors added
 * since that can fail in several ways return an error code and the object
 * in an out-parameter, as weft_tcp_connect() does.)
 */
weft_chan *weft_chan_new(size_t elem_size, size_t capacity, int mode);

/**
 * Sends the item at elem (elem_size bytes are copied), waiting while the
 * channel is full. Returns 0, WEFT_ECLOSED, UV_ECANCELED or UV_ETIMEDOUT.
 */
int weft_chan_send(weft_chan *c, const void *elem);

/**
 * Receives an item into elem, waiting while the channel is empty. Returns 0,
 * WEFT_ECLOSED once closed and drained, UV_ECANCELED or UV_ETIMEDOUT.
 */
int weft_chan_recv(weft_chan *c, void *elem);

/** Sends without waiting: 0, UV_EAGAIN when full (or no receiver waits on a
 * rendezvous channel), or WEFT_ECLOSED. */
int weft_chan_try_send(weft_chan *c, const void *elem);

/** Receives without waiting: 0, UV_EAGAIN when empty, or WEFT_ECLOSED. */
int weft_chan_try_recv(weft_chan *c, void *elem);

/**
 * Sends the n items at elems, in order, waiting as needed. Returns n, or when
 * closed or cancelled part-way the number sent before that if any, else the
 * error.
 */
long weft_chan_send_n(weft_chan *c, const void *elems, size_t n);

/**
 * Waits for at least one item, then receives up to n items without further
 * waiting. Returns the number received (> 0) or an error as weft_chan_recv.
 */
long weft_chan_recv_n(weft_chan *c, void *elems, size_t n);

/** Closes c: no more sends; receivers drain what is buffered. Idempotent;
 * waiting senders and receivers are woken. Does not free c. */
void weft_chan_close(weft_chan *c);

/** Non-zero once c is closed. */
int weft_chan_closed(const weft_chan *c);

/** Items buffered now (a snapshot across executors). */
size_t weft_chan_len(const weft_chan *c);

/** The capacity c was made with (after rounding). */
size_t weft_chan_cap(const weft_chan *c);

/**
 * Frees c. No task may be using it or waiting on it; buffered items are
 * dropped.
 */
void weft_chan_free(weft_chan *c);

/* ---- Select ------------------------------------------------------------- */

/** A select case's operation. */
enum { WEFT_SELECT_RECV = 0, WEFT_SELECT_SEND = 1 };

/** One case of a select. */
typedef struct weft_case {
  weft_chan *chan;         /**< NULL: the case is ignored */
  int op;                  /**< WEFT_SELECT_RECV or WEFT_SELECT_SEND */
  void *elem;              /**< item to send, or where to receive */
  int result;              /**< out: 0, or WEFT_ECLOSED for the case fired */
} weft_case;

/**
 * Waits until one of the n cases can proceed, performs it and returns its
 * index. A case on a closed channel fires with result WEFT_ECLOSED. When
 * several are ready, one is chosen at random, so none starves.
 * timeout_ms < 0 waits without limit; 0 does not wait (UV_EAGAIN when no case
 * is ready); otherwise UV_ETIMEDOUT after timeout_ms. Also returns
 * UV_ECANCELED / UV_ETIMEDOUT when the task's scope is cancelled, and
 * UV_EINVAL when no case has a channel.
 */
int weft_select(weft_case *cases, size_t n, int64_t timeout_ms);

#ifdef __cplusplus
}
#endif
#endif /* WEFT_CHAN_H */
