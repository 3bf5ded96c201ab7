/* cluster.c: rooms, seqs and nicknames shared through Redis (weft_redis).
 *
 * Keys (R a room, N a nick, ID a node):
 *   chat:seq:R        the room's last seq
 *   chat:log:R        the room's messages, a stream with IDs 0-seq
 *   chat:pres:R       the room's presence events, a stream
 *   chat:nodes:R      the nodes that have had members in the room
 *   chat:mem:R:ID     the room's members on node ID (TTL, refreshed)
 *   chat:rooms        every room
 *   chat:nick:N       the node holding nick N (TTL, refreshed)
 *   chat:inbox:ID     direct messages for node ID, a stream
 */
#include "cluster.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "chat.h"
#include "nicks.h"
#include "room.h"

#ifdef CHAT_HAVE_REDIS
#include <weft_redis.h>

/* How long the keys of a node live without a refresh (--redis-key-ttl),
 * in seconds, and how often the node refreshes them, in milliseconds. */
#define CLUSTER_TTL_S ((int)chat_srv->cfg->redis_key_ttl)
#define CLUSTER_REFRESH_MS (chat_srv->cfg->redis_key_ttl * 1000 / 3)
/* Entries kept in a room's stream (at least), and in an inbox. */
#define CLUSTER_INBOX_MAX 10000

/* The script that gives a message its seq and appends it, in one step. */
static const char say_script[] =
    "local seq = redis.call('INCR', KEYS[1]) "
    "redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '0-' .. seq, "
    "'m', ARGV[1] .. seq .. ARGV[2]) "
    "return seq";

/* After an outage: the seq in Redis is raised to at least the room's. */
static const char raise_script[] =
    "local cur = tonumber(redis.call('GET', KEYS[1]) or '0') "
    "if cur < tonumber(ARGV[1]) then redis.call('SET', KEYS[1], ARGV[1]) end "
    "return 0";

/* Claims a nick for node ARGV[1]: 1 when it is free or already this
 * node's (the refresh may have written it first), 0 when another holds it. */
static const char claim_script[] =
    "local v = redis.call('GET', KEYS[1]) "
    "if v and v ~= ARGV[1] then return 0 end "
    "redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2]) "
    "return 1";

/* Gives a nick back only when this node holds it. */
static const char release_script[] =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then "
    "return redis.call('DEL', KEYS[1]) end return 0";

/* A room whose streams this node reads. */
typedef struct watched {
  char room[CHAT_ROOM_MAX + 1];
  char log_id[32];  /* the last entry read */
  char pres_id[48];
  char **members;   /* local members, for the refresh and the healing */
  size_t n_members;
} watched;

typedef struct cluster {
  char host[256];
  int port;
  char node[17];
  weft_redis *cmd; /* commands (executor 1) */
  weft_redis *rd;  /* blocking stream reads (executor 1) */
  int up;          /* atomic */
  int stopping;
  watched *rooms;
  size_t n_rooms, cap_rooms;
  char inbox_id[48];
  int64_t max_len; /* entries kept in a room's stream */
  weft_actor *actor;
  weft_group *tasks; /* the actor's, opened in its start hook */
} cluster;

static cluster cl;

int chat_cluster_up(void) { return __atomic_load_n(&cl.up, __ATOMIC_ACQUIRE); }

/* Marks the node down (once), closing the connections: the supervisor
 * reconnects. */
static void cluster_down(const char *why) {
  if (!chat_cluster_up() || cl.stopping) return;
  __atomic_store_n(&cl.up, 0, __ATOMIC_RELEASE);
  weft_log(WEFT_LOG_WARN, "lost redis; serving local members only",
           "why=\"%s\"", why);
}

/* A command on the command connection. Returns 0 and *reply (which may be
 * a Redis error reply: the caller checks), or an error (the node is then
 * marked down). */
static int cmd(redisReply **reply, int argc, const char **argv) {
  *reply = NULL;
  if (!chat_cluster_up() || cl.cmd == NULL) return UV_ECONNRESET;
  int r = weft_redis_commandv(cl.cmd, reply, argc, argv, NULL);
  if (r != 0) {
    cluster_down(weft_strerror(r));
    return r;
  }
  if ((*reply)->type == REDIS_REPLY_ERROR) {
    weft_log(WEFT_LOG_WARN, "redis refused a command", "command=%s error=\"%s\"",
             argv[0], (*reply)->str);
    freeReplyObject(*reply);
    *reply = NULL;
    return UV_EPROTO;
  }
  return 0;
}

