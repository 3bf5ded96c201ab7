/* json.c: bounded-depth JSON parsing with error positions. */
#include "json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void json_set_error(app_json_error *err, const char *text, size_t offset,
                           const char *message) {
  if (err == NULL) return;
  err->offset = offset;
  app_json_position(text, offset, &err->line, &err->column);
  snprintf(err->message, sizeof err->message, "%s", message);
}

void app_json_position(const char *text, size_t offset, int *line,
                       int *column) {
  int l = 1, c = 1;
  for (size_t i = 0; i < offset; i++) {
    if (text[i] == '\n') {
      l++;
      c = 1;
    } else {
      c++;
    }
  }
  if (line != NULL) *line = l;
  if (column != NULL) *column = c;
}

static int json_is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static size_t json_skip_space(const char *text, size_t len, size_t i) {
  while (i < len && json_is_space(text[i])) i++;
  return i;
}

/* Skips the string that starts at text[i] (a quote). Returns the offset just
 * past the closing quote, or len when it is not closed. */
static size_t json_skip_string(const char *text, size_t len, size_t i) {
  for (i++; i < len; i++) {
    if (text[i] == '\\')
      i++;
    else if (text[i] == '"')
      return i + 1;
  }
  return len;
}

/* Returns the offset of the first comma that follows a value and comes
 * (after spaces) before a closing bracket, outside strings, or -1. cJSON
 * reports such a comma at the end of the text, far from it. (Two commas in
 * a row are left to cJSON's own message.) */
static long json_trailing_comma(const char *text, size_t len) {
  char before = 0; /* the last character outside spaces */
  for (size_t i = 0; i < len;) {
    if (text[i] == '"') {
      i = json_skip_string(text, len, i);
      before = '"';
      continue;
    }
    if (text[i] == ',' && before != ',' && before != '[' && before != '{' &&
        before != ':') {
      size_t next = json_skip_space(text, len, i + 1);
      if (next < len && (text[next] == '}' || text[next] == ']'))
        return (long)i;
    }
    if (!json_is_space(text[i])) before = text[i];
    i++;
  }
  return -1;
}

/* Returns the offset of the first bracket that opens a level deeper than
 * max_depth, or -1 when the text stays within it. A loop, not recursion:
 * this runs before anything recursive sees the text. */
static long json_too_deep(const char *text, size_t len, int max_depth) {
  int depth = 0;
  size_t i = 0;
  while (i < len) {
    char c = text[i];
    if (c == '"') {
      i = json_skip_string(text, len, i);
      continue;
    }
    if (c == '{' || c == '[') {
      if (++depth > max_depth) return (long)i;
    } else if ((c == '}' || c == ']') && depth > 0) {
      depth--;
    }
    i++;
  }
  return -1;
}

/* cJSON reports a text that ends too soon at its last byte, like an error
 * in that byte. Telling them apart takes a second parse with one more byte:
 * the error moves to it only when the text ended too soon. Error path only. */
static int json_ends_early(const char *text, size_t len) {
  char *longer = malloc(len + 2);
  if (longer == NULL) return 0;
  memcpy(longer, text, len);
  longer[len] = ' ';
  longer[len + 1] = '\0';
  const char *end = NULL;
  cJSON *doc = cJSON_ParseWithLengthOpts(longer, len + 1, &end, 0);
  int early = doc == NULL && end == longer + len;
  cJSON_Delete(doc);
  free(longer);
  return early;
}

cJSON *app_json_parse(const char *text, size_t len, int max_depth,
                      app_json_error *err) {
  if (err != NULL) memset(err, 0, sizeof *err);
  if (text == NULL) {
    json_set_error(err, "", 0, "no text");
    return NULL;
  }
  size_t start = json_skip_space(text, len, 0);
  if (start == len) {
    json_set_error(err, text, start, "empty document");
    return NULL;
  }
  long deep = json_too_deep(text, len, max_depth);
  if (deep >= 0) {
    char msg[80];
    snprintf(msg, sizeof msg, "nesting deeper than %d levels", max_depth);
    json_set_error(err, text, (size_t)deep, msg);
    return NULL;
  }

  const char *end = NULL;
  cJSON *doc = cJSON_ParseWithLengthOpts(text, len, &end, 0);
  long comma = doc == NULL ? json_trailing_comma(text, len) : -1;
  if (comma >= 0) {
    json_set_error(err, text, (size_t)comma,
                   "a comma before the closing bracket (JSON allows none "
                   "there)");
    return NULL;
  }
  if (doc == NULL) {
    size_t at = end != NULL && end >= text ? (size_t)(end - text) : 0;
    if (at > len) at = len;
    if (at + 1 == len && json_ends_early(text, len)) at = len;
    /* cJSON may stop just past the character at fault, on the space that
     * follows it: point at the character. */
    while (at > 0 && at < len && json_is_space(text[at]) &&
           json_skip_space(text, len, at) < len)
      at--;
    char msg[80];
    if (at >= len || json_skip_space(text, len, at) == len) {
      snprintf(msg, sizeof msg, "unexpected end of input");
    } else {
      unsigned char c = (unsigned char)text[at];
      if (c >= 0x20 && c < 0x7f)
        snprintf(msg, sizeof msg, "invalid JSON at '%c'", c);
      else
        snprintf(msg, sizeof msg, "invalid JSON at byte 0x%02x", c);
    }
    json_set_error(err, text, at, msg);
    return NULL;
  }
  /* cJSON stops after the first value; anything but space after it is an
   * error (two documents, or a stray character). */
  size_t rest =
      end != NULL ? json_skip_space(text, len, (size_t)(end - text)) : len;
  if (rest < len && text[rest] != '\0') {
    cJSON_Delete(doc);
    json_set_error(err, text, rest, "unexpected text after the JSON value");
    return NULL;
  }
  return doc;
}

