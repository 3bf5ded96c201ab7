/* store.h: durable history in SQLite (--store FILE).
 *
 * Every room message is one row (room, seq, the message as members got
 * it). The rooms write through the shared module weft_sqlite, which runs
 * SQLite on a thread of its own and groups the writes that arrive while a
 * commit runs into the next transaction; chat_store_append() returns once
 * the rows are committed, so a room acks a message only after that. A
 * room loads its last seq and recent history from here when it is made.
 */
#ifndef CHAT_STORE_H
#define CHAT_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "message.h"

typedef struct chat_store chat_store;

/** Opens (creating it when missing) the store at path, from a task.
 * Returns 0 and *out, or an error with a sentence in why. */
int chat_store_open(const char *path, chat_store **out, char *why,
                    size_t why_len);

/** Closes the store once no room uses it. NULL is ignored. */
void chat_store_close(chat_store *s);

/** Reads room's last seq into *last_seq and its up to max most recent
 * messages, oldest first, into *msgs (n of them in *n; unreference each
 * and free the array). Returns 0 or an error. */
int chat_store_load(chat_store *s, const char *room, size_t max,
                    int64_t *last_seq, chat_buf ***msgs, size_t *n);

/** Reads room's messages with after < seq <= upto, oldest first, at most
 * max of them and, past the first, at most max_bytes of text, into *msgs
 * (n of them in *n; unreference each and free the array); *more is 1 when
 * the page was full and more rows follow. Returns 0 or an error. */
int chat_store_range(chat_store *s, const char *room, int64_t after,
                     int64_t upto, size_t max, size_t max_bytes,
                     chat_buf ***msgs, size_t *n, int *more);

/** Writes n messages of room (each with its seq) and returns once they
 * are committed: 0, or the error (then none of them is stored). */
int chat_store_append(chat_store *s, const char *room, chat_buf *const *msgs,
                      size_t n);

#endif /* CHAT_STORE_H */
