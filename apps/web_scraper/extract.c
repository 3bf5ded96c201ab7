/* extract.c: charset detection, parsing and XPath with libxml2. */
#include "extract.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <libxml/HTMLparser.h>
#include <libxml/xpath.h>
#include <libxml/xpathInternals.h>
#include <zlib.h>

#include "strmap.h"
#include "url.h"

/* How far into a page a <meta> charset is looked for (HTML: 1024 bytes;
 * pages with long heads are common, so more). */
#define META_SCAN_BYTES 4096

/* Links read from one page at most: a page with more is cut there. */
#define MAX_LINKS 100000

int ws_is_html(const char *ct) {
  if (ct == NULL) return 0;
  while (isspace((unsigned char)*ct)) ct++;
  size_t n = strcspn(ct, "; \t");
  return (n == 9 && strncasecmp(ct, "text/html", 9) == 0) ||
         (n == 21 && strncasecmp(ct, "application/xhtml+xml", 21) == 0);
}

/* Copies a charset token (letters, digits, - _ . : ) at s into buf; 0
 * when there is none. */
static int take_token(const char *s, const char *end, char *buf, size_t len) {
  while (s < end && (isspace((unsigned char)*s) || *s == '"' || *s == '\''))
    s++;
  size_t n = 0;
  while (s < end && n + 1 < len &&
         (isalnum((unsigned char)*s) || strchr("-_.:", *s) != NULL))
    buf[n++] = *s++;
  buf[n] = '\0';
  return n > 0;
}

/* Finds "charset" then "=" in [s, end) and takes the token after it. */
static int charset_param(const char *s, const char *end, char *buf,
                         size_t len) {
  for (const char *p = s; p + 7 <= end; p++) {
    if (strncasecmp(p, "charset", 7) != 0) continue;
    const char *q = p + 7;
    while (q < end && isspace((unsigned char)*q)) q++;
    if (q < end && *q == '=') return take_token(q + 1, end, buf, len);
  }
  return 0;
}

/* Non-zero when the len bytes at s are valid UTF-8 (a sequence cut at the
 * end is allowed: the body may have been cut at --max-body). */
static int valid_utf8(const unsigned char *s, size_t len) {
  size_t i = 0;
  while (i < len) {
    unsigned char c = s[i];
    size_t n;
    if (c < 0x80) {
      i++;
      continue;
    } else if (c >= 0xC2 && c <= 0xDF) {
      n = 1;
    } else if (c >= 0xE0 && c <= 0xEF) {
      n = 2;
    } else if (c >= 0xF0 && c <= 0xF4) {
      n = 3;
    } else {
      return 0;
    }
    for (size_t k = 1; k <= n; k++) {
      if (i + k >= len) return 1;
      if ((s[i + k] & 0xC0) != 0x80) return 0;
    }
    i += n + 1;
  }
  return 1;
}

/* The name libxml2 and iconv know for an HTML charset label. */
static const char *canonical_charset(const char *label) {
  /* HTML reads the Latin-1 labels as windows-1252, its superset. */
  static const char *const latin1[] = {"iso-8859-1", "iso8859-1", "latin1",
                                       "l1",         "us-ascii",  "ascii",
                                       "cp1252",     "windows-1252"};
  for (size_t i = 0; i < sizeof latin1 / sizeof latin1[0]; i++)
    if (strcasecmp(label, latin1[i]) == 0) return "WINDOWS-1252";
  if (strcasecmp(label, "utf8") == 0 || strcasecmp(label, "utf-8") == 0)
    return "UTF-8";
  return label;
}

const char *ws_detect_charset(const char *body, size_t len,
                              const char *content_type, char *buf,
                              size_t buf_len) {
  if (content_type != NULL &&
      charset_param(content_type, content_type + strlen(content_type), buf,
                    buf_len))
    return canonical_charset(buf);
  const unsigned char *u = (const unsigned char *)body;
  if (len >= 3 && u[0] == 0xEF && u[1] == 0xBB && u[2] == 0xBF) return "UTF-8";
  if (len >= 2 && u[0] == 0xFF && u[1] == 0xFE) return "UTF-16LE";
  if (len >= 2 && u[0] == 0xFE && u[1] == 0xFF) return "UTF-16BE";
  size_t scan = len < META_SCAN_BYTES ? len : META_SCAN_BYTES;
  const char *end = body + scan;
  for (const char *p = body; p + 5 < end; p++) {
    if (p[0] != '<' || strncasecmp(p + 1, "meta", 4) != 0) continue;
    const char *close = memchr(p, '>', (size_t)(end - p));
    if (close == NULL) break;
    if (charset_param(p + 5, close, buf, buf_len))
      return canonical_charset(buf);
    p = close;
  }
  return valid_utf8(u, len) ? "UTF-8" : "WINDOWS-1252";
}

