/* The stage combinators of pipelines (filter, map, batch, tee, for_each):
 * each makes its record (weft__stage first), its output stream, and spawns
 * its task in the pipeline's group (stream.c). */
#include <stdlib.h>
#include <string.h>

#include "stream_internal.h"

/* ---- filter ------------------------------------------------------------- */

typedef struct {
  weft__stage st;
  weft_stream_filter_fn fn;
  void *ctx;
} weft__filter_stage;

static int filter_task(void *arg) {
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
  if (weft__stage_spawn(p, weft__stage_name(opts, "filter"), filter_task, f))
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

static int map_single_task(void *arg) {
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

static int map_dispatch(void *arg) {
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

static int map_worker(void *arg) {
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

static int map_emit(void *arg) {
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

static int map_coordinator(void *arg) {
  weft__map_stage *m = arg;
  weft_group *g = weft_group_open(WEFT_FAIL_FAST);
  if (g == NULL) return weft__stage_finish(&m->st, UV_ENOMEM);
  int err = weft_spawn_named(g, m->name, map_dispatch, m);
  for (int i = 0; i < m->workers && err == 0; i++) {
    weft_task_opts opts = {m->name, 0, m->executor};
    err = weft_spawn_opts(g, &opts, map_worker, m);
    if (err != 0) {
      /* The workers that did start must still close `done` at the end. */
      __atomic_sub_fetch(&m->workers_left, m->workers - i, __ATOMIC_ACQ_REL);
      weft_group_cancel(g);
    }
  }
  if (err == 0 && m->ordered) err = weft_spawn_named(g, m->name, map_emit, m);
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

static void map_cleanup(weft__stage *st) {
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
    if (weft__stage_spawn(p, m->name, map_single_task, m)) return NULL;
    return m->st.out;
  }
  /* The workers may run on other executors: their channels must allow it. */
  int cross = executor != 0;
  int mode = cross ? WEFT_CHAN_MPMC : WEFT_CHAN_LOCAL;
  m->st.cleanup = map_cleanup;
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
  if (weft__stage_spawn(p, m->name, map_coordinator, m)) return NULL;
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

static void batch_dispose(void *item, void *ctx) {
  const weft_stream_item_ops *inner = ctx;
  weft_batch *b = item;
  for (size_t i = 0; i < b->count; i++)
    inner->dispose(weft_batch_item(b, i), inner->ctx);
}

static int batch_clone(const void *src, void *dst, void *ctx) {
  const weft_stream_item_ops *inner = ctx;
  weft_batch *from = (weft_batch *)src;
  weft_batch *to = dst;
  to->count = 0;
  to->item_size = from->item_size;
  for (size_t i = 0; i < from->count; i++) {
    int err = inner->clone(weft_batch_item(from, i), weft_batch_item(to, i),
                           inner->ctx);
    if (err != 0) {
      if (inner->dispose) batch_dispose(to, ctx);
      return err;
    }
    to->count++;
  }
  return 0;
}

static int batch_task(void *arg) {
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
        if (bs->inner.dispose) batch_dispose(b, &bs->inner);
        b->count = 0;
        r = w == 1 ? 0 : w;
        break;
      }
      b->count = 0;
    }
    if (r != 0 && !timed_out) break;
  }
  if (r != 0 && b->count > 0 && bs->inner.dispose) batch_dispose(b, &bs->inner);
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
    bs->ops.dispose = in->ops.dispose ? batch_dispose : NULL;
    bs->ops.clone = in->ops.clone ? batch_clone : NULL;
    bs->ops.ctx = &bs->inner;
    ops = &bs->ops;
  }
  bs->st.out = weft__pipe_stream(p, size, opts, ops);
  if (bs->st.out == NULL) return NULL;
  if (weft__stage_spawn(p, weft__stage_name(opts, "batch"), batch_task, bs))
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

static int tee_task(void *arg) {
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
  err = weft__stage_spawn(p, weft__stage_name(opts, "tee"), tee_task, t);
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

static int each_task(void *arg) {
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
  return weft__stage_spawn(p, "for_each", each_task, e);
}
