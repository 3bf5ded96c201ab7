/* compress.c: compress and decompress, gzip (libdeflate) and zstd.
 *
 * A file up to --block-size is compressed in one piece by the worker that
 * took its job. A bigger one is a stream of blocks through its own ordered
 * map: a reader task reads a block at a time, `jobs` workers compress them
 * in parallel, a writer appends them in order. gzip blocks are
 * concatenated members (RFC 1952 allows them; gzip -d reads them as one
 * file), zstd blocks independent frames. Each member carries an extra
 * field "WF" with its compressed and uncompressed sizes (as BGZF does), so
 * `decompress` can cut our own .gz files into members without inflating
 * them first and decompress the members in parallel; zstd frames record
 * their content size, and are cut the same way. Files from other tools are
 * decompressed as one stream (zlib, libzstd).
 *
 * Memory: the blocks of a big file in flight are bounded by its engine's
 * slots, which share ENGINE_BUDGET_MIB between the files in flight.
 * Outputs go through temp.c: hidden temporary file, fsync, rename.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libdeflate.h>
#include <zlib.h>
#include <zstd.h>
#if defined(FP_HAVE_ISAL)
#include <isa-l/igzip_lib.h>
#endif

#include "fp.h"

#define GZ_HEADER 24 /* 10 bytes, XLEN, and the 12-byte "WF" field */

/* A worker's codec state: contexts and buffers reused between jobs. */
typedef struct codec_state {
  struct libdeflate_compressor *dc;
  struct libdeflate_decompressor *dd;
  ZSTD_CCtx *zc;
  ZSTD_DCtx *zd;
#if defined(FP_HAVE_ISAL)
  struct inflate_state *isal; /* ISA-L's inflate (about 80 KiB) */
#endif
  unsigned char *in, *out;
  size_t in_cap, out_cap;
} codec_state;

static void state_free(codec_state *s);
static void buf_pool_free(void);

/* Idle codec states are shared by the jobs' workers (on the loop) and the
 * engines' workers (on the thread pool): taken and given under a lock. */
static pthread_mutex_t state_lock = PTHREAD_MUTEX_INITIALIZER;

static codec_state *state_take(fp_run *r) {
  codec_state *s = NULL;
  pthread_mutex_lock(&state_lock);
  if (r->codec_states == NULL) {
    /* The workers of the jobs, and of the blocks of each big file. */
    r->cap_codec_states = r->jobs * (2 * r->jobs + 1) + 2;
    r->codec_states = calloc((size_t)r->cap_codec_states, sizeof(void *));
  }
  if (r->codec_states != NULL && r->n_codec_states > 0)
    s = r->codec_states[--r->n_codec_states];
  int fresh = r->codec_states != NULL && s == NULL;
  pthread_mutex_unlock(&state_lock);
  return fresh ? calloc(1, sizeof(codec_state)) : s;
}

static void state_give(fp_run *r, codec_state *s) {
  pthread_mutex_lock(&state_lock);
  int keep = r->n_codec_states < r->cap_codec_states;
  if (keep) r->codec_states[r->n_codec_states++] = s;
  pthread_mutex_unlock(&state_lock);
  if (!keep) state_free(s);
}

static void state_free(codec_state *s) {
  if (s->dc) libdeflate_free_compressor(s->dc);
  if (s->dd) libdeflate_free_decompressor(s->dd);
  ZSTD_freeCCtx(s->zc);
  ZSTD_freeDCtx(s->zd);
#if defined(FP_HAVE_ISAL)
  free(s->isal);
#endif
  free(s->in);
  free(s->out);
  free(s);
}

void fp_compress_cleanup(fp_run *r) {
  for (int i = 0; i < r->n_codec_states; i++) state_free(r->codec_states[i]);
  free(r->codec_states);
  r->codec_states = NULL;
  buf_pool_free();
}

static int grow(unsigned char **buf, size_t *cap, size_t need) {
  if (*cap >= need) return 0;
  unsigned char *b = realloc(*buf, need);
  if (b == NULL) return UV_ENOMEM;
  *buf = b;
  *cap = need;
  return 0;
}

static int level_of(fp_run *r) {
  int64_t l = r->cfg->level;
  if (l < 0) return r->codec == FP_CODEC_ZSTD ? 3 : 6;
  if (r->codec == FP_CODEC_GZIP && l > 12) return 12;
  return (int)l;
}

static size_t bound_of(fp_run *r, codec_state *s, size_t n) {
  if (r->codec == FP_CODEC_ZSTD) return ZSTD_compressBound(n);
  return GZ_HEADER + 8 + libdeflate_deflate_compress_bound(s->dc, n);
}