/* libxml2's error callbacks: messages are dropped (the record says what
 * went wrong), or kept in a buffer while an XPath is checked. */
static void silent(void *ctx, const char *msg, ...) {
  (void)ctx;
  (void)msg;
}

static void keep_error(void *ctx, xmlErrorPtr err) {
  char *why = ctx;
  if (why[0] == '\0' && err != NULL && err->message != NULL) {
    snprintf(why, 200, "%s", err->message);
    size_t n = strlen(why);
    while (n > 0 && (why[n - 1] == '\n' || why[n - 1] == ' ')) why[--n] = '\0';
  }
}

int ws_xpath_check(const char *xpath, char *why, size_t why_len) {
  char msg[200] = "";
  xmlSetGenericErrorFunc(NULL, silent);
  xmlSetStructuredErrorFunc(msg, keep_error);
  xmlXPathCompExprPtr c = xmlXPathCompile((const xmlChar *)xpath);
  xmlSetStructuredErrorFunc(NULL, NULL);
  if (c == NULL) {
    snprintf(why, why_len, "%s", msg[0] ? msg : "invalid XPath expression");
    return -1;
  }
  xmlXPathFreeCompExpr(c);
  return 0;
}

/* A copy of s with leading and trailing blanks dropped and inner runs of
 * blanks made one space. */
static char *squeeze(const char *s) {
  size_t n = strlen(s);
  char *out = malloc(n + 1);
  if (out == NULL) return NULL;
  size_t k = 0;
  int space = 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f') {
      space = k > 0;
      continue;
    }
    if (space) out[k++] = ' ';
    space = 0;
    out[k++] = (char)c;
  }
  out[k] = '\0';
  return out;
}

/* ---- Per-thread parsing state ------------------------------------------
 * Pages are parsed on the thread pool (or on the executor's thread), one at
 * a time per thread. Each thread keeps its HTML parser context, whose
 * dictionary of names stays warm from page to page (a new context makes
 * and grows a new dictionary for every page), and the XPath expressions it
 * compiled (compiling one costs as much as evaluating it on a small page).
 * The context is made again every PARSER_REUSE pages, so that a site of
 * ever new element names cannot grow the dictionary without bound. */
#define PARSER_REUSE 2000
#define XPATH_CACHE 16

typedef struct thread_state {
  htmlParserCtxtPtr ctxt;
  int uses;
  struct {
    char *text;
    xmlXPathCompExprPtr comp;
  } xpath[XPATH_CACHE];
  int n_xpath;
} thread_state;

static __thread thread_state tls;

/* The compiled form of xpath (cached), or NULL when it does not compile. */
static xmlXPathCompExprPtr compiled(const char *xpath) {
  for (int i = 0; i < tls.n_xpath; i++)
    if (strcmp(tls.xpath[i].text, xpath) == 0) return tls.xpath[i].comp;
  xmlXPathCompExprPtr c = xmlXPathCompile((const xmlChar *)xpath);
  if (c == NULL || tls.n_xpath == XPATH_CACHE) return c; /* caller frees */
  char *t = strdup(xpath);
  if (t == NULL) return c;
  tls.xpath[tls.n_xpath].text = t;
  tls.xpath[tls.n_xpath].comp = c;
  tls.n_xpath++;
  return c;
}

static int is_cached(xmlXPathCompExprPtr c) {
  for (int i = 0; i < tls.n_xpath; i++)
    if (tls.xpath[i].comp == c) return 1;
  return 0;
}

/* Parses an HTML page with this thread's parser context. */
static htmlDocPtr read_html(const char *body, int len, const char *url,
                            const char *cs, int opts) {
  if (tls.ctxt != NULL && tls.uses >= PARSER_REUSE) {
    htmlFreeParserCtxt(tls.ctxt);
    tls.ctxt = NULL;
  }
  if (tls.ctxt == NULL) {
    tls.ctxt = htmlNewParserCtxt();
    tls.uses = 0;
    if (tls.ctxt == NULL) return htmlReadMemory(body, len, url, cs, opts);
  }
  tls.uses++;
  return htmlCtxtReadMemory(tls.ctxt, body, len, url, cs, opts);
}