/* A command whose reply does not matter beyond success. */
static int cmd0(int argc, const char **argv) {
  redisReply *reply;
  int r = cmd(&reply, argc, argv);
  if (reply != NULL) freeReplyObject(reply);
  return r;
}

static void key(char *out, size_t len, const char *kind, const char *name) {
  snprintf(out, len, "chat:%s:%s", kind, name);
}

static watched *find_room(const char *room) {
  for (size_t i = 0; i < cl.n_rooms; i++)
    if (strcmp(cl.rooms[i].room, room) == 0) return &cl.rooms[i];
  return NULL;
}

/* The ID of the last entry of stream k into out ("0-0" when empty). */
static int last_id(const char *k, char *out, size_t len) {
  const char *argv[] = {"XREVRANGE", k, "+", "-", "COUNT", "1"};
  redisReply *reply;
  int r = cmd(&reply, 6, argv);
  if (r != 0) return r;
  snprintf(out, len, "0-0");
  if (reply->type == REDIS_REPLY_ARRAY && reply->elements > 0 &&
      reply->element[0]->type == REDIS_REPLY_ARRAY &&
      reply->element[0]->elements > 0)
    snprintf(out, len, "%s", reply->element[0]->element[0]->str);
  freeReplyObject(reply);
  return 0;
}

/* ---- Rooms --------------------------------------------------------------- */

/* The entry's field value (f), or NULL. */
static const redisReply *entry_field(const redisReply *entry, const char *f) {
  if (entry->type != REDIS_REPLY_ARRAY || entry->elements < 2) return NULL;
  const redisReply *fields = entry->element[1];
  if (fields->type != REDIS_REPLY_ARRAY) return NULL;
  for (size_t i = 0; i + 1 < fields->elements; i += 2)
    if (fields->element[i]->str != NULL && strcmp(fields->element[i]->str, f) == 0)
      return fields->element[i + 1];
  return NULL;
}

static chat_buf *buf_of(const redisReply *v, int64_t seq) {
  if (v == NULL || v->type != REDIS_REPLY_STRING) return NULL;
  chat_sb sb;
  chat_sb_init(&sb);
  chat_sb_add(&sb, v->str, v->len);
  chat_buf *b = chat_sb_finish(&sb);
  if (b != NULL) b->seq = seq;
  return b;
}

static int64_t seq_of_id(const char *id) {
  const char *dash = strchr(id, '-');
  return dash != NULL ? strtoll(dash + 1, NULL, 10) : 0;
}

int chat_cluster_room_open(const char *room, size_t max, int64_t *last_seq,
                           chat_buf ***msgs, size_t *n) {
  *last_seq = 0;
  *msgs = NULL;
  *n = 0;
  watched *w = find_room(room);
  if (w == NULL) {
    if (cl.n_rooms == cl.cap_rooms) {
      size_t cap = cl.cap_rooms ? cl.cap_rooms * 2 : 16;
      watched *grown = realloc(cl.rooms, cap * sizeof *grown);
      if (grown == NULL) return UV_ENOMEM;
      cl.rooms = grown;
      cl.cap_rooms = cap;
    }
    w = &cl.rooms[cl.n_rooms++];
    memset(w, 0, sizeof *w);
    snprintf(w->room, sizeof w->room, "%s", room);
    snprintf(w->log_id, sizeof w->log_id, "0-0");
    w->pres_id[0] = '\0'; /* not known yet: read from the end */
  }
  char kseq[128], klog[128], kpres[128];
  key(kseq, sizeof kseq, "seq", room);
  key(klog, sizeof klog, "log", room);
  key(kpres, sizeof kpres, "pres", room);
  const char *add[] = {"SADD", "chat:rooms", room};
  int r = cmd0(3, add);
  if (r != 0) return r;
  redisReply *reply;
  const char *get[] = {"GET", kseq};
  if ((r = cmd(&reply, 2, get)) != 0) return r;
  if (reply->type == REDIS_REPLY_STRING) *last_seq = strtoll(reply->str, NULL, 10);
  freeReplyObject(reply);
  char count[24];
  snprintf(count, sizeof count, "%zu", max > 0 ? max : 1);
  const char *range[] = {"XREVRANGE", klog, "+", "-", "COUNT", count};
  if ((r = cmd(&reply, 6, range)) != 0) return r;
  chat_buf **out = calloc(reply->elements + 1, sizeof *out);
  size_t k = 0;
  for (size_t i = reply->elements; out != NULL && i-- > 0 && max > 0;) {
    const redisReply *e = reply->element[i];
    int64_t seq = seq_of_id(e->element[0]->str);
    chat_buf *b = buf_of(entry_field(e, "m"), seq);
    if (b != NULL) out[k++] = b;
  }
  freeReplyObject(reply);
  *msgs = out;
  *n = k;
  snprintf(w->log_id, sizeof w->log_id, "0-%lld", (long long)*last_seq);
  if (w->pres_id[0] == '\0' && last_id(kpres, w->pres_id, sizeof w->pres_id) != 0)
    w->pres_id[0] = '\0';
  return 0;
}