static void put32(unsigned char *p, uint32_t v) {
  p[0] = (unsigned char)v, p[1] = (unsigned char)(v >> 8);
  p[2] = (unsigned char)(v >> 16), p[3] = (unsigned char)(v >> 24);
}

static uint32_t get32(const unsigned char *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
         (uint32_t)p[3] << 24;
}

/* Compresses n bytes of in into out (room for bound_of()). Returns the
 * compressed size, or 0 on failure. */
static size_t compress_block(fp_run *r, codec_state *s, const void *in,
                             size_t n, unsigned char *out, size_t cap) {
  if (r->codec == FP_CODEC_ZSTD) {
    size_t z = ZSTD_compressCCtx(s->zc, out, cap, in, n, level_of(r));
    return ZSTD_isError(z) ? 0 : z;
  }
  size_t c = libdeflate_deflate_compress(s->dc, in, n, out + GZ_HEADER,
                                         cap - GZ_HEADER - 8);
  if (c == 0) return 0;
  static const unsigned char head[12] = {0x1f, 0x8b, 8, 4, 0,  0,
                                         0,    0,    0, 3, 12, 0};
  memcpy(out, head, sizeof head);
  out[12] = 'W', out[13] = 'F', out[14] = 8, out[15] = 0;
  put32(out + 16, (uint32_t)c);
  put32(out + 20, (uint32_t)n);
  put32(out + GZ_HEADER + c, libdeflate_crc32(0, in, n));
  put32(out + GZ_HEADER + c + 4, (uint32_t)n);
  return GZ_HEADER + c + 8;
}

static int state_ready(fp_run *r, codec_state *s, int decompress) {
  if (!decompress && r->codec == FP_CODEC_GZIP && s->dc == NULL)
    s->dc = libdeflate_alloc_compressor(level_of(r));
  if (!decompress && r->codec == FP_CODEC_ZSTD && s->zc == NULL)
    s->zc = ZSTD_createCCtx();
  if (decompress && s->dd == NULL) s->dd = libdeflate_alloc_decompressor();
  if (decompress && s->zd == NULL) s->zd = ZSTD_createDCtx();
#if defined(FP_HAVE_ISAL)
  if (decompress && s->isal == NULL) s->isal = malloc(sizeof *s->isal);
  if (decompress && s->isal == NULL) return UV_ENOMEM;
#endif
  if (decompress ? (s->dd == NULL || s->zd == NULL)
                 : (s->dc == NULL && s->zc == NULL))
    return UV_ENOMEM;
  return 0;
}

/* ---- Output paths -------------------------------------------------------- */

static int ends_with(const char *s, const char *suffix) {
  size_t a = strlen(s), b = strlen(suffix);
  return a >= b && memcmp(s + a - b, suffix, b) == 0;
}

/* Creates the folders above path (like mkdir -p). */
static int make_parents(const char *path) {
  char *p = strdup(path);
  if (p == NULL) return UV_ENOMEM;
  for (char *s = p + 1; *s; s++) {
    if (*s != '/') continue;
    *s = '\0';
    if (mkdir(p, 0755) != 0 && errno != EEXIST) {
      int err = -errno;
      free(p);
      return err;
    }
    *s = '/';
  }
  free(p);
  return 0;
}

char *fp_output_path(fp_run *r, fp_entry *e) {
  const char *src = e->path;
  size_t n = strlen(src);
  const char *suffix = "";
  if (r->cmd == FP_COMPRESS) {
    suffix = r->codec == FP_CODEC_ZSTD ? ".zst" : ".gz";
  } else if (ends_with(src, ".gz")) {
    n -= 3;
  } else if (ends_with(src, ".zst")) {
    n -= 4;
  }
  const char *dir = r->cfg->output;
  if (dir != NULL) {
    while (*src == '/') src++, n--;
    while (strncmp(src, "./", 2) == 0) src += 2, n -= 2;
  }
  size_t dl = dir ? strlen(dir) : 0;
  char *out = malloc(dl + 1 + n + strlen(suffix) + 1);
  if (out == NULL) return NULL;
  if (dir)
    sprintf(out, "%s/%.*s%s", dir, (int)n, src, suffix);
  else
    sprintf(out, "%.*s%s", (int)n, src, suffix);
  return out;
}

/* ---- One piece: small files ---------------------------------------------- */

typedef struct small_call {
  fp_run *r;
  codec_state *s;
  fp_job *job;
} small_call;

/* Reads up to len bytes at the current position. Returns the count or an
 * error. */
