/* output.h: the JSON lines the crawler writes, one per URL.
 *
 * Every string goes through ws_json_string(), which escapes what JSON
 * needs and replaces any byte sequence that is not valid UTF-8 with
 * U+FFFD, so every line is valid UTF-8 whatever the page held.
 */
#ifndef WS_OUTPUT_H
#define WS_OUTPUT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "extract.h"

/** A growing byte buffer. */
typedef struct ws_buf {
  char *p;
  size_t len, cap;
} ws_buf;

void ws_buf_put(ws_buf *b, const char *s, size_t n);
void ws_buf_puts(ws_buf *b, const char *s);
void ws_buf_free(ws_buf *b);

/** Appends s as a JSON string (NULL: null), made valid UTF-8. */
void ws_json_string(ws_buf *b, const char *s);

/** One record: what happened to one URL. NULL strings are written null. */
typedef struct ws_record {
  const char *url;
  const char *final_url;
  long status; /**< 0: no response (null) */
  int depth;
  const char *referrer;
  const char *content_type;
  uint64_t bytes;
  const char *title;
  const ws_field *fields; /**< the names of values */
  const ws_value *values; /**< NULL: no fields extracted */
  size_t n_fields;
  size_t links;
  int64_t fetched_at_ms; /**< Unix time in milliseconds */
  int64_t elapsed_ms;
  const char *error;
} ws_record;

/** Appends r as one JSON line (with its newline) to b. */
void ws_record_json(ws_buf *b, const ws_record *r);

/* ---- Finding records again (resume after a SIGKILL) ----------------------
 * A durable crawl (--state, --redis) marks a page "being recorded" in its
 * frontier, writes the record, then marks it done. A process killed in
 * between leaves pages whose record may or may not be in the output: the
 * next run looks for them in the file, from where the killed run started
 * writing. This works when the output is a regular file. */

/** The absolute path of the regular file out writes to (given: --output,
 * or NULL for standard output), malloc'ed; NULL when out is not a regular
 * file (a pipe, a terminal). */
char *ws_output_path(FILE *out, const char *given);

/** Flushes out (the file at path) and cuts off a last line without its
 * newline (a record the killed process was writing): the size of the file
 * after, or a negative error. */
int64_t ws_output_repair(FILE *out, const char *path);

/** Looks in the file at path, from offset, for a complete record of each
 * of the n urls: found[i] is set to 1 for each one found. 0, or a
 * negative error. */
int ws_output_find(const char *path, int64_t offset, char *const *urls,
                   size_t n, int *found);

#endif /* WS_OUTPUT_H */
