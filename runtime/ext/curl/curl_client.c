/* curl_client.c: libcurl's multi interface driven by an executor's loop.
 *
 * libcurl tells the client which sockets to watch (the socket callback) and
 * when to call it back (the timer callback); the client watches each socket
 * with a uv_poll handle and keeps one uv_timer, and whenever either fires it
 * calls curl_multi_socket_action() and then reaps the finished transfers
 * with curl_multi_info_read(), unparking the task that waits on each.
 *
 * Sockets outlive transfers. libcurl says CURL_POLL_REMOVE for a kept-alive
 * connection every time a transfer on it ends, and asks for it again when
 * the next one starts: closing the poll handle there and making a new one
 * costs four epoll_ctl() calls, an ioctl() and an allocation per request.
 * So a socket libcurl removes stays watched for input (an idle connection
 * is silent; a hang-up or stray data stops the watch), its poll handle is
 * found again by descriptor, and it is closed only when libcurl closes the
 * socket itself, which the client learns through CURLOPT_CLOSESOCKETFUNCTION.
 *
 * Every call into libcurl made from the loop is bracketed by in_curl, so
 * that a cancellation arriving from inside one of libcurl's callbacks (a
 * user's write callback cancelling a group, say) is deferred until libcurl
 * has returned: a multi handle must not be re-entered.
 */
#include "weft_curl.h"

#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef _WIN32
#include <winsock2.h>
#else
#include <unistd.h>
#endif

#include <uv.h>

/* ---- A small map from keys to pointers ----------------------------------- */

/* Open addressing with linear probing, for the transfers by easy handle and
 * the sockets by descriptor: both are looked up once per request, and a
 * list walk there costs as much as the concurrency. A slot is empty when
 * its value is NULL; removal shifts the following run back, so no
 * tombstones accumulate. */
typedef struct ptr_map {
  uintptr_t *keys;
  void **vals;
  size_t cap; /* a power of two, or 0 */
  size_t n;
} ptr_map;

/* The slot where key's probe starts. */
static size_t map_home(const ptr_map *m, uintptr_t key) {
  uint64_t h = (uint64_t)key * 0x9e3779b97f4a7c15ull;
  return (size_t)(h ^ (h >> 29)) & (m->cap - 1);
}

/* Returns the value stored for key, or NULL. */
static void *map_get(const ptr_map *m, uintptr_t key) {
  if (m->n == 0) return NULL;
  for (size_t i = map_home(m, key);; i = (i + 1) & (m->cap - 1)) {
    if (m->vals[i] == NULL) return NULL;
    if (m->keys[i] == key) return m->vals[i];
  }
}

static int map_put(ptr_map *m, uintptr_t key, void *val);

/* Doubles the table (16 slots at first). Returns 0, or -1 without memory. */
static int map_grow(ptr_map *m) {
  ptr_map bigger = {0};
  bigger.cap = m->cap ? m->cap * 2 : 16;
  bigger.keys = calloc(bigger.cap, sizeof *bigger.keys);
  bigger.vals = calloc(bigger.cap, sizeof *bigger.vals);
  if (bigger.keys == NULL || bigger.vals == NULL) {
    free(bigger.keys);
    free(bigger.vals);
    return -1;
  }
  for (size_t i = 0; i < m->cap; i++)
    if (m->vals[i] != NULL) map_put(&bigger, m->keys[i], m->vals[i]);
  free(m->keys);
  free(m->vals);
  *m = bigger;
  return 0;
}

/* Stores val (not NULL) for key, replacing any value it had. Returns 0, or
 * -1 without memory (the map is unchanged). */
static int map_put(ptr_map *m, uintptr_t key, void *val) {
  assert(val != NULL);
  if ((m->n + 1) * 4 > m->cap * 3 && map_grow(m) != 0) return -1;
  size_t i = map_home(m, key);
  while (m->vals[i] != NULL && m->keys[i] != key) i = (i + 1) & (m->cap - 1);
  if (m->vals[i] == NULL) m->n++;
  m->keys[i] = key;
  m->vals[i] = val;
  return 0;
}

