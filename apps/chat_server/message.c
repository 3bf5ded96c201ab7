/* message.c: shared message buffers, the string builder and UTF-8 checks. */
#include "message.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

chat_buf *chat_buf_new(const char *data, size_t len) {
  chat_buf *b = malloc(sizeof *b + len);
  if (b == NULL) return NULL;
  b->refs = 1;
  b->len = (uint32_t)len;
  b->seq = 0;
  memcpy(b->data, data, len);
  return b;
}

void chat_buf_ref(chat_buf *b) {
  __atomic_fetch_add(&b->refs, 1, __ATOMIC_RELAXED);
}

void chat_buf_unref(chat_buf *b) {
  if (b != NULL && __atomic_sub_fetch(&b->refs, 1, __ATOMIC_ACQ_REL) == 0)
    free(b);
}

void chat_sb_init(chat_sb *sb) { memset(sb, 0, sizeof *sb); }

void chat_sb_free(chat_sb *sb) {
  free(sb->data);
  chat_sb_init(sb);
}

/* Makes room for n more bytes. Returns 0, or -1 (sticky) out of memory. */
static int sb_reserve(chat_sb *sb, size_t n) {
  if (sb->failed) return -1;
  if (sb->len + n <= sb->cap) return 0;
  size_t cap = sb->cap ? sb->cap : 256;
  while (cap < sb->len + n) cap *= 2;
  char *grown = realloc(sb->data, cap);
  if (grown == NULL) {
    sb->failed = 1;
    return -1;
  }
  sb->data = grown;
  sb->cap = cap;
  return 0;
}

void chat_sb_add(chat_sb *sb, const char *s, size_t len) {
  if (sb_reserve(sb, len) != 0) return;
  memcpy(sb->data + sb->len, s, len);
  sb->len += len;
}

void chat_sb_str(chat_sb *sb, const char *s) { chat_sb_add(sb, s, strlen(s)); }

void chat_sb_int(chat_sb *sb, int64_t v) {
  char tmp[24];
  int n = snprintf(tmp, sizeof tmp, "%lld", (long long)v);
  chat_sb_add(sb, tmp, (size_t)n);
}

void chat_sb_json(chat_sb *sb, const char *s, size_t len) {
  /* Worst case: every byte becomes \u00XX. */
  if (sb_reserve(sb, len * 6 + 2) != 0) return;
  char *o = sb->data + sb->len;
  *o++ = '"';
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c >= 0x20 && c != '"' && c != '\\' && c != 0x7f) {
      *o++ = (char)c;
      continue;
    }
    *o++ = '\\';
    switch (c) {
    case '"': *o++ = '"'; break;
    case '\\': *o++ = '\\'; break;
    case '\n': *o++ = 'n'; break;
    case '\r': *o++ = 'r'; break;
    case '\t': *o++ = 't'; break;
    default: {
      static const char hex[] = "0123456789abcdef";
      *o++ = 'u';
      *o++ = '0';
      *o++ = '0';
      *o++ = hex[c >> 4];
      *o++ = hex[c & 15];
    }
    }
  }
  *o++ = '"';
  sb->len = (size_t)(o - sb->data);
}

void chat_sb_jstr(chat_sb *sb, const char *s) { chat_sb_json(sb, s, strlen(s)); }

chat_buf *chat_sb_finish(chat_sb *sb) {
  chat_sb_add(sb, "\n", 1);
  chat_buf *b = sb->failed ? NULL : chat_buf_new(sb->data, sb->len);
  chat_sb_free(sb);
  return b;
}

chat_buf *chat_error_buf(const char *code, const char *text) {
  chat_sb sb;
  chat_sb_init(&sb);
  chat_sb_str(&sb, "{\"type\":\"error\",\"code\":");
  chat_sb_jstr(&sb, code);
  chat_sb_str(&sb, ",\"message\":");
  chat_sb_jstr(&sb, text);
  chat_sb_str(&sb, "}");
  return chat_sb_finish(&sb);
}

int chat_utf8_valid(const char *str, size_t len) {
  const unsigned char *s = (const unsigned char *)str;
  size_t i = 0;
  while (i < len) {
    unsigned char c = s[i];
    if (c < 0x80) {
      i++;
      continue;
    }
    size_t n;
    uint32_t cp;
    if (c >= 0xc2 && c <= 0xdf) {
      n = 1;
      cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
      n = 2;
      cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
      n = 3;
      cp = c & 0x07;
    } else {
      return 0;
    }
    if (len - i - 1 < n) return 0;
    for (size_t k = 1; k <= n; k++) {
      if ((s[i + k] & 0xc0) != 0x80) return 0;
      cp = (cp << 6) | (s[i + k] & 0x3f);
    }
    if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10ffff ||
        (cp >= 0xd800 && cp <= 0xdfff))
      return 0;
    i += n + 1;
  }
  return 1;
}

int64_t chat_wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
