/* hash.c: the digests. SHA-2, SHA-1, MD5 and BLAKE2b through OpenSSL's EVP
 * (which uses the CPU's SHA extensions where it has them), XXH128 from
 * libxxhash, BLAKE3 from its official C implementation.
 *
 * A file is read in FP_READ_BUF blocks into the worker's own buffer and
 * every selected digest is updated from it, so memory per worker is one
 * buffer and the contexts, whatever the file's size. These functions run
 * on libuv's thread pool (weft_blocking), never on the loop.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <xxhash.h>

#include "blake3.h"
#include "fp.h"

static const struct {
  const char *name, *tag, *evp;
  int hex_len;
} alg_info[FP_ALG_COUNT] = {
    [FP_SHA256] = {"sha256", "SHA256", "SHA256", 64},
    [FP_SHA512] = {"sha512", "SHA512", "SHA512", 128},
    [FP_SHA1] = {"sha1", "SHA1", "SHA1", 40},
    [FP_MD5] = {"md5", "MD5", "MD5", 32},
    [FP_BLAKE2B] = {"blake2b", "BLAKE2b", "BLAKE2B-512", 128},
    [FP_XXH128] = {"xxh128", "XXH128", NULL, 32},
    [FP_BLAKE3] = {"blake3", "BLAKE3", NULL, 64},
};

/* Fetched once: an implicit fetch on every EVP_DigestInit costs more than
 * hashing a small file. */
static EVP_MD *evp_mds[FP_ALG_COUNT];

const char *fp_alg_name(fp_alg a) { return alg_info[a].name; }
const char *fp_alg_tag(fp_alg a) { return alg_info[a].tag; }
int fp_alg_hex_len(fp_alg a) { return alg_info[a].hex_len; }

int fp_alg_from_tag(const char *tag, size_t len) {
  for (int a = 0; a < FP_ALG_COUNT; a++)
    if (strlen(alg_info[a].tag) == len &&
        (strncmp(alg_info[a].tag, tag, len) == 0 ||
         strncmp(alg_info[a].name, tag, len) == 0))
      return a;
  return -1;
}

int fp_algs_parse(const char *text, fp_alg *algs, char *why, size_t why_len) {
  int n = 0;
  const char *p = text;
  while (*p) {
    size_t len = strcspn(p, ",");
    int found = -1;
    for (int a = 0; a < FP_ALG_COUNT; a++)
      if (strlen(alg_info[a].name) == len &&
          strncmp(alg_info[a].name, p, len) == 0)
        found = a;
    if (found < 0) {
      snprintf(why, why_len,
               "unknown algorithm \"%.*s\" (sha256, sha512, sha1, md5, "
               "blake2b, xxh128, blake3)",
               (int)len, p);
      return -1;
    }
    for (int i = 0; i < n; i++)
      if (algs[i] == (fp_alg)found) {
        snprintf(why, why_len, "\"%.*s\" is given twice", (int)len, p);
        return -1;
      }
    algs[n++] = (fp_alg)found;
    p += len;
    if (*p == ',') p++;
  }
  if (n == 0) {
    snprintf(why, why_len, "no algorithm given");
    return -1;
  }
  return n;
}

int fp_hash_init(void) {
  for (int a = 0; a < FP_ALG_COUNT; a++) {
    if (alg_info[a].evp == NULL) continue;
    evp_mds[a] = EVP_MD_fetch(NULL, alg_info[a].evp, NULL);
    if (evp_mds[a] == NULL) {
      fp_error("OpenSSL has no %s digest", alg_info[a].evp);
      return -1;
    }
  }
  return 0;
}

void fp_hash_cleanup(void) {
  for (int a = 0; a < FP_ALG_COUNT; a++) {
    EVP_MD_free(evp_mds[a]);
    evp_mds[a] = NULL;
  }
}

struct fp_hasher {
  fp_alg algs[FP_MAX_ALGS];
  int n;
  EVP_MD_CTX *evp[FP_MAX_ALGS];
  XXH3_state_t *xxh;
  blake3_hasher b3;
  unsigned char *buf;
};

