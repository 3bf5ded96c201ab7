/* frontier_redis.c: a frontier shared by several processes through Redis.
 *
 * Keys, all under "ws:JOB:" (as scrapy-redis keeps them):
 *
 *   seen        SET of 8-byte URL fingerprints (XXH3)
 *   hosts       SET of the hosts that ever had a queue
 *   q:HOST      ZSET of queued items, scored by depth (lowest first)
 *   pending     HASH depth -> items of that depth queued or claimed: the
 *               level served is the lowest depth with any, so that all
 *               the processes serve the frontier breadth first and every
 *               page's depth is its shortest distance from a seed
 *   claims      ZSET of "OWNER\tITEM" taken by a process, scored by the
 *               time (ms, Redis's clock) after which anyone may queue
 *               them again
 *   writing     ZSET of "OWNER\tITEM" whose record is being written
 *   outstart    HASH OWNER -> the size of its output when it started
 *   lease:HOST  ZSET of the requests in flight to HOST, scored by expiry
 *   next:HOST   the time before which HOST takes no new request (--delay)
 *
 * An item is one string "HOST\nDEPTH\nFLAGS\nURL\nREFERRER", the same
 * whoever writes it, so that a process can name its claim to remove it.
 * Each step that must not be split (add: seen then queued; pop: unqueued
 * then claimed; reclaim; lease) is a Lua script, which Redis runs whole.
 *
 * OWNER names a process's output, "HOSTNAME:PATH" (or "HOSTNAME:pid=N"
 * when it is not a file). Before a record is written its item moves from
 * claims to writing; after, it leaves writing. A process killed in between
 * leaves items that a claim timeout must not queue again (their record may
 * be written): the same command run again settles its own at start by
 * looking for their records in its output, and any process on the same
 * machine settles those of a dead owner after the claim timeout the same
 * way. So no page is fetched or recorded twice.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <weft.h>
#include <weft_redis.h>

#include "frontier.h"
#include "output.h"
#include "strmap.h"

/* A Lua function, put before the scripts that need it: the level being
 * served, the lowest depth with items pending (queued, claimed, or being
 * fetched), or nil when nothing is pending. */
#define LEVEL_FN                                                            \
  "local function level(k) local lv = nil "                                 \
  "local p = redis.call('HGETALL', k) "                                     \
  "for i = 1, #p, 2 do if tonumber(p[i + 1]) > 0 then "                     \
  "local d = tonumber(p[i]) if lv == nil or d < lv then lv = d end end end " \
  "return lv end "
/* Takes one from the pending count of a depth. */
#define DEC_FN                                                              \
  "local function dec(k, d) "                                               \
  "if redis.call('HINCRBY', k, d, -1) <= 0 then redis.call('HDEL', k, d) end end "
#define NOW_MS                                                              \
  "local t = redis.call('TIME') "                                           \
  "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) "
/* Host and depth of an item's string. */
#define PARSE_FN                                                            \
  "local function parse(m) local a = string.find(m, '\\n', 1, true) "       \
  "local b = string.find(m, '\\n', a + 1, true) "                           \
  "return string.sub(m, 1, a - 1), tonumber(string.sub(m, a + 1, b - 1)) end "

static const char add_lua[] =
    "if redis.call('SADD', KEYS[1], ARGV[1]) == 0 then return 0 end "
    "redis.call('ZADD', KEYS[2], ARGV[3], ARGV[2]) "
    "redis.call('SADD', KEYS[3], ARGV[4]) "
    "redis.call('HINCRBY', KEYS[4], ARGV[3], 1) "
    "return 1";

/* KEYS: q:HOST, claims, pending; ARGV: claim ms, owner. The head of the
 * queue, claimed; nil when empty; 2 when it is deeper than the level. */
static const char pop_lua[] =
    LEVEL_FN NOW_MS
    "local h = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES') "
    "if #h == 0 then return false end "
    "local lv = level(KEYS[3]) "
    "if lv ~= nil and tonumber(h[2]) > lv then return 2 end "
    "redis.call('ZREM', KEYS[1], h[1]) "
    "redis.call('ZADD', KEYS[2], now + tonumber(ARGV[1]), ARGV[2] .. '\\t' .. h[1]) "
    "return h[1]";

/* KEYS: claims, q:HOST, writing, pending; ARGV: owner, item, claim ms,
 * depth. 1 when the item is still this process's (its claim, or queued
 * again after the claim expired and not taken by anyone): it is then
 * being recorded; 0 when another process has it. */
