/* conn.c: a connection's reader, writer and outbound queue.
 *
 * Memory per connection: the reader's line buffer grows with the longest
 * line seen, up to --max-line + 1 bytes, and starts at 1 KiB; the outbound
 * queue holds at most --max-queue references to shared buffers (plus one
 * final message: an error that closes, or bye), and grows only as far as
 * it is used.
 *
 * Cut-off. A producer (a room on any executor) that finds the queue full
 * drops what it holds, queues the slow_consumer error as the last message
 * and hands the connection to its executor's janitor, which gives the
 * writer's write in progress CHAT_CUT_GRACE_MS to finish. A reader that
 * wakes up in time gets the error; one that does not is closed.
 *
 * Ending. The writer ends after a final message (closing the socket's
 * sending side, or the WebSocket with a close frame), or when a write
 * fails; it then cancels the reader. The reader ends at end of stream, on
 * an error, on the idle timeout, or when the server stops; it then leaves
 * its rooms, gives back its nickname and waits for the writer.
 */
#include "conn.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "chat.h"
#include "cluster.h"
#include "json.h"
#include "nicks.h"
#include "room.h"
#include "server.h"

/* How long a cut-off connection's write may take before it is closed. */
#define CHAT_CUT_GRACE_MS 5000
/* How long a connection that is being closed reads and discards what the
 * client still sends, so that the client reads the last message rather
 * than a reset. */
#define CHAT_LINGER_MS 2000
/* How long a writer task whose queue is empty waits for more before it
 * ends: a member of a busy room keeps its writer, an idle one has none. */
#define CHAT_WRITER_LINGER_MS 1000
/* Messages written at once. */
#define CHAT_WRITE_BATCH 64
/* A reader that has been quiet this long after a request gives back the
 * stack pages the request touched (weft_task_trim_stack()): an idle
 * connection then keeps about one page of stack. */
#define CHAT_TRIM_AFTER_MS 1000
/* Nesting accepted in a client's message. */
#define CHAT_JSON_DEPTH 16

typedef struct joined_room {
  char *name;
  weft_actor *actor;
} joined_room;

struct chat_conn {
  int refs; /* atomic */
  int executor;
  weft_tcp *tcp; /* one of tcp and ws */
  weft_ws *ws;
  char nick[CHAT_NICK_MAX + 1];

  /* The outbound queue, shared with every producer, under lock. */
  pthread_mutex_t lock;
  chat_buf **q;
  size_t q_head, q_len, q_cap;
  int q_closed;   /* takes nothing more */
  int closing;    /* the writer ends once the queue is written */
  int cut;        /* cut off as a slow consumer (atomic reads) */
  int close_code; /* the WebSocket close code of the end */
  int writer_on;  /* WRITER_NONE, WRITER_TASK, WRITER_PARKED or
                     WRITER_READER */
  int abort;      /* write nothing more (the reader gave up on the client) */
  chat_conn *start_next; /* in its executor's start list */
  int start_listed;       /* in that list (under the starter's lock) */

  /* The connection's executor only. */
  weft_scope *read_scope;  /* while the reader waits for requests */
  weft_scope *write_scope; /* while the writer writes */
  int stopping;            /* the server is stopping */
  int writer_done;         /* a write failed, or the last message is out */
  weft_parked *reader;     /* the reader's task */
  int in_request;          /* the reader handles a request */
  int write_inline;        /* the reader writes what its request queued */
  int trim_due;            /* a request ran since the stack was trimmed */
  weft_parked *end_waiter; /* the reader, waiting for the writer to end */
  int writer_alive;        /* a writer task exists (started or running) */
  weft_parked *writer_parked; /* it waits for more (WRITER_PARKED) */
  chat_conn *prev, *next; /* the executor's connections */

  /* The reader only. */
  joined_room *rooms;
  size_t n_rooms;
  weft_limiter *limiter;
  chat_claims *claims; /* the token's, with --auth-secret-file */
};

/* The connections of each executor, for the shutdown. */
static chat_conn *exec_conns[1025];

/* ---- References ---------------------------------------------------------- */

void chat_conn_ref(chat_conn *c) {
  __atomic_fetch_add(&c->refs, 1, __ATOMIC_RELAXED);
}

void chat_conn_unref(chat_conn *c) {
  if (__atomic_sub_fetch(&c->refs, 1, __ATOMIC_ACQ_REL) != 0) return;
  for (size_t i = 0; i < c->q_len; i++)
    chat_buf_unref(c->q[(c->q_head + i) % c->q_cap]);
  free(c->q);
  pthread_mutex_destroy(&c->lock);
  free(c);
}

const char *chat_conn_nick(const chat_conn *c) { return c->nick; }

/* ---- The outbound queue ------------------------------------------------------ */

/* Who writes a connection's queue (writer_on, under the lock). An idle
 * connection has no writer task: the first message queued for it starts
 * one, through the starter task of the connection's executor, and the
 * writer ends once the queue is empty. What the reader queues in answer
 * to its own request it writes itself, right after the request, when
 * nothing else is being written. */
enum {
  WRITER_NONE,   /* nobody: the next message queued starts a writer */
  WRITER_TASK,   /* a writer task runs, or its start is asked for */
  WRITER_PARKED, /* a writer task waits for more: the starter wakes it */
  WRITER_READER  /* the reader writes (after its request, or at the end) */
};

/* The connections of one executor waiting for a writer task. */
typedef struct conn_starter {
  pthread_mutex_t lock;
  chat_conn *head, *tail;
  weft_chan *bell; /* rung when the list stops being empty */
} conn_starter;

static conn_starter *starters;
static int n_starters;

/* Has c's executor start a writer for it (writer_on was just set to
 * WRITER_TASK by the caller). A connection is listed once: its writer may
 * have taken the queue and waited again since it was listed (woken by its
 * linger's end rather than by the starter), and the next message asks
 * again while the first request is still listed; the starter looks at
 * the connection as it is when it comes to it, which answers both. (Listed
 * twice, its link would be overwritten, and the connections behind it in
 * the list would never get a writer.) */
