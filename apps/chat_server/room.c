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
#include "cluster.h"
#include "map.h"
#include "store.h"

/* A room as the directory knows it. */
typedef struct room_entry {
  char name[CHAT_ROOM_MAX + 1];
  weft_actor *actor;
  int members; /* atomic: written by the room, read by "rooms" */
  int64_t seq; /* atomic: the room's last seq, read by the cluster */
} room_entry;

enum {
  ROOM_JOIN,
  ROOM_LEAVE,
  ROOM_GONE,
  ROOM_SAY,
  ROOM_HISTORY,
  ROOM_COMMITTED, /* the store's commit ended */
  ROOM_REMOTE,    /* a message read from the cluster's stream */
  ROOM_PRESENCE   /* another node's presence event */
};

/* A message said in a room with a store, from the say to the ack. */
typedef struct room_item {
  chat_conn *conn; /* the sender (a reference) */
  char *text;      /* until the message is encoded */
  char *id;
  chat_buf *buf;   /* the encoded message, with its seq */
} room_item;

/* Messages committed together. */
typedef struct room_batch {
  room_item *items;
  size_t n;
  int result; /* of the commit */
} room_batch;

/* Messages in one commit at most. */
#define ROOM_BATCH_MAX 1024

/* A room's mailbox message. */
typedef struct room_msg {
  int op;
  chat_conn *conn;    /* a reference travels with the message */
  char *text;         /* ROOM_SAY */
  char *id;           /* ROOM_SAY, may be NULL */
  int64_t since;      /* ROOM_JOIN, ROOM_HISTORY */
  room_batch *batch;  /* ROOM_COMMITTED */
  chat_buf *buf;      /* ROOM_REMOTE, ROOM_PRESENCE: a reference */
} room_msg;

/* With a cluster: a say appended to the stream, waiting to be read back
 * before it is acked. */
typedef struct room_pending_ack {
  int64_t seq;
  chat_conn *conn;
  char *id;
} room_pending_ack;

