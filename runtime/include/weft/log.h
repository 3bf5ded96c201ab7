/* weft/log.h: levelled, structured logging in logfmt to stderr.
 *
 *   weft_log(WEFT_LOG_INFO, "listening", "addr=%s port=%d", host, port);
 *   -> ts=2026-11-26T09:58:01.123Z level=info msg=listening addr=::1 port=8080
 *
 * The level comes from weft_log_set_level() or, at first use, from the
 * WEFT_LOG_LEVEL environment variable (debug, info, warn, error, off);
 * the default is info.
 */
#ifndef WEFT_LOG_H
#define WEFT_LOG_H

#ifdef __cplusplus
extern "C" {
#endif

/** Log levels, most verbose first. */
typedef enum {
  WEFT_LOG_DEBUG = 0,
  WEFT_LOG_INFO = 1,
  WEFT_LOG_WARN = 2,
  WEFT_LOG_ERROR = 3,
  WEFT_LOG_OFF = 4
} weft_log_level;

/** Sets the level below which messages are dropped. */
void weft_log_set_level(weft_log_level level);

/** The current level. */
weft_log_level weft_log_get_level(void);

/**
 * Parses a level name (debug, info, warn, warning, error, off; any case).
 * Returns the level, or -1 for an unknown name.
 */
int weft_log_parse_level(const char *name);

/** Non-zero when a message at level would be written. */
int weft_log_enabled(weft_log_level level);

/**
 * Writes one logfmt line: ts, level, msg (quoted when needed), then the
 * key=value pairs formatted from kv_fmt (may be NULL), then the calling
 * task's name as task=... when called from a named task. One write(2) per
 * line, so lines from several threads never interleave.
 */
void weft_log(weft_log_level level, const char *msg, const char *kv_fmt, ...)
#if defined(__MINGW32__)
    __attribute__((format(gnu_printf, 3, 4))) /* C99 formats, not msvcrt's */
#elif defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

#ifdef __cplusplus
}
#endif
#endif /* WEFT_LOG_H */