/* Removes key if present. */
static void map_del(ptr_map *m, uintptr_t key) {
  if (m->n == 0) return;
  size_t mask = m->cap - 1, i = map_home(m, key);
  while (m->vals[i] != NULL && m->keys[i] != key) i = (i + 1) & mask;
  if (m->vals[i] == NULL) return;
  m->n--;
  /* Backward shift: move up every later entry of the run whose home slot
   * does not lie (cyclically) after the hole, so probes still find it. */
  for (size_t j = (i + 1) & mask; m->vals[j] != NULL; j = (j + 1) & mask) {
    size_t home = map_home(m, m->keys[j]);
    if (((j - home) & mask) >= ((j - i) & mask)) {
      m->keys[i] = m->keys[j];
      m->vals[i] = m->vals[j];
      i = j;
    }
  }
  m->vals[i] = NULL;
}

/* Frees the table. */
static void map_free(ptr_map *m) {
  free(m->keys);
  free(m->vals);
  memset(m, 0, sizeof *m);
}

/* A socket libcurl asked the client to watch. Allocated on the first
 * request, kept while libcurl keeps the socket open (idle between
 * transfers included), freed by the close callback of its poll handle, so
 * that a socket libcurl drops while its poll is still closing never
 * touches freed memory. */
typedef struct curl_sock {
  uv_poll_t poll;
  curl_socket_t fd;
  weft_curl *client;
  int events;                    /* UV_READABLE/UV_WRITABLE watched; 0: none */
  int idle;                      /* libcurl said CURL_POLL_REMOVE */
  struct curl_sock *prev, *next; /* in client->socks while not closing */
} curl_sock;

/* A weft_curl_perform() in flight; lives on the waiting task's stack. */
typedef struct curl_xfer {
  CURL *easy;
  weft_parked *task;
  weft_curl *client;
  CURLcode code;      /* libcurl's result once done */
  int cancel_pending; /* cancelled while libcurl was running */
  int in_flight;      /* in client->xfer_by_easy */
} curl_xfer;

struct weft_curl {
  CURLM *multi;
  uv_loop_t *loop;      /* the creating executor's loop */
  uv_timer_t timer;     /* libcurl's single timeout */
  curl_sock *socks;     /* sockets open, watched or idle */
  ptr_map sock_by_fd;   /* the same, by descriptor */
  ptr_map xfer_by_easy; /* transfers in flight, by easy handle */
  int in_curl;          /* depth of calls into libcurl */
  int woken;            /* tasks unparked by the current drive() */
  int pending_cancels;  /* xfers with cancel_pending set */
  int closing;          /* close callbacks still to come */
  weft_parked *freeing; /* the task waiting in weft_curl_free() */
  int free_when_closed; /* freed outside a task: the last close frees */
};

/* ---- libcurl, once per process ------------------------------------------ */

static uv_once_t global_once = UV_ONCE_INIT;
static CURLcode global_result = CURLE_FAILED_INIT;

static void global_cleanup(void) { curl_global_cleanup(); }

/* Initialises libcurl. curl_global_init is not thread-safe in every libcurl
 * version, and executors may create clients at the same time: uv_once runs
 * it exactly once. The cleanup at exit lets leak checkers see libcurl's (and
 * its TLS library's) global state freed. */
static void global_init(void) {
  global_result = curl_global_init(CURL_GLOBAL_DEFAULT);
  if (global_result == CURLE_OK) atexit(global_cleanup);
}

/* ---- Errors -------------------------------------------------------------- */

