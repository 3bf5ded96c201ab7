/* room.c: the room actor and the directory.
 *
 * A room's memory is bounded by --history messages (references to the
 * buffers its members were sent) and one pointer per member. The directory
 * is a map from names to rooms under one lock, read by every connection;
 * only the directory actor adds to it, so two connections that join a new
 * room at once get the same actor.
 */
#include "room.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "chat.h"
#include "map.h"

/* A room as the directory knows it. */
typedef struct room_entry {
  char name[CHAT_ROOM_MAX + 1];
  weft_actor *actor;
  int members; /* atomic: written by the room, read by "rooms" */
} room_entry;

enum { ROOM_JOIN, ROOM_LEAVE, ROOM_GONE, ROOM_SAY, ROOM_HISTORY };

/* A room's mailbox message. */
typedef struct room_msg {
  int op;
  chat_conn *conn; /* a reference travels with the message */
  char *text;      /* ROOM_SAY */
  char *id;        /* ROOM_SAY, may be NULL */
  int64_t since;   /* ROOM_JOIN, ROOM_HISTORY */
} room_msg;

/* The actor's state. */
typedef struct room_state {
  room_entry *entry;
  chat_conn **members;
  size_t n_members, cap_members;
  int64_t seq;
  chat_buf **hist; /* a ring of the last cfg->history messages */
  size_t hist_cap, hist_start, hist_len;
} room_state;

static pthread_mutex_t dir_lock = PTHREAD_MUTEX_INITIALIZER;
static chat_map dir;
static weft_actor *directory;
static weft_group *rooms_group; /* the directory's, for the rooms */

int chat_room_name_valid(const char *name) {
  size_t n = strlen(name);
  if (n == 0 || n > CHAT_ROOM_MAX) return 0;
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f) return 0;
  return chat_utf8_valid(name, n);
}

/* ---- The room actor -------------------------------------------------------- */

static int room_find(const room_state *st, const chat_conn *c) {
  for (size_t i = 0; i < st->n_members; i++)
    if (st->members[i] == c) return (int)i;
  return -1;
}

/* Queues b for every member. */
static void room_fanout(room_state *st, chat_buf *b) {
  for (size_t i = 0; i < st->n_members; i++) chat_conn_push(st->members[i], b);
  app_counter_add(chat_srv->delivered, st->n_members);
  weft_counter_add(chat_srv->m_delivered, st->n_members);
}

static void room_presence(room_state *st, const char *nick, const char *event) {
  chat_sb sb;
  chat_sb_init(&sb);
  chat_sb_str(&sb, "{\"type\":\"presence\",\"room\":");
  chat_sb_jstr(&sb, st->entry->name);
  chat_sb_str(&sb, ",\"nick\":");
  chat_sb_jstr(&sb, nick);
  chat_sb_str(&sb, ",\"event\":");
  chat_sb_jstr(&sb, event);
  chat_sb_str(&sb, "}");
  chat_buf *b = chat_sb_finish(&sb);
  if (b == NULL) return;
  room_fanout(st, b);
  chat_buf_unref(b);
}

/* Appends the history messages with seq > since, oldest first, as a JSON
 * array. */
static void room_history_array(room_state *st, chat_sb *sb, int64_t since) {
  chat_sb_str(sb, "[");
  int first = 1;
  for (size_t i = 0; i < st->hist_len; i++) {
    chat_buf *m = st->hist[(st->hist_start + i) % st->hist_cap];
    if (m->seq <= since) continue;
    if (!first) chat_sb_str(sb, ",");
    first = 0;
    chat_sb_add(sb, m->data, m->len - 1);
  }
  chat_sb_str(sb, "]");
}

static void room_remember(room_state *st, chat_buf *b) {
  if (st->hist_cap == 0) return;
  chat_buf_ref(b);
  if (st->hist_len < st->hist_cap) {
    st->hist[(st->hist_start + st->hist_len++) % st->hist_cap] = b;
    return;
  }
  chat_buf_unref(st->hist[st->hist_start]);
  st->hist[st->hist_start] = b;
  st->hist_start = (st->hist_start + 1) % st->hist_cap;
}

static void room_set_count(room_state *st) {
  __atomic_store_n(&st->entry->members, (int)st->n_members, __ATOMIC_RELAXED);
}

