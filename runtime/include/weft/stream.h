/* weft/stream.h: bounded streams of items with backpressure, and pipelines.
 *
 * A stream carries fixed-size items from writers to readers, in order, with
 * at most `capacity` items buffered. What a write does when the stream is
 * full is the stream's backpressure policy: wait for room, drop the newest
 * item, drop the oldest buffered item, or fail. A stream ends explicitly:
 * weft_stream_end(s, err) lets readers take what is buffered, then every read
 * returns the end's error, or WEFT_ECLOSED for a clean end. Ending, like a
 * channel's close, frees nothing: weft_stream_free() does (a pipeline's
 * streams are freed by weft_pipeline_join()).
 *
 *   weft_stream *s = weft_stream_new(sizeof(rec), 256, NULL);
 *   // writer task                        // reader task
 *   weft_stream_write(s, &rec);          while (weft_stream_read(s, &rec) == 0)
 *   weft_stream_end(s, 0);                  use(&rec);
 *
 * Stages turn streams into streams inside a pipeline, which is a task group:
 * a stage that fails ends its streams with its error and cancels every other
 * stage, and weft_pipeline_join() returns that error to the caller.
 *
 *   weft_pipeline *p = weft_pipeline_open();
 *   weft_stream *chunks = weft_stream_from_file(p, "in.log", 65536, NULL);
 *   weft_stream *upper = weft_stream_map(p, chunks, sizeof(weft_chunk),
 *                                        to_upper, NULL, &opts);
 *   weft_stream_to_file(p, upper, "out.log");
 *   int err = weft_pipeline_join(p);    // first stage error, or 0
 *
 * Executors. A stream is a channel underneath and takes the channel's modes:
 * WEFT_STREAM_MPMC (the default) may be written and read by any tasks on any
 * executors; WEFT_STREAM_SPSC by one writing and one reading task at a time,
 * on any executors; WEFT_STREAM_LOCAL only by tasks of the executor that
 * made it, and is the fastest. Every call below that takes a stream may be
 * made from any executor the stream's mode allows; the pipeline calls
 * (weft_pipeline_*, the stages) only from the task that opened the pipeline.
 *
 * Byte streams. Files and TCP connections become streams of weft_chunk
 * items: a pointer to malloc'd bytes and their length. An item is moved, not
 * copied: a reader that takes a chunk owns its bytes and frees them (or
 * passes them on). Such streams carry weft_chunk_ops(), so that chunks the
 * stream drops or still holds when it is freed are released too. Chunks are
 * moved by pointer rather than copied in place so that a chunk can be as
 * large as wanted (channel items are at most 64 KiB) and a stage can hand a
 * buffer on without copying it.
 */
#ifndef WEFT_STREAM_H
#define WEFT_STREAM_H

#include <stddef.h>
#include <stdint.h>

#include "group.h"
#include "io.h"

