/* manifest.c: writing and reading manifest lines.
 *
 * sum:   "HEX  PATH", byte for byte what sha256sum and b3sum write: a name
 *        with a backslash, a newline or (coreutils only) a carriage return
 *        is written with "\\", "\n" and "\r", and the line starts with a
 *        backslash. b3sum escapes the first two only, so BLAKE3 lines do
 *        as b3sum does. Other bytes go out as they are.
 * bsd:   "SHA256 (PATH) = HEX", as sha256sum --tag, one line per algorithm.
 * jsonl: {"path":...,"size":N,"sha256":"..."}, one key per algorithm. JSON
 *        is UTF-8: a byte of a name that is not UTF-8 is written as
 *        \udcXX (Python's surrogateescape, which os.fsencode() undoes),
 *        and read back as that byte (parse_jsonl below), so any byte name
 *        makes the round trip through hash and verify.
 */
#include <stdlib.h>
#include <string.h>

#include "fp.h"
#include "json.h" /* app_utf8_sequence */

int fp_path_needs_escape(const char *path, int cr) {
  return strpbrk(path, cr ? "\\\n\r" : "\\\n") != NULL;
}

static void write_escaped(FILE *out, const char *path, int cr) {
  for (const char *p = path; *p; p++) {
    if (*p == '\\')
      fputs("\\\\", out);
    else if (*p == '\n')
      fputs("\\n", out);
    else if (*p == '\r' && cr)
      fputs("\\r", out);
    else
      fputc(*p, out);
  }
}

void fp_write_escaped(FILE *out, const char *path) {
  write_escaped(out, path, 1);
}

void fp_json_string(FILE *out, const char *s) {
  fputc('"', out);
  const unsigned char *p = (const unsigned char *)s;
  const unsigned char *end = p + strlen(s);
  while (*p) {
    if (*p == '"' || *p == '\\') {
      fputc('\\', out);
      fputc(*p++, out);
    } else if (*p < 0x20) {
      fprintf(out, "\\u%04x", *p++);
    } else {
      size_t n = app_utf8_sequence(p, (size_t)(end - p));
      if (n == 0) {
        fprintf(out, "\\udc%02x", *p++);
      } else {
        fwrite(p, 1, n, out);
        p += n;
      }
    }
  }
  fputc('"', out);
}

void fp_manifest_line(FILE *out, int format, const fp_alg *algs, int n_algs,
                      const fp_entry *e) {
  /* b3sum's rules for a BLAKE3 sum line, coreutils' for the others. */
  int cr = !(format == FP_FORMAT_SUM && algs[0] == FP_BLAKE3);
  int esc = fp_path_needs_escape(e->path, cr);
  if (format == FP_FORMAT_JSONL) {
    fputs("{\"path\":", out);
    fp_json_string(out, e->path);
    fprintf(out, ",\"size\":%llu", (unsigned long long)e->size);
    for (int i = 0; i < n_algs; i++)
      fprintf(out, ",\"%s\":\"%s\"", fp_alg_name(algs[i]), e->digest[i]);
    fputs("}\n", out);
    return;
  }
  for (int i = 0; i < n_algs; i++) {
    if (esc) fputc('\\', out);
    if (format == FP_FORMAT_BSD) {
      fprintf(out, "%s (", fp_alg_tag(algs[i]));
      write_escaped(out, e->path, esc ? cr : 0);
      fprintf(out, ") = %s\n", e->digest[i]);
    } else {
      fputs(e->digest[i], out);
      fputs("  ", out);
      if (esc)
        write_escaped(out, e->path, cr);
      else
        fputs(e->path, out);
      fputc('\n', out);
    }
  }
}

/* Undoes the sum format's escaping of len bytes at s. NULL when an escape
 * is not one the format writes. */
static char *unescape(const char *s, size_t len, int escaped) {
  char *out = malloc(len + 1);
  if (out == NULL) return NULL;
  size_t o = 0;
  for (size_t i = 0; i < len; i++) {
    if (escaped && s[i] == '\\') {
      if (i + 1 == len) goto bad;
      char c = s[++i];
      if (c == '\\')
        out[o++] = '\\';
      else if (c == 'n')
        out[o++] = '\n';
      else if (c == 'r')
        out[o++] = '\r';
      else
        goto bad;
    } else {
      out[o++] = s[i];
    }
  }
  out[o] = '\0';
  return out;
bad:
  free(out);
  return NULL;
}

static int is_hex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
         (c >= 'A' && c <= 'F');
}

static int take_hex(const char *s, size_t len, fp_record *r) {
  if (len == 0 || len >= FP_HEX_MAX) return -1;
  for (size_t i = 0; i < len; i++) {
    if (!is_hex(s[i])) return -1;
    r->hex[i] = (char)(s[i] | 0x20); /* lower case */
  }
  r->hex[len] = '\0';
  return 0;
}