/* Skips the value that starts at text[i]; returns the offset just past it. */
static size_t json_skip_value(const char *text, size_t len, size_t i) {
  int depth = 0;
  while (i < len) {
    char c = text[i];
    if (c == '"') {
      i = json_skip_string(text, len, i);
      if (depth == 0) return i;
      continue;
    }
    if (c == '{' || c == '[') {
      depth++;
    } else if (c == '}' || c == ']') {
      if (depth == 0) return i; /* the end of the enclosing object */
      if (--depth == 0) return i + 1;
    } else if (depth == 0 && (c == ',' || json_is_space(c))) {
      return i;
    }
    i++;
  }
  return len;
}

long app_json_member_offset(const char *text, size_t len, int index,
                            int value) {
  if (text == NULL || index < 0) return -1;
  size_t i = json_skip_space(text, len, 0);
  if (i >= len || text[i] != '{') return -1;
  i++;
  for (int n = 0;; n++) {
    i = json_skip_space(text, len, i);
    if (i >= len || text[i] != '"') return -1;
    size_t key = i;
    i = json_skip_string(text, len, i);
    i = json_skip_space(text, len, i);
    if (i >= len || text[i] != ':') return -1;
    i = json_skip_space(text, len, i + 1);
    if (n == index) return (long)(value ? i : key);
    i = json_skip_value(text, len, i);
    i = json_skip_space(text, len, i);
    if (i >= len || text[i] != ',') return -1;
    i++;
  }
}

/* ---- UTF-8 --------------------------------------------------------------- */

size_t app_utf8_sequence(const unsigned char *s, size_t n) {
  if (n == 0) return 0;
  unsigned char c = s[0];
  if (c < 0x80) return 1;
  size_t len;
  unsigned char lo = 0x80, hi = 0xBF; /* the range of the second byte */
  if (c >= 0xC2 && c <= 0xDF) {
    len = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    len = 3;
    if (c == 0xE0) lo = 0xA0; /* overlong */
    if (c == 0xED) hi = 0x9F; /* surrogates */
  } else if (c >= 0xF0 && c <= 0xF4) {
    len = 4;
    if (c == 0xF0) lo = 0x90; /* overlong */
    if (c == 0xF4) hi = 0x8F; /* above U+10FFFF */
  } else {
    return 0;
  }
  if (n < len || s[1] < lo || s[1] > hi) return 0;
  for (size_t i = 2; i < len; i++)
    if ((s[i] & 0xC0) != 0x80) return 0;
  return len;
}

long app_utf8_invalid_at(const char *s, size_t len) {
  const unsigned char *u = (const unsigned char *)s;
  for (size_t i = 0; i < len;) {
    size_t n = app_utf8_sequence(u + i, len - i);
    if (n == 0) return (long)i;
    i += n;
  }
  return -1;
}

/* Appends the n bytes of piece to out while room is left; counts them all. */
static void json_put(char *out, size_t out_len, size_t *at, const char *piece,
                     size_t n) {
  for (size_t i = 0; i < n; i++, (*at)++)
    if (*at + 1 < out_len) out[*at] = piece[i];
}

size_t app_json_escape(const char *s, size_t len, char *out, size_t out_len) {
  static const char replacement[] = "\xEF\xBF\xBD"; /* U+FFFD */
  const unsigned char *u = (const unsigned char *)s;
  size_t at = 0;
  json_put(out, out_len, &at, "\"", 1);
  for (size_t i = 0; i < len;) {
    unsigned char c = u[i];
    if (c == '"' || c == '\\') {
      char esc[2] = {'\\', (char)c};
      json_put(out, out_len, &at, esc, 2);
      i++;
    } else if (c < 0x20 || c == 0x7F) {
      char esc[8];
      snprintf(esc, sizeof esc, "\\u%04x", c);
      json_put(out, out_len, &at, esc, 6);
      i++;
    } else {
      size_t n = app_utf8_sequence(u + i, len - i);
      if (n == 0) {
        json_put(out, out_len, &at, replacement, 3);
        i++;
      } else {
        json_put(out, out_len, &at, s + i, n);
        i += n;
      }
    }
  }
  json_put(out, out_len, &at, "\"", 1);
  if (out_len > 0) out[at < out_len ? at : out_len - 1] = '\0';
  return at;
}

char *app_utf8_repair(const char *s, size_t len, size_t *out_len) {
  const unsigned char *u = (const unsigned char *)s;
  size_t need = 0;
  for (size_t i = 0; i < len;) {
    size_t n = app_utf8_sequence(u + i, len - i);
    need += n == 0 ? 3 : n;
    i += n == 0 ? 1 : n;
  }
  char *copy = malloc(need + 1);
  if (copy == NULL) return NULL;
  size_t at = 0;
  for (size_t i = 0; i < len;) {
    size_t n = app_utf8_sequence(u + i, len - i);
    if (n == 0) {
      memcpy(copy + at, "\xEF\xBF\xBD", 3);
      at += 3;
      i++;
    } else {
      memcpy(copy + at, s + i, n);
      at += n;
      i += n;
    }
  }
  copy[at] = '\0';
  if (out_len != NULL) *out_len = at;
  return copy;
}

int app_json_string_has_nul(const char *text, size_t len, size_t offset) {
  if (text == NULL || offset >= len || text[offset] != '"') return 0;
  for (size_t i = offset + 1; i < len; i++) {
    if (text[i] == '"') return 0;
    if (text[i] != '\\') continue;
    if (i + 5 < len && text[i + 1] == 'u' &&
        memcmp(text + i + 2, "0000", 4) == 0)
      return 1;
    i++; /* the escaped character */
  }
  return 0;
}
