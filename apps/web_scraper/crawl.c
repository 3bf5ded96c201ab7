/* crawl.c: hosts, the scheduler, the workers, robots.txt and records. */
#include "crawl.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <weft.h>
#include <weft_curl.h>

#include "fetch.h"
#include "output.h"
#include "robots.h"
#include "signals.h"
#include "strmap.h"
#include "url.h"

/* Workers per weft_curl client (see apps/http_client/runner.c). */
#define WORKERS_PER_CLIENT 32
/* Retry back-off: base and ceiling, in milliseconds. */
#define BACKOFF_BASE_MS 500
#define BACKOFF_MAX_MS 30000
/* A Retry-After further off than this is not waited for. */
#define RETRY_AFTER_MAX_MS 120000
/* The pause of a host after its first failed page; it doubles with each
 * failure in a row, up to HOST_PAUSE_MAX_MS. */
#define HOST_PAUSE_MS 250
#define HOST_PAUSE_MAX_MS 10000
/* Redirects of robots.txt followed (RFC 9309 2.3.1.2: at least five). */
#define ROBOTS_REDIRECTS 5
/* Times a robots.txt that failed (5xx, 429, no answer) is fetched again,
 * each wait twice the one before, starting at --robots-retry. */
#define ROBOTS_REFETCHES 4
/* The longest wait before fetching a failed robots.txt again. */
#define ROBOTS_RETRY_MAX_MS (30 * 60 * 1000)
/* How often a crawl with a shared frontier looks at the others' queues. */
#define SHARED_POLL_MS 200
/* How often a process waiting for another's robots.txt looks for it. */
#define ROBOTS_SHARED_POLL_MS 50
/* How long a shared robots.txt is kept (RFC 9309 2.4: at most 24 hours). */
#define ROBOTS_CACHE_MS (24 * 60 * 60 * 1000)
/* The progress line's period. */
#define PROGRESS_MS 500

/* ROBOTS_UNAVAILABLE: robots.txt failed; the host is disallowed until
 * robots_retry_at, when robots.txt is fetched again. */
enum robots_state {
  ROBOTS_READY,
  ROBOTS_PENDING,
  ROBOTS_FETCHING,
  ROBOTS_UNAVAILABLE
};

/* One host:port with its politeness state. */
typedef struct host {
  char *key;            /* scheme://host:port */
  weft_sem *slots;      /* requests in flight: --per-host */
  weft_limiter *pace;   /* the delay between requests; NULL: none */
  int64_t delay_ms;     /* the delay in force */
  int robots_state;
  ws_robots *robots;     /* NULL with --ignore-robots */
  char robots_error[320];/* why robots.txt disallows all, or "" */
  int robots_failures;   /* robots.txt fetches that failed */
  int64_t robots_retry_at; /* weft_now() when robots.txt is fetched again */
  int64_t queued;        /* items in its frontier queue */
  int failures;          /* pages failed in a row */
  int64_t resume_at;     /* weft_now() before which it is not served */
  int given_up;
  int gated;             /* its head is deeper than the shared level */
} host;

typedef struct crawl crawl;

/* A worker task's own things. */
typedef struct worker {
  crawl *cr;
  weft_curl *client;
  ws_fetcher fetch;
  uint64_t rng;
} worker;

struct crawl {
  const ws_crawl_input *in;
  const ws_config *cfg;
  ws_totals *t;
  ws_frontier *fr;
  ws_strmap host_map;
  host **hosts;
  size_t n_hosts, cap_hosts, cursor;
  weft_event *wake;     /* set whenever a job may have become available */
  uint64_t wake_gen;    /* counts the times wake was set */
  weft_limiter *rate;   /* --rate; NULL: none */
  int64_t *pending;     /* items queued or in flight, by depth */
  size_t pending_cap;
  int level;            /* the depth being served */
  int max_level;        /* the deepest depth queued so far */
  int64_t active;       /* jobs being worked on */
  uint64_t dispatched;  /* pages handed out (for --max-pages) */
  int stopping;         /* a signal came: take no new jobs */
  int durable;          /* --state, --redis: records flushed before done() */
  int shared;           /* --redis: other processes share the frontier */
  int recording;        /* tell the frontier before writing a record */
  int output_failed;    /* a record could not be written: stopping */
  int done;
  weft_group *workers;
  ws_buf line;
  uint64_t start_ns;
  int progress_shown;
};

/* Tells the waiting workers that something changed. The count lets a
 * worker whose scan was suspended (a frontier may wait for its database)
 * see that it missed a change before it waits. */
static void wake_all(crawl *cr) {
  cr->wake_gen++;
  weft_event_set(cr->wake);
}

/* ---- Hosts -------------------------------------------------------------- */

/* The host of url (normalised), made on first sight; NULL when out of
 * memory or not a URL. */
static host *host_of_parsed(crawl *cr, const ws_url *u) {
  char buf[320];
  int n = snprintf(buf, sizeof buf, "%s://%s:%d", u->scheme, u->host, u->port);
  host *h = n > 0 && (size_t)n < sizeof buf ? ws_strmap_get(&cr->host_map, buf)
                                            : NULL;
  if (h != NULL) return h;
  char *key = ws_url_host_key(u);
  if (key == NULL) return NULL;
  h = ws_strmap_get(&cr->host_map, key);
  if (h != NULL) {
    free(key);
    return h;
  }
  h = calloc(1, sizeof *h);
  if (h == NULL) goto fail;
  h->key = key;
  h->slots = weft_sem_new(cr->cfg->per_host);
  if (h->slots == NULL) goto fail;
  h->delay_ms = cr->cfg->delay;
  if (h->delay_ms > 0) {
    h->pace = weft_limiter_new(1000.0 / (double)h->delay_ms, 1);
    if (h->pace == NULL) goto fail;
  }
  h->robots_state = cr->cfg->ignore_robots ? ROBOTS_READY : ROBOTS_PENDING;
  if (cr->n_hosts == cr->cap_hosts) {
    size_t cap = cr->cap_hosts ? cr->cap_hosts * 2 : 16;
    host **g = realloc(cr->hosts, cap * sizeof *g);
    if (g == NULL) goto fail;
    cr->hosts = g;
    cr->cap_hosts = cap;
  }
  if (ws_strmap_put(&cr->host_map, key, h) != 0) goto fail;
  cr->hosts[cr->n_hosts++] = h;
  return h;
fail:
  if (h != NULL) {
    if (h->slots) weft_sem_free(h->slots);
    if (h->pace) weft_limiter_free(h->pace);
    free(h);
  }
  free(key);
  return NULL;
}

static host *host_of(crawl *cr, const char *url) {
  ws_url u;
  if (ws_url_parse(url, &u) != 0) return NULL;
  host *h = host_of_parsed(cr, &u);
  ws_url_free(&u);
  return h;
}