static void conn_start_writer(chat_conn *c) {
  conn_starter *s = &starters[c->executor - 1];
  pthread_mutex_lock(&s->lock);
  if (c->start_listed) {
    pthread_mutex_unlock(&s->lock);
    return;
  }
  chat_conn_ref(c);
  c->start_listed = 1;
  int was_empty = s->head == NULL;
  c->start_next = NULL;
  if (s->tail != NULL)
    s->tail->start_next = c;
  else
    s->head = c;
  s->tail = c;
  pthread_mutex_unlock(&s->lock);
  if (was_empty) {
    char bit = 1;
    weft_chan_try_send(s->bell, &bit); /* UV_EAGAIN: already rung */
  }
}

/* After a message was queued: when nobody writes, the reader writes it
 * after its request (when it queued it), or a writer task is started.
 * Call with the lock held; returns non-zero when the caller is to call
 * conn_start_writer() once it has let go of the lock. */
static int conn_take_writer(chat_conn *c) {
  if (c->writer_on == WRITER_PARKED) {
    c->writer_on = WRITER_TASK;
    return 1;
  }
  if (c->writer_on != WRITER_NONE) return 0;
  /* c->reader is set before c is seen by anyone else. */
  if (weft_park_self() == c->reader && c->in_request) {
    c->writer_on = WRITER_READER;
    c->write_inline = 1;
    return 0;
  }
  c->writer_on = WRITER_TASK;
  return 1;
}

/* Appends b under the lock. Returns 0, or -1 out of memory. */
static int queue_append(chat_conn *c, chat_buf *b) {
  if (c->q_len == c->q_cap) {
    size_t cap = c->q_cap ? c->q_cap * 2 : 8;
    chat_buf **q = malloc(cap * sizeof *q);
    if (q == NULL) return -1;
    for (size_t i = 0; i < c->q_len; i++)
      q[i] = c->q[(c->q_head + i) % c->q_cap];
    free(c->q);
    c->q = q;
    c->q_cap = cap;
    c->q_head = 0;
  }
  chat_buf_ref(b);
  c->q[(c->q_head + c->q_len++) % c->q_cap] = b;
  return 0;
}

/* Moves the queue's buffers to *out (to be unreferenced outside the lock). */
static size_t queue_take_all(chat_conn *c, chat_buf ***out) {
  size_t n = c->q_len;
  chat_buf **taken = n ? malloc(n * sizeof *taken) : NULL;
  for (size_t i = 0; i < n; i++) {
    chat_buf *b = c->q[(c->q_head + i) % c->q_cap];
    if (taken != NULL)
      taken[i] = b;
    else
      chat_buf_unref(b); /* out of memory: the last reference is a room's */
  }
  c->q_len = 0;
  c->q_head = 0;
  *out = taken;
  return taken ? n : 0;
}

static chat_buf *slow_consumer_buf;

void chat_conn_push(chat_conn *c, chat_buf *b) {
  size_t max = (size_t)chat_srv->cfg->max_queue;
  pthread_mutex_lock(&c->lock);
  if (c->q_closed) {
    pthread_mutex_unlock(&c->lock);
    return;
  }
  if (c->q_len < max) {
    int r = queue_append(c, b);
    int ring = r == 0 && conn_take_writer(c);
    pthread_mutex_unlock(&c->lock);
    if (ring) conn_start_writer(c);
    return;
  }
  /* Cut off: drop the queue, leave the error as the last message. */
  chat_buf **dropped;
  size_t n = queue_take_all(c, &dropped);
  queue_append(c, slow_consumer_buf);
  c->q_closed = 1;
  c->closing = 1;
  c->close_code = WEFT_WS_CLOSE_POLICY;
  __atomic_store_n(&c->cut, 1, __ATOMIC_RELEASE);
  int ring = conn_take_writer(c);
  pthread_mutex_unlock(&c->lock);
  for (size_t i = 0; i < n; i++) chat_buf_unref(dropped[i]);
  free(dropped);
  app_counter_add(chat_srv->slow_consumers, 1);
  weft_counter_inc(chat_srv->m_slow);
  weft_log(WEFT_LOG_INFO, "slow consumer cut off", "nick=%s queued=%zu",
           c->nick, n);
  chat_conn_ref(c);
  if (weft_chan_try_send(chat_srv->janitors[c->executor - 1], &c) != 0)
    chat_conn_unref(c);
  if (ring) conn_start_writer(c);
}

/* Queues b as the connection's last message: nothing is queued after it,
 * and the connection closes once it is written (close_code for a
 * WebSocket). Ignored when a last message is queued already. */
static void conn_push_last(chat_conn *c, chat_buf *b, int close_code) {
  if (b == NULL) return;
  pthread_mutex_lock(&c->lock);
  if (c->q_closed) {
    pthread_mutex_unlock(&c->lock);
    chat_buf_unref(b);
    return;
  }
  queue_append(c, b);
  c->q_closed = 1;
  c->closing = 1;
  c->close_code = close_code;
  int ring = conn_take_writer(c);
  pthread_mutex_unlock(&c->lock);
  chat_buf_unref(b);
  if (ring) conn_start_writer(c);
}

/* Queues nothing more. Returns non-zero when the reader is to write what
 * is queued itself (no writer task runs). */
static int conn_finish_queue(chat_conn *c) {
  pthread_mutex_lock(&c->lock);
  c->q_closed = 1;
  c->closing = 1;
  if (c->close_code == 0) c->close_code = WEFT_WS_CLOSE_NORMAL;
  int wake = c->writer_on == WRITER_PARKED;
  int mine = c->writer_on != WRITER_TASK && !wake;
  c->writer_on = mine ? WRITER_READER : WRITER_TASK;
  pthread_mutex_unlock(&c->lock);
  /* A waiting writer writes the end (the reader runs on its executor). */
  if (wake && c->writer_parked != NULL) {
    weft_parked *t = c->writer_parked;
    c->writer_parked = NULL;
    weft_unpark(t, 0);
  }
  return mine;
}

static void conn_reply(chat_conn *c, chat_buf *b) {
  if (b == NULL) return;
  chat_conn_push(c, b);
  chat_buf_unref(b);
}

