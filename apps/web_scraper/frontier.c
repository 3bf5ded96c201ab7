/* frontier.c: the in-memory frontier.
 *
 * Memory: the seen set holds 8-byte fingerprints (XXH3 of the normalised
 * URL) in an open-addressing table kept at most 3/4 full, so 11 to 21
 * bytes per URL seen; a queued item is one allocation with its URL and
 * referrer inline (about 40 bytes and the two strings). Two URLs whose
 * fingerprints collide (one chance in 2^64 per pair) would be taken as
 * one; the set trades that for not keeping the URLs themselves.
 */
#include "frontier.h"

#include <stdlib.h>
#include <string.h>

#include <weft.h>

#include "strmap.h"

void ws_item_clear(ws_item *it) {
  free(it->url);
  free(it->referrer);
  memset(it, 0, sizeof *it);
}

/* A queued item: the URL then the referrer, NUL-terminated, inline. */
typedef struct node {
  struct node *next;
  int32_t depth;
  uint16_t flags;
  uint16_t url_len;
  char text[];
} node;

typedef struct queue {
  node *head, *tail;
} queue;

typedef struct mem_frontier {
  ws_frontier base;
  uint64_t *seen; /* fingerprints; 0 is an empty slot */
  size_t seen_cap, seen_n;
  ws_strmap queues; /* host -> queue, in order of depth, then of arrival */
  uint64_t queued;
} mem_frontier;

static int seen_grow(mem_frontier *m) {
  size_t cap = m->seen_cap ? m->seen_cap * 2 : 1024;
  uint64_t *t = calloc(cap, sizeof *t);
  if (t == NULL) return UV_ENOMEM;
  for (size_t i = 0; i < m->seen_cap; i++) {
    uint64_t h = m->seen[i];
    if (h == 0) continue;
    size_t j = (size_t)h & (cap - 1);
    while (t[j] != 0) j = (j + 1) & (cap - 1);
    t[j] = h;
  }
  free(m->seen);
  m->seen = t;
  m->seen_cap = cap;
  return 0;
}

static int mem_mark_seen(ws_frontier *f, const char *url) {
  mem_frontier *m = (mem_frontier *)f;
  if ((m->seen_n + 1) * 4 > m->seen_cap * 3) {
    int rc = seen_grow(m);
    if (rc != 0) return rc;
  }
  uint64_t h = ws_hash64(url, strlen(url));
  size_t mask = m->seen_cap - 1, i = (size_t)h & mask;
  while (m->seen[i] != 0) {
    if (m->seen[i] == h) return 0;
    i = (i + 1) & mask;
  }
  m->seen[i] = h;
  m->seen_n++;
  return 1;
}

static int mem_contains(ws_frontier *f, const char *url) {
  mem_frontier *m = (mem_frontier *)f;
  uint64_t h = ws_hash64(url, strlen(url));
  size_t mask = m->seen_cap - 1, i = (size_t)h & mask;
  while (m->seen[i] != 0) {
    if (m->seen[i] == h) return 1;
    i = (i + 1) & mask;
  }
  return 0;
}

static int mem_add(ws_frontier *f, const char *host, const ws_item *it) {
  mem_frontier *m = (mem_frontier *)f;
  int fresh = mem_mark_seen(f, it->url);
  if (fresh <= 0) return fresh;
  queue *q = ws_strmap_get(&m->queues, host);
  if (q == NULL) {
    q = calloc(1, sizeof *q);
    if (q == NULL || ws_strmap_put(&m->queues, host, q) != 0) {
      free(q);
      return UV_ENOMEM;
    }
  }
  size_t ul = strlen(it->url);
  const char *ref = it->referrer != NULL ? it->referrer : "";
  size_t rl = strlen(ref);
  if (ul > UINT16_MAX) return UV_EINVAL;
  node *n = malloc(sizeof *n + ul + rl + 2);
  if (n == NULL) return UV_ENOMEM;
  n->next = NULL;
  n->depth = it->depth;
  n->flags = (uint16_t)it->flags;
  n->url_len = (uint16_t)ul;
  memcpy(n->text, it->url, ul + 1);
  memcpy(n->text + ul + 1, ref, rl + 1);
  if (q->tail == NULL) {
    q->head = q->tail = n;
  } else if (q->tail->depth <= n->depth) {
    q->tail->next = n;
    q->tail = n;
  } else {
    /* Shallower than the tail (a seed added to a resumed or running
     * crawl): in order of depth, so that the head is the shallowest. */
    node **at = &q->head;
    while (*at != NULL && (*at)->depth <= n->depth) at = &(*at)->next;
    n->next = *at;
    *at = n;
  }
  m->queued++;
  return 1;
}

static int mem_head_depth(ws_frontier *f, const char *host) {
  mem_frontier *m = (mem_frontier *)f;
  queue *q = ws_strmap_get(&m->queues, host);
  return q != NULL && q->head != NULL ? q->head->depth : -1;
}

static int mem_pop(ws_frontier *f, const char *host, ws_item *out) {
  mem_frontier *m = (mem_frontier *)f;
  memset(out, 0, sizeof *out);
  queue *q = ws_strmap_get(&m->queues, host);
  if (q == NULL || q->head == NULL) return 1;
  node *n = q->head;
  out->url = strdup(n->text);
  const char *ref = n->text + n->url_len + 1;
  out->referrer = ref[0] != '\0' ? strdup(ref) : NULL;
  if (out->url == NULL || (ref[0] != '\0' && out->referrer == NULL)) {
    ws_item_clear(out);
    return UV_ENOMEM;
  }
  out->depth = n->depth;
  out->flags = n->flags;
  q->head = n->next;
  if (q->head == NULL) q->tail = NULL;
  free(n);
  m->queued--;
  return 0;
}

static int mem_done(ws_frontier *f, const ws_item *it) {
  (void)f;
  (void)it;
  return 0;
}

static int mem_each_queued(ws_frontier *f,
                           int (*fn)(void *, const char *, int, int64_t),
                           void *ctx) {
  (void)f;
  (void)fn;
  (void)ctx;
  return 0; /* a new frontier has nothing queued */
}

static uint64_t mem_seen_count(ws_frontier *f) {
  return ((mem_frontier *)f)->seen_n;
}

static uint64_t mem_queued_count(ws_frontier *f) {
  return ((mem_frontier *)f)->queued;
}

static void free_queue(void *ctx, const char *key, void *value) {
  (void)ctx;
  (void)key;
  queue *q = value;
  while (q->head != NULL) {
    node *n = q->head;
    q->head = n->next;
    free(n);
  }
  free(q);
}

static void mem_close(ws_frontier *f) {
  mem_frontier *m = (mem_frontier *)f;
  ws_strmap_each(&m->queues, free_queue, NULL);
  ws_strmap_free(&m->queues);
  free(m->seen);
  free(m);
}

static const ws_frontier_ops mem_ops = {
    .mark_seen = mem_mark_seen,
    .contains = mem_contains,
    .add = mem_add,
    .head_depth = mem_head_depth,
    .pop = mem_pop,
    .done = mem_done,
    .each_queued = mem_each_queued,
    .seen_count = mem_seen_count,
    .queued_count = mem_queued_count,
    .close = mem_close,
};

ws_frontier *ws_frontier_memory(void) {
  mem_frontier *m = calloc(1, sizeof *m);
  if (m == NULL) return NULL;
  m->base.ops = &mem_ops;
  if (seen_grow(m) != 0) {
    free(m);
    return NULL;
  }
  return &m->base;
}
