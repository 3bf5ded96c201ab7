/* strmap.c: the string map and the hash the seen sets use. */
#include "strmap.h"

#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

unsigned long long ws_hash64(const void *data, size_t len) {
  unsigned long long h = XXH3_64bits(data, len);
  return h != 0 ? h : 1;
}

static size_t slot_of(const ws_strmap *m, const char *key) {
  size_t mask = m->cap - 1;
  size_t i = (size_t)ws_hash64(key, strlen(key)) & mask;
  while (m->keys[i] != NULL && strcmp(m->keys[i], key) != 0) i = (i + 1) & mask;
  return i;
}

void *ws_strmap_get(const ws_strmap *m, const char *key) {
  if (m->cap == 0) return NULL;
  size_t i = slot_of(m, key);
  return m->keys[i] != NULL ? m->values[i] : NULL;
}

static int grow(ws_strmap *m) {
  size_t cap = m->cap ? m->cap * 2 : 16;
  ws_strmap g = {.keys = calloc(cap, sizeof(char *)),
                 .values = calloc(cap, sizeof(void *)),
                 .cap = cap};
  if (g.keys == NULL || g.values == NULL) {
    free(g.keys);
    free(g.values);
    return -1;
  }
  for (size_t i = 0; i < m->cap; i++) {
    if (m->keys[i] == NULL) continue;
    size_t j = slot_of(&g, m->keys[i]);
    g.keys[j] = m->keys[i];
    g.values[j] = m->values[i];
    g.n++;
  }
  free(m->keys);
  free(m->values);
  m->keys = g.keys;
  m->values = g.values;
  m->cap = g.cap;
  m->n = g.n;
  return 0;
}

int ws_strmap_put(ws_strmap *m, const char *key, void *value) {
  if ((m->n + 1) * 4 > m->cap * 3 && grow(m) != 0) return -1;
  size_t i = slot_of(m, key);
  if (m->keys[i] == NULL) {
    m->keys[i] = strdup(key);
    if (m->keys[i] == NULL) return -1;
    m->n++;
  }
  m->values[i] = value;
  return 0;
}

void ws_strmap_each(const ws_strmap *m,
                    void (*fn)(void *ctx, const char *key, void *value),
                    void *ctx) {
  for (size_t i = 0; i < m->cap; i++)
    if (m->keys[i] != NULL) fn(ctx, m->keys[i], m->values[i]);
}

void ws_strmap_free(ws_strmap *m) {
  for (size_t i = 0; i < m->cap; i++) free(m->keys[i]);
  free(m->keys);
  free(m->values);
  memset(m, 0, sizeof *m);
}
