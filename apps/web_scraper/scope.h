/* scope.h: which URLs the crawl may visit, and what it does on them.
 *
 * In scope: the host is one of --allow-domain (or a subdomain of one; by
 * default the seeds' hosts), the URL matches one --allow regex when there
 * are any, and none of --deny. --rules FILE adds per-URL-pattern fields
 * and whether to follow links:
 *
 *   {"rules": [{"pattern": "/product/", "fields": {"price": "//span[@id='p']"},
 *               "follow": false}]}
 *
 * (the file may also be the array alone). The first rule whose pattern (an
 * extended regular expression, searched in the URL) matches applies; its
 * fields come after the --extract ones.
 */
#ifndef WS_SCOPE_H
#define WS_SCOPE_H

#include <stddef.h>

#include "extract.h"

typedef struct ws_scope ws_scope;

/** One rule of --rules. */
typedef struct ws_rule {
  ws_field *fields;
  size_t n_fields;
  int follow;
} ws_rule;

/**
 * Makes the scope. domains may be empty (then the hosts of seeds are
 * allowed). Returns NULL after printing a message naming the bad option
 * (a regex that does not compile, a rules file at fault).
 */
ws_scope *ws_scope_new(char **domains, size_t n_domains, char **seeds,
                       size_t n_seeds, char **allow, size_t n_allow,
                       char **deny, size_t n_deny, const char *rules_path);

/** Non-zero when url (normalised) is in scope. */
int ws_scope_allows(const ws_scope *s, const char *url);

/** The rule for url, or NULL when none matches. */
const ws_rule *ws_scope_rule(const ws_scope *s, const char *url);

void ws_scope_free(ws_scope *s);

/** Parses "NAME=XPATH" or "NAME[]=XPATH" into f. Returns 0, or -1 with
 * why. */
int ws_field_parse(const char *spec, ws_field *f, char *why, size_t why_len);

void ws_field_free(ws_field *f);

#endif /* WS_SCOPE_H */
