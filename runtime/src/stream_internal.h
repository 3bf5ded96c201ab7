/* stream_internal.h: what the stream's files share: stream.c (streams,
 * chunks and pipelines), stream_stage.c (the stage combinators) and
 * stream_bytes.c (byte streams from and to files and TCP). */
#ifndef WEFT_STREAM_INTERNAL_H
#define WEFT_STREAM_INTERNAL_H

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
  uint64_t blocked_ticks;     /* ticks_now() units, stream.c */
  uint64_t high_water;
  /* Readers' counters. */
  _Alignas(WEFT__CACHELINE) uint64_t out;
  char pad_[WEFT__CACHELINE - sizeof(uint64_t)];
};

static inline void weft__dispose(const weft_stream *s, void *item) {
  if (s->ops.dispose != NULL) s->ops.dispose(item, s->ops.ctx);
}

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

/* Records a setup error: the pipeline is cancelled and join reports it. */
void weft__pipe_fail(weft_pipeline *p, int err);
/* Makes a stream that the pipeline owns; NULL (and the pipeline failed)
 * when it cannot. */
weft_stream *weft__pipe_stream(weft_pipeline *p, size_t item_size,
                               const weft_stage_opts *opts,
                               const weft_stream_item_ops *ops);
/* Allocates a stage record of size bytes with a scratch item of
 * scratch_size bytes (0: none); NULL without memory. */
void *weft__stage_new(weft_pipeline *p, size_t size, weft_stream *in, size_t scratch_size);
/* The checks every stage starts with. Returns 0 or the setup error. */
int weft__stage_check(weft_pipeline *p, weft_stream *in);
/* Spawns a stage's task in the pipeline's group. Returns 0 or an error
 * (the pipeline then failed). */
int weft__stage_spawn(weft_pipeline *p, const char *name, weft_fn fn, void *st);
/* The stage's name from its options, or def. */
const char *weft__stage_name(const weft_stage_opts *opts, const char *def);
/* Ends a stage: its output and its input end with err. Returns err. */
int weft__stage_finish(weft__stage *st, int err);
/* Writes item to a stage's output: 0 (in, or dropped by the policy), 1
 * (the reader downstream ended the stream cleanly) or an error. */
int weft__stage_write(weft_stream *out, const void *item);

static inline int weft__read_end(int r) { return r == WEFT_ECLOSED ? 0 : r; }


#endif /* WEFT_STREAM_INTERNAL_H */