static void room_join(room_state *st, chat_conn *c, int64_t since) {
  if (room_find(st, c) < 0) {
    if (st->n_members == st->cap_members) {
      size_t cap = st->cap_members ? st->cap_members * 2 : 8;
      chat_conn **grown = realloc(st->members, cap * sizeof *grown);
      if (grown == NULL) {
        chat_conn_error(c, "bad_request", "the server is out of memory");
        return;
      }
      st->members = grown;
      st->cap_members = cap;
    }
    /* The others hear of the joiner before the joiner is a member. */
    room_presence(st, chat_conn_nick(c), "join");
    chat_conn_ref(c);
    st->members[st->n_members++] = c;
    room_set_count(st);
  }
  chat_sb sb;
  chat_sb_init(&sb);
  chat_sb_str(&sb, "{\"type\":\"joined\",\"room\":");
  chat_sb_jstr(&sb, st->entry->name);
  chat_sb_str(&sb, ",\"members\":[");
  for (size_t i = 0; i < st->n_members; i++) {
    if (i > 0) chat_sb_str(&sb, ",");
    chat_sb_jstr(&sb, chat_conn_nick(st->members[i]));
  }
  chat_sb_str(&sb, "],\"history\":");
  room_history_array(st, &sb, since);
  chat_sb_str(&sb, "}");
  chat_buf *b = chat_sb_finish(&sb);
  if (b != NULL) {
    chat_conn_push(c, b);
    chat_buf_unref(b);
  }
}

/* Removes c; says so to the others. reply: send "left" to c. */
static void room_leave(room_state *st, chat_conn *c, int reply) {
  int i = room_find(st, c);
  if (i >= 0) {
    st->members[i] = st->members[--st->n_members];
    room_set_count(st);
    room_presence(st, chat_conn_nick(c), "leave");
    chat_conn_unref(c);
  }
  if (!reply) return;
  chat_sb sb;
  chat_sb_init(&sb);
  chat_sb_str(&sb, "{\"type\":\"left\",\"room\":");
  chat_sb_jstr(&sb, st->entry->name);
  chat_sb_str(&sb, "}");
  chat_buf *b = chat_sb_finish(&sb);
  if (b != NULL) {
    chat_conn_push(c, b);
    chat_buf_unref(b);
  }
}

static void room_say(room_state *st, chat_conn *c, const char *text,
                     const char *id) {
  int64_t seq = ++st->seq;
  chat_sb sb;
  chat_sb_init(&sb);
  chat_sb_str(&sb, "{\"type\":\"message\",\"room\":");
  chat_sb_jstr(&sb, st->entry->name);
  chat_sb_str(&sb, ",\"from\":");
  chat_sb_jstr(&sb, chat_conn_nick(c));
  chat_sb_str(&sb, ",\"text\":");
  chat_sb_jstr(&sb, text);
  chat_sb_str(&sb, ",\"seq\":");
  chat_sb_int(&sb, seq);
  chat_sb_str(&sb, ",\"ts\":");
  chat_sb_int(&sb, chat_wall_ms());
  chat_sb_str(&sb, "}");
  chat_buf *b = chat_sb_finish(&sb);
  if (b == NULL) {
    st->seq--;
    chat_conn_error(c, "bad_request", "the server is out of memory");
    return;
  }
  b->seq = seq;
  room_remember(st, b);
  room_fanout(st, b);
  chat_buf_unref(b);
  app_counter_add(chat_srv->messages, 1);
  weft_counter_inc(chat_srv->m_messages);

  chat_sb_init(&sb);
  chat_sb_str(&sb, "{\"type\":\"ack\",");
  if (id != NULL) {
    chat_sb_str(&sb, "\"id\":");
    chat_sb_jstr(&sb, id);
    chat_sb_str(&sb, ",");
  }
  chat_sb_str(&sb, "\"seq\":");
  chat_sb_int(&sb, seq);
  chat_sb_str(&sb, "}");
  chat_buf *ack = chat_sb_finish(&sb);
  if (ack != NULL) {
    chat_conn_push(c, ack);
    chat_buf_unref(ack);
  }
}

static void room_history(room_state *st, chat_conn *c, int64_t since) {
  chat_sb sb;
  chat_sb_init(&sb);
  chat_sb_str(&sb, "{\"type\":\"history\",\"room\":");
  chat_sb_jstr(&sb, st->entry->name);
  chat_sb_str(&sb, ",\"messages\":");
  room_history_array(st, &sb, since);
  chat_sb_str(&sb, "}");
  chat_buf *b = chat_sb_finish(&sb);
  if (b != NULL) {
    chat_conn_push(c, b);
    chat_buf_unref(b);
  }
}