void chat_conn_error(chat_conn *c, const char *code, const char *text) {
  app_counter_add(chat_srv->errors, 1);
  weft_counter_inc(chat_srv->m_errors);
  conn_reply(c, chat_error_buf(code, text));
}

/* An error that closes the connection once it is written. */
static void conn_fatal(chat_conn *c, const char *code, const char *text,
                       int close_code) {
  app_counter_add(chat_srv->errors, 1);
  weft_counter_inc(chat_srv->m_errors);
  conn_push_last(c, chat_error_buf(code, text), close_code);
}

static chat_buf *conn_bye(const char *reason) {
  chat_sb sb;
  chat_sb_init(&sb);
  chat_sb_str(&sb, "{\"type\":\"bye\",\"reason\":");
  chat_sb_jstr(&sb, reason);
  chat_sb_str(&sb, "}");
  return chat_sb_finish(&sb);
}

/* ---- The writer -------------------------------------------------------------- */

static int conn_write(chat_conn *c, chat_buf **batch, size_t n) {
  weft_scope ws;
  int cut = __atomic_load_n(&c->cut, __ATOMIC_ACQUIRE);
  weft_scope_enter(&ws, cut ? CHAT_CUT_GRACE_MS : WEFT_NO_DEADLINE);
  c->write_scope = &ws;
  int r = 0;
  /* Everything queued goes out at once: one writev for a line
   * connection, one for the frames of a WebSocket (up to 32 a call). */
  uv_buf_t bufs[CHAT_WRITE_BATCH];
  if (c->tcp != NULL) {
    for (size_t i = 0; i < n; i++)
      bufs[i] = uv_buf_init(batch[i]->data, batch[i]->len);
    r = weft_tcp_writev(c->tcp, bufs, n);
  } else if (n == 1) {
    r = weft_ws_send_text(c->ws, batch[0]->data, batch[0]->len - 1);
  } else {
    /* A message without its line's newline is one text frame. */
    for (size_t i = 0; i < n; i++)
      bufs[i] = uv_buf_init(batch[i]->data, batch[i]->len - 1);
    r = weft_ws_send_many(c->ws, WEFT_WS_TEXT, bufs, n);
  }
  c->write_scope = NULL;
  weft_scope_leave(&ws);
  return r;
}

/* What conn_drain() returns when its writer task is to wait for more. */
#define CHAT_DRAIN_PARKED 1

/* Writes what is queued, batch by batch, for at most max_batches batches
 * (0: until the queue is empty). The caller holds the writer's part
 * (writer_on). Once the queue is empty the part is given back (a writer
 * task with linger set keeps it as WRITER_PARKED and returns
 * CHAT_DRAIN_PARKED, the caller waits); when the
 * connection is closing, its sending side is ended first (bounded), and
 * the reader is told. After max_batches with more queued, the part goes
 * to a writer task. Returns 0, or -1 when a write failed (the reader is
 * told). */
static int conn_drain(chat_conn *c, int max_batches, int linger) {
  chat_buf *batch[CHAT_WRITE_BATCH];
  int failed = 0, batches = 0;
  for (;;) {
    size_t n = 0;
    pthread_mutex_lock(&c->lock);
    if (c->abort || failed) {
      c->q_closed = 1;
    } else if (max_batches > 0 &&
               (c->closing || (batches == max_batches && c->q_len > 0))) {
      /* The rest (or the end, which a task writes while the reader reads
       * what the client still sends) goes to a writer task; the reader
       * goes back to reading. */
      c->writer_on = WRITER_TASK;
      pthread_mutex_unlock(&c->lock);
      conn_start_writer(c);
      return 0;
    } else {
      while (n < CHAT_WRITE_BATCH && c->q_len > 0) {
        batch[n++] = c->q[c->q_head];
        c->q_head = (c->q_head + 1) % c->q_cap;
        c->q_len--;
      }
    }
    int closing = c->closing, code = c->close_code;
    if (n == 0 && linger && !closing && !c->abort && !failed) {
      c->writer_on = WRITER_PARKED;
      pthread_mutex_unlock(&c->lock);
      return CHAT_DRAIN_PARKED;
    }
    if (n == 0 && (!closing || c->abort || failed)) {
      c->writer_on = WRITER_NONE;
      pthread_mutex_unlock(&c->lock);
      break;
    }
    if (n == 0) {
      /* The last message is out: end the sending side, bounded. */
      c->q_closed = 1;
      pthread_mutex_unlock(&c->lock);
      if (weft_cancelled() == 0) {
        weft_scope ls;
        weft_scope_enter(&ls, CHAT_LINGER_MS);
        if (c->tcp != NULL)
          weft_tcp_shutdown(c->tcp);
        else
          weft_ws_close(c->ws, code ? code : WEFT_WS_CLOSE_NORMAL, NULL);
        weft_scope_leave(&ls);
      }
      pthread_mutex_lock(&c->lock);
      c->writer_on = WRITER_NONE;
      pthread_mutex_unlock(&c->lock);
      c->writer_done = 1;
      break;
    }
    pthread_mutex_unlock(&c->lock);
    int r = conn_write(c, batch, n);
    for (size_t i = 0; i < n; i++) chat_buf_unref(batch[i]);
    batches++;
    if (r != 0) {
      failed = 1;
      c->writer_done = 1;
    }
  }
  if (c->writer_done && c->read_scope != NULL) weft_scope_cancel(c->read_scope);
  if (c->end_waiter != NULL) {
    weft_parked *t = c->end_waiter;
    c->end_waiter = NULL;
    weft_unpark(t, 0);
  }
  return failed ? -1 : 0;
}

static void writer_linger_cancel(weft_parked *t, void *data) {
  chat_conn *c = data;
  if (c->writer_parked == t) c->writer_parked = NULL;
  weft_unpark(t, 0);
}

/* A writer task: writes c's queue until it is empty, waits up to
 * CHAT_WRITER_LINGER_MS for more (woken by the starter), then ends. */