static ssize_t read_full(int fd, void *buf, size_t len) {
  size_t got = 0;
  while (got < len) {
    ssize_t n = read(fd, (char *)buf + got, len - got);
    if (n < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    if (n == 0) break;
    got += (size_t)n;
  }
  fp_progress_read(got);
  return (ssize_t)got;
}

/* Opens an output: the temporary file beside dst, or standard output (with
 * -c, or for standard input). */
static int open_out(fp_run *r, const char *dst, char **tmp, int *fd) {
  *tmp = NULL;
  if (r->cfg->to_stdout || dst == NULL) {
    *fd = STDOUT_FILENO;
    return 0;
  }
  if (r->cfg->output != NULL) {
    int err = make_parents(dst);
    if (err != 0) return err;
  }
  *tmp = fp_temp_create(r, dst, fd);
  return *tmp ? 0 : -errno;
}

/* Finishes an output: rename into place (and --rm), or remove on error. */
static int close_out(fp_run *r, fp_entry *e, const char *dst, char *tmp, int fd,
                     int err) {
  if (tmp == NULL) return err; /* standard output */
  if (err != 0) {
    close(fd);
    unlink(tmp);
    fp_temp_forget(tmp);
    free(tmp);
    return err;
  }
  err = fp_temp_commit(r, fd, tmp, dst);
  if (err == 0 && r->cfg->rm && unlink(e->path) != 0) err = -errno;
  return err;
}

static int decompress_fd(fp_run *r, codec_state *s, int in, int out,
                         uint64_t *written);

/* Compresses or decompresses a file in one piece (thread pool). */
static int one_file(fp_run *r, codec_state *s, fp_entry *e) {
  int decompress = r->cmd == FP_DECOMPRESS;
  int in =
      e->is_stdin ? dup(STDIN_FILENO) : open(e->path, O_RDONLY | O_CLOEXEC);
  if (in < 0) return -errno;
  fp_read_sequential(in);
  char *dst = e->is_stdin ? NULL : fp_output_path(r, e), *tmp = NULL;
  int fd = -1;
  int err = dst || e->is_stdin ? open_out(r, dst, &tmp, &fd) : UV_ENOMEM;
  if (err == 0 && decompress) {
    err = decompress_fd(r, s, in, fd, &e->out_size);
  } else if (err == 0) {
    /* The file may have grown since the walk: block by block to the end. */
    size_t block = (size_t)r->block_size;
    int first = 1;
    for (;;) {
      err = grow(&s->in, &s->in_cap,
                 e->size < block ? (size_t)e->size + 1 : block);
      if (err == 0) err = grow(&s->out, &s->out_cap, bound_of(r, s, s->in_cap));
      if (err != 0) break;
      ssize_t n = read_full(in, s->in, s->in_cap < block ? s->in_cap : block);
      if (n < 0) {
        err = (int)n;
        break;
      }
      if (n == 0 && !first) break;
      size_t c = compress_block(r, s, s->in, (size_t)n, s->out, s->out_cap);
      if (c == 0) {
        err = UV_EIO;
        break;
      }
      if ((err = fp_write_all(r, fd, s->out, c)) != 0) break;
      e->out_size += c;
      first = 0;
      if ((size_t)n < (s->in_cap < block ? s->in_cap : block)) break;
      if (r->stop) {
        err = UV_ECANCELED;
        break;
      }
    }
  }
  close(in);
  err = close_out(r, e, dst, tmp, fd, err);
  free(dst);
  return err;
}

static int small_blocking(void *arg) {
  small_call *c = arg;
  for (uint32_t i = 0; i < c->job->n && !c->r->stop; i++) {
    fp_entry *e = &c->job->entries[i];
    if (e->state != FP_ST_DO) continue;
    e->err = one_file(c->r, c->s, e);
    if (e->err == 0) e->state = FP_ST_DONE;
  }
  return 0;
}

/* ---- Blocks: big files --------------------------------------------------- */

/* Block buffers are recycled: a fresh mapping for every block would cost a
 * page fault per page (a fifth of the time of a gzip). Every buffer has the
 * size of the largest request so far, so that any buffer serves any block
 * and the buffers never outnumber the blocks in flight (which the slots
 * bound); smaller ones left from before are freed as they are met. */
#define BUF_KEEP 64

static pthread_mutex_t buf_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
  unsigned char *p;
  size_t cap;
} buf_pool[BUF_KEEP];
static int buf_count;
static size_t buf_size;

/* Points c at a buffer of at least len bytes. Returns 0 or UV_ENOMEM. */
static int buf_get(weft_chunk *c, size_t len) {
  pthread_mutex_lock(&buf_lock);
  if (len > buf_size) buf_size = len;
  size_t need = buf_size;
  for (int i = 0; i < buf_count;) {
    if (buf_pool[i].cap < need) {
      free(buf_pool[i].p); /* from before the size grew */
      buf_pool[i] = buf_pool[--buf_count];
      continue;
    }
    c->data = buf_pool[i].p;
    c->len = buf_pool[i].cap;
    buf_pool[i] = buf_pool[--buf_count];
    pthread_mutex_unlock(&buf_lock);
    return 0;
  }
  pthread_mutex_unlock(&buf_lock);
  c->data = malloc(need);
  c->len = need;
  return c->data ? 0 : UV_ENOMEM;
}

