/* weft_redis.c: a hiredis async context on an executor's loop.
 *
 * Every command sent gets a request record on the heap, kept in the order
 * sent (Redis answers in that order, and hiredis calls back in it). A task
 * waits on its record; a task that stops waiting (cancelled) leaves the
 * record behind with no task, and its reply, when it comes, is dropped.
 * When the connection goes, hiredis calls every pending callback with no
 * reply: each record's task is woken with UV_ECONNRESET.
 *
 * Replies are handed to the caller without a copy: the reader's freeObject
 * hook skips the one reply that the command callback has just kept.
 */
#include "weft_redis.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/async.h>
#include <hiredis/adapters/libuv.h>
#include <uv.h>

typedef struct redis_req {
  struct redis_req *prev, *next; /* in weft_redis.sent or .subs */
  weft_parked *task;             /* NULL once the caller stopped waiting */
  redisReply *reply;
  int64_t deadline;              /* weft_now() ms; -1: none */
} redis_req;

typedef struct req_list {
  redis_req *head, *tail;
} req_list;

typedef struct redis_msg {
  struct redis_msg *next;
  char *channel;
  char *payload;
  size_t len;
} redis_msg;

/* A task in weft_redis_next_message(), on its stack. */
typedef struct msg_waiter {
  struct msg_waiter *prev, *next;
  struct weft_redis *r;
  weft_parked *task;
  redis_msg *msg; /* set when a message was handed over */
} msg_waiter;

struct weft_redis {
  redisAsyncContext *ac;          /* NULL once lost or closed */
  redisReplyObjectFunctions fns;  /* hiredis's, freeObject replaced */
  int exec_id;                    /* the executor it belongs to */
  int lost;                       /* the error of later calls, 0 while up */
  int connect_err;                /* what the connect callback saw */
  int subscribed;
  int64_t command_timeout_ms;     /* 0: none */
  redis_req *timed_out;           /* the command whose timeout dropped us */
  uv_timer_t timer;               /* the oldest command's timeout */
  weft_parked *closer;            /* waits for the timer to close */
  req_list sent;                  /* commands waiting for replies */
  req_list subs;                  /* subscriptions waiting to be confirmed */
  redis_msg *msg_head, *msg_tail; /* messages no task took yet */
  msg_waiter *wait_head, *wait_tail;
  char addr[64];                  /* host:port, for the logs */
};

/* ---- Lists -------------------------------------------------------------- */

static void req_push(req_list *l, redis_req *q) {
  q->next = NULL;
  q->prev = l->tail;
  if (l->tail != NULL)
    l->tail->next = q;
  else
    l->head = q;
  l->tail = q;
}

static void req_unlink(req_list *l, redis_req *q) {
  if (q->prev != NULL)
    q->prev->next = q->next;
  else
    l->head = q->next;
  if (q->next != NULL)
    q->next->prev = q->prev;
  else
    l->tail = q->prev;
  q->prev = q->next = NULL;
}

static void waiter_unlink(weft_redis *r, msg_waiter *w) {
  if (w->prev != NULL)
    w->prev->next = w->next;
  else
    r->wait_head = w->next;
  if (w->next != NULL)
    w->next->prev = w->prev;
  else
    r->wait_tail = w->prev;
  w->prev = w->next = NULL;
}

/* ---- Replies kept for the caller ---------------------------------------- */

/* hiredis frees each reply once its callback returns; the callback of a
 * command marks the reply it hands to its task, and this hook (called on
 * the same thread right after) leaves that one alone. */
static _Thread_local void *kept_reply;

static void free_unless_kept(void *reply) {
  if (reply == kept_reply) {
    kept_reply = NULL;
    return;
  }
  freeReplyObject(reply);
}

