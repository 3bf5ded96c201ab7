/* Streams: a channel with a backpressure policy, an explicit end and
 * counters; and pipelines of stages, each stage a task (or a small group of
 * tasks) in the pipeline's group.
 *
 * A stream is a weft_chan underneath. Ending a stream stores its error, then
 * closes the channel, so a reader that sees the channel closed and drained
 * also sees the error. The counters sit on two cache lines, one written by
 * writers and one by readers, so that a writer and a reader on different
 * executors do not slow each other down by counting.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "weft/stream.h"

#define WEFT__CACHELINE 64

struct weft_stream {
  /* Read-mostly. */
  weft_chan *chan;
  int mode;                   /* WEFT_STREAM_* */
  int policy;
  size_t item_size;
  size_t cap;
  weft_stream_item_ops ops;
  int end_state;              /* atomic: 0 running, 1 ended */
  int end_err;                /* atomic: written before the channel closes */
  weft_stream *pipe_next;     /* the pipeline's list of streams it owns */
  /* Writers' counters. */
  _Alignas(WEFT__CACHELINE) uint64_t in;
  uint64_t dropped;
  uint64_t rejected;
  uint64_t blocked_ticks;     /* weft__ticks() units */
  uint64_t high_water;
  /* Readers' counters. */
  _Alignas(WEFT__CACHELINE) uint64_t out;
  char pad_[WEFT__CACHELINE - sizeof(uint64_t)];
};

/* ---- Clock for blocked time --------------------------------------------- */

/* A blocked write reads a clock twice. The system clock costs 20 to 40 ns a
 * read (more in some virtual machines), a large share of a hand-off of about
 * 100 ns, so where the CPU has a cheap constant-rate counter it is read
 * instead, and turned into nanoseconds only when the counters are read,
 * with a rate measured against the system clock since the first stream was
 * made. */
#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
static inline uint64_t weft__ticks(void) { return __rdtsc(); }
#define WEFT__TICKS_ARE_NS 0
#elif defined(__aarch64__)
static inline uint64_t weft__ticks(void) {
  uint64_t v;
  __asm__ __volatile__("isb\n\tmrs %0, cntvct_el0" : "=r"(v));
  return v;
}
#define WEFT__TICKS_ARE_NS 0
#else
static inline uint64_t weft__ticks(void) { return uv_hrtime(); }
#define WEFT__TICKS_ARE_NS 1
#endif

static uint64_t weft__calib_ticks;
static uint64_t weft__calib_ns;
static uv_once_t weft__calib_once = UV_ONCE_INIT;

static void weft__calib_start(void) {
  weft__calib_ns = uv_hrtime();
  weft__calib_ticks = weft__ticks();
}

/* Converts counter ticks to nanoseconds. The rate is measured over at least
 * a millisecond (waited for here on a very young process, once). */
static uint64_t weft__ticks_to_ns(uint64_t ticks) {
  if (WEFT__TICKS_ARE_NS || ticks == 0) return ticks;
  uv_once(&weft__calib_once, weft__calib_start);
  uint64_t ns, now;
  do {
    ns = uv_hrtime();
    now = weft__ticks();
  } while (ns - weft__calib_ns < 1000000);
  double per_tick = (double)(ns - weft__calib_ns) / (double)(now - weft__calib_ticks);
  return (uint64_t)((double)ticks * per_tick);
}

/* ---- Counters ----------------------------------------------------------- */

/* Adds v to a counter. Only MPMC streams can have two tasks counting at once
 * on different threads; the other modes have one writer and one reader at a
 * time, so a plain (relaxed) load and store suffices and costs no lock. */
static inline void weft__count(const weft_stream *s, uint64_t *c, uint64_t v) {
  if (s->mode == WEFT_STREAM_MPMC)
    __atomic_fetch_add(c, v, __ATOMIC_RELAXED);
  else
    __atomic_store_n(c, __atomic_load_n(c, __ATOMIC_RELAXED) + v, __ATOMIC_RELAXED);
}

static inline uint64_t weft__load(const uint64_t *c) {
  return __atomic_load_n(c, __ATOMIC_RELAXED);
}

static void weft__high_water(weft_stream *s, uint64_t n) {
  uint64_t cur = __atomic_load_n(&s->high_water, __ATOMIC_RELAXED);
  while (n > cur)
    if (__atomic_compare_exchange_n(&s->high_water, &cur, n, 1, __ATOMIC_RELAXED,
                                    __ATOMIC_RELAXED))
      break;
}

/* Counts an accepted item. The occupancy of a LOCAL stream is a plain
 * field; in the other modes it is read from the ring's two indexes, which
 * the other side keeps writing, so it is only sampled. */
static inline void weft__wrote(weft_stream *s) {
  weft__count(s, &s->in, 1);
  if (s->mode == WEFT_STREAM_LOCAL) {
    size_t n = weft_chan_len(s->chan);
    if (n > s->high_water) s->high_water = n;
  } else if ((weft__load(&s->in) & 31) == 0) {
    weft__high_water(s, weft_chan_len(s->chan));
  }
}

