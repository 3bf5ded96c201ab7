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

#endif /* WS_OUTPUT_H */
