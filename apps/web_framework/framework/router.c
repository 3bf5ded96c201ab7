/* router.c: a tree of path segments.
 *
 * Each node is one segment of a pattern. Its children are static segments
 * (compared as bytes), at most one parameter (":name", any non-empty
 * segment) and at most one wildcard ("*name", the rest of the path). A
 * lookup walks the path once, trying static children first, then the
 * parameter, then the wildcard, and backs up when a branch dead-ends. It
 * allocates nothing: parameters are recorded as slices of the path.
 */
#include <stdlib.h>
#include <string.h>

#include "wf_internal.h"

/* Returns a node with all fields empty, or NULL. */
static wf_node *node_new(void) { return calloc(1, sizeof(wf_node)); }

/* Frees n and everything below it (routes are freed by the app). */
void wf__router_free(wf_node *n) {
  if (n == NULL) return;
  for (size_t i = 0; i < n->n_statics; i++) wf__router_free(n->statics[i]);
  free(n->statics);
  wf__router_free(n->param);
  wf__router_free(n->wild);
  free(n->seg);
  free(n->param_name);
  free(n->wild_name);
  free(n->routes);
  free(n->allow);
  free(n);
}

/* Returns n's static child for seg[0..len), making it when make is set;
 * NULL when absent or out of memory. */
static wf_node *static_child(wf_node *n, const char *seg, size_t len,
                             int make) {
  for (size_t i = 0; i < n->n_statics; i++) {
    wf_node *ch = n->statics[i];
    if (ch->seg_len == len && memcmp(ch->seg, seg, len) == 0) return ch;
  }
  if (!make) return NULL;
  wf_node **grown = realloc(n->statics, (n->n_statics + 1) * sizeof *grown);
  if (grown == NULL) return NULL;
  n->statics = grown;
  wf_node *ch = node_new();
  if (ch == NULL) return NULL;
  ch->seg = malloc(len + 1);
  if (ch->seg == NULL) {
    free(ch);
    return NULL;
  }
  memcpy(ch->seg, seg, len);
  ch->seg[len] = '\0';
  ch->seg_len = len;
  n->statics[n->n_statics++] = ch;
  return ch;
}

/* Returns the parameter or wildcard child of n named name[0..len), making
 * it; UV_EINVAL in *err when one of another name is already there. */
static wf_node *named_child(wf_node **slot, char **slot_name, const char *name,
                            size_t len, int *err) {
  if (*slot != NULL) {
    if (strlen(*slot_name) != len || memcmp(*slot_name, name, len) != 0) {
      *err = UV_EINVAL;
      return NULL;
    }
    return *slot;
  }
  char *copy = malloc(len + 1);
  wf_node *ch = node_new();
  if (copy == NULL || ch == NULL) {
    free(copy);
    free(ch);
    *err = UV_ENOMEM;
    return NULL;
  }
  memcpy(copy, name, len);
  copy[len] = '\0';
  *slot = ch;
  *slot_name = copy;
  return ch;
}

/* Adds r under root at r->pattern. Returns 0, UV_EINVAL for a bad pattern,
 * UV_EEXIST when the method is already routed there, or UV_ENOMEM. A
 * failure may leave empty nodes behind, which match nothing. */
int wf__router_add(wf_node *root, wf_entry *r) {
  const char *p = r->pattern;
  if (p[0] != '/') return UV_EINVAL;
  p++;
  wf_node *n = root;
  int depth = 0;
  for (;;) {
    const char *slash = strchr(p, '/');
    size_t len = slash ? (size_t)(slash - p) : strlen(p);
    int err = UV_ENOMEM;
    if (++depth > WF_MAX_DEPTH) return UV_EINVAL;
    if (len > 0 && p[0] == ':') {
      if (len == 1) return UV_EINVAL;
      n = named_child(&n->param, &n->param_name, p + 1, len - 1, &err);
    } else if (len > 0 && p[0] == '*') {
      /* A wildcard takes the rest of the path, so it must come last. */
      if (len == 1 || slash != NULL) return UV_EINVAL;
      n = named_child(&n->wild, &n->wild_name, p + 1, len - 1, &err);
    } else {
      n = static_child(n, p, len, 1);
    }
    if (n == NULL) return err;
    if (slash == NULL) break;
    p = slash + 1;
  }
  for (size_t i = 0; i < n->n_routes; i++)
    if (strcmp(n->routes[i]->method, r->method) == 0) return UV_EEXIST;
  wf_entry **grown = realloc(n->routes, (n->n_routes + 1) * sizeof *grown);
  if (grown == NULL) return UV_ENOMEM;
  n->routes = grown;
  n->routes[n->n_routes++] = r;
  if (strcmp(r->method, "GET") == 0) n->get = r;
  if (strcmp(r->method, "HEAD") == 0) n->head = r;
  return 0;
}

