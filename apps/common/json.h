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

#ifdef __cplusplus
}
#endif
#endif /* APP_JSON_H */
