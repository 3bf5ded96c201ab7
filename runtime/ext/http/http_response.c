/* http_response.c: the response a handler fills in, and the head the
 * connection writes for it.
 *
 * The head is built without formatting functions: the status lines are
 * string constants, the Date field is formatted at most once a second per
 * thread, and the fields set by the handler are copied as they are. The
 * fields are kept as "name\0value\0" pairs so that middleware can read them
 * back as C strings.
 */
#include "http_conn.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- Buffers and characters ----------------------------------------------- */

int weft__http_buf_reserve(http_buf *b, size_t extra) {
  if (b->cap - b->len > extra) return 0; /* keeps room for a trailing NUL */
  size_t cap = b->cap ? b->cap : 256;
  while (cap - b->len <= extra) {
    if (cap > SIZE_MAX / 2) return UV_ENOMEM;
    cap *= 2;
  }
  char *p = realloc(b->data, cap);
  if (p == NULL) return UV_ENOMEM;
  b->data = p;
  b->cap = cap;
  return 0;
}

int weft__http_buf_append(http_buf *b, const void *data, size_t len) {
  if (weft__http_buf_reserve(b, len) != 0) return UV_ENOMEM;
  if (len > 0) memcpy(b->data + b->len, data, len);
  b->len += len;
  b->data[b->len] = '\0';
  return 0;
}

void weft__http_buf_free(http_buf *b) {
  free(b->data);
  b->data = NULL;
  b->len = b->cap = 0;
}

static int ascii_lower(int ch) {
  return ch >= 'A' && ch <= 'Z' ? ch + ('a' - 'A') : ch;
}

int weft__http_casecmp(const char *a, const char *b) {
  while (*a != '\0' && ascii_lower((unsigned char)*a) == ascii_lower((unsigned char)*b)) {
    a++;
    b++;
  }
  return ascii_lower((unsigned char)*a) - ascii_lower((unsigned char)*b);
}

/* RFC 9110 tchar, by table: the parser checks every byte of every field
 * name of every request with it. */