void chat_cluster_room_close(const char *room) {
  watched *w = find_room(room);
  if (w == NULL) return;
  for (size_t i = 0; i < w->n_members; i++) free(w->members[i]);
  free(w->members);
  *w = cl.rooms[--cl.n_rooms];
}

int chat_cluster_say(const char *room, const char *from, const char *text,
                     int64_t *seq) {
  char kseq[128], klog[128], maxlen[24];
  key(kseq, sizeof kseq, "seq", room);
  key(klog, sizeof klog, "log", room);
  snprintf(maxlen, sizeof maxlen, "%lld", (long long)cl.max_len);
  chat_sb pre, post;
  chat_sb_init(&pre);
  chat_sb_init(&post);
  chat_sb_str(&pre, "{\"type\":\"message\",\"room\":");
  chat_sb_jstr(&pre, room);
  chat_sb_str(&pre, ",\"from\":");
  chat_sb_jstr(&pre, from);
  chat_sb_str(&pre, ",\"text\":");
  chat_sb_jstr(&pre, text);
  chat_sb_str(&pre, ",\"seq\":");
  chat_sb_str(&post, ",\"ts\":");
  chat_sb_int(&post, chat_wall_ms());
  chat_sb_str(&post, "}");
  chat_sb_add(&pre, "", 1);
  chat_sb_add(&post, "", 1);
  int r = UV_ENOMEM;
  if (!pre.failed && !post.failed) {
    const char *argv[] = {"EVAL", say_script, "2", kseq, klog, pre.data, post.data, maxlen};
    redisReply *reply;
    r = cmd(&reply, 8, argv);
    if (r == 0) {
      *seq = reply->type == REDIS_REPLY_INTEGER ? reply->integer : 0;
      freeReplyObject(reply);
      if (*seq <= 0) r = UV_EPROTO;
    }
  }
  chat_sb_free(&pre);
  chat_sb_free(&post);
  return r;
}

/* Adds nick to this node's member set of room (and refreshes its TTL). */
static int member_add(const char *room, const char *nick) {
  char kmem[192], knodes[128], ttl[16];
  snprintf(kmem, sizeof kmem, "chat:mem:%s:%s", room, cl.node);
  key(knodes, sizeof knodes, "nodes", room);
  snprintf(ttl, sizeof ttl, "%d", CLUSTER_TTL_S);
  const char *sadd[] = {"SADD", kmem, nick};
  const char *exp[] = {"EXPIRE", kmem, ttl};
  const char *nodes[] = {"SADD", knodes, cl.node};
  int r = cmd0(3, sadd);
  if (r == 0) r = cmd0(3, exp);
  if (r == 0) r = cmd0(3, nodes);
  return r;
}

void chat_cluster_presence(const char *room, const char *nick, int join) {
  watched *w = find_room(room);
  if (w != NULL) {
    if (join) {
      char **grown = realloc(w->members, (w->n_members + 1) * sizeof *grown);
      char *copy = strdup(nick);
      if (grown != NULL) w->members = grown;
      if (grown != NULL && copy != NULL)
        w->members[w->n_members++] = copy;
      else
        free(copy);
    } else {
      for (size_t i = 0; i < w->n_members; i++) {
        if (strcmp(w->members[i], nick) == 0) {
          free(w->members[i]);
          w->members[i] = w->members[--w->n_members];
          break;
        }
      }
    }
  }
  if (!chat_cluster_up()) return;
  if (join) {
    member_add(room, nick);
  } else {
    char kmem[192];
    snprintf(kmem, sizeof kmem, "chat:mem:%s:%s", room, cl.node);
    const char *srem[] = {"SREM", kmem, nick};
    cmd0(3, srem);
  }
  chat_sb sb;
  chat_sb_init(&sb);
  chat_sb_str(&sb, "{\"type\":\"presence\",\"room\":");
  chat_sb_jstr(&sb, room);
  chat_sb_str(&sb, ",\"nick\":");
  chat_sb_jstr(&sb, nick);
  chat_sb_str(&sb, join ? ",\"event\":\"join\"}" : ",\"event\":\"leave\"}");
  chat_sb_add(&sb, "", 1);
  if (!sb.failed) {
    char kpres[128];
    key(kpres, sizeof kpres, "pres", room);
    const char *xadd[] = {"XADD", kpres, "MAXLEN", "~", "1000", "*",
                          "n", cl.node, "p", sb.data};
    cmd0(10, xadd);
  }
  chat_sb_free(&sb);
}

