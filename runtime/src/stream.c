/* Streams: a channel with a backpressure policy, an explicit end and
 * counters; and pipelines of stages, each stage a task (or a small group of
 * tasks) in the pipeline's group. The stages are in stream_stage.c, the
 * byte streams from and to files and TCP in stream_bytes.c.
 *
 * A stream is a weft_chan underneath. Ending a stream stores its error, then
 * closes the channel, so a reader that sees the channel closed and drained
 * also sees the error. The counters sit on two cache lines, one written by
 * writers and one by readers, so that a writer and a reader on different
 * executors do not slow each other down by counting.
 */
#include <stdlib.h>
#include <string.h>

#include "stream_internal.h"

/* ---- Clock for blocked time --------------------------------------------- */

/* A blocked write reads a clock twice. The system clock costs 20 to 40 ns a
 * read (more in some virtual machines), a large share of a hand-off of about
 * 100 ns, so where the CPU has a cheap constant-rate counter it is read
 * instead, and turned into nanoseconds only when the counters are read,
 * with a rate measured against the system clock since the first stream was
 * made. */
#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
static inline uint64_t ticks_now(void) { return __rdtsc(); }
#define WEFT__TICKS_ARE_NS 0
#elif defined(__aarch64__)
static inline uint64_t ticks_now(void) {
  uint64_t v;
  __asm__ __volatile__("isb\n\tmrs %0, cntvct_el0" : "=r"(v));
  return v;
}
#define WEFT__TICKS_ARE_NS 0
#else
static inline uint64_t ticks_now(void) { return uv_hrtime(); }
#define WEFT__TICKS_ARE_NS 1
#endif

static uint64_t calib_ticks;
static uint64_t calib_ns;
static uv_once_t calib_once = UV_ONCE_INIT;

static void calib_start(void) {
  calib_ns = uv_hrtime();
  calib_ticks = ticks_now();
}

/* Converts counter ticks to nanoseconds. The rate is measured over at least
 * a millisecond (waited for here on a very young process, once). */
static uint64_t ticks_to_ns(uint64_t ticks) {
  if (WEFT__TICKS_ARE_NS || ticks == 0) return ticks;
  uv_once(&calib_once, calib_start);
  uint64_t ns, now;
  do {
    ns = uv_hrtime();
    now = ticks_now();
  } while (ns - calib_ns < 1000000);
  double per_tick = (double)(ns - calib_ns) / (double)(now - calib_ticks);
  return (uint64_t)((double)ticks * per_tick);
}

/* ---- Counters ----------------------------------------------------------- */

/* Adds v to a counter. Only MPMC streams can have two tasks counting at once
 * on different threads; the other modes have one writer and one reader at a
 * time, so a plain (relaxed) load and store suffices and costs no lock. */
static inline void count_add(const weft_stream *s, uint64_t *c, uint64_t v) {
  if (s->mode == WEFT_STREAM_MPMC)
    __atomic_fetch_add(c, v, __ATOMIC_RELAXED);
  else
    __atomic_store_n(c, __atomic_load_n(c, __ATOMIC_RELAXED) + v, __ATOMIC_RELAXED);
}

static inline uint64_t count_load(const uint64_t *c) {
  return __atomic_load_n(c, __ATOMIC_RELAXED);
}

static void raise_high_water(weft_stream *s, uint64_t n) {
  uint64_t cur = __atomic_load_n(&s->high_water, __ATOMIC_RELAXED);
  while (n > cur)
    if (__atomic_compare_exchange_n(&s->high_water, &cur, n, 1, __ATOMIC_RELAXED,
                                    __ATOMIC_RELAXED))
      break;
}

/* Counts an accepted item. The occupancy of a LOCAL stream is a plain
 * field; in the other modes it is read from the ring's two indexes, which
 * the other side keeps writing, so it is only sampled. */
static inline void wrote(weft_stream *s) {
  count_add(s, &s->in, 1);
  if (s->mode == WEFT_STREAM_LOCAL) {
    size_t n = weft_chan_len(s->chan);
    if (n > s->high_water) s->high_water = n;
  } else if ((count_load(&s->in) & 31) == 0) {
    raise_high_water(s, weft_chan_len(s->chan));
  }
}

