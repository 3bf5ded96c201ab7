/* fp.h: what the parts of file_processor share.
 *
 * The commands run one pipeline shape (run.c):
 *
 *   walk (walk.c) -> filter -> batcher -> ordered map on the workers -> sink
 *
 * The walker is a task that feeds a bounded stream of fp_entry items in
 * byte order of their paths; the filter applies the globs, sizes and the
 * journal; the batcher groups small files into fp_job items (up to 64 files
 * or 1 MiB); the ordered map runs each job off the loop (weft_blocking) with
 * a worker's own buffers (hash.c, compress.c); the sink writes the manifest
 * or report lines in order, feeds the progress display and the journal.
 * Every stream is bounded, so memory does not grow with the tree.
 */
#ifndef FP_H
#define FP_H

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>

#include <weft.h>

#include "config.h"

#define FP_VERSION "1.0.0"

/* ---- What only some systems have (cmake/weftPlatform.cmake) ---------- */

/* A file's modification time in nanoseconds: st_mtim (POSIX 2008: Linux,
 * the BSDs), st_mtimespec (macOS), whole seconds elsewhere. */
static inline int64_t fp_stat_mtime_ns(const struct stat *st) {
#if defined(WEFT_HAVE_STAT_ST_MTIM)
  return (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
#elif defined(WEFT_HAVE_STAT_ST_MTIMESPEC)
  return (int64_t)st->st_mtimespec.tv_sec * 1000000000 + st->st_mtimespec.tv_nsec;
#else
  return (int64_t)st->st_mtime * 1000000000;
#endif
}

/* Tells the system that fd will be read from start to end, where it takes
 * such a hint (posix_fadvise: not on macOS). */
static inline void fp_read_sequential(int fd) {
#if defined(WEFT_HAVE_POSIX_FADVISE)
  posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
#else
  (void)fd;
#endif
}

/* A compressed input that is corrupt, truncated or neither gzip nor zstd
 * (below libuv's and weft's error codes). */
#define FP_ECORRUPT (-31001)

/* The commands. */
typedef enum fp_command {
  FP_HASH,
  FP_VERIFY,
  FP_COMPRESS,
  FP_DECOMPRESS,
  FP_SCAN
} fp_command;

/* Algorithms, in the order --help lists them. */
typedef enum fp_alg {
  FP_SHA256,
  FP_SHA512,
  FP_SHA1,
  FP_MD5,
  FP_BLAKE2B,
  FP_XXH128,
  FP_BLAKE3,
  FP_ALG_COUNT
} fp_alg;

#define FP_MAX_ALGS FP_ALG_COUNT
#define FP_HEX_MAX 129 /* 64 bytes in hex and a NUL */

enum { FP_FORMAT_SUM, FP_FORMAT_BSD, FP_FORMAT_JSONL };
enum { FP_CODEC_GZIP, FP_CODEC_ZSTD };
enum { FP_PROGRESS_AUTO, FP_PROGRESS_ALWAYS, FP_PROGRESS_NEVER };

/* The options, as the table in options.c fills them. Field names are the
 * JSON keys of --config. */
typedef struct fp_config {
  app_string_list paths;
  char *algorithms;
  char *output;
  char *format;
  char *update;
  char *manifest;
  int ignore_missing;
  char *codec;
  int64_t level;
  int64_t block_size;
  int rm;
  int to_stdout;
  int64_t jobs;
  app_string_list include;
  app_string_list exclude;
  int recursive;
  int follow_symlinks;
  int one_file_system;
  int64_t max_depth;
  int64_t min_size;
  int64_t max_size;
  char *files_from;
  int null;
  char *order;
  char *progress;
  char *journal;
  int resume;
  int64_t journal_memory;
  char *on_error;
  char *summary_json;
  int fsync;
  int64_t fail_writes_after; /* test switch: writes past this many bytes fail */
  int log_level;
} fp_config;

/* A file reached by the walk, or named by a manifest. */
typedef struct fp_entry {
  char *path; /* as reached from the PATHs given; malloc'd */
  uint64_t size;
  int64_t mtime_ns;
  int state;    /* FP_ST_*: what the sink reports */
  char *expect; /* verify/update/resume: the recorded result, or NULL */
  int err;      /* an error of this entry (negative), or 0 */
  int is_stdin; /* the PATH "-": standard input */
  char digest[FP_MAX_ALGS][FP_HEX_MAX]; /* results, per selected algorithm */
  uint64_t out_size;                    /* compress/decompress: bytes written */
} fp_entry;

/* What became of an entry. */
enum {
  FP_ST_DO = 0,  /* to be processed */
  FP_ST_DONE,    /* processed */
  FP_ST_REUSED,  /* result taken from the journal or the old manifest */
  FP_ST_OK,      /* verify: matches */
  FP_ST_CHANGED, /* verify: differs */
  FP_ST_MISSING, /* verify: in the manifest, not on disk */
  FP_ST_NEW,     /* verify: on disk, not in the manifest */
  FP_ST_SKIPPED  /* left alone (compress: already compressed, ...) */
};

/* A job for a worker: entries processed in one hand-off. */
typedef struct fp_job {
  uint32_t n;
  uint32_t big;      /* one file processed as a stream of blocks */
  fp_entry *entries; /* malloc'd array of n */
} fp_job;

#define FP_BATCH_FILES 64
#define FP_BATCH_BYTES ((uint64_t)1 << 20)
#define FP_READ_BUF ((size_t)256 << 10)

/* The counters the progress display and the summary read. Written by the
 * sink and the walker on the main executor only. */
typedef struct fp_counts {
  uint64_t files_seen, bytes_seen; /* walked and accepted */
  uint64_t files_done, bytes_done; /* finished by the sink */
  uint64_t files_reused;
  uint64_t skipped_links, skipped_other, filtered;
  uint64_t errors;
  uint64_t ok, changed, missing, new_;
  uint64_t bytes_out;
  int walk_done;
} fp_counts;

typedef struct fp_run fp_run;

/* ---- options.c ---------------------------------------------------------- */

/* Loads argv (the command first) into cfg and *cmd. Returns APP_RUN, or an
 * exit code after printing --help, --version or an error. */
int fp_options_load(fp_config *cfg, fp_command *cmd, int argc, char **argv);
void fp_options_free(fp_config *cfg);
void fp_options_log(const fp_config *cfg);
/* Prints "file_processor: " and the message on stderr. */
void fp_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- hash.c ------------------------------------------------------------- */

/* Parses "sha256,blake3" into algs (at most FP_MAX_ALGS). Returns the count,
 * or -1 with the reason in why. */
int fp_algs_parse(const char *text, fp_alg *algs, char *why, size_t why_len);
const char *fp_alg_name(fp_alg a); /* "sha256" */
const char *fp_alg_tag(fp_alg a);  /* "SHA256", as --tag writes it */
int fp_alg_hex_len(fp_alg a);
/* The algorithm a bsd tag names, or -1. */
int fp_alg_from_tag(const char *tag, size_t len);
/* Loads the OpenSSL digests once. Returns 0 or -1. */
int fp_hash_init(void);
void fp_hash_cleanup(void);

/* One worker's hashing state: buffers and contexts, reused from job to job. */
typedef struct fp_hasher fp_hasher;
fp_hasher *fp_hasher_new(const fp_alg *algs, int n);
void fp_hasher_free(fp_hasher *h);
/* Hashes the file at e->path into e->digest (blocking). Returns 0 or a
 * negative error (e->err is set too). stop: non-zero aborts. */
int fp_hash_file(fp_hasher *h, fp_entry *e, int follow);

/* ---- walk.c ------------------------------------------------------------- */

/* The walk's options, filled from the configuration. */
typedef struct fp_walk_opts {
  const app_string_list *roots;
  const app_string_list *exclude;
  const char *files_from;
  int null_sep;
  int recursive;
  int follow;
  int one_fs;
  int64_t max_depth; /* < 0: none */
  fp_counts *counts;
  int stop_on_error;
} fp_walk_opts;

/* Non-zero when path or its name matches one of globs. */
int fp_glob_match(const app_string_list *globs, const char *path);
/* Starts the walker as a task of pipeline p; returns its stream of
 * fp_entry in byte order of paths (NULL on error). */
weft_stream *fp_walk_start(weft_pipeline *p, const fp_walk_opts *o);
/* The item ops of fp_entry streams (dispose frees the strings). */
const weft_stream_item_ops *fp_entry_ops(void);
void fp_entry_clear(fp_entry *e);
/* The message of err, FP_ECORRUPT included. */
const char *fp_strerror(int err);
/* Reports a path's error on stderr (with the path escaped) and counts it. */
void fp_report_error(fp_counts *c, const char *path, int err);

/* A line reader over a byte stream of weft_chunk items. */
typedef struct fp_lines {
  weft_stream *chunks;
  void *own; /* standard input's stream, shared with its task */
  weft_chunk cur;
  size_t pos;
  char *line;
  size_t len, cap;
  int sep;
  int eof;
} fp_lines;
/* Starts reading path ("-": standard input) in pipeline p. */
int fp_lines_open(fp_lines *l, weft_pipeline *p, const char *path, int sep);
/* Reads the next line (without its separator) into l->line / l->len.
 * Returns 1, 0 at the end, or a negative error. */
int fp_lines_next(fp_lines *l);
void fp_lines_close(fp_lines *l);

/* ---- manifest.c --------------------------------------------------------- */

/* Appends e's line in format to out. */
void fp_manifest_line(FILE *out, int format, const fp_alg *algs, int n_algs,
                      const fp_entry *e);
/* A parsed manifest line. */
typedef struct fp_record {
  char *path; /* unescaped, malloc'd */
  char hex[FP_HEX_MAX];
  int alg;      /* from a bsd tag or a jsonl key; -1 when unnamed */
  int64_t size; /* -1 when not recorded */
} fp_record;
/* Parses one manifest line (any of the three formats). want: the algorithm
 * asked for (-1: any). Returns 1 for a record, 0 for a line to skip (blank,
 * another algorithm), -1 when malformed. */
int fp_manifest_parse(const char *line, size_t len, int want, fp_record *r);
/* Writes s as a JSON string (invalid UTF-8 bytes as \udcXX). */
void fp_json_string(FILE *out, const char *s);
/* Non-zero when a path needs the sum format's escaping (cr: a carriage
 * return too, as coreutils does). */
int fp_path_needs_escape(const char *path, int cr);
/* Writes path with \\, \n and \r escaped. */
void fp_write_escaped(FILE *out, const char *path);

/* ---- journal.c ---------------------------------------------------------- */

typedef struct fp_journal fp_journal;
/* Opens the journal at path; with resume, loads it first and removes the
 * temporary files it records as left over; memory bounds the bytes of its
 * records held in memory (a longer journal is sorted into runs on disk;
 * 0: 8 MiB). Returns NULL after an error. */
fp_journal *fp_journal_open(const char *path, int resume, int do_fsync,
                            uint64_t memory);
/* The recorded result of path if it finished with this size and mtime,
 * valid until the next lookup. Cheapest when paths come in byte order. */
const char *fp_journal_lookup(fp_journal *j, const char *path, uint64_t size,
                              int64_t mtime_ns);
/* Records a temporary file about to be written (any thread). */
void fp_journal_temp(fp_journal *j, const char *tmp);
/* Records a finished item. */
void fp_journal_done(fp_journal *j, const fp_entry *e, const char *result);
void fp_journal_close(fp_journal *j);

/* ---- compress.c --------------------------------------------------------- */

/* Compresses or decompresses one job's entries (in a worker task). */
int fp_compress_job(fp_run *r, fp_job *job);
int fp_decompress_job(fp_run *r, fp_job *job);
/* The output path of e for the command, or NULL when e is to be skipped
 * (sets e->state). malloc'd. */
char *fp_output_path(fp_run *r, fp_entry *e);

/* Temporary files: every one is registered while it exists, so that a
 * signal or an error removes it. Thread-safe. */
char *fp_temp_create(fp_run *r, const char *final_path, int *fd);
void fp_temp_forget(const char *tmp);
void fp_temp_remove_all(void);
/* Moves tmp over final_path after an fsync (fd is closed). Returns 0 or a
 * negative error; tmp is removed on failure. */
int fp_temp_commit(fp_run *r, int fd, char *tmp, const char *final_path);
/* Writes len bytes to fd, honouring the test switch. Returns 0 or error. */
int fp_write_all(fp_run *r, int fd, const void *buf, size_t len);

/* ---- progress.c --------------------------------------------------------- */

typedef struct fp_progress fp_progress;
fp_progress *fp_progress_start(weft_group *g, const fp_counts *c, int mode);
void fp_progress_status(fp_progress *p); /* SIGUSR1: one status line */
/* Counts n bytes read from an input (any thread). */
void fp_progress_read(uint64_t n);
void fp_progress_stop(fp_progress *p);
/* Writes the summary as one JSON object to path ("-": stdout). */
int fp_summary_json(const char *path, const char *command, const fp_counts *c,
                    double seconds, int exit_code);

/* ---- run.c -------------------------------------------------------------- */

/* The state of one command's run. */
struct fp_run {
  const fp_config *cfg;
  fp_command cmd;
  fp_alg algs[FP_MAX_ALGS];
  int n_algs;
  int format;
  int codec;
  int jobs;
  int map_workers; /* the jobs' map: -j, or twice that for hashing */
  int ordered;
  int stop_on_error;
  uint64_t block_size;
  fp_counts counts;
  fp_journal *journal;
  fp_hasher **hashers;     /* idle hashers, one per worker at most */
  int n_hashers;
  void **codec_states; /* idle compressors (compress.c) */
  int n_codec_states, cap_codec_states;
  FILE *out;         /* manifest / report output */
  int out_fd_stdout; /* -c: outputs go to standard output */
  weft_pipeline *pipeline;
  fp_progress *progress;
  volatile int stop; /* a signal arrived: stop early */
  int signum;
  int exit_code;
};

/* Runs the command. Returns the exit code. */
int fp_run_command(fp_command cmd, const fp_config *cfg);
/* Adds the filter (when filter), batcher, map and sink after the entry
 * stream entries of pipeline p, and joins it. Returns its error. */
int fp_pipeline_finish(fp_run *r, weft_pipeline *p, weft_stream *entries,
                       int filter);
/* The filter stage's predicate: globs, sizes, names. */
int fp_filter_keep(void *ctx, const void *item);
/* Frees what compress.c keeps between jobs. */
void fp_compress_cleanup(fp_run *r);
/* Runs a verify (verify.c). */
int fp_verify(fp_run *r);

#endif /* FP_H */
