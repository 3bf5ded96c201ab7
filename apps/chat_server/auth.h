/* auth.h: who may speak, by HS256 JSON Web Tokens (--auth-secret-file).
 *
 * A token is header.payload.signature in base64url without padding. The
 * header must say "alg":"HS256" (anything else, "none" included, is
 * refused); the signature is HMAC-SHA256 of "header.payload" with the
 * secret, compared in constant time; the payload must have "sub" (the
 * nickname) and "exp" (seconds since the epoch, not passed), and may have
 * "rooms", a list of the only rooms its holder may join.
 */
#ifndef CHAT_AUTH_H
#define CHAT_AUTH_H

#include <stddef.h>
#include <stdint.h>

typedef struct chat_auth chat_auth;

/** What a valid token says. */
typedef struct chat_claims {
  char sub[64];
  int64_t exp;
  int restricted; /* non-zero: only the rooms below */
  char **rooms;
  size_t n_rooms;
} chat_claims;

/** Reads the secret from path (its bytes, without a final newline).
 * Returns NULL with the reason in why when it cannot be used. */
chat_auth *chat_auth_load(const char *path, char *why, size_t why_len);

void chat_auth_free(chat_auth *a);

/** Checks token at now_s (seconds since the epoch). Returns 0 and fills
 * *out (free it with chat_claims_free()), or -1 with a reason in *why. */
int chat_auth_verify(const chat_auth *a, const char *token, int64_t now_s,
                     chat_claims *out, const char **why);

/** Non-zero when the claims let their holder join room. */
int chat_claims_allow(const chat_claims *c, const char *room);

void chat_claims_free(chat_claims *c);

#endif /* CHAT_AUTH_H */