fp_hasher *fp_hasher_new(const fp_alg *algs, int n) {
  fp_hasher *h = calloc(1, sizeof *h);
  if (h == NULL) return NULL;
  h->n = n;
  memcpy(h->algs, algs, (size_t)n * sizeof *algs);
  h->buf = malloc(FP_READ_BUF);
  int ok = h->buf != NULL;
  for (int i = 0; i < n && ok; i++) {
    if (evp_mds[algs[i]] != NULL) {
      h->evp[i] = EVP_MD_CTX_new();
      ok = h->evp[i] != NULL;
    } else if (algs[i] == FP_XXH128) {
      h->xxh = XXH3_createState();
      ok = h->xxh != NULL;
    }
  }
  if (!ok) {
    fp_hasher_free(h);
    return NULL;
  }
  return h;
}

void fp_hasher_free(fp_hasher *h) {
  if (h == NULL) return;
  for (int i = 0; i < h->n; i++) EVP_MD_CTX_free(h->evp[i]);
  if (h->xxh) XXH3_freeState(h->xxh);
  free(h->buf);
  free(h);
}

static void to_hex(const unsigned char *bin, size_t len, char *out) {
  static const char digits[] = "0123456789abcdef";
  for (size_t i = 0; i < len; i++) {
    out[2 * i] = digits[bin[i] >> 4];
    out[2 * i + 1] = digits[bin[i] & 15];
  }
  out[2 * len] = '\0';
}

static int hasher_reset(fp_hasher *h) {
  for (int i = 0; i < h->n; i++) {
    if (h->evp[i] != NULL) {
      if (!EVP_DigestInit_ex2(h->evp[i], evp_mds[h->algs[i]], NULL))
        return UV_EINVAL;
    } else if (h->algs[i] == FP_XXH128) {
      XXH3_128bits_reset(h->xxh);
    } else {
      blake3_hasher_init(&h->b3);
    }
  }
  return 0;
}

static void hasher_update(fp_hasher *h, const void *data, size_t len) {
  for (int i = 0; i < h->n; i++) {
    if (h->evp[i] != NULL)
      EVP_DigestUpdate(h->evp[i], data, len);
    else if (h->algs[i] == FP_XXH128)
      XXH3_128bits_update(h->xxh, data, len);
    else
      blake3_hasher_update(&h->b3, data, len);
  }
}

static void hasher_final(fp_hasher *h, fp_entry *e) {
  for (int i = 0; i < h->n; i++) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (h->evp[i] != NULL) {
      EVP_DigestFinal_ex(h->evp[i], md, &len);
    } else if (h->algs[i] == FP_XXH128) {
      XXH128_canonical_t c;
      XXH128_canonicalFromHash(&c, XXH3_128bits_digest(h->xxh));
      memcpy(md, c.digest, sizeof c.digest);
      len = sizeof c.digest;
    } else {
      blake3_hasher_finalize(&h->b3, md, BLAKE3_OUT_LEN);
      len = BLAKE3_OUT_LEN;
    }
    to_hex(md, len, e->digest[i]);
  }
}

int fp_hash_file(fp_hasher *h, fp_entry *e, int follow) {
  int fd = e->is_stdin ? dup(STDIN_FILENO)
                       : open(e->path,
                              O_RDONLY | O_CLOEXEC | (follow ? 0 : O_NOFOLLOW));
  if (fd < 0) return e->err = -errno;
  struct stat st;
  if (fstat(fd, &st) != 0 || (!S_ISREG(st.st_mode) && !e->is_stdin)) {
    int err = S_ISDIR(st.st_mode) ? UV_EISDIR : UV_EINVAL;
    close(fd);
    return e->err = err;
  }
  /* A file that fits the buffer is read in one call: no read-ahead hint,
   * and a short read of a regular file is its end (no second read for the
   * 0). System calls are what small files cost, and on the benchmarks' VM
   * each one traps to the hypervisor. */
  int regular = S_ISREG(st.st_mode);
  if (!regular || (uint64_t)st.st_size > FP_READ_BUF) fp_read_sequential(fd);
  int err = hasher_reset(h);
  uint64_t total = 0;
  while (err == 0) {
    ssize_t n = read(fd, h->buf, FP_READ_BUF);
    if (n < 0) {
      if (errno == EINTR) continue;
      err = -errno;
      break;
    }
    if (n == 0) break;
    hasher_update(h, h->buf, (size_t)n);
    fp_progress_read((uint64_t)n);
    total += (uint64_t)n;
    if (regular && (size_t)n < FP_READ_BUF && total >= (uint64_t)st.st_size)
      break;
  }
  close(fd);
  if (err != 0) return e->err = err;
  hasher_final(h, e);
  e->size = total;
  e->mtime_ns = fp_stat_mtime_ns(&st);
  e->state = FP_ST_DONE;
  return 0;
}
