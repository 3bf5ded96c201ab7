/* urls.c: reading and checking the URLs of a run. */
#include "urls.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

/* The longest line of a URL file; longer ones are refused. */
#define URL_LINE_MAX (64 * 1024)

/* Checks url with libcurl's own parser, so that what is accepted here is
 * what libcurl will request. Fills target->host, or target->error; keeps
 * the parsed URL in target->parsed when keep is set. Returns -1 only when
 * out of memory. */
static int check_url(hc_target *target, int keep) {
  CURLU *u = curl_url();
  if (u == NULL) return -1;
  char *scheme = NULL, *host = NULL, *port = NULL;
  const char *why = NULL;
  char buf[160];
  CURLUcode rc = curl_url_set(u, CURLUPART_URL, target->url, 0);
  if (rc != CURLUE_OK) {
    why = curl_url_strerror(rc);
    if (why == NULL) why = "bad URL";
  } else if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
             (strcasecmp(scheme, "http") != 0 &&
              strcasecmp(scheme, "https") != 0)) {
    snprintf(buf, sizeof buf, "unsupported scheme \"%s\" (http or https)",
             scheme ? scheme : "");
    why = buf;
  } else if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
             host[0] == '\0') {
    why = "no host";
  } else if (curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) !=
             CURLUE_OK) {
    why = "bad port";
  }
  int rcode = 0;
  if (why != NULL) {
    target->error = strdup(why);
    if (target->error == NULL) rcode = -1;
  } else {
    size_t len = strlen(host) + strlen(port) + 2;
    target->host = malloc(len);
    if (target->host == NULL)
      rcode = -1;
    else
      snprintf(target->host, len, "%s:%s", host, port);
  }
  curl_free(scheme);
  curl_free(host);
  curl_free(port);
  if (keep && why == NULL && rcode == 0)
    target->parsed = u;
  else
    curl_url_cleanup(u);
  return rcode;
}

/* Appends url with weight to t, kept parsed when keep is set. Returns 0 or
 * -1 (out of memory). */
static int add_target(hc_targets *t, size_t *cap, const char *url,
                      uint64_t weight, int keep) {
  if (t->n == *cap) {
    size_t ncap = *cap ? *cap * 2 : 16;
    hc_target *grown = realloc(t->items, ncap * sizeof *grown);
    if (grown == NULL) return -1;
    t->items = grown;
    *cap = ncap;
  }
  hc_target *target = &t->items[t->n];
  memset(target, 0, sizeof *target);
  target->weight = weight;
  target->url = strdup(url);
  if (target->url == NULL) return -1;
  t->n++;
  return check_url(target, keep);
}

/* Cuts the whitespace off both ends of s, in place. */
static char *trim(char *s) {
  while (isspace((unsigned char)*s)) s++;
  size_t len = strlen(s);
  while (len > 0 && isspace((unsigned char)s[len - 1])) s[--len] = '\0';
  return s;
}

/* Reads the URL file input into t. Returns 0, or -1 with why. */
static int read_file(hc_targets *t, size_t *cap, const char *input,
                     int weighted, char *why, size_t len) {
  int is_stdin = strcmp(input, "-") == 0;
  FILE *f = is_stdin ? stdin : fopen(input, "r");
  const char *name = is_stdin ? "standard input" : input;
  if (f == NULL) {
    snprintf(why, len, "cannot read %s: %s", name, strerror(errno));
    return -1;
  }
  char *line = malloc(URL_LINE_MAX + 2);
  int rc = line ? 0 : -1;
  if (line == NULL) snprintf(why, len, "out of memory");
  for (int lineno = 1; rc == 0 && fgets(line, URL_LINE_MAX + 2, f) != NULL;
       lineno++) {
    if (strlen(line) > URL_LINE_MAX && strchr(line, '\n') == NULL) {
      snprintf(why, len, "%s:%d: a line longer than %d bytes", name, lineno,
               URL_LINE_MAX);
      rc = -1;
      break;
    }
    char *text = trim(line);
    if (text[0] == '\0' || text[0] == '#') continue;
    uint64_t weight = 1;
    /* "WEIGHT URL": a number, blanks, then the URL. */
    if (weighted && isdigit((unsigned char)text[0])) {
      char *end;
      unsigned long long w = strtoull(text, &end, 10);
      if (isspace((unsigned char)*end)) {
        if (w == 0 || w > 1000000) {
          snprintf(why, len,
                   "%s:%d: weight %llu is out of range (1 to "
                   "1000000)",
                   name, lineno, w);
          rc = -1;
          break;
        }
        weight = w;
        text = trim(end);
      }
    }
    if (add_target(t, cap, text, weight, weighted) != 0) {
      snprintf(why, len, "out of memory");
      rc = -1;
    }
  }
  if (rc == 0 && ferror(f)) {
    snprintf(why, len, "cannot read %s: %s", name, strerror(errno));
    rc = -1;
  }
  free(line);
  if (!is_stdin) fclose(f);
  return rc;
}

int hc_targets_load(hc_targets *t, const app_string_list *urls,
                    const char *input, int weighted, char *why, size_t len) {
  memset(t, 0, sizeof *t);
  size_t cap = 0;
  for (size_t i = 0; i < urls->n; i++) {
    if (add_target(t, &cap, urls->items[i], 1, weighted) != 0) {
      snprintf(why, len, "out of memory");
      goto fail;
    }
  }
  if (input != NULL && read_file(t, &cap, input, weighted, why, len) != 0)
    goto fail;
  if (t->n == 0) {
    snprintf(why, len, "no URLs in %s",
             input == NULL || strcmp(input, "-") == 0 ? "the input" : input);
    goto fail;
  }
  t->cumulative = malloc(t->n * sizeof *t->cumulative);
  if (t->cumulative == NULL) {
    snprintf(why, len, "out of memory");
    goto fail;
  }
  uint64_t sum = 0;
  for (size_t i = 0; i < t->n; i++) {
    sum += t->items[i].weight;
    t->cumulative[i] = sum;
  }
  t->total_weight = sum;
  return 0;
fail:
  hc_targets_free(t);
  return -1;
}

const hc_target *hc_targets_pick(const hc_targets *t, uint64_t index) {
  uint64_t slot = index % t->total_weight;
  /* The first target whose cumulative weight is above slot. */
  size_t lo = 0, hi = t->n - 1;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (t->cumulative[mid] > slot)
      hi = mid;
    else
      lo = mid + 1;
  }
  return &t->items[lo];
}

void hc_targets_free(hc_targets *t) {
  for (size_t i = 0; i < t->n; i++) {
    free(t->items[i].url);
    free(t->items[i].host);
    free(t->items[i].error);
    curl_url_cleanup(t->items[i].parsed);
  }
  free(t->items);
  free(t->cumulative);
  memset(t, 0, sizeof *t);
}
