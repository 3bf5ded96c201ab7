/* extract.h: what the crawler reads out of an HTML page.
 *
 * The page is decoded to UTF-8 from its charset, found as browsers find
 * it: the Content-Type header's charset, else a byte order mark, else a
 * <meta charset> or <meta http-equiv="Content-Type"> in the first 4 KiB,
 * else UTF-8 when the bytes are valid UTF-8 and windows-1252 when not.
 * libxml2 parses it (htmlReadMemory, forgiving of malformed markup, with
 * no network access), and XPath expressions (xmlXPathEval) give the
 * title, the fields and the links, resolved against the page's URL or its
 * <base href> and normalised.
 *
 * ws_extract() touches nothing but its arguments, so it may run on a
 * thread of the pool (weft_blocking) while the crawl goes on.
 */
#ifndef WS_EXTRACT_H
#define WS_EXTRACT_H

#include <stddef.h>

/** One field to extract: NAME=XPATH, or NAME[]=XPATH for every match. */
typedef struct ws_field {
  char *name;
  char *xpath;
  int all; /**< every match (a JSON array), not just the first */
} ws_field;

/** A field's value: text (first match; NULL: no match) or items (all). */
typedef struct ws_value {
  char *text;
  char **items;
  size_t n_items;
} ws_value;

/** What ws_extract() found. Free with ws_page_free(). */
typedef struct ws_page {
  char *charset;  /**< the charset the page was read in */
  char *title;    /**< the <title>, blanks collapsed; NULL: none */
  ws_value *values; /**< one per field asked for */
  size_t n_values;
  char **links; /**< distinct http(s) links, absolute and normalised */
  size_t n_links;
} ws_page;

/**
 * Parses Content-Type's media type into a lower-case string such as
 * "text/html" (NULL for NULL), and says whether it is parsed as HTML
 * (text/html, application/xhtml+xml).
 */
int ws_is_html(const char *content_type);

/**
 * Finds the charset of a page (see above) into buf (len bytes). Returns
 * the name as libxml2/iconv take it.
 */
const char *ws_detect_charset(const char *body, size_t len,
                              const char *content_type, char *buf,
                              size_t buf_len);

/**
 * Checks that xpath compiles. Returns 0, or -1 with libxml2's reason in
 * why.
 */
int ws_xpath_check(const char *xpath, char *why, size_t why_len);

/**
 * Reads the page body (len bytes) fetched from url with the given
 * Content-Type: title, the fields (n of them) and, when want_links, the
 * links. Returns 0, or -1 when the page could not be parsed at all (the
 * record then says so). *out is always filled in and must be freed.
 */
int ws_extract(const char *body, size_t len, const char *content_type,
               const char *url, const ws_field *fields, size_t n,
               int want_links, ws_page *out);

/**
 * Reads a sitemap (XML: a <urlset> of <url><loc>, or a <sitemapindex> of
 * <sitemap><loc>) fetched from url. The <loc> URLs, absolute and
 * normalised, go to *urls (n of them, malloc'ed); *is_index says it was an
 * index (the URLs are sitemaps). A body in gzip (sitemap.xml.gz, served
 * as a file, so that libcurl does not inflate it) is inflated first, up to
 * WS_SITEMAP_MAX bytes as the sitemaps protocol allows. Returns 0, or -1
 * when it is not XML (or not valid gzip).
 */
#define WS_SITEMAP_MAX (50u * 1024 * 1024)
int ws_sitemap_urls(const char *body, size_t len, const char *url,
                    char ***urls, size_t *n, int *is_index);

/** Frees n malloc'ed strings and their array. */
void ws_strings_free(char **items, size_t n);

/** Frees what ws_extract() stored in p. */
void ws_page_free(ws_page *p);

#endif /* WS_EXTRACT_H */
