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
 *   claims      ZSET of "OWNER\tITEM" taken by a process (scored by the
 *               time it took them)
 *   writing     ZSET of "OWNER\tITEM" whose record is being written
 *   alive       ZSET of OWNER scored by the end of its lease (ms, Redis's
 *               clock), which the live process renews several times per
 *               claim timeout
 *   outstart    HASH OWNER -> the size of its output when it started
 *   tags        HASH OWNER -> the prefix of its per-host slot tokens, to
 *               free them when its lease expires
 *   lease:HOST  ZSET of the requests in flight to HOST, scored by expiry
 *   next:HOST   the time before which HOST takes no new request (--delay)
 *   robots:HOST robots.txt of HOST as one process read it (crawl.c's
 *               encoding), expiring when it must be fetched again
 *   robotslock:HOST  the OWNER fetching robots.txt of HOST for all
 *
 * An item is one string "HOST\nDEPTH\nFLAGS\nURL\nREFERRER", the same
 * whoever writes it, so that a process can name its claim to remove it.
 * Each step that must not be split (add: seen then queued; pop: unqueued
 * then claimed; reclaim; lease) is a Lua script, which Redis runs whole.
 *
 * OWNER names a process's output, "NODE:PATH" (or "NODE:pid=N" when it
 * is not a file), NODE being --node or the host name. Before a record is written its item moves from
 * claims to writing; after, it leaves writing. When an owner's lease
 * expires (it died, or hangs), any process queues its claims again at
 * once. What it was writing may be in its output or not: the same
 * command run again settles its own at start by looking for their
 * records in its output; a process on the owner's machine does the same
 * when the lease expires; and when the owner's output cannot be read
 * (a pipe, or a file on a machine where no process of the job runs)
 * those items are queued again a claim timeout later: at least once,
 * so that no page is missing from the union of the outputs, and at most
 * once whenever the output can be read.
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
/* Frees the per-host slots (lease:HOST) whose tokens start with tag, of
 * every host in the set hk; returns their number. */
#define RELEASE_FN                                                          \
  "local function release(hk, lp, tag) local n = 0 "                        \
  "for _, h in ipairs(redis.call('SMEMBERS', hk)) do "                      \
  "for _, m in ipairs(redis.call('ZRANGE', lp .. h, 0, -1)) do "            \
  "if string.sub(m, 1, #tag) == tag then "                                  \
  "redis.call('ZREM', lp .. h, m) n = n + 1 end end end return n end "
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

/* KEYS: q:HOST, claims, pending; ARGV: owner. The head of the queue,
 * claimed; nil when empty; 2 when it is deeper than the level. */
static const char pop_lua[] =
    LEVEL_FN NOW_MS
    "local h = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES') "
    "if #h == 0 then return false end "
    "local lv = level(KEYS[3]) "
    "if lv ~= nil and tonumber(h[2]) > lv then return 2 end "
    "redis.call('ZREM', KEYS[1], h[1]) "
    "redis.call('ZADD', KEYS[2], now, ARGV[1] .. '\\t' .. h[1]) "
    "return h[1]";

/* KEYS: claims, q:HOST, writing, pending; ARGV: owner, item, depth. 1
 * when the item is still this process's (its claim, or queued again after
 * its lease lapsed and not taken by anyone): it is then being recorded;
 * 0 when another process has it. */
static const char recording_lua[] =
    DEC_FN NOW_MS
    "local ok = redis.call('ZREM', KEYS[1], ARGV[1] .. '\\t' .. ARGV[2]) "
    "if ok == 0 then ok = redis.call('ZREM', KEYS[2], ARGV[2]) end "
    "if ok == 0 then return 0 end "
    "redis.call('ZADD', KEYS[3], now, ARGV[1] .. '\\t' .. ARGV[2]) "
    "dec(KEYS[4], ARGV[3]) "
    "return 1";

/* KEYS: claims, pending; ARGV: owner, item, depth. An item finished
 * without a record. */
static const char done_lua[] =
    DEC_FN
    "if redis.call('ZREM', KEYS[1], ARGV[1] .. '\\t' .. ARGV[2]) == 1 then "
    "  dec(KEYS[2], ARGV[3]) end "
    "return 0";

/* KEYS: writing, q:HOST, pending; ARGV: owner, item, depth. A record
 * written: 1 when the item left writing; 2 when it had been queued again
 * meanwhile (this process's lease lapsed) and nobody had taken it: it is
 * taken back; 0 when another process has it (it may record it too). */