int chat_cluster_members(const char *room, chat_sb *sb) {
  char knodes[128];
  key(knodes, sizeof knodes, "nodes", room);
  redisReply *nodes;
  const char *get[] = {"SMEMBERS", knodes};
  int r = cmd(&nodes, 2, get);
  if (r != 0) return r;
  /* SUNION of every node's set: expired ones are simply absent. */
  size_t argc = 1 + nodes->elements;
  const char **argv = calloc(argc, sizeof *argv);
  char **keys = calloc(nodes->elements + 1, sizeof *keys);
  r = argv && keys ? 0 : UV_ENOMEM;
  for (size_t i = 0; r == 0 && i < nodes->elements; i++) {
    keys[i] = malloc(256);
    if (keys[i] == NULL) {
      r = UV_ENOMEM;
      break;
    }
    snprintf(keys[i], 256, "chat:mem:%s:%s", room, nodes->element[i]->str);
    argv[1 + i] = keys[i];
  }
  redisReply *all = NULL;
  if (r == 0 && nodes->elements > 0) {
    argv[0] = "SUNION";
    r = cmd(&all, (int)argc, argv);
  }
  if (r == 0 && all != NULL) {
    for (size_t i = 0; i < all->elements; i++) {
      if (i > 0) chat_sb_str(sb, ",");
      chat_sb_json(sb, all->element[i]->str, all->element[i]->len);
    }
  }
  if (all != NULL) freeReplyObject(all);
  for (size_t i = 0; keys != NULL && i < nodes->elements; i++) free(keys[i]);
  free(keys);
  free(argv);
  freeReplyObject(nodes);
  return r;
}

/* ---- The stream reader -------------------------------------------------------- */

/* Hands one entry of stream k to its room (or, for the inbox, to the nick). */
static void reader_dispatch(const char *k, const redisReply *e) {
  const char *id = e->element[0]->str;
  if (strncmp(k, "chat:inbox:", 11) == 0) {
    snprintf(cl.inbox_id, sizeof cl.inbox_id, "%s", id);
    const redisReply *to = entry_field(e, "to");
    chat_buf *b = buf_of(entry_field(e, "d"), 0);
    chat_conn *c = to && to->str ? chat_nick_find(to->str) : NULL;
    if (c != NULL && b != NULL) chat_conn_push(c, b);
    if (c != NULL) chat_conn_unref(c);
    chat_buf_unref(b);
    return;
  }
  int is_log = strncmp(k, "chat:log:", 9) == 0;
  const char *room = k + (is_log ? 9 : 10);
  watched *w = find_room(room);
  if (w == NULL) return;
  if (is_log) {
    snprintf(w->log_id, sizeof w->log_id, "%s", id);
    chat_buf *b = buf_of(entry_field(e, "m"), seq_of_id(id));
    if (b != NULL) chat_room_remote(room, b, 0);
    return;
  }
  snprintf(w->pres_id, sizeof w->pres_id, "%s", id);
  const redisReply *node = entry_field(e, "n");
  if (node != NULL && node->str != NULL && strcmp(node->str, cl.node) == 0) return;
  chat_buf *b = buf_of(entry_field(e, "p"), 0);
  if (b != NULL) chat_room_remote(room, b, 1);
}

