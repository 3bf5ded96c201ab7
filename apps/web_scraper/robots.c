/* robots.c: parsing robots.txt and matching paths (RFC 9309). */
#include "robots.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "url.h"

/* The most of a robots.txt that is read (RFC 9309 2.5: at least 500 KiB). */
#define ROBOTS_MAX_BYTES (500 * 1024)

typedef struct rule {
  char *pattern; /* normalised */
  size_t len;    /* its length, the rule's weight */
  int allow;
} rule;

struct ws_robots {
  rule *rules;
  size_t n_rules, cap_rules;
  long crawl_delay_ms;
  int disallow_all;
  char **sitemaps;
  size_t n_sitemaps, cap_sitemaps;
};

static ws_robots *robots_new(void) {
  ws_robots *r = calloc(1, sizeof *r);
  if (r != NULL) r->crawl_delay_ms = -1;
  return r;
}

ws_robots *ws_robots_allow_all(void) { return robots_new(); }

ws_robots *ws_robots_disallow_all(void) {
  ws_robots *r = robots_new();
  if (r != NULL) r->disallow_all = 1;
  return r;
}

void ws_robots_free(ws_robots *r) {
  if (r == NULL) return;
  for (size_t i = 0; i < r->n_rules; i++) free(r->rules[i].pattern);
  free(r->rules);
  for (size_t i = 0; i < r->n_sitemaps; i++) free(r->sitemaps[i]);
  free(r->sitemaps);
  free(r);
}

/* One group being read: its rules go to the "ours" or "star" list once
 * its agents are known. */
typedef struct rule_list {
  rule *items;
  size_t n, cap;
  long delay_ms;
} rule_list;

static int list_add(rule_list *l, const char *value, size_t len, int allow) {
  if (l->n == l->cap) {
    size_t cap = l->cap ? l->cap * 2 : 8;
    rule *g = realloc(l->items, cap * sizeof *g);
    if (g == NULL) return -1;
    l->items = g;
    l->cap = cap;
  }
  char *p = ws_url_normalise_path(value, len);
  if (p == NULL) return -1;
  l->items[l->n].pattern = p;
  l->items[l->n].len = strlen(p);
  l->items[l->n].allow = allow;
  l->n++;
  return 0;
}

static void list_free(rule_list *l) {
  for (size_t i = 0; i < l->n; i++) free(l->items[i].pattern);
  free(l->items);
}

/* Non-zero when the group's agent token (len bytes) names our product. */
static int agent_matches(const char *token, size_t len, const char *product,
                         size_t plen) {
  return len == plen && strncasecmp(token, product, len) == 0;
}