/* Gives c's buffer back (cap: its size as buf_get() made it). */
static void buf_put(weft_chunk *c, size_t cap) {
  if (c->data == NULL) return;
  pthread_mutex_lock(&buf_lock);
  if (buf_count < BUF_KEEP) {
    buf_pool[buf_count].p = c->data;
    buf_pool[buf_count].cap = cap;
    buf_count++;
    c->data = NULL;
  }
  pthread_mutex_unlock(&buf_lock);
  free(c->data);
  c->data = NULL;
  c->len = 0;
}

static void buf_pool_free(void) {
  pthread_mutex_lock(&buf_lock);
  for (int i = 0; i < buf_count; i++) free(buf_pool[i].p);
  buf_count = 0;
  pthread_mutex_unlock(&buf_lock);
}

/* A big file goes through an engine of its own: `jobs` workers on the
 * thread pool, each of which claims the next block, reads it (pread at
 * its offset; standard input and the units of a compressed file are read
 * in turn under the lock, since where the next one starts is known only
 * once the previous one is read), compresses or decompresses it into its
 * slot's output buffer, and hands it to the writer role: the worker whose
 * block is next in the output writes it and every finished block after it,
 * in order. No block goes through the event loop: the loop sees one call
 * per worker per file (2 x -j workers, see engine_run()). A slot holds a
 * block from its claim to its write;
 * the slots bound the memory (ENGINE_BUDGET_MIB over the files in flight),
 * and a worker that finds none free waits for the writer. */
#define ENGINE_BUDGET_MIB 48

enum { SLOT_FREE, SLOT_BUSY, SLOT_READY };

typedef struct slot {
  weft_chunk in, out;     /* raw (compress) or one member/frame (decompress) */
  size_t in_cap, out_cap; /* the buffers' sizes, for buf_put() */
  uint64_t idx;           /* the block's place in the output */
  uint64_t offset;        /* where it starts in the input (compress) */
  uint32_t raw;           /* decompress: the size it decompresses to */
  int state;
} slot;

typedef struct engine {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  fp_run *r;
  fp_entry *e;
  int in_fd, out_fd;
  int sequential;       /* read in turn under the lock (stdin, decompress) */
  uint64_t n_blocks;    /* compress from a file: blocks of its size */
  uint64_t next_claim;  /* the next block to claim */
  uint64_t read_offset; /* sequential: where the next unit starts */
  size_t last_frame;    /* decompress: the last zstd frame's size */
  int eof;              /* sequential: nothing more to claim */
  uint64_t next_write;  /* the next block the output takes */
  int writing;          /* a worker holds the writer role */
  slot *slots;
  int n_slots;
  int err;
  uint64_t out_size;
} engine;

/* Reads the next unit of a compressed file at e->read_offset into s (under
 * the lock). Returns 1 for a unit, 0 at the end, or an error. */
static int read_unit(engine *g, slot *s) {
  unsigned char head[GZ_HEADER];
  ssize_t n = pread(g->in_fd, head, sizeof head, (off_t)g->read_offset);
  if (n < 0) return -errno;
  if (n == 0) return 0;
  size_t total, bound;
  if (head[0] == 0x1f && head[1] == 0x8b) {
    if ((size_t)n < GZ_HEADER || head[3] != 4 || head[12] != 'W' ||
        head[13] != 'F')
      return FP_ECORRUPT;
    total = bound = GZ_HEADER + (size_t)get32(head + 16) + 8;
    s->raw = get32(head + 20);
  } else {
    unsigned long long size = ZSTD_getFrameContentSize(head, (size_t)n);
    if (size == ZSTD_CONTENTSIZE_ERROR || size == ZSTD_CONTENTSIZE_UNKNOWN ||
        size > (16u << 20))
      return FP_ECORRUPT;
    s->raw = (uint32_t)size;
    bound = ZSTD_compressBound((size_t)size);
    /* A zstd frame does not record its compressed size: read a quarter
     * more than the last frame took (one file's frames are alike), and the
     * rest only when that falls short. Reading the bound every time copied
     * about four times the file out of the page cache, under the lock. */
    total = g->last_frame ? g->last_frame + g->last_frame / 4 + 4096 : bound;
    if (total > bound) total = bound;
  }
  if (buf_get(&s->in, bound) != 0) return UV_ENOMEM;
  s->in_cap = s->in.len;
  n = pread(g->in_fd, s->in.data, total, (off_t)g->read_offset);
  if (n < 0) return -errno;
  if (head[0] != 0x1f) {
    size_t fs = ZSTD_findFrameCompressedSize(s->in.data, (size_t)n);
    if (ZSTD_isError(fs) && (size_t)n == total && total < bound) {
      ssize_t more = pread(g->in_fd, s->in.data + n, bound - total,
                           (off_t)(g->read_offset + (uint64_t)n));
      if (more < 0) return -errno;
      n += more;
      fs = ZSTD_findFrameCompressedSize(s->in.data, (size_t)n);
    }
    if (ZSTD_isError(fs)) return FP_ECORRUPT;
    n = (ssize_t)fs;
    g->last_frame = fs;
  } else if ((size_t)n != total) {
    return FP_ECORRUPT; /* truncated */
  }
  s->in.len = (size_t)n;
  g->read_offset += (uint64_t)n;
  fp_progress_read((uint64_t)n);
  return 1;
}

