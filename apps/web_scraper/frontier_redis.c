/* frontier_redis.c: a frontier shared by several processes through Redis.
 *
 * Keys, all under "ws:JOB:" (as scrapy-redis keeps them):
 *
 *   seen        SET of 8-byte URL fingerprints (XXH3)
 *   hosts       SET of the hosts that ever had a queue
 *   q:HOST      ZSET of queued items, scored by depth (lowest first)
 *   claims      ZSET of items taken by a process, scored by the time (ms,
 *               Redis's clock) after which anyone may queue them again
 *   lease:HOST  ZSET of the requests in flight to HOST, scored by expiry
 *   next:HOST   the time before which HOST takes no new request (--delay)
 *
 * An item is one string "HOST\nDEPTH\nFLAGS\nURL\nREFERRER", the same
 * whoever writes it, so that a process can name its claim to remove it.
 * Each step that must not be split (add: seen then queued; pop: unqueued
 * then claimed; reclaim; lease) is a Lua script, which Redis runs whole.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <weft.h>
#include <weft_redis.h>

#include "frontier.h"
#include "strmap.h"

static const char add_lua[] =
    "if redis.call('SADD', KEYS[1], ARGV[1]) == 0 then return 0 end "
    "redis.call('ZADD', KEYS[2], ARGV[3], ARGV[2]) "
    "redis.call('SADD', KEYS[3], ARGV[4]) "
    "return 1";

static const char pop_lua[] =
    "local r = redis.call('ZPOPMIN', KEYS[1]) "
    "if #r == 0 then return false end "
    "local t = redis.call('TIME') "
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) "
    "redis.call('ZADD', KEYS[2], now + tonumber(ARGV[1]), r[1]) "
    "return r[1]";

static const char reclaim_lua[] =
    "local t = redis.call('TIME') "
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) "
    "local items = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, 1000) "
    "for _, m in ipairs(items) do "
    "  local a = string.find(m, '\\n', 1, true) "
    "  local b = string.find(m, '\\n', a + 1, true) "
    "  local host = string.sub(m, 1, a - 1) "
    "  local depth = tonumber(string.sub(m, a + 1, b - 1)) "
    "  redis.call('ZADD', ARGV[1] .. host, depth, m) "
    "  redis.call('ZREM', KEYS[1], m) "
    "end "
    "return #items";

static const char remaining_lua[] =
    "local n = redis.call('ZCARD', KEYS[2]) "
    "for _, h in ipairs(redis.call('SMEMBERS', KEYS[1])) do "
    "  n = n + redis.call('ZCARD', ARGV[1] .. h) "
    "end "
    "return n";

/* Grants a slot of KEYS[1] (at most ARGV[1] unexpired) when KEYS[2]'s
 * time has come; returns 0, or the milliseconds to wait. */
static const char lease_lua[] =
    "local t = redis.call('TIME') "
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) "
    "redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now) "
    "if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then return 10 end "
    "local nxt = tonumber(redis.call('GET', KEYS[2]) or '0') "
    "if now < nxt then return nxt - now end "
    "redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[2]) "
    "local d = tonumber(ARGV[4]) "
    "if d > 0 then redis.call('SET', KEYS[2], now + d, 'PX', d + 1000) end "
    "return 0";

typedef struct redis_frontier {
  ws_frontier base;
  weft_redis *r;
  char *prefix; /* "ws:JOB:" */
  int64_t claim_ms;
  uint64_t seen, queued; /* what this process added */
  uint64_t tokens;       /* lease tokens made */
  int pid;
} redis_frontier;

/* prefix + suffix (+ host) into a new string. */
static char *key(const redis_frontier *f, const char *suffix, const char *host) {
  size_t n = strlen(f->prefix) + strlen(suffix) + (host ? strlen(host) : 0) + 1;
  char *k = malloc(n);
  if (k != NULL) snprintf(k, n, "%s%s%s", f->prefix, suffix, host ? host : "");
  return k;
}