static int reader_task(void *arg) {
  (void)arg;
  weft_task_set_name("redis reader");
  while (!cl.stopping) {
    if (!chat_cluster_up() || cl.rd == NULL) {
      if (weft_sleep(50) != 0) break;
      continue;
    }
    /* XREAD BLOCK 200 STREAMS keys... ids...: every room's two streams
     * and the inbox. */
    size_t n_streams = 1 + 2 * cl.n_rooms;
    size_t argc = 4 + 2 * n_streams;
    const char **argv = calloc(argc, sizeof *argv);
    char **owned = calloc(n_streams, sizeof *owned);
    if (argv == NULL || owned == NULL) {
      free(argv);
      free(owned);
      if (weft_sleep(100) != 0) break;
      continue;
    }
    argv[0] = "XREAD";
    argv[1] = "BLOCK";
    argv[2] = "200";
    argv[3] = "STREAMS";
    size_t k = 0;
    char inbox[64];
    snprintf(inbox, sizeof inbox, "chat:inbox:%s", cl.node);
    argv[4 + k] = inbox;
    argv[4 + n_streams + k++] = cl.inbox_id;
    for (size_t i = 0; i < cl.n_rooms; i++) {
      watched *w = &cl.rooms[i];
      owned[2 * i] = malloc(160);
      owned[2 * i + 1] = malloc(160);
      if (owned[2 * i] == NULL || owned[2 * i + 1] == NULL) break;
      key(owned[2 * i], 160, "log", w->room);
      key(owned[2 * i + 1], 160, "pres", w->room);
      argv[4 + k] = owned[2 * i];
      argv[4 + n_streams + k++] = w->log_id;
      argv[4 + k] = owned[2 * i + 1];
      argv[4 + n_streams + k++] = w->pres_id[0] ? w->pres_id : "$";
    }
    redisReply *reply = NULL;
    int r = k == n_streams ? weft_redis_commandv(cl.rd, &reply, (int)argc, argv, NULL)
                           : UV_ENOMEM;
    if (r == 0 && reply->type == REDIS_REPLY_ARRAY) {
      for (size_t s = 0; s < reply->elements; s++) {
        const redisReply *st = reply->element[s];
        if (st->type != REDIS_REPLY_ARRAY || st->elements < 2) continue;
        const char *name = st->element[0]->str;
        const redisReply *entries = st->element[1];
        for (size_t e = 0; e < entries->elements; e++)
          reader_dispatch(name, entries->element[e]);
      }
    } else if (r != 0 && !cl.stopping) {
      cluster_down(weft_strerror(r));
    }
    if (reply != NULL) freeReplyObject(reply);
    for (size_t i = 0; i < n_streams; i++) free(owned[i]);
    free(owned);
    free(argv);
    if (r != 0 && weft_sleep(50) != 0) break;
  }
  return 0;
}

/* ---- Connecting, healing, refreshing ------------------------------------------- */

typedef struct nick_list {
  char **nicks;
  size_t n;
} nick_list;

/* Claims again (or refreshes) the nicks of this node, and its members. */
static void cluster_refresh(int healing) {
  char ttl[16];
  snprintf(ttl, sizeof ttl, "%d", CLUSTER_TTL_S);
  size_t n = 0;
  char **nicks = chat_nicks_list(&n);
  for (size_t i = 0; i < n; i++) {
    char k[96];
    key(k, sizeof k, "nick", nicks[i]);
    /* A periodic refresh only extends a nick (XX): one given back since
     * the list was taken must stay free. Healing writes them again. */
    const char *set[] = {"SET", k, cl.node, "EX", ttl, "XX"};
    cmd0(healing ? 5 : 6, set);
    free(nicks[i]);
  }
  free(nicks);
  for (size_t i = 0; i < cl.n_rooms; i++) {
    watched *w = &cl.rooms[i];
    for (size_t m = 0; m < w->n_members; m++) member_add(w->room, w->members[m]);
    if (healing) {
      /* The room may have numbered messages itself meanwhile. */
      char kseq[128], seq[24];
      key(kseq, sizeof kseq, "seq", w->room);
      snprintf(seq, sizeof seq, "%lld", (long long)chat_room_seq(w->room));
      const char *raise[] = {"EVAL", raise_script, "1", kseq, seq};
      cmd0(5, raise);
      const char *add[] = {"SADD", "chat:rooms", w->room};
      cmd0(3, add);
      snprintf(w->log_id, sizeof w->log_id, "0-%s", seq);
      if (w->pres_id[0] == '\0' || healing) { /* NOLINT(bugprone-redundant-branch-condition): kept for the reader */
        char kpres[128];
        key(kpres, sizeof kpres, "pres", w->room);
        if (last_id(kpres, w->pres_id, sizeof w->pres_id) != 0) w->pres_id[0] = '\0';
      }
    }
  }
}