/* Inflates len bytes of one of our members' deflate data into out, which
 * takes exactly raw bytes, and sets *crc to the CRC-32 of what came out.
 * Returns 0, or FP_ECORRUPT. Where the build has ISA-L (Debian
 * libisal-dev), its inflate computes the CRC as it goes and costs less CPU
 * than libdeflate's inflate and CRC passes (on D4, igzip -d takes 0.78 CPU
 * s to file_processor's 0.96 with libdeflate); elsewhere libdeflate. */
static int inflate_member(codec_state *cs, const unsigned char *in, size_t len,
                          unsigned char *out, uint32_t raw, uint32_t *crc) {
#if defined(FP_HAVE_ISAL)
  struct inflate_state *st = cs->isal;
  isal_inflate_init(st);
  st->crc_flag = ISAL_GZIP_NO_HDR;
  st->next_in = (uint8_t *)in; /* ISA-L only reads it */
  st->avail_in = (uint32_t)len;
  st->next_out = out;
  st->avail_out = raw;
  if (isal_inflate_stateless(st) != ISAL_DECOMP_OK || st->total_out != raw)
    return FP_ECORRUPT;
  *crc = st->crc;
#else
  size_t actual;
  if (libdeflate_deflate_decompress(cs->dd, in, len, out, raw, &actual) !=
          LIBDEFLATE_SUCCESS ||
      actual != raw)
    return FP_ECORRUPT;
  *crc = libdeflate_crc32(0, out, raw);
#endif
  return 0;
}

/* Compresses or decompresses the block in s into its output buffer. */
static int process_slot(fp_run *r, codec_state *cs, slot *s) {
  if (r->cmd == FP_COMPRESS) {
    size_t cap = bound_of(r, cs, s->in.len);
    if (buf_get(&s->out, cap) != 0) return UV_ENOMEM;
    s->out_cap = s->out.len;
    s->out.len = compress_block(r, cs, s->in.data, s->in.len, s->out.data, cap);
    return s->out.len ? 0 : UV_EIO;
  }
  if (buf_get(&s->out, s->raw ? s->raw : 1) != 0) return UV_ENOMEM;
  s->out_cap = s->out.len;
  s->out.len = s->raw;
  if (s->in.data[0] == 0x1f) {
    uint32_t crc;
    if (inflate_member(cs, s->in.data + GZ_HEADER, s->in.len - GZ_HEADER - 8,
                       s->out.data, s->raw, &crc) != 0 ||
        crc != get32(s->in.data + s->in.len - 8))
      return FP_ECORRUPT;
    return 0;
  }
  size_t z =
      ZSTD_decompressDCtx(cs->zd, s->out.data, s->raw, s->in.data, s->in.len);
  return ZSTD_isError(z) || z != s->raw ? FP_ECORRUPT : 0;
}

/* Claims the next block into a free slot (under the lock; sequential reads
 * happen here too). Returns the slot, or NULL when there is nothing more
 * to claim or an error stopped the engine. May wait for a free slot. */