static int room_behaviour(weft_actor *self, void *state, void *msg,
                          void *reply) {
  (void)self;
  (void)reply;
  room_state *st = state;
  room_msg *m = msg;
  switch (m->op) {
  case ROOM_JOIN:
    room_join(st, m->conn, m->since);
    break;
  case ROOM_LEAVE:
    room_leave(st, m->conn, 1);
    break;
  case ROOM_GONE:
    room_leave(st, m->conn, 0);
    break;
  case ROOM_SAY:
    room_say(st, m->conn, m->text, m->id);
    break;
  case ROOM_HISTORY:
    room_history(st, m->conn, m->since);
    break;
  }
  free(m->text);
  free(m->id);
  chat_conn_unref(m->conn);
  return 0;
}

static int room_start(weft_actor *self, void *state, void *arg) {
  (void)self;
  room_state *st = state;
  st->entry = arg;
  st->hist_cap = (size_t)chat_srv->cfg->history;
  if (st->hist_cap > 0) {
    st->hist = calloc(st->hist_cap, sizeof *st->hist);
    if (st->hist == NULL) return UV_ENOMEM;
  }
  return 0;
}

static void room_stop(weft_actor *self, void *state, int why) {
  (void)self;
  (void)why;
  room_state *st = state;
  for (size_t i = 0; i < st->n_members; i++) chat_conn_unref(st->members[i]);
  free(st->members);
  for (size_t i = 0; i < st->hist_len; i++)
    chat_buf_unref(st->hist[(st->hist_start + i) % st->hist_cap]);
  free(st->hist);
  memset(st, 0, sizeof *st);
}

static int room_tell(weft_actor *room, int op, chat_conn *c, char *text,
                     char *id, int64_t since) {
  room_msg m = {.op = op, .conn = c, .text = text, .id = id, .since = since};
  chat_conn_ref(c);
  int r = weft_actor_tell(room, &m);
  if (r != 0) {
    chat_conn_unref(c);
    free(text);
    free(id);
  }
  return r;
}

int chat_room_join(weft_actor *room, chat_conn *c, int64_t since) {
  return room_tell(room, ROOM_JOIN, c, NULL, NULL, since);
}
int chat_room_leave(weft_actor *room, chat_conn *c) {
  return room_tell(room, ROOM_LEAVE, c, NULL, NULL, 0);
}
int chat_room_gone(weft_actor *room, chat_conn *c) {
  return room_tell(room, ROOM_GONE, c, NULL, NULL, 0);
}
int chat_room_say(weft_actor *room, chat_conn *c, char *text, char *id) {
  return room_tell(room, ROOM_SAY, c, text, id, 0);
}
int chat_room_history(weft_actor *room, chat_conn *c, int64_t since) {
  return room_tell(room, ROOM_HISTORY, c, NULL, NULL, since);
}

/* ---- The directory ----------------------------------------------------------- */

typedef struct dir_msg {
  char name[CHAT_ROOM_MAX + 1];
} dir_msg;

typedef struct dir_reply {
  weft_actor *actor;
} dir_reply;

static int dir_start(weft_actor *self, void *state, void *arg) {
  (void)self;
  (void)state;
  (void)arg;
  rooms_group = weft_group_open(WEFT_COLLECT);
  return rooms_group != NULL ? 0 : UV_ENOMEM;
}

static void dir_stop_room(const char *key, void *value, void *arg) {
  (void)key;
  (void)arg;
  room_entry *e = value;
  weft_actor_stop(e->actor);
}

static void dir_stop(weft_actor *self, void *state, int why) {
  (void)self;
  (void)state;
  (void)why;
  pthread_mutex_lock(&dir_lock);
  chat_map_each(&dir, dir_stop_room, NULL);
  pthread_mutex_unlock(&dir_lock);
  /* Rooms end once their mailboxes are handled; bounded all the same. */
  weft_scope s;
  weft_scope_enter_shielded(&s, 10000);
  weft_group_join(rooms_group);
  weft_scope_leave(&s);
  rooms_group = NULL;
}

