/* items.c: an in-memory JSON resource with create, read, update, delete.
 *
 * An item is {"id": 1, "name": "tea", "price": 3.5}. The store is one
 * array sorted by id (ids only grow, so a new item goes at the end and a
 * lookup is a binary search), shared by every executor: the connection
 * tasks of all executors run these handlers at the same time, so every
 * access holds the store's weft_mutex. The mutex suspends a waiting task
 * rather than its thread, and no critical section below waits on anything,
 * so it is held for microseconds.
 *
 * Validation: name must be a non-empty string of at most 100 characters,
 * price a number >= 0; any other member (except an "id" equal to the
 * item's) is refused. Malformed JSON is answered 400 (by wf_body_json()),
 * well-formed JSON that breaks a rule 422 with one message per field.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <weft.h>

#include "json.h"
#include "webapp.h"

/* The longest name, in characters (UTF-8 code points). */
#define ITEMS_NAME_MAX 100
/* Pages of the list: the default and the most a client may ask for. */
#define ITEMS_PAGE_DEFAULT 20
#define ITEMS_PAGE_MAX 100
/* Ids stay within what a JSON number holds exactly (2^53). */
#define ITEMS_ID_MAX ((int64_t)1 << 53)

typedef struct item {
  int64_t id;
  char *name; /* owned */
  double price;
} item;

struct items_store {
  weft_mutex *lock; /* guards everything below */
  item *items;      /* sorted by id */
  size_t n, cap;
  size_t max_items;
  int64_t next_id;
};

items_store *items_store_new(size_t max_items) {
  items_store *s = calloc(1, sizeof *s);
  if (s == NULL) return NULL;
  s->lock = weft_mutex_new();
  if (s->lock == NULL) {
    free(s);
    return NULL;
  }
  s->max_items = max_items;
  s->next_id = 1;
  return s;
}

void items_store_clear(items_store *s) {
  for (size_t i = 0; i < s->n; i++) free(s->items[i].name);
  s->n = 0;
  s->next_id = 1;
}

void items_store_free(items_store *s) {
  if (s == NULL) return;
  items_store_clear(s);
  free(s->items);
  weft_mutex_free(s->lock);
  free(s);
}

/* The index of item id, or -1. Called with the lock held. */
static long items_find(const items_store *s, int64_t id) {
  size_t lo = 0, hi = s->n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (s->items[mid].id == id) return (long)mid;
    if (s->items[mid].id < id)
      lo = mid + 1;
    else
      hi = mid;
  }
  return -1;
}

/* Parses a decimal id from 1 to ITEMS_ID_MAX; returns it, or -1. */
static int64_t items_parse_id(const char *text) {
  if (text == NULL || *text < '1' || *text > '9') return -1;
  int64_t v = 0;
  for (const char *p = text; *p; p++) {
    if (*p < '0' || *p > '9') return -1;
    v = v * 10 + (*p - '0');
    if (v > ITEMS_ID_MAX) return -1;
  }
  return v;
}

/* Parses an optional query integer in [lo, hi]; returns 0 and sets *out
 * (def when absent), or -1. */
static int items_query_int(wf_ctx *c, const char *key, int64_t def, int64_t lo,
                           int64_t hi, int64_t *out) {
  const char *text = wf_query(c, key);
  if (text == NULL) {
    *out = def;
    return 0;
  }
  if (*text == '\0' || strlen(text) > 18) return -1;
  char *end;
  errno = 0;
  long long v = strtoll(text, &end, 10);
  if (errno != 0 || *end != '\0' || v < lo || v > hi) return -1;
  *out = v;
  return 0;
}

/* The number of UTF-8 code points of s (bytes that do not continue one). */
static size_t items_chars(const char *s) {
  size_t n = 0;
  for (; *s; s++)
    if (((unsigned char)*s & 0xC0) != 0x80) n++;
  return n;
}

/* The JSON object of one item; NULL when memory runs out. */
static cJSON *items_to_json(const item *it) {
  cJSON *o = cJSON_CreateObject();
  if (o == NULL) return NULL;
  if (cJSON_AddNumberToObject(o, "id", (double)it->id) == NULL ||
      cJSON_AddStringToObject(o, "name", it->name) == NULL ||
      cJSON_AddNumberToObject(o, "price", it->price) == NULL) {
    cJSON_Delete(o);
    return NULL;
  }
  return o;
}

