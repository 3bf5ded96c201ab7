/* map.c: chained hashing with FNV-1a, doubling at a load of one. */
#include "map.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static uint64_t map_hash(const char *s) {
  uint64_t h = 1469598103934665603ull;
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
  return h;
}

void chat_map_init(chat_map *m) { memset(m, 0, sizeof *m); }

void chat_map_free(chat_map *m) {
  for (size_t i = 0; i < m->n_slots; i++) {
    for (chat_map_entry *e = m->slots[i], *next; e != NULL; e = next) {
      next = e->next;
      free(e->key);
      free(e);
    }
  }
  free(m->slots);
  chat_map_init(m);
}

void *chat_map_get(const chat_map *m, const char *key) {
  if (m->n_slots == 0) return NULL;
  for (chat_map_entry *e = m->slots[map_hash(key) & (m->n_slots - 1)];
       e != NULL; e = e->next)
    if (strcmp(e->key, key) == 0) return e->value;
  return NULL;
}

static int map_grow(chat_map *m) {
  size_t n = m->n_slots ? m->n_slots * 2 : 16;
  chat_map_entry **slots = calloc(n, sizeof *slots);
  if (slots == NULL) return -1;
  for (size_t i = 0; i < m->n_slots; i++) {
    for (chat_map_entry *e = m->slots[i], *next; e != NULL; e = next) {
      next = e->next;
      size_t k = map_hash(e->key) & (n - 1);
      e->next = slots[k];
      slots[k] = e;
    }
  }
  free(m->slots);
  m->slots = slots;
  m->n_slots = n;
  return 0;
}

int chat_map_put(chat_map *m, const char *key, void *value) {
  if (m->count >= m->n_slots && map_grow(m) != 0) return -1;
  chat_map_entry *e = malloc(sizeof *e);
  if (e == NULL) return -1;
  e->key = strdup(key);
  if (e->key == NULL) {
    free(e);
    return -1;
  }
  e->value = value;
  size_t k = map_hash(key) & (m->n_slots - 1);
  e->next = m->slots[k];
  m->slots[k] = e;
  m->count++;
  return 0;
}

void *chat_map_remove(chat_map *m, const char *key) {
  if (m->n_slots == 0) return NULL;
  chat_map_entry **p = &m->slots[map_hash(key) & (m->n_slots - 1)];
  for (; *p != NULL; p = &(*p)->next) {
    if (strcmp((*p)->key, key) == 0) {
      chat_map_entry *e = *p;
      void *v = e->value;
      *p = e->next;
      free(e->key);
      free(e);
      m->count--;
      return v;
    }
  }
  return NULL;
}

void chat_map_each(const chat_map *m,
                   void (*fn)(const char *key, void *value, void *arg),
                   void *arg) {
  for (size_t i = 0; i < m->n_slots; i++)
    for (chat_map_entry *e = m->slots[i]; e != NULL; e = e->next)
      fn(e->key, e->value, arg);
}