/* What writes and reads return once the stream has ended. */
static inline int end_code(const weft_stream *s) {
  int err = __atomic_load_n(&s->end_err, __ATOMIC_ACQUIRE);
  return err != 0 ? err : WEFT_ECLOSED;
}

/* ---- Streams ------------------------------------------------------------ */

weft_stream *weft_stream_new(size_t item_size, size_t capacity,
                             const weft_stream_opts *opts) {
  int mode = opts ? opts->mode : WEFT_STREAM_MPMC;
  int policy = opts ? opts->policy : WEFT_STREAM_BLOCK;
  if (item_size == 0 || item_size > 65536) return NULL;
  if (policy < WEFT_STREAM_BLOCK || policy > WEFT_STREAM_FAIL) return NULL;
  int chan_mode;
  switch (mode) {
  case WEFT_STREAM_MPMC: chan_mode = WEFT_CHAN_MPMC; break;
  case WEFT_STREAM_SPSC: chan_mode = WEFT_CHAN_SPSC; break;
  case WEFT_STREAM_LOCAL: chan_mode = WEFT_CHAN_LOCAL; break;
  default: return NULL;
  }
  /* Dropping the oldest item reads from the writing side: a second reader,
   * which an SPSC ring does not allow. */
  if (mode == WEFT_STREAM_SPSC && policy == WEFT_STREAM_DROP_OLDEST) {
    mode = WEFT_STREAM_MPMC;
    chan_mode = WEFT_CHAN_MPMC;
  }
  if (capacity == 0) capacity = 1;
  uv_once(&calib_once, calib_start);
  weft_stream *s;
  if (posix_memalign((void **)&s, WEFT__CACHELINE, sizeof *s) != 0) return NULL;
  memset(s, 0, sizeof *s);
  s->chan = weft_chan_new(item_size, capacity, chan_mode);
  if (s->chan == NULL) {
    free(s);
    return NULL;
  }
  s->mode = mode;
  s->policy = policy;
  s->item_size = item_size;
  s->cap = weft_chan_cap(s->chan);
  if (opts && opts->ops) s->ops = *opts->ops;
  return s;
}

/* Makes room in a full DROP_OLDEST stream and writes item. */
static int write_drop_oldest(weft_stream *s, const void *item) {
  unsigned char small[512];
  unsigned char *old = s->item_size <= sizeof small ? small : malloc(s->item_size);
  if (old == NULL) return UV_ENOMEM;
  int r;
  for (;;) {
    if (weft_chan_try_recv(s->chan, old) == 0) {
      weft__dispose(s, old);
      count_add(s, &s->dropped, 1);
    }
    /* Another writer may take the slot first (MPMC): then go round again. */
    r = weft_chan_try_send(s->chan, item);
    if (r != UV_EAGAIN) break;
  }
  if (old != small) free(old);
  if (r == 0) {
    wrote(s);
    return 0;
  }
  return r == WEFT_ECLOSED ? end_code(s) : r;
}

int weft_stream_write(weft_stream *s, const void *item) {
  int r = weft_chan_try_send(s->chan, item);
  if (WEFT__LIKELY(r == 0)) {
    wrote(s);
    return 0;
  }
  if (r == WEFT_ECLOSED) return end_code(s);
  /* Full: the stream holds capacity items right now. */
  raise_high_water(s, s->cap);
  switch (s->policy) {
  case WEFT_STREAM_DROP_NEWEST:
    weft__dispose(s, (void *)item);
    count_add(s, &s->dropped, 1);
    return WEFT_STREAM_DROPPED;
  case WEFT_STREAM_DROP_OLDEST:
    return write_drop_oldest(s, item);
  case WEFT_STREAM_FAIL:
    count_add(s, &s->rejected, 1);
    return UV_ENOBUFS;
  default:
    break;
  }
  if (!weft_in_task()) return WEFT_ENOTASK;
  uint64_t t0 = ticks_now();
  r = weft_chan_send(s->chan, item);
  uint64_t t1 = ticks_now();
  /* A counter read on another core may lag a little: never count back. */
  if (t1 > t0) count_add(s, &s->blocked_ticks, t1 - t0);
  if (r == 0) {
    wrote(s);
    return 0;
  }
  return r == WEFT_ECLOSED ? end_code(s) : r;
}