static void free_strings(char **items, size_t n) {
  for (size_t i = 0; i < n; i++) free(items[i]);
  free(items);
}

/* Evaluates xpath; the string values of its results (first only unless
 * all) go to *items / *n. Returns 0 or -1 when out of memory. */
static int eval_strings(xmlXPathContextPtr ctx, const char *xpath, int all,
                        char ***items, size_t *n) {
  *items = NULL;
  *n = 0;
  xmlXPathCompExprPtr comp = compiled(xpath);
  if (comp == NULL) return 0;
  xmlXPathObjectPtr obj = xmlXPathCompiledEval(comp, ctx);
  if (!is_cached(comp)) xmlXPathFreeCompExpr(comp);
  if (obj == NULL) return 0;
  int rc = 0;
  if (obj->type == XPATH_NODESET) {
    int count = obj->nodesetval ? obj->nodesetval->nodeNr : 0;
    if (!all && count > 1) count = 1;
    if (count > MAX_LINKS) count = MAX_LINKS;
    if (count > 0) {
      *items = calloc((size_t)count, sizeof(char *));
      if (*items == NULL) rc = -1;
    }
    for (int i = 0; i < count && rc == 0; i++) {
      xmlChar *s = xmlXPathCastNodeToString(obj->nodesetval->nodeTab[i]);
      if (s == NULL) continue;
      char *t = squeeze((const char *)s);
      xmlFree(s);
      if (t == NULL) {
        rc = -1;
        break;
      }
      (*items)[(*n)++] = t;
    }
  } else {
    xmlChar *s = xmlXPathCastToString(obj);
    if (s != NULL) {
      *items = calloc(1, sizeof(char *));
      char *t = squeeze((const char *)s);
      xmlFree(s);
      if (*items == NULL || t == NULL) {
        free(t);
        rc = -1;
      } else {
        (*items)[(*n)++] = t;
      }
    }
  }
  xmlXPathFreeObject(obj);
  if (rc != 0) {
    free_strings(*items, *n);
    *items = NULL;
    *n = 0;
  }
  return rc;
}

/* Resolves the raw hrefs against base, keeps the http(s) ones in the order
 * of the page and drops repeats; the result goes to p->links. */
static int collect_links(ws_page *p, const char *base, char *const *raw,
                         size_t n) {
  if (n == 0) return 0;
  p->links = calloc(n, sizeof(char *));
  if (p->links == NULL) return -1;
  ws_strmap seen = {0};
  int rc = 0;
  for (size_t i = 0; i < n && rc == 0; i++) {
    char *abs;
    if (ws_url_resolve(base, raw[i], &abs, NULL, 0) != 0) continue;
    if (ws_strmap_get(&seen, abs) != NULL) {
      free(abs);
      continue;
    }
    if (ws_strmap_put(&seen, abs, p) != 0) rc = -1;
    p->links[p->n_links++] = abs;
  }
  ws_strmap_free(&seen);
  return rc;
}

/* What one walk over the document finds: the first <title>, the first
 * <base href>, and the links (<a href>, <area href>, <frame src>,
 * <iframe src>) in document order. The strings point into the document,
 * except those in owned (attribute values made of several nodes). */
typedef struct walk {
  xmlNodePtr title;
  const char *base;
  char **raw;
  size_t n, cap;
  char **owned;
  size_t n_owned, cap_owned;
} walk;

/* The value of attribute name of element n, or NULL. */
static const char *attr_value(walk *w, xmlNodePtr n, const char *name) {
  for (xmlAttrPtr a = n->properties; a != NULL; a = a->next) {
    if (a->name == NULL || strcmp((const char *)a->name, name) != 0) continue;
    xmlNodePtr c = a->children;
    if (c == NULL) return "";
    if (c->next == NULL && c->type == XML_TEXT_NODE && c->content != NULL)
      return (const char *)c->content;
    xmlChar *v = xmlNodeListGetString(n->doc, c, 1);
    if (v == NULL) return NULL;
    if (w->n_owned == w->cap_owned) {
      size_t cap = w->cap_owned ? w->cap_owned * 2 : 8;
      char **g = realloc(w->owned, cap * sizeof *g);
      if (g == NULL) {
        xmlFree(v);
        return NULL;
      }
      w->owned = g;
      w->cap_owned = cap;
    }
    w->owned[w->n_owned++] = (char *)v;
    return (const char *)v;
  }
  return NULL;
}