static void host_free(host *h) {
  weft_sem_free(h->slots);
  if (h->pace) weft_limiter_free(h->pace);
  ws_robots_free(h->robots);
  free(h->key);
  free(h);
}

/* Sets the host's delay between requests (the larger of --delay and its
 * Crawl-delay). */
static void host_set_delay(host *h, int64_t ms) {
  if (ms <= h->delay_ms) return;
  h->delay_ms = ms;
  if (h->pace != NULL)
    weft_limiter_set_rate(h->pace, 1000.0 / (double)ms, 1);
  else
    h->pace = weft_limiter_new(1000.0 / (double)ms, 1);
}

/* Non-zero when robots.txt lets us fetch u on h. */
static int robots_allow_parsed(const host *h, const ws_url *u) {
  if (h->robots_state == ROBOTS_UNAVAILABLE) return 0;
  if (h->robots == NULL) return h->robots_error[0] == '\0';
  char buf[2048];
  int n = u->query ? snprintf(buf, sizeof buf, "%s?%s", u->path, u->query)
                   : snprintf(buf, sizeof buf, "%s", u->path);
  if (n > 0 && (size_t)n < sizeof buf) return ws_robots_allowed(h->robots, buf);
  char *pq = ws_url_path_query(u);
  int ok = pq != NULL && ws_robots_allowed(h->robots, pq);
  free(pq);
  return ok;
}

/* Non-zero when robots.txt lets us fetch url on h. */
static int robots_allow(const host *h, const char *url) {
  if (h->robots_state == ROBOTS_UNAVAILABLE) return 0;
  if (h->robots == NULL) return h->robots_error[0] == '\0';
  ws_url u;
  if (ws_url_parse(url, &u) != 0) return 0;
  int ok = robots_allow_parsed(h, &u);
  ws_url_free(&u);
  return ok;
}

/* ---- Depth levels ------------------------------------------------------- */

static int pending_add(crawl *cr, int depth, int64_t d) {
  if ((size_t)depth >= cr->pending_cap) {
    size_t cap = cr->pending_cap ? cr->pending_cap : 16;
    while (cap <= (size_t)depth) cap *= 2;
    int64_t *g = realloc(cr->pending, cap * sizeof *g);
    if (g == NULL) return UV_ENOMEM;
    memset(g + cr->pending_cap, 0, (cap - cr->pending_cap) * sizeof *g);
    cr->pending = g;
    cr->pending_cap = cap;
  }
  cr->pending[depth] += d;
  if (depth > cr->max_level) cr->max_level = depth;
  return 0;
}

/* Moves to the next level once nothing of the current one is left.
 * Every item is queued at the level being served plus one (seeds at 0),
 * so each host's FIFO queue stays in order of depth and its head is
 * always of the lowest depth it holds. */
static void advance_level(crawl *cr) {
  while (cr->level < cr->max_level && cr->pending[cr->level] == 0) cr->level++;
}

/* ---- Records ------------------------------------------------------------ */