static int connect_both(void) {
  weft_redis_opts o = {.connect_timeout_ms = 1000};
  weft_redis *a = NULL, *b = NULL;
  int r = weft_redis_connect(cl.host, cl.port, &o, &a);
  if (r == 0) r = weft_redis_connect(cl.host, cl.port, &o, &b);
  if (r != 0) {
    weft_redis_close(a);
    return r;
  }
  weft_redis_close(cl.cmd);
  weft_redis_close(cl.rd);
  cl.cmd = a;
  cl.rd = b;
  return 0;
}

static int supervisor_task(void *arg) {
  (void)arg;
  weft_task_set_name("redis");
  int64_t backoff = 100, next_refresh = 0;
  int was_up = 0;
  while (!cl.stopping) {
    if (!chat_cluster_up()) {
      if (connect_both() == 0) {
        __atomic_store_n(&cl.up, 1, __ATOMIC_RELEASE);
        weft_log(WEFT_LOG_INFO, was_up ? "redis is back" : "connected to redis",
                 "addr=%s:%d node=%s", cl.host, cl.port, cl.node);
        if (cl.inbox_id[0] == '\0') {
          char k[64];
          snprintf(k, sizeof k, "chat:inbox:%s", cl.node);
          if (last_id(k, cl.inbox_id, sizeof cl.inbox_id) != 0)
            snprintf(cl.inbox_id, sizeof cl.inbox_id, "0-0");
        }
        cluster_refresh(was_up);
        was_up = 1;
        backoff = 100;
        next_refresh = weft_now() + CLUSTER_REFRESH_MS;
      } else {
        /* Jittered, so that nodes do not come back all at once. */
        int64_t wait = backoff / 2 + rand() % (backoff / 2 + 1); /* NOLINT(cert-msc30-c,cert-msc50-cpp): jitter, not a secret */
        backoff = backoff * 2 < 2000 ? backoff * 2 : 2000;
        if (weft_sleep(wait) != 0) break;
        continue;
      }
    }
    if (!weft_redis_connected(cl.cmd) || !weft_redis_connected(cl.rd))
      cluster_down("the connection closed");
    if (chat_cluster_up() && weft_now() >= next_refresh) {
      cluster_refresh(0);
      next_refresh = weft_now() + CLUSTER_REFRESH_MS;
    }
    if (weft_sleep(100) != 0) break;
  }
  return 0;
}

/* ---- The actor that serves the connections' requests ---------------------------- */

enum { CL_CLAIM, CL_RELEASE, CL_DM, CL_ROOMS };

typedef struct cl_msg {
  int op;
  char nick[CHAT_NICK_MAX + 1];
  chat_buf *buf; /* CL_DM: a reference */
} cl_msg;

typedef struct cl_reply {
  int result;
  chat_buf *buf; /* CL_ROOMS */
} cl_reply;

static int cl_claim(const char *nick) {
  char k[96], ttl[16];
  key(k, sizeof k, "nick", nick);
  snprintf(ttl, sizeof ttl, "%d", CLUSTER_TTL_S);
  const char *argv[] = {"EVAL", claim_script, "1", k, cl.node, ttl};
  redisReply *reply;
  int r = cmd(&reply, 6, argv);
  if (r != 0) return r;
  r = reply->type == REDIS_REPLY_INTEGER && reply->integer == 1 ? 0 : UV_EEXIST;
  freeReplyObject(reply);
  return r;
}

static int cl_dm(const char *nick, chat_buf *b) {
  char k[96];
  key(k, sizeof k, "nick", nick);
  const char *get[] = {"GET", k};
  redisReply *reply;
  int r = cmd(&reply, 2, get);
  if (r != 0) return r;
  if (reply->type != REDIS_REPLY_STRING) {
    freeReplyObject(reply);
    return UV_ENOENT;
  }
  char inbox[64];
  snprintf(inbox, sizeof inbox, "chat:inbox:%s", reply->str);
  freeReplyObject(reply);
  char max[16], *body = malloc(b->len);
  if (body == NULL) return UV_ENOMEM;
  memcpy(body, b->data, b->len - 1);
  body[b->len - 1] = '\0';
  snprintf(max, sizeof max, "%d", CLUSTER_INBOX_MAX);
  const char *xadd[] = {"XADD", inbox, "MAXLEN", "~", max, "*", "to", nick, "d", body};
  r = cmd0(10, xadd);
  free(body);
  return r;
}