static const char recording_lua[] =
    DEC_FN NOW_MS
    "local ok = redis.call('ZREM', KEYS[1], ARGV[1] .. '\\t' .. ARGV[2]) "
    "if ok == 0 then ok = redis.call('ZREM', KEYS[2], ARGV[2]) end "
    "if ok == 0 then return 0 end "
    "redis.call('ZADD', KEYS[3], now + tonumber(ARGV[3]), ARGV[1] .. '\\t' .. ARGV[2]) "
    "dec(KEYS[4], ARGV[4]) "
    "return 1";

/* KEYS: claims, pending; ARGV: owner, item, depth. An item finished
 * without a record. */
static const char done_lua[] =
    DEC_FN
    "if redis.call('ZREM', KEYS[1], ARGV[1] .. '\\t' .. ARGV[2]) == 1 then "
    "  dec(KEYS[2], ARGV[3]) end "
    "return 0";

/* KEYS: writing, pending, hosts; ARGV: member, found (1/0), queue prefix.
 * Settles an item being recorded when its process was killed. */
static const char settle_lua[] =
    PARSE_FN
    "if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then return 0 end "
    "if ARGV[2] == '0' then "
    "  local m = string.match(ARGV[1], '\\t([^\\t]*)$') "
    "  local host, depth = parse(m) "
    "  redis.call('ZADD', ARGV[3] .. host, depth, m) "
    "  redis.call('SADD', KEYS[3], host) "
    "  redis.call('HINCRBY', KEYS[2], depth, 1) "
    "end "
    "return 1";

/* KEYS: claims, writing, pending; ARGV: queue prefix. Queues again the
 * expired claims; returns {their number, the level (-1: none), the
 * expired members of writing...}. */
static const char reclaim_lua[] =
    LEVEL_FN PARSE_FN NOW_MS
    "local items = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, 1000) "
    "for _, c in ipairs(items) do "
    "  local m = string.match(c, '\\t([^\\t]*)$') "
    "  local host, depth = parse(m) "
    "  redis.call('ZADD', ARGV[1] .. host, depth, m) "
    "  redis.call('ZREM', KEYS[1], c) "
    "end "
    "local r = {#items, level(KEYS[3]) or -1} "
    "for _, w in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, 100)) do "
    "  r[#r + 1] = w end "
    "return r";

/* KEYS: claims; ARGV: queue prefix, owner. Queues again at once the
 * claims of this owner (its earlier run, killed). */
static const char reclaim_own_lua[] =
    PARSE_FN
    "local p = ARGV[2] .. '\t' "
    "local n = 0 "
    "for _, c in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do "
    "  if string.sub(c, 1, #p) == p then "
    "    local m = string.sub(c, #p + 1) "
    "    local host, depth = parse(m) "
    "    redis.call('ZADD', ARGV[1] .. host, depth, m) "
    "    redis.call('ZREM', KEYS[1], c) "
    "    n = n + 1 "
    "  end "
    "end "
    "return n";

/* KEYS: hosts; ARGV: lease prefix, token prefix. Frees the per-host slots
 * this owner's last run held when it was killed. */