/* ---- Events -------------------------------------------------------------
 *
 * hiredis's libuv adapter attaches the context (its uv_poll handle and its
 * cleanup are used as they are), but its poll callback drops a poll error:
 * libuv reports POLLERR (a refused connect, a reset connection) as status
 * UV_EBADF with the handle stopped, and the connection would then hang
 * until a timeout. These hooks replace the adapter's four: on an error
 * they let hiredis read, which finds the socket's error and disconnects. */

static void on_poll(uv_poll_t *handle, int status, int events) {
  redisLibuvEvents *p = handle->data;
  if (status < 0) events = UV_READABLE;
  if (p->context != NULL && (events & UV_READABLE)) redisAsyncHandleRead(p->context);
  if (p->context != NULL && (events & UV_WRITABLE)) redisAsyncHandleWrite(p->context);
}

static void poll_update(redisLibuvEvents *p) {
  if (p->events)
    uv_poll_start(&p->handle, p->events, on_poll);
  else
    uv_poll_stop(&p->handle);
}

static void add_read(void *privdata) {
  redisLibuvEvents *p = privdata;
  p->events |= UV_READABLE;
  poll_update(p);
}

static void del_read(void *privdata) {
  redisLibuvEvents *p = privdata;
  p->events &= ~UV_READABLE;
  poll_update(p);
}

static void add_write(void *privdata) {
  redisLibuvEvents *p = privdata;
  p->events |= UV_WRITABLE;
  poll_update(p);
}

static void del_write(void *privdata) {
  redisLibuvEvents *p = privdata;
  p->events &= ~UV_WRITABLE;
  poll_update(p);
}

/* ---- Errors ------------------------------------------------------------- */

/* hiredis reports a system error as its strerror() text. */
static int map_hiredis_error(int err, const char *errstr) {
  static const int sys[] = {ECONNREFUSED, ECONNRESET, ETIMEDOUT,     EHOSTUNREACH,
                            ENETUNREACH,  EPIPE,      EADDRNOTAVAIL, ECONNABORTED};
  switch (err) {
  case REDIS_ERR_IO:
    for (size_t i = 0; errstr != NULL && i < sizeof sys / sizeof sys[0]; i++)
      if (strstr(errstr, strerror(sys[i])) != NULL) return uv_translate_sys_error(sys[i]);
    return UV_EIO;
  case REDIS_ERR_EOF:
    return UV_ECONNRESET;
  case REDIS_ERR_OOM:
    return UV_ENOMEM;
  case REDIS_ERR_PROTOCOL:
    return UV_EPROTO;
  default:
    return UV_EIO;
  }
}

/* The connection is gone (lost, dropped or closed): later calls fail, and
 * tasks waiting for messages are woken. Idempotent. */
static void mark_lost(weft_redis *r) {
  if (r->lost == 0) r->lost = UV_ECONNRESET;
  r->ac = NULL;
  while (r->wait_head != NULL) {
    msg_waiter *w = r->wait_head;
    waiter_unlink(r, w);
    weft_unpark(w->task, UV_ECONNRESET);
  }
}

/* ---- hiredis callbacks (on the loop, the executor's thread) ------------- */

static void on_connect(const redisAsyncContext *ac, int status) {
  weft_redis *r = ac->data;
  if (status != REDIS_OK) r->connect_err = map_hiredis_error(ac->c.err, ac->c.errstr);
}

static void on_disconnect(const redisAsyncContext *ac, int status) {
  weft_redis *r = ac->data;
  if (status != REDIS_OK)
    weft_log(WEFT_LOG_WARN, "redis: connection lost", "addr=%s error=\"%s\"", r->addr,
             ac->c.errstr);
  mark_lost(r);
}

/* A command's reply, or NULL when the connection went first. */
static void on_reply(redisAsyncContext *ac, void *reply, void *privdata) {
  weft_redis *r = ac->data;
  redis_req *q = privdata;
  req_unlink(&r->sent, q);
  int status = 0;
  if (reply == NULL) {
    status = q == r->timed_out ? UV_ETIMEDOUT : UV_ECONNRESET;
    mark_lost(r);
  }
  if (q->task == NULL) {
    free(q); /* its caller gave up: the reply is dropped */
    return;
  }
  if (reply != NULL) {
    q->reply = reply;
    kept_reply = reply;
  }
  weft_unpark(q->task, status);
}

