/* output.c: JSON lines, always valid UTF-8. */
#include "output.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void ws_buf_put(ws_buf *b, const char *s, size_t n) {
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + n + 1) cap *= 2;
    char *p = realloc(b->p, cap);
    if (p == NULL) abort(); /* a record cannot be half written */
    b->p = p;
    b->cap = cap;
  }
  memcpy(b->p + b->len, s, n);
  b->len += n;
  b->p[b->len] = '\0';
}

void ws_buf_puts(ws_buf *b, const char *s) { ws_buf_put(b, s, strlen(s)); }

void ws_buf_free(ws_buf *b) {
  free(b->p);
  memset(b, 0, sizeof *b);
}

/* The length of the valid UTF-8 sequence at s (at most left bytes), or 0
 * when it is not one. */
static size_t utf8_seq(const unsigned char *s, size_t left) {
  unsigned char c = s[0];
  size_t n;
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF)
    n = 2;
  else if (c >= 0xE0 && c <= 0xEF)
    n = 3;
  else if (c >= 0xF0 && c <= 0xF4)
    n = 4;
  else
    return 0;
  if (left < n) return 0;
  for (size_t i = 1; i < n; i++)
    if ((s[i] & 0xC0) != 0x80) return 0;
  /* Overlong forms, surrogates and code points past U+10FFFF. */
  if (c == 0xE0 && s[1] < 0xA0) return 0;
  if (c == 0xED && s[1] > 0x9F) return 0;
  if (c == 0xF0 && s[1] < 0x90) return 0;
  if (c == 0xF4 && s[1] > 0x8F) return 0;
  return n;
}

void ws_json_string(ws_buf *b, const char *s) {
  if (s == NULL) {
    ws_buf_put(b, "null", 4);
    return;
  }
  static const char hex[] = "0123456789abcdef";
  const unsigned char *u = (const unsigned char *)s;
  size_t len = strlen(s);
  ws_buf_put(b, "\"", 1);
  size_t i = 0, run = 0; /* run: bytes copied as they are, pending */
  while (i < len) {
    unsigned char c = u[i];
    const char *esc = NULL;
    char ctl[7];
    size_t n = 1;
    if (c == '"')
      esc = "\\\"";
    else if (c == '\\')
      esc = "\\\\";
    else if (c == '\n')
      esc = "\\n";
    else if (c == '\r')
      esc = "\\r";
    else if (c == '\t')
      esc = "\\t";
    else if (c < 0x20 || c == 0x7F) {
      ctl[0] = '\\', ctl[1] = 'u', ctl[2] = '0', ctl[3] = '0';
      ctl[4] = hex[c >> 4], ctl[5] = hex[c & 15], ctl[6] = '\0';
      esc = ctl;
    } else if (c >= 0x80) {
      n = utf8_seq(u + i, len - i);
      if (n == 0) {
        esc = "\xEF\xBF\xBD"; /* U+FFFD for a byte that is not UTF-8 */
        n = 1;
      }
    }
    if (esc != NULL) {
      ws_buf_put(b, s + i - run, run);
      run = 0;
      ws_buf_puts(b, esc);
      i += n;
    } else {
      run += n;
      i += n;
    }
  }
  ws_buf_put(b, s + i - run, run);
  ws_buf_put(b, "\"", 1);
}

static void put_int(ws_buf *b, int64_t v) {
  char num[32];
  int n = snprintf(num, sizeof num, "%" PRId64, v);
  ws_buf_put(b, num, (size_t)n);
}

/* ISO 8601 in UTC with milliseconds. */
static void put_time(ws_buf *b, int64_t ms) {
  time_t t = (time_t)(ms / 1000);
  struct tm tm;
  gmtime_r(&t, &tm);
  char s[40];
  int n = snprintf(s, sizeof s, "\"%04d-%02d-%02dT%02d:%02d:%02d.%03dZ\"",
                   tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                   tm.tm_min, tm.tm_sec, (int)(ms % 1000));
  ws_buf_put(b, s, (size_t)n);
}

void ws_record_json(ws_buf *b, const ws_record *r) {
  ws_buf_puts(b, "{\"url\":");
  ws_json_string(b, r->url);
  ws_buf_puts(b, ",\"final_url\":");
  ws_json_string(b, r->final_url);
  ws_buf_puts(b, ",\"status\":");
  if (r->status > 0)
    put_int(b, r->status);
  else
    ws_buf_puts(b, "null");
  ws_buf_puts(b, ",\"depth\":");
  put_int(b, r->depth);
  ws_buf_puts(b, ",\"referrer\":");
  ws_json_string(b, r->referrer);
  ws_buf_puts(b, ",\"content_type\":");
  ws_json_string(b, r->content_type);
  ws_buf_puts(b, ",\"bytes\":");
  put_int(b, (int64_t)r->bytes);
  ws_buf_puts(b, ",\"title\":");
  ws_json_string(b, r->title);
  ws_buf_puts(b, ",\"fields\":{");
  for (size_t i = 0; i < r->n_fields && r->values != NULL; i++) {
    if (i > 0) ws_buf_puts(b, ",");
    ws_json_string(b, r->fields[i].name);
    ws_buf_puts(b, ":");
    if (r->fields[i].all) {
      ws_buf_puts(b, "[");
      for (size_t k = 0; k < r->values[i].n_items; k++) {
        if (k > 0) ws_buf_puts(b, ",");
        ws_json_string(b, r->values[i].items[k]);
      }
      ws_buf_puts(b, "]");
    } else {
      ws_json_string(b, r->values[i].text);
    }
  }
  ws_buf_puts(b, "},\"links\":");
  put_int(b, (int64_t)r->links);
  ws_buf_puts(b, ",\"fetched_at\":");
  put_time(b, r->fetched_at_ms);
  ws_buf_puts(b, ",\"elapsed_ms\":");
  put_int(b, r->elapsed_ms);
  ws_buf_puts(b, ",\"error\":");
  ws_json_string(b, r->error);
  ws_buf_puts(b, "}\n");
}