static const char release_own_lua[] =
    "local n = 0 "
    "for _, h in ipairs(redis.call('SMEMBERS', KEYS[1])) do "
    "  for _, m in ipairs(redis.call('ZRANGE', ARGV[1] .. h, 0, -1)) do "
    "    if string.sub(m, 1, #ARGV[2]) == ARGV[2] then "
    "      redis.call('ZREM', ARGV[1] .. h, m) n = n + 1 end "
    "  end "
    "end "
    "return n";

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
  char *owner;           /* see above */
  char tag[24];          /* "HASH:" of the owner: the prefix of its lease tokens */
  char hostname[256];
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
       *khosts = key(f, "hosts", NULL), *kp = key(f, "pending", NULL);
  int rc = UV_ENOMEM;
  if (text && kseen && kq && khosts && kp) {
    char depth[16];
    snprintf(depth, sizeof depth, "%d", it->depth);
    const char *keys[] = {kseen, kq, khosts, kp};
    const char *args[] = {(const char *)&fp, text, depth, host};
    size_t lens[] = {sizeof fp, 0, 0, 0};
    redisReply *r;
    rc = eval(f, &r, add_lua, 4, keys, 4, args, lens);
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
  free(kp);
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
  char *kq = key(f, "q:", host), *kc = key(f, "claims", NULL),
       *kp = key(f, "pending", NULL);
  int rc = UV_ENOMEM;
  if (kq && kc && kp) {
    char ms[32];
    snprintf(ms, sizeof ms, "%" PRId64, f->claim_ms);
    const char *keys[] = {kq, kc, kp};
    const char *args[] = {ms, f->owner};
    redisReply *r;
    rc = eval(f, &r, pop_lua, 3, keys, 2, args, NULL);
    if (rc == 0) {
      if (r->type == REDIS_REPLY_STRING)
        rc = item_parse(r->str, r->len, out) == 0 ? 0 : UV_EPROTO;
      else if (r->type == REDIS_REPLY_INTEGER)
        rc = 2; /* deeper than the level served */
      else
        rc = 1; /* empty */
      freeReplyObject(r);
    }
  }
  free(kq);
  free(kc);
  free(kp);
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

/* Runs script on it with keys named by suffix (a "q:" key gets the
 * item's host) and args: the owner, the item's string, then extra. */
static int item_script(redis_frontier *f, const ws_item *it, const char *script,
                       const char *const *suffixes, int nkeys, const char *extra1,
                       const char *extra2, redisReply **reply) {
  char *host = host_of_url(it->url);
  char *text = host ? item_text(host, it) : NULL;
  char *keys[4] = {NULL};
  int rc = text != NULL ? 0 : UV_ENOMEM;
  for (int i = 0; i < nkeys && rc == 0; i++) {
    int q = strcmp(suffixes[i], "q:") == 0;
    keys[i] = key(f, suffixes[i], q ? host : NULL);
    if (keys[i] == NULL) rc = UV_ENOMEM;
  }
  if (rc == 0) {
    const char *args[] = {f->owner, text, extra1, extra2};
    int nargs = extra2 ? 4 : extra1 ? 3 : 2;
    rc = eval(f, reply, script, nkeys, (const char **)keys, nargs, args, NULL);
  }
  for (int i = 0; i < nkeys; i++) free(keys[i]);
  free(host);
  free(text);
  return rc;
}

static int rd_recording(ws_frontier *fr, ws_item *it) {
  redis_frontier *f = (redis_frontier *)fr;
  static const char *const suffixes[] = {"claims", "q:", "writing", "pending"};
  char ms[32], depth[16];
  snprintf(ms, sizeof ms, "%" PRId64, f->claim_ms);
  snprintf(depth, sizeof depth, "%d", it->depth);
  redisReply *r;
  int rc = item_script(f, it, recording_lua, suffixes, 4, ms, depth, &r);
  if (rc != 0) return rc;
  rc = r->type == REDIS_REPLY_INTEGER && r->integer == 1;
  freeReplyObject(r);
  return rc;
}

static int rd_done(ws_frontier *fr, const ws_item *it) {
  redis_frontier *f = (redis_frontier *)fr;
  redisReply *r;
  int rc;
  if (it->recorded) {
    char *host = host_of_url(it->url);
    char *text = host ? item_text(host, it) : NULL;
    rc = UV_ENOMEM;
    if (text != NULL) {
      rc = weft_redis_command(f->r, &r, "ZREM %swriting %s\t%s", f->prefix, f->owner,
                              text);
      if (rc == 0) freeReplyObject(r);
    }
    free(host);
    free(text);
    return rc;
  }
  static const char *const suffixes[] = {"claims", "pending"};
  char depth[16];
  snprintf(depth, sizeof depth, "%d", it->depth);
  rc = item_script(f, it, done_lua, suffixes, 2, depth, NULL, &r);
  if (rc == 0) freeReplyObject(r);
  return rc;
}

/* Settles the members of writing (all of one owner, listed in m[0..n)):
 * done when the owner's output holds their record, else queued again. */
static void settle(redis_frontier *f, const char *owner, char **m, size_t n) {
  const char *colon = strchr(owner, ':');
  const char *path = colon ? colon + 1 : "";
  int here = colon != NULL && (size_t)(colon - owner) == strlen(f->hostname) &&
             strncmp(owner, f->hostname, (size_t)(colon - owner)) == 0 &&
             path[0] == '/';
  int *found = calloc(n, sizeof *found);
  char **urls = calloc(n, sizeof *urls);
  int rc = found && urls ? 0 : UV_ENOMEM;
  for (size_t i = 0; i < n && rc == 0; i++) {
    ws_item it;
    const char *tab = strrchr(m[i], '\t');
    if (tab == NULL || item_parse(tab + 1, strlen(tab + 1), &it) != 0) {
      rc = UV_EPROTO;
      break;
    }
    urls[i] = it.url;
    free(it.referrer);
  }
  redisReply *r;
  if (rc == 0 && here) {
    int64_t start = 0;
    if (weft_redis_command(f->r, &r, "HGET %soutstart %s", f->prefix, owner) == 0) {
      if (r->type == REDIS_REPLY_STRING) start = strtoll(r->str, NULL, 10);
      freeReplyObject(r);
    }
    rc = ws_output_find(path, start, urls, n, found);
  }
  if (rc != 0 || !here) {
    /* Nothing to look in: left as they are (recorded, most likely), and
     * out of the way of the next refresh. */
    if (rc != 0)
      weft_log(WEFT_LOG_WARN, "cannot look for the records of a stopped process",
               "owner=\"%s\" error=\"%s\"", owner, weft_strerror(rc));
    for (size_t i = 0; i < n; i++)
      if (weft_redis_command(f->r, &r, "ZADD %swriting XX +inf %s", f->prefix, m[i]) == 0)
        freeReplyObject(r);
  } else {
    char *kw = key(f, "writing", NULL), *kp = key(f, "pending", NULL),
         *kh = key(f, "hosts", NULL), *kqp = key(f, "q:", NULL);
    size_t again = 0;
    for (size_t i = 0; kw && kp && kh && kqp && i < n; i++) {
      const char *keys[] = {kw, kp, kh};
      const char *args[] = {m[i], found[i] ? "1" : "0", kqp};
      if (eval(f, &r, settle_lua, 3, keys, 3, args, NULL) == 0) {
        if (r->type == REDIS_REPLY_INTEGER && r->integer == 1 && !found[i]) again++;
        freeReplyObject(r);
      }
    }
    weft_log(WEFT_LOG_INFO, "settled the pages a stopped process was recording",
             "owner=\"%s\" pages=%zu recorded=%zu queued_again=%zu", owner, n,
             n - again, again);
    free(kw);
    free(kp);
    free(kh);
    free(kqp);
  }
  for (size_t i = 0; urls != NULL && i < n; i++) free(urls[i]);
  free(urls);
  free(found);
}

/* Settles the members of writing in the reply elements [from, to), owner
 * by owner; only those of owner when it is not NULL. */
static void settle_members(redis_frontier *f, redisReply *r, size_t from,
                           const char *only) {
  size_t n = r->elements > from ? r->elements - from : 0;
  char **m = calloc(n ? n : 1, sizeof *m);
  int *taken = calloc(n ? n : 1, sizeof *taken);
  if (m == NULL || taken == NULL) goto out;
  for (size_t i = 0; i < n; i++) {
    if (taken[i] || r->element[from + i]->type != REDIS_REPLY_STRING) continue;
    const char *s = r->element[from + i]->str;
    const char *tab = strrchr(s, '\t');
    if (tab == NULL) continue;
    size_t ol = (size_t)(tab - s);
    if (only != NULL && (strlen(only) != ol || strncmp(s, only, ol) != 0)) continue;
    char *owner = strndup(s, ol);
    size_t k = 0;
    for (size_t j = i; j < n; j++) {
      const char *t = r->element[from + j]->str;
      if (!taken[j] && r->element[from + j]->type == REDIS_REPLY_STRING &&
          strncmp(t, s, ol + 1) == 0) {
        taken[j] = 1;
        m[k++] = r->element[from + j]->str;
      }
    }
    if (owner != NULL) settle(f, owner, m, k);
    free(owner);
  }
out:
  free(m);
  free(taken);
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
                      void *ctx, int *level) {
  redis_frontier *f = (redis_frontier *)fr;
  char *kc = key(f, "claims", NULL), *kqp = key(f, "q:", NULL),
       *kw = key(f, "writing", NULL), *kp = key(f, "pending", NULL);
  redisReply *r = NULL;
  int rc = UV_ENOMEM;
  if (kc && kqp && kw && kp) {
    const char *keys[] = {kc, kw, kp};
    const char *args[] = {kqp};
    rc = eval(f, &r, reclaim_lua, 3, keys, 1, args, NULL);
    if (rc == 0) {
      if (r->type == REDIS_REPLY_ARRAY && r->elements >= 2) {
        if (r->element[0]->integer > 0)
          weft_log(WEFT_LOG_INFO, "queued again the claims of a stopped process",
                   "items=%lld", r->element[0]->integer);
        *level = (int)r->element[1]->integer;
        if (r->elements > 2) settle_members(f, r, 2, NULL);
      }
      freeReplyObject(r);
    }
  }
  free(kw);
  free(kp);
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
  snprintf(token, token_len, "%s%" PRIu64, f->tag, ++f->tokens);
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
  /* What this process still holds (a retry left for later when it was
   * stopped) goes back to the queues now, rather than hold the level the
   * others serve until the claims expire. */
  char *kc = key(f, "claims", NULL), *kqp = key(f, "q:", NULL);
  if (kc != NULL && kqp != NULL && f->r != NULL) {
    const char *keys[] = {kc};
    const char *args[] = {kqp, f->owner};
    redisReply *r;
    if (eval(f, &r, reclaim_own_lua, 1, keys, 2, args, NULL) == 0) freeReplyObject(r);
  }
  free(kc);
  free(kqp);
  weft_redis_close(f->r);
  free(f->prefix);
  free(f->owner);
  free(f);
}

static const ws_frontier_ops redis_ops = {
    .mark_seen = rd_mark_seen,
    .add = rd_add,
    .head_depth = rd_head_depth,
    .pop = rd_pop,
    .recording = rd_recording,
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

/* At start: settles what this owner was recording when it was killed,
 * and notes where its output starts now. */
static int settle_own(redis_frontier *f, const ws_output_info *oi) {
  if (oi->path == NULL) return 0;
  redisReply *r;
  int rc = weft_redis_command(f->r, &r, "ZRANGE %swriting 0 -1", f->prefix);
  if (rc != 0) return rc;
  if (r->type == REDIS_REPLY_ARRAY && r->elements > 0) settle_members(f, r, 0, f->owner);
  freeReplyObject(r);
  char *kc = key(f, "claims", NULL), *kqp = key(f, "q:", NULL);
  rc = kc && kqp ? 0 : UV_ENOMEM;
  if (rc == 0) {
    const char *keys[] = {kc};
    const char *args[] = {kqp, f->owner};
    rc = eval(f, &r, reclaim_own_lua, 1, keys, 2, args, NULL);
    if (rc == 0) {
      if (r->type == REDIS_REPLY_INTEGER && r->integer > 0)
        weft_log(WEFT_LOG_INFO, "queued again the claims of this output's last run",
                 "items=%lld", r->integer);
      freeReplyObject(r);
    }
  }
  free(kc);
  free(kqp);
  if (rc != 0) return rc;
  char *kh = key(f, "hosts", NULL), *klp = key(f, "lease:", NULL);
  rc = kh && klp ? 0 : UV_ENOMEM;
  if (rc == 0) {
    const char *keys[] = {kh};
    const char *args[] = {klp, f->tag};
    rc = eval(f, &r, release_own_lua, 1, keys, 2, args, NULL);
    if (rc == 0) freeReplyObject(r);
  }
  free(kh);
  free(klp);
  if (rc != 0) return rc;
  rc = weft_redis_command(f->r, &r, "HSET %soutstart %s %lld", f->prefix, f->owner,
                          (long long)oi->size);
  if (rc == 0) freeReplyObject(r);
  return rc;
}

int ws_frontier_redis(const char *host, int port, const char *job,
                      int64_t claim_ms, const ws_output_info *oi,
                      ws_frontier **out) {
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
  if (gethostname(f->hostname, sizeof f->hostname - 1) != 0)
    snprintf(f->hostname, sizeof f->hostname, "localhost");
  for (char *c = f->hostname; *c; c++)
    if (*c == ':' || *c == '\t') *c = '_';
  size_t on = strlen(f->hostname) + (oi->path ? strlen(oi->path) : 0) + 48;
  f->owner = malloc(on);
  if (f->owner == NULL) {
    free(f->prefix);
    free(f);
    return UV_ENOMEM;
  }
  if (oi->path != NULL)
    snprintf(f->owner, on, "%s:%s", f->hostname, oi->path);
  else
    snprintf(f->owner, on, "%s:pid=%d.%llx", f->hostname, f->pid,
             (unsigned long long)weft_now_ns());
  snprintf(f->tag, sizeof f->tag, "%016llx:",
           (unsigned long long)ws_hash64(f->owner, strlen(f->owner)));
  int rc = weft_redis_connect(host, port, NULL, &f->r);
  if (rc != 0) {
    weft_log(WEFT_LOG_ERROR, "cannot connect to redis", "host=%s port=%d error=\"%s\"",
             host, port, weft_strerror(rc));
    free(f->prefix);
    free(f->owner);
    free(f);
    return rc;
  }
  rc = settle_own(f, oi);
  if (rc != 0) {
    rd_close(&f->base);
    return rc;
  }
  *out = &f->base;
  return 0;
}
