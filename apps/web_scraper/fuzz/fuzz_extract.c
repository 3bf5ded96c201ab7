/* fuzz_extract: HTML and sitemap extraction under a fuzzer.
 *
 * An input is a Content-Type on its first line (empty: none) and a page
 * body after it. The body goes through charset detection, libxml2's HTML
 * parser and the XPath extraction of the title, two fields and the links,
 * and through the sitemap reader, as the crawler reads what it fetches.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>

#include "extract.h"
#include "fuzz_split.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
void weft_fuzz_replay_done(void);

static const char page_url[] = "http://a.example/dir/page.html?q=1";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *ctype, *body;
  size_t len;
  if (ws_fuzz_split(data, size, &ctype, &body, &len) < 0) return 0;
  const char *ct = ctype[0] ? ctype : NULL;
  char cs[64];
  const char *charset = ws_detect_charset(body, len, ct, cs, sizeof cs);
  if (charset == NULL || charset[0] == '\0') {
    fprintf(stderr, "fuzz_extract: no charset\n");
    abort();
  }
  ws_field fields[] = {
      {.name = "h1", .xpath = "//h1", .all = 0},
      {.name = "hrefs", .xpath = "//a/@href", .all = 1},
  };
  ws_page page;
  (void)ws_extract(body, len, ct, page_url, fields, 2, 1, &page);
  ws_page_free(&page);
  char **urls = NULL;
  size_t n = 0;
  int is_index = 0;
  if (ws_sitemap_urls(body, len, page_url, &urls, &n, &is_index) == 0)
    ws_strings_free(urls, n);
  free(ctype);
  free(body);
  return 0;
}

void weft_fuzz_replay_done(void) { xmlCleanupParser(); }