static chat_buf *cl_rooms(void) {
  redisReply *rooms;
  const char *get[] = {"SMEMBERS", "chat:rooms"};
  if (cmd(&rooms, 2, get) != 0) return NULL;
  chat_sb sb;
  chat_sb_init(&sb);
  chat_sb_str(&sb, "{\"type\":\"rooms\",\"rooms\":[");
  int first = 1, failed = 0;
  for (size_t i = 0; i < rooms->elements && !failed; i++) {
    const char *room = rooms->element[i]->str;
    chat_sb members;
    chat_sb_init(&members);
    if (chat_cluster_members(room, &members) != 0) {
      failed = 1;
    } else if (members.len > 0) {
      /* Count the nicks: one string per comma-separated item. */
      int count = 0, in_str = 0;
      for (size_t c = 0; c < members.len; c++) {
        if (members.data[c] == '\\') {
          c++;
          continue;
        }
        if (members.data[c] == '"') {
          in_str = !in_str;
          if (in_str) count++;
        }
      }
      if (!first) chat_sb_str(&sb, ",");
      first = 0;
      chat_sb_str(&sb, "{\"room\":");
      chat_sb_jstr(&sb, room);
      chat_sb_str(&sb, ",\"members\":");
      chat_sb_int(&sb, count);
      chat_sb_str(&sb, "}");
    }
    chat_sb_free(&members);
  }
  freeReplyObject(rooms);
  chat_sb_str(&sb, "]}");
  if (failed) {
    chat_sb_free(&sb);
    return NULL;
  }
  return chat_sb_finish(&sb);
}

static int cl_behaviour(weft_actor *self, void *state, void *msg, void *reply) {
  (void)self;
  (void)state;
  cl_msg *m = msg;
  cl_reply *out = reply;
  cl_reply none;
  if (out == NULL) out = &none;
  out->buf = NULL;
  switch (m->op) {
  case CL_CLAIM:
    out->result = cl_claim(m->nick);
    break;
  case CL_RELEASE: {
    char k[96];
    key(k, sizeof k, "nick", m->nick);
    const char *argv[] = {"EVAL", release_script, "1", k, cl.node};
    out->result = cmd0(5, argv);
    break;
  }
  case CL_DM:
    out->result = cl_dm(m->nick, m->buf);
    chat_buf_unref(m->buf);
    break;
  case CL_ROOMS:
    out->buf = cl_rooms();
    out->result = out->buf != NULL ? 0 : UV_ECONNRESET;
    break;
  }
  return 0;
}

static int cl_start(weft_actor *self, void *state, void *arg) {
  (void)self;
  (void)state;
  (void)arg;
  cl.tasks = weft_group_open(WEFT_COLLECT);
  if (cl.tasks == NULL) return UV_ENOMEM;
  weft_spawn(cl.tasks, supervisor_task, NULL);
  weft_spawn(cl.tasks, reader_task, NULL);
  return 0;
}

static void cl_stop(weft_actor *self, void *state, int why) {
  (void)self;
  (void)state;
  (void)why;
  cl.stopping = 1;
  weft_group_cancel(cl.tasks);
  weft_scope s;
  weft_scope_enter_shielded(&s, 5000);
  weft_group_join(cl.tasks);
  weft_scope_leave(&s);
  cl.tasks = NULL;
  __atomic_store_n(&cl.up, 0, __ATOMIC_RELEASE);
  weft_redis_close(cl.cmd);
  weft_redis_close(cl.rd);
  cl.cmd = cl.rd = NULL;
}

int chat_cluster_start(weft_group *g, const char *host_port, char *why,
                       size_t why_len) {
  app_addr addr;
  if (app_addr_parse(host_port, &addr, why, why_len) != 0) return UV_EINVAL;
  snprintf(cl.host, sizeof cl.host, "%s", addr.host);
  cl.port = addr.port;
  unsigned seed = (unsigned)(time(NULL) ^ (getpid() << 16) ^ (uintptr_t)&cl);
  srand(seed);
  FILE *f = fopen("/dev/urandom", "rb");
  unsigned char raw[8] = {0};
  if (f == NULL || fread(raw, 1, sizeof raw, f) != sizeof raw)
    for (size_t i = 0; i < sizeof raw; i++) raw[i] = (unsigned char)rand(); /* NOLINT(cert-msc30-c,cert-msc50-cpp): a node id when /dev/urandom fails, not a secret */
  if (f != NULL) fclose(f);
  for (size_t i = 0; i < sizeof raw; i++) snprintf(cl.node + 2 * i, 3, "%02x", raw[i]);
  int64_t hist = chat_srv->cfg->history;
  cl.max_len = hist > 1000 ? hist : 1000;
  weft_actor_def def = {.name = "cluster",
                        .msg_size = sizeof(cl_msg),
                        .reply_size = sizeof(cl_reply),
                        .mailbox = 1024,
                        .executor = 1,
                        .behaviour = cl_behaviour,
                        .start = cl_start,
                        .stop = cl_stop};
  int r = weft_actor_spawn(g, &def, &cl.actor);
  if (r != 0) snprintf(why, why_len, "cannot start: %s", weft_strerror(r));
  return r;
}

