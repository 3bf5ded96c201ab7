/* Levelled logfmt logging to stderr, one write(2) per line. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

static int weft__log_level = -1; /* -1: not read from the environment yet */

static const char *const weft__level_names[] = {"debug", "info", "warn",
                                                "error", "off"};

int weft_log_parse_level(const char *name) {
  if (name == NULL) return -1;
  if (strcasecmp(name, "warning") == 0) return WEFT_LOG_WARN;
  for (int i = 0; i <= WEFT_LOG_OFF; i++)
    if (strcasecmp(name, weft__level_names[i]) == 0) return i;
  return -1;
}

weft_log_level weft_log_get_level(void) {
  int level = __atomic_load_n(&weft__log_level, __ATOMIC_RELAXED);
  if (level < 0) {
    level = weft_log_parse_level(getenv("WEFT_LOG_LEVEL"));
    if (level < 0) level = WEFT_LOG_INFO;
    __atomic_store_n(&weft__log_level, level, __ATOMIC_RELAXED);
  }
  return (weft_log_level)level;
}

void weft_log_set_level(weft_log_level level) {
  if ((int)level < WEFT_LOG_DEBUG || level > WEFT_LOG_OFF) return;
  __atomic_store_n(&weft__log_level, (int)level, __ATOMIC_RELAXED);
}

int weft_log_enabled(weft_log_level level) {
  return level >= weft_log_get_level() && level < WEFT_LOG_OFF;
}

/* Appends s as a logfmt value: bare when it is a plain word, otherwise in
 * double quotes with quotes, backslashes and control characters escaped. */
static size_t weft__log_value(char *buf, size_t len, size_t cap, const char *s) {
  int bare = *s != '\0';
  for (const char *p = s; *p && bare; p++)
    if (*p <= ' ' || *p == '"' || *p == '=' || *p == '\\' || (unsigned char)*p >= 0x7f)
      bare = 0;
  if (bare) return len + (size_t)snprintf(buf + len, len < cap ? cap - len : 0, "%s", s);
  if (len < cap) buf[len] = '"';
  len++;
  for (const char *p = s; *p; p++) {
    unsigned char c = (unsigned char)*p;
    char esc[8];
    const char *out = esc;
    if (c == '"' || c == '\\') {
      esc[0] = '\\', esc[1] = (char)c, esc[2] = '\0';
    } else if (c == '\n') {
      out = "\\n";
    } else if (c < ' ') {
      snprintf(esc, sizeof esc, "\\x%02x", c);
    } else {
      esc[0] = (char)c, esc[1] = '\0';
    }
    for (; *out; out++, len++)
      if (len < cap) buf[len] = *out;
  }
  if (len < cap) buf[len] = '"';
  return len + 1;
}

void weft_log(weft_log_level level, const char *msg, const char *kv_fmt, ...) {
  if (!weft_log_enabled(level)) return;
  char buf[2048];
  size_t cap = sizeof buf - 2, len = 0;
  struct timespec ts;
  struct tm tm;
  clock_gettime(CLOCK_REALTIME, &ts);
#if defined(_WIN32)
  time_t secs = ts.tv_sec;
  gmtime_s(&tm, &secs);
#else
  gmtime_r(&ts.tv_sec, &tm);
#endif
  len += strftime(buf, cap, "ts=%Y-%m-%dT%H:%M:%S", &tm);
  len += (size_t)snprintf(buf + len, cap - len, ".%03ldZ level=%s msg=",
                          ts.tv_nsec / 1000000, weft__level_names[level]);
  len = weft__log_value(buf, len, cap, msg ? msg : "");
  if (kv_fmt != NULL && *kv_fmt != '\0' && len < cap) {
    buf[len++] = ' ';
    va_list ap;
    va_start(ap, kv_fmt);
    int n = vsnprintf(buf + len, cap - len, kv_fmt, ap);
    va_end(ap);
    if (n > 0) len += (size_t)n;
  }
  weft__task *t = weft__current_task;
  if (t != NULL && t->name[0] != '\0' && len < cap) {
    len += (size_t)snprintf(buf + len, cap - len, " task=");
    len = weft__log_value(buf, len, cap, t->name);
  }
  if (len > cap) len = cap;
  buf[len++] = '\n';
  ssize_t w = write(STDERR_FILENO, buf, len);
  (void)w;
}