/* Sends doc (which may be NULL: out of memory) with status and frees it. */
static int items_send_json(wf_ctx *c, int status, cJSON *doc) {
  if (doc == NULL) return UV_ENOMEM;
  int rc = wf_json(c, status, doc);
  cJSON_Delete(doc);
  return rc;
}

/* What a request body asks to change. */
typedef struct items_change {
  const char *name; /* NULL: not given */
  double price;
  int has_price;
} items_change;

/* Adds "field": "why" to the 422 details, keeping the first fault of a
 * field. Returns 0 or UV_ENOMEM. */
static int items_fault(cJSON *faults, const char *field, const char *why) {
  if (cJSON_GetObjectItemCaseSensitive(faults, field) != NULL) return 0;
  return cJSON_AddStringToObject(faults, field, why) != NULL ? 0 : UV_ENOMEM;
}

/*
 * Reads the body of a create (partial 0: name and price required), replace
 * (the same) or patch (partial 1: each optional) into *ch; id is the item's
 * (0 when creating). Answers the request itself and returns 1 when the
 * body is malformed (400) or invalid (422); returns 0 when *ch is good, or
 * an error. The strings in *ch live as long as the request.
 */
static int items_read_body(wf_ctx *c, int partial, int64_t id,
                           items_change *ch) {
  memset(ch, 0, sizeof *ch);
  cJSON *body = wf_body_json(c);
  if (body == NULL) return 1; /* answered 400 */
  cJSON *faults = cJSON_CreateObject();
  if (faults == NULL) return UV_ENOMEM;
  int rc = 0;
  if (!cJSON_IsObject(body)) {
    rc = items_fault(faults, "body", "must be a JSON object");
  } else {
    int seen_name = 0, seen_price = 0;
    size_t text_len;
    const char *text = wf_body(c, &text_len);
    /* cJSON cuts a string at a NUL: "x\u0000y" would be stored as "x".
     * Only a body that has the escape at all is searched, member by member
     * (each search reads the body from its start: the first members only;
     * an item has three fields, and any member past them is a fault). */
    int nul_escape = 0;
    for (size_t i = 0; i + 6 <= text_len && !nul_escape; i++)
      nul_escape = text[i] == '\\' && memcmp(text + i + 1, "u0000", 5) == 0;
    int index = 0;
    for (cJSON *m = body->child; m != NULL && rc == 0; m = m->next, index++) {
      const char *key = m->string != NULL ? m->string : "";
      int look = nul_escape && index < 16;
      long key_at =
          look ? app_json_member_offset(text, text_len, index, 0) : -1;
      long value_at =
          look ? app_json_member_offset(text, text_len, index, 1) : -1;
      if (key_at >= 0 &&
          app_json_string_has_nul(text, text_len, (size_t)key_at)) {
        rc = items_fault(faults, key, "a key must not contain a NUL character");
      } else if (cJSON_IsString(m) && value_at >= 0 &&
                 app_json_string_has_nul(text, text_len, (size_t)value_at)) {
        rc = items_fault(faults, key, "must not contain a NUL character");
      } else if (strcmp(key, "name") == 0) {
        if (seen_name++)
          rc = items_fault(faults, "name", "is given twice");
        else if (!cJSON_IsString(m) || m->valuestring[0] == '\0' ||
                 items_chars(m->valuestring) > ITEMS_NAME_MAX)
          rc = items_fault(faults, "name",
                           "must be a non-empty string of at most 100 "
                           "characters");
        else
          ch->name = m->valuestring;
      } else if (strcmp(key, "price") == 0) {
        if (seen_price++)
          rc = items_fault(faults, "price", "is given twice");
        else if (!cJSON_IsNumber(m) || !isfinite(m->valuedouble) ||
                 m->valuedouble < 0)
          rc = items_fault(faults, "price", "must be a number >= 0");
        else {
          ch->price = m->valuedouble;
          ch->has_price = 1;
        }
      } else if (strcmp(key, "id") == 0) {
        /* A client may send back what it read; the id itself never
         * changes. */
        if (!cJSON_IsNumber(m) || id == 0 || m->valuedouble != (double)id)
          rc = items_fault(faults, "id", "is read-only");
      } else {
        rc = items_fault(faults, key, "is not a field of an item");
      }
    }
    if (rc == 0 && !partial && !seen_name)
      rc = items_fault(faults, "name", "is required");
    if (rc == 0 && !partial && !seen_price)
      rc = items_fault(faults, "price", "is required");
  }
  if (rc == 0 && faults->child == NULL) {
    cJSON_Delete(faults);
    return 0;
  }
  /* The body and its strings belong to the request: copy the name out of
   * it only when it is used, never here. */
  cJSON *doc = cJSON_CreateObject();
  if (rc != 0 || doc == NULL ||
      cJSON_AddStringToObject(doc, "error", "validation failed") == NULL ||
      cJSON_AddStringToObject(doc, "request_id", wf_request_id(c)) == NULL) {
    cJSON_Delete(doc);
    cJSON_Delete(faults);
    return UV_ENOMEM;
  }
  cJSON_AddItemToObject(doc, "fields", faults);
  rc = items_send_json(c, 422, doc);
  return rc < 0 ? rc : 1;
}