static const unsigned char http_tchar[256] = {
    ['!'] = 1, ['#'] = 1, ['$'] = 1, ['%'] = 1, ['&'] = 1, ['\''] = 1,
    ['*'] = 1, ['+'] = 1, ['-'] = 1, ['.'] = 1, ['^'] = 1, ['_'] = 1,
    ['`'] = 1, ['|'] = 1, ['~'] = 1,
    ['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1,
    ['6'] = 1, ['7'] = 1, ['8'] = 1, ['9'] = 1,
    ['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1, ['F'] = 1,
    ['G'] = 1, ['H'] = 1, ['I'] = 1, ['J'] = 1, ['K'] = 1, ['L'] = 1,
    ['M'] = 1, ['N'] = 1, ['O'] = 1, ['P'] = 1, ['Q'] = 1, ['R'] = 1,
    ['S'] = 1, ['T'] = 1, ['U'] = 1, ['V'] = 1, ['W'] = 1, ['X'] = 1,
    ['Y'] = 1, ['Z'] = 1,
    ['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1,
    ['g'] = 1, ['h'] = 1, ['i'] = 1, ['j'] = 1, ['k'] = 1, ['l'] = 1,
    ['m'] = 1, ['n'] = 1, ['o'] = 1, ['p'] = 1, ['q'] = 1, ['r'] = 1,
    ['s'] = 1, ['t'] = 1, ['u'] = 1, ['v'] = 1, ['w'] = 1, ['x'] = 1,
    ['y'] = 1, ['z'] = 1,
};

int weft__http_is_tchar(unsigned char ch) { return http_tchar[ch]; }

/* ---- Status codes --------------------------------------------------------- */

/* The status codes with a reason phrase; one table gives the phrases and
 * the precomputed status lines. */
#define HTTP_REASON_MAP(XX)                   \
  XX(100, "Continue")                         \
  XX(101, "Switching Protocols")              \
  XX(200, "OK")                               \
  XX(201, "Created")                          \
  XX(202, "Accepted")                         \
  XX(204, "No Content")                       \
  XX(206, "Partial Content")                  \
  XX(301, "Moved Permanently")                \
  XX(302, "Found")                            \
  XX(303, "See Other")                        \
  XX(304, "Not Modified")                     \
  XX(307, "Temporary Redirect")               \
  XX(308, "Permanent Redirect")               \
  XX(400, "Bad Request")                      \
  XX(401, "Unauthorized")                     \
  XX(403, "Forbidden")                        \
  XX(404, "Not Found")                        \
  XX(405, "Method Not Allowed")               \
  XX(408, "Request Timeout")                  \
  XX(409, "Conflict")                         \
  XX(410, "Gone")                             \
  XX(411, "Length Required")                  \
  XX(413, "Content Too Large")                \
  XX(414, "URI Too Long")                     \
  XX(415, "Unsupported Media Type")           \
  XX(416, "Range Not Satisfiable")            \
  XX(417, "Expectation Failed")               \
  XX(426, "Upgrade Required")                 \
  XX(429, "Too Many Requests")                \
  XX(431, "Request Header Fields Too Large")  \
  XX(500, "Internal Server Error")            \
  XX(501, "Not Implemented")                  \
  XX(502, "Bad Gateway")                      \
  XX(503, "Service Unavailable")              \
  XX(504, "Gateway Timeout")                  \
  XX(505, "HTTP Version Not Supported")

const char *weft_http_status_text(int status) {
  switch (status) {
#define XX(code, text) \
  case code:           \
    return text;
    HTTP_REASON_MAP(XX)
#undef XX
    default:
      return "Unknown";
  }
}

/* Appends "HTTP/1.1 <status> <reason>\r\n". */
static int status_line(http_buf *out, int status) {
  const char *line;
  size_t len;
  switch (status) {
#define XX(code, text)                           \
  case code:                                     \
    line = "HTTP/1.1 " #code " " text "\r\n";    \
    len = sizeof("HTTP/1.1 " #code " " text "\r\n") - 1; \
    break;
    HTTP_REASON_MAP(XX)
#undef XX
    default: {
      /* A code without a phrase of ours (100..999, checked when set). */
      char buf[32] = "HTTP/1.1 000 Unknown\r\n";
      buf[9] = (char)('0' + status / 100);
      buf[10] = (char)('0' + status / 10 % 10);
      buf[11] = (char)('0' + status % 10);
      return weft__http_buf_append(out, buf, strlen(buf));
    }
  }
  return weft__http_buf_append(out, line, len);
}

int weft__http_status_no_body(int status) {
  return status < 200 || status == 204 || status == 304;
}

/* ---- The Date field ------------------------------------------------------- */

/* "Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n" (RFC 9110 IMF-fixdate), made
 * at most once a second per thread. Written by hand: strftime() would
 * follow the program's locale. */
#define HTTP_DATE_LINE_LEN 37
static _Thread_local time_t http_date_second = (time_t)-1;
static _Thread_local char http_date_line[HTTP_DATE_LINE_LEN + 1];

static void put2(char *p, int v) {
  p[0] = (char)('0' + v / 10 % 10);
  p[1] = (char)('0' + v % 10);
}

static const char *date_line(void) {
  time_t now = time(NULL);
  if (now == http_date_second) return http_date_line;
  static const char days[] = "SunMonTueWedThuFriSat";
  static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
  struct tm tm;
#ifdef _WIN32
  gmtime_s(&tm, &now);
#else
  gmtime_r(&now, &tm);
#endif
  char *p = http_date_line;
  memcpy(p, "Date: ", 6);
  memcpy(p + 6, days + 3 * tm.tm_wday, 3);
  memcpy(p + 9, ", ", 2);
  put2(p + 11, tm.tm_mday);
  p[13] = ' ';
  memcpy(p + 14, months + 3 * tm.tm_mon, 3);
  p[17] = ' ';
  int year = tm.tm_year + 1900;
  put2(p + 18, year / 100);
  put2(p + 20, year % 100);
  p[22] = ' ';
  put2(p + 23, tm.tm_hour);
  p[25] = ':';
  put2(p + 26, tm.tm_min);
  p[28] = ':';
  put2(p + 29, tm.tm_sec);
  memcpy(p + 31, " GMT\r\n", 6);
  p[HTTP_DATE_LINE_LEN] = '\0';
  http_date_second = now;
  return http_date_line;
}

/* ---- The head ------------------------------------------------------------- */

/* Appends the decimal digits of v. */
static int append_u64(http_buf *out, uint64_t v) {
  char digits[24];
  size_t n = sizeof digits;
  do {
    digits[--n] = (char)('0' + v % 10);
    v /= 10;
  } while (v != 0);
  return weft__http_buf_append(out, digits + n, sizeof digits - n);
}

int weft__http_head(http_buf *out, const weft_http_response *res, int framing,
                    uint64_t length, int connection) {
  int status = res->status;
  /* A whole head is rarely over this; one reservation covers the copies. */
  if (weft__http_buf_reserve(out, 128 + res->headers.len + 4 * res->header_count) != 0)
    return UV_ENOMEM;
  int r = status_line(out, status);
  if (r == 0) r = weft__http_buf_append(out, date_line(), HTTP_DATE_LINE_LEN);
  const char *p = res->headers.data;
  for (size_t i = 0; i < res->header_count && r == 0; i++) {
    size_t nlen = strlen(p);
    const char *value = p + nlen + 1;
    size_t vlen = strlen(value);
    r = weft__http_buf_reserve(out, nlen + vlen + 4);
    if (r != 0) break;
    char *w = out->data + out->len;
    memcpy(w, p, nlen); /* NOLINT(bugprone-not-null-terminated-result): length-counted */
    w[nlen] = ':';
    w[nlen + 1] = ' ';
    memcpy(w + nlen + 2, value, vlen); /* NOLINT(bugprone-not-null-terminated-result): length-counted */
    w[nlen + 2 + vlen] = '\r';
    w[nlen + 3 + vlen] = '\n';
    out->len += nlen + vlen + 4;
    p = value + vlen + 1;
  }
  /* 1xx and 204 carry no length; 304 would describe another response's. */
  if (r == 0 && framing == 'L' && !weft__http_status_no_body(status)) {
    r = weft__http_buf_append(out, "Content-Length: ", 16);
    if (r == 0) r = append_u64(out, length);
    if (r == 0) r = weft__http_buf_append(out, "\r\n", 2);
  }
  if (r == 0 && framing == 'C')
    r = weft__http_buf_append(out, "Transfer-Encoding: chunked\r\n", 28);
  if (r == 0 && connection == HTTP_CONN_CLOSE)
    r = weft__http_buf_append(out, "Connection: close\r\n", 19);
  if (r == 0 && connection == HTTP_CONN_KEEP_ALIVE)
    r = weft__http_buf_append(out, "Connection: keep-alive\r\n", 24);
  if (r == 0) r = weft__http_buf_append(out, "\r\n", 2);
  return r;
}

/* ---- Setting the response ------------------------------------------------- */

void weft__http_response_close_file(weft_http_response *res) {
  if (res->file_fd >= 0) close(res->file_fd);
  res->file_fd = -1;
  res->file_offset = res->file_len = 0;
}

void weft__http_response_reset(weft_http_response *res) {
  weft__http_response_close_file(res);
  res->status = 200;
  res->close = 0;
  res->hijacked = 0;
  res->head_only = 0;
  res->stream = 0;
  res->stream_error = 0;
  res->headers.len = 0;
  res->header_count = 0;
  res->body.len = 0;
  if (res->body.data) res->body.data[0] = '\0';
}

void weft__http_response_free(weft_http_response *res) {
  weft__http_response_close_file(res);
  weft__http_buf_free(&res->headers);
  weft__http_buf_free(&res->body);
}

int weft_http_response_status(weft_http_response *res, int status) {
  if (status < 100 || status > 999 || res->stream) return UV_EINVAL;
  res->status = status;
  return 0;
}

/* Whether a comma-separated header value lists token (without case). */
static int value_has_token(const char *value, const char *token) {
  size_t n = strlen(token);
  const char *p = value;
  while (*p != '\0') {
    while (*p == ' ' || *p == '\t' || *p == ',') p++;
    const char *start = p;
    while (*p != '\0' && *p != ',') p++;
    const char *end = p;
    while (end > start && (end[-1] == ' ' || end[-1] == '\t')) end--;
    if ((size_t)(end - start) == n) {
      size_t i = 0;
      while (i < n && ascii_lower((unsigned char)start[i]) ==
                          ascii_lower((unsigned char)token[i]))
        i++;
      if (i == n) return 1;
    }
  }
  return 0;
}

int weft_http_response_header(weft_http_response *res, const char *name,
                              const char *value) {
  if (name == NULL || value == NULL || name[0] == '\0' || res->stream) return UV_EINVAL;
  /* The checks measure the strings as they go. */
  size_t nlen = 0;
  for (; name[nlen] != '\0'; nlen++)
    if (!http_tchar[(unsigned char)name[nlen]]) return UV_EINVAL;
  size_t vlen = 0;
  for (; value[vlen] != '\0'; vlen++)
    if (value[vlen] == '\r' || value[vlen] == '\n') return UV_EINVAL;
  /* The names the connection writes itself are told apart by length
   * first, so that most names are never compared. */
  if ((nlen == 14 && weft__http_casecmp(name, "Content-Length") == 0) ||
      (nlen == 17 && weft__http_casecmp(name, "Transfer-Encoding") == 0))
    return UV_EINVAL;
  /* The connection writes its own Connection header, from what it knows
   * and from this request to close. */
  if (nlen == 10 && weft__http_casecmp(name, "Connection") == 0) {
    if (value_has_token(value, "close")) res->close = 1;
    return 0;
  }
  http_buf *h = &res->headers;
  if (weft__http_buf_reserve(h, nlen + vlen + 2) != 0) return UV_ENOMEM;
  memcpy(h->data + h->len, name, nlen + 1);
  memcpy(h->data + h->len + nlen + 1, value, vlen + 1);
  h->len += nlen + vlen + 2;
  h->data[h->len] = '\0';
  res->header_count++;
  return 0;
}

int weft_http_response_body(weft_http_response *res, const void *data,
                            size_t len) {
  if (res->stream) return UV_EINVAL;
  /* A buffered body replaces a file body. */
  weft__http_response_close_file(res);
  res->body.len = 0;
  return weft_http_response_append(res, data, len);
}

int weft_http_response_append(weft_http_response *res, const void *data,
                              size_t len) {
  if ((data == NULL && len > 0) || res->stream || res->file_fd >= 0) return UV_EINVAL;
  return weft__http_buf_append(&res->body, data, len);
}

void weft_http_response_close(weft_http_response *res) {
  res->close = 1;
}

int weft_http_response_file(weft_http_response *res, int fd, int64_t offset,
                            int64_t len) {
  if (fd < 0 || offset < 0 || len < 0 || res->stream) return UV_EINVAL;
  if (len > INT64_MAX - offset) return UV_EINVAL;
  /* A regular file too short for the range would leave the promised
   * Content-Length unmet: refused now, while an error can still be sent. */
  struct stat st;
  if (fstat(fd, &st) != 0) return UV_EINVAL;
  if (S_ISDIR(st.st_mode)) return UV_EINVAL;
  if (S_ISREG(st.st_mode) && offset + len > (int64_t)st.st_size) return UV_EINVAL;
  if (res->file_fd != fd) weft__http_response_close_file(res);
  res->file_fd = fd;
  res->file_offset = offset;
  res->file_len = len;
  res->body.len = 0;
  return 0;
}

/* ---- Reading the response back -------------------------------------------- */

int weft_http_response_get_status(const weft_http_response *res) {
  return res->status;
}

const char *weft_http_response_get_header(const weft_http_response *res,
                                          const char *name) {
  if (name == NULL) return NULL;
  const char *p = res->headers.data;
  for (size_t i = 0; i < res->header_count; i++) {
    const char *value = p + strlen(p) + 1;
    if (weft__http_casecmp(p, name) == 0) return value;
    p = value + strlen(value) + 1;
  }
  return NULL;
}

int weft_http_response_remove_header(weft_http_response *res,
                                     const char *name) {
  if (name == NULL || res->stream) return UV_EINVAL;
  char *p = res->headers.data;
  size_t removed = 0;
  size_t i = 0;
  while (i < res->header_count) {
    char *value = p + strlen(p) + 1;
    char *next = value + strlen(value) + 1;
    if (weft__http_casecmp(p, name) != 0) {
      p = next;
      i++;
      continue;
    }
    /* Closes the gap: the pairs after this one move down over it. */
    size_t tail = (size_t)(res->headers.data + res->headers.len - next);
    memmove(p, next, tail);
    res->headers.len -= (size_t)(next - p);
    res->headers.data[res->headers.len] = '\0';
    res->header_count--;
    removed++;
  }
  return removed > INT32_MAX ? INT32_MAX : (int)removed;
}

const void *weft_http_response_get_body(const weft_http_response *res,
                                        size_t *len) {
  if (len) *len = res->body.len;
  return res->body.data ? res->body.data : "";
}

int weft_http_response_is_streaming(const weft_http_response *res) {
  return res->stream != 0;
}

int weft_http_response_has_file(const weft_http_response *res) {
  return res->file_fd >= 0;
}
