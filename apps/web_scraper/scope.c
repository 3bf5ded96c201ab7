/* scope.c: domains, URL patterns and the rules file. */
#include "scope.h"

#include <errno.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "url.h"

typedef struct rule_entry {
  regex_t re;
  ws_rule rule;
} rule_entry;

struct ws_scope {
  char **domains;
  size_t n_domains;
  regex_t *allow, *deny;
  size_t n_allow, n_deny;
  rule_entry *rules;
  size_t n_rules;
};

static void scope_error(const char *fmt, const char *a, const char *b) {
  fprintf(stderr, "web_scraper: ");
  fprintf(stderr, fmt, a, b);
  fputc('\n', stderr);
}

int ws_field_parse(const char *spec, ws_field *f, char *why, size_t why_len) {
  memset(f, 0, sizeof *f);
  const char *eq = strchr(spec, '=');
  if (eq == NULL || eq == spec || eq[1] == '\0') {
    snprintf(why, why_len, "\"%s\" is not NAME=XPATH or NAME[]=XPATH", spec);
    return -1;
  }
  size_t nlen = (size_t)(eq - spec);
  if (nlen > 2 && strncmp(eq - 2, "[]", 2) == 0) {
    f->all = 1;
    nlen -= 2;
  }
  if (ws_xpath_check(eq + 1, why, why_len) != 0) return -1;
  f->name = strndup(spec, nlen);
  f->xpath = strdup(eq + 1);
  if (f->name == NULL || f->xpath == NULL) {
    ws_field_free(f);
    snprintf(why, why_len, "out of memory");
    return -1;
  }
  return 0;
}

void ws_field_free(ws_field *f) {
  free(f->name);
  free(f->xpath);
  memset(f, 0, sizeof *f);
}

/* Compiles n patterns into *out; prints which one fails. */
static int compile_all(char **pats, size_t n, regex_t **out, const char *flag) {
  *out = NULL;
  if (n == 0) return 0;
  *out = calloc(n, sizeof(regex_t));
  if (*out == NULL) return -1;
  for (size_t i = 0; i < n; i++) {
    int rc = regcomp(&(*out)[i], pats[i], REG_EXTENDED | REG_NOSUB);
    if (rc != 0) {
      char msg[128];
      regerror(rc, &(*out)[i], msg, sizeof msg);
      fprintf(stderr, "web_scraper: %s: bad regular expression \"%s\": %s\n",
              flag, pats[i], msg);
      for (size_t k = 0; k < i; k++) regfree(&(*out)[k]);
      free(*out);
      *out = NULL;
      return -1;
    }
  }
  return 0;
}

/* Reads the file at path whole; NULL after printing why. */
static char *read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) {
    scope_error("--rules: cannot read %s: %s", path, strerror(errno));
    return NULL;
  }
  size_t cap = 4096, n = 0;
  char *buf = malloc(cap);
  while (buf != NULL) {
    n += fread(buf + n, 1, cap - n - 1, f);
    if (n < cap - 1) break;
    char *g = realloc(buf, cap * 2);
    if (g == NULL) free(buf);
    buf = g;
    cap *= 2;
  }
  fclose(f);
  if (buf != NULL) buf[n] = '\0';
  *len = n;
  return buf;
}

/* Reads the rules of the file at path into s. Returns 0, or -1 after
 * printing a message that names the file and the rule at fault. */
static int load_rules(ws_scope *s, const char *path) {
  size_t len;
  char *text = read_file(path, &len);
  if (text == NULL) return -1;
  app_json_error jerr;
  cJSON *doc = app_json_parse(text, len, APP_JSON_MAX_DEPTH, &jerr);
  int rc = -1;
  char where[600];
  if (doc == NULL) {
    fprintf(stderr, "web_scraper: %s:%d:%d: %s\n", path, jerr.line,
            jerr.column, jerr.message);
    goto out;
  }
  cJSON *list = doc;
  if (cJSON_IsObject(doc)) list = cJSON_GetObjectItemCaseSensitive(doc, "rules");
  if (!cJSON_IsArray(list)) {
    fprintf(stderr,
            "web_scraper: %s: expected {\"rules\": [...]} or an array of "
            "rules\n",
            path);
    goto out;
  }
  size_t n = (size_t)cJSON_GetArraySize(list);
  s->rules = calloc(n ? n : 1, sizeof *s->rules);
  if (s->rules == NULL) goto out;
  size_t i = 0;
  cJSON *r;
  cJSON_ArrayForEach(r, list) {
    snprintf(where, sizeof where, "%s: rule %zu", path, i + 1);
    cJSON *pat = cJSON_GetObjectItemCaseSensitive(r, "pattern");
    cJSON *fields = cJSON_GetObjectItemCaseSensitive(r, "fields");
    cJSON *follow = cJSON_GetObjectItemCaseSensitive(r, "follow");
    if (!cJSON_IsObject(r) || !cJSON_IsString(pat)) {
      fprintf(stderr, "web_scraper: %s: needs a \"pattern\" string\n", where);
      goto out;
    }
    if (fields != NULL && !cJSON_IsObject(fields)) {
      fprintf(stderr, "web_scraper: %s: \"fields\" must be an object\n", where);
      goto out;
    }
    if (follow != NULL && !cJSON_IsBool(follow)) {
      fprintf(stderr, "web_scraper: %s: \"follow\" must be true or false\n",
              where);
      goto out;
    }
    for (cJSON *k = r->child; k != NULL; k = k->next) {
      if (strcmp(k->string, "pattern") != 0 && strcmp(k->string, "fields") != 0 &&
          strcmp(k->string, "follow") != 0) {
        fprintf(stderr, "web_scraper: %s: unknown key \"%s\"\n", where,
                k->string);
        goto out;
      }
    }
    rule_entry *e = &s->rules[i];
    int erc = regcomp(&e->re, pat->valuestring, REG_EXTENDED | REG_NOSUB);
    if (erc != 0) {
      char msg[128];
      regerror(erc, &e->re, msg, sizeof msg);
      fprintf(stderr, "web_scraper: %s: bad pattern \"%s\": %s\n", where,
              pat->valuestring, msg);
      goto out;
    }
    s->n_rules = ++i;
    e->rule.follow = follow == NULL || cJSON_IsTrue(follow);
    size_t nf = fields ? (size_t)cJSON_GetArraySize(fields) : 0;
    e->rule.fields = calloc(nf ? nf : 1, sizeof(ws_field));
    if (e->rule.fields == NULL) goto out;
    for (cJSON *fd = fields ? fields->child : NULL; fd != NULL; fd = fd->next) {
      if (!cJSON_IsString(fd)) {
        fprintf(stderr, "web_scraper: %s: field \"%s\" must be an XPath string\n",
                where, fd->string);
        goto out;
      }
      size_t sl = strlen(fd->string) + strlen(fd->valuestring) + 2;
      char *spec = malloc(sl);
      if (spec == NULL) goto out;
      snprintf(spec, sl, "%s=%s", fd->string, fd->valuestring);
      char why[256];
      int frc = ws_field_parse(spec, &e->rule.fields[e->rule.n_fields], why,
                               sizeof why);
      free(spec);
      if (frc != 0) {
        fprintf(stderr, "web_scraper: %s: field \"%s\": %s\n", where,
                fd->string, why);
        goto out;
      }
      e->rule.n_fields++;
    }
  }
  rc = 0;
out:
  cJSON_Delete(doc);
  free(text);
  return rc;
}