static int conn_writer(void *arg) {
  chat_conn *c = arg;
  weft_task_set_name("writer");
  while (conn_drain(c, 0, 1) == CHAT_DRAIN_PARKED) {
    weft_scope s;
    weft_scope_enter(&s, CHAT_WRITER_LINGER_MS);
    c->writer_parked = weft_park_self();
    weft_park(writer_linger_cancel, c);
    c->writer_parked = NULL;
    weft_scope_leave(&s);
    pthread_mutex_lock(&c->lock);
    int quiet = c->writer_on == WRITER_PARKED;
    if (quiet) c->writer_on = WRITER_NONE; /* nothing came: end */
    pthread_mutex_unlock(&c->lock);
    if (quiet) break;
  }
  c->writer_alive = 0;
  chat_conn_unref(c); /* conn_start_writer()'s */
  return 0;
}

int chat_writer_starter_task(void *arg) {
  conn_starter *s = &starters[(intptr_t)arg - 1];
  weft_task_set_name("starter");
  weft_group *writers = weft_group_open(WEFT_COLLECT);
  if (writers == NULL) return UV_ENOMEM;
  char bit;
  int open = 1;
  while (open) {
    open = weft_chan_recv(s->bell, &bit) == 0;
    pthread_mutex_lock(&s->lock);
    chat_conn *list = s->head;
    s->head = s->tail = NULL;
    pthread_mutex_unlock(&s->lock);
    while (list != NULL) {
      /* Listed until taken here: its link is not touched before. */
      chat_conn *c = list;
      pthread_mutex_lock(&s->lock);
      list = c->start_next;
      c->start_next = NULL;
      c->start_listed = 0;
      pthread_mutex_unlock(&s->lock);
      if (c->writer_alive) {
        /* Its writer is there: woken when it waits (when it does not, it
         * is on its way to look at the queue again). */
        if (c->writer_parked != NULL) {
          weft_parked *t = c->writer_parked;
          c->writer_parked = NULL;
          weft_unpark(t, 0);
        }
        chat_conn_unref(c);
        continue;
      }
      if (open && weft_spawn(writers, conn_writer, c) == 0) {
        c->writer_alive = 1;
        continue;
      }
      {
        /* No writer: the connection cannot go on. */
        pthread_mutex_lock(&c->lock);
        c->q_closed = 1;
        c->abort = 1;
        c->writer_on = WRITER_NONE;
        pthread_mutex_unlock(&c->lock);
        c->writer_done = 1;
        if (c->read_scope != NULL) weft_scope_cancel(c->read_scope);
        if (c->end_waiter != NULL) {
          weft_parked *t = c->end_waiter;
          c->end_waiter = NULL;
          weft_unpark(t, 0);
        }
        chat_conn_unref(c);
      }
    }
  }
  return weft_group_join(writers);
}

int chat_janitor_task(void *arg) {
  weft_chan *ch = arg;
  weft_task_set_name("janitor");
  chat_conn *c;
  while (weft_chan_recv(ch, &c) == 0) {
    if (c->write_scope != NULL)
      weft_scope_set_timeout(c->write_scope, CHAT_CUT_GRACE_MS);
    chat_conn_unref(c);
  }
  /* Closed at the end: drop what is left. */
  while (weft_chan_try_recv(ch, &c) == 0) chat_conn_unref(c);
  return 0;
}

/* ---- Requests ---------------------------------------------------------------- */

/* A request's outcome for the reader loop. */
enum { CONN_GO_ON = 0, CONN_CLOSE = 1 };

/* The string member key of obj: 1 found, 0 absent, -1 of another type. */
static int get_string(const cJSON *obj, const char *key, const char **out) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
  *out = NULL;
  if (v == NULL || cJSON_IsNull(v)) return 0;
  if (!cJSON_IsString(v) || v->valuestring == NULL) return -1;
  *out = v->valuestring;
  return 1;
}

/* The integer member key of obj, >= 0: 1 found, 0 absent, -1 otherwise. */
static int get_count(const cJSON *obj, const char *key, int64_t *out) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
  if (v == NULL || cJSON_IsNull(v)) return 0;
  if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > 9e15 ||
      v->valuedouble != (double)(int64_t)v->valuedouble)
    return -1;
  *out = (int64_t)v->valuedouble;
  return 1;
}

/* A required string member; queues bad_request and returns NULL when it
 * is missing or not a string. */
static const char *need_string(chat_conn *c, const cJSON *obj,
                               const char *key) {
  const char *s;
  if (get_string(obj, key, &s) == 1) return s;
  char text[96];
  snprintf(text, sizeof text, "\"%s\" must be a string", key);
  chat_conn_error(c, "bad_request", text);
  return NULL;
}

static joined_room *conn_joined(chat_conn *c, const char *room) {
  for (size_t i = 0; i < c->n_rooms; i++)
    if (strcmp(c->rooms[i].name, room) == 0) return &c->rooms[i];
  return NULL;
}

/* Takes a token for a say or a dm. Returns 0, or -1 after rate_limited. */
static int conn_rate(chat_conn *c) {
  const chat_config *cfg = chat_srv->cfg;
  if (cfg->rate <= 0) return 0;
  if (c->limiter == NULL) {
    c->limiter = weft_limiter_new((double)cfg->rate, (double)cfg->burst);
    if (c->limiter == NULL) return 0;
  }
  if (weft_limiter_try_acquire(c->limiter, 1) == 0) return 0;
  app_counter_add(chat_srv->rate_limited, 1);
  chat_conn_error(c, "rate_limited", "too many messages; slow down");
  return -1;
}

static void conn_drop_claims(chat_conn *c) {
  if (c->claims == NULL) return;
  chat_claims_free(c->claims);
  free(c->claims);
  c->claims = NULL;
}