static int walk_add(walk *w, const char *v) {
  if (w->n == w->cap) {
    if (w->cap >= MAX_LINKS) return 0;
    size_t cap = w->cap ? w->cap * 2 : 64;
    char **g = realloc(w->raw, cap * sizeof *g);
    if (g == NULL) return -1;
    w->raw = g;
    w->cap = cap;
  }
  w->raw[w->n++] = (char *)v;
  return 0;
}

/* Walks the tree without recursion (a page may nest deeply). */
static int walk_doc(htmlDocPtr doc, walk *w, int want_links) {
  xmlNodePtr n = doc->children;
  while (n != NULL) {
    if (n->type == XML_ELEMENT_NODE && n->name != NULL) {
      const char *name = (const char *)n->name;
      const char *v = NULL;
      if (w->title == NULL && strcmp(name, "title") == 0) {
        w->title = n;
      } else if (want_links) {
        if (strcmp(name, "a") == 0 || strcmp(name, "area") == 0)
          v = attr_value(w, n, "href");
        else if (strcmp(name, "frame") == 0 || strcmp(name, "iframe") == 0)
          v = attr_value(w, n, "src");
        else if (w->base == NULL && strcmp(name, "base") == 0)
          w->base = attr_value(w, n, "href");
        if (v != NULL && walk_add(w, v) != 0) return -1;
      }
      if (n->children != NULL) {
        n = n->children;
        continue;
      }
    }
    while (n != NULL && n->next == NULL) {
      n = n->parent;
      if (n == (xmlNodePtr)doc) n = NULL;
    }
    if (n != NULL) n = n->next;
  }
  return 0;
}

static void walk_free(walk *w) {
  for (size_t i = 0; i < w->n_owned; i++) xmlFree(w->owned[i]);
  free(w->owned);
  free(w->raw);
}

int ws_extract(const char *body, size_t len, const char *content_type,
               const char *url, const ws_field *fields, size_t n,
               int want_links, ws_page *out) {
  memset(out, 0, sizeof *out);
  char cs_buf[64];
  const char *cs = ws_detect_charset(body, len, content_type, cs_buf,
                                     sizeof cs_buf);
  out->charset = strdup(cs);
  out->values = n > 0 ? calloc(n, sizeof(ws_value)) : NULL;
  if (out->charset == NULL || (n > 0 && out->values == NULL)) return -1;
  out->n_values = n;
  xmlSetGenericErrorFunc(NULL, silent);
  xmlSetStructuredErrorFunc(NULL, NULL);
  int opts = HTML_PARSE_RECOVER | HTML_PARSE_NOERROR | HTML_PARSE_NOWARNING |
             HTML_PARSE_NONET | HTML_PARSE_COMPACT;
  if (len > (size_t)INT32_MAX) len = INT32_MAX;
  htmlDocPtr doc = read_html(body, (int)len, url, cs, opts);
  if (doc == NULL) /* an encoding libxml2 does not know: let it guess */
    doc = read_html(body, (int)len, url, NULL, opts);
  if (doc == NULL) return -1;
  walk w;
  memset(&w, 0, sizeof w);
  int rc = walk_doc(doc, &w, want_links);
  if (rc == 0 && w.title != NULL) {
    xmlChar *t = xmlNodeGetContent(w.title);
    if (t != NULL) {
      out->title = squeeze((const char *)t);
      xmlFree(t);
    }
  }
  xmlXPathContextPtr ctx = NULL;
  if (rc == 0 && n > 0) {
    ctx = xmlXPathNewContext(doc);
    if (ctx == NULL) rc = -1;
  }
  char **items;
  size_t count;
  for (size_t i = 0; i < n && rc == 0; i++) {
    if (eval_strings(ctx, fields[i].xpath, fields[i].all, &items, &count) != 0) {
      rc = -1;
      break;
    }
    if (fields[i].all) {
      out->values[i].items = items;
      out->values[i].n_items = count;
    } else {
      if (count > 0) {
        out->values[i].text = items[0];
        items[0] = NULL;
      }
      free_strings(items, count);
    }
  }
  if (rc == 0 && want_links) {
    char *base = NULL;
    if (w.base != NULL && w.base[0] != '\0')
      ws_url_resolve(url, w.base, &base, NULL, 0);
    if (collect_links(out, base != NULL ? base : url, w.raw, w.n) != 0) rc = -1;
    free(base);
  }
  walk_free(&w);
  if (ctx != NULL) xmlXPathFreeContext(ctx);
  xmlFreeDoc(doc);
  return rc;
}