ws_scope *ws_scope_new(char **domains, size_t n_domains, char **seeds,
                       size_t n_seeds, char **allow, size_t n_allow,
                       char **deny, size_t n_deny, const char *rules_path) {
  ws_scope *s = calloc(1, sizeof *s);
  if (s == NULL) return NULL;
  size_t n = n_domains > 0 ? n_domains : n_seeds;
  s->domains = calloc(n ? n : 1, sizeof(char *));
  if (s->domains == NULL) goto fail;
  for (size_t i = 0; i < n; i++) {
    char *d = NULL;
    if (n_domains > 0) {
      d = strdup(domains[i]);
      if (d == NULL) goto fail;
      for (char *p = d; *p; p++) *p = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
      if (d[0] == '.') memmove(d, d + 1, strlen(d));
    } else {
      ws_url u;
      if (ws_url_parse(seeds[i], &u) != 0) continue;
      d = u.host;
      u.host = NULL;
      ws_url_free(&u);
    }
    s->domains[s->n_domains++] = d;
  }
  if (compile_all(allow, n_allow, &s->allow, "--allow") != 0) goto fail;
  s->n_allow = n_allow;
  if (compile_all(deny, n_deny, &s->deny, "--deny") != 0) goto fail;
  s->n_deny = n_deny;
  if (rules_path != NULL && load_rules(s, rules_path) != 0) goto fail;
  return s;
fail:
  ws_scope_free(s);
  return NULL;
}

/* Non-zero when host is domain or a subdomain of it. */
static int host_in(const char *host, const char *domain) {
  size_t h = strlen(host), d = strlen(domain);
  if (h == d) return strcmp(host, domain) == 0;
  return h > d && host[h - d - 1] == '.' && strcmp(host + h - d, domain) == 0;
}

int ws_scope_allows(const ws_scope *s, const char *url) {
  ws_url u;
  if (ws_url_parse(url, &u) != 0) return 0;
  int ok = 0;
  for (size_t i = 0; i < s->n_domains && !ok; i++)
    ok = host_in(u.host, s->domains[i]);
  ws_url_free(&u);
  if (!ok) return 0;
  if (s->n_allow > 0) {
    ok = 0;
    for (size_t i = 0; i < s->n_allow && !ok; i++)
      ok = regexec(&s->allow[i], url, 0, NULL, 0) == 0;
    if (!ok) return 0;
  }
  for (size_t i = 0; i < s->n_deny; i++)
    if (regexec(&s->deny[i], url, 0, NULL, 0) == 0) return 0;
  return 1;
}

const ws_rule *ws_scope_rule(const ws_scope *s, const char *url) {
  for (size_t i = 0; i < s->n_rules; i++)
    if (regexec(&s->rules[i].re, url, 0, NULL, 0) == 0)
      return &s->rules[i].rule;
  return NULL;
}

void ws_scope_free(ws_scope *s) {
  if (s == NULL) return;
  for (size_t i = 0; i < s->n_domains; i++) free(s->domains[i]);
  free(s->domains);
  for (size_t i = 0; i < s->n_allow && s->allow; i++) regfree(&s->allow[i]);
  free(s->allow);
  for (size_t i = 0; i < s->n_deny && s->deny; i++) regfree(&s->deny[i]);
  free(s->deny);
  for (size_t i = 0; i < s->n_rules; i++) {
    regfree(&s->rules[i].re);
    for (size_t k = 0; k < s->rules[i].rule.n_fields; k++)
      ws_field_free(&s->rules[i].rule.fields[k]);
    free(s->rules[i].rule.fields);
  }
  free(s->rules);
  free(s);
}