static int do_hello(chat_conn *c, const cJSON *doc) {
  if (c->nick[0] != '\0') {
    chat_conn_error(c, "bad_request", "hello was said already");
    return CONN_GO_ON;
  }
  const char *nick = need_string(c, doc, "nick");
  if (nick == NULL) return CONN_GO_ON;
  if (!chat_nick_valid(nick)) {
    chat_conn_error(c, "bad_nick",
                    "a nick is 1 to 32 characters of A-Z, a-z, 0-9, _ and -");
    return CONN_GO_ON;
  }
  if (chat_srv->auth != NULL) {
    const char *token;
    int has = get_string(doc, "token", &token);
    const char *why = "a token is required";
    chat_claims claims;
    if (has == 1 &&
        chat_auth_verify(chat_srv->auth, token, chat_wall_ms() / 1000,
                         &claims, &why) == 0) {
      conn_drop_claims(c); /* of a hello whose nick was taken */
      if (strcmp(claims.sub, nick) != 0) {
        why = "the token is for another nick";
        chat_claims_free(&claims);
      } else if ((c->claims = malloc(sizeof *c->claims)) == NULL) {
        why = "the server is out of memory";
        chat_claims_free(&claims);
      } else {
        *c->claims = claims;
        why = NULL;
      }
    } else if (has == -1) {
      why = "\"token\" must be a string";
    }
    if (why != NULL) {
      weft_log(WEFT_LOG_INFO, "authentication failed", "nick=%s why=\"%s\"",
               nick, why);
      conn_fatal(c, "auth_failed", why, WEFT_WS_CLOSE_POLICY);
      return CONN_CLOSE;
    }
  }
  int r = chat_nick_claim(nick, c);
  /* In a cluster, the nick must be free on every node too (while Redis is
   * away, only here). */
  if (r == 0 && chat_srv->cluster && chat_cluster_claim(nick) == UV_EEXIST) {
    chat_nick_release(nick, c);
    r = UV_EEXIST;
  }
  if (r == UV_EEXIST) {
    chat_conn_error(c, "nick_taken", "that nick is in use");
    return CONN_GO_ON;
  }
  if (r != 0) {
    chat_conn_error(c, "bad_request", "the server is out of memory");
    return CONN_GO_ON;
  }
  snprintf(c->nick, sizeof c->nick, "%s", nick);
  app_gauge_add(chat_srv->sessions, 1);
  weft_gauge_add(chat_srv->m_sessions, 1);
  chat_sb sb;
  chat_sb_init(&sb);
  chat_sb_str(&sb, "{\"type\":\"welcome\",\"nick\":");
  chat_sb_jstr(&sb, c->nick);
  chat_sb_str(&sb, "}");
  conn_reply(c, chat_sb_finish(&sb));
  return CONN_GO_ON;
}

static int do_join(chat_conn *c, const cJSON *doc) {
  const char *room = need_string(c, doc, "room");
  if (room == NULL) return CONN_GO_ON;
  int64_t since = 0;
  int has_since = get_count(doc, "since", &since);
  if (has_since == 0) since = -1; /* the recent history */
  if (!chat_room_name_valid(room) || has_since < 0) {
    chat_conn_error(c, "bad_request",
                    "a room is 1 to 64 bytes without control characters; "
                    "\"since\" is a seq");
    return CONN_GO_ON;
  }
  if (c->claims != NULL && !chat_claims_allow(c->claims, room)) {
    conn_fatal(c, "auth_failed", "the token does not allow that room",
               WEFT_WS_CLOSE_POLICY);
    return CONN_CLOSE;
  }
  joined_room *j = conn_joined(c, room);
  if (j == NULL) {
    if (c->n_rooms >= (size_t)chat_srv->cfg->max_rooms_per_conn) {
      chat_conn_error(c, "bad_request", "joined too many rooms");
      return CONN_GO_ON;
    }
    weft_actor *actor = chat_room_get(room, 1);
    char *name = strdup(room);
    joined_room *grown =
        realloc(c->rooms, (c->n_rooms + 1) * sizeof *c->rooms);
    if (actor == NULL || name == NULL || grown == NULL) {
      free(name);
      if (grown != NULL) c->rooms = grown;
      chat_conn_error(c, "bad_request", "the room cannot be made now");
      return CONN_GO_ON;
    }
    c->rooms = grown;
    j = &c->rooms[c->n_rooms++];
    j->name = name;
    j->actor = actor;
  }
  chat_room_join(j->actor, c, since);
  return CONN_GO_ON;
}

static int do_leave(chat_conn *c, const cJSON *doc) {
  const char *room = need_string(c, doc, "room");
  if (room == NULL) return CONN_GO_ON;
  joined_room *j = conn_joined(c, room);
  if (j == NULL) {
    chat_conn_error(c, "not_in_room", "you are not in that room");
    return CONN_GO_ON;
  }
  weft_actor *actor = j->actor;
  free(j->name);
  *j = c->rooms[--c->n_rooms];
  chat_room_leave(actor, c);
  return CONN_GO_ON;
}

/* The number of UTF-8 characters of s. */
static size_t utf8_chars(const char *s) {
  size_t n = 0;
  for (; *s; s++)
    if (((unsigned char)*s & 0xc0) != 0x80) n++;
  return n;
}

static int do_say(chat_conn *c, const cJSON *doc) {
  const char *room = need_string(c, doc, "room");
  if (room == NULL) return CONN_GO_ON;
  const char *text = need_string(c, doc, "text");
  if (text == NULL) return CONN_GO_ON;
  const char *id;
  int has_id = get_string(doc, "id", &id);
  if (has_id < 0 || (has_id == 1 && utf8_chars(id) > CHAT_ID_MAX)) {
    chat_conn_error(c, "bad_request", "\"id\" is a string of up to 64 characters");
    return CONN_GO_ON;
  }
  joined_room *j = conn_joined(c, room);
  if (j == NULL) {
    chat_conn_error(c, "not_in_room", "join the room before you say anything");
    return CONN_GO_ON;
  }
  if (conn_rate(c) != 0) return CONN_GO_ON;
  char *t = strdup(text);
  char *i = has_id == 1 ? strdup(id) : NULL;
  if (t == NULL || (has_id == 1 && i == NULL)) {
    free(t);
    free(i);
    chat_conn_error(c, "bad_request", "the server is out of memory");
    return CONN_GO_ON;
  }
  chat_room_say(j->actor, c, t, i);
  return CONN_GO_ON;
}