/* The item's string (see above); malloc'ed. */
static char *item_text(const char *host, const ws_item *it) {
  const char *ref = it->referrer ? it->referrer : "";
  size_t n = strlen(host) + strlen(it->url) + strlen(ref) + 40;
  char *s = malloc(n);
  if (s != NULL)
    snprintf(s, n, "%s\n%d\n%u\n%s\n%s", host, it->depth, it->flags, it->url, ref);
  return s;
}

/* Parses an item's string into *it. Returns 0 or -1. */
static int item_parse(const char *s, size_t len, ws_item *it) {
  memset(it, 0, sizeof *it);
  char *copy = strndup(s, len);
  if (copy == NULL) return -1;
  char *parts[5];
  char *p = copy;
  for (int i = 0; i < 5; i++) {
    parts[i] = p;
    char *nl = i < 4 ? strchr(p, '\n') : NULL;
    if (i < 4 && nl == NULL) {
      free(copy);
      return -1;
    }
    if (nl) {
      *nl = '\0';
      p = nl + 1;
    }
  }
  it->depth = (int)strtol(parts[1], NULL, 10);
  it->flags = (unsigned)strtoul(parts[2], NULL, 10);
  it->url = strdup(parts[3]);
  it->referrer = parts[4][0] ? strdup(parts[4]) : NULL;
  free(copy);
  return it->url != NULL ? 0 : -1;
}

/* Runs a script with nkeys keys then args (C strings). */
static int eval(redis_frontier *f, redisReply **reply, const char *script,
                int nkeys, const char **keys, int nargs, const char **args,
                const size_t *arglens) {
  const char *argv[16];
  size_t lens[16];
  char nk[16];
  snprintf(nk, sizeof nk, "%d", nkeys);
  int argc = 0;
  argv[argc] = "EVAL", lens[argc++] = 4;
  argv[argc] = script, lens[argc++] = strlen(script);
  argv[argc] = nk, lens[argc++] = strlen(nk);
  for (int i = 0; i < nkeys; i++) argv[argc] = keys[i], lens[argc++] = strlen(keys[i]);
  for (int i = 0; i < nargs; i++) {
    argv[argc] = args[i];
    lens[argc++] = arglens != NULL && arglens[i] ? arglens[i] : strlen(args[i]);
  }
  int rc = weft_redis_commandv(f->r, reply, argc, argv, lens);
  if (rc == 0 && (*reply)->type == REDIS_REPLY_ERROR) {
    weft_log(WEFT_LOG_ERROR, "redis script failed", "error=\"%s\"", (*reply)->str);
    freeReplyObject(*reply);
    *reply = NULL;
    return UV_EPROTO;
  }
  return rc;
}

static int rd_mark_seen(ws_frontier *fr, const char *url) {
  redis_frontier *f = (redis_frontier *)fr;
  uint64_t fp = ws_hash64(url, strlen(url));
  redisReply *r;
  int rc = weft_redis_command(f->r, &r, "SADD %sseen %b", f->prefix, &fp, sizeof fp);
  if (rc != 0) return rc;
  int added = r->type == REDIS_REPLY_INTEGER && r->integer == 1;
  freeReplyObject(r);
  if (added) f->seen++;
  return added;
}

static int rd_add(ws_frontier *fr, const char *host, const ws_item *it) {
  redis_frontier *f = (redis_frontier *)fr;
  uint64_t fp = ws_hash64(it->url, strlen(it->url));
  char *text = item_text(host, it);
  char *kseen = key(f, "seen", NULL), *kq = key(f, "q:", host),
       *khosts = key(f, "hosts", NULL);
  int rc = UV_ENOMEM;
  if (text && kseen && kq && khosts) {
    char depth[16];
    snprintf(depth, sizeof depth, "%d", it->depth);
    const char *keys[] = {kseen, kq, khosts};
    const char *args[] = {(const char *)&fp, text, depth, host};
    size_t lens[] = {sizeof fp, 0, 0, 0};
    redisReply *r;
    rc = eval(f, &r, add_lua, 3, keys, 4, args, lens);
    if (rc == 0) {
      rc = r->type == REDIS_REPLY_INTEGER && r->integer == 1;
      freeReplyObject(r);
      if (rc == 1) {
        f->seen++;
        f->queued++;
      }
    }
  }
  free(text);
  free(kseen);
  free(kq);
  free(khosts);
  return rc;
}

