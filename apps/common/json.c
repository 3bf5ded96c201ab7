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