static int do_dm(chat_conn *c, const cJSON *doc) {
  const char *to = need_string(c, doc, "to");
  if (to == NULL) return CONN_GO_ON;
  const char *text = need_string(c, doc, "text");
  if (text == NULL) return CONN_GO_ON;
  if (conn_rate(c) != 0) return CONN_GO_ON;
  chat_conn *peer = chat_nick_valid(to) ? chat_nick_find(to) : NULL;
  if (peer == NULL && !(chat_srv->cluster && chat_nick_valid(to))) {
    chat_conn_error(c, "no_such_user", "nobody by that nick is here");
    return CONN_GO_ON;
  }
  chat_sb sb;
  chat_sb_init(&sb);
  chat_sb_str(&sb, "{\"type\":\"dm\",\"from\":");
  chat_sb_jstr(&sb, c->nick);
  chat_sb_str(&sb, ",\"text\":");
  chat_sb_jstr(&sb, text);
  chat_sb_str(&sb, ",\"ts\":");
  chat_sb_int(&sb, chat_wall_ms());
  chat_sb_str(&sb, "}");
  chat_buf *b = chat_sb_finish(&sb);
  if (peer != NULL) {
    conn_reply(peer, b);
    chat_conn_unref(peer);
  } else {
    /* On another node, if any holds the nick. */
    int r = b != NULL ? chat_cluster_dm(to, b) : UV_ENOMEM;
    chat_buf_unref(b);
    if (r != 0) {
      chat_conn_error(c, "no_such_user", "nobody by that nick is here");
      return CONN_GO_ON;
    }
  }
  app_counter_add(chat_srv->dms, 1);
  weft_counter_inc(chat_srv->m_dms);
  return CONN_GO_ON;
}

static int do_history(chat_conn *c, const cJSON *doc) {
  const char *room = need_string(c, doc, "room");
  if (room == NULL) return CONN_GO_ON;
  int64_t since = 0;
  if (get_count(doc, "since", &since) < 0) {
    chat_conn_error(c, "bad_request", "\"since\" must be a seq (0 or more)");
    return CONN_GO_ON;
  }
  joined_room *j = conn_joined(c, room);
  if (j == NULL) {
    chat_conn_error(c, "not_in_room", "join the room to read its history");
    return CONN_GO_ON;
  }
  chat_room_history(j->actor, c, since);
  return CONN_GO_ON;
}

static chat_buf *simple_buf(const char *json) {
  chat_sb sb;
  chat_sb_init(&sb);
  chat_sb_str(&sb, json);
  return chat_sb_finish(&sb);
}

/* Handles one request of len bytes. Returns CONN_GO_ON or CONN_CLOSE (the
 * last message is queued). */
static int conn_handle(chat_conn *c, const char *line, size_t len) {
  if (!chat_utf8_valid(line, len)) {
    chat_conn_error(c, "bad_json", "the message is not UTF-8");
    return CONN_GO_ON;
  }
  app_json_error err;
  cJSON *doc = app_json_parse(line, len, CHAT_JSON_DEPTH, &err);
  if (doc == NULL) {
    char text[192];
    snprintf(text, sizeof text, "column %d: %s", err.column, err.message);
    chat_conn_error(c, "bad_json", text);
    return CONN_GO_ON;
  }
  int r = CONN_GO_ON;
  const char *type;
  if (!cJSON_IsObject(doc) || get_string(doc, "type", &type) != 1) {
    chat_conn_error(c, "bad_request",
                    "a message is a JSON object with a string \"type\"");
  } else if (c->nick[0] == '\0' && strcmp(type, "hello") != 0) {
    chat_conn_error(c, "hello_first", "say hello first");
  } else if (strcmp(type, "hello") == 0) {
    r = do_hello(c, doc);
  } else if (strcmp(type, "say") == 0) {
    r = do_say(c, doc);
  } else if (strcmp(type, "join") == 0) {
    r = do_join(c, doc);
  } else if (strcmp(type, "leave") == 0) {
    r = do_leave(c, doc);
  } else if (strcmp(type, "dm") == 0) {
    r = do_dm(c, doc);
  } else if (strcmp(type, "history") == 0) {
    r = do_history(c, doc);
  } else if (strcmp(type, "rooms") == 0) {
    chat_buf *list = chat_srv->cluster ? chat_cluster_rooms() : NULL;
    conn_reply(c, list != NULL ? list : chat_rooms_list());
  } else if (strcmp(type, "ping") == 0) {
    conn_reply(c, simple_buf("{\"type\":\"pong\"}"));
  } else {
    chat_conn_error(c, "unknown_type", "no such message type");
  }
  cJSON_Delete(doc);
  return r;
}

/* ---- The reader -------------------------------------------------------------- */

/* conn_handle(), then what the request queued for nobody else to write:
 * the reader writes it itself (one batch; more goes to a writer task). A
 * failed write cancels the read scope. */
static int conn_request(chat_conn *c, const char *line, size_t len) {
  c->in_request = 1;
  int r = conn_handle(c, line, len);
  c->in_request = 0;
  c->trim_due = 1;
  if (c->write_inline) {
    c->write_inline = 0;
    conn_drain(c, 1, 0);
  }
  return r;
}

/* Why the reader's loop ended. */
enum {
  END_EOF,     /* end of stream or a broken connection */
  END_CLOSE,   /* a last message is queued: linger, then close */
  END_IDLE,    /* the idle timeout */
  END_STOP,    /* the server stops (bye is queued) */
  END_WRITER,  /* the writer ended (a failed write, a cut-off) */
  END_CANCEL   /* the task itself is cancelled */
};

/* After the read scope of the loop ended with a cancellation: why. */
static int conn_why_cancelled(chat_conn *c) {
  if (weft_cancelled() != 0) return END_CANCEL;
  if (c->stopping) return END_STOP;
  if (c->writer_done) return END_WRITER;
  return END_IDLE;
}

/* What conn_read_some() returns after it trimmed the stack (a wait of its
 * own ended; nothing was read). Outside every error range. */
#define CHAT_TRIMMED (-50001)