/* 404 for an unknown or malformed id. */
static int items_not_found(wf_ctx *c) {
  const char *what = wf_param(c, "id");
  const char *msg = wf_sprintf(c, "no item with id '%s'", what ? what : "");
  return wf_error(c, 404, msg != NULL ? msg : "no such item");
}

/* GET /items?limit=N&offset=M: a page of the items, oldest first. */
static int items_list(wf_ctx *c, void *arg) {
  items_store *s = arg;
  int64_t limit, offset;
  if (items_query_int(c, "limit", ITEMS_PAGE_DEFAULT, 1, ITEMS_PAGE_MAX,
                      &limit) < 0)
    return wf_error(c, 400, "limit must be an integer from 1 to 100");
  if (items_query_int(c, "offset", 0, 0, INT64_C(1) << 53, &offset) < 0)
    return wf_error(c, 400, "offset must be an integer >= 0");

  cJSON *doc = cJSON_CreateObject();
  cJSON *arr = cJSON_AddArrayToObject(doc, "items");
  if (arr == NULL) {
    cJSON_Delete(doc);
    return UV_ENOMEM;
  }
  int rc = weft_mutex_lock(s->lock);
  if (rc < 0) {
    cJSON_Delete(doc);
    return rc;
  }
  size_t total = s->n;
  for (size_t i = (size_t)offset; i < s->n && i < (size_t)(offset + limit);
       i++) {
    cJSON *o = items_to_json(&s->items[i]);
    if (o == NULL) {
      rc = UV_ENOMEM;
      break;
    }
    cJSON_AddItemToArray(arr, o);
  }
  weft_mutex_unlock(s->lock);
  if (rc < 0 || cJSON_AddNumberToObject(doc, "total", (double)total) == NULL ||
      cJSON_AddNumberToObject(doc, "limit", (double)limit) == NULL ||
      cJSON_AddNumberToObject(doc, "offset", (double)offset) == NULL) {
    cJSON_Delete(doc);
    return UV_ENOMEM;
  }
  return items_send_json(c, 200, doc);
}