int weft_stream_read(weft_stream *s, void *item) {
  int r = weft_chan_recv(s->chan, item);
  if (WEFT__LIKELY(r == 0)) {
    count_add(s, &s->out, 1);
    return 0;
  }
  return r == WEFT_ECLOSED ? end_code(s) : r;
}

int weft_stream_try_read(weft_stream *s, void *item) {
  int r = weft_chan_try_recv(s->chan, item);
  if (r == 0) {
    count_add(s, &s->out, 1);
    return 0;
  }
  return r == WEFT_ECLOSED ? end_code(s) : r;
}

int weft_stream_read_timeout(weft_stream *s, void *item, int64_t timeout_ms) {
  if (timeout_ms < 0) return weft_stream_read(s, item);
  int r = weft_stream_try_read(s, item);
  if (r != UV_EAGAIN) return r;
  if (timeout_ms == 0) return UV_ETIMEDOUT;
  weft_case c = {s->chan, WEFT_SELECT_RECV, item, 0};
  r = weft_select(&c, 1, timeout_ms);
  if (r < 0) return r;
  if (c.result == WEFT_ECLOSED) return end_code(s);
  count_add(s, &s->out, 1);
  return 0;
}

int weft_stream_end(weft_stream *s, int err) {
  int expected = 0;
  if (!__atomic_compare_exchange_n(&s->end_state, &expected, 1, 0,
                                   __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
    return 1;
  /* The error is in place before the close that readers will see. */
  __atomic_store_n(&s->end_err, err, __ATOMIC_RELEASE);
  weft_chan_close(s->chan);
  return 0;
}

int weft_stream_ended(const weft_stream *s) {
  return __atomic_load_n(&s->end_state, __ATOMIC_ACQUIRE) != 0;
}

int weft_stream_end_error(const weft_stream *s) {
  return __atomic_load_n(&s->end_err, __ATOMIC_ACQUIRE);
}

size_t weft_stream_item_size(const weft_stream *s) { return s->item_size; }

size_t weft_stream_cap(const weft_stream *s) { return s->cap; }

size_t weft_stream_len(const weft_stream *s) { return weft_chan_len(s->chan); }

void weft_stream_stats_get(const weft_stream *s, weft_stream_stats *out) {
  out->items_in = count_load(&s->in);
  out->items_out = count_load(&s->out);
  out->dropped = count_load(&s->dropped);
  out->rejected = count_load(&s->rejected);
  out->high_water = count_load(&s->high_water);
  out->blocked_ns = ticks_to_ns(count_load(&s->blocked_ticks));
  out->capacity = s->cap;
  out->buffered = weft_chan_len(s->chan);
}

void weft_stream_free(weft_stream *s) {
  if (s == NULL) return;
  if (s->ops.dispose != NULL) {
    void *item = malloc(s->item_size);
    if (item != NULL) {
      while (weft_chan_try_recv(s->chan, item) == 0) weft__dispose(s, item);
      free(item);
    }
  }
  weft_chan_free(s->chan);
  free(s);
}

/* ---- Chunks ------------------------------------------------------------- */

int weft_chunk_alloc(weft_chunk *c, size_t len) {
  c->data = malloc(len > 0 ? len : 1);
  c->len = c->data ? len : 0;
  return c->data ? 0 : UV_ENOMEM;
}

void weft_chunk_free(weft_chunk *c) {
  free(c->data);
  c->data = NULL;
  c->len = 0;
}

static void chunk_dispose(void *item, void *ctx) {
  (void)ctx;
  /* Only the bytes are released: the item may be the caller's own copy. */
  free(((weft_chunk *)item)->data);
}

static int chunk_clone(const void *src, void *dst, void *ctx) {
  (void)ctx;
  const weft_chunk *from = src;
  weft_chunk *to = dst;
  if (weft_chunk_alloc(to, from->len) != 0) return UV_ENOMEM;
  memcpy(to->data, from->data, from->len);
  return 0;
}

static const weft_stream_item_ops chunk_ops = {chunk_dispose,
                                                     chunk_clone, NULL};

const weft_stream_item_ops *weft_chunk_ops(void) { return &chunk_ops; }

/* ---- Pipelines ---------------------------------------------------------- */

struct weft_pipeline {
  weft_group *group;
  weft_stream *streams;       /* made by stages, newest first */
  weft__stage *stages;
  int setup_err;              /* first error setting up a stage */
};

weft_pipeline *weft_pipeline_open(void) {
  if (!weft_in_task()) return NULL;
  weft_pipeline *p = calloc(1, sizeof *p);
  if (p == NULL) return NULL;
  p->group = weft_group_open(WEFT_FAIL_FAST);
  if (p->group == NULL) {
    free(p);
    return NULL;
  }
  return p;
}

/* Records a setup error: the pipeline is cancelled and join reports it. */
void weft__pipe_fail(weft_pipeline *p, int err) {
  if (p == NULL) return;
  if (p->setup_err == 0) p->setup_err = err;
  weft_group_cancel(p->group);
}

int weft_pipeline_join(weft_pipeline *p) {
  int r = weft_group_join(p->group);
  if (p->setup_err != 0) r = p->setup_err;
  while (p->streams != NULL) {
    weft_stream *s = p->streams;
    p->streams = s->pipe_next;
    weft_stream_free(s);
  }
  while (p->stages != NULL) {
    weft__stage *st = p->stages;
    p->stages = st->next;
    if (st->cleanup != NULL) st->cleanup(st);
    free(st->scratch);
    free(st);
  }
  free(p);
  return r;
}

void weft_pipeline_cancel(weft_pipeline *p) {
  if (p != NULL) weft_group_cancel(p->group);
}

weft_group *weft_pipeline_group(weft_pipeline *p) { return p ? p->group : NULL; }

/* Makes a stream that the pipeline owns. */
weft_stream *weft__pipe_stream(weft_pipeline *p, size_t item_size,
                               const weft_stage_opts *opts,
                               const weft_stream_item_ops *ops) {
  weft_stream_opts so = {0, 0, ops};
  size_t cap = 64;
  if (opts != NULL) {
    so.mode = opts->mode;
    so.policy = opts->policy;
    if (opts->capacity > 0) cap = opts->capacity;
  }
  weft_stream *s = weft_stream_new(item_size, cap, &so);
  if (s == NULL) {
    weft__pipe_fail(p, UV_EINVAL);
    return NULL;
  }
  s->pipe_next = p->streams;
  p->streams = s;
  return s;
}

/* Allocates a stage record of size bytes with a scratch item of
 * scratch_size bytes (0: none). */
void *weft__stage_new(weft_pipeline *p, size_t size, weft_stream *in, size_t scratch_size) {
  weft__stage *st = calloc(1, size);
  if (st == NULL) return NULL;
  if (scratch_size > 0 && (st->scratch = malloc(scratch_size)) == NULL) {
    free(st);
    return NULL;
  }
  st->pipe = p;
  st->in = in;
  st->next = p->stages;
  p->stages = st;
  return st;
}

/* The checks every stage starts with. Returns 0 or the setup error. */
int weft__stage_check(weft_pipeline *p, weft_stream *in) {
  if (p == NULL) return UV_EINVAL;
  if (weft__current_task == NULL) return WEFT_ENOTASK;
  if (in == NULL) {
    weft__pipe_fail(p, UV_EINVAL);
    return UV_EINVAL;
  }
  return 0;
}

int weft__stage_spawn(weft_pipeline *p, const char *name, weft_fn fn, void *st) {
  int err = weft_spawn_named(p->group, name, fn, st);
  if (err != 0) weft__pipe_fail(p, err);
  return err;
}

const char *weft__stage_name(const weft_stage_opts *opts, const char *def) {
  return opts && opts->name ? opts->name : def;
}

/* Ends a stage: its output ends with err (0: cleanly), and so does its
 * input, so that a writer upstream stops instead of waiting for a reader
 * that is gone. Returns err, the stage task's result. */
int weft__stage_finish(weft__stage *st, int err) {
  if (st->out != NULL) weft_stream_end(st->out, err);
  if (st->in != NULL) weft_stream_end(st->in, err);
  return err;
}

/* A read's result seen by a stage: a clean end is not an error. */
/* Writes item to a stage's output. Returns 0 when it went in or was dropped
 * by the output's policy, 1 when the reader downstream ended the stream
 * cleanly (the stage should stop quietly), or an error. On 1 or an error
 * the item is still the caller's. */
int weft__stage_write(weft_stream *out, const void *item) {
  int r = weft_stream_write(out, item);
  if (r == 0 || r == WEFT_STREAM_DROPPED) return 0;
  return r == WEFT_ECLOSED ? 1 : r;
}