static void deliver(weft_redis *r, const redisReply *ch, const redisReply *pl) {
  if (ch->type != REDIS_REPLY_STRING || pl->type != REDIS_REPLY_STRING) return;
  redis_msg *m = malloc(sizeof *m);
  char *channel = malloc(ch->len + 1);
  char *payload = malloc(pl->len + 1);
  if (m == NULL || channel == NULL || payload == NULL) {
    weft_log(WEFT_LOG_ERROR, "redis: message dropped: out of memory", "addr=%s", r->addr);
    free(m);
    free(channel);
    free(payload);
    return;
  }
  memcpy(channel, ch->str, ch->len);
  channel[ch->len] = '\0';
  memcpy(payload, pl->str, pl->len);
  payload[pl->len] = '\0';
  *m = (redis_msg){NULL, channel, payload, pl->len};
  msg_waiter *w = r->wait_head;
  if (w != NULL) {
    waiter_unlink(r, w);
    w->msg = m;
    weft_unpark(w->task, 0);
    return; /* cppcheck-suppress memleak ; channel and payload belong to m */
  }
  if (r->msg_tail != NULL)
    r->msg_tail->next = m;
  else
    r->msg_head = m;
  r->msg_tail = m;
} /* cppcheck-suppress memleak ; channel and payload belong to m */

/* Everything the subscriptions receive: confirmations, messages, and NULL
 * when the connection goes. */
static void on_subscription(redisAsyncContext *ac, void *reply, void *privdata) {
  weft_redis *r = privdata;
  (void)ac;
  redisReply *rep = reply;
  if (rep == NULL) {
    /* Once per subscription: wake the unconfirmed ones once. */
    redis_req *next = r->subs.head;
    r->subs.head = r->subs.tail = NULL;
    while (next != NULL) {
      redis_req *q = next;
      next = q->next;
      q->prev = q->next = NULL;
      if (q->task != NULL)
        weft_unpark(q->task, UV_ECONNRESET);
      else
        free(q);
    }
    mark_lost(r);
    return;
  }
  if (rep->type != REDIS_REPLY_ARRAY || rep->elements < 3 ||
      rep->element[0]->type != REDIS_REPLY_STRING)
    return;
  const char *kind = rep->element[0]->str;
  if (strcmp(kind, "message") == 0) {
    deliver(r, rep->element[1], rep->element[2]);
  } else if (strcmp(kind, "pmessage") == 0 && rep->elements >= 4) {
    deliver(r, rep->element[2], rep->element[3]);
  } else if (strcmp(kind, "subscribe") == 0 || strcmp(kind, "psubscribe") == 0) {
    redis_req *q = r->subs.head;
    if (q == NULL) return;
    req_unlink(&r->subs, q);
    if (q->task != NULL)
      weft_unpark(q->task, 0);
    else
      free(q);
  }
}

/* ---- Command timeouts --------------------------------------------------- */

/* Drops the connection: every pending callback runs at once with no reply. */
static void drop(weft_redis *r) {
  redisAsyncContext *ac = r->ac;
  if (ac == NULL) return;
  r->ac = NULL;
  redisAsyncFree(ac);
  mark_lost(r);
}

/* Fires at the oldest command's deadline (commands are answered in the
 * order sent, so the oldest is the first to be late). */
static void on_timer(uv_timer_t *t) {
  weft_redis *r = t->data;
  redis_req *q = r->sent.head;
  if (q == NULL || r->ac == NULL || q->deadline < 0) return;
  int64_t now = weft_now();
  if (q->deadline > now) {
    uv_timer_start(&r->timer, on_timer, (uint64_t)(q->deadline - now), 0);
    return;
  }
  weft_log(WEFT_LOG_WARN, "redis: command timed out, dropping the connection",
           "addr=%s timeout_ms=%lld", r->addr, (long long)r->command_timeout_ms);
  r->timed_out = q;
  drop(r);
  r->timed_out = NULL;
}

