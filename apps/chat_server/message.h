/* message.h: the bytes the server sends, built once and shared.
 *
 * A chat_buf is one protocol message, encoded as a JSON object followed by
 * "\n", with a reference count: a room encodes a message once and every
 * member's outbound queue holds a reference to the same bytes (a TCP
 * connection writes them as they are, a WebSocket sends them without the
 * "\n"). History keeps references to the same buffers.
 *
 * chat_sb builds such text: JSON strings are escaped as they are appended,
 * and the input has been checked to be UTF-8 before, so what is built is
 * always valid UTF-8.
 */
#ifndef CHAT_MESSAGE_H
#define CHAT_MESSAGE_H

#include <stddef.h>
#include <stdint.h>

/** A shared, immutable message: len bytes of JSON and a "\n". */
typedef struct chat_buf {
  int refs;        /* atomic */
  uint32_t len;    /* bytes of data, the "\n" included */
  int64_t seq;     /* a room message's seq, else 0 */
  char data[];
} chat_buf;

/** Makes a buffer holding a copy of len bytes (which end with "\n"), with
 * one reference. NULL when out of memory. */
chat_buf *chat_buf_new(const char *data, size_t len);

/** Takes one more reference. */
void chat_buf_ref(chat_buf *b);

/** Drops a reference; the last one frees b. NULL is ignored. */
void chat_buf_unref(chat_buf *b);

/** A growable string. Out of memory sticks: chat_sb_finish() then fails. */
typedef struct chat_sb {
  char *data;
  size_t len, cap;
  int failed;
} chat_sb;

void chat_sb_init(chat_sb *sb);
void chat_sb_free(chat_sb *sb);
void chat_sb_add(chat_sb *sb, const char *s, size_t len);
void chat_sb_str(chat_sb *sb, const char *s);          /* raw C string */
void chat_sb_int(chat_sb *sb, int64_t v);
void chat_sb_json(chat_sb *sb, const char *s, size_t len); /* "escaped" */
void chat_sb_jstr(chat_sb *sb, const char *s);          /* "escaped" C string */

/** Ends the text with "\n" and turns it into a buffer (sb is emptied).
 * NULL when out of memory. */
chat_buf *chat_sb_finish(chat_sb *sb);

/** Builds {"type":"error","code":CODE,"message":TEXT}. NULL: out of memory. */
chat_buf *chat_error_buf(const char *code, const char *text);

/** Non-zero when len bytes at s are well-formed UTF-8 (no overlongs, no
 * surrogates, nothing past U+10FFFF). */
int chat_utf8_valid(const char *s, size_t len);

/** Milliseconds since the Unix epoch, for "ts". */
int64_t chat_wall_ms(void);

#endif /* CHAT_MESSAGE_H */