/* POST /items: 201 with the new item and its Location. */
static int items_create(wf_ctx *c, void *arg) {
  items_store *s = arg;
  items_change ch;
  int rc = items_read_body(c, 0, 0, &ch);
  if (rc != 0) return rc < 0 ? rc : 0;
  char *name = strdup(ch.name);
  if (name == NULL) return UV_ENOMEM;

  rc = weft_mutex_lock(s->lock);
  if (rc < 0) {
    free(name);
    return rc;
  }
  if (s->n >= s->max_items || s->next_id > ITEMS_ID_MAX) {
    weft_mutex_unlock(s->lock);
    free(name);
    return wf_error(c, 507, "the store is full");
  }
  if (s->n == s->cap) {
    size_t cap = s->cap ? s->cap * 2 : 16;
    item *grown = realloc(s->items, cap * sizeof *grown);
    if (grown == NULL) {
      weft_mutex_unlock(s->lock);
      free(name);
      return UV_ENOMEM;
    }
    s->items = grown;
    s->cap = cap;
  }
  item *it = &s->items[s->n++];
  it->id = s->next_id++;
  it->name = name;
  it->price = ch.price;
  cJSON *doc = items_to_json(it);
  int64_t id = it->id;
  weft_mutex_unlock(s->lock);

  const char *where = wf_sprintf(c, "/api/items/%lld", (long long)id);
  if (doc == NULL || where == NULL) {
    cJSON_Delete(doc);
    return UV_ENOMEM;
  }
  rc = wf_set_header(c, "Location", where);
  if (rc < 0) {
    cJSON_Delete(doc);
    return rc;
  }
  return items_send_json(c, 201, doc);
}

/* GET /items/:id */
static int items_get(wf_ctx *c, void *arg) {
  items_store *s = arg;
  int64_t id = items_parse_id(wf_param(c, "id"));
  if (id < 0) return items_not_found(c);
  int rc = weft_mutex_lock(s->lock);
  if (rc < 0) return rc;
  long i = items_find(s, id);
  cJSON *doc = i >= 0 ? items_to_json(&s->items[i]) : NULL;
  weft_mutex_unlock(s->lock);
  if (i < 0) return items_not_found(c);
  return items_send_json(c, 200, doc);
}

/* PUT /items/:id (partial 0) and PATCH /items/:id (partial 1). */
static int items_update(wf_ctx *c, items_store *s, int partial) {
  int64_t id = items_parse_id(wf_param(c, "id"));
  if (id < 0) return items_not_found(c);
  items_change ch;
  int rc = items_read_body(c, partial, id, &ch);
  if (rc != 0) return rc < 0 ? rc : 0;
  char *name = NULL;
  if (ch.name != NULL && (name = strdup(ch.name)) == NULL) return UV_ENOMEM;

  rc = weft_mutex_lock(s->lock);
  if (rc < 0) {
    free(name);
    return rc;
  }
  long i = items_find(s, id);
  cJSON *doc = NULL;
  if (i >= 0) {
    item *it = &s->items[i];
    if (name != NULL) {
      free(it->name);
      it->name = name;
      name = NULL;
    }
    if (ch.has_price) it->price = ch.price;
    doc = items_to_json(it);
  }
  weft_mutex_unlock(s->lock);
  free(name);
  if (i < 0) return items_not_found(c);
  return items_send_json(c, 200, doc);
}

static int items_put(wf_ctx *c, void *arg) { return items_update(c, arg, 0); }

static int items_patch(wf_ctx *c, void *arg) { return items_update(c, arg, 1); }

/* DELETE /items/:id: 204, or 404 when there is no such item. */
static int items_delete(wf_ctx *c, void *arg) {
  items_store *s = arg;
  int64_t id = items_parse_id(wf_param(c, "id"));
  if (id < 0) return items_not_found(c);
  int rc = weft_mutex_lock(s->lock);
  if (rc < 0) return rc;
  long i = items_find(s, id);
  char *name = NULL;
  if (i >= 0) {
    name = s->items[i].name;
    memmove(&s->items[i], &s->items[i + 1],
            (s->n - (size_t)i - 1) * sizeof s->items[0]);
    s->n--;
  }
  weft_mutex_unlock(s->lock);
  if (i < 0) return items_not_found(c);
  free(name);
  return wf_status(c, 204);
}

int items_routes(wf_group *g, items_store *s) {
  int rc;
  if ((rc = wf_get(g, "/items", items_list, s)) < 0 ||
      (rc = wf_post(g, "/items", items_create, s)) < 0 ||
      (rc = wf_get(g, "/items/:id", items_get, s)) < 0 ||
      (rc = wf_put(g, "/items/:id", items_put, s)) < 0 ||
      (rc = wf_patch(g, "/items/:id", items_patch, s)) < 0 ||
      (rc = wf_delete(g, "/items/:id", items_delete, s)) < 0)
    return rc;
  return 0;
}