static slot *claim(engine *g) {
  fp_run *r = g->r;
  for (;;) {
    if (g->err != 0) return NULL;
    if (r->stop) {
      g->err = UV_ECANCELED;
      return NULL;
    }
    if (g->sequential ? g->eof : g->next_claim >= g->n_blocks) return NULL;
    slot *s = NULL;
    for (int i = 0; i < g->n_slots && s == NULL; i++)
      if (g->slots[i].state == SLOT_FREE) s = &g->slots[i];
    if (s == NULL) {
      pthread_cond_wait(&g->cv, &g->mu);
      continue;
    }
    s->idx = g->next_claim;
    s->state = SLOT_BUSY;
    if (!g->sequential) {
      s->offset = s->idx * r->block_size;
      g->next_claim++;
      return s;
    }
    int rc;
    if (r->cmd == FP_COMPRESS) { /* standard input */
      rc = buf_get(&s->in, (size_t)r->block_size);
      s->in_cap = s->in.len;
      ssize_t n =
          rc == 0 ? read_full(g->in_fd, s->in.data, (size_t)r->block_size) : rc;
      rc = n < 0 ? (int)n : 1;
      if (n >= 0) {
        s->in.len = (size_t)n;
        /* An empty input still gets one (empty) member or frame. */
        if ((size_t)n < r->block_size) g->eof = 1;
        if (n == 0 && s->idx > 0) rc = 0;
      }
    } else {
      rc = read_unit(g, s);
    }
    if (rc <= 0) {
      g->eof = 1;
      if (rc < 0) g->err = rc;
      s->state = SLOT_FREE;
      pthread_cond_broadcast(&g->cv);
      return NULL;
    }
    g->next_claim++;
    return s;
  }
}

/* Writes the finished blocks that are next in the output, while no other
 * worker does (under the lock, which it drops around each write). */
static void write_ready(engine *g) {
  while (!g->writing) {
    slot *s = NULL;
    for (int i = 0; i < g->n_slots && s == NULL; i++)
      if (g->slots[i].state == SLOT_READY && g->slots[i].idx == g->next_write)
        s = &g->slots[i];
    if (s == NULL) return;
    g->writing = 1;
    pthread_mutex_unlock(&g->mu);
    int err = g->err != 0
                  ? 0
                  : fp_write_all(g->r, g->out_fd, s->out.data, s->out.len);
    pthread_mutex_lock(&g->mu);
    if (err != 0 && g->err == 0) g->err = err;
    g->out_size += s->out.len;
    buf_put(&s->out, s->out_cap);
    g->next_write++;
    s->state = SLOT_FREE;
    g->writing = 0;
    pthread_cond_broadcast(&g->cv);
  }
}

/* One worker of an engine (thread pool): claim, read, process, write, until
 * the file is done or an error or a signal stops it. */
static int engine_worker(void *arg) {
  engine *g = arg;
  fp_run *r = g->r;
  codec_state *cs = state_take(r);
  int err = cs ? state_ready(r, cs, r->cmd == FP_DECOMPRESS) : UV_ENOMEM;
  pthread_mutex_lock(&g->mu);
  if (err != 0 && g->err == 0) g->err = err;
  slot *s;
  while ((s = claim(g)) != NULL) {
    pthread_mutex_unlock(&g->mu);
    err = 0;
    if (!g->sequential) {
      if (buf_get(&s->in, (size_t)r->block_size) != 0) {
        err = UV_ENOMEM;
      } else {
        s->in_cap = s->in.len;
        ssize_t n = pread(g->in_fd, s->in.data, (size_t)r->block_size,
                          (off_t)s->offset);
        if (n < 0) {
          err = -errno;
        } else {
          s->in.len = (size_t)n;
          fp_progress_read((uint64_t)n);
        }
      }
    }
    /* A file that shrank since it was walked: its last blocks are empty
     * and add nothing (but the first one is always written). */
    int empty = !g->sequential && err == 0 && s->in.len == 0 && s->idx > 0;
    if (err == 0 && !empty) err = process_slot(r, cs, s);
    if (empty) s->out.len = 0;
    buf_put(&s->in, s->in_cap);
    pthread_mutex_lock(&g->mu);
    if (err != 0 && g->err == 0) g->err = err;
    s->state = SLOT_READY;
    write_ready(g);
  }
  if (cs) state_give(r, cs);
  pthread_cond_broadcast(&g->cv);
  pthread_mutex_unlock(&g->mu);
  return 0;
}

static int engine_task(void *arg) { return weft_blocking(engine_worker, arg); }

typedef struct open_call {
  fp_run *r;
  fp_entry *e;
  char *dst, *tmp;
  int in, out;
  int splittable;
  uint64_t size;     /* of the input, when a file */
  size_t first_unit; /* decompress: the first unit's bytes, in and out */
} open_call;

