/* strmap.h: a hash map from strings to pointers, for the host tables.
 *
 * Keys are copied; values belong to the caller. Open addressing with
 * linear probing, grown at 3/4 full; nothing is ever removed (hosts stay
 * known for the length of a crawl).
 */
#ifndef WS_STRMAP_H
#define WS_STRMAP_H

#include <stddef.h>

typedef struct ws_strmap {
  char **keys;
  void **values;
  size_t cap, n;
} ws_strmap;

/** The value of key, or NULL. */
void *ws_strmap_get(const ws_strmap *m, const char *key);

/** Sets key to value (replacing any). Returns 0, or -1 when out of memory. */
int ws_strmap_put(ws_strmap *m, const char *key, void *value);

/** Calls fn(ctx, key, value) for every entry. */
void ws_strmap_each(const ws_strmap *m,
                    void (*fn)(void *ctx, const char *key, void *value),
                    void *ctx);

/** Frees the keys and the table (not the values). */
void ws_strmap_free(ws_strmap *m);

/** A 64-bit hash of len bytes (xxHash's XXH3), never 0. */
unsigned long long ws_hash64(const void *data, size_t len);

#endif /* WS_STRMAP_H */