static int rd_head_depth(ws_frontier *fr, const char *host) {
  (void)fr;
  (void)host;
  return 0; /* shared queues are not served by level */
}

static int rd_pop(ws_frontier *fr, const char *host, ws_item *out) {
  redis_frontier *f = (redis_frontier *)fr;
  memset(out, 0, sizeof *out);
  char *kq = key(f, "q:", host), *kc = key(f, "claims", NULL);
  int rc = UV_ENOMEM;
  if (kq && kc) {
    char ms[32];
    snprintf(ms, sizeof ms, "%" PRId64, f->claim_ms);
    const char *keys[] = {kq, kc};
    const char *args[] = {ms};
    redisReply *r;
    rc = eval(f, &r, pop_lua, 2, keys, 1, args, NULL);
    if (rc == 0) {
      if (r->type == REDIS_REPLY_STRING)
        rc = item_parse(r->str, r->len, out) == 0 ? 0 : UV_EPROTO;
      else
        rc = 1; /* empty */
      freeReplyObject(r);
    }
  }
  free(kq);
  free(kc);
  return rc;
}

/* The host of an item: the URL's scheme://host:port. */
static char *host_of_url(const char *url) {
  const char *p = strstr(url, "://");
  if (p == NULL) return NULL;
  const char *end = strchr(p + 3, '/');
  size_t n = end ? (size_t)(end - url) : strlen(url);
  char *h = malloc(n + 8);
  if (h == NULL) return NULL;
  memcpy(h, url, n);
  h[n] = '\0';
  /* Keys carry the port even when it is the default. */
  if (strchr(h + (size_t)(p - url) + 3, ':') == NULL ||
      h[n - 1] == ']') {
    snprintf(h + n, 8, ":%d", strncmp(url, "https", 5) == 0 ? 443 : 80);
  }
  return h;
}

static int rd_done(ws_frontier *fr, const ws_item *it) {
  redis_frontier *f = (redis_frontier *)fr;
  char *host = host_of_url(it->url);
  char *text = host ? item_text(host, it) : NULL;
  int rc = UV_ENOMEM;
  if (text != NULL) {
    redisReply *r;
    rc = weft_redis_command(f->r, &r, "ZREM %sclaims %s", f->prefix, text);
    if (rc == 0) freeReplyObject(r);
  }
  free(host);
  free(text);
  return rc;
}

static int rd_each_queued(ws_frontier *fr,
                          int (*fn)(void *, const char *, int, int64_t),
                          void *ctx) {
  (void)fr;
  (void)fn;
  (void)ctx;
  return 0; /* the refresh task finds the shared queues */
}

static int rd_refresh(ws_frontier *fr,
                      int (*fn)(void *ctx, const char *host, int64_t n),
                      void *ctx) {
  redis_frontier *f = (redis_frontier *)fr;
  char *kc = key(f, "claims", NULL), *kqp = key(f, "q:", NULL);
  redisReply *r = NULL;
  int rc = UV_ENOMEM;
  if (kc && kqp) {
    const char *keys[] = {kc};
    const char *args[] = {kqp};
    rc = eval(f, &r, reclaim_lua, 1, keys, 1, args, NULL);
    if (rc == 0) {
      if (r->type == REDIS_REPLY_INTEGER && r->integer > 0)
        weft_log(WEFT_LOG_INFO, "queued again the claims of a stopped process",
                 "items=%lld", r->integer);
      freeReplyObject(r);
    }
  }
  if (rc == 0) rc = weft_redis_command(f->r, &r, "SMEMBERS %shosts", f->prefix);
  if (rc == 0) {
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements && rc == 0; i++) {
      redisReply *z;
      const char *h = r->element[i]->str;
      rc = weft_redis_command(f->r, &z, "ZCARD %sq:%s", f->prefix, h);
      if (rc != 0) break;
      rc = fn(ctx, h, z->integer);
      freeReplyObject(z);
    }
    freeReplyObject(r);
  }
  free(kc);
  free(kqp);
  return rc;
}

