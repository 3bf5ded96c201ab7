/* unit_url_robots.c: URL resolution and normalisation (RFC 3986 section 5
 * and 6), and robots.txt groups and matching (RFC 9309), without network.
 * Prints each failure and exits 1 if any. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "robots.h"
#include "url.h"

static int failures;

/* Resolves ref against base; want NULL means the reference is refused. */
static void check_resolve(const char *base, const char *ref, const char *want) {
  char *got = NULL, why[128] = "";
  int rc = ws_url_resolve(base, ref, &got, why, sizeof why);
  if (want == NULL) {
    if (rc == 0) {
      printf("FAIL resolve(%s, %s): want refused, got %s\n", base, ref, got);
      failures++;
    }
  } else if (rc != 0 || strcmp(got, want) != 0) {
    printf("FAIL resolve(%s, %s): want %s, got %s (%s)\n", base, ref, want,
           rc == 0 ? got : "refused", why);
    failures++;
  }
  free(got);
}

static void check_allowed(const char *robots, const char *agent,
                          const char *path, int want) {
  ws_robots *r = ws_robots_parse(robots, strlen(robots), agent);
  int got = ws_robots_allowed(r, path);
  if (got != want) {
    printf("FAIL robots (agent %s) %s: want %s\n---\n%s\n---\n", agent, path,
           want ? "allowed" : "disallowed", robots);
    failures++;
  }
  ws_robots_free(r);
}

static void test_resolve(void) {
  /* RFC 3986 5.4.1, normal examples (base http://a/b/c/d;p?q). */
  const char *base = "http://a/b/c/d;p?q";
  check_resolve(base, "g", "http://a/b/c/g");
  check_resolve(base, "./g", "http://a/b/c/g");
  check_resolve(base, "g/", "http://a/b/c/g/");
  check_resolve(base, "/g", "http://a/g");
  check_resolve(base, "//g", "http://g/");
  check_resolve(base, "?y", "http://a/b/c/d;p?y");
  check_resolve(base, "g?y", "http://a/b/c/g?y");
  check_resolve(base, "#s", "http://a/b/c/d;p?q");
  check_resolve(base, "g#s", "http://a/b/c/g");
  check_resolve(base, ";x", "http://a/b/c/;x");
  check_resolve(base, "", "http://a/b/c/d;p?q");
  check_resolve(base, ".", "http://a/b/c/");
  check_resolve(base, "./", "http://a/b/c/");
  check_resolve(base, "..", "http://a/b/");
  check_resolve(base, "../g", "http://a/b/g");
  check_resolve(base, "../..", "http://a/");
  check_resolve(base, "../../g", "http://a/g");
  /* 5.4.2, abnormal examples. */
  check_resolve(base, "../../../g", "http://a/g");
  check_resolve(base, "/./g", "http://a/g");
  check_resolve(base, "/../g", "http://a/g");
  check_resolve(base, "g.", "http://a/b/c/g.");
  check_resolve(base, "..g", "http://a/b/c/..g");
  check_resolve(base, "./../g", "http://a/b/g");
  check_resolve(base, "g/./h", "http://a/b/c/g/h");
  check_resolve(base, "g/../h", "http://a/b/c/h");
  check_resolve(base, "http:g", "http://a/b/c/g");
  /* Normalisation: case, default port, fragment, percent-encoding. */
  check_resolve(NULL, "HTTP://Example.COM:80/a/%7euser/./x/../y#frag",
                "http://example.com/a/~user/y");
  check_resolve(NULL, "https://example.com:443", "https://example.com/");
  check_resolve(NULL, "https://example.com:8443/", "https://example.com:8443/");
  check_resolve(NULL, "http://example.com/a%2fb%2Fc", "http://example.com/a%2Fb%2Fc");
  check_resolve(NULL, "http://example.com/a b?q=1 2", "http://example.com/a%20b?q=1%202");
  check_resolve(NULL, "http://example.com/caf\xc3\xa9", "http://example.com/caf%C3%A9");
  check_resolve(NULL, "http://example.com/100%", "http://example.com/100%25");
  check_resolve(NULL, "http://example.com/%41%42", "http://example.com/AB");
  check_resolve(NULL, "http://user:pw@example.com/", "http://example.com/");
  check_resolve(NULL, "http://example.com/?", "http://example.com/");
  check_resolve(NULL, "  http://example.com/x\n ", "http://example.com/x");
  check_resolve(NULL, "http://[::1]:8080/", "http://[::1]:8080/");
  check_resolve("http://example.com/a/b", "\\c\\d", "http://example.com/c/d");
  /* Refused: other schemes, no host, bad ports, relative without base. */
  check_resolve(base, "mailto:a@example.com", NULL);
  check_resolve(base, "javascript:void(0)", NULL);
  check_resolve(base, "ftp://example.com/", NULL);
  check_resolve(base, "data:text/html,hi", NULL);
  check_resolve(NULL, "http://", NULL);
  check_resolve(NULL, "http://example.com:99999/", NULL);
  check_resolve(NULL, "http://exa mple.com/", NULL);
  check_resolve(NULL, "/relative", NULL);
  check_resolve(NULL, "example.com", NULL);
}