static int open_blocking(void *arg) {
  open_call *c = arg;
  c->in = c->e->is_stdin ? dup(STDIN_FILENO)
                         : open(c->e->path, O_RDONLY | O_CLOEXEC);
  if (c->in < 0) return -errno;
  fp_read_sequential(c->in);
  struct stat st;
  c->size = fstat(c->in, &st) == 0 ? (uint64_t)st.st_size : 0;
  c->splittable = 1;
  if (c->r->cmd == FP_DECOMPRESS) {
    /* Ours (the "WF" field) or zstd frames with sizes: in blocks. */
    unsigned char head[GZ_HEADER];
    ssize_t n = pread(c->in, head, sizeof head, 0);
    unsigned long long zs = n > 4 ? ZSTD_getFrameContentSize(head, (size_t)n)
                                  : ZSTD_CONTENTSIZE_ERROR;
    if (n >= 4 && head[0] == 0x1f && head[1] == 0x8b) {
      c->splittable =
          n == GZ_HEADER && head[3] == 4 && head[12] == 'W' && head[13] == 'F';
      if (c->splittable)
        c->first_unit = GZ_HEADER + 8 + get32(head + 16) + get32(head + 20);
    } else {
      c->splittable = zs <= (16u << 20);
      if (c->splittable) c->first_unit = 2 * (size_t)zs + 512;
    }
    if (!c->splittable) return 0;
  }
  int err = open_out(c->r, c->dst, &c->tmp, &c->out);
  if (err != 0) {
    close(c->in);
    c->in = -1;
  }
  return err;
}

typedef struct close_call {
  fp_run *r;
  fp_entry *e;
  char *dst, *tmp;
  int in, out, err;
} close_call;

static int close_blocking(void *arg) {
  close_call *c = arg;
  close(c->in);
  return close_out(c->r, c->e, c->dst, c->tmp, c->out, c->err);
}

/* Runs the engine's workers: two tasks per -j, each in one weft_blocking
 * call for the whole file. Two per CPU's worth, because on a shared machine
 * a worker is often preempted while it holds the block the output needs
 * next; the other workers then fill the slots instead of idling (measured:
 * gzip of 200 MB of JSON lines 4.2 s against 6.8 s with one per -j, the
 * same CPU seconds). Returns the engine's error. */
static int engine_run(engine *g) {
  fp_run *r = g->r;
  weft_group *grp = weft_group_open(WEFT_COLLECT);
  if (grp == NULL) return UV_ENOMEM;
  int started = 0;
  for (int i = 0; i < 2 * r->jobs; i++)
    if (weft_spawn(grp, engine_task, g) == 0) started++;
  int jerr = weft_group_join(grp);
  if (started == 0) return UV_ENOMEM;
  pthread_mutex_lock(&g->mu);
  int err = g->err;
  /* Every claimed block was written, unless an error stopped the writes. */
  if (err == 0 && jerr != 0) err = jerr;
  if (err == 0 && g->next_write != g->next_claim) err = UV_EIO;
  pthread_mutex_unlock(&g->mu);
  return err;
}

/* A big file through its own engine. */
static int big_file(fp_run *r, fp_entry *e) {
  open_call oc = {.r = r, .e = e, .in = -1};
  if (!e->is_stdin && (oc.dst = fp_output_path(r, e)) == NULL) return UV_ENOMEM;
  int err = weft_blocking(open_blocking, &oc);
  if (err != 0 || !oc.splittable) {
    if (oc.in >= 0) close(oc.in);
    free(oc.dst);
    if (err != 0) return err;
    /* Not cut into blocks: in one piece, on a worker. */
    fp_job one = {.n = 1, .entries = e};
    codec_state *s = state_take(r);
    if (s == NULL) return UV_ENOMEM;
    if (state_ready(r, s, 1) != 0) {
      state_give(r, s);
      return UV_ENOMEM;
    }
    small_call c = {.r = r, .s = s, .job = &one};
    err = weft_blocking(small_blocking, &c);
    state_give(r, s);
    return err;
  }
  engine g;
  memset(&g, 0, sizeof g);
  g.r = r;
  g.e = e;
  g.in_fd = oc.in;
  g.out_fd = oc.out;
  g.sequential = e->is_stdin || r->cmd == FP_DECOMPRESS;
  g.n_blocks = oc.size == 0 ? 1 : (oc.size + r->block_size - 1) / r->block_size;
  /* Slots: one per worker and two more, within this file's share of the
   * budget (the files in flight at once: one with -c, else `jobs`). */
  size_t unit = r->cmd == FP_COMPRESS ? 2 * (size_t)r->block_size + (64 << 10)
                                      : oc.first_unit;
  size_t unit_mib = (unit + (1u << 20) - 1) >> 20;
  int files = r->cfg->to_stdout ? 1 : r->jobs;
  size_t fit = ENGINE_BUDGET_MIB / (size_t)files / (unit_mib ? unit_mib : 1);
  g.n_slots = 2 * r->jobs + 2;
  if ((size_t)g.n_slots > fit) g.n_slots = fit < 2 ? 2 : (int)fit;
  g.slots = calloc((size_t)g.n_slots, sizeof *g.slots);
  if (g.slots == NULL) {
    err = UV_ENOMEM;
  } else {
    pthread_mutex_init(&g.mu, NULL);
    pthread_cond_init(&g.cv, NULL);
    err = engine_run(&g);
    pthread_cond_destroy(&g.cv);
    pthread_mutex_destroy(&g.mu);
    for (int i = 0; i < g.n_slots; i++) {
      buf_put(&g.slots[i].in, g.slots[i].in_cap);
      buf_put(&g.slots[i].out, g.slots[i].out_cap);
    }
    free(g.slots);
  }
  e->out_size += g.out_size;
  close_call cc = {.r = r,
                   .e = e,
                   .dst = oc.dst,
                   .tmp = oc.tmp,
                   .in = oc.in,
                   .out = oc.out,
                   .err = err};
  /* Called here rather than through weft_blocking(), which a cancelled
   * task could not enter: the temporary file must go either way. */
  int cerr = close_blocking(&cc);
  free(oc.dst);
  if (err == 0) err = cerr;
  return err;
}