/* ---- Waiting in a task -------------------------------------------------- */

static void cancel_req(weft_parked *task, void *data) {
  redis_req *q = data;
  q->task = NULL; /* the callback frees q */
  weft_unpark(task, 0);
}

/* Checks that r may take a call from the calling task. */
static int check_caller(const weft_redis *r) {
  if (r == NULL) return UV_EINVAL;
  if (!weft_in_task()) return WEFT_ENOTASK;
  if (weft_executor_id() != r->exec_id) return UV_EINVAL;
  int c = weft_cancelled();
  if (c != 0) return c;
  return r->ac == NULL ? r->lost : 0;
}

/* Waits for q, sent with callback on_reply. */
static int wait_reply(weft_redis *r, redis_req *q, redisReply **reply) {
  if (r->command_timeout_ms > 0 && !uv_is_active((uv_handle_t *)&r->timer))
    uv_timer_start(&r->timer, on_timer, (uint64_t)r->command_timeout_ms, 0);
  int rc = weft_park(cancel_req, q);
  if (q->task == NULL) return rc; /* cancelled: q is the callback's now */
  if (rc == 0) *reply = q->reply;
  free(q);
  return rc;
}

static redis_req *new_req(weft_redis *r) {
  redis_req *q = calloc(1, sizeof *q);
  if (q == NULL) return NULL;
  q->task = weft_park_self();
  q->deadline = r->command_timeout_ms > 0 ? weft_now() + r->command_timeout_ms : -1;
  return q;
}

/* hiredis refuses a command when it cannot format it, or when the context
 * is on its way out. */
static int send_failed(weft_redis *r, redis_req *q) {
  req_unlink(&r->sent, q);
  free(q);
  return r->ac == NULL || (r->ac->c.flags & (REDIS_DISCONNECTING | REDIS_FREEING)) ? UV_ECONNRESET
                                                                                 : UV_EINVAL;
}

static int command_va(weft_redis *r, redisReply **reply, const char *fmt, va_list ap) {
  redis_req *q = new_req(r);
  if (q == NULL) return UV_ENOMEM;
  req_push(&r->sent, q);
  if (redisvAsyncCommand(r->ac, on_reply, q, fmt, ap) != REDIS_OK) return send_failed(r, q);
  return wait_reply(r, q, reply);
}

static int command_argv(weft_redis *r, redisReply **reply, int argc, const char **argv,
                        const size_t *argvlen) {
  redis_req *q = new_req(r);
  if (q == NULL) return UV_ENOMEM;
  req_push(&r->sent, q);
  if (redisAsyncCommandArgv(r->ac, on_reply, q, argc, argv, argvlen) != REDIS_OK)
    return send_failed(r, q);
  return wait_reply(r, q, reply);
}

/* ---- The calls ---------------------------------------------------------- */

int weft_redis_command(weft_redis *r, redisReply **reply, const char *fmt, ...) {
  if (reply != NULL) *reply = NULL;
  int err = check_caller(r);
  if (err != 0) return err;
  if (reply == NULL || fmt == NULL || r->subscribed) return UV_EINVAL;
  va_list ap;
  va_start(ap, fmt);
  err = command_va(r, reply, fmt, ap);
  va_end(ap);
  return err;
}

int weft_redis_commandv(weft_redis *r, redisReply **reply, int argc, const char **argv,
                        const size_t *argvlen) {
  if (reply != NULL) *reply = NULL;
  int err = check_caller(r);
  if (err != 0) return err;
  if (reply == NULL || argc < 1 || argv == NULL || r->subscribed) return UV_EINVAL;
  return command_argv(r, reply, argc, argv, argvlen);
}

