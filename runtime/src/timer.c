/* Timers: a binary min-heap of deadlines per executor, served by one
 * uv_timer_t. Sleeps and scope deadlines are heap entries embedded in the
 * waiting task's frame or scope, so arming a timer never allocates once the
 * heap has grown to its working size.
 */
#include <stdint.h>
#include <stdlib.h>

#include "internal.h"
#include "metrics_internal.h"

#define WEFT__NOT_ARMED SIZE_MAX

static void weft__heap_swap(weft__exec *e, size_t i, size_t j) {
  weft__timer *a = e->heap[i], *b = e->heap[j];
  e->heap[i] = b;
  e->heap[j] = a;
  b->heap_index = i;
  a->heap_index = j;
}

static void weft__heap_up(weft__exec *e, size_t i) {
  while (i > 0) {
    size_t parent = (i - 1) / 2;
    if (e->heap[parent]->deadline <= e->heap[i]->deadline) break;
    weft__heap_swap(e, i, parent);
    i = parent;
  }
}

static void weft__heap_down(weft__exec *e, size_t i) {
  for (;;) {
    size_t l = 2 * i + 1, r = l + 1, m = i;
    if (l < e->heap_len && e->heap[l]->deadline < e->heap[m]->deadline) m = l;
    if (r < e->heap_len && e->heap[r]->deadline < e->heap[m]->deadline) m = r;
    if (m == i) break;
    weft__heap_swap(e, i, m);
    i = m;
  }
}

void weft__timer_start(weft__exec *e, weft__timer *t, int64_t deadline,
                       weft__timer_cb cb) {
  if (e->heap_len == e->heap_cap) {
    size_t cap = e->heap_cap ? e->heap_cap * 2 : 64;
    weft__timer **heap = realloc(e->heap, cap * sizeof *heap);
    if (heap == NULL) abort(); /* Out of memory for a few pointers: give up. */
    e->heap = heap;
    e->heap_cap = cap;
  }
  t->deadline = deadline;
  t->cb = cb;
  t->heap_index = e->heap_len;
  e->heap[e->heap_len++] = t;
  weft__heap_up(e, t->heap_index);
}

void weft__timer_move(weft__exec *e, weft__timer *t, int64_t deadline,
                      weft__timer_cb cb) {
  if (t->heap_index == WEFT__NOT_ARMED) {
    weft__timer_start(e, t, deadline, cb);
    return;
  }
  /* Sifting the entry from where it is beats removing and inserting it. */
  int64_t was = t->deadline;
  t->deadline = deadline;
  t->cb = cb;
  if (deadline < was)
    weft__heap_up(e, t->heap_index);
  else
    weft__heap_down(e, t->heap_index);
}

void weft__timer_stop(weft__exec *e, weft__timer *t) {
  size_t i = t->heap_index;
  if (i == WEFT__NOT_ARMED) return;
  t->heap_index = WEFT__NOT_ARMED;
  size_t last = --e->heap_len;
  if (i == last) return;
  e->heap[i] = e->heap[last];
  e->heap[i]->heap_index = i;
  weft__heap_down(e, i);
  weft__heap_up(e, i);
}

int weft__timers_run(weft__exec *e, int64_t now) {
  int ran = 0;
  while (e->heap_len > 0 && e->heap[0]->deadline <= now) {
    weft__timer *t = e->heap[0];
    weft__timer_stop(e, t);
    weft_histogram_record(weft__m_loop_lag, (uint64_t)(now - t->deadline) * 1000000u);
    t->cb(t);
    ran++;
  }
  return ran;
}

static void weft__uv_timer_cb(uv_timer_t *h) {
  /* Expired timers are run by the executor after uv_run() returns. libuv
   * may call this before it polls (the timer expired before uv_run began):
   * stopping the loop keeps that poll from blocking with nothing armed. */
  weft__exec *e = h->data;
  e->armed_deadline = -1;
  uv_stop(h->loop);
}

void weft__timers_arm(weft__exec *e) {
  if (e->heap_len == 0) {
    if (e->armed_deadline >= 0) {
      uv_timer_stop(&e->uv_timer);
      e->armed_deadline = -1;
    }
    return;
  }
  int64_t deadline = e->heap[0]->deadline;
  if (deadline == e->armed_deadline) return;
  int64_t wait = deadline - weft_now();
  if (wait < 0) wait = 0;
  e->uv_timer.data = e;
  /* libuv measures from its cached loop time, which may lag; refresh it so
   * the wait is not cut short. */
  uv_update_time(&e->loop);
  uv_timer_start(&e->uv_timer, weft__uv_timer_cb, (uint64_t)wait, 0);
  e->armed_deadline = deadline;
}