/* The actor's state. */
typedef struct room_state {
  room_entry *entry;
  weft_actor *self;
  chat_conn **members;
  size_t n_members, cap_members;
  int64_t seq;     /* the last seq given (with a store: committed) */
  int64_t seq_queued; /* with a store: the last seq given or read, not
                         yet committed, or seq */
  chat_buf **hist; /* a ring of the last cfg->history messages */
  size_t hist_cap, hist_start, hist_len;
  /* With a store: says waiting for the commit in progress to end, and the
   * committer task that runs the commits. */
  room_item *pending;
  size_t n_pending, cap_pending;
  int committing;
  weft_chan *to_committer; /* room_batch *, LOCAL */
  weft_group *committer;
  /* With a cluster: says waiting for their own message to come back. */
  room_pending_ack *acks;
  size_t n_acks, cap_acks;
  int clustered;
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

/* Messages in one answer read from the store, at most, and their bytes
 * (past the first message). */
#define ROOM_HISTORY_PAGE 1000
#define ROOM_HISTORY_BYTES (1024 * 1024)

/* Appends the messages with seq > since, oldest first, as a JSON array:
 * from the room's window (the last --history messages), or, with a store,
 * from SQLite when since is older than the window: at most a page, and
 * *more is set when more follow (the client asks again from the last seq
 * it got). A since below 0 (a join without one) means the window. Only
 * messages the members were sent are read (seq <= st->seq): one that is
 * committed but not yet delivered comes live, not in history. The room
 * waits for the read, which takes a read transaction of SQLite's thread:
 * only clients catching up on older messages cost that. */
static void room_history_array(room_state *st, chat_sb *sb, int64_t since,
                               int *more) {
  *more = 0;
  int64_t oldest = st->hist_len > 0 ? st->hist[st->hist_start]->seq : st->seq + 1;
  if (chat_srv->store != NULL && since >= 0 && since + 1 < oldest &&
      since < st->seq) {
    chat_buf **msgs = NULL;
    size_t n = 0;
    int r = chat_store_range(chat_srv->store, st->entry->name, since, st->seq,
                             ROOM_HISTORY_PAGE, ROOM_HISTORY_BYTES, &msgs, &n,
                             more);
    /* A cluster node's store holds what it archived, which may have gaps
     * (the times it was down): only a run without one is answered, and
     * the rest comes from the window. */
    size_t run = 0;
    while (r == 0 && run < n && msgs[run]->seq == since + 1 + (int64_t)run) run++;
    if (r == 0 && run < n) {
      for (size_t i = run; i < n; i++) chat_buf_unref(msgs[i]);
      n = run;
      *more = 1;
    }
    if (r == 0 && n == 0) {
      free(msgs);
      *more = 0;
      r = UV_ENOENT; /* not archived here: the window */
    }
    if (r == 0) {
      chat_sb_str(sb, "[");
      for (size_t i = 0; i < n; i++) {
        if (i > 0) chat_sb_str(sb, ",");
        chat_sb_add(sb, msgs[i]->data, msgs[i]->len - 1);
        chat_buf_unref(msgs[i]);
      }
      free(msgs);
      chat_sb_str(sb, "]");
      return;
    }
    if (r != UV_ENOENT)
      weft_log(WEFT_LOG_ERROR, "cannot read history", "room=\"%s\" error=%s",
               st->entry->name, weft_strerror(r));
  }
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
    if (st->clustered) chat_cluster_presence(st->entry->name, chat_conn_nick(c), 1);
  }
  chat_sb sb;
  chat_sb_init(&sb);
  chat_sb_str(&sb, "{\"type\":\"joined\",\"room\":");
  chat_sb_jstr(&sb, st->entry->name);
  chat_sb_str(&sb, ",\"members\":[");
  if (!st->clustered || !chat_cluster_up() ||
      chat_cluster_members(st->entry->name, &sb) != 0) {
    for (size_t i = 0; i < st->n_members; i++) {
      if (i > 0) chat_sb_str(&sb, ",");
      chat_sb_jstr(&sb, chat_conn_nick(st->members[i]));
    }
  }
  chat_sb_str(&sb, "],\"history\":");
  int more;
  room_history_array(st, &sb, since, &more);
  if (more) chat_sb_str(&sb, ",\"more\":true");
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
    if (st->clustered) chat_cluster_presence(st->entry->name, chat_conn_nick(c), 0);
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

/* Encodes a room message. NULL when out of memory. */
static chat_buf *room_encode(room_state *st, const char *from, const char *text,
                             int64_t seq) {
  chat_sb sb;
  chat_sb_init(&sb);
  chat_sb_str(&sb, "{\"type\":\"message\",\"room\":");
  chat_sb_jstr(&sb, st->entry->name);
  chat_sb_str(&sb, ",\"from\":");
  chat_sb_jstr(&sb, from);
  chat_sb_str(&sb, ",\"text\":");
  chat_sb_jstr(&sb, text);
  chat_sb_str(&sb, ",\"seq\":");
  chat_sb_int(&sb, seq);
  chat_sb_str(&sb, ",\"ts\":");
  chat_sb_int(&sb, chat_wall_ms());
  chat_sb_str(&sb, "}");
  chat_buf *b = chat_sb_finish(&sb);
  if (b != NULL) b->seq = seq;
  return b;
}

static void room_ack(chat_conn *c, const char *id, int64_t seq) {
  chat_sb sb;
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

/* A message's life after its seq is final: history, members, the ack. */
static void room_deliver(room_state *st, chat_conn *sender, const char *id,
                         chat_buf *b) {
  __atomic_store_n(&st->entry->seq, b->seq, __ATOMIC_RELAXED);
  room_remember(st, b);
  room_fanout(st, b);
  app_counter_add(chat_srv->messages, 1);
  weft_counter_inc(chat_srv->m_messages);
  if (sender != NULL) room_ack(sender, id, b->seq);
}

static void room_commit_start(room_state *st);

/* Queues a say (text: encoded at the commit) or a message read from the
 * cluster (b, with its seq: a reference is taken) for the next commit;
 * sender's reference and id go with it. Returns 0, or -1 out of memory. */
static int room_pending_add(room_state *st, chat_conn *sender, char *text,
                            char *id, chat_buf *b) {
  if (st->n_pending == st->cap_pending) {
    size_t cap = st->cap_pending ? st->cap_pending * 2 : 64;
    room_item *grown = realloc(st->pending, cap * sizeof *grown);
    if (grown == NULL) return -1;
    st->pending = grown;
    st->cap_pending = cap;
  }
  if (b != NULL) chat_buf_ref(b);
  st->pending[st->n_pending++] =
      (room_item){.conn = sender, .text = text, .id = id, .buf = b};
  return 0;
}

/* A message read from the cluster's stream (every node's, this one's
 * included), in stream order: delivered once, and acked to its sender when
 * the sender is here. */
static void room_remote(room_state *st, chat_buf *b) {
  chat_conn *sender = NULL;
  char *id = NULL;
  for (size_t i = 0; i < st->n_acks; i++) {
    if (st->acks[i].seq == b->seq) {
      sender = st->acks[i].conn;
      id = st->acks[i].id;
      st->acks[i] = st->acks[--st->n_acks];
      break;
    }
  }
  if (chat_srv->store != NULL && b->seq > st->seq_queued) {
    /* With a store, this node commits the message before its members (and
     * its sender) get it. */
    if (room_pending_add(st, sender, NULL, id, b) == 0) {
      st->seq_queued = b->seq;
      if (!st->committing) room_commit_start(st);
      return; /* the item holds sender and id now */
    }
  } else if (chat_srv->store == NULL && b->seq > st->seq) {
    st->seq = b->seq;
    room_deliver(st, sender, id, b);
  } else if (sender != NULL) {
    /* Numbered by this node while Redis was away, then read back. */
    room_ack(sender, id, b->seq);
  }
  if (sender != NULL) chat_conn_unref(sender);
  free(id);
}

static void room_batch_free(room_batch *batch) {
  for (size_t i = 0; i < batch->n; i++) {
    chat_buf_unref(batch->items[i].buf);
    if (batch->items[i].conn != NULL) chat_conn_unref(batch->items[i].conn);
    free(batch->items[i].id);
  }
  free(batch->items);
  free(batch);
}

/* Starts a commit of the pending says (the store's path): gives them the
 * next seqs, encodes them and hands them to the committer. Messages read
 * from the cluster come encoded, with their seqs. */
static void room_commit_start(room_state *st) {
  size_t n = st->n_pending < ROOM_BATCH_MAX ? st->n_pending : ROOM_BATCH_MAX;
  room_batch *batch = calloc(1, sizeof *batch);
  room_item *items = batch ? malloc(n * sizeof *items) : NULL;
  if (items == NULL) {
    free(batch);
    return; /* tried again at the next say */
  }
  memcpy(items, st->pending, n * sizeof *items);
  memmove(st->pending, st->pending + n, (st->n_pending - n) * sizeof *items);
  st->n_pending -= n;
  batch->items = items;
  for (size_t i = 0; i < n; i++) {
    room_item *it = &items[i];
    if (it->buf == NULL) {
      it->buf = room_encode(st, chat_conn_nick(it->conn), it->text,
                            st->seq_queued + 1);
      if (it->buf != NULL) st->seq_queued++;
    }
    free(it->text);
    it->text = NULL;
    if (it->buf == NULL) {
      chat_conn_error(it->conn, "bad_request", "the server is out of memory");
      chat_conn_unref(it->conn);
      free(it->id);
      continue;
    }
    items[batch->n++] = *it;
  }
  if (weft_chan_try_send(st->to_committer, &batch) != 0) {
    /* The committer has stopped (the room is stopping): never acked. */
    room_batch_free(batch);
    return;
  }
  st->committing = 1;
}

/* The end of a commit: the batch's messages go out, or their senders hear
 * that they could not be stored. */
static void room_committed(room_state *st, room_batch *batch) {
  for (size_t i = 0; i < batch->n; i++) {
    room_item *it = &batch->items[i];
    if (batch->result == 0) {
      st->seq = it->buf->seq;
      room_deliver(st, it->conn, it->id, it->buf);
    } else if (st->clustered && it->buf->seq > st->seq) {
      /* The cluster has it: members get it; its sender gets no ack. */
      st->seq = it->buf->seq;
      room_deliver(st, NULL, NULL, it->buf);
      if (it->conn != NULL)
        chat_conn_error(it->conn, "bad_request",
                        "the message could not be stored here; it was sent");
    } else if (it->conn != NULL) {
      chat_conn_error(it->conn, "bad_request",
                      "the message could not be stored; it was not sent");
    }
    chat_buf_unref(it->buf);
    if (it->conn != NULL) chat_conn_unref(it->conn);
    free(it->id);
  }
  /* The seqs of messages that were not stored are given again. */
  if (batch->result != 0 && st->seq_queued > st->seq && st->n_pending == 0)
    st->seq_queued = st->seq;
  if (batch->result != 0)
    weft_log(WEFT_LOG_ERROR, "cannot store messages", "room=\"%s\" n=%zu error=%s",
             st->entry->name, batch->n, weft_strerror(batch->result));
  free(batch->items);
  free(batch);
  st->committing = 0;
  if (st->n_pending > 0) room_commit_start(st);
}

/* The committer task of a room with a store: commits each batch, then
 * tells the room. */
static int room_committer(void *arg) {
  room_state *st = arg;
  weft_task_set_name("committer");
  room_batch *batch;
  while (weft_chan_recv(st->to_committer, &batch) == 0) {
    chat_buf **bufs = malloc((batch->n ? batch->n : 1) * sizeof *bufs);
    if (bufs == NULL) {
      batch->result = UV_ENOMEM;
    } else {
      for (size_t i = 0; i < batch->n; i++) bufs[i] = batch->items[i].buf;
      batch->result = chat_store_append(chat_srv->store, st->entry->name, bufs,
                                        batch->n);
      free(bufs);
    }
    room_msg m = {.op = ROOM_COMMITTED, .batch = batch};
    /* When the room has stopped, the messages may be stored, never acked. */
    if (weft_actor_tell(st->self, &m) != 0) room_batch_free(batch);
  }
  return 0;
}

/* A say: the text and id become the room's (the message's are cleared). */
static void room_say(room_state *st, chat_conn *c, room_msg *m) {
  int64_t seq;
  if (st->clustered && chat_cluster_up() &&
      st->n_acks < (size_t)chat_srv->cfg->max_queue &&
      chat_cluster_say(st->entry->name, chat_conn_nick(c), m->text, &seq) == 0) {
    if (st->n_acks == st->cap_acks) {
      size_t cap = st->cap_acks ? st->cap_acks * 2 : 16;
      room_pending_ack *grown = realloc(st->acks, cap * sizeof *grown);
      if (grown == NULL) return; /* sent, never acked */
      st->acks = grown;
      st->cap_acks = cap;
    }
    chat_conn_ref(c);
    st->acks[st->n_acks++] = (room_pending_ack){.seq = seq, .conn = c, .id = m->id};
    m->id = NULL;
    return;
  }
  if (chat_srv->store == NULL) {
    chat_buf *b = room_encode(st, chat_conn_nick(c), m->text, st->seq + 1);
    if (b == NULL) {
      chat_conn_error(c, "bad_request", "the server is out of memory");
      return;
    }
    st->seq++;
    room_deliver(st, c, m->id, b);
    chat_buf_unref(b);
    return;
  }
  if (room_pending_add(st, c, m->text, m->id, NULL) != 0) {
    chat_conn_error(c, "bad_request", "the server is out of memory");
    return;
  }
  chat_conn_ref(c);
  m->text = NULL;
  m->id = NULL;
  if (!st->committing) room_commit_start(st);
}

static void room_history(room_state *st, chat_conn *c, int64_t since) {
  chat_sb sb;
  chat_sb_init(&sb);
  chat_sb_str(&sb, "{\"type\":\"history\",\"room\":");
  chat_sb_jstr(&sb, st->entry->name);
  chat_sb_str(&sb, ",\"messages\":");
  int more;
  room_history_array(st, &sb, since, &more);
  if (more) chat_sb_str(&sb, ",\"more\":true");
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
    room_say(st, m->conn, m);
    break;
  case ROOM_HISTORY:
    room_history(st, m->conn, m->since);
    break;
  case ROOM_COMMITTED:
    room_committed(st, m->batch);
    break;
  case ROOM_REMOTE:
    room_remote(st, m->buf);
    chat_buf_unref(m->buf);
    break;
  case ROOM_PRESENCE:
    room_fanout(st, m->buf);
    chat_buf_unref(m->buf);
    break;
  }
  free(m->text);
  free(m->id);
  if (m->conn != NULL) chat_conn_unref(m->conn);
  return 0;
}

static int room_start(weft_actor *self, void *state, void *arg) {
  room_state *st = state;
  st->entry = arg;
  st->self = self;
  st->hist_cap = (size_t)chat_srv->cfg->history;
  if (st->hist_cap > 0) {
    st->hist = calloc(st->hist_cap, sizeof *st->hist);
    if (st->hist == NULL) return UV_ENOMEM;
  }
  chat_buf **msgs = NULL;
  size_t n = 0;
  int r = UV_ENOTCONN;
  if (chat_srv->cluster) {
    st->clustered = 1;
    r = chat_cluster_room_open(st->entry->name, st->hist_cap, &st->seq, &msgs,
                               &n);
    /* With a store too: what the stream still holds goes into this node's
     * store (rows it has already are kept), so that its archive of the
     * room runs on without a gap from here. */
    if (r == 0 && n > 0 && chat_srv->store != NULL &&
        chat_store_append(chat_srv->store, st->entry->name, msgs, n) != 0)
      weft_log(WEFT_LOG_WARN, "cannot store a room's recent messages",
               "room=\"%s\"", st->entry->name);
  }
  if (r != 0 && chat_srv->store != NULL) {
    /* The room goes on from its last stored seq, with its stored history
     * (a cluster node that cannot reach Redis: from what it archived). */
    for (size_t i = 0; i < n; i++) chat_buf_unref(msgs[i]);
    free(msgs);
    msgs = NULL;
    n = 0;
    r = chat_store_load(chat_srv->store, st->entry->name, st->hist_cap,
                        &st->seq, &msgs, &n);
    if (r != 0) {
      weft_log(WEFT_LOG_ERROR, "cannot load a room", "room=\"%s\" error=%s",
               st->entry->name, weft_strerror(r));
      return r;
    }
  }
  for (size_t i = 0; i < n; i++) {
    room_remember(st, msgs[i]);
    chat_buf_unref(msgs[i]);
  }
  free(msgs);
  st->seq_queued = st->seq;
  __atomic_store_n(&st->entry->seq, st->seq, __ATOMIC_RELAXED);
  if (chat_srv->store == NULL) return 0;
  st->to_committer = weft_chan_new(sizeof(room_batch *), 1, WEFT_CHAN_LOCAL);
  st->committer = weft_group_open(WEFT_COLLECT);
  if (st->to_committer == NULL || st->committer == NULL ||
      weft_spawn(st->committer, room_committer, st) != 0)
    return UV_ENOMEM;
  return 0;
}

static void room_stop(weft_actor *self, void *state, int why) {
  (void)self;
  (void)why;
  room_state *st = state;
  if (st->committer != NULL) {
    /* A commit in progress ends (a queued write is not taken back); its
     * messages are stored but not acked. */
    weft_chan_close(st->to_committer);
    weft_scope s;
    weft_scope_enter_shielded(&s, 30000);
    weft_group_join(st->committer);
    weft_scope_leave(&s);
  }
  if (st->to_committer != NULL) {
    room_batch *left;
    while (weft_chan_try_recv(st->to_committer, &left) == 0)
      room_batch_free(left);
    weft_chan_free(st->to_committer);
  }
  if (st->clustered) chat_cluster_room_close(st->entry->name);
  for (size_t i = 0; i < st->n_acks; i++) {
    chat_conn_unref(st->acks[i].conn);
    free(st->acks[i].id);
  }
  free(st->acks);
  for (size_t i = 0; i < st->n_pending; i++) {
    if (st->pending[i].conn != NULL) chat_conn_unref(st->pending[i].conn);
    chat_buf_unref(st->pending[i].buf);
    free(st->pending[i].text);
    free(st->pending[i].id);
  }
  free(st->pending);
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
                        /* With a cluster, rooms live where its Redis
                         * connections do. */
                        .executor = chat_srv->cluster ? 1 : WEFT_EXEC_NEXT,
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

void chat_room_remote(const char *name, chat_buf *b, int presence) {
  weft_actor *room = chat_room_get(name, 0);
  room_msg m = {.op = presence ? ROOM_PRESENCE : ROOM_REMOTE, .buf = b};
  if (room == NULL || weft_actor_tell(room, &m) != 0) chat_buf_unref(b);
}

int64_t chat_room_seq(const char *name) {
  pthread_mutex_lock(&dir_lock);
  room_entry *e = chat_map_get(&dir, name);
  int64_t seq = e != NULL ? __atomic_load_n(&e->seq, __ATOMIC_RELAXED) : 0;
  pthread_mutex_unlock(&dir_lock);
  return seq;
}