/* Inflates a gzip body (one or more members) into *out (malloc'ed, *out_len
 * bytes), at most max bytes. 0, or -1 when it is not valid gzip or larger. */
static int gunzip(const char *body, size_t len, size_t max, char **out,
                  size_t *out_len) {
  z_stream z;
  memset(&z, 0, sizeof z);
  if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK) return -1;
  size_t cap = len * 4 < 65536 ? 65536 : len * 4, n = 0;
  if (cap > max) cap = max;
  char *buf = malloc(cap + 1);
  int rc = buf != NULL ? Z_OK : Z_MEM_ERROR;
  z.next_in = (Bytef *)body;
  z.avail_in = (uInt)(len > UINT32_MAX ? UINT32_MAX : len);
  while (rc == Z_OK) {
    if (n == cap) {
      if (cap >= max) {
        rc = Z_BUF_ERROR; /* larger than allowed */
        break;
      }
      cap = cap * 2 > max ? max : cap * 2;
      char *g = realloc(buf, cap + 1);
      if (g == NULL) {
        rc = Z_MEM_ERROR;
        break;
      }
      buf = g;
    }
    z.next_out = (Bytef *)buf + n;
    z.avail_out = (uInt)(cap - n);
    rc = inflate(&z, Z_NO_FLUSH);
    n = cap - z.avail_out;
    /* Concatenated members: go on with the next one. */
    if (rc == Z_STREAM_END && z.avail_in > 0) rc = inflateReset(&z);
    if (rc == Z_BUF_ERROR && z.avail_in == 0) break; /* truncated */
  }
  inflateEnd(&z);
  if (rc != Z_STREAM_END) {
    free(buf);
    return -1;
  }
  buf[n] = '\0';
  *out = buf;
  *out_len = n;
  return 0;
}

int ws_sitemap_urls(const char *body, size_t len, const char *url,
                    char ***urls, size_t *n, int *is_index) {
  *urls = NULL;
  *n = 0;
  *is_index = 0;
  if (len >= 2 && (unsigned char)body[0] == 0x1f && (unsigned char)body[1] == 0x8b) {
    char *plain;
    size_t plain_len;
    if (gunzip(body, len, WS_SITEMAP_MAX, &plain, &plain_len) != 0) return -1;
    int rc = plain_len >= 2 && (unsigned char)plain[0] == 0x1f &&
                     (unsigned char)plain[1] == 0x8b
                 ? -1 /* no gzip in gzip */
                 : ws_sitemap_urls(plain, plain_len, url, urls, n, is_index);
    free(plain);
    return rc;
  }
  xmlSetGenericErrorFunc(NULL, silent);
  xmlSetStructuredErrorFunc(NULL, NULL);
  if (len > (size_t)INT32_MAX) len = INT32_MAX;
  /* No entities substituted, no network: a sitemap cannot reach out. */
  xmlDocPtr doc =
      xmlReadMemory(body, (int)len, url, NULL,
                    XML_PARSE_RECOVER | XML_PARSE_NONET | XML_PARSE_NOERROR |
                        XML_PARSE_NOWARNING | XML_PARSE_COMPACT);
  if (doc == NULL) return -1;
  xmlNodePtr root = xmlDocGetRootElement(doc);
  *is_index = root != NULL && xmlStrcmp(root->name, BAD_CAST "sitemapindex") == 0;
  xmlXPathContextPtr ctx = xmlXPathNewContext(doc);
  char **items = NULL;
  size_t count = 0;
  int rc = -1;
  if (ctx != NULL &&
      eval_strings(ctx, "/*/*/*[local-name()='loc']", 1, &items, &count) == 0) {
    ws_page p;
    memset(&p, 0, sizeof p);
    rc = collect_links(&p, url, items, count);
    *urls = p.links;
    *n = p.n_links;
    free_strings(items, count);
  }
  if (ctx != NULL) xmlXPathFreeContext(ctx);
  xmlFreeDoc(doc);
  return rc;
}

void ws_strings_free(char **items, size_t n) { free_strings(items, n); }

void ws_page_free(ws_page *p) {
  free(p->charset);
  free(p->title);
  for (size_t i = 0; i < p->n_values; i++) {
    free(p->values[i].text);
    free_strings(p->values[i].items, p->values[i].n_items);
  }
  free(p->values);
  free_strings(p->links, p->n_links);
  memset(p, 0, sizeof *p);
}
