/* fuzz_split.h: splits a fuzz input into NUL-terminated parts.
 *
 * The web_scraper fuzz targets take inputs of a few lines: the first line
 * (a path, a base URL, a Content-Type) and the rest (the text to parse).
 */
#ifndef WS_FUZZ_SPLIT_H
#define WS_FUZZ_SPLIT_H
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Copies the first line of data (without its "\n") into *head and the rest
 * into *rest, each a malloc'ed NUL-terminated string; *rest_len is the
 * rest's length (it may hold NULs). Returns 0, or -1 when out of memory. */
static inline int ws_fuzz_split(const uint8_t *data, size_t size, char **head,
                                char **rest, size_t *rest_len) {
  const uint8_t *nl = memchr(data, '\n', size);
  size_t hl = nl ? (size_t)(nl - data) : size;
  size_t off = nl ? hl + 1 : size;
  *head = malloc(hl + 1);
  *rest = malloc(size - off + 1);
  if (*head == NULL || *rest == NULL) {
    free(*head);
    free(*rest);
    return -1;
  }
  memcpy(*head, data, hl);
  (*head)[hl] = '\0';
  memcpy(*rest, data + off, size - off);
  (*rest)[size - off] = '\0';
  *rest_len = size - off;
  return 0;
}

#endif /* WS_FUZZ_SPLIT_H */
