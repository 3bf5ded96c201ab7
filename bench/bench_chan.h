/* bench_chan.h: the pieces of the channel benchmarks that use weft.
 *
 * Kept apart from bench_util.h, which must stay free of weft for the peers
 * built without it.
 */
#ifndef WEFT_BENCH_CHAN_H
#define WEFT_BENCH_CHAN_H

#include <stdint.h>

#include "weft.h"

/* Receives up to `batch` items into `buf`: with weft_chan_recv when batch
 * is 1, so that the single-item path is the one measured, otherwise with
 * weft_chan_recv_n. Returns how many were received (at least 1) or an error
 * as those calls do. */
static inline long bench_chan_recv_upto(weft_chan *c, void *buf, long batch) {
  if (batch == 1) {
    int err = weft_chan_recv(c, buf);
    return err == 0 ? 1 : err;
  }
  return weft_chan_recv_n(c, buf, (size_t)batch);
}

/* The server side of a ping-pong: `rounds` times, receives an 8-byte
 * number on `ping` and sends it back, plus one, on `pong`. Returns 0, or
 * the first error of a receive or send. */
static inline int bench_chan_echo(weft_chan *ping, weft_chan *pong, long rounds) {
  uint64_t v;
  for (long i = 0; i < rounds; i++) {
    int err = weft_chan_recv(ping, &v);
    if (err == 0) {
      v++;
      err = weft_chan_send(pong, &v);
    }
    if (err != 0) return err;
  }
  return 0;
}

#endif /* WEFT_BENCH_CHAN_H */
