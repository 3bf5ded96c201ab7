/* map.h: a small hash map from C strings to pointers.
 *
 * Used for the nickname registry and the room directory, each behind its
 * own lock (the map itself does no locking). Keys are copied.
 */
#ifndef CHAT_MAP_H
#define CHAT_MAP_H

#include <stddef.h>

typedef struct chat_map_entry {
  char *key;
  void *value;
  struct chat_map_entry *next;
} chat_map_entry;

typedef struct chat_map {
  chat_map_entry **slots;
  size_t n_slots; /* a power of two */
  size_t count;
} chat_map;

void chat_map_init(chat_map *m);
/** Frees the entries (not the values). */
void chat_map_free(chat_map *m);
/** The value of key, or NULL. */
void *chat_map_get(const chat_map *m, const char *key);
/** Adds key (which must be absent). Returns 0, or -1 out of memory. */
int chat_map_put(chat_map *m, const char *key, void *value);
/** Removes key; returns its value, or NULL when it was absent. */
void *chat_map_remove(chat_map *m, const char *key);
/** Calls fn for each entry, in no order; fn must not change the map. */
void chat_map_each(const chat_map *m, void (*fn)(const char *key, void *value,
                                                 void *arg),
                   void *arg);

#endif /* CHAT_MAP_H */