void chat_cluster_stop(void) {
  if (cl.actor != NULL) weft_actor_stop(cl.actor);
}

void chat_cluster_free(void) {
  if (cl.actor != NULL) weft_actor_free(cl.actor);
  cl.actor = NULL;
  for (size_t i = 0; i < cl.n_rooms; i++) {
    for (size_t m = 0; m < cl.rooms[i].n_members; m++) free(cl.rooms[i].members[m]);
    free(cl.rooms[i].members);
  }
  free(cl.rooms);
  cl.rooms = NULL;
  cl.n_rooms = cl.cap_rooms = 0;
}

static int cl_ask(cl_msg *m, cl_reply *out) {
  if (cl.actor == NULL || !chat_cluster_up()) return UV_ECONNRESET;
  int r = weft_actor_ask(cl.actor, m, out, 5000);
  return r != 0 ? r : out->result;
}

int chat_cluster_claim(const char *nick) {
  cl_msg m = {.op = CL_CLAIM};
  snprintf(m.nick, sizeof m.nick, "%s", nick);
  cl_reply out;
  return cl_ask(&m, &out);
}

void chat_cluster_release(const char *nick) {
  cl_msg m = {.op = CL_RELEASE};
  snprintf(m.nick, sizeof m.nick, "%s", nick);
  if (cl.actor != NULL && chat_cluster_up()) weft_actor_tell(cl.actor, &m);
}

int chat_cluster_dm(const char *nick, chat_buf *b) {
  cl_msg m = {.op = CL_DM, .buf = b};
  snprintf(m.nick, sizeof m.nick, "%s", nick);
  chat_buf_ref(b);
  cl_reply out;
  if (cl.actor == NULL || !chat_cluster_up()) {
    chat_buf_unref(b);
    return UV_ECONNRESET;
  }
  int r = weft_actor_ask(cl.actor, &m, &out, 5000);
  return r != 0 ? r : out.result;
}

chat_buf *chat_cluster_rooms(void) {
  cl_msg m = {.op = CL_ROOMS};
  cl_reply out = {0, NULL};
  if (cl_ask(&m, &out) != 0) return NULL;
  return out.buf;
}

#else /* a build without the weft_redis module */

int chat_cluster_start(weft_group *g, const char *host_port, char *why,
                       size_t why_len) {
  (void)g;
  snprintf(why, why_len,
           "%s: this build has no Redis module (weft_redis); install "
           "libhiredis-dev and build again",
           host_port);
  return UV_ENOTSUP;
}
void chat_cluster_stop(void) {}
void chat_cluster_free(void) {}
int chat_cluster_up(void) { return 0; }
int chat_cluster_room_open(const char *room, size_t max, int64_t *last_seq,
                           chat_buf ***msgs, size_t *n) {
  (void)room, (void)max, (void)last_seq, (void)msgs, (void)n;
  return UV_ENOTSUP;
}
void chat_cluster_room_close(const char *room) { (void)room; }
int chat_cluster_say(const char *room, const char *from, const char *text,
                     int64_t *seq) {
  (void)room, (void)from, (void)text, (void)seq;
  return UV_ENOTSUP;
}
void chat_cluster_presence(const char *room, const char *nick, int join) {
  (void)room, (void)nick, (void)join;
}
int chat_cluster_members(const char *room, chat_sb *sb) {
  (void)room, (void)sb;
  return UV_ENOTSUP;
}
int chat_cluster_claim(const char *nick) {
  (void)nick;
  return UV_ENOTSUP;
}
void chat_cluster_release(const char *nick) { (void)nick; }
int chat_cluster_dm(const char *nick, chat_buf *b) {
  (void)nick, (void)b;
  return UV_ENOTSUP;
}
chat_buf *chat_cluster_rooms(void) { return NULL; }
#endif
