/* json.h: JSON parsing with bounded depth and error positions.
 *
 * cJSON parses recursively, about 100 bytes of stack per level, and a task's
 * stack is small: text from outside (a configuration file, a message from a
 * client) is scanned first, without recursion, and refused when it nests
 * deeper than a limit, before cJSON sees it. Errors carry the line and
 * column of the fault so that a person can find it.
 *
 *   app_json_error err;
 *   cJSON *doc = app_json_parse(text, len, APP_JSON_MAX_DEPTH, &err);
 *   if (doc == NULL)
 *     fprintf(stderr, "%s:%d:%d: %s\n", path, err.line, err.column,
 * err.message);
 */
#ifndef APP_JSON_H
#define APP_JSON_H

#include <stddef.h>

#include <cjson/cJSON.h>

#ifdef __cplusplus
extern "C" {
#endif

/** The nesting applications accept by default (objects and arrays). */
#define APP_JSON_MAX_DEPTH 64

/** Where and why a parse failed. */
typedef struct app_json_error {
  size_t offset;     /**< byte offset of the fault in the text */
  int line;          /**< 1-based line of the fault */
  int column;        /**< 1-based column (in bytes) of the fault */
  char message[128]; /**< what is wrong, without the position */
} app_json_error;

/**
 * Parses len bytes of text (which need not be NUL-terminated) into a cJSON
 * tree, to be freed with cJSON_Delete(). Refuses, without calling cJSON,
 * text that nests objects and arrays deeper than max_depth. Returns NULL on
 * any error and describes it in *err (when err is not NULL). Thread-safe:
 * does not use cJSON_GetErrorPtr()'s global.
 */
cJSON *app_json_parse(const char *text, size_t len, int max_depth,
                      app_json_error *err);

/** Computes the 1-based line and column of offset in text. */
void app_json_position(const char *text, size_t offset, int *line, int *column);

/**
 * Finds the index-th member (from 0) of the top-level object in text and
 * returns the byte offset of its key (value == 0) or of its value
 * (value != 0); returns -1 when there is no such member. Used to point at
 * the member a configuration error is about, since cJSON keeps no positions.
 */
long app_json_member_offset(const char *text, size_t len, int index, int value);

/**
 * Whether the JSON string that starts (at its opening quote) at offset in
 * text holds the escape \u0000. cJSON stops a string at a NUL, so such a
 * string reaches the program cut short: a program that takes strings from
 * outside checks the members it uses (app_json_member_offset() gives the
 * offset) and refuses them. Returns 1 or 0 (0 also when offset is not at a
 * string).
 */
int app_json_string_has_nul(const char *text, size_t len, size_t offset);

/* ---- UTF-8: every JSON an application writes is valid UTF-8 ------------- */

/**
 * The length (1 to 4) of the well-formed UTF-8 sequence that starts the n
 * bytes at s, or 0 when they do not start one: a stray continuation byte,
 * an overlong form, a surrogate, a code point above U+10FFFF, or a
 * sequence cut short (n too small). n == 0 gives 0.
 */
size_t app_utf8_sequence(const unsigned char *s, size_t n);

/**
 * Returns -1 when the len bytes at s are valid UTF-8, or else the offset of
 * the first byte that is not.
 */
long app_utf8_invalid_at(const char *s, size_t len);

/**
 * Writes the len bytes at s as a JSON string, quotes included, into out
 * (out_len bytes with the terminating NUL, which is always written when
 * out_len > 0): '"', '\' and control characters escaped, and each byte
 * that is not part of valid UTF-8 written as U+FFFD, so that the result is
 * valid UTF-8 whatever s holds. Returns the length the whole string takes
 * (without the NUL), as snprintf() does; at most 6 * len + 2.
 */
size_t app_json_escape(const char *s, size_t len, char *out, size_t out_len);

/**
 * Returns a copy of the len bytes at s (NUL-terminated, from malloc(), its
 * length in *out_len when out_len is not NULL) with each byte that is not
 * part of valid UTF-8 replaced by U+FFFD; NULL when out of memory. For text
 * that is already JSON: the bytes replaced are always inside its strings.
 */
char *app_utf8_repair(const char *s, size_t len, size_t *out_len);

#ifdef __cplusplus
}
#endif
#endif /* APP_JSON_H */