#ifdef __cplusplus
extern "C" {
#endif

/** A stream (opaque). */
typedef struct weft_stream weft_stream;

/** Stream modes: which tasks may use a stream (see the top of this file). */
enum {
  WEFT_STREAM_MPMC = 0,   /**< any tasks, any executors (the default) */
  WEFT_STREAM_SPSC = 1,   /**< one writer and one reader, any executors */
  WEFT_STREAM_LOCAL = 2   /**< tasks of the creating executor only */
};

/** Backpressure policies: what a write to a full stream does. */
enum {
  WEFT_STREAM_BLOCK = 0,       /**< waits for room (the default) */
  WEFT_STREAM_DROP_NEWEST = 1, /**< drops the item being written */
  WEFT_STREAM_DROP_OLDEST = 2, /**< drops the oldest buffered item to make room */
  WEFT_STREAM_FAIL = 3         /**< refuses the write with UV_ENOBUFS */
};

/** weft_stream_write()'s result when DROP_NEWEST dropped the item. */
#define WEFT_STREAM_DROPPED 1

/**
 * What items own, for streams whose items hold resources (such as chunks of
 * malloc'd bytes). All fields may be NULL.
 */
typedef struct weft_stream_item_ops {
  /** Releases what item owns. Called for items a drop policy discards, items
   * a filter rejects, and items still buffered when the stream is freed. */
  void (*dispose)(void *item, void *ctx);
  /** Makes dst an independent copy of src (tee needs one copy per output).
   * Returns 0 or a negative error. NULL: items are copied bytewise. */
  int (*clone)(const void *src, void *dst, void *ctx);
  void *ctx;                /**< passed to both */
} weft_stream_item_ops;

/** Options for weft_stream_new(); NULL or zero fields mean the defaults. */
typedef struct weft_stream_opts {
  int mode;                            /**< WEFT_STREAM_MPMC (default), SPSC, LOCAL */
  int policy;                          /**< WEFT_STREAM_BLOCK (default), ... */
  const weft_stream_item_ops *ops;     /**< copied; NULL: plain bytes */
} weft_stream_opts;

/** A stream's counters, from weft_stream_stats(). */
typedef struct weft_stream_stats {
  uint64_t items_in;        /**< items accepted by writes */
  uint64_t items_out;       /**< items returned by reads */
  uint64_t dropped;         /**< items discarded by DROP_NEWEST / DROP_OLDEST */
  uint64_t rejected;        /**< writes refused with UV_ENOBUFS (FAIL) */
  uint64_t high_water;      /**< most items buffered at once; exact in LOCAL
                                 mode, sampled every 32 writes and whenever
                                 the stream is full in the others */
  uint64_t blocked_ns;      /**< time writers spent waiting for room */
  size_t capacity;          /**< as weft_stream_cap() */
  size_t buffered;          /**< items buffered now */
} weft_stream_stats;

/**
 * Makes a stream of items of item_size bytes (1 to 65536) buffering up to
 * capacity items (0 is taken as 1). The SPSC and MPMC modes round capacity
 * up to a power of two (weft_stream_cap() tells). DROP_OLDEST needs to read
 * from the writing side, so an SPSC stream with that policy is made MPMC.
 * Returns NULL on bad arguments or out of memory. Any thread may call it.
 */
weft_stream *weft_stream_new(size_t item_size, size_t capacity,
                             const weft_stream_opts *opts);

/**
 * Writes a copy of the item at item. When the stream is full the policy
 * decides: BLOCK waits (a cancellation point), DROP_NEWEST discards item
 * (disposing of it) and returns WEFT_STREAM_DROPPED, DROP_OLDEST discards the
 * oldest buffered item and writes this one, FAIL returns UV_ENOBUFS.
 * Returns 0 when the item went in. After weft_stream_end() returns the end's
 * error, or WEFT_ECLOSED for a clean end; also UV_ECANCELED / UV_ETIMEDOUT.
 * On an error the item is not taken: the caller still owns it.
 */
int weft_stream_write(weft_stream *s, const void *item);

/**
 * Reads the oldest item into item, waiting while the stream is empty (a
 * cancellation point). Returns 0, then once the stream has ended and is
 * drained the end's error, or WEFT_ECLOSED for a clean end; or
 * UV_ECANCELED / UV_ETIMEDOUT.
 */
int weft_stream_read(weft_stream *s, void *item);

/** Reads without waiting: 0, UV_EAGAIN when empty, or as weft_stream_read(). */
int weft_stream_try_read(weft_stream *s, void *item);

/**
 * Reads like weft_stream_read() but waits at most timeout_ms (< 0: without
 * limit); UV_ETIMEDOUT when no item came in time.
 */
int weft_stream_read_timeout(weft_stream *s, void *item, int64_t timeout_ms);

/**
 * Ends s with err (0: a clean end). Writes fail from now on; readers take
 * the items buffered, then get err (or WEFT_ECLOSED). Waiting writers and
 * readers are woken. Writers and readers alike may call it: a reader that
 * gives up ends its input so that the writer stops. Only the first end
 * counts; later ones are ignored. Returns 0, or 1 if s had already ended.
 */
int weft_stream_end(weft_stream *s, int err);

/** Non-zero once s has ended (weft_stream_end() was called). */
int weft_stream_ended(const weft_stream *s);

/** The error s was ended with (0 for a clean end or while it runs). */
int weft_stream_end_error(const weft_stream *s);

/** The size of s's items, in bytes. */
size_t weft_stream_item_size(const weft_stream *s);

/** The capacity of s, in items (after rounding). */
size_t weft_stream_cap(const weft_stream *s);

/** Items buffered now (a snapshot across executors). */
size_t weft_stream_len(const weft_stream *s);

/** Fills *out with s's counters (a snapshot across executors). */
void weft_stream_stats_get(const weft_stream *s, weft_stream_stats *out);

/**
 * Frees s; the items still buffered are disposed of. No task may be using it
 * or waiting on it. Streams made by pipeline stages belong to the pipeline
 * and are freed by weft_pipeline_join(): do not free those.
 */
void weft_stream_free(weft_stream *s);

/* ---- Byte chunks -------------------------------------------------------- */

/** A chunk of bytes moved through a byte stream; data comes from malloc(). */
typedef struct weft_chunk {
  unsigned char *data;      /**< owned by whoever holds the chunk */
  size_t len;               /**< bytes of data in use */
} weft_chunk;

/** Allocates len bytes (uninitialised) into *c. Returns 0 or UV_ENOMEM. */
int weft_chunk_alloc(weft_chunk *c, size_t len);

/** Frees c's bytes and empties it. */
void weft_chunk_free(weft_chunk *c);

/** The item ops of weft_chunk streams: dispose frees, clone copies. */
const weft_stream_item_ops *weft_chunk_ops(void);

/* ---- Pipelines ---------------------------------------------------------- */

/** A pipeline: a task group running stages, and the streams they made. */
typedef struct weft_pipeline weft_pipeline;

/**
 * Opens a pipeline: a WEFT_FAIL_FAST group in the calling task's scope.
 * Returns NULL outside a task or when out of memory. The calling task must
 * join it.
 */
weft_pipeline *weft_pipeline_open(void);

/**
 * Waits for every stage to end, frees the streams the stages made, frees p
 * and returns the first error: a stage's, an error a source stream given to
 * a stage was ended with, or UV_EINVAL / UV_ENOMEM when a stage could not be
 * set up. The caller must have read to the end of (or ended) any output
 * stream it reads itself before joining, or the stage writing it waits.
 */
int weft_pipeline_join(weft_pipeline *p);

/** Cancels every stage of p. Idempotent. */
void weft_pipeline_cancel(weft_pipeline *p);

/** The pipeline's group, to spawn tasks of one's own that fail with it. */
weft_group *weft_pipeline_group(weft_pipeline *p);

/** Map orders. */
enum {
  WEFT_MAP_ORDERED = 0,       /**< outputs in the order of their inputs */
  WEFT_MAP_AS_COMPLETED = 1   /**< outputs as soon as each is done */
};

/** Options of a stage; NULL or zero fields mean the defaults. */
typedef struct weft_stage_opts {
  size_t capacity;          /**< the output stream's; 0: 64 */
  int mode;                 /**< the output stream's; 0: WEFT_STREAM_MPMC */
  int policy;               /**< the output stream's; 0: WEFT_STREAM_BLOCK */
  const weft_stream_item_ops *ops; /**< map's output item ops (others take
                                        their input's) */
  int workers;              /**< map: parallel workers; 0: 1 */
  int order;                /**< map: WEFT_MAP_ORDERED or AS_COMPLETED */
  int executor;             /**< map workers: 0 the caller's executor,
                                 WEFT_EXEC_NEXT spread over all (then keep
                                 the default MPMC mode), or 1..N */
  const char *name;         /**< task name for diagnostics */
} weft_stage_opts;

/**
 * A map function: turns the input item in into the output item at out.
 * Returns 0 to emit out, 1 to emit nothing for this input, or a negative
 * error, which fails the stage (and the pipeline). The function owns in:
 * for items that own resources it moves them into out or releases them.
 * With several workers it runs in several tasks at once (on several
 * executors when opts->executor says so).
 */
typedef int (*weft_stream_map_fn)(void *ctx, void *in, void *out);

/**
 * Adds a stage that applies fn to every item of in with opts->workers
 * parallel workers, in input order or as completed, and returns its output
 * stream of out_item_size items. Returns NULL (and the pipeline fails with
 * UV_EINVAL or UV_ENOMEM) on bad arguments, including in == NULL, so that
 * calls can be chained and checked once at the end.
 */
weft_stream *weft_stream_map(weft_pipeline *p, weft_stream *in,
                             size_t out_item_size, weft_stream_map_fn fn,
                             void *ctx, const weft_stage_opts *opts);

/**
 * A filter predicate: 1 keeps item, 0 drops it (it is disposed of), a
 * negative error fails the stage.
 */
typedef int (*weft_stream_filter_fn)(void *ctx, const void *item);

/** Adds a stage passing on the items of in for which fn returns 1. */
weft_stream *weft_stream_filter(weft_pipeline *p, weft_stream *in,
                                weft_stream_filter_fn fn, void *ctx,
                                const weft_stage_opts *opts);

/**
 * A batch: count items of item_size bytes, stored one after the other from
 * weft_batch_item(b, 0) on. A batch stream's item size is
 * weft_batch_size(max_items, item_size).
 */
typedef struct weft_batch {
  size_t count;             /**< items in this batch (1..max_items) */
  size_t item_size;         /**< bytes per item */
} weft_batch;

/** Bytes before the first item of a batch. */
#define WEFT_BATCH_HEADER ((sizeof(weft_batch) + 15) & ~(size_t)15)

/** The item size of a stream of batches of up to max_items items. */
static inline size_t weft_batch_size(size_t max_items, size_t item_size) {
  return WEFT_BATCH_HEADER + max_items * item_size;
}

/** The i-th item of batch b. */
static inline void *weft_batch_item(weft_batch *b, size_t i) {
  return (unsigned char *)b + WEFT_BATCH_HEADER + i * b->item_size;
}

/**
 * Adds a stage that groups the items of in into batches of up to max_items
 * items, emitting a batch when it is full or max_ms milliseconds after its
 * first item arrived (max_ms <= 0: only when full, or at the end), and the
 * last partial batch at the end. weft_batch_size(max_items, item size) must
 * be at most 65536.
 */
weft_stream *weft_stream_batch(weft_pipeline *p, weft_stream *in,
                               size_t max_items, int64_t max_ms,
                               const weft_stage_opts *opts);

/**
 * Adds a stage that copies every item of in to n new streams, returned in
 * outs[0..n-1] (cloned with in's item ops where it has a clone function).
 * The slowest output holds the others back (under the BLOCK policy).
 * Returns 0, or UV_EINVAL / UV_ENOMEM (outs are then NULL).
 */
int weft_stream_tee(weft_pipeline *p, weft_stream *in, size_t n,
                    weft_stream **outs, const weft_stage_opts *opts);

/**
 * A sink: called with each item (the function owns it). 0 goes on, a
 * negative error fails the stage.
 */
typedef int (*weft_stream_each_fn)(void *ctx, void *item);

/** Adds a stage that calls fn on every item of in. Returns 0 or an error. */
int weft_stream_for_each(weft_pipeline *p, weft_stream *in,
                         weft_stream_each_fn fn, void *ctx);

/* ---- Byte streams ------------------------------------------------------- */

/**
 * Adds a stage reading the file at path in chunks of up to chunk_size bytes
 * and returns the stream of weft_chunk items (with weft_chunk_ops()). The
 * stream ends cleanly at end of file, or with the error of the open or a
 * read. opts may set the capacity, mode and policy of the stream.
 */
weft_stream *weft_stream_from_file(weft_pipeline *p, const char *path,
                                   size_t chunk_size,
                                   const weft_stage_opts *opts);

/**
 * Adds a stage writing every chunk of in to the file at path (created or
 * truncated, mode 0644) and freeing it. The stage fails with the error of
 * the open or a write, or with the error in ended with (the file then holds
 * what came before).
 */
int weft_stream_to_file(weft_pipeline *p, weft_stream *in, const char *path);

/**
 * Adds a stage reading conn in chunks of up to chunk_size bytes; the stream
 * ends cleanly when the peer shuts its side down. conn stays the caller's:
 * it must outlive the pipeline, and runs on the pipeline's executor.
 */
weft_stream *weft_stream_from_tcp(weft_pipeline *p, weft_tcp *conn,
                                  size_t chunk_size,
                                  const weft_stage_opts *opts);

/**
 * Adds a stage writing every chunk of in to conn, then shutting down conn's
 * sending side once in ends cleanly. conn stays the caller's.
 */
int weft_stream_to_tcp(weft_pipeline *p, weft_stream *in, weft_tcp *conn);

#ifdef __cplusplus
}
#endif
#endif /* WEFT_STREAM_H */