/* One weft_tcp_read() into buf (len bytes) of a line connection, or one
 * weft_ws_recv() into the weft_ws_msg at buf of a WebSocket. After a
 * request it first waits CHAT_TRIM_AFTER_MS only; if nothing came by then
 * it trims the stack and returns CHAT_TRIMMED, and the caller reads
 * again. */
static ssize_t conn_read_some(chat_conn *c, void *buf, size_t len) {
  weft_scope ts;
  int trim = c->trim_due;
  if (trim) weft_scope_enter(&ts, CHAT_TRIM_AFTER_MS);
  ssize_t n = c->tcp != NULL ? weft_tcp_read(c->tcp, buf, len)
                             : weft_ws_recv(c->ws, buf);
  if (!trim) return n;
  int quiet = weft_scope_leave(&ts) != 0 && n < 0 && weft_cancelled() == 0;
  if (!quiet) return n;
  c->trim_due = 0;
  /* The queue's array too, while nothing is queued nor being written. */
  pthread_mutex_lock(&c->lock);
  if (c->q_len == 0 && c->writer_on == WRITER_NONE) {
    free(c->q);
    c->q = NULL;
    c->q_cap = c->q_head = 0;
  }
  pthread_mutex_unlock(&c->lock);
  if (c->ws != NULL) weft_ws_trim(c->ws);
  weft_task_trim_stack();
  return CHAT_TRIMMED;
}

static int conn_read_tcp(chat_conn *c) {
  const size_t max_line = (size_t)chat_srv->cfg->max_line;
  const int64_t idle = chat_srv->cfg->idle_timeout;
  size_t cap = max_line + 1 < 1024 ? max_line + 1 : 1024;
  char *buf = malloc(cap);
  if (buf == NULL) return END_EOF;
  size_t have = 0, scanned = 0;
  int end = END_EOF;
  weft_scope rs;
  weft_scope_enter(&rs, idle > 0 ? idle : WEFT_NO_DEADLINE);
  c->read_scope = &rs;
  for (;;) {
    /* Every whole line in the buffer first. */
    char *nl = memchr(buf + scanned, '\n', have - scanned);
    if (nl != NULL) {
      size_t len = (size_t)(nl - buf);
      size_t line_len = len > 0 && buf[len - 1] == '\r' ? len - 1 : len;
      int r = CONN_GO_ON;
      if (line_len > max_line) {
        conn_fatal(c, "too_large", "the line is longer than --max-line",
                   WEFT_WS_CLOSE_TOO_BIG);
        r = CONN_CLOSE;
      } else if (line_len > 0) {
        r = conn_request(c, buf, line_len);
      }
      memmove(buf, nl + 1, have - len - 1);
      have -= len + 1;
      scanned = 0;
      if (r == CONN_CLOSE) {
        end = END_CLOSE;
        break;
      }
      continue;
    }
    scanned = have;
    if (have > max_line + 1 || (have == max_line + 1 && buf[max_line] != '\r')) {
      conn_fatal(c, "too_large", "the line is longer than --max-line",
                 WEFT_WS_CLOSE_TOO_BIG);
      end = END_CLOSE;
      break;
    }
    if (have == cap) {
      size_t ncap = cap * 2 < max_line + 2 ? cap * 2 : max_line + 2;
      /* have <= max_line + 1 here, so there is room to grow. */
      if (ncap <= cap) break;
      char *grown = realloc(buf, ncap);
      if (grown == NULL) break;
      buf = grown;
      cap = ncap;
    }
    ssize_t n = conn_read_some(c, buf + have, cap - have);
    if (n == CHAT_TRIMMED) continue;
    if (n > 0) {
      have += (size_t)n;
      if (idle > 0) weft_scope_set_timeout(&rs, idle);
      continue;
    }
    break; /* end of stream, an error, or the read scope's end */
  }
  c->read_scope = NULL;
  if (weft_scope_leave(&rs) != 0) end = conn_why_cancelled(c);
  free(buf);
  return end;
}

static int conn_read_ws(chat_conn *c) {
  const size_t max_line = (size_t)chat_srv->cfg->max_line;
  int end = END_EOF;
  weft_scope rs;
  weft_scope_enter(&rs, WEFT_NO_DEADLINE);
  c->read_scope = &rs;
  for (;;) {
    weft_ws_msg msg;
    ssize_t r = conn_read_some(c, &msg, 0);
    if (r == CHAT_TRIMMED) continue;
    if (r == 0) {
      if (msg.len > max_line) {
        conn_fatal(c, "too_large", "the message is longer than --max-line",
                   WEFT_WS_CLOSE_TOO_BIG);
        end = END_CLOSE;
        break;
      }
      if (conn_request(c, msg.data, msg.len) == CONN_CLOSE) {
        end = END_CLOSE;
        break;
      }
      continue;
    }
    break; /* closed, broken, or the read scope's end */
  }
  c->read_scope = NULL;
  if (weft_scope_leave(&rs) != 0) end = conn_why_cancelled(c);
  return end;
}

/* Reads and drops what the client still sends, until it closes or the
 * linger time ends, so that it reads the last message rather than a
 * reset. */
static void conn_linger(chat_conn *c) {
  weft_scope s;
  weft_scope_enter(&s, CHAT_LINGER_MS);
  if (c->tcp != NULL) {
    char drop[4096];
    while (weft_tcp_read(c->tcp, drop, sizeof drop) > 0) {
    }
  } else {
    weft_ws_msg msg;
    while (weft_ws_recv(c->ws, &msg) == 0) {
    }
  }
  weft_scope_leave(&s);
}

static void conn_list_add(chat_conn *c) {
  chat_conn **head = &exec_conns[c->executor];
  c->next = *head;
  if (*head != NULL) (*head)->prev = c;
  *head = c;
}

static void conn_list_remove(chat_conn *c) {
  if (c->prev != NULL)
    c->prev->next = c->next;
  else
    exec_conns[c->executor] = c->next;
  if (c->next != NULL) c->next->prev = c->prev;
  c->prev = c->next = NULL;
}

