/* The worker pool: a group of worker tasks reading one MPMC channel. */
#include <stdlib.h>

#include "internal.h"

struct weft_pool {
  weft_chan *queue;
  weft_group *group;
  weft_pool_fn fn;
  void *ctx;
  size_t item_size;
  size_t done;                /* atomic: the workers run on several threads */
  size_t failed;              /* atomic */
  int first_error;            /* atomic: first error fn returned */
};

static int weft__pool_worker(void *arg) {
  weft_pool *p = arg;
  /* Items are at most 64 KiB (the channel's limit); small ones stay on the
   * stack. */
  unsigned char small[256];
  unsigned char *item = p->item_size <= sizeof small ? small : malloc(p->item_size);
  if (item == NULL) return UV_ENOMEM;
  int r;
  while ((r = weft_chan_recv(p->queue, item)) == 0) {
    int err = p->fn(item, p->ctx);
    if (err < 0) {
      int none = 0;
      __atomic_compare_exchange_n(&p->first_error, &none, err, 0,
                                  __ATOMIC_RELAXED, __ATOMIC_RELAXED);
      __atomic_fetch_add(&p->failed, 1, __ATOMIC_RELAXED);
    }
    __atomic_fetch_add(&p->done, 1, __ATOMIC_RELAXED);
  }
  if (item != small) free(item);
  /* A closed and drained queue is the normal end. */
  return r == WEFT_ECLOSED ? 0 : r;
}

weft_pool *weft_pool_start(int workers, size_t item_size, size_t queue_cap,
                           weft_pool_fn fn, void *ctx) {
  if (!weft_in_task() || fn == NULL || item_size == 0) return NULL;
  if (workers <= 0) workers = 2 * weft_executor_count();
  weft_pool *p = calloc(1, sizeof *p);
  if (p == NULL) return NULL;
  p->fn = fn;
  p->ctx = ctx;
  p->item_size = item_size;
  p->queue = weft_chan_new(item_size, queue_cap, WEFT_CHAN_MPMC);
  p->group = p->queue ? weft_group_open(WEFT_COLLECT) : NULL;
  if (p->group == NULL) {
    weft_chan_free(p->queue);
    free(p);
    return NULL;
  }
  for (int i = 0; i < workers; i++) {
    weft_task_opts opts = {.name = "pool-worker", .executor = WEFT_EXEC_NEXT};
    if (weft_spawn_opts(p->group, &opts, weft__pool_worker, p) != 0) break;
  }
  return p;
}

int weft_pool_submit(weft_pool *p, const void *item) {
  return weft_chan_send(p->queue, item);
}

size_t weft_pool_done(const weft_pool *p) {
  return __atomic_load_n(&p->done, __ATOMIC_RELAXED);
}

size_t weft_pool_failed(const weft_pool *p) {
  return __atomic_load_n(&p->failed, __ATOMIC_RELAXED);
}

int weft_pool_finish(weft_pool *p) {
  weft_chan_close(p->queue);
  int r = weft_group_join(p->group);
  int first = __atomic_load_n(&p->first_error, __ATOMIC_RELAXED);
  weft_chan_free(p->queue);
  free(p);
  if (r == UV_ECANCELED || r == UV_ETIMEDOUT) return r;
  return first != 0 ? first : r;
}