int weft_redis_subscribe(weft_redis *r, const char *channel, int pattern) {
  int err = check_caller(r);
  if (err != 0) return err;
  if (channel == NULL || r->sent.head != NULL) return UV_EINVAL;
  redis_req *q = calloc(1, sizeof *q);
  if (q == NULL) return UV_ENOMEM;
  q->task = weft_park_self();
  q->deadline = -1;
  req_push(&r->subs, q);
  const char *argv[2] = {pattern ? "PSUBSCRIBE" : "SUBSCRIBE", channel};
  if (redisAsyncCommandArgv(r->ac, on_subscription, r, 2, argv, NULL) != REDIS_OK) {
    req_unlink(&r->subs, q);
    free(q);
    return UV_ECONNRESET;
  }
  r->subscribed = 1;
  int rc = weft_park(cancel_req, q);
  if (q->task != NULL) free(q);
  return rc;
}

/* The waiter is still queued: weft_park() calls this only while parked. */
static void cancel_waiter(weft_parked *task, void *data) {
  msg_waiter *w = data;
  waiter_unlink(w->r, w);
  weft_unpark(task, 0);
}

int weft_redis_next_message(weft_redis *r, int64_t timeout_ms, char **channel, char **payload,
                            size_t *len) {
  if (channel != NULL) *channel = NULL;
  if (payload != NULL) *payload = NULL;
  if (len != NULL) *len = 0;
  if (r == NULL || channel == NULL || payload == NULL || len == NULL) return UV_EINVAL;
  if (!weft_in_task()) return WEFT_ENOTASK;
  if (weft_executor_id() != r->exec_id) return UV_EINVAL;
  redis_msg *m = r->msg_head;
  if (m == NULL) {
    int err = weft_cancelled();
    if (err == 0 && r->ac == NULL) err = r->lost;
    if (err == 0 && timeout_ms == 0) err = UV_ETIMEDOUT;
    if (err != 0) return err;
    msg_waiter w = {NULL, NULL, r, weft_park_self(), NULL};
    w.prev = r->wait_tail;
    if (r->wait_tail != NULL)
      r->wait_tail->next = &w;
    else
      r->wait_head = &w;
    r->wait_tail = &w;
    weft_scope s;
    if (timeout_ms > 0) weft_scope_enter(&s, timeout_ms);
    /* Once woken, r may be gone (closed by another task). */
    int rc = weft_park(cancel_waiter, &w);
    if (timeout_ms > 0) weft_scope_leave(&s);
    if (w.msg == NULL) return rc != 0 ? rc : UV_ECONNRESET;
    m = w.msg;
  } else {
    r->msg_head = m->next;
    if (r->msg_head == NULL) r->msg_tail = NULL;
  }
  *channel = m->channel;
  *payload = m->payload;
  *len = m->len;
  free(m);
  return 0;
}

int weft_redis_connected(const weft_redis *r) { return r != NULL && r->ac != NULL; }

static void on_timer_closed(uv_handle_t *h) {
  weft_redis *r = h->data;
  weft_unpark(r->closer, 0);
}

static void free_conn(weft_redis *r) {
  drop(r);
  while (r->msg_head != NULL) {
    redis_msg *m = r->msg_head;
    r->msg_head = m->next;
    free(m->channel);
    free(m->payload);
    free(m);
  }
  r->msg_tail = NULL;
  r->closer = weft_park_self();
  uv_close((uv_handle_t *)&r->timer, on_timer_closed);
  weft_park(NULL, NULL);
  free(r);
}

void weft_redis_close(weft_redis *r) {
  if (r == NULL) return;
  free_conn(r);
}

/* Connects to one address (a numeric IP) and waits for a PING's reply,
 * which proves that a Redis server answers; when the connection fails
 * first, hiredis calls the PING's callback with no reply. */
