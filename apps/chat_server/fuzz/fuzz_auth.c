/* fuzz_auth: JSON Web Token checking under a fuzzer.
 *
 * An input is a header and a payload (raw JSON, one per line). The target
 * encodes them in base64url and signs them with the server's secret, so
 * that the fuzzer reaches the claims (sub, exp, rooms) as well as the
 * header; the input's bytes are also checked as a token as they are, and
 * with a signature that is wrong. See cmake/weftFuzz.cmake for the builds.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "../auth.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
void weft_fuzz_replay_done(void);

static const char fuzz_secret[] = "fuzz-secret-0123456789";
static chat_auth *fuzz_auth;

/* Loads the secret from a temporary file, as the server does. */
int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  char path[] = "/tmp/weft-fuzz-auth-XXXXXX";
  int fd = mkstemp(path);
  if (fd < 0) abort();
  if (write(fd, fuzz_secret, sizeof fuzz_secret - 1) !=
      (ssize_t)(sizeof fuzz_secret - 1))
    abort();
  close(fd);
  char why[256];
  fuzz_auth = chat_auth_load(path, why, sizeof why);
  unlink(path);
  if (fuzz_auth == NULL) {
    fprintf(stderr, "fuzz_auth: %s\n", why);
    abort();
  }
  return 0;
}

void weft_fuzz_replay_done(void) {
  chat_auth_free(fuzz_auth);
  fuzz_auth = NULL;
}

/* Appends len bytes of in, base64url without padding, at out; returns the
 * end. */
static char *b64url(const unsigned char *in, size_t len, char *out) {
  static const char abc[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  size_t i = 0;
  for (; i + 2 < len; i += 3) {
    uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
    *out++ = abc[v >> 18];
    *out++ = abc[(v >> 12) & 63];
    *out++ = abc[(v >> 6) & 63];
    *out++ = abc[v & 63];
  }
  if (len - i == 1) {
    uint32_t v = (uint32_t)in[i] << 16;
    *out++ = abc[v >> 18];
    *out++ = abc[(v >> 12) & 63];
  } else if (len - i == 2) {
    uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
    *out++ = abc[v >> 18];
    *out++ = abc[(v >> 12) & 63];
    *out++ = abc[(v >> 6) & 63];
  }
  return out;
}

static void check(const char *token) {
  chat_claims claims;
  const char *why = NULL;
  if (chat_auth_verify(fuzz_auth, token, 1700000000, &claims, &why) == 0) {
    (void)chat_claims_allow(&claims, "lobby");
    (void)chat_claims_allow(&claims, "");
    chat_claims_free(&claims);
  } else if (why == NULL) {
    fprintf(stderr, "fuzz_auth: refused without a reason\n");
    abort();
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *raw = malloc(size + 1);
  char *token = malloc(size * 2 + 128);
  if (raw == NULL || token == NULL) {
    free(raw);
    free(token);
    return 0;
  }
  memcpy(raw, data, size);
  raw[size] = '\0';
  check(raw);
  const uint8_t *nl = memchr(data, '\n', size);
  size_t hl = nl ? (size_t)(nl - data) : size;
  char *p = b64url(data, hl, token);
  *p++ = '.';
  if (nl != NULL) p = b64url(nl + 1, size - hl - 1, p);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_len = 0;
  if (HMAC(EVP_sha256(), fuzz_secret, (int)(sizeof fuzz_secret - 1),
           (const unsigned char *)token, (size_t)(p - token), mac,
           &mac_len) != NULL) {
    *p++ = '.';
    char *sig = p;
    p = b64url(mac, mac_len, p);
    *p = '\0';
    check(token);
    sig[0] = sig[0] == 'A' ? 'B' : 'A'; /* a wrong signature */
    check(token);
  }
  free(raw);
  free(token);
  return 0;
}