/* The table of weft_curl.h, one line per outcome. */
int weft_curl_error(CURLcode code) {
  /* clang-format off */
  switch (code) {
  case CURLE_OK: return 0;
  case CURLE_COULDNT_CONNECT: return UV_ECONNREFUSED;
  case CURLE_COULDNT_RESOLVE_HOST:
  case CURLE_COULDNT_RESOLVE_PROXY: return UV_EAI_NONAME;
  case CURLE_OPERATION_TIMEDOUT: return UV_ETIMEDOUT;
  case CURLE_ABORTED_BY_CALLBACK: return UV_ECANCELED;
  case CURLE_URL_MALFORMAT:
  case CURLE_UNSUPPORTED_PROTOCOL:
  case CURLE_BAD_FUNCTION_ARGUMENT:
  case CURLE_NOT_BUILT_IN:
  case CURLE_UNKNOWN_OPTION:
  case CURLE_FAILED_INIT: return UV_EINVAL;
  case CURLE_OUT_OF_MEMORY: return UV_ENOMEM;
  case CURLE_SEND_ERROR: return UV_EPIPE;
  case CURLE_RECV_ERROR: return UV_ECONNRESET;
  case CURLE_GOT_NOTHING:
  case CURLE_PARTIAL_FILE: return UV_EOF;
  case CURLE_WEIRD_SERVER_REPLY:
  case CURLE_HTTP2:
  case CURLE_HTTP2_STREAM:
  case CURLE_HTTP3:
  case CURLE_HTTP_RETURNED_ERROR:
  case CURLE_BAD_CONTENT_ENCODING:
  case CURLE_RANGE_ERROR:
  case CURLE_PEER_FAILED_VERIFICATION:
  case CURLE_SSL_CONNECT_ERROR:
  case CURLE_SSL_ENGINE_NOTFOUND:
  case CURLE_SSL_ENGINE_SETFAILED:
  case CURLE_SSL_CERTPROBLEM:
  case CURLE_SSL_CIPHER:
  case CURLE_SSL_ENGINE_INITFAILED:
  case CURLE_SSL_CACERT_BADFILE:
  case CURLE_SSL_SHUTDOWN_FAILED:
  case CURLE_SSL_CRL_BADFILE:
  case CURLE_SSL_ISSUER_ERROR:
  case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
  case CURLE_SSL_INVALIDCERTSTATUS:
  case CURLE_SSL_CLIENTCERT: return UV_EPROTO;
  case CURLE_TOO_MANY_REDIRECTS: return UV_ELOOP;
  case CURLE_FILESIZE_EXCEEDED: return UV_EFBIG;
  case CURLE_LOGIN_DENIED:
  case CURLE_REMOTE_ACCESS_DENIED:
  case CURLE_AUTH_ERROR: return UV_EACCES;
  case CURLE_AGAIN: return UV_EAGAIN;
  default: return UV_EIO;
  }
  /* clang-format on */
}

/* ---- Handles ------------------------------------------------------------- */

/* Counts a close callback in; the last one wakes weft_curl_free(), or
 * frees the client when that was called outside a task. */
static void on_handle_closed(uv_handle_t *h) {
  weft_curl *c = h->data;
  if (h->type == UV_POLL) {
    c = ((curl_sock *)h->data)->client;
    free(h->data);
  }
  assert(c->closing > 0);
  if (--c->closing > 0) return;
  if (c->freeing != NULL)
    weft_unpark(c->freeing, 0);
  else if (c->free_when_closed)
    free(c);
}

/* Stops watching s and closes its poll handle; s is freed once closed. */
static void sock_close(weft_curl *c, curl_sock *s) {
  map_del(&c->sock_by_fd, (uintptr_t)s->fd);
  if (s->prev != NULL)
    s->prev->next = s->next;
  else
    c->socks = s->next;
  if (s->next != NULL) s->next->prev = s->prev;
  s->prev = s->next = NULL;
  c->closing++;
  uv_close((uv_handle_t *)&s->poll, on_handle_closed);
}

/* ---- Driving libcurl ----------------------------------------------------- */

/* Takes x out of the client's transfers in flight. They are kept in a map
 * only, not in a list through the waiting tasks' stacks as well: unlinking
 * would touch two more of those stacks, cold in cache, per request. */
static void xfer_unlink(weft_curl *c, curl_xfer *x) {
  map_del(&c->xfer_by_easy, (uintptr_t)x->easy);
  x->in_flight = 0;
}

/* Returns one transfer in flight for which pending is true (any transfer
 * when pending is 0), or NULL. A walk over the map: for cancellations and
 * the client's end only. */
static curl_xfer *xfer_find(weft_curl *c, int pending) {
  for (size_t i = 0; i < c->xfer_by_easy.cap; i++) {
    curl_xfer *x = c->xfer_by_easy.vals[i];
    if (x != NULL && (!pending || x->cancel_pending)) return x;
  }
  return NULL;
}

/* Takes x off the multi handle before it has finished and wakes its task.
 * Removing a transfer in progress closes its connection rather than
 * returning it to the cache, since the stream is in an unknown state. */
static void xfer_abort(weft_curl *c, curl_xfer *x) {
  c->in_curl++;
  curl_multi_remove_handle(c->multi, x->easy);
  c->in_curl--;
  xfer_unlink(c, x);
  if (x->cancel_pending) {
    x->cancel_pending = 0;
    c->pending_cancels--;
  }
  x->code = CURLE_ABORTED_BY_CALLBACK;
  weft_unpark(x->task, 0);
  c->woken++;
}

/* Aborts the transfers whose cancellation arrived while libcurl ran. */
static void run_pending_cancels(weft_curl *c) {
  while (c->pending_cancels > 0 && c->in_curl == 0) {
    curl_xfer *x = xfer_find(c, 1);
    if (x == NULL) {
      c->pending_cancels = 0;
      break;
    }
    xfer_abort(c, x);
  }
}