static int rd_finished(ws_frontier *fr) {
  redis_frontier *f = (redis_frontier *)fr;
  char *kh = key(f, "hosts", NULL), *kc = key(f, "claims", NULL),
       *kqp = key(f, "q:", NULL);
  int rc = UV_ENOMEM;
  if (kh && kc && kqp) {
    const char *keys[] = {kh, kc};
    const char *args[] = {kqp};
    redisReply *r;
    rc = eval(f, &r, remaining_lua, 2, keys, 1, args, NULL);
    if (rc == 0) {
      rc = r->type == REDIS_REPLY_INTEGER && r->integer == 0;
      freeReplyObject(r);
    }
  }
  free(kh);
  free(kc);
  free(kqp);
  return rc;
}

static int64_t rd_lease(ws_frontier *fr, const char *host, int64_t limit,
                        int64_t delay_ms, int64_t ttl_ms, char *token,
                        size_t token_len) {
  redis_frontier *f = (redis_frontier *)fr;
  snprintf(token, token_len, "%d:%" PRIu64, f->pid, ++f->tokens);
  char *kl = key(f, "lease:", host), *kn = key(f, "next:", host);
  int64_t rc = UV_ENOMEM;
  if (kl && kn) {
    char lim[24], ttl[24], delay[24];
    snprintf(lim, sizeof lim, "%" PRId64, limit);
    snprintf(ttl, sizeof ttl, "%" PRId64, ttl_ms);
    snprintf(delay, sizeof delay, "%" PRId64, delay_ms);
    const char *keys[] = {kl, kn};
    const char *args[] = {lim, token, ttl, delay};
    redisReply *r;
    int e = eval(f, &r, lease_lua, 2, keys, 4, args, NULL);
    if (e != 0) {
      rc = e;
    } else {
      rc = r->type == REDIS_REPLY_INTEGER ? r->integer : UV_EPROTO;
      freeReplyObject(r);
    }
  }
  free(kl);
  free(kn);
  return rc;
}

static void rd_release(ws_frontier *fr, const char *host, const char *token) {
  redis_frontier *f = (redis_frontier *)fr;
  redisReply *r;
  if (weft_redis_command(f->r, &r, "ZREM %slease:%s %s", f->prefix, host, token) == 0)
    freeReplyObject(r);
}

static uint64_t rd_seen_count(ws_frontier *fr) {
  return ((redis_frontier *)fr)->seen;
}

static uint64_t rd_queued_count(ws_frontier *fr) {
  return ((redis_frontier *)fr)->queued;
}

static void rd_close(ws_frontier *fr) {
  redis_frontier *f = (redis_frontier *)fr;
  weft_redis_close(f->r);
  free(f->prefix);
  free(f);
}

static const ws_frontier_ops redis_ops = {
    .mark_seen = rd_mark_seen,
    .add = rd_add,
    .head_depth = rd_head_depth,
    .pop = rd_pop,
    .done = rd_done,
    .each_queued = rd_each_queued,
    .refresh = rd_refresh,
    .finished = rd_finished,
    .lease = rd_lease,
    .release = rd_release,
    .seen_count = rd_seen_count,
    .queued_count = rd_queued_count,
    .close = rd_close,
};

int ws_frontier_redis(const char *host, int port, const char *job,
                      int64_t claim_ms, ws_frontier **out) {
  *out = NULL;
  redis_frontier *f = calloc(1, sizeof *f);
  if (f == NULL) return UV_ENOMEM;
  f->base.ops = &redis_ops;
  f->claim_ms = claim_ms;
  f->pid = (int)getpid();
  size_t n = strlen(job) + 8;
  f->prefix = malloc(n);
  if (f->prefix == NULL) {
    free(f);
    return UV_ENOMEM;
  }
  snprintf(f->prefix, n, "ws:%s:", job);
  int rc = weft_redis_connect(host, port, NULL, &f->r);
  if (rc != 0) {
    weft_log(WEFT_LOG_ERROR, "cannot connect to redis", "host=%s port=%d error=\"%s\"",
             host, port, weft_strerror(rc));
    free(f->prefix);
    free(f);
    return rc;
  }
  *out = &f->base;
  return 0;
}
