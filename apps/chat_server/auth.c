/* auth.c: HS256 JSON Web Tokens with OpenSSL's HMAC and cJSON. */
#include "auth.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "json.h"

/* Tokens longer than this are refused before any work. */
#define AUTH_MAX_TOKEN 8192

struct chat_auth {
  unsigned char *key;
  size_t key_len;
};

chat_auth *chat_auth_load(const char *path, char *why, size_t why_len) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) {
    snprintf(why, why_len, "%s: %s", path, strerror(errno));
    return NULL;
  }
  unsigned char buf[4096];
  size_t n = fread(buf, 1, sizeof buf, f);
  int big = !feof(f);
  fclose(f);
  while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r')) n--;
  if (big || n < 16) {
    snprintf(why, why_len,
             "%s: the secret must be 16 bytes to 4 KiB (found %s)", path,
             big ? "more" : "fewer");
    return NULL;
  }
  chat_auth *a = calloc(1, sizeof *a);
  if (a == NULL || (a->key = malloc(n)) == NULL) {
    free(a);
    snprintf(why, why_len, "out of memory");
    return NULL;
  }
  memcpy(a->key, buf, n);
  a->key_len = n;
  OPENSSL_cleanse(buf, sizeof buf);
  return a;
}

void chat_auth_free(chat_auth *a) {
  if (a == NULL) return;
  OPENSSL_cleanse(a->key, a->key_len);
  free(a->key);
  free(a);
}

/* Decodes base64url without padding into out (room for len*3/4+3 bytes).
 * Returns the number of bytes, or -1 for a character outside the
 * alphabet or a length no encoder makes. */
static long b64url_decode(const char *in, size_t len, unsigned char *out) {
  if (len % 4 == 1) return -1;
  uint32_t acc = 0;
  int bits = 0;
  long n = 0;
  for (size_t i = 0; i < len; i++) {
    char ch = in[i];
    int v;
    if (ch >= 'A' && ch <= 'Z') v = ch - 'A';
    else if (ch >= 'a' && ch <= 'z') v = ch - 'a' + 26;
    else if (ch >= '0' && ch <= '9') v = ch - '0' + 52;
    else if (ch == '-') v = 62;
    else if (ch == '_') v = 63;
    else return -1;
    acc = (acc << 6) | (uint32_t)v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[n++] = (unsigned char)(acc >> bits);
    }
  }
  return n;
}

/* Decodes one part of a token and parses it as a JSON object. */
static cJSON *part_json(const char *in, size_t len) {
  unsigned char *raw = malloc(len * 3 / 4 + 4);
  if (raw == NULL) return NULL;
  long n = b64url_decode(in, len, raw);
  cJSON *doc = n > 0 ? app_json_parse((char *)raw, (size_t)n, 8, NULL) : NULL;
  free(raw);
  if (doc != NULL && !cJSON_IsObject(doc)) {
    cJSON_Delete(doc);
    doc = NULL;
  }
  return doc;
}

int chat_auth_verify(const chat_auth *a, const char *token, int64_t now_s,
                     chat_claims *out, const char **why) {
  memset(out, 0, sizeof *out);
  size_t len = strlen(token);
  const char *dot1 = memchr(token, '.', len);
  const char *dot2 = dot1 ? memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - token)) : NULL;
  if (len > AUTH_MAX_TOKEN || dot1 == NULL || dot2 == NULL ||
      memchr(dot2 + 1, '.', len - (size_t)(dot2 + 1 - token)) != NULL) {
    *why = "the token is not a JWT";
    return -1;
  }
  /* The header: HS256 only. */
  cJSON *header = part_json(token, (size_t)(dot1 - token));
  const cJSON *alg = header ? cJSON_GetObjectItemCaseSensitive(header, "alg") : NULL;
  int hs256 = alg != NULL && cJSON_IsString(alg) && strcmp(alg->valuestring, "HS256") == 0;
  cJSON_Delete(header);
  if (!hs256) {
    *why = "the token's alg must be HS256";
    return -1;
  }
  /* The signature, before anything in the payload is believed. */
  unsigned char sig[64];
  size_t sig_len = len - (size_t)(dot2 + 1 - token);
  long n = sig_len <= 80 ? b64url_decode(dot2 + 1, sig_len, sig) : -1;
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_len = 0;
  if (HMAC(EVP_sha256(), a->key, (int)a->key_len, (const unsigned char *)token,
           (size_t)(dot2 - token), mac, &mac_len) == NULL ||
      n != (long)mac_len || CRYPTO_memcmp(sig, mac, mac_len) != 0) {
    *why = "the token's signature is wrong";
    return -1;
  }
  cJSON *payload = part_json(dot1 + 1, (size_t)(dot2 - dot1 - 1));
  if (payload == NULL) {
    *why = "the token's payload is not a JSON object";
    return -1;
  }
  const cJSON *sub = cJSON_GetObjectItemCaseSensitive(payload, "sub");
  const cJSON *exp = cJSON_GetObjectItemCaseSensitive(payload, "exp");
  const cJSON *rooms = cJSON_GetObjectItemCaseSensitive(payload, "rooms");
  int r = -1;
  if (!cJSON_IsString(sub) || strlen(sub->valuestring) >= sizeof out->sub) {
    *why = "the token has no usable sub";
  } else if (!cJSON_IsNumber(exp)) {
    *why = "the token has no exp";
  } else if (exp->valuedouble <= (double)now_s) {
    *why = "the token has expired";
  } else if (rooms != NULL && !cJSON_IsArray(rooms)) {
    *why = "the token's rooms claim is not a list";
  } else {
    snprintf(out->sub, sizeof out->sub, "%s", sub->valuestring);
    /* exp is after now; a later one than int64_t holds stays the
     * largest (converting it would be undefined). */
    out->exp = exp->valuedouble < 9.2e18 ? (int64_t)exp->valuedouble : INT64_MAX;
    r = 0;
    if (rooms != NULL) {
      out->restricted = 1;
      int k = cJSON_GetArraySize(rooms);
      out->rooms = calloc(k > 0 ? (size_t)k : 1, sizeof *out->rooms);
      const cJSON *item;
      cJSON_ArrayForEach(item, rooms) {
        if (out->rooms == NULL) break;
        if (!cJSON_IsString(item)) {
          *why = "the token's rooms claim holds something that is not a string";
          r = -1;
          break;
        }
        out->rooms[out->n_rooms] = strdup(item->valuestring);
        if (out->rooms[out->n_rooms] != NULL) out->n_rooms++;
      }
      if (out->rooms == NULL) {
        *why = "out of memory";
        r = -1;
      }
    }
  }
  cJSON_Delete(payload);
  if (r != 0) chat_claims_free(out);
  return r;
}

int chat_claims_allow(const chat_claims *c, const char *room) {
  if (!c->restricted) return 1;
  for (size_t i = 0; i < c->n_rooms; i++)
    if (strcmp(c->rooms[i], room) == 0) return 1;
  return 0;
}

void chat_claims_free(chat_claims *c) {
  for (size_t i = 0; i < c->n_rooms; i++) free(c->rooms[i]);
  free(c->rooms);
  memset(c, 0, sizeof *c);
}