static const char recorded_lua[] =
    DEC_FN
    "if redis.call('ZREM', KEYS[1], ARGV[1] .. '\\t' .. ARGV[2]) == 1 then return 1 end "
    "if redis.call('ZREM', KEYS[2], ARGV[2]) == 1 then dec(KEYS[3], ARGV[3]) return 2 end "
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

/* KEYS: claims, writing, pending, alive, hosts, tags; ARGV: queue prefix,
 * owner, claim ms, "NODE:" of this process, lease prefix. For each other
 * owner whose lease has expired: its per-host slots are freed and its
 * claims queued again; what it was
 * recording is returned to be settled by reading its output when that is
 * a file on this machine, left a claim timeout longer for a process on
 * its machine when it is a file elsewhere, else queued again. An owner
 * with nothing left leaves alive. Returns {claims queued again, records
 * queued again, the level (-1: none), the members of writing to
 * settle...}. */
static const char reclaim_lua[] =
    LEVEL_FN PARSE_FN RELEASE_FN NOW_MS
    "local function requeue(m, pend) local host, depth = parse(m) "
    "  redis.call('ZADD', ARGV[1] .. host, depth, m) "
    "  redis.call('SADD', KEYS[5], host) "
    "  if pend then redis.call('HINCRBY', KEYS[3], depth, 1) end end "
    "local nc, nw, settle = 0, 0, {} "
    "local dead = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', '(' .. now, "
    "                        'WITHSCORES', 'LIMIT', 0, 16) "
    "for i = 1, #dead, 2 do "
    "  local o, ends = dead[i], tonumber(dead[i + 1]) "
    "  local p = o .. '\t' "
    "  if o ~= ARGV[2] then "
    "    local tag = redis.call('HGET', KEYS[6], o) "
    "    if tag then release(KEYS[5], ARGV[5], tag) redis.call('HDEL', KEYS[6], o) end "
    "    for _, c in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do "
    "      if string.sub(c, 1, #p) == p then "
    "        requeue(string.sub(c, #p + 1), false) "
    "        redis.call('ZREM', KEYS[1], c) nc = nc + 1 end end "
    "    local w = {} "
    "    for _, c in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do "
    "      if string.sub(c, 1, #p) == p then w[#w + 1] = c end end "
    "    local file = string.find(o, ':/', 1, true) ~= nil "
    "    local here = string.sub(o, 1, #ARGV[4]) == ARGV[4] "
    "    if #w == 0 then redis.call('ZREM', KEYS[4], o) "
    "    elseif file and here then for _, c in ipairs(w) do settle[#settle + 1] = c end "
    "    elseif not file or now >= ends + tonumber(ARGV[3]) then "
    "      for _, c in ipairs(w) do "
    "        requeue(string.sub(c, #p + 1), true) "
    "        redis.call('ZREM', KEYS[2], c) nw = nw + 1 end "
    "      redis.call('ZREM', KEYS[4], o) end "
    "  end "
    "end "
    "local r = {nc, nw, level(KEYS[3]) or -1} "
    "for _, c in ipairs(settle) do r[#r + 1] = c end "
    "return r";

/* KEYS: alive; ARGV: owner, claim ms. Renews the owner's lease: 1 when it
 * had lapsed (or was never taken), else 0. */
static const char renew_lua[] =
    NOW_MS
    "local e = redis.call('ZSCORE', KEYS[1], ARGV[1]) "
    "redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1]) "
    "if e == false or tonumber(e) < now then return 1 end "
    "return 0";

/* KEYS: robots:HOST, robotslock:HOST, alive; ARGV: owner, lock ms. The
 * stored robots.txt {0, value, ms left}; else {1}, the lock now this
 * owner's (nobody holds it, or its holder's lease expired); else {2}. */
static const char robots_get_lua[] =
    NOW_MS
    "local v = redis.call('GET', KEYS[1]) "
    "if v then return {0, v, redis.call('PTTL', KEYS[1])} end "
    "local l = redis.call('GET', KEYS[2]) "
    "if l and l ~= ARGV[1] then "
    "  local e = redis.call('ZSCORE', KEYS[3], l) "
    "  if e and tonumber(e) >= now then return {2} end "
    "end "
    "redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2]) "
    "return {1}";

