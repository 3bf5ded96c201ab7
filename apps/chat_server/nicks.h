/* nicks.h: the nickname registry.
 *
 * A nickname belongs to at most one connection at a time; the registry
 * holds a reference to that connection, so that a direct message can be
 * queued for it from any executor.
 */
#ifndef CHAT_NICKS_H
#define CHAT_NICKS_H

#include "conn.h"

/** Non-zero when nick is 1 to 32 characters of A-Za-z0-9_-. */
int chat_nick_valid(const char *nick);

/** Gives nick to c. Returns 0, UV_EEXIST when it is taken, or UV_ENOMEM. */
int chat_nick_claim(const char *nick, chat_conn *c);

/** Releases nick if c holds it. */
void chat_nick_release(const char *nick, chat_conn *c);

/** The connection holding nick, with a reference for the caller, or NULL. */
chat_conn *chat_nick_find(const char *nick);

/** The nicks held now (malloc'ed copies in a malloc'ed array of *n). */
char **chat_nicks_list(size_t *n);

/** Frees the registry (at exit, once no connection is left). */
void chat_nicks_free(void);

#endif /* CHAT_NICKS_H */