ws_robots *ws_robots_parse(const char *text, size_t len, const char *agent) {
  ws_robots *r = robots_new();
  if (r == NULL) return NULL;
  if (len > ROBOTS_MAX_BYTES) len = ROBOTS_MAX_BYTES;
  /* Our product token: the agent up to the first '/' or blank. */
  size_t plen = 0;
  while (agent[plen] != '\0' && agent[plen] != '/' &&
         !isspace((unsigned char)agent[plen]))
    plen++;
  rule_list ours = {.delay_ms = -1}, star = {.delay_ms = -1};
  int group_ours = 0, group_star = 0; /* the current group's agents */
  int in_agents = 0;                  /* the last line was a user-agent */
  int saw_ours = 0;                   /* a group names our product */
  int failed = 0;
  size_t i = 0;
  /* A UTF-8 byte order mark is skipped. */
  if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0) i = 3;
  while (i < len && !failed) {
    size_t start = i;
    while (i < len && text[i] != '\n' && text[i] != '\r') i++;
    size_t end = i;
    while (i < len && (text[i] == '\n' || text[i] == '\r')) i++;
    const char *hash = memchr(text + start, '#', end - start);
    if (hash != NULL) end = (size_t)(hash - text);
    const char *line = text + start;
    size_t n = end - start;
    const char *colon = memchr(line, ':', n);
    if (colon == NULL) continue;
    const char *key = line;
    size_t klen = (size_t)(colon - line);
    while (klen > 0 && isspace((unsigned char)key[0])) key++, klen--;
    while (klen > 0 && isspace((unsigned char)key[klen - 1])) klen--;
    const char *val = colon + 1;
    size_t vlen = n - (size_t)(val - line);
    while (vlen > 0 && isspace((unsigned char)val[0])) val++, vlen--;
    while (vlen > 0 && isspace((unsigned char)val[vlen - 1])) vlen--;
#define KEY_IS(name) (klen == strlen(name) && strncasecmp(key, name, klen) == 0)
    if (KEY_IS("user-agent")) {
      if (!in_agents) group_ours = group_star = 0;
      in_agents = 1;
      /* The token is the value up to a blank or '/'. */
      size_t tlen = 0;
      while (tlen < vlen && val[tlen] != '/' && !isspace((unsigned char)val[tlen]))
        tlen++;
      if (tlen == 1 && val[0] == '*')
        group_star = 1;
      else if (plen > 0 && agent_matches(val, tlen, agent, plen))
        group_ours = saw_ours = 1;
      continue;
    }
    if (KEY_IS("sitemap")) {
      if (vlen == 0) continue;
      if (r->n_sitemaps == r->cap_sitemaps) {
        size_t cap = r->cap_sitemaps ? r->cap_sitemaps * 2 : 4;
        char **g = realloc(r->sitemaps, cap * sizeof *g);
        if (g == NULL) {
          failed = 1;
          break;
        }
        r->sitemaps = g;
        r->cap_sitemaps = cap;
      }
      char *s = strndup(val, vlen);
      if (s == NULL) {
        failed = 1;
        break;
      }
      r->sitemaps[r->n_sitemaps++] = s;
      continue;
    }
    int allow = KEY_IS("allow"), disallow = KEY_IS("disallow");
    int delay = KEY_IS("crawl-delay");
#undef KEY_IS
    if (!allow && !disallow && !delay) continue;
    in_agents = 0;
    if (!group_ours && !group_star) continue;
    rule_list *lists[2] = {group_ours ? &ours : NULL, group_star ? &star : NULL};
    for (int k = 0; k < 2; k++) {
      rule_list *l = lists[k];
      if (l == NULL) continue;
      if (delay) {
        char buf[32];
        size_t m = vlen < sizeof buf - 1 ? vlen : sizeof buf - 1;
        memcpy(buf, val, m);
        buf[m] = '\0';
        char *e;
        double s = strtod(buf, &e);
        if (e != buf && s >= 0 && s <= 86400) l->delay_ms = (long)(s * 1000);
      } else if (vlen > 0) { /* an empty Disallow allows all: no rule */
        if (list_add(l, val, vlen, allow) != 0) failed = 1;
      }
    }
  }
  rule_list *chosen = NULL;
  /* Our own groups win over "*", even when they have no rules. */
  if (saw_ours)
    chosen = &ours;
  else
    chosen = &star;
  if (!failed) {
    r->rules = chosen->items;
    r->n_rules = chosen->n;
    r->cap_rules = chosen->cap;
    r->crawl_delay_ms = chosen->delay_ms;
    chosen->items = NULL;
    chosen->n = 0;
  }
  list_free(&ours);
  list_free(&star);
  if (failed) {
    ws_robots_free(r);
    return NULL;
  }
  return r;
}

/* Non-zero when pattern p (with '*' and a final '$') matches a prefix of s,
 * or all of s when it ends in '$'. Iterative, with backtracking to the
 * last '*' only, so it is linear in practice. */
static int pattern_matches(const char *p, const char *s) {
  const char *star_p = NULL, *star_s = NULL;
  for (;;) {
    if (*p == '$' && p[1] == '\0') {
      if (*s == '\0') return 1;
    } else if (*p == '\0') {
      return 1; /* a prefix matched */
    } else if (*p == '*') {
      star_p = ++p;
      star_s = s;
      continue;
    } else if (*s != '\0' && *p == *s) {
      p++;
      s++;
      continue;
    }
    /* A mismatch: let the last '*' take one more character. */
    if (star_p == NULL || *star_s == '\0') return 0;
    p = star_p;
    s = ++star_s;
  }
}

int ws_robots_allowed(const ws_robots *r, const char *path_query) {
  if (strcmp(path_query, "/robots.txt") == 0) return 1;
  if (r->disallow_all) return 0;
  size_t best = 0;
  int allowed = 1, found = 0;
  for (size_t i = 0; i < r->n_rules; i++) {
    const rule *ru = &r->rules[i];
    if (found && ru->len < best) continue;
    if (!pattern_matches(ru->pattern, path_query)) continue;
    if (!found || ru->len > best || (ru->len == best && ru->allow)) {
      allowed = ru->allow;
      best = ru->len;
      found = 1;
    }
  }
  return allowed;
}

long ws_robots_crawl_delay_ms(const ws_robots *r) { return r->crawl_delay_ms; }

size_t ws_robots_sitemap_count(const ws_robots *r) { return r->n_sitemaps; }

const char *ws_robots_sitemap(const ws_robots *r, size_t i) {
  return i < r->n_sitemaps ? r->sitemaps[i] : NULL;
}