/* KEYS: robots:HOST, robotslock:HOST; ARGV: owner, value, ms ('': store
 * nothing). Stores robots.txt and frees the lock if it is the owner's. */
static const char robots_put_lua[] =
    "if ARGV[3] ~= '' then redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3]) end "
    "if redis.call('GET', KEYS[2]) == ARGV[1] then redis.call('DEL', KEYS[2]) end "
    "return 1";

/* KEYS: claims, alive, writing; ARGV: queue prefix, owner, "1" when it
 * stops. Queues again at once the claims of this owner (its earlier run,
 * killed; or this run, stopping, which then gives up its lease: at once,
 * or, when it leaves pages being recorded (its output failed), by letting
 * it expire now, so that they are settled as a dead process's). */
static const char reclaim_own_lua[] =
    PARSE_FN NOW_MS
    "local p = ARGV[2] .. '\t' "
    "if ARGV[3] == '1' then "
    "  local left = false "
    "  for _, c in ipairs(redis.call('ZRANGE', KEYS[3], 0, -1)) do "
    "    if string.sub(c, 1, #p) == p then left = true end end "
    "  if left then redis.call('ZADD', KEYS[2], now - 1, ARGV[2]) "
    "  else redis.call('ZREM', KEYS[2], ARGV[2]) end "
    "end "
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
    RELEASE_FN "return release(KEYS[1], ARGV[1], ARGV[2])";

static const char remaining_lua[] =
    "local n = redis.call('ZCARD', KEYS[2]) + redis.call('ZCARD', KEYS[3]) "
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
    const char *keys[] = {kq, kc, kp};
    const char *args[] = {f->owner};
    redisReply *r;
    rc = eval(f, &r, pop_lua, 3, keys, 1, args, NULL);
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
  char depth[16];
  snprintf(depth, sizeof depth, "%d", it->depth);
  redisReply *r;
  int rc = item_script(f, it, recording_lua, suffixes, 4, depth, NULL, &r);
  if (rc != 0) return rc;
  rc = r->type == REDIS_REPLY_INTEGER && r->integer == 1;
  freeReplyObject(r);
  return rc;
}

static int rd_done(ws_frontier *fr, const ws_item *it) {
  redis_frontier *f = (redis_frontier *)fr;
  redisReply *r;
  char depth[16];
  snprintf(depth, sizeof depth, "%d", it->depth);
  if (it->recorded) {
    static const char *const suffixes[] = {"writing", "q:", "pending"};
    int rc = item_script(f, it, recorded_lua, suffixes, 3, depth, NULL, &r);
    if (rc != 0) return rc;
    if (r->type == REDIS_REPLY_INTEGER && r->integer == 0)
      weft_log(WEFT_LOG_WARN,
               "a page recorded after this process's lease lapsed was taken by "
               "another process meanwhile: it may be recorded twice",
               "url=%s", it->url);
    freeReplyObject(r);
    return 0;
  }
  static const char *const suffixes[] = {"claims", "pending"};
  int rc = item_script(f, it, done_lua, suffixes, 2, depth, NULL, &r);
  if (rc == 0) freeReplyObject(r);
  return rc;
}

/* What ws_output_find() needs on the thread pool: an output may be large,
 * and the loop must go on renewing this process's lease meanwhile. */
typedef struct find_job {
  const char *path;
  int64_t start;
  char *const *urls;
  size_t n;
  int *found;
  int rc;
} find_job;