/* Records a parameter; returns 0, or -1 when there are too many. */
static int push_param(wf_ctx *c, const char *name, const char *v, size_t len) {
  if (c->n_params >= WF_MAX_PARAMS) return -1;
  wf_param_slot *s = &c->params[c->n_params++];
  s->name = name;
  s->raw = v;
  s->raw_len = len;
  s->decoded = NULL;
  return 0;
}

/* Whether n ends a pattern that the path may stop at: a node with routes,
 * or one whose wildcard (matching the empty rest) has routes. Returns the
 * node that serves, or NULL. */
static const wf_node *end_at(const wf_node *n, const char *rest, wf_ctx *c) {
  if (n->n_routes > 0) return n;
  if (n->wild != NULL && n->wild->n_routes > 0 &&
      push_param(c, n->wild_name, rest, 0) == 0)
    return n->wild;
  return NULL;
}

/* Matches the segments p[0..end) below n (p starts a segment). */
static const wf_node *match(const wf_node *n, const char *p, const char *end,
                            wf_ctx *c, int depth) {
  if (depth > WF_MAX_DEPTH) return NULL;
  const char *seg_end = memchr(p, '/', (size_t)(end - p));
  if (seg_end == NULL) seg_end = end;
  size_t len = (size_t)(seg_end - p);
  size_t saved = c->n_params;
  for (size_t i = 0; i < n->n_statics; i++) {
    const wf_node *ch = n->statics[i];
    if (ch->seg_len != len || memcmp(ch->seg, p, len) != 0) continue;
    const wf_node *found = seg_end == end
                               ? end_at(ch, end, c)
                               : match(ch, seg_end + 1, end, c, depth + 1);
    if (found != NULL) return found;
    c->n_params = saved;
    break; /* static segments are unique among siblings */
  }
  if (n->param != NULL && len > 0 &&
      push_param(c, n->param_name, p, len) == 0) {
    const wf_node *found =
        seg_end == end ? end_at(n->param, end, c)
                       : match(n->param, seg_end + 1, end, c, depth + 1);
    if (found != NULL) return found;
    c->n_params = saved;
  }
  if (n->wild != NULL && n->wild->n_routes > 0 &&
      push_param(c, n->wild_name, p, (size_t)(end - p)) == 0)
    return n->wild;
  return NULL;
}

/* Looks path[0..len) up below root, recording parameters in c. Returns the
 * node whose routes serve the path, or NULL. */
const wf_node *wf__router_match(const wf_node *root, const char *path,
                                size_t len, wf_ctx *c) {
  c->n_params = 0;
  if (len == 0 || path[0] != '/') return NULL;
  const wf_node *found = match(root, path + 1, path + len, c, 0);
  if (found == NULL) c->n_params = 0;
  return found;
}

/* Picks n's route for method; HEAD falls back to GET. NULL when none. */
const wf_entry *wf__router_method(const wf_node *n, const char *method) {
  /* The common methods are compared by their first bytes only. */
  if (method[0] == 'G' && n->get != NULL && strcmp(method, "GET") == 0)
    return n->get;
  if (method[0] == 'H' && strcmp(method, "HEAD") == 0)
    return n->head != NULL ? n->head : n->get;
  for (size_t i = 0; i < n->n_routes; i++)
    if (strcmp(n->routes[i]->method, method) == 0) return n->routes[i];
  return NULL;
}

/* Appends word to the Allow list s (of length *len). */
static void allow_add(char *s, size_t *len, const char *word) {
  if (*len > 0) {
    memcpy(s + *len, ", ", 2);
    *len += 2;
  }
  size_t w = strlen(word);
  memcpy(s + *len, word, w);
  *len += w;
  s[*len] = '\0';
}

/* Computes the Allow header of n and its descendants: the routed methods,
 * HEAD when GET is routed, and OPTIONS (answered by the framework). */
int wf__router_freeze(wf_node *n) {
  if (n->n_routes > 0 && n->allow == NULL) {
    size_t cap = sizeof "HEAD, OPTIONS" + 2;
    for (size_t i = 0; i < n->n_routes; i++)
      cap += strlen(n->routes[i]->method) + 2;
    n->allow = malloc(cap);
    if (n->allow == NULL) return UV_ENOMEM;
    size_t len = 0;
    n->allow[0] = '\0';
    int has_options = 0;
    for (size_t i = 0; i < n->n_routes; i++) {
      allow_add(n->allow, &len, n->routes[i]->method);
      if (strcmp(n->routes[i]->method, "OPTIONS") == 0) has_options = 1;
    }
    if (n->get != NULL && n->head == NULL) allow_add(n->allow, &len, "HEAD");
    if (!has_options) allow_add(n->allow, &len, "OPTIONS");
  }
  for (size_t i = 0; i < n->n_statics; i++)
    if (wf__router_freeze(n->statics[i]) < 0) return UV_ENOMEM;
  if (n->param != NULL && wf__router_freeze(n->param) < 0) return UV_ENOMEM;
  if (n->wild != NULL && wf__router_freeze(n->wild) < 0) return UV_ENOMEM;
  return 0;
}
