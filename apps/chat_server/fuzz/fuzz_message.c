/* fuzz_message: decoding a client's protocol message under a fuzzer.
 *
 * An input is one line (TCP) or one text frame (WebSocket) from a client.
 * It goes through what the server does before dispatching on "type": the
 * UTF-8 check and the depth-bounded JSON parse (conn.c). Text that passes
 * the UTF-8 check is also escaped as a JSON string the way messages are
 * built (message.c), and the result must be valid UTF-8 and parse back to
 * the same text. See cmake/weftFuzz.cmake for the builds.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "json.h"
#include "../message.h"

/* As conn.c parses requests. */
#define FUZZ_CHAT_JSON_DEPTH 16

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *line = (const char *)data;
  if (!chat_utf8_valid(line, size)) return 0;
  app_json_error err;
  cJSON *doc = app_json_parse(line, size, FUZZ_CHAT_JSON_DEPTH, &err);
  if (doc != NULL) {
    const cJSON *type = cJSON_IsObject(doc)
                            ? cJSON_GetObjectItemCaseSensitive(doc, "type")
                            : NULL;
    if (type != NULL && cJSON_IsString(type) &&
        !chat_utf8_valid(type->valuestring,
                                                 strlen(type->valuestring))) {
      fprintf(stderr, "fuzz_message: parsed a type that is not UTF-8\n");
      abort();
    }
    cJSON_Delete(doc);
  } else if (err.column < 1 || err.line < 1) {
    fprintf(stderr, "fuzz_message: error without a position\n");
    abort();
  }
  /* Escaping: what is built from valid text is valid UTF-8 and JSON. */
  chat_sb sb;
  chat_sb_init(&sb);
  chat_sb_json(&sb, line, size);
  chat_buf *b = chat_sb_finish(&sb);
  if (b == NULL) return 0;
  if (b->len < 3 || b->data[b->len - 1] != '\n' ||
      !chat_utf8_valid(b->data, b->len)) {
    fprintf(stderr, "fuzz_message: escaped text is not UTF-8\n");
    abort();
  }
  cJSON *back = app_json_parse(b->data, b->len - 1, 1, NULL);
  if (!cJSON_IsString(back) ||
      (memchr(line, '\0', size) == NULL &&
       (strlen(back->valuestring) != size ||
        memcmp(back->valuestring, line, size) != 0))) {
    fprintf(stderr, "fuzz_message: escaped text does not parse back: %.*s\n",
            (int)(b->len < 200 ? b->len : 200), b->data);
    abort();
  }
  cJSON_Delete(back);
  chat_buf_unref(b);
  return 0;
}