/* Reaps finished transfers and wakes their tasks. The message is copied
 * before curl_multi_remove_handle(), which invalidates it. Finding the
 * transfer by its easy handle (in a map, not a walk over every transfer in
 * flight) leaves CURLOPT_PRIVATE to the caller. */
static void reap_done(weft_curl *c) {
  CURLMsg *m;
  int left;
  while ((m = curl_multi_info_read(c->multi, &left)) != NULL) {
    if (m->msg != CURLMSG_DONE) continue;
    CURL *easy = m->easy_handle;
    CURLcode result = m->data.result;
    curl_multi_remove_handle(c->multi, easy);
    curl_xfer *x = map_get(&c->xfer_by_easy, (uintptr_t)easy);
    if (x == NULL) continue;
    xfer_unlink(c, x);
    if (x->cancel_pending) {
      x->cancel_pending = 0;
      c->pending_cancels--;
    }
    x->code = result;
    weft_unpark(x->task, 0);
    c->woken++;
  }
}

/* Lets libcurl act on fd (or on its timeout) and reaps what finished.
 * Returns the number of tasks it woke. */
static int drive(weft_curl *c, curl_socket_t fd, int flags) {
  int running;
  c->woken = 0;
  c->in_curl++;
  curl_multi_socket_action(c->multi, fd, flags, &running);
  reap_done(c);
  c->in_curl--;
  run_pending_cancels(c);
  return c->woken;
}

static void on_poll(uv_poll_t *h, int status, int events);

/* Watches s for events (UV_READABLE, UV_WRITABLE; 0: none). libuv's
 * uv_poll_start() always deletes and re-adds the descriptor in epoll, so
 * an unchanged set costs nothing here. Returns 0 or a libuv error. */
static int sock_watch(curl_sock *s, int events) {
  if (events == s->events) return 0;
  int err = events ? uv_poll_start(&s->poll, events, on_poll)
                   : uv_poll_stop(&s->poll);
  s->events = err == 0 ? events : 0;
  return err;
}

/* A watched socket is ready (or failed). An idle socket (one libcurl
 * removed, kept watched until it is used again) that stirs has hung up or
 * sent what nobody asked for: it is no longer watched, and libcurl finds
 * out when it tries to reuse the connection. s may be closed by libcurl
 * during drive(): nothing of it is used afterwards. */
static void on_poll(uv_poll_t *h, int status, int events) {
  curl_sock *s = h->data;
  if (s->idle) {
    sock_watch(s, 0);
    return;
  }
  int flags = 0;
  if (status < 0) {
    /* The socket has an error pending (a reset, mostly) and libuv has
     * stopped watching it. libcurl is handed the readiness it asked for:
     * its own read or write then meets the error, and on a reused
     * connection that has not answered yet it sends the request again on
     * a fresh one. CURL_CSELECT_ERR would fail the transfer outright. */
    if (s->events & UV_READABLE) flags |= CURL_CSELECT_IN;
    if (s->events & UV_WRITABLE) flags |= CURL_CSELECT_OUT;
    s->events = 0;
  } else {
    if (events & UV_READABLE) flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE) flags |= CURL_CSELECT_OUT;
  }
  drive(s->client, s->fd, flags);
}

/* libcurl's timeout. libuv may run timers before it polls for I/O in the
 * same turn: a task woken here would wait for that poll to end, so the
 * loop is stopped (for this turn only) to let the executor run it. */
static void on_timeout(uv_timer_t *t) {
  if (drive(t->data, CURL_SOCKET_TIMEOUT, 0) > 0) uv_stop(t->loop);
}

/* CURLMOPT_SOCKETFUNCTION: libcurl wants fd watched for what (or no more).
 * socketp is the curl_sock assigned to fd, NULL the first time in each
 * transfer that uses it; the client may know the socket already from an
 * earlier transfer. Returns 0, or -1 to fail the transfer when the socket
 * cannot be watched. */
