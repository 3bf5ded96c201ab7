/* fuzz_robots: robots.txt parsing and matching under a fuzzer.
 *
 * An input is a path on its first line and a robots.txt file after it.
 * The file is parsed for the crawler's user agent, and the path (and a few
 * fixed ones) matched against its rules, with the crawl delay and the
 * sitemaps read back. See cmake/weftFuzz.cmake for the builds.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "fuzz_split.h"
#include "robots.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *path, *text;
  size_t len;
  if (ws_fuzz_split(data, size, &path, &text, &len) < 0) return 0;
  static const char *const fixed[] = {"/", "/a/b.html?x=1", "/private/",
                                      "/%7Euser/", "/p$", ""};
  const char *agents[] = {"weft-scraper/1.0", "*"};
  for (size_t a = 0; a < 2; a++) {
    ws_robots *r = ws_robots_parse(text, len, agents[a]);
    if (r == NULL) continue;
    int allowed = ws_robots_allowed(r, path);
    if (allowed != 0 && allowed != 1) {
      fprintf(stderr, "fuzz_robots: allowed() returned %d\n", allowed);
      abort();
    }
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
      (void)ws_robots_allowed(r, fixed[i]);
    if (ws_robots_crawl_delay_ms(r) < -1) { /* -1: none */
      fprintf(stderr, "fuzz_robots: negative crawl delay\n");
      abort();
    }
    size_t n = ws_robots_sitemap_count(r);
    for (size_t i = 0; i < n; i++)
      if (ws_robots_sitemap(r, i) == NULL) abort();
    ws_robots_free(r);
  }
  free(path);
  free(text);
  return 0;
}