static int connect_addr(const char *ip, int port, int64_t command_timeout_ms, weft_redis **out) {
  weft_redis *r = calloc(1, sizeof *r);
  if (r == NULL) return UV_ENOMEM;
  r->exec_id = weft_executor_id();
  snprintf(r->addr, sizeof r->addr, "%.46s:%d", ip, port);
  uv_timer_init(weft_loop(), &r->timer);
  r->timer.data = r;

  int err = 0;
  redisAsyncContext *ac = redisAsyncConnect(ip, port);
  if (ac == NULL) {
    free_conn(r);
    return UV_ENOMEM;
  }
  if (ac->err != 0) {
    err = map_hiredis_error(ac->c.err, ac->c.errstr);
    redisAsyncFree(ac);
    free_conn(r);
    return err;
  }
  ac->data = r;
  r->fns = *ac->c.reader->fn;
  r->fns.freeObject = free_unless_kept;
  ac->c.reader->fn = &r->fns;
  if (redisLibuvAttach(ac, weft_loop()) != REDIS_OK) {
    redisAsyncFree(ac);
    free_conn(r);
    return UV_ENOMEM;
  }
  ac->ev.addRead = add_read;
  ac->ev.delRead = del_read;
  ac->ev.addWrite = add_write;
  ac->ev.delWrite = del_write;
  redisAsyncSetConnectCallback(ac, on_connect);
  redisAsyncSetDisconnectCallback(ac, on_disconnect);
  r->ac = ac;

  redisReply *reply = NULL;
  const char *ping[1] = {"PING"};
  err = command_argv(r, &reply, 1, ping, NULL);
  if (reply != NULL) freeReplyObject(reply);
  if (err != 0) {
    if (r->connect_err != 0) err = r->connect_err;
    free_conn(r);
    return err;
  }
  r->command_timeout_ms = command_timeout_ms;
  *out = r;
  return 0;
}

int weft_redis_connect(const char *host, int port, const weft_redis_opts *opts,
                       weft_redis **out) {
  if (out != NULL) *out = NULL;
  if (host == NULL || out == NULL || port < 1 || port > 65535) return UV_EINVAL;
  if (!weft_in_task()) return WEFT_ENOTASK;
  int err = weft_cancelled();
  if (err != 0) return err;
  int connect_timeout = opts != NULL && opts->connect_timeout_ms > 0 ? opts->connect_timeout_ms
                                                                     : 2000;
  int64_t command_timeout = opts != NULL && opts->command_timeout_ms > 0
                                ? opts->command_timeout_ms
                                : 0;

  /* hiredis would resolve a name with a blocking getaddrinfo() on the loop:
   * resolve it here, and hand hiredis each address in turn. */
  enum { MAX_ADDRS = 8 };
  char ips[MAX_ADDRS][INET6_ADDRSTRLEN];
  int n = 1;
  struct in6_addr probe;
  if (uv_inet_pton(AF_INET, host, &probe) == 0 || uv_inet_pton(AF_INET6, host, &probe) == 0) {
    snprintf(ips[0], sizeof ips[0], "%s", host);
  } else {
    struct sockaddr_storage addrs[MAX_ADDRS];
    n = weft_dns_lookup(host, port, addrs, MAX_ADDRS);
    if (n < 0) return n;
    for (int i = 0; i < n; i++) {
      if (addrs[i].ss_family == AF_INET6)
        uv_ip6_name((const struct sockaddr_in6 *)&addrs[i], ips[i], sizeof ips[i]);
      else
        uv_ip4_name((const struct sockaddr_in *)&addrs[i], ips[i], sizeof ips[i]);
    }
  }

  /* One deadline for every attempt. */
  weft_scope s;
  weft_scope_enter(&s, connect_timeout);
  err = UV_EINVAL;
  for (int i = 0; i < n; i++) {
    err = connect_addr(ips[i], port, command_timeout, out);
    if (err == 0 || weft_cancelled()) break;
  }
  weft_scope_leave(&s);
  return err;
}