static int64_t wall_ms(void) {
  struct timeval tv;
  gettimeofday(&tv, NULL);
  return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

/* Writes one record and counts it. */
static void write_record(crawl *cr, const ws_record *r, int seed) {
  cr->line.len = 0;
  ws_record_json(&cr->line, r);
  fwrite(cr->line.p, 1, cr->line.len, cr->in->out);
  ws_totals *t = cr->t;
  t->pages++;
  t->bytes += r->bytes;
  if (r->error != NULL) t->errors++;
  if (r->status > 0 && r->status < 600) t->by_status[r->status]++;
  if (seed) t->seeds_tried++;
  if (seed && r->status > 0) t->seeds_fetched++;
}

/* The output failed (a full disk, a closed pipe): the crawl stops, as on
 * a signal, and the item being recorded is not done, so that a durable
 * frontier settles it against the output when the crawl is resumed. */
static void output_failed(crawl *cr, int err) {
  if (!cr->output_failed)
    weft_log(WEFT_LOG_ERROR,
             "cannot write the output: stopping (the pages being recorded are "
             "settled against the output when the crawl resumes)",
             "error=\"%s\"", strerror(err));
  cr->output_failed = 1;
  cr->stopping = 1;
  wake_all(cr);
}

/* Writes the record of a popped item. A durable frontier hears first that
 * it is being recorded (a run resumed after a kill in between then looks
 * for the record rather than fetch the page again), and the record is
 * flushed before the frontier hears it is done. Returns 1 when the item
 * is finished (recorded, or another process has it), 0 when the output
 * failed. */
static int emit(crawl *cr, ws_item *it, const ws_record *r) {
  if (cr->recording) {
    int rc = cr->fr->ops->recording(cr->fr, it);
    if (rc == 0) {
      weft_log(WEFT_LOG_DEBUG, "page taken by another process meanwhile: not recorded",
               "url=%s", it->url);
      return 1;
    }
    if (rc < 0)
      weft_log(WEFT_LOG_ERROR, "the frontier could not note a record",
               "url=%s error=\"%s\"", it->url, weft_strerror(rc));
    else
      it->recorded = 1;
  }
  errno = 0;
  write_record(cr, r, (it->flags & WS_ITEM_SEED) != 0);
  if ((cr->durable && fflush(cr->in->out) != 0) || ferror(cr->in->out)) {
    output_failed(cr, errno != 0 ? errno : EIO);
    return 0;
  }
  return 1;
}

/* A record for a URL that was not fetched, saying why: emit()'s result. */
static int record_unfetched(crawl *cr, ws_item *it, const char *why) {
  ws_record r = {.url = it->url,
                 .depth = it->depth,
                 .referrer = it->referrer,
                 .fetched_at_ms = wall_ms(),
                 .error = why};
  return emit(cr, it, &r);
}

/* ---- Adding URLs -------------------------------------------------------- */

/* Queues url at depth (found on referrer) if it is new. Returns 1 when
 * queued, 0 when seen before, or an error. */
static int enqueue(crawl *cr, const char *url, int depth, const char *referrer,
                   unsigned flags) {
  /* Most links of a page were seen before: nothing more to do for them. */
  if (cr->fr->ops->contains != NULL && cr->fr->ops->contains(cr->fr, url) == 1)
    return 0;
  ws_url u;
  if (ws_url_parse(url, &u) != 0) return 0;
  host *h = host_of_parsed(cr, &u);
  int allowed = h == NULL || h->robots_state != ROBOTS_READY ||
                (flags & WS_ITEM_SEED) || robots_allow_parsed(h, &u);
  ws_url_free(&u);
  if (h == NULL) return UV_ENOMEM;
  /* With robots.txt known, a disallowed link is only marked seen. */
  if (!allowed) {
    int rc = cr->fr->ops->mark_seen(cr->fr, url);
    if (rc == 1) cr->t->disallowed++;
    return rc < 0 ? rc : 0;
  }
  ws_item it = {.url = (char *)url,
                .referrer = (char *)referrer,
                .depth = depth,
                .flags = flags};
  int rc = cr->fr->ops->add(cr->fr, h->key, &it);
  if (rc <= 0) return rc;
  h->queued++;
  rc = pending_add(cr, depth, 1);
  wake_all(cr);
  return rc == 0 ? 1 : rc;
}

/* ---- Requests ----------------------------------------------------------- */

/* Takes a slot of h and the pacing tokens (and, with a shared frontier,
 * one of the host's shared slots, into token); 0 or an error. */
static int take_turn(crawl *cr, host *h, char *token, size_t token_len) {
  int rc = weft_sem_acquire(h->slots);
  if (rc != 0) return rc;
  if (h->pace != NULL) rc = weft_limiter_acquire(h->pace, 1);
  if (rc == 0 && cr->rate != NULL) rc = weft_limiter_acquire(cr->rate, 1);
  while (rc == 0 && cr->shared) {
    /* A request lasts at most --timeout: a slot held longer than that
     * belongs to a process that died. */
    int64_t wait = cr->fr->ops->lease(cr->fr, h->key, cr->cfg->per_host,
                                      h->delay_ms, cr->cfg->timeout + 1000,
                                      token, token_len);
    if (wait == 0) break;
    if (wait < 0) {
      rc = (int)wait;
      break;
    }
    rc = weft_sleep(wait < 50 ? wait : 50);
  }
  if (rc != 0) weft_sem_release(h->slots);
  return rc;
}

static void give_turn(crawl *cr, host *h, const char *token) {
  if (cr->shared) cr->fr->ops->release(cr->fr, h->key, token);
  weft_sem_release(h->slots);
  wake_all(cr);
}

/* The back-off before retry number attempt (1, 2, ...), with jitter:
 * between half and all of base * 2^(attempt-1), at most BACKOFF_MAX_MS. */
static int64_t backoff_ms(worker *w, int attempt) {
  int64_t d = BACKOFF_BASE_MS;
  for (int i = 1; i < attempt && d < BACKOFF_MAX_MS; i++) d *= 2;
  if (d > BACKOFF_MAX_MS) d = BACKOFF_MAX_MS;
  w->rng ^= w->rng << 13;
  w->rng ^= w->rng >> 7;
  w->rng ^= w->rng << 17;
  return d / 2 + (int64_t)(w->rng % (uint64_t)(d / 2 + 1));
}

/* Makes one request to url on h with its retries. keep_any keeps any body
 * (robots.txt). Returns with *r filled in. */
static void request(worker *w, host *h, const char *url, int keep_any,
                    ws_response *r) {
  crawl *cr = w->cr;
  for (int attempt = 1;; attempt++) {
    char token[64];
    int rc = take_turn(cr, h, token, sizeof token);
    if (rc != 0) {
      memset(r, 0, sizeof *r);
      r->err = rc;
      snprintf(r->error, sizeof r->error, "cancelled");
      return;
    }
    cr->t->requests++;
    ws_fetch(&w->fetch, w->client, url, keep_any, r);
    give_turn(cr, h, token);
    if (attempt > cr->cfg->retries || !ws_retryable(r)) return;
    if (cr->stopping) { /* worth another attempt, but not now */
      r->deferred = 1;
      return;
    }
    int64_t delay = r->retry_after_ms;
    if (delay > RETRY_AFTER_MAX_MS) return;
    if (delay < 0) delay = backoff_ms(w, attempt);
    weft_log(WEFT_LOG_DEBUG, "retrying", "url=%s attempt=%d delay_ms=%" PRId64,
             url, attempt, delay);
    if (weft_sleep(delay) != 0) return;
    ws_response_free(r);
  }
}

/* ---- robots.txt --------------------------------------------------------- */

/* What reading a host's robots.txt came to, in a form that a shared
 * frontier passes to the other processes. */
typedef struct robots_result {
  char kind;        /* 'p': rules in body; 'a': allow all (4xx); 'd': disallow
                       all (unreachable, given up); 'w': unreachable for now,
                       fetched again after wait_ms */
  int failures;     /* fetches of it that failed so far */
  int64_t wait_ms;  /* 'w' */
  char error[320];  /* why it disallows, or "" */
  char *body;       /* 'p': robots.txt, malloc'ed */
  size_t len;
  int cancelled;    /* cut short: not to be shared */
} robots_result;

/* Fetches h's robots.txt (redirects followed) into *res. */
static void robots_fetch(worker *w, host *h, robots_result *res) {
  crawl *cr = w->cr;
  char url[512];
  snprintf(url, sizeof url, "%s/robots.txt", h->key);
  /* The key is scheme://host:port; the URL keeps the port as it is, which
   * libcurl accepts whether or not it is the default. */
  res->kind = 'a'; /* 4xx, a redirect loop, or cut short */
  char *target = strdup(url);
  for (int hop = 0; target != NULL && hop <= ROBOTS_REDIRECTS; hop++) {
    ws_response r;
    request(w, h, target, 1, &r);
    if (r.err == UV_ECANCELED) {
      res->cancelled = 1;
      ws_response_free(&r);
      break;
    }
    if (r.err != 0 || r.status >= 500 || r.status == 429) {
      /* Unreachable: disallow all (RFC 9309 2.3.1.4), for a while and
       * then fetch it again, the pages of the host waiting meanwhile. */
      snprintf(res->error, sizeof res->error,
               "robots.txt unreachable (%s): disallowed",
               r.err != 0 ? r.error : "server error");
      res->kind = 'd';
      if (cr->cfg->robots_retry > 0 && res->failures < ROBOTS_REFETCHES &&
          !cr->stopping) {
        int64_t wait = cr->cfg->robots_retry;
        for (int i = 0; i < res->failures && wait < ROBOTS_RETRY_MAX_MS; i++)
          wait *= 2;
        if (r.retry_after_ms > wait) wait = r.retry_after_ms;
        if (wait > ROBOTS_RETRY_MAX_MS) wait = ROBOTS_RETRY_MAX_MS;
        res->kind = 'w';
        res->wait_ms = wait;
      }
      res->failures++;
      weft_log(WEFT_LOG_WARN,
               res->kind == 'w' ? "robots.txt unreachable: host disallowed for a while"
                                : "robots.txt unreachable: host disallowed",
               "host=%s status=%ld error=\"%s\" retry_in_ms=%" PRId64, h->key,
               r.status, r.error, res->wait_ms);
      ws_response_free(&r);
      break;
    }
    if (r.status >= 300 && r.status < 400 && r.location != NULL) {
      free(target);
      target = strdup(r.location);
      ws_response_free(&r);
      continue;
    }
    if (r.status >= 200 && r.status < 300) {
      res->len = w->fetch.body.p ? w->fetch.body.len : 0;
      res->body = malloc(res->len + 1);
      if (res->body != NULL) {
        if (res->len) memcpy(res->body, w->fetch.body.p, res->len);
        res->body[res->len] = '\0';
        res->kind = 'p';
      }
    }
    ws_response_free(&r);
    break;
  }
  free(target);
}

/* Puts *res into h: the host is then ready, or waits to fetch robots.txt
 * again. Frees res->body. */
static void robots_apply(crawl *cr, host *h, robots_result *res) {
  snprintf(h->robots_error, sizeof h->robots_error, "%s", res->error);
  h->robots_failures = res->failures;
  if (res->kind == 'w') {
    h->robots_retry_at = weft_now() + res->wait_ms;
    h->robots_state = ROBOTS_UNAVAILABLE;
    wake_all(cr);
    return;
  }
  ws_robots *rb = res->kind == 'p'   ? ws_robots_parse(res->body, res->len,
                                                       cr->cfg->user_agent)
                  : res->kind == 'd' ? ws_robots_disallow_all()
                                     : ws_robots_allow_all();
  free(res->body);
  res->body = NULL;
  if (rb == NULL) rb = ws_robots_allow_all();
  h->robots = rb;
  char url[512];
  snprintf(url, sizeof url, "%s/robots.txt", h->key);
  for (size_t i = 0; cr->cfg->sitemap && i < ws_robots_sitemap_count(rb); i++) {
    char *sm = NULL;
    /* A sitemap is one link away from robots.txt, which is at the level
     * being served: each host's queue then stays in order of depth. */
    int depth = cr->level + 1;
    if (ws_url_resolve(url, ws_robots_sitemap(rb, i), &sm, NULL, 0) == 0 &&
        ws_scope_allows(cr->in->scope, sm) &&
        (cr->cfg->max_depth < 0 || depth <= cr->cfg->max_depth))
      enqueue(cr, sm, depth, url, WS_ITEM_SITEMAP);
    free(sm);
  }
  long cd = ws_robots_crawl_delay_ms(rb);
  if (cd > 0) host_set_delay(h, cd);
  h->robots_state = ROBOTS_READY;
  wake_all(cr);
}

/* A robots_result as the shared frontier keeps it: "KIND FAILURES\n"
 * then the error, a newline and the body. malloc'ed; NULL when out of
 * memory. */
static char *robots_encode(const robots_result *res, size_t *len) {
  char head[400];
  int n = snprintf(head, sizeof head, "%c %d\n%s\n", res->kind, res->failures,
                   res->error);
  size_t body = res->kind == 'p' ? res->len : 0;
  char *v = malloc((size_t)n + body + 1);
  if (v == NULL) return NULL;
  memcpy(v, head, (size_t)n);
  if (body) memcpy(v + n, res->body, body);
  v[(size_t)n + body] = '\0';
  *len = (size_t)n + body;
  return v;
}

/* The other way; ttl_ms is the time the frontier keeps it (the wait of a
 * 'w'). 0, or -1 when v is not one. */
static int robots_decode(const char *v, size_t len, int64_t ttl_ms,
                         robots_result *res) {
  const char *nl1 = memchr(v, '\n', len);
  const char *nl2 = nl1 ? memchr(nl1 + 1, '\n', len - (size_t)(nl1 + 1 - v)) : NULL;
  if (nl2 == NULL || len < 2 || strchr("padw", v[0]) == NULL || v[1] != ' ')
    return -1;
  res->kind = v[0];
  res->failures = (int)strtol(v + 2, NULL, 10);
  snprintf(res->error, sizeof res->error, "%.*s", (int)(nl2 - nl1 - 1), nl1 + 1);
  res->wait_ms = ttl_ms > 0 ? ttl_ms : 0;
  if (res->kind == 'p') {
    res->len = len - (size_t)(nl2 + 1 - v);
    res->body = malloc(res->len + 1);
    if (res->body == NULL) return -1;
    memcpy(res->body, nl2 + 1, res->len);
    res->body[res->len] = '\0';
  }
  return 0;
}

/* Fetches and reads h's robots.txt; the host is then ready (or waits to
 * fetch it again). With a shared frontier, one process fetches it for
 * all: the others read what it stored. */
static void fetch_robots(worker *w, host *h) {
  crawl *cr = w->cr;
  robots_result res;
  memset(&res, 0, sizeof res);
  res.failures = h->robots_failures;
  int share = 0;
  while (cr->shared) {
    char *v = NULL;
    size_t len = 0;
    int64_t ttl = 0;
    int rc = cr->fr->ops->get_robots(cr->fr, h->key, &v, &len, &ttl);
    if (rc == 0) {
      rc = robots_decode(v, len, ttl, &res);
      free(v);
      if (rc == 0) {
        weft_log(WEFT_LOG_DEBUG, "robots.txt read by another process", "host=%s kind=%c",
                 h->key, res.kind);
        robots_apply(cr, h, &res);
        return;
      }
      memset(&res, 0, sizeof res);
      res.failures = h->robots_failures;
    }
    if (rc == 2) { /* another process is fetching it */
      if (weft_sleep(ROBOTS_SHARED_POLL_MS) == 0) continue;
      res.cancelled = 1;
      break;
    }
    if (rc < 0)
      weft_log(WEFT_LOG_WARN, "cannot read robots.txt from the shared frontier: "
               "fetching it", "host=%s error=\"%s\"", h->key, weft_strerror(rc));
    share = 1;
    break;
  }
  if (!res.cancelled) robots_fetch(w, h, &res);
  if (share) {
    size_t len = 0;
    char *v = res.cancelled ? NULL : robots_encode(&res, &len);
    int rc = cr->fr->ops->put_robots(cr->fr, h->key, v, len,
                                     res.kind == 'w' ? res.wait_ms : ROBOTS_CACHE_MS);
    if (rc != 0 && rc != UV_ECANCELED)
      weft_log(WEFT_LOG_WARN, "cannot share robots.txt", "host=%s error=\"%s\"", h->key,
               weft_strerror(rc));
    free(v);
  }
  robots_apply(cr, h, &res);
}

/* Gives up waiting for h's robots.txt: the host is disallowed for the
 * rest of the crawl, and its pages are recorded as such. */
static void robots_give_up(crawl *cr, host *h) {
  h->robots = ws_robots_disallow_all();
  h->robots_state = ROBOTS_READY;
  weft_log(WEFT_LOG_WARN,
           "robots.txt still unreachable and nothing else to crawl: host "
           "disallowed",
           "host=%s queued=%" PRId64, h->key, h->queued);
  wake_all(cr);
}

/* Waits until h's robots.txt is known, fetching it when nobody is. */
static int wait_robots(worker *w, host *h) {
  crawl *cr = w->cr;
  while (h->robots_state != ROBOTS_READY) {
    if (h->robots_state == ROBOTS_PENDING) {
      h->robots_state = ROBOTS_FETCHING;
      fetch_robots(w, h);
      continue;
    }
    /* Unavailable for now: robots_allow() says no until it is fetched
     * again. */
    if (h->robots_state == ROBOTS_UNAVAILABLE) return 0;
    weft_event_reset(cr->wake);
    int rc = weft_event_wait(cr->wake);
    if (rc != 0) return rc;
  }
  return 0;
}

/* ---- One page ----------------------------------------------------------- */

/* What ws_extract() needs on the thread pool. */
typedef struct parse_job {
  const char *body;
  size_t len;
  const char *content_type, *url;
  const ws_field *fields;
  size_t n_fields;
  int want_links;
  ws_page page;
  int rc;
} parse_job;

static int parse_on_pool(void *arg) {
  parse_job *j = arg;
  j->rc = ws_extract(j->body, j->len, j->content_type, j->url, j->fields,
                     j->n_fields, j->want_links, &j->page);
  return 0;
}

/* What ws_sitemap_urls() needs on the thread pool. */
typedef struct sitemap_job {
  const char *body;
  size_t len;
  const char *url;
  char **urls;
  size_t n;
  int is_index;
  int rc;
} sitemap_job;

static int sitemap_on_pool(void *arg) {
  sitemap_job *j = arg;
  j->rc = ws_sitemap_urls(j->body, j->len, j->url, &j->urls, &j->n, &j->is_index);
  return 0;
}

/* The fields for url: --extract's, then its rule's. *follow says whether
 * its links are followed. The array is malloc'ed (shallow copies). */
static ws_field *fields_for(crawl *cr, const char *url, size_t *n,
                            int *follow) {
  const ws_rule *rule = ws_scope_rule(cr->in->scope, url);
  *follow = rule == NULL || rule->follow;
  size_t extra = rule ? rule->n_fields : 0;
  *n = cr->in->n_fields + extra;
  ws_field *f = malloc((*n ? *n : 1) * sizeof *f);
  if (f == NULL) {
    *n = 0;
    return NULL;
  }
  memcpy(f, cr->in->fields, cr->in->n_fields * sizeof *f);
  if (extra) memcpy(f + cr->in->n_fields, rule->fields, extra * sizeof *f);
  return f;
}

/* Fetches one item (following its redirects), parses it, queues its links
 * and writes its record. Returns 1 when the item is finished (recorded, or
 * dropped for good), 0 when it was cut short (or its record could not be
 * written) and must stay queued. */
static int do_page(worker *w, host *h, ws_item *it) {
  crawl *cr = w->cr;
  const ws_config *cfg = cr->cfg;
  int seed = (it->flags & WS_ITEM_SEED) != 0;
  if (h->given_up) {
    char why[160];
    snprintf(why, sizeof why, "host given up after %d failed pages in a row",
             h->failures);
    return record_unfetched(cr, it, why);
  }
  if (!robots_allow(h, it->url)) {
    cr->t->disallowed++;
    if (seed)
      return record_unfetched(cr, it,
                              h->robots_error[0] ? h->robots_error
                                                 : "disallowed by robots.txt");
    return 1;
  }
  uint64_t start = weft_now_ns();
  int64_t fetched_at = wall_ms();
  char *url = strdup(it->url);
  const char *error = NULL;
  char errbuf[300];
  ws_response r;
  memset(&r, 0, sizeof r);
  int sitemap = (it->flags & WS_ITEM_SITEMAP) != 0;
  for (int hops = 0; url != NULL; hops++) {
    request(w, h, url, sitemap, &r);
    if (r.err != 0) {
      snprintf(errbuf, sizeof errbuf, "%s", r.error);
      error = errbuf;
      break;
    }
    if (r.status < 300 || r.status >= 400 || r.location == NULL) break;
    /* A redirect: the target is a URL like any other. */
    if (hops >= cfg->max_redirects) {
      error = "too many redirects";
      break;
    }
    char *next = NULL;
    char why[128];
    if (ws_url_resolve(url, r.location, &next, why, sizeof why) != 0) {
      snprintf(errbuf, sizeof errbuf, "redirect to a bad URL: %s", why);
      error = errbuf;
      break;
    }
    if (!ws_scope_allows(cr->in->scope, next)) {
      snprintf(errbuf, sizeof errbuf, "redirect out of scope: %s", next);
      error = errbuf;
      free(next);
      break;
    }
    host *nh = host_of(cr, next);
    if (nh == NULL || wait_robots(w, nh) != 0) {
      free(next);
      error = "cancelled";
      break;
    }
    if (!robots_allow(nh, next)) {
      cr->t->disallowed++;
      snprintf(errbuf, sizeof errbuf,
               "redirect to a URL disallowed by robots.txt: %s", next);
      error = errbuf;
      free(next);
      break;
    }
    int fresh = cr->fr->ops->mark_seen(cr->fr, next);
    if (fresh <= 0) {
      snprintf(errbuf, sizeof errbuf, "redirect to a URL already seen: %s",
               next);
      error = errbuf;
      free(url);
      url = next;
      break;
    }
    free(url);
    url = next;
    h = nh;
    ws_response_free(&r);
  }
  if (url == NULL) error = "out of memory";
  if (r.err == UV_ECANCELED || (r.deferred && cr->durable)) {
    /* Stopped at once by a second signal, or a retry left for the
     * resumed crawl: no record; the item stays queued with --state. */
    ws_response_free(&r);
    free(url);
    return 0;
  }
  if (r.too_big && error == NULL) {
    snprintf(errbuf, sizeof errbuf, "body larger than --max-body (%" PRId64
             " bytes): cut there",
             cfg->max_body);
    error = errbuf;
  }
  if (error == NULL && r.status >= 400) {
    snprintf(errbuf, sizeof errbuf, "HTTP %ld", r.status);
    error = errbuf;
  }
  /* A host that keeps failing slows down, then is given up. */
  if (r.err != 0 || r.status >= 500 || r.status == 429) {
    h->failures++;
    int64_t pause = (int64_t)HOST_PAUSE_MS << (h->failures < 7 ? h->failures - 1 : 6);
    h->resume_at = weft_now() + (pause < HOST_PAUSE_MAX_MS ? pause : HOST_PAUSE_MAX_MS);
    if (cfg->give_up_after > 0 && h->failures >= cfg->give_up_after &&
        !h->given_up) {
      h->given_up = 1;
      weft_log(WEFT_LOG_WARN, "host given up", "host=%s failures=%d", h->key,
               h->failures);
    }
  } else if (r.status > 0) {
    h->failures = 0;
  }
  ws_page page;
  memset(&page, 0, sizeof page);
  size_t n_fields = 0;
  int follow = 1;
  ws_field *fields = NULL;
  int parsed = 0;
  size_t n_links = 0;
  if (sitemap && r.err == 0 && r.status >= 200 && r.status < 300 &&
      w->fetch.body.p != NULL) {
    sitemap_job job = {.body = w->fetch.body.p, .len = w->fetch.body.len,
                       .url = url};
    if (weft_blocking(sitemap_on_pool, &job) == 0 && job.rc == 0) {
      /* Links are queued even while stopping: the page is done, and a
       * resumed crawl must find them. */
      for (size_t i = 0; i < job.n; i++) {
        if (!ws_scope_allows(cr->in->scope, job.urls[i])) continue;
        if (cfg->max_depth >= 0 && it->depth >= cfg->max_depth) break;
        enqueue(cr, job.urls[i], it->depth + 1, url,
                job.is_index ? WS_ITEM_SITEMAP : 0);
      }
      n_links = job.n;
    } else if (error == NULL) {
      error = "not a sitemap";
    }
    ws_strings_free(job.urls, job.n);
  } else if (r.err == 0 && r.status >= 200 && r.status < 300 &&
             ws_is_html(r.content_type) && w->fetch.body.p != NULL) {
    fields = fields_for(cr, url, &n_fields, &follow);
    int want_links = follow && (cfg->max_depth < 0 || it->depth < cfg->max_depth);
    parse_job job = {.body = w->fetch.body.p,
                     .len = w->fetch.body.len,
                     .content_type = r.content_type,
                     .url = url,
                     .fields = fields,
                     .n_fields = n_fields,
                     .want_links = want_links};
    int brc = weft_blocking(parse_on_pool, &job);
    page = job.page;
    if (brc == 0 && job.rc == 0) {
      parsed = 1;
    } else if (brc == 0 && error == NULL) {
      error = "the page could not be parsed";
    }
    for (size_t i = 0; parsed && i < page.n_links; i++) {
      if (!ws_scope_allows(cr->in->scope, page.links[i])) continue;
      enqueue(cr, page.links[i], it->depth + 1, url, 0);
    }
  }
  ws_record rec = {.url = it->url,
                   .final_url = url,
                   .status = r.status,
                   .depth = it->depth,
                   .referrer = it->referrer,
                   .content_type = r.content_type,
                   .bytes = w->fetch.bytes,
                   .title = page.title,
                   .fields = fields,
                   .values = parsed ? page.values : NULL,
                   .n_fields = parsed ? n_fields : 0,
                   .links = sitemap ? n_links : page.n_links,
                   .fetched_at_ms = fetched_at,
                   .elapsed_ms = (int64_t)((weft_now_ns() - start) / 1000000),
                   .error = error};
  int finished = emit(cr, it, &rec);
  ws_page_free(&page);
  free(fields);
  ws_response_free(&r);
  free(url);
  return finished;
}

/* ---- Scheduling --------------------------------------------------------- */

/* With a shared frontier: lets the scheduler try again the hosts whose
 * head was deeper than the level served. */
static void ungate(crawl *cr) {
  for (size_t i = 0; i < cr->n_hosts; i++) cr->hosts[i]->gated = 0;
}

enum job_kind { JOB_NONE, JOB_ROBOTS, JOB_PAGE };

/* Finds the next job: a robots.txt to fetch or a page whose host is ready.
 * Waits while every host is busy; returns JOB_NONE when the crawl is over
 * or stopping. */
static int next_job(crawl *cr, host **hp, ws_item *it) {
  for (;;) {
    if (cr->stopping || cr->done) return JOB_NONE;
    if (cr->cfg->max_pages > 0 && cr->dispatched >= (uint64_t)cr->cfg->max_pages)
      return JOB_NONE;
    uint64_t gen = cr->wake_gen;
    if (!cr->shared) advance_level(cr);
    int64_t now = weft_now(), wait_ms = cr->shared ? SHARED_POLL_MS : -1;
    int queued_any = 0;
    /* Hosts waiting to fetch robots.txt again; hosts waiting for anything
     * else (a slot, a delay, a pause, robots.txt in flight). */
    int robots_wait = 0, other_wait = 0;
    for (size_t k = 0; k < cr->n_hosts; k++) {
      size_t idx = (cr->cursor + k) % cr->n_hosts;
      host *h = cr->hosts[idx];
      if (h->queued == 0) continue;
      if (h->gated) { /* until the shared level moves on */
        queued_any = other_wait = 1;
        continue;
      }
      queued_any = 1;
      if (h->robots_state == ROBOTS_FETCHING ||
          weft_sem_available(h->slots) <= 0) {
        other_wait = 1;
        continue;
      }
      if (h->robots_state == ROBOTS_UNAVAILABLE && h->robots_retry_at > now) {
        int64_t left = h->robots_retry_at - now;
        if (wait_ms < 0 || left < wait_ms) wait_ms = left;
        robots_wait = 1;
        continue;
      }
      if (h->robots_state == ROBOTS_PENDING ||
          h->robots_state == ROBOTS_UNAVAILABLE) {
        h->robots_state = ROBOTS_FETCHING;
        cr->cursor = idx + 1;
        *hp = h;
        return JOB_ROBOTS;
      }
      if (!cr->shared) {
        int d = cr->fr->ops->head_depth(cr->fr, h->key);
        if (d < 0 || d > cr->level) continue;
      }
      if (h->resume_at > now && !h->given_up) {
        int64_t left = h->resume_at - now;
        if (wait_ms < 0 || left < wait_ms) wait_ms = left;
        other_wait = 1;
        continue;
      }
      if (h->pace != NULL && weft_limiter_tokens(h->pace) < 1) {
        double need = 1 - weft_limiter_tokens(h->pace);
        int64_t left = (int64_t)(need * (double)h->delay_ms) + 1;
        if (wait_ms < 0 || left < wait_ms) wait_ms = left;
        other_wait = 1;
        continue;
      }
      /* The page is counted before pop(), which may suspend, so that
       * scans running meanwhile cannot take more than --max-pages. */
      if (cr->cfg->max_pages > 0 && cr->dispatched >= (uint64_t)cr->cfg->max_pages)
        return JOB_NONE;
      cr->dispatched++;
      int prc = cr->fr->ops->pop(cr->fr, h->key, it);
      if (prc != 0) {
        cr->dispatched--;
        if (prc == 1 && cr->shared) h->queued = 0; /* others took them */
        if (prc == 2) h->gated = 1;
        if (prc < 0)
          weft_log(WEFT_LOG_WARN, "cannot take from the frontier", "host=%s error=\"%s\"",
                   h->key, weft_strerror(prc));
        continue;
      }
      h->queued--;
      cr->cursor = idx + 1;
      *hp = h;
      return JOB_PAGE;
    }
    /* Only pages of hosts whose robots.txt failed are left: rather than
     * wait for it, those hosts are disallowed and their pages recorded. */
    if (robots_wait && !other_wait && cr->active == 0 && !cr->shared) {
      for (size_t k = 0; k < cr->n_hosts; k++)
        if (cr->hosts[k]->robots_state == ROBOTS_UNAVAILABLE)
          robots_give_up(cr, cr->hosts[k]);
      continue;
    }
    if (!queued_any && cr->active == 0 &&
        (!cr->shared || cr->fr->ops->finished(cr->fr) == 1)) {
      cr->done = 1;
      wake_all(cr);
      return JOB_NONE;
    }
    /* Something changed while the scan was suspended: scan again. */
    if (gen != cr->wake_gen || cr->done) continue;
    weft_event_reset(cr->wake);
    weft_scope s;
    weft_scope_enter(&s, wait_ms);
    int rc = weft_event_wait(cr->wake);
    weft_scope_leave(&s);
    if (rc == UV_ECANCELED) return JOB_NONE;
  }
}

/* The body of a worker task. */
static int worker_main(void *arg) {
  worker *w = arg;
  crawl *cr = w->cr;
  for (;;) {
    host *h = NULL;
    ws_item it;
    memset(&it, 0, sizeof it);
    int kind = next_job(cr, &h, &it);
    if (kind == JOB_NONE) break;
    cr->active++;
    if (kind == JOB_ROBOTS) {
      fetch_robots(w, h);
    } else {
      /* The record is out (see emit()) before the frontier hears the item
       * is done. */
      if (do_page(w, h, &it)) {
        int rc = cr->fr->ops->done(cr->fr, &it);
        if (rc != 0)
          weft_log(WEFT_LOG_ERROR, "the frontier could not record a page done",
                   "url=%s error=\"%s\"", it.url, weft_strerror(rc));
        if (cr->shared) ungate(cr); /* the shared level may have moved on */
      }
      pending_add(cr, it.depth, -1);
      ws_item_clear(&it);
    }
    cr->active--;
    wake_all(cr);
    if (weft_cancelled()) break;
  }
  wake_all(cr);
  return 0;
}

/* ---- Progress, signals -------------------------------------------------- */

static void draw_progress(crawl *cr, int final) {
  double secs = (double)(weft_now_ns() - cr->start_ns) / 1e9;
  fprintf(stderr,
          "\r\033[Kpages %" PRIu64 " (%.1f/s)  queued %" PRIu64
          "  in flight %" PRId64 "  errors %" PRIu64 "%s",
          cr->t->pages, secs > 0 ? (double)cr->t->pages / secs : 0.0,
          cr->fr->ops->queued_count(cr->fr), cr->active, cr->t->errors,
          final ? "\n" : "");
  cr->progress_shown = 1;
}

static int progress_task(void *arg) {
  crawl *cr = arg;
  weft_task_set_name("progress");
  while (weft_sleep(PROGRESS_MS) == 0) {
    if (cr->in->progress) draw_progress(cr, 0);
    fflush(cr->in->out);
  }
  return 0;
}

/* refresh()'s callback: host has n items queued by any process. */
static int shared_host(void *ctx, const char *key, int64_t n) {
  crawl *cr = ctx;
  host *h = host_of(cr, key);
  if (h == NULL) return UV_ENOMEM;
  h->queued = n;
  return 0;
}

/* With a shared frontier: finds the queues the other processes filled,
 * and queues again the claims of processes that died. */
static int refresh_task(void *arg) {
  crawl *cr = arg;
  weft_task_set_name("refresh");
  while (weft_sleep(SHARED_POLL_MS) == 0) {
    int level = -1;
    int rc = cr->fr->ops->refresh(cr->fr, shared_host, cr, &level);
    if (rc == 0 && level >= 0) cr->level = level;
    ungate(cr);
    if (rc == UV_ECANCELED) break;
    if (rc != 0)
      weft_log(WEFT_LOG_WARN, "cannot read the shared frontier", "error=\"%s\"",
               weft_strerror(rc));
    wake_all(cr);
  }
  return 0;
}

/* With a shared frontier: renews this process's lease several times per
 * --claim-timeout, so that its claims stay its own while it lives however
 * long its pages take, and go back to the others soon after it dies. */
static int lease_task(void *arg) {
  crawl *cr = arg;
  weft_task_set_name("lease");
  int64_t period = cr->cfg->claim_timeout / 5;
  if (period > 1000) period = 1000;
  if (period < 50) period = 50;
  while (weft_sleep(period) == 0) {
    int rc = cr->fr->ops->renew(cr->fr);
    if (rc == 1)
      weft_log(WEFT_LOG_WARN,
               "this process's lease had lapsed (it was stalled longer than "
               "--claim-timeout): the others may have taken its URLs",
               "claim_timeout_ms=%" PRId64, cr->cfg->claim_timeout);
    else if (rc < 0 && rc != UV_ECANCELED)
      weft_log(WEFT_LOG_WARN, "cannot renew the lease", "error=\"%s\"",
               weft_strerror(rc));
  }
  return 0;
}

static void on_stop(void *ctx, int signum) {
  crawl *cr = ctx;
  if (cr->t->interrupted == 0) cr->t->interrupted = signum;
  weft_log(WEFT_LOG_INFO, "stopping: finishing the requests in flight",
           "signal=%s in_flight=%" PRId64, app_signal_name(signum), cr->active);
  cr->stopping = 1;
  wake_all(cr);
}

static void on_force(void *ctx, int signum) {
  crawl *cr = ctx;
  weft_log(WEFT_LOG_WARN, "stopping now", "signal=%s in_flight=%" PRId64,
           signum ? app_signal_name(signum) : "grace period over", cr->active);
  if (cr->workers != NULL) weft_group_cancel(cr->workers);
}

/* ---- The crawl ---------------------------------------------------------- */

/* Writes records for the seeds never fetched (stopped early), so that
 * every seed has one. */
static void record_left_seeds(crawl *cr, const char *why) {
  for (size_t i = 0; i < cr->n_hosts; i++) {
    host *h = cr->hosts[i];
    ws_item it;
    while (h->queued > 0 && cr->fr->ops->pop(cr->fr, h->key, &it) == 0) {
      h->queued--;
      if (it.flags & WS_ITEM_SEED) record_unfetched(cr, &it, why);
      ws_item_clear(&it);
    }
  }
}

/* each_queued()'s callback: n items of depth are queued for host. */
static int resume_host(void *ctx, const char *key, int depth, int64_t n) {
  crawl *cr = ctx;
  host *h = host_of(cr, key);
  if (h == NULL) return UV_ENOMEM;
  h->queued += n;
  return pending_add(cr, depth, n);
}

int ws_crawl_run(const ws_crawl_input *in, ws_totals *t) {
  const ws_config *cfg = in->cfg;
  crawl cr;
  memset(&cr, 0, sizeof cr);
  memset(t, 0, sizeof *t);
  cr.in = in;
  cr.cfg = cfg;
  cr.t = t;
  cr.start_ns = weft_now_ns();
  int rc = 0;
  /* Where the records go, for a run resumed after a kill to find them. */
  ws_output_info oi = {0};
  char *out_path = NULL;
  if (cfg->redis != NULL || cfg->state != NULL) {
    out_path = ws_output_path(in->out, cfg->output);
    oi.size = out_path != NULL ? ws_output_repair(in->out, out_path) : -1;
    if (oi.size < 0) {
      if (out_path != NULL)
        weft_log(WEFT_LOG_WARN, "cannot read the output back: a run killed while "
                 "recording pages will fetch them again", "path=%s error=\"%s\"",
                 out_path, weft_strerror((int)oi.size));
      free(out_path);
      out_path = NULL;
    }
    oi.path = out_path;
    cr.recording = out_path != NULL;
  }
  if (cfg->redis != NULL) {
#ifdef WS_HAVE_REDIS
    app_addr addr;
    char why[128];
    if (app_addr_parse(cfg->redis, &addr, why, sizeof why) != 0) {
      free(out_path);
      return UV_EINVAL;
    }
    rc = ws_frontier_redis(addr.host, addr.port, cfg->job, cfg->node,
                           cfg->claim_timeout, &oi, &cr.fr);
    free(out_path);
    if (rc != 0) return rc;
    cr.durable = cr.shared = 1;
#else
    free(out_path);
    return UV_ENOTSUP;
#endif
  } else if (cfg->state != NULL) {
#ifdef WS_HAVE_SQLITE
    rc = ws_frontier_sqlite(cfg->state, &oi, &cr.fr);
    free(out_path);
    if (rc != 0) return rc;
    cr.durable = 1;
#else
    free(out_path);
    return UV_ENOTSUP;
#endif
  } else {
    cr.fr = ws_frontier_memory();
  }
  cr.wake = weft_event_new();
  if (cfg->rate > 0) cr.rate = weft_limiter_new(cfg->rate, 1);
  if (cr.fr == NULL || cr.wake == NULL || (cfg->rate > 0 && cr.rate == NULL)) {
    if (cr.fr != NULL) cr.fr->ops->close(cr.fr);
    if (cr.wake != NULL) weft_event_free(cr.wake);
    return UV_ENOMEM;
  }
  /* A resumed crawl: the hosts and depths of what is still queued. */
  rc = cr.fr->ops->each_queued(cr.fr, resume_host, &cr);
  if (rc != 0) goto out;
  if (cr.fr->ops->seen_count(cr.fr) > 0)
    weft_log(WEFT_LOG_INFO, "resuming", "seen=%" PRIu64 " queued=%" PRIu64,
             cr.fr->ops->seen_count(cr.fr), cr.fr->ops->queued_count(cr.fr));

  /* Seeds: a record now for those out of scope, the rest queued. */
  t->seeds = in->n_seeds;
  for (size_t i = 0; i < in->n_seeds; i++) {
    const char *s = in->seeds[i];
    if (!ws_scope_allows(in->scope, s)) {
      if (cr.fr->ops->mark_seen(cr.fr, s) == 1) {
        ws_record r = {.url = s,
                       .fetched_at_ms = wall_ms(),
                       .error = "out of scope (--allow-domain, --allow, --deny)"};
        write_record(&cr, &r, 1);
      }
      continue;
    }
    int e = enqueue(&cr, s, 0, NULL, WS_ITEM_SEED);
    if (e < 0) {
      rc = e;
      goto out;
    }
  }

  size_t n_workers = (size_t)cfg->concurrency;
  size_t n_clients = (n_workers + WORKERS_PER_CLIENT - 1) / WORKERS_PER_CLIENT;
  weft_curl **clients = calloc(n_clients, sizeof *clients);
  worker *workers = calloc(n_workers, sizeof *workers);
  if (clients == NULL || workers == NULL) {
    free(clients);
    free(workers);
    rc = UV_ENOMEM;
    goto out;
  }
  weft_curl_opts copts = {.max_connections = (long)n_workers * 4};
  for (size_t i = 0; i < n_clients && rc == 0; i++) {
    clients[i] = weft_curl_new(&copts);
    if (clients[i] == NULL) rc = UV_ENOMEM;
  }
  for (size_t i = 0; i < n_workers && rc == 0; i++) {
    workers[i].cr = &cr;
    workers[i].client = clients[i / WORKERS_PER_CLIENT];
    workers[i].rng = 0x9E3779B97F4A7C15ull ^ (i + 1) * 0x2545F4914F6CDD1Dull ^
                     (uint64_t)wall_ms();
    rc = ws_fetcher_init(&workers[i].fetch, cfg->user_agent, cfg->timeout,
                         (size_t)cfg->max_body);
  }
  if (rc == 0) {
    weft_group *aux = weft_group_open(WEFT_COLLECT);
    app_shutdown sd = {.begin = on_stop,
                       .force = on_force,
                       .ctx = &cr,
                       .grace_ms = cfg->grace};
    weft_spawn_named(aux, "signals", app_shutdown_task, &sd);
    weft_spawn(aux, progress_task, &cr);
    if (cr.shared) {
      weft_spawn(aux, refresh_task, &cr);
      weft_spawn(aux, lease_task, &cr);
    }
    weft_yield();
    cr.workers = weft_group_open(WEFT_COLLECT);
    for (size_t i = 0; i < n_workers; i++)
      weft_spawn_named(cr.workers, "worker", worker_main, &workers[i]);
    weft_group_join(cr.workers);
    cr.workers = NULL;
    weft_group_cancel(aux);
    weft_group_join(aux);
    if ((cr.stopping || cfg->max_pages > 0) && !cr.durable)
      record_left_seeds(&cr, cr.stopping ? "not fetched: the crawl was interrupted"
                                         : "not fetched: --max-pages reached");
    if (in->progress && cr.progress_shown) draw_progress(&cr, 1);
  }
  for (size_t i = 0; i < n_workers; i++) ws_fetcher_free(&workers[i].fetch);
  for (size_t i = 0; i < n_clients; i++) weft_curl_free(clients[i]);
  free(clients);
  free(workers);
out:
  fflush(in->out);
  t->seconds = (double)(weft_now_ns() - cr.start_ns) / 1e9;
  for (size_t i = 0; i < cr.n_hosts; i++) host_free(cr.hosts[i]);
  free(cr.hosts);
  ws_strmap_free(&cr.host_map);
  free(cr.pending);
  ws_buf_free(&cr.line);
  if (cr.rate) weft_limiter_free(cr.rate);
  weft_event_free(cr.wake);
  cr.fr->ops->close(cr.fr);
  return rc;
}