/* ---- Decompressing a stream ---------------------------------------------- */

/* Any .gz (all members) or .zst (all frames) from in to out, as one stream
 * (thread pool). in may be a pipe: the first read decides the format. */
static int decompress_fd(fp_run *r, codec_state *s, int in, int out,
                         uint64_t *written) {
  int err = grow(&s->in, &s->in_cap, 1 << 17);
  if (err == 0) err = grow(&s->out, &s->out_cap, 1 << 18);
  if (err != 0) return err;
  ssize_t n = read_full(in, s->in, s->in_cap);
  if (n < 0) return (int)n;
  if (n >= 2 && s->in[0] == 0x1f && s->in[1] == 0x8b) {
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit2(&z, 16 + 15) != Z_OK) return UV_ENOMEM;
    int zr = Z_OK;
    while (n > 0 && err == 0) {
      z.next_in = s->in;
      z.avail_in = (uInt)n;
      while (z.avail_in > 0 && err == 0) {
        if (zr == Z_STREAM_END) inflateReset(&z); /* the next member */
        z.next_out = s->out;
        z.avail_out = (uInt)s->out_cap;
        zr = inflate(&z, Z_NO_FLUSH);
        if (zr != Z_OK && zr != Z_STREAM_END && zr != Z_BUF_ERROR) {
          err = FP_ECORRUPT;
          break;
        }
        size_t have = s->out_cap - z.avail_out;
        if (have) err = fp_write_all(r, out, s->out, have);
        *written += have;
        if (zr == Z_BUF_ERROR && have == 0) break;
      }
      if (err == 0 && r->stop) err = UV_ECANCELED;
      if (err == 0 && (n = read_full(in, s->in, s->in_cap)) < 0) err = (int)n;
    }
    if (err == 0 && zr != Z_STREAM_END) err = FP_ECORRUPT; /* truncated */
    inflateEnd(&z);
    return err;
  }
  if (n < 4 ||
      ZSTD_getFrameContentSize(s->in, (size_t)n) == ZSTD_CONTENTSIZE_ERROR)
    return FP_ECORRUPT; /* neither gzip nor zstd */
  ZSTD_DCtx_reset(s->zd, ZSTD_reset_session_only);
  size_t last = 1;
  while (n > 0) {
    ZSTD_inBuffer ib = {s->in, (size_t)n, 0};
    while (ib.pos < ib.size) {
      ZSTD_outBuffer ob = {s->out, s->out_cap, 0};
      last = ZSTD_decompressStream(s->zd, &ob, &ib);
      if (ZSTD_isError(last)) return FP_ECORRUPT;
      if (ob.pos && (err = fp_write_all(r, out, s->out, ob.pos)) != 0)
        return err;
      *written += ob.pos;
    }
    if (r->stop) return UV_ECANCELED;
    if ((n = read_full(in, s->in, s->in_cap)) < 0) return (int)n;
  }
  return last == 0 ? 0 : FP_ECORRUPT; /* truncated */
}

/* ---- Jobs ---------------------------------------------------------------- */

static int run_job(fp_run *r, fp_job *job) {
  if (job->big) {
    fp_entry *e = &job->entries[0];
    e->err = big_file(r, e);
    if (e->err == UV_ECANCELED && r->stop) return UV_ECANCELED;
    if (e->err == 0) e->state = FP_ST_DONE;
    return 0;
  }
  codec_state *s = state_take(r);
  int err = s ? state_ready(r, s, r->cmd == FP_DECOMPRESS) : UV_ENOMEM;
  if (err == 0) {
    small_call c = {.r = r, .s = s, .job = job};
    err = weft_blocking(small_blocking, &c);
  }
  if (s) state_give(r, s);
  return err;
}

int fp_compress_job(fp_run *r, fp_job *job) { return run_job(r, job); }
int fp_decompress_job(fp_run *r, fp_job *job) { return run_job(r, job); }