static int on_curl_socket(CURL *easy, curl_socket_t fd, int what, void *userp,
                          void *socketp) {
  weft_curl *c = userp;
  curl_sock *s = socketp;
  (void)easy;
  if (s == NULL) s = map_get(&c->sock_by_fd, (uintptr_t)fd);
  if (what == CURL_POLL_REMOVE) {
    /* Kept open for the next transfer: watched for a hang-up only. A
     * socket that never got to wait for input is still connecting, and
     * libcurl may close such a one (a connect that timed out) without
     * CURLOPT_CLOSESOCKETFUNCTION: it is not watched any more, since libuv
     * aborts when it polls a descriptor that was closed under it. */
    if (s != NULL) {
      s->idle = 1;
      if (!(s->events & UV_READABLE))
        sock_watch(s, 0);
      else if (s->events != UV_READABLE)
        sock_watch(s, UV_READABLE);
    }
    return 0;
  }
  if (s == NULL) {
    s = calloc(1, sizeof *s);
    if (s == NULL) return -1;
    if (uv_poll_init_socket(c->loop, &s->poll, fd) != 0) {
      free(s);
      return -1;
    }
    s->fd = fd;
    s->client = c;
    s->poll.data = s;
    if (map_put(&c->sock_by_fd, (uintptr_t)fd, s) != 0) {
      c->closing++;
      uv_close((uv_handle_t *)&s->poll, on_handle_closed);
      return -1;
    }
    s->next = c->socks;
    if (c->socks != NULL) c->socks->prev = s;
    c->socks = s;
  }
  if (socketp == NULL) curl_multi_assign(c->multi, fd, s);
  s->idle = 0;
  int events = 0;
  if (what & CURL_POLL_IN) events |= UV_READABLE;
  if (what & CURL_POLL_OUT) events |= UV_WRITABLE;
  return sock_watch(s, events) == 0 ? 0 : -1;
}

/* CURLOPT_CLOSESOCKETFUNCTION: libcurl closes fd. Its poll handle (when it
 * has one) is closed first: a descriptor must not be closed while it is
 * polled, and the same number may come back at once for a new socket. */
static int on_close_socket(void *clientp, curl_socket_t fd) {
  weft_curl *c = clientp;
  curl_sock *s = map_get(&c->sock_by_fd, (uintptr_t)fd);
  if (s != NULL) sock_close(c, s);
#ifdef _WIN32
  return closesocket(fd);
#else
  return close(fd);
#endif
}

/* CURLMOPT_TIMERFUNCTION: call libcurl back in timeout_ms (-1: never).
 * A timeout of 0 also goes through the uv timer, which fires on the next
 * loop turn: calling libcurl from inside its own callback would re-enter
 * the multi handle. */
static int on_curl_timer(CURLM *multi, long timeout_ms, void *userp) {
  weft_curl *c = userp;
  (void)multi;
  if (timeout_ms < 0) {
    uv_timer_stop(&c->timer);
    return 0;
  }
  return uv_timer_start(&c->timer, on_timeout, (uint64_t)timeout_ms, 0) == 0
             ? 0
             : -1;
}

/* The waiting task's scope was cancelled or its deadline passed. The task
 * is woken by xfer_abort(), now or once libcurl has returned. */
static void xfer_cancel(weft_parked *task, void *data) {
  curl_xfer *x = data;
  weft_curl *c = x->client;
  (void)task;
  if (c->in_curl > 0) {
    if (!x->cancel_pending) {
      x->cancel_pending = 1;
      c->pending_cancels++;
    }
    return;
  }
  xfer_abort(c, x);
  run_pending_cancels(c);
}

/* ---- The client ---------------------------------------------------------- */