/* What writes and reads return once the stream has ended. */
static inline int weft__end_code(const weft_stream *s) {
  int err = __atomic_load_n(&s->end_err, __ATOMIC_ACQUIRE);
  return err != 0 ? err : WEFT_ECLOSED;
}

static inline void weft__dispose(const weft_stream *s, void *item) {
  if (s->ops.dispose != NULL) s->ops.dispose(item, s->ops.ctx);
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
  uv_once(&weft__calib_once, weft__calib_start);
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
static int weft__write_drop_oldest(weft_stream *s, const void *item) {
  unsigned char small[512];
  unsigned char *old = s->item_size <= sizeof small ? small : malloc(s->item_size);
  if (old == NULL) return UV_ENOMEM;
  int r;
  for (;;) {
    if (weft_chan_try_recv(s->chan, old) == 0) {
      weft__dispose(s, old);
      weft__count(s, &s->dropped, 1);
    }
    /* Another writer may take the slot first (MPMC): then go round again. */
    r = weft_chan_try_send(s->chan, item);
    if (r != UV_EAGAIN) break;
  }
  if (old != small) free(old);
  if (r == 0) {
    weft__wrote(s);
    return 0;
  }
  return r == WEFT_ECLOSED ? weft__end_code(s) : r;
}

int weft_stream_write(weft_stream *s, const void *item) {
  int r = weft_chan_try_send(s->chan, item);
  if (WEFT__LIKELY(r == 0)) {
    weft__wrote(s);
    return 0;
  }
  if (r == WEFT_ECLOSED) return weft__end_code(s);
  /* Full: the stream holds capacity items right now. */
  weft__high_water(s, s->cap);
  switch (s->policy) {
  case WEFT_STREAM_DROP_NEWEST:
    weft__dispose(s, (void *)item);
    weft__count(s, &s->dropped, 1);
    return WEFT_STREAM_DROPPED;
  case WEFT_STREAM_DROP_OLDEST:
    return weft__write_drop_oldest(s, item);
  case WEFT_STREAM_FAIL:
    weft__count(s, &s->rejected, 1);
    return UV_ENOBUFS;
  default:
    break;
  }
  if (!weft_in_task()) return WEFT_ENOTASK;
  uint64_t t0 = weft__ticks();
  r = weft_chan_send(s->chan, item);
  uint64_t t1 = weft__ticks();
  /* A counter read on another core may lag a little: never count back. */
  if (t1 > t0) weft__count(s, &s->blocked_ticks, t1 - t0);
  if (r == 0) {
    weft__wrote(s);
    return 0;
  }
  return r == WEFT_ECLOSED ? weft__end_code(s) : r;
}

int weft_stream_read(weft_stream *s, void *item) {
  int r = weft_chan_recv(s->chan, item);
  if (WEFT__LIKELY(r == 0)) {
    weft__count(s, &s->out, 1);
    return 0;
  }
  return r == WEFT_ECLOSED ? weft__end_code(s) : r;
}

int weft_stream_try_read(weft_stream *s, void *item) {
  int r = weft_chan_try_recv(s->chan, item);
  if (r == 0) {
    weft__count(s, &s->out, 1);
    return 0;
  }
  return r == WEFT_ECLOSED ? weft__end_code(s) : r;
}

int weft_stream_read_timeout(weft_stream *s, void *item, int64_t timeout_ms) {
  if (timeout_ms < 0) return weft_stream_read(s, item);
  int r = weft_stream_try_read(s, item);
  if (r != UV_EAGAIN) return r;
  if (timeout_ms == 0) return UV_ETIMEDOUT;
  weft_case c = {s->chan, WEFT_SELECT_RECV, item, 0};
  r = weft_select(&c, 1, timeout_ms);
  if (r < 0) return r;
  if (c.result == WEFT_ECLOSED) return weft__end_code(s);
  weft__count(s, &s->out, 1);
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
  out->items_in = weft__load(&s->in);
  out->items_out = weft__load(&s->out);
  out->dropped = weft__load(&s->dropped);
  out->rejected = weft__load(&s->rejected);
  out->high_water = weft__load(&s->high_water);
  out->blocked_ns = weft__ticks_to_ns(weft__load(&s->blocked_ticks));
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

static void weft__chunk_dispose(void *item, void *ctx) {
  (void)ctx;
  /* Only the bytes are released: the item may be the caller's own copy. */
  free(((weft_chunk *)item)->data);
}

static int weft__chunk_clone(const void *src, void *dst, void *ctx) {
  (void)ctx;
  const weft_chunk *from = src;
  weft_chunk *to = dst;
  if (weft_chunk_alloc(to, from->len) != 0) return UV_ENOMEM;
  memcpy(to->data, from->data, from->len);
  return 0;
}

static const weft_stream_item_ops weft__chunk_ops = {weft__chunk_dispose,
                                                     weft__chunk_clone, NULL};

const weft_stream_item_ops *weft_chunk_ops(void) { return &weft__chunk_ops; }

/* ---- Pipelines ---------------------------------------------------------- */

/* Every stage's record starts with this header; the pipeline frees the
 * records once its group is joined, after the streams (whose item ops may
 * point into a record). */
typedef struct weft__stage {
  struct weft__stage *next;
  weft_pipeline *pipe;
  weft_stream *in;
  weft_stream *out;
  void *scratch;              /* one item of in (or out), for the stage task */
  void (*cleanup)(struct weft__stage *st); /* frees what the stage added */
} weft__stage;

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
static void weft__pipe_fail(weft_pipeline *p, int err) {
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
static weft_stream *weft__pipe_stream(weft_pipeline *p, size_t item_size,
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
static void *weft__stage_new(weft_pipeline *p, size_t size, weft_stream *in,
                             size_t scratch_size) {
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
static int weft__stage_check(weft_pipeline *p, weft_stream *in) {
  if (p == NULL) return UV_EINVAL;
  if (weft__current_task == NULL) return WEFT_ENOTASK;
  if (in == NULL) {
    weft__pipe_fail(p, UV_EINVAL);
    return UV_EINVAL;
  }
  return 0;
}

static int weft__stage_spawn(weft_pipeline *p, const char *name, weft_fn fn,
                             void *st) {
  int err = weft_spawn_named(p->group, name, fn, st);
  if (err != 0) weft__pipe_fail(p, err);
  return err;
}

static const char *weft__stage_name(const weft_stage_opts *opts, const char *def) {
  return opts && opts->name ? opts->name : def;
}

/* Ends a stage: its output ends with err (0: cleanly), and so does its
 * input, so that a writer upstream stops instead of waiting for a reader
 * that is gone. Returns err, the stage task's result. */
static int weft__stage_finish(weft__stage *st, int err) {
  if (st->out != NULL) weft_stream_end(st->out, err);
  if (st->in != NULL) weft_stream_end(st->in, err);
  return err;
}

/* A read's result seen by a stage: a clean end is not an error. */
static inline int weft__read_end(int r) { return r == WEFT_ECLOSED ? 0 : r; }

/* Writes item to a stage's output. Returns 0 when it went in or was dropped
 * by the output's policy, 1 when the reader downstream ended the stream
 * cleanly (the stage should stop quietly), or an error. On 1 or an error
 * the item is still the caller's. */
static int weft__stage_write(weft_stream *out, const void *item) {
  int r = weft_stream_write(out, item);
  if (r == 0 || r == WEFT_STREAM_DROPPED) return 0;
  return r == WEFT_ECLOSED ? 1 : r;
}

/* ---- filter ------------------------------------------------------------- */

typedef struct {
  weft__stage st;
  weft_stream_filter_fn fn;
  void *ctx;
} weft__filter_stage;

static int weft__filter_task(void *arg) {
  weft__filter_stage *f = arg;
  weft_stream *in = f->st.in;
  void *item = f->st.scratch;
  int r;
  while ((r = weft_stream_read(in, item)) == 0) {
    int keep = f->fn(f->ctx, item);
    if (keep <= 0) {
      weft__dispose(in, item);
      if (keep < 0) {
        r = keep;
        break;
      }
      continue;
    }
    r = weft__stage_write(f->st.out, item);
    if (r != 0) {
      weft__dispose(in, item);
      if (r == 1) r = 0;
      break;
    }
  }
  return weft__stage_finish(&f->st, weft__read_end(r));
}

weft_stream *weft_stream_filter(weft_pipeline *p, weft_stream *in,
                                weft_stream_filter_fn fn, void *ctx,
                                const weft_stage_opts *opts) {
  if (weft__stage_check(p, in) != 0) return NULL;
  if (fn == NULL) {
    weft__pipe_fail(p, UV_EINVAL);
    return NULL;
  }
  weft__filter_stage *f = weft__stage_new(p, sizeof *f, in, in->item_size);
  if (f == NULL) {
    weft__pipe_fail(p, UV_ENOMEM);
    return NULL;
  }
  f->fn = fn;
  f->ctx = ctx;
  f->st.out = weft__pipe_stream(p, in->item_size, opts, &in->ops);
  if (f->st.out == NULL) return NULL;
  if (weft__stage_spawn(p, weft__stage_name(opts, "filter"), weft__filter_task, f))
    return NULL;
  return f->st.out;
}

/* ---- map ---------------------------------------------------------------- */

/* A map with one worker on the caller's executor is a single task; with
 * more, a coordinator task runs a group of its own: a dispatcher that
 * numbers the input items and hands them to the workers over a channel, the
 * workers, and for ordered output an emitter that puts the results back in
 * order. The results wait for their turn in a window of slots; a token
 * channel keeps the dispatcher at most `window` items ahead of the emitter,
 * so item n always finds slot n % window free. */

enum { WEFT__SLOT_EMPTY = 0, WEFT__SLOT_EMIT, WEFT__SLOT_SKIP };

typedef struct {
  weft__stage st;
  weft_stream_map_fn fn;
  void *ctx;
  size_t out_size;
  int workers;
  int ordered;
  int executor;
  const char *name;
  /* Several workers. */
  weft_chan *work;            /* [uint64 seq][input item] */
  size_t work_size;
  weft_chan *tokens;          /* ordered: free slots, one byte each */
  weft_chan *done;            /* ordered: uint64 seq of each finished item */
  size_t window;
  unsigned char *slots;       /* window output items */
  int *slot_state;            /* atomic: WEFT__SLOT_* */
  int workers_left;           /* atomic */
} weft__map_stage;

static int weft__map_single_task(void *arg) {
  weft__map_stage *m = arg;
  weft_stream *in = m->st.in;
  unsigned char *item = m->st.scratch;
  unsigned char *res = item + in->item_size;
  int r;
  while ((r = weft_stream_read(in, item)) == 0) {
    int k = m->fn(m->ctx, item, res);
    if (k < 0) {
      r = k;
      break;
    }
    if (k > 0) continue;
    r = weft__stage_write(m->st.out, res);
    if (r != 0) {
      weft__dispose(m->st.out, res);
      if (r == 1) r = 0;
      break;
    }
  }
  return weft__stage_finish(&m->st, weft__read_end(r));
}

/* What a task of a map stage returns when the reader downstream ended the
 * output: a negative code, so that the stage's group cancels the other tasks
 * (on whichever executors they run), which the coordinator then turns into a
 * quiet stop. It never leaves this file. */
#define WEFT__MAP_STOPPED (-30990)

static int weft__map_dispatch(void *arg) {
  weft__map_stage *m = arg;
  unsigned char *work = m->st.scratch;
  void *item = work + sizeof(uint64_t);
  uint64_t seq = 0;
  int r;
  while ((r = weft_stream_read(m->st.in, item)) == 0) {
    if (m->ordered) {
      unsigned char token;
      r = weft_chan_recv(m->tokens, &token);
      if (r != 0) {
        weft__dispose(m->st.in, item);
        break;
      }
    }
    memcpy(work, &seq, sizeof seq);
    seq++;
    r = weft_chan_send(m->work, work);
    if (r != 0) {
      weft__dispose(m->st.in, item);
      break;
    }
  }
  /* No more work: the workers drain the channel and end. */
  weft_chan_close(m->work);
  return weft__read_end(r);
}

static int weft__map_worker(void *arg) {
  weft__map_stage *m = arg;
  unsigned char *work = malloc(m->work_size + m->out_size);
  int r = UV_ENOMEM;
  if (work != NULL) {
    void *item = work + sizeof(uint64_t);
    unsigned char *res = work + m->work_size;
    while ((r = weft_chan_recv(m->work, work)) == 0) {
      uint64_t seq;
      memcpy(&seq, work, sizeof seq);
      int k = m->fn(m->ctx, item, res);
      if (k < 0) {
        r = k;
        break;
      }
      if (m->ordered) {
        size_t slot = (size_t)(seq % m->window);
        if (k == 0) memcpy(m->slots + slot * m->out_size, res, m->out_size);
        __atomic_store_n(&m->slot_state[slot],
                         k == 0 ? WEFT__SLOT_EMIT : WEFT__SLOT_SKIP,
                         __ATOMIC_RELEASE);
        r = weft_chan_send(m->done, &seq);
        if (r != 0) break; /* Cancelled: the coordinator disposes of the slot. */
      } else if (k == 0) {
        r = weft__stage_write(m->st.out, res);
        if (r != 0) {
          weft__dispose(m->st.out, res);
          if (r == 1) r = WEFT__MAP_STOPPED;
          break;
        }
      }
    }
    free(work);
  }
  if (__atomic_sub_fetch(&m->workers_left, 1, __ATOMIC_ACQ_REL) == 0 &&
      m->done != NULL)
    weft_chan_close(m->done);
  return weft__read_end(r);
}

static int weft__map_emit(void *arg) {
  weft__map_stage *m = arg;
  uint64_t next = 0;
  uint64_t seq;
  int r;
  while ((r = weft_chan_recv(m->done, &seq)) == 0) {
    for (;;) {
      size_t slot = (size_t)(next % m->window);
      int state = __atomic_load_n(&m->slot_state[slot], __ATOMIC_ACQUIRE);
      if (state == WEFT__SLOT_EMPTY) break;
      if (state == WEFT__SLOT_EMIT) {
        r = weft__stage_write(m->st.out, m->slots + slot * m->out_size);
        /* The coordinator disposes of what is left in the slots. */
        if (r != 0) return r == 1 ? WEFT__MAP_STOPPED : r;
      }
      __atomic_store_n(&m->slot_state[slot], WEFT__SLOT_EMPTY, __ATOMIC_RELAXED);
      next++;
      unsigned char token = 0;
      weft_chan_try_send(m->tokens, &token);
    }
  }
  return weft__read_end(r);
}

static int weft__map_coordinator(void *arg) {
  weft__map_stage *m = arg;
  weft_group *g = weft_group_open(WEFT_FAIL_FAST);
  if (g == NULL) return weft__stage_finish(&m->st, UV_ENOMEM);
  int err = weft_spawn_named(g, m->name, weft__map_dispatch, m);
  for (int i = 0; i < m->workers && err == 0; i++) {
    weft_task_opts opts = {m->name, 0, m->executor};
    err = weft_spawn_opts(g, &opts, weft__map_worker, m);
    if (err != 0) {
      /* The workers that did start must still close `done` at the end. */
      __atomic_sub_fetch(&m->workers_left, m->workers - i, __ATOMIC_ACQ_REL);
      weft_group_cancel(g);
    }
  }
  if (err == 0 && m->ordered) err = weft_spawn_named(g, m->name, weft__map_emit, m);
  if (err != 0) weft_group_cancel(g);
  int r = weft_group_join(g);
  if (err != 0) r = err;
  /* Items caught in the stage when it stopped early: inputs still in the
   * work channel, outputs waiting in the slots. */
  unsigned char *work = m->st.scratch;
  while (weft_chan_try_recv(m->work, work) == 0)
    weft__dispose(m->st.in, work + sizeof(uint64_t));
  if (m->ordered)
    for (size_t i = 0; i < m->window; i++)
      if (__atomic_load_n(&m->slot_state[i], __ATOMIC_ACQUIRE) == WEFT__SLOT_EMIT)
        weft__dispose(m->st.out, m->slots + i * m->out_size);
  if (r == WEFT__MAP_STOPPED) r = 0;
  return weft__stage_finish(&m->st, r);
}

static void weft__map_cleanup(weft__stage *st) {
  weft__map_stage *m = (weft__map_stage *)st;
  weft_chan_free(m->work);
  weft_chan_free(m->tokens);
  weft_chan_free(m->done);
  free(m->slots);
  free(m->slot_state);
}

weft_stream *weft_stream_map(weft_pipeline *p, weft_stream *in,
                             size_t out_item_size, weft_stream_map_fn fn,
                             void *ctx, const weft_stage_opts *opts) {
  if (weft__stage_check(p, in) != 0) return NULL;
  int workers = opts && opts->workers > 0 ? opts->workers : 1;
  int executor = opts ? opts->executor : 0;
  int ordered = !(opts && opts->order == WEFT_MAP_AS_COMPLETED);
  if (fn == NULL || out_item_size == 0 || out_item_size > 65536 || workers > 4096) {
    weft__pipe_fail(p, UV_EINVAL);
    return NULL;
  }
  int single = workers == 1 && executor == 0;
  size_t work_size = (sizeof(uint64_t) + in->item_size + 7) & ~(size_t)7;
  weft__map_stage *m = weft__stage_new(
      p, sizeof *m, in, single ? in->item_size + out_item_size : work_size);
  if (m == NULL) {
    weft__pipe_fail(p, UV_ENOMEM);
    return NULL;
  }
  m->fn = fn;
  m->ctx = ctx;
  m->out_size = out_item_size;
  m->workers = workers;
  m->ordered = ordered;
  m->executor = executor;
  m->work_size = work_size;
  m->name = weft__stage_name(opts, "map");
  weft_stage_opts out_opts = {0};
  if (opts != NULL) out_opts = *opts;
  /* Several workers on several executors write the output themselves when
   * order does not matter: that takes a stream for several writers. */
  if (!ordered && workers > 1 && out_opts.mode == WEFT_STREAM_SPSC)
    out_opts.mode = WEFT_STREAM_MPMC;
  if (!ordered && executor != 0 && out_opts.mode == WEFT_STREAM_LOCAL) {
    weft__pipe_fail(p, UV_EINVAL);
    return NULL;
  }
  m->st.out = weft__pipe_stream(p, out_item_size, &out_opts, opts ? opts->ops : NULL);
  if (m->st.out == NULL) return NULL;
  if (single) {
    if (weft__stage_spawn(p, m->name, weft__map_single_task, m)) return NULL;
    return m->st.out;
  }
  /* The workers may run on other executors: their channels must allow it. */
  int cross = executor != 0;
  int mode = cross ? WEFT_CHAN_MPMC : WEFT_CHAN_LOCAL;
  m->st.cleanup = weft__map_cleanup;
  m->workers_left = workers;
  m->work = weft_chan_new(work_size, (size_t)workers, mode);
  int ok = m->work != NULL;
  if (ok && ordered) {
    m->window = 2 * (size_t)workers;
    m->tokens = weft_chan_new(1, m->window, WEFT_CHAN_LOCAL);
    m->done = weft_chan_new(sizeof(uint64_t), m->window, mode);
    m->slots = malloc(m->window * out_item_size);
    m->slot_state = calloc(m->window, sizeof *m->slot_state);
    ok = m->tokens && m->done && m->slots && m->slot_state;
    unsigned char token = 0;
    for (size_t i = 0; ok && i < m->window; i++)
      ok = weft_chan_try_send(m->tokens, &token) == 0;
  }
  if (!ok) {
    weft__pipe_fail(p, UV_ENOMEM);
    return NULL;
  }
  if (weft__stage_spawn(p, m->name, weft__map_coordinator, m)) return NULL;
  return m->st.out;
}

/* ---- batch -------------------------------------------------------------- */

typedef struct {
  weft__stage st;
  size_t max_items;
  int64_t max_ms;
  weft_stream_item_ops inner; /* the input's item ops, for whole batches */
  weft_stream_item_ops ops;   /* the output's */
} weft__batch_stage;

static void weft__batch_dispose(void *item, void *ctx) {
  const weft_stream_item_ops *inner = ctx;
  weft_batch *b = item;
  for (size_t i = 0; i < b->count; i++)
    inner->dispose(weft_batch_item(b, i), inner->ctx);
}

static int weft__batch_clone(const void *src, void *dst, void *ctx) {
  const weft_stream_item_ops *inner = ctx;
  weft_batch *from = (weft_batch *)src;
  weft_batch *to = dst;
  to->count = 0;
  to->item_size = from->item_size;
  for (size_t i = 0; i < from->count; i++) {
    int err = inner->clone(weft_batch_item(from, i), weft_batch_item(to, i),
                           inner->ctx);
    if (err != 0) {
      if (inner->dispose) weft__batch_dispose(to, ctx);
      return err;
    }
    to->count++;
  }
  return 0;
}

static int weft__batch_task(void *arg) {
  weft__batch_stage *bs = arg;
  weft_stream *in = bs->st.in;
  weft_batch *b = bs->st.scratch;
  b->count = 0;
  b->item_size = in->item_size;
  int64_t deadline = 0;
  int r;
  for (;;) {
    void *slot = weft_batch_item(b, b->count);
    if (b->count == 0) {
      r = weft_stream_read(in, slot);
      if (r == 0 && bs->max_ms > 0) deadline = weft_now() + bs->max_ms;
    } else if (bs->max_ms > 0) {
      int64_t left = deadline - weft_now();
      r = left > 0 ? weft_stream_read_timeout(in, slot, left) : UV_ETIMEDOUT;
    } else {
      r = weft_stream_read(in, slot);
    }
    if (r == 0) b->count++;
    int timed_out = r == UV_ETIMEDOUT && !weft_cancelled();
    /* At the end of the input, clean or not, the partial batch goes out
     * first, as the items before an end always do; not when cancelled. */
    int ended = r == WEFT_ECLOSED || (r < 0 && !timed_out && !weft_cancelled());
    if (b->count > 0 && (b->count == bs->max_items || timed_out || ended)) {
      int w = weft__stage_write(bs->st.out, b);
      if (w != 0) {
        if (bs->inner.dispose) weft__batch_dispose(b, &bs->inner);
        b->count = 0;
        r = w == 1 ? 0 : w;
        break;
      }
      b->count = 0;
    }
    if (r != 0 && !timed_out) break;
  }
  if (r != 0 && b->count > 0 && bs->inner.dispose) weft__batch_dispose(b, &bs->inner);
  return weft__stage_finish(&bs->st, weft__read_end(r));
}

weft_stream *weft_stream_batch(weft_pipeline *p, weft_stream *in,
                               size_t max_items, int64_t max_ms,
                               const weft_stage_opts *opts) {
  if (weft__stage_check(p, in) != 0) return NULL;
  if (max_items == 0 || max_items > 65536 ||
      weft_batch_size(max_items, in->item_size) > 65536) {
    weft__pipe_fail(p, UV_EINVAL);
    return NULL;
  }
  size_t size = weft_batch_size(max_items, in->item_size);
  weft__batch_stage *bs = weft__stage_new(p, sizeof *bs, in, size);
  if (bs == NULL) {
    weft__pipe_fail(p, UV_ENOMEM);
    return NULL;
  }
  bs->max_items = max_items;
  bs->max_ms = max_ms;
  bs->inner = in->ops;
  const weft_stream_item_ops *ops = NULL;
  if (in->ops.dispose != NULL || in->ops.clone != NULL) {
    bs->ops.dispose = in->ops.dispose ? weft__batch_dispose : NULL;
    bs->ops.clone = in->ops.clone ? weft__batch_clone : NULL;
    bs->ops.ctx = &bs->inner;
    ops = &bs->ops;
  }
  bs->st.out = weft__pipe_stream(p, size, opts, ops);
  if (bs->st.out == NULL) return NULL;
  if (weft__stage_spawn(p, weft__stage_name(opts, "batch"), weft__batch_task, bs))
    return NULL;
  return bs->st.out;
}

/* ---- tee ---------------------------------------------------------------- */

typedef struct {
  weft__stage st;
  size_t n;
  weft_stream **outs;
  unsigned char *open;        /* n flags: the output still has a reader */
} weft__tee_stage;

static int weft__tee_task(void *arg) {
  weft__tee_stage *t = arg;
  weft_stream *in = t->st.in;
  unsigned char *item = t->st.scratch;
  unsigned char *copy = item + in->item_size;
  size_t open = t->n;
  int r = 0;
  while (open > 0 && (r = weft_stream_read(in, item)) == 0) {
    size_t last = 0;
    for (size_t i = 0; i < t->n; i++)
      if (t->open[i]) last = i;
    int handed = 0; /* item itself went to the last output (or was disposed) */
    for (size_t i = 0; i < t->n && r == 0; i++) {
      if (!t->open[i]) continue;
      /* Every output but the last gets a copy; the last gets the item. */
      unsigned char *src = item;
      if (i != last) {
        if (in->ops.clone != NULL)
          r = in->ops.clone(item, copy, in->ops.ctx);
        else
          memcpy(copy, item, in->item_size);
        if (r != 0) break;
        src = copy;
      } else {
        handed = 1;
      }
      int w = weft__stage_write(t->outs[i], src);
      if (w == 1) {
        /* That output's reader went away: the others go on. */
        t->open[i] = 0;
        open--;
      } else if (w != 0) {
        r = w;
      }
      if (w != 0) weft__dispose(in, src);
    }
    if (r != 0) {
      if (!handed) weft__dispose(in, item);
      break;
    }
  }
  if (open == 0) r = 0;
  r = weft__read_end(r);
  for (size_t i = 0; i < t->n; i++) weft_stream_end(t->outs[i], r);
  weft_stream_end(in, r);
  return r;
}

int weft_stream_tee(weft_pipeline *p, weft_stream *in, size_t n,
                    weft_stream **outs, const weft_stage_opts *opts) {
  int err = weft__stage_check(p, in);
  if (err != 0) return err;
  if (outs == NULL || n == 0 || n > 1024) {
    weft__pipe_fail(p, UV_EINVAL);
    return UV_EINVAL;
  }
  for (size_t i = 0; i < n; i++) outs[i] = NULL;
  weft__tee_stage *t = weft__stage_new(p, sizeof *t + n * sizeof(weft_stream *) + n,
                                       in, 2 * in->item_size);
  if (t == NULL) {
    weft__pipe_fail(p, UV_ENOMEM);
    return UV_ENOMEM;
  }
  t->n = n;
  t->outs = (weft_stream **)(t + 1);
  t->open = (unsigned char *)(t->outs + n);
  for (size_t i = 0; i < n; i++) {
    t->outs[i] = weft__pipe_stream(p, in->item_size, opts, &in->ops);
    if (t->outs[i] == NULL) {
      for (size_t j = 0; j < n; j++) outs[j] = NULL;
      return UV_EINVAL;
    }
    t->open[i] = 1;
  }
  err = weft__stage_spawn(p, weft__stage_name(opts, "tee"), weft__tee_task, t);
  if (err != 0) return err;
  for (size_t i = 0; i < n; i++) outs[i] = t->outs[i];
  return 0;
}

/* ---- for_each ----------------------------------------------------------- */

typedef struct {
  weft__stage st;
  weft_stream_each_fn fn;
  void *ctx;
} weft__each_stage;

static int weft__each_task(void *arg) {
  weft__each_stage *e = arg;
  void *item = e->st.scratch;
  int r;
  while ((r = weft_stream_read(e->st.in, item)) == 0) {
    r = e->fn(e->ctx, item);
    if (r < 0) break;
  }
  return weft__stage_finish(&e->st, weft__read_end(r));
}

int weft_stream_for_each(weft_pipeline *p, weft_stream *in,
                         weft_stream_each_fn fn, void *ctx) {
  int err = weft__stage_check(p, in);
  if (err != 0) return err;
  if (fn == NULL) {
    weft__pipe_fail(p, UV_EINVAL);
    return UV_EINVAL;
  }
  weft__each_stage *e = weft__stage_new(p, sizeof *e, in, in->item_size);
  if (e == NULL) {
    weft__pipe_fail(p, UV_ENOMEM);
    return UV_ENOMEM;
  }
  e->fn = fn;
  e->ctx = ctx;
  return weft__stage_spawn(p, "for_each", weft__each_task, e);
}

/* ---- Byte streams: files and TCP ---------------------------------------- */

typedef struct {
  weft__stage st;
  size_t chunk_size;
  weft_tcp *conn;
  char path[];
} weft__bytes_stage;

/* Sends chunks to the stage's output; read_fn fills one. Returns 0 at end
 * of input (or when the reader went away), or an error. */
static int weft__bytes_source(weft__bytes_stage *b, int fd) {
  int64_t offset = 0;
  for (;;) {
    weft_chunk c;
    if (weft_chunk_alloc(&c, b->chunk_size) != 0) return UV_ENOMEM;
    ssize_t n = fd >= 0 ? weft_file_read(fd, c.data, b->chunk_size, offset)
                        : weft_tcp_read(b->conn, c.data, b->chunk_size);
    if (n <= 0) {
      weft_chunk_free(&c);
      return (int)n;
    }
    c.len = (size_t)n;
    offset += n;
    int w = weft__stage_write(b->st.out, &c);
    if (w != 0) {
      weft_chunk_free(&c);
      return w == 1 ? 0 : w;
    }
  }
}

static int weft__from_file_task(void *arg) {
  weft__bytes_stage *b = arg;
  int fd = weft_file_open(b->path, O_RDONLY, 0);
  if (fd < 0) return weft__stage_finish(&b->st, fd);
  int r = weft__bytes_source(b, fd);
  weft_file_close(fd);
  return weft__stage_finish(&b->st, r);
}

static int weft__from_tcp_task(void *arg) {
  weft__bytes_stage *b = arg;
  return weft__stage_finish(&b->st, weft__bytes_source(b, -1));
}

/* Takes chunks from the stage's input and writes them to fd or the
 * connection. Returns 0 at a clean end of the input, or an error. */
static int weft__bytes_sink(weft__bytes_stage *b, int fd) {
  weft_chunk c;
  int r;
  while ((r = weft_stream_read(b->st.in, &c)) == 0) {
    if (fd >= 0) {
      size_t done = 0;
      while (done < c.len && r == 0) {
        ssize_t n = weft_file_write(fd, c.data + done, c.len - done, -1);
        if (n < 0)
          r = (int)n;
        else
          done += (size_t)n;
      }
    } else {
      r = weft_tcp_write(b->conn, c.data, c.len);
    }
    weft_chunk_free(&c);
    if (r != 0) break;
  }
  return weft__read_end(r);
}

static int weft__to_file_task(void *arg) {
  weft__bytes_stage *b = arg;
  int fd = weft_file_open(b->path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) return weft__stage_finish(&b->st, fd);
  int r = weft__bytes_sink(b, fd);
  int c = weft_file_close(fd);
  if (r == 0) r = c;
  return weft__stage_finish(&b->st, r);
}

static int weft__to_tcp_task(void *arg) {
  weft__bytes_stage *b = arg;
  int r = weft__bytes_sink(b, -1);
  if (r == 0) r = weft_tcp_shutdown(b->conn);
  return weft__stage_finish(&b->st, r);
}

static weft__bytes_stage *weft__bytes_stage_new(weft_pipeline *p,
                                                weft_stream *in,
                                                const char *path) {
  size_t len = path ? strlen(path) + 1 : 1;
  weft__bytes_stage *b = weft__stage_new(p, sizeof *b + len, in, 0);
  if (b == NULL) {
    weft__pipe_fail(p, UV_ENOMEM);
    return NULL;
  }
  memcpy(b->path, path ? path : "", len);
  return b;
}

static weft_stream *weft__bytes_from(weft_pipeline *p, const char *path,
                                     weft_tcp *conn, size_t chunk_size,
                                     const weft_stage_opts *opts) {
  if (p == NULL) return NULL;
  if (weft__current_task == NULL) return NULL;
  if (chunk_size == 0 || (path == NULL && conn == NULL)) {
    weft__pipe_fail(p, UV_EINVAL);
    return NULL;
  }
  weft__bytes_stage *b = weft__bytes_stage_new(p, NULL, path);
  if (b == NULL) return NULL;
  b->chunk_size = chunk_size;
  b->conn = conn;
  b->st.out = weft__pipe_stream(p, sizeof(weft_chunk), opts, weft_chunk_ops());
  if (b->st.out == NULL) return NULL;
  weft_fn fn = path ? weft__from_file_task : weft__from_tcp_task;
  if (weft__stage_spawn(p, weft__stage_name(opts, path ? "from_file" : "from_tcp"),
                        fn, b))
    return NULL;
  return b->st.out;
}

static int weft__bytes_to(weft_pipeline *p, weft_stream *in, const char *path,
                          weft_tcp *conn) {
  int err = weft__stage_check(p, in);
  if (err != 0) return err;
  if (in->item_size != sizeof(weft_chunk) || (path == NULL && conn == NULL)) {
    weft__pipe_fail(p, UV_EINVAL);
    return UV_EINVAL;
  }
  weft__bytes_stage *b = weft__bytes_stage_new(p, in, path);
  if (b == NULL) return UV_ENOMEM;
  b->conn = conn;
  return weft__stage_spawn(p, path ? "to_file" : "to_tcp",
                           path ? weft__to_file_task : weft__to_tcp_task, b);
}

weft_stream *weft_stream_from_file(weft_pipeline *p, const char *path,
                                   size_t chunk_size,
                                   const weft_stage_opts *opts) {
  if (path == NULL) {
    weft__pipe_fail(p, UV_EINVAL);
    return NULL;
  }
  return weft__bytes_from(p, path, NULL, chunk_size, opts);
}

int weft_stream_to_file(weft_pipeline *p, weft_stream *in, const char *path) {
  if (path == NULL) {
    weft__pipe_fail(p, UV_EINVAL);
    return UV_EINVAL;
  }
  return weft__bytes_to(p, in, path, NULL);
}

weft_stream *weft_stream_from_tcp(weft_pipeline *p, weft_tcp *conn,
                                  size_t chunk_size,
                                  const weft_stage_opts *opts) {
  if (conn == NULL) {
    weft__pipe_fail(p, UV_EINVAL);
    return NULL;
  }
  return weft__bytes_from(p, NULL, conn, chunk_size, opts);
}

int weft_stream_to_tcp(weft_pipeline *p, weft_stream *in, weft_tcp *conn) {
  if (conn == NULL) {
    weft__pipe_fail(p, UV_EINVAL);
    return UV_EINVAL;
  }
  return weft__bytes_to(p, in, NULL, conn);
}