/* Makes the room of msg unless it exists; replies with its actor. */
static int dir_behaviour(weft_actor *self, void *state, void *msg,
                         void *reply) {
  (void)self;
  (void)state;
  dir_msg *m = msg;
  dir_reply *out = reply;
  out->actor = NULL;
  pthread_mutex_lock(&dir_lock);
  room_entry *e = chat_map_get(&dir, m->name);
  pthread_mutex_unlock(&dir_lock);
  if (e != NULL) {
    out->actor = e->actor;
    return 0;
  }
  e = calloc(1, sizeof *e);
  if (e == NULL) return 0;
  memcpy(e->name, m->name, sizeof e->name);
  char task_name[80];
  snprintf(task_name, sizeof task_name, "room %s", e->name);
  weft_actor_def def = {.name = task_name,
                        .msg_size = sizeof(room_msg),
                        .mailbox = 1024,
                        .state_size = sizeof(room_state),
                        .executor = WEFT_EXEC_NEXT,
                        .behaviour = room_behaviour,
                        .start = room_start,
                        .stop = room_stop,
                        .arg = e};
  if (weft_actor_spawn(rooms_group, &def, &e->actor) != 0) {
    free(e);
    return 0;
  }
  pthread_mutex_lock(&dir_lock);
  int r = chat_map_put(&dir, e->name, e);
  pthread_mutex_unlock(&dir_lock);
  if (r != 0) {
    /* Out of memory: the room stops at once. Its entry stays allocated,
     * since the actor's stop hook may still read it. */
    weft_actor_stop(e->actor);
    return 0;
  }
  weft_gauge_add(chat_srv->m_rooms, 1);
  out->actor = e->actor;
  return 0;
}

int chat_rooms_start(weft_group *g) {
  weft_actor_def def = {.name = "directory",
                        .msg_size = sizeof(dir_msg),
                        .reply_size = sizeof(dir_reply),
                        .mailbox = 256,
                        .behaviour = dir_behaviour,
                        .start = dir_start,
                        .stop = dir_stop};
  return weft_actor_spawn(g, &def, &directory);
}

void chat_rooms_stop(void) {
  if (directory != NULL) weft_actor_stop(directory);
}

static void dir_free_room(const char *key, void *value, void *arg) {
  (void)key;
  (void)arg;
  room_entry *e = value;
  weft_actor_free(e->actor);
  free(e);
}

void chat_rooms_free(void) {
  pthread_mutex_lock(&dir_lock);
  chat_map_each(&dir, dir_free_room, NULL);
  chat_map_free(&dir);
  pthread_mutex_unlock(&dir_lock);
  if (directory != NULL) weft_actor_free(directory);
  directory = NULL;
}

weft_actor *chat_room_get(const char *name, int create) {
  pthread_mutex_lock(&dir_lock);
  room_entry *e = chat_map_get(&dir, name);
  pthread_mutex_unlock(&dir_lock);
  if (e != NULL) return e->actor;
  if (!create || directory == NULL) return NULL;
  dir_msg m;
  memset(&m, 0, sizeof m);
  snprintf(m.name, sizeof m.name, "%s", name);
  dir_reply out = {NULL};
  if (weft_actor_ask(directory, &m, &out, 10000) != 0) return NULL;
  return out.actor;
}

typedef struct list_ctx {
  chat_sb *sb;
  int first;
} list_ctx;

static void list_room(const char *key, void *value, void *arg) {
  list_ctx *lc = arg;
  room_entry *e = value;
  int n = __atomic_load_n(&e->members, __ATOMIC_RELAXED);
  if (n == 0) return;
  if (!lc->first) chat_sb_str(lc->sb, ",");
  lc->first = 0;
  chat_sb_str(lc->sb, "{\"room\":");
  chat_sb_jstr(lc->sb, key);
  chat_sb_str(lc->sb, ",\"members\":");
  chat_sb_int(lc->sb, n);
  chat_sb_str(lc->sb, "}");
}

chat_buf *chat_rooms_list(void) {
  chat_sb sb;
  chat_sb_init(&sb);
  chat_sb_str(&sb, "{\"type\":\"rooms\",\"rooms\":[");
  list_ctx lc = {&sb, 1};
  pthread_mutex_lock(&dir_lock);
  chat_map_each(&dir, list_room, &lc);
  pthread_mutex_unlock(&dir_lock);
  chat_sb_str(&sb, "]}");
  return chat_sb_finish(&sb);
}

int64_t chat_rooms_count(void) {
  pthread_mutex_lock(&dir_lock);
  int64_t n = (int64_t)dir.count;
  pthread_mutex_unlock(&dir_lock);
  return n;
}