void chat_conns_stop_executor(void) {
  int e = weft_executor_id();
  if (e < 1 || e > 1024) return;
  for (chat_conn *c = exec_conns[e]; c != NULL; c = c->next) {
    if (c->stopping) continue;
    c->stopping = 1;
    conn_push_last(c, conn_bye("shutdown"), WEFT_WS_CLOSE_GOING_AWAY);
    if (c->read_scope != NULL) weft_scope_cancel(c->read_scope);
  }
}

static void writer_wait_cancel(weft_parked *t, void *data) {
  chat_conn *c = data;
  if (c->end_waiter == t) {
    c->end_waiter = NULL;
    weft_unpark(t, 0);
  }
}

static int conn_writer_state(chat_conn *c) {
  pthread_mutex_lock(&c->lock);
  int w = c->writer_on;
  pthread_mutex_unlock(&c->lock);
  return w;
}

/* Stops what is still to be written: the write in progress too. */
static void conn_abort(chat_conn *c) {
  pthread_mutex_lock(&c->lock);
  c->abort = 1;
  pthread_mutex_unlock(&c->lock);
  if (c->write_scope != NULL) weft_scope_cancel(c->write_scope);
}

/* Waits for c's writer task to end: timeout_ms, then it is stopped. */
static void conn_wait_writer(chat_conn *c, int64_t timeout_ms) {
  weft_scope s;
  weft_scope_enter(&s, timeout_ms);
  while (conn_writer_state(c) == WRITER_TASK && weft_cancelled() == 0) {
    c->end_waiter = weft_park_self();
    weft_park(writer_wait_cancel, c);
    c->end_waiter = NULL;
  }
  weft_scope_leave(&s);
  if (conn_writer_state(c) != WRITER_TASK) return;
  /* Too late, or the server is past its grace period: the writer stops
   * writing and ends at once. */
  conn_abort(c);
  weft_scope_enter_shielded(&s, WEFT_NO_DEADLINE);
  while (conn_writer_state(c) == WRITER_TASK) {
    c->end_waiter = weft_park_self();
    weft_park(NULL, NULL);
    c->end_waiter = NULL;
  }
  weft_scope_leave(&s);
}

static int conn_serve(weft_tcp *tcp, weft_ws *ws) {
  chat_conn *c = calloc(1, sizeof *c);
  if (c == NULL) return UV_ENOMEM;
  c->refs = 1;
  c->executor = weft_executor_id();
  c->tcp = tcp;
  c->ws = ws;
  c->reader = weft_park_self();
  pthread_mutex_init(&c->lock, NULL);
  conn_list_add(c);

  int end;
  if (app_server_stopping()) {
    c->stopping = 1;
    conn_push_last(c, conn_bye("shutdown"), WEFT_WS_CLOSE_GOING_AWAY);
    end = END_STOP;
  } else {
    end = tcp != NULL ? conn_read_tcp(c) : conn_read_ws(c);
  }
  if (end == END_IDLE) conn_push_last(c, conn_bye("idle"), WEFT_WS_CLOSE_GOING_AWAY);

  /* Nothing more is read: leave the rooms and free the nick at once, so
   * that the others hear of it, then let the writer finish. Shielded and
   * bounded, so that a shutdown's cancellation does not skip it. */
  weft_scope s;
  weft_scope_enter_shielded(&s, 2000);
  for (size_t i = 0; i < c->n_rooms; i++) {
    chat_room_gone(c->rooms[i].actor, c);
    free(c->rooms[i].name);
  }
  weft_scope_leave(&s);
  free(c->rooms);
  c->rooms = NULL;
  c->n_rooms = 0;
  if (c->nick[0] != '\0') {
    chat_nick_release(c->nick, c);
    if (chat_srv->cluster) chat_cluster_release(c->nick);
    app_gauge_add(chat_srv->sessions, -1);
    weft_gauge_add(chat_srv->m_sessions, -1);
  }

  /* What is queued (the replies to a client that closed its sending side,
   * bye, an error) is written and the connection's sending side ended:
   * within the linger time after the end of the stream, within the
   * server's grace period at a shutdown. By the writer task when one
   * runs (while the reader reads what the client still sends after a
   * last message), else by the reader. */
  int mine = conn_finish_queue(c);
  if (end == END_WRITER || end == END_CANCEL) conn_abort(c);
  int64_t limit = end == END_STOP ? WEFT_NO_DEADLINE : CHAT_LINGER_MS;
  if (mine) {
    weft_scope_enter(&s, limit);
    conn_drain(c, 0, 0);
    weft_scope_leave(&s);
    if (end == END_CLOSE) conn_linger(c);
  } else {
    if (end == END_CLOSE) conn_linger(c);
    conn_wait_writer(c, limit);
  }
  conn_list_remove(c);
  if (c->limiter != NULL) weft_limiter_free(c->limiter);
  conn_drop_claims(c);
  chat_conn_unref(c);
  return 0;
}

int chat_conn_serve_tcp(weft_tcp *tcp, void *ctx) {
  (void)ctx;
  return conn_serve(tcp, NULL);
}

int chat_conn_serve_ws(weft_ws *ws) { return conn_serve(NULL, ws); }

int chat_conns_init(int n_exec) {
  slow_consumer_buf = chat_error_buf(
      "slow_consumer", "you did not read fast enough; messages were dropped");
  starters = calloc((size_t)n_exec, sizeof *starters);
  if (slow_consumer_buf == NULL || starters == NULL) return UV_ENOMEM;
  for (int k = 0; k < n_exec; k++) {
    pthread_mutex_init(&starters[k].lock, NULL);
    starters[k].bell = weft_chan_new(1, 1, WEFT_CHAN_MPMC);
    n_starters = k + 1;
    if (starters[k].bell == NULL) return UV_ENOMEM;
  }
  return 0;
}

void chat_conns_stop_starters(void) {
  for (int k = 0; k < n_starters; k++) weft_chan_close(starters[k].bell);
}

void chat_conns_free(void) {
  chat_buf_unref(slow_consumer_buf);
  slow_consumer_buf = NULL;
  for (int k = 0; k < n_starters; k++) {
    weft_chan_free(starters[k].bell);
    pthread_mutex_destroy(&starters[k].lock);
  }
  free(starters);
  starters = NULL;
  n_starters = 0;
}