/* ---- jsonl ---------------------------------------------------------------
 *
 * A jsonl line is read by the small scanner below rather than a general
 * JSON library: a name that is not UTF-8 is written with each such byte as
 * the lone low surrogate \udcXX (XX = 80..ff, Python's surrogateescape),
 * which JSON's grammar allows but strict decoders (cJSON, ...) refuse or
 * turn into U+FFFD. Read back here, \udcXX is the byte XX again, so any
 * byte name goes through a jsonl manifest and back unchanged. The mapping
 * is one to one: a name's valid UTF-8 never encodes a surrogate, so a
 * \udcXX always stands for a raw byte. Lines are flat objects, as hash
 * writes them; nested values are skipped. */

typedef struct json_in {
  const char *p, *end;
} json_in;

static void json_ws(json_in *j) {
  while (j->p < j->end &&
         (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
    j->p++;
}

static int hex4(const char *s, uint32_t *v) {
  *v = 0;
  for (int i = 0; i < 4; i++) {
    char c = s[i];
    int d = c >= '0' && c <= '9'   ? c - '0'
            : c >= 'a' && c <= 'f' ? c - 'a' + 10
            : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                   : -1;
    if (d < 0) return -1;
    *v = *v << 4 | (uint32_t)d;
  }
  return 0;
}

static size_t put_utf8(char *o, uint32_t cp) {
  if (cp < 0x80) {
    o[0] = (char)cp;
    return 1;
  }
  if (cp < 0x800) {
    o[0] = (char)(0xC0 | cp >> 6);
    o[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
  }
  if (cp < 0x10000) {
    o[0] = (char)(0xE0 | cp >> 12);
    o[1] = (char)(0x80 | (cp >> 6 & 0x3F));
    o[2] = (char)(0x80 | (cp & 0x3F));
    return 3;
  }
  o[0] = (char)(0xF0 | cp >> 18);
  o[1] = (char)(0x80 | (cp >> 12 & 0x3F));
  o[2] = (char)(0x80 | (cp >> 6 & 0x3F));
  o[3] = (char)(0x80 | (cp & 0x3F));
  return 4;
}

/* Decodes the JSON string at j->p (its opening quote) into a malloc'd,
 * NUL-terminated buffer (*out, or NULL to skip it). Returns 0, or -1 when
 * malformed or when it would hold a NUL. */
static int json_string(json_in *j, char **out) {
  if (j->p >= j->end || *j->p != '"') return -1;
  j->p++;
  /* Every escape decodes to no more bytes than it takes. */
  char *buf = out ? malloc((size_t)(j->end - j->p) + 1) : NULL;
  if (out && buf == NULL) return -1;
  size_t o = 0;
  while (j->p < j->end && *j->p != '"') {
    char c = *j->p++;
    if (c != '\\') {
      if (buf) buf[o++] = c;
      continue;
    }
    if (j->p >= j->end) goto bad;
    c = *j->p++;
    const char *simple = strchr("\"\\/bfnrt", c);
    if (c != '\0' && simple != NULL) {
      if (buf) buf[o++] = "\"\\/\b\f\n\r\t"[simple - "\"\\/bfnrt"];
      continue;
    }
    uint32_t cp, lo;
    if (c != 'u' || j->end - j->p < 4 || hex4(j->p, &cp) != 0) goto bad;
    j->p += 4;
    if (cp >= 0xD800 && cp <= 0xDBFF) { /* a pair for one code point */
      if (j->end - j->p < 6 || j->p[0] != '\\' || j->p[1] != 'u' ||
          hex4(j->p + 2, &lo) != 0 || lo < 0xDC00 || lo > 0xDFFF)
        goto bad;
      j->p += 6;
      cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
    } else if (cp >= 0xDC80 && cp <= 0xDCFF) { /* a byte that is not UTF-8 */
      if (buf) buf[o++] = (char)(cp & 0xFF);
      continue;
    } else if ((cp >= 0xDC00 && cp <= 0xDFFF) || cp == 0) {
      goto bad;
    }
    if (buf) o += put_utf8(buf + o, cp);
  }
  if (j->p >= j->end) goto bad;
  j->p++; /* the closing quote */
  if (buf) {
    buf[o] = '\0';
    *out = buf;
  }
  return 0;
bad:
  free(buf);
  return -1;
}

/* Skips a value that is not a string: a number, true, false, null, or a
 * nested object or array (strings inside it included). */
static int json_skip(json_in *j) {
  int depth = 0;
  while (j->p < j->end) {
    char c = *j->p;
    if (c == '"') {
      if (json_string(j, NULL) != 0) return -1;
      continue;
    }
    if (c == '{' || c == '[') {
      depth++;
    } else if (c == '}' || c == ']') {
      if (depth == 0) return 0;
      depth--;
    } else if (c == ',' && depth == 0) {
      return 0;
    }
    j->p++;
  }
  return depth == 0 ? 0 : -1;
}

static int parse_jsonl(const char *line, size_t len, int want, fp_record *r) {
  json_in j = {line, line + len};
  char *path = NULL, *key = NULL;
  char *hex[FP_ALG_COUNT] = {0};
  int rc = -1;
  json_ws(&j);
  if (j.p >= j.end || *j.p++ != '{') return -1;
  json_ws(&j);
  if (j.p < j.end && *j.p == '}') {
    j.p++;
  } else {
    for (;;) {
      json_ws(&j);
      if (json_string(&j, &key) != 0) goto out;
      json_ws(&j);
      if (j.p >= j.end || *j.p++ != ':') goto out;
      json_ws(&j);
      int a = -1;
      for (int i = 0; i < FP_ALG_COUNT && a < 0; i++)
        if (strcmp(key, fp_alg_name((fp_alg)i)) == 0) a = i;
      if (j.p < j.end && *j.p == '"' && (strcmp(key, "path") == 0 || a >= 0)) {
        char **slot = a >= 0 ? &hex[a] : &path;
        free(*slot);
        *slot = NULL;
        if (json_string(&j, slot) != 0) goto out;
      } else if (strcmp(key, "size") == 0 && j.p < j.end && *j.p != '"') {
        char *endp;
        long long v = strtoll(j.p, &endp, 10);
        if (endp == j.p || v < 0) goto out;
        r->size = v;
        j.p = endp;
        if (json_skip(&j) != 0) goto out; /* a fraction or exponent */
      } else if (json_skip(&j) != 0) {
        goto out;
      }
      free(key);
      key = NULL;
      json_ws(&j);
      if (j.p < j.end && *j.p == ',') {
        j.p++;
        continue;
      }
      if (j.p < j.end && *j.p == '}') {
        j.p++;
        break;
      }
      goto out;
    }
  }
  json_ws(&j);
  if (j.p != j.end || path == NULL) goto out;
  rc = 0; /* no digest of the algorithm asked for */
  for (int a = 0; a < FP_ALG_COUNT; a++) {
    if ((want >= 0 && a != want) || hex[a] == NULL) continue;
    if (take_hex(hex[a], strlen(hex[a]), r) != 0) {
      rc = -1;
      break;
    }
    r->alg = a;
    r->path = path;
    path = NULL;
    rc = 1;
    break;
  }
out:
  free(key);
  free(path);
  for (int a = 0; a < FP_ALG_COUNT; a++) free(hex[a]);
  return rc;
}

int fp_manifest_parse(const char *line, size_t len, int want, fp_record *r) {
  memset(r, 0, sizeof *r);
  r->alg = -1;
  r->size = -1;
  if (len > 0 && line[len - 1] == '\r') len--;
  if (len == 0) return 0;
  if (line[0] == '{') return parse_jsonl(line, len, want, r);
  int escaped = line[0] == '\\';
  const char *s = line + escaped;
  size_t n = len - (size_t)escaped;
  /* bsd: TAG (PATH) = HEX */
  size_t tag = 0;
  while (tag < n && s[tag] != ' ' && s[tag] != '(') tag++;
  if (tag > 0 && tag + 1 < n && s[tag] == ' ' && s[tag + 1] == '(') {
    const char *eq = NULL;
    for (size_t i = n; i >= 4 && eq == NULL; i--)
      if (memcmp(s + i - 4, ") = ", 4) == 0) eq = s + i - 4;
    if (eq == NULL || eq < s + tag + 2) return -1;
    int alg = fp_alg_from_tag(s, tag);
    if (alg < 0) return -1;
    if (want >= 0 && alg != want) return 0;
    if (take_hex(eq + 4, (size_t)(s + n - (eq + 4)), r) != 0) return -1;
    r->alg = alg;
    r->path = unescape(s + tag + 2, (size_t)(eq - (s + tag + 2)), escaped);
    return r->path ? 1 : -1;
  }
  /* sum: HEX, a space, a space or '*', PATH */
  size_t h = 0;
  while (h < n && is_hex(s[h])) h++;
  if (h == 0 || h + 2 > n || s[h] != ' ' ||
      (s[h + 1] != ' ' && s[h + 1] != '*'))
    return -1;
  if (take_hex(s, h, r) != 0) return -1;
  r->path = unescape(s + h + 2, n - h - 2, escaped);
  return r->path ? 1 : -1;
}
