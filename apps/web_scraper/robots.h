/* robots.h: robots.txt as RFC 9309 reads it.
 *
 * A file is a list of groups; a group is one or more user-agent lines and
 * the rules after them. The crawler obeys the groups whose user agent
 * matches its product token (case-insensitive; several such groups are
 * merged), or else the "*" groups, or else nothing. Of the rules that
 * match a path, the longest pattern wins, and Allow wins a tie; "*" in a
 * pattern matches any run of characters and a final "$" anchors it at the
 * end. /robots.txt itself is always allowed. Crawl-delay (not in the RFC,
 * but widely used) is read from the chosen groups, and Sitemap lines from
 * anywhere in the file.
 */
#ifndef WS_ROBOTS_H
#define WS_ROBOTS_H

#include <stddef.h>

/** The rules that apply to one crawler, from one robots.txt (opaque). */
typedef struct ws_robots ws_robots;

/**
 * Parses text (len bytes, not necessarily NUL-terminated) for the crawler
 * whose user agent is agent (its product token is the part before the
 * first '/' or blank). At most the first 500 KiB are read, as the RFC
 * allows. Returns the rules, or NULL when out of memory.
 */
ws_robots *ws_robots_parse(const char *text, size_t len, const char *agent);

/** Rules that allow everything (a robots.txt that answered 4xx). */
ws_robots *ws_robots_allow_all(void);

/** Rules that disallow everything (5xx or unreachable). */
ws_robots *ws_robots_disallow_all(void);

/**
 * Non-zero when path_query (the path and query of a URL, "/a?b=1",
 * normalised as url.h does) may be fetched.
 */
int ws_robots_allowed(const ws_robots *r, const char *path_query);

/** The Crawl-delay of the chosen groups in milliseconds, or -1 for none. */
long ws_robots_crawl_delay_ms(const ws_robots *r);

/** The number of Sitemap URLs, and the i-th of them. */
size_t ws_robots_sitemap_count(const ws_robots *r);
const char *ws_robots_sitemap(const ws_robots *r, size_t i);

/** Frees r; NULL is ignored. */
void ws_robots_free(ws_robots *r);

#endif /* WS_ROBOTS_H */