weft_curl *weft_curl_new(const weft_curl_opts *opts) {
  weft_curl_opts o = {0};
  if (opts != NULL) o = *opts;
  if (o.max_connections < 0 || o.max_host_connections < 0 ||
      o.max_total_connections < 0 || o.multiplex < -1 || o.multiplex > 1)
    return NULL;
  uv_loop_t *loop = weft_loop();
  if (loop == NULL) return NULL;
  uv_once(&global_once, global_init);
  if (global_result != CURLE_OK) return NULL;

  weft_curl *c = calloc(1, sizeof *c);
  if (c == NULL) return NULL;
  c->multi = curl_multi_init();
  if (c->multi == NULL) {
    free(c);
    return NULL;
  }
  c->loop = loop;
  uv_timer_init(loop, &c->timer);
  c->timer.data = c;

  CURLM *m = c->multi;
  curl_multi_setopt(m, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
  curl_multi_setopt(m, CURLMOPT_SOCKETDATA, c);
  curl_multi_setopt(m, CURLMOPT_TIMERFUNCTION, on_curl_timer);
  curl_multi_setopt(m, CURLMOPT_TIMERDATA, c);
  curl_multi_setopt(m, CURLMOPT_PIPELINING,
                    o.multiplex < 0 ? CURLPIPE_NOTHING : CURLPIPE_MULTIPLEX);
  if (o.max_connections > 0)
    curl_multi_setopt(m, CURLMOPT_MAXCONNECTS, o.max_connections);
  if (o.max_host_connections > 0)
    curl_multi_setopt(m, CURLMOPT_MAX_HOST_CONNECTIONS, o.max_host_connections);
  if (o.max_total_connections > 0)
    curl_multi_setopt(m, CURLMOPT_MAX_TOTAL_CONNECTIONS,
                      o.max_total_connections);
  return c;
}

void weft_curl_free(weft_curl *c) {
  if (c == NULL) return;
  /* Transfers still in flight are a caller's mistake; stopping them keeps
   * their tasks from waiting forever on a client that is gone. */
  curl_xfer *x;
  while ((x = xfer_find(c, 0)) != NULL) xfer_abort(c, x);
  /* Closing the cached connections makes libcurl drop their sockets
   * through the socket callback, which needs the client still whole. */
  c->in_curl++;
  curl_multi_cleanup(c->multi);
  c->in_curl--;
  c->multi = NULL;
  while (c->socks != NULL) sock_close(c, c->socks);
  map_free(&c->sock_by_fd);
  map_free(&c->xfer_by_easy);
  c->closing++;
  uv_close((uv_handle_t *)&c->timer, on_handle_closed);
  if (!weft_in_task()) {
    /* On the loop's thread but not in a task (a libuv callback): nothing
     * can wait here, so the last close callback frees the client. */
    c->free_when_closed = 1;
    return;
  }
  c->freeing = weft_park_self();
  while (c->closing > 0) weft_park(NULL, NULL);
  free(c);
}

int weft_curl_perform(weft_curl *c, CURL *easy, CURLcode *code) {
  if (code != NULL) *code = CURLE_BAD_FUNCTION_ARGUMENT;
  if (c == NULL || easy == NULL) return UV_EINVAL;
  if (!weft_in_task()) return WEFT_ENOTASK;
  /* A multi handle must stay on one thread: its creator's. */
  if (weft_loop() != c->loop) return UV_EINVAL;
  int err = weft_cancelled();
  if (err != 0) {
    if (code != NULL) *code = CURLE_ABORTED_BY_CALLBACK;
    return err;
  }

  curl_xfer x;
  memset(&x, 0, sizeof x);
  x.easy = easy;
  x.task = weft_park_self();
  x.client = c;
  /* An easy handle in a transfer of this client is in the map; one in a
   * transfer of another is refused by curl_multi_add_handle() below. */
  if (map_get(&c->xfer_by_easy, (uintptr_t)easy) != NULL) {
    if (code != NULL) *code = CURLE_FAILED_INIT;
    return UV_EBUSY;
  }
  if (map_put(&c->xfer_by_easy, (uintptr_t)easy, &x) != 0) {
    if (code != NULL) *code = CURLE_OUT_OF_MEMORY;
    return UV_ENOMEM;
  }
  curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
  c->in_curl++;
  CURLMcode mc = curl_multi_add_handle(c->multi, easy);
  c->in_curl--;
  if (mc != CURLM_OK) {
    map_del(&c->xfer_by_easy, (uintptr_t)easy);
    if (code != NULL) *code = CURLE_FAILED_INIT;
    if (mc == CURLM_OUT_OF_MEMORY) return UV_ENOMEM;
    if (mc == CURLM_ADDED_ALREADY) return UV_EBUSY;
    return UV_EINVAL;
  }
  /* Set once the handle is surely ours (a handle busy in another client's
   * transfer was refused above), before libcurl acts on it at the next
   * loop turn. Connections take the close callback of the handle that
   * opened them, and live in this client's cache until closed: the
   * callback can rely on the client. It is reset afterwards, so that the
   * handle used elsewhere later never calls into a client that may be
   * gone. */
  curl_easy_setopt(easy, CURLOPT_CLOSESOCKETFUNCTION, on_close_socket);
  curl_easy_setopt(easy, CURLOPT_CLOSESOCKETDATA, c);
  x.in_flight = 1;

  int rc = weft_park(xfer_cancel, &x);
  assert(!x.in_flight);
  curl_easy_setopt(easy, CURLOPT_CLOSESOCKETFUNCTION, NULL);
  curl_easy_setopt(easy, CURLOPT_CLOSESOCKETDATA, NULL);
  if (code != NULL) *code = x.code;
  /* A cancellation wins over a transfer that ended in the same turn: the
   * caller's scope is over either way. */
  if (rc < 0) return rc;
  return weft_curl_error(x.code);
}