static int find_on_pool(void *arg) {
  find_job *j = arg;
  j->rc = ws_output_find(j->path, j->start, j->urls, j->n, j->found);
  return 0;
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
    find_job job = {.path = path, .start = start, .urls = urls, .n = n, .found = found};
    rc = weft_blocking(find_on_pool, &job);
    if (rc == 0) rc = job.rc;
  }
  if (rc != 0 || !here) {
    /* Nothing to look in: queued again, so that none is missing from the
     * outputs, though one may then be recorded twice. */
    weft_log(WEFT_LOG_WARN,
             "cannot look for the records of a stopped process: the pages it "
             "was recording are queued again",
             "owner=\"%s\" pages=%zu error=\"%s\"", owner, n,
             weft_strerror(rc != 0 ? rc : UV_ENOENT));
    if (found != NULL) memset(found, 0, n * sizeof *found);
  }
  if (found != NULL && urls != NULL) {
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
       *kw = key(f, "writing", NULL), *kp = key(f, "pending", NULL),
       *ka = key(f, "alive", NULL), *kh = key(f, "hosts", NULL),
       *kt = key(f, "tags", NULL), *klp = key(f, "lease:", NULL);
  redisReply *r = NULL;
  int rc = UV_ENOMEM;
  if (kc && kqp && kw && kp && ka && kh && kt && klp) {
    char ms[32], here[260];
    snprintf(ms, sizeof ms, "%" PRId64, f->claim_ms);
    snprintf(here, sizeof here, "%s:", f->hostname);
    const char *keys[] = {kc, kw, kp, ka, kh, kt};
    const char *args[] = {kqp, f->owner, ms, here, klp};
    rc = eval(f, &r, reclaim_lua, 6, keys, 5, args, NULL);
    if (rc == 0) {
      if (r->type == REDIS_REPLY_ARRAY && r->elements >= 3) {
        if (r->element[0]->integer > 0 || r->element[1]->integer > 0)
          weft_log(WEFT_LOG_INFO,
                   "queued again the items of a process whose lease expired",
                   "claims=%lld being_recorded=%lld", r->element[0]->integer,
                   r->element[1]->integer);
        *level = (int)r->element[2]->integer;
        if (r->elements > 3) settle_members(f, r, 3, NULL);
      }
      freeReplyObject(r);
    }
  }
  free(kw);
  free(kp);
  free(ka);
  free(kh);
  free(kt);
  free(klp);
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

/* The lease script on this process's owner; 0, 1 or an error. */
static int renew_lease(redis_frontier *f) {
  char *ka = key(f, "alive", NULL);
  int rc = UV_ENOMEM;
  if (ka != NULL) {
    char ms[32];
    snprintf(ms, sizeof ms, "%" PRId64, f->claim_ms);
    const char *keys[] = {ka};
    const char *args[] = {f->owner, ms};
    redisReply *r;
    rc = eval(f, &r, renew_lua, 1, keys, 2, args, NULL);
    if (rc == 0) {
      rc = r->type == REDIS_REPLY_INTEGER && r->integer == 1;
      freeReplyObject(r);
    }
  }
  free(ka);
  return rc;
}

static int rd_renew(ws_frontier *fr) {
  return renew_lease((redis_frontier *)fr);
}

static int rd_finished(ws_frontier *fr) {
  redis_frontier *f = (redis_frontier *)fr;
  char *kh = key(f, "hosts", NULL), *kc = key(f, "claims", NULL),
       *kw = key(f, "writing", NULL), *kqp = key(f, "q:", NULL);
  int rc = UV_ENOMEM;
  if (kh && kc && kw && kqp) {
    const char *keys[] = {kh, kc, kw};
    const char *args[] = {kqp};
    redisReply *r;
    rc = eval(f, &r, remaining_lua, 3, keys, 1, args, NULL);
    if (rc == 0) {
      rc = r->type == REDIS_REPLY_INTEGER && r->integer == 0;
      freeReplyObject(r);
    }
  }
  free(kh);
  free(kc);
  free(kw);
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

/* The lock on a host's robots.txt: a holder that dies loses it with its
 * lease; this only bounds a lock whose holder lives but never answers. */
#define ROBOTS_LOCK_MS (10 * 60 * 1000)

static int rd_get_robots(ws_frontier *fr, const char *host, char **value,
                         size_t *len, int64_t *ttl_ms) {
  redis_frontier *f = (redis_frontier *)fr;
  *value = NULL;
  *len = 0;
  *ttl_ms = 0;
  char *kr = key(f, "robots:", host), *kl = key(f, "robotslock:", host),
       *ka = key(f, "alive", NULL);
  int rc = UV_ENOMEM;
  if (kr && kl && ka) {
    char ms[32];
    snprintf(ms, sizeof ms, "%d", ROBOTS_LOCK_MS);
    const char *keys[] = {kr, kl, ka};
    const char *args[] = {f->owner, ms};
    redisReply *r;
    rc = eval(f, &r, robots_get_lua, 3, keys, 2, args, NULL);
    if (rc == 0) {
      rc = UV_EPROTO;
      if (r->type == REDIS_REPLY_ARRAY && r->elements >= 1 &&
          r->element[0]->type == REDIS_REPLY_INTEGER)
        rc = (int)r->element[0]->integer;
      if (rc == 0 && (r->elements < 3 || r->element[1]->type != REDIS_REPLY_STRING))
        rc = UV_EPROTO;
      if (rc == 0) {
        *value = malloc(r->element[1]->len + 1);
        if (*value == NULL) {
          rc = UV_ENOMEM;
        } else {
          memcpy(*value, r->element[1]->str, r->element[1]->len);
          (*value)[r->element[1]->len] = '\0';
          *len = r->element[1]->len;
          *ttl_ms = r->element[2]->integer;
        }
      }
      freeReplyObject(r);
    }
  }
  free(kr);
  free(kl);
  free(ka);
  return rc;
}

static int rd_put_robots(ws_frontier *fr, const char *host, const char *value,
                         size_t len, int64_t ttl_ms) {
  redis_frontier *f = (redis_frontier *)fr;
  char *kr = key(f, "robots:", host), *kl = key(f, "robotslock:", host);
  int rc = UV_ENOMEM;
  if (kr && kl) {
    char ms[32] = "";
    if (value != NULL) snprintf(ms, sizeof ms, "%" PRId64, ttl_ms > 0 ? ttl_ms : 1);
    const char *keys[] = {kr, kl};
    /* eval() takes a length of 0 for strlen(): an empty value is "". */
    const char *args[] = {f->owner, value != NULL ? value : "", ms};
    size_t lens[] = {0, value != NULL ? len : 0, 0};
    redisReply *r;
    rc = eval(f, &r, robots_put_lua, 2, keys, 3, args, lens);
    if (rc == 0) freeReplyObject(r);
  }
  free(kr);
  free(kl);
  return rc;
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
  char *kc = key(f, "claims", NULL), *kqp = key(f, "q:", NULL),
       *ka = key(f, "alive", NULL), *kw = key(f, "writing", NULL);
  if (kc != NULL && kqp != NULL && ka != NULL && kw != NULL && f->r != NULL) {
    const char *keys[] = {kc, ka, kw};
    const char *args[] = {kqp, f->owner, "1"};
    redisReply *r;
    if (eval(f, &r, reclaim_own_lua, 3, keys, 3, args, NULL) == 0) freeReplyObject(r);
  }
  free(kc);
  free(kqp);
  free(ka);
  free(kw);
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
    .renew = rd_renew,
    .finished = rd_finished,
    .lease = rd_lease,
    .release = rd_release,
    .get_robots = rd_get_robots,
    .put_robots = rd_put_robots,
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
  char *kc = key(f, "claims", NULL), *kqp = key(f, "q:", NULL),
       *ka = key(f, "alive", NULL), *kw = key(f, "writing", NULL);
  rc = kc && kqp && ka && kw ? 0 : UV_ENOMEM;
  if (rc == 0) {
    const char *keys[] = {kc, ka, kw};
    const char *args[] = {kqp, f->owner, "0"};
    rc = eval(f, &r, reclaim_own_lua, 3, keys, 3, args, NULL);
    if (rc == 0) {
      if (r->type == REDIS_REPLY_INTEGER && r->integer > 0)
        weft_log(WEFT_LOG_INFO, "queued again the claims of this output's last run",
                 "items=%lld", r->integer);
      freeReplyObject(r);
    }
  }
  free(kc);
  free(kqp);
  free(ka);
  free(kw);
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

/* Notes this owner's token prefix, with which the others free its
 * per-host slots once its lease has expired. */
static int note_tag(redis_frontier *f) {
  redisReply *r;
  int rc = weft_redis_command(f->r, &r, "HSET %stags %s %s", f->prefix, f->owner, f->tag);
  if (rc == 0) freeReplyObject(r);
  return rc;
}

int ws_frontier_redis(const char *host, int port, const char *job,
                      const char *node, int64_t claim_ms,
                      const ws_output_info *oi, ws_frontier **out) {
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
  if (node != NULL && node[0] != '\0')
    snprintf(f->hostname, sizeof f->hostname, "%s", node);
  else if (gethostname(f->hostname, sizeof f->hostname - 1) != 0)
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
  /* The lease is taken before the first claim. */
  if (rc == 0) rc = note_tag(f);
  if (rc == 0 && (rc = renew_lease(f)) > 0) rc = 0;
  if (rc != 0) {
    rd_close(&f->base);
    return rc;
  }
  *out = &f->base;
  return 0;
}