static void test_robots(void) {
  const char *txt =
      "# comment\n"
      "User-agent: *\n"
      "Disallow: /private\n"
      "Allow: /private/open\n"
      "Disallow: /*.pdf$\n"
      "Disallow: /tmp/*/cache\n"
      "\n"
      "User-agent: FooBot\n"
      "User-agent: barbot\n"
      "Disallow: /\n"
      "Allow: /public\n"
      "Crawl-delay: 2.5\n"
      "Sitemap: http://example.com/sitemap.xml\n";
  check_allowed(txt, "weft", "/", 1);
  check_allowed(txt, "weft", "/private", 0);
  check_allowed(txt, "weft", "/private/x", 0);
  check_allowed(txt, "weft", "/private/open", 1);
  check_allowed(txt, "weft", "/private/open/more", 1);
  check_allowed(txt, "weft", "/doc.pdf", 0);
  check_allowed(txt, "weft", "/doc.pdf?x=1", 1);
  check_allowed(txt, "weft", "/tmp/a/b/cache/x", 0);
  check_allowed(txt, "weft", "/tmp/cache", 1);
  check_allowed(txt, "weft", "/robots.txt", 1);
  /* Our own group wins over "*", matched case-insensitively by the
   * product token (the agent before '/'). */
  check_allowed(txt, "foobot/2.1 (+http://x)", "/anything", 0);
  check_allowed(txt, "FOOBOT", "/public/page", 1);
  check_allowed(txt, "BarBot/1", "/private/open", 0);
  /* Longest match wins; Allow wins a tie. */
  check_allowed("User-agent: *\nDisallow: /a\nAllow: /a/b\nDisallow: /a/b/c\n",
                "x", "/a/b/c/d", 0);
  check_allowed("User-agent: *\nDisallow: /page\nAllow: /page\n", "x", "/page", 1);
  check_allowed("User-agent: *\nDisallow: /*\nAllow: /$\n", "x", "/", 1);
  check_allowed("User-agent: *\nDisallow: /*\nAllow: /$\n", "x", "/x", 0);
  /* An empty Disallow allows everything; no matching group allows too. */
  check_allowed("User-agent: *\nDisallow:\n", "x", "/a", 1);
  check_allowed("User-agent: other\nDisallow: /\n", "x", "/a", 1);
  /* Percent-encoding is compared normalised. */
  check_allowed("User-agent: *\nDisallow: /%7euser\n", "x", "/~user/x", 0);
  check_allowed("User-agent: *\nDisallow: /caf\xc3\xa9\n", "x", "/caf%C3%A9", 0);
  /* Lines without a group before them, and junk, are ignored. */
  check_allowed("Disallow: /\nnonsense\nUser-agent: *\nDisallow: /x\n", "x", "/a", 1);
  /* Groups of one agent split across the file are merged. */
  check_allowed("User-agent: x\nDisallow: /a\n\nUser-agent: *\nDisallow: /\n\n"
                "User-agent: x\nDisallow: /b\n",
                "x", "/b", 0);
  check_allowed("User-agent: x\nDisallow: /a\n\nUser-agent: *\nDisallow: /\n\n"
                "User-agent: x\nDisallow: /b\n",
                "x", "/c", 1);

  ws_robots *r = ws_robots_parse(txt, strlen(txt), "foobot");
  if (ws_robots_crawl_delay_ms(r) != 2500 || ws_robots_sitemap_count(r) != 1 ||
      strcmp(ws_robots_sitemap(r, 0), "http://example.com/sitemap.xml") != 0) {
    printf("FAIL robots: crawl-delay %ld, %zu sitemaps\n",
           ws_robots_crawl_delay_ms(r), ws_robots_sitemap_count(r));
    failures++;
  }
  ws_robots_free(r);
  r = ws_robots_parse(txt, strlen(txt), "weft");
  if (ws_robots_crawl_delay_ms(r) != -1) {
    printf("FAIL robots: the * group has no crawl-delay\n");
    failures++;
  }
  ws_robots_free(r);
  r = ws_robots_disallow_all();
  if (ws_robots_allowed(r, "/") || !ws_robots_allowed(r, "/robots.txt")) {
    printf("FAIL robots: disallow-all\n");
    failures++;
  }
  ws_robots_free(r);
}

int main(void) {
  test_resolve();
  test_robots();
  if (failures > 0) {
    printf("%d failures\n", failures);
    return 1;
  }
  printf("all passed\n");
  return 0;
}
