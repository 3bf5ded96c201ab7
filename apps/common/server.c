/* server.c: listeners on every executor, a task per connection, and a
 * shutdown in three steps (stop accepting, drain, cancel).
 *
 * Tasks, and the executors they run on:
 *
 *   root (caller)      opens executor 1's listeners (which fixes the ports
 *                      that port 0 picked), starts the rest, logs
 *                      "listening on", waits for the workers, prints stats
 *   signals, stats     on the root's executor, in the auxiliary group
 *   worker k           one per executor: opens executor k's listeners (the
 *                      root's for its own executor), runs an accept loop per
 *                      listener, owns the group of its connections
 *   accept loop        accepts, applies the limit, spawns connection tasks
 *   connection         the application's handler
 *
 * A shutdown sets the stop event, the one record of it: every worker wakes,
 * cancels its accept loops (which close their listeners) and waits for its
 * connections.
 * The grace period is the signal task's: when it ends (or on a second
 * signal) the workers group is cancelled, which reaches every connection on
 * every executor.
 */
#include "server.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#ifndef _WIN32
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
#endif

#include "signals.h"

typedef struct worker worker;

typedef struct server {
  const app_server_opts *o;
  int n_exec;       /* executors that accept */
  int home;         /* the root's executor */
  int flags;        /* weft_tcp_listen() flags shared by every listener */
  int *ports;       /* the real port of each address */
  weft_event *stop; /* set when the shutdown begins */
  weft_chan *ready; /* each remote worker's listen result */
  worker *by_exec;  /* the worker of executor k at k - 1 */
  weft_tcp **listeners; /* every worker's, a row of addresses each */
  weft_group *workers;
  weft_group *aux; /* the signal task and the stats task */
  app_shutdown sd; /* what the signal task calls */
  app_stats_periodic periodic;
  app_counter *accepted;
  app_counter *rejected;
  app_counter *closed_at_shutdown;
  app_counter *accept_errors;
  app_counter *shed_fd_limit;
  app_gauge *active;
  int64_t fd_budget;        /* connections the open-file limit leaves; 0: any */
  int64_t last_fd_warn;     /* when shedding was last logged (ms, atomic) */
  int64_t last_reject_warn; /* when a rejection was last logged (ms) */
} server;

struct worker {
  server *srv;
  int executor;
  weft_tcp *
      *listeners; /* one per address; the root's executor: opened by root */
  weft_group *conns;
};

typedef struct acceptor {
  worker *w;
  weft_tcp *listener;
  app_conn_fn handler; /* for this listener's connections */
} acceptor;

typedef struct conn_start {
  server *srv;
  weft_tcp *conn;
  app_conn_fn handler;
} conn_start;

/* The running server's stop event, for handlers (app_server_stop_event());
 * NULL outside app_server_run(). */
static weft_event *server_stop_event;

int app_server_stopping(void) {
  weft_event *e = app_server_stop_event();
  return e != NULL && weft_event_is_set(e);
}

weft_event *app_server_stop_event(void) {
  return __atomic_load_n(&server_stop_event, __ATOMIC_ACQUIRE);
}

static int server_listen_flags(const app_addr *a, int base) {
  return strchr(a->host, ':') != NULL ? base | WEFT_TCP_IPV6ONLY : base;
}

/* ---- Connections --------------------------------------------------------- */

static int server_conn_task(void *arg) {
  conn_start start = *(conn_start *)arg;
  free(arg);
  server *srv = start.srv;
  int r = start.handler(start.conn, srv->o->ctx);
  /* The task's own scope is cancelled only when a shutdown's grace is over. */
  if (weft_cancelled() != 0)
    app_counter_add(srv->closed_at_shutdown, 1);
  else if (r < 0 && r != UV_ECANCELED)
    weft_log(WEFT_LOG_DEBUG, "connection ended with an error", "error=%s",
             weft_err_name(r));
  weft_tcp_close(start.conn);
  app_gauge_add(srv->active, -1);
  /* Never an error: the group would keep every error for its lifetime. */
  return 0;
}

/* Whether the event at *last (ms, shared by every executor) was more than
 * a second ago; if so, this call takes its place. For warnings that could
 * come thousands of times a second. */
static int server_warn_due(int64_t *last) {
  int64_t now = weft_now();
  int64_t was = __atomic_load_n(last, __ATOMIC_RELAXED);
  return now - was >= 1000 &&
         __atomic_compare_exchange_n(last, &was, now, 0, __ATOMIC_RELAXED,
                                     __ATOMIC_RELAXED);
}

/* The task of a connection refused at the limit: on_reject, then close. */
static int server_reject_task(void *arg) {
  conn_start start = *(conn_start *)arg;
  free(arg);
  start.srv->o->on_reject(start.conn, start.srv->o->ctx);
  weft_tcp_close(start.conn);
  return 0;
}

/* Takes one accepted connection: applies the limits, starts its task. */
static void server_take(worker *w, weft_tcp *c, app_conn_fn handler) {
  server *srv = w->srv;
  int64_t active = app_gauge_add(srv->active, 1);
  if (srv->o->max_connections > 0 && active > srv->o->max_connections) {
    app_gauge_add(srv->active, -1);
    app_counter_add(srv->rejected, 1);
    if (server_warn_due(&srv->last_reject_warn))
      weft_log(WEFT_LOG_WARN, "connection limit reached: connections refused",
               "max_connections=%lld rejected=%llu",
               (long long)srv->o->max_connections,
               (unsigned long long)app_counter_value(srv->rejected));
    conn_start *start =
        srv->o->on_reject != NULL ? malloc(sizeof *start) : NULL;
    if (start != NULL) {
      start->srv = srv;
      start->conn = c;
      if (weft_spawn(w->conns, server_reject_task, start) == 0) return;
      free(start);
    }
    weft_tcp_close(c);
    return;
  }
  if (srv->fd_budget > 0 && active > srv->fd_budget) {
    /* Closed now, while a descriptor is still free, rather than left to
     * libuv, which would shed every waiting connection unseen once
     * accept() fails with EMFILE. */
    app_gauge_add(srv->active, -1);
    app_counter_add(srv->shed_fd_limit, 1);
    weft_tcp_close(c);
    if (server_warn_due(&srv->last_fd_warn))
      weft_log(WEFT_LOG_WARN,
               "out of file descriptors: new connections are closed",
               "connections=%lld shed_fd_limit=%llu (raise ulimit -n)",
               (long long)(active - 1),
               (unsigned long long)app_counter_value(srv->shed_fd_limit));
    return;
  }
  app_counter_add(srv->accepted, 1);
  if (srv->o->nodelay) weft_tcp_nodelay(c, 1);
  conn_start *start = malloc(sizeof *start);
  int r = UV_ENOMEM;
  if (start != NULL) {
    start->srv = srv;
    start->conn = c;
    start->handler = handler;
    weft_task_opts topts = {.stack_size = srv->o->conn_stack_size};
    r = weft_spawn_opts(w->conns, &topts, server_conn_task, start);
  }
  if (r < 0) {
    free(start);
    weft_tcp_close(c);
    app_gauge_add(srv->active, -1);
    app_counter_add(srv->accept_errors, 1);
    weft_log(WEFT_LOG_WARN, "cannot start a connection task", "error=%s",
             weft_err_name(r));
  }
}

static int server_accept_task(void *arg) {
  acceptor *a = arg;
  server *srv = a->w->srv;
  weft_task_set_name("accept");
  int64_t last_warning = 0;
  for (;;) {
    weft_tcp *c;
    int r = weft_tcp_accept(a->listener, &c);
    if (r == 0) {
      server_take(a->w, c, a->handler);
      continue;
    }
    if (weft_cancelled() != 0) break;
    /* Out of file descriptors or memory: libuv has already shed the
     * connection waiting; pause so as not to spin, and say so now and then. */
    app_counter_add(srv->accept_errors, 1);
    int64_t now = weft_now();
    if (now - last_warning >= 1000) {
      weft_log(WEFT_LOG_WARN, "accept failed", "error=%s", weft_err_name(r));
      last_warning = now;
    }
    if (weft_sleep(10) != 0) break;
  }
  weft_tcp_close(a->listener);
  a->listener = NULL;
  return 0;
}

/* ---- Workers ------------------------------------------------------------- */

/* Logs that host:port cannot be listened on, with the executor that tried
 * (0: the check made before any listener opens). */
static void server_log_cannot_listen(const char *host, int port, int executor,
                                     int err) {
  char where[96];
  app_addr_format(host, port, where, sizeof where);
  if (executor > 0)
    weft_log(WEFT_LOG_ERROR, "cannot listen", "addr=%s executor=%d error=%s",
             where, executor, weft_strerror(err));
  else
    weft_log(WEFT_LOG_ERROR, "cannot listen", "addr=%s error=%s", where,
             weft_strerror(err));
}

/* Opens this executor's listeners on the ports the root fixed. */
static int server_open_listeners(worker *w) {
  server *srv = w->srv;
  const app_listen_list *l = srv->o->listen;
  for (size_t i = 0; i < l->n; i++) {
    const app_addr *a = &l->addrs[i];
    int r =
        weft_tcp_listen(a->host, srv->ports[i], srv->o->backlog,
                        server_listen_flags(a, srv->flags), &w->listeners[i]);
    if (r < 0) {
      server_log_cannot_listen(a->host, srv->ports[i], w->executor, r);
      for (size_t k = 0; k < i; k++) weft_tcp_close(w->listeners[k]);
      return r;
    }
  }
  return 0;
}

static int server_worker_task(void *arg) {
  worker *w = arg;
  server *srv = w->srv;
  size_t n = srv->o->listen->n;
  weft_task_set_name("worker");
  if (w->executor != srv->home) {
    int r = server_open_listeners(w);
    /* The channel has room for every worker: never waits, even cancelled. */
    weft_chan_try_send(srv->ready, &r);
    if (r < 0) return 0;
  }
  w->conns = weft_group_open(WEFT_COLLECT);
  weft_group *accepting = weft_group_open(WEFT_COLLECT);
  acceptor *acceptors = calloc(n, sizeof *acceptors);
  if (w->conns == NULL || accepting == NULL || acceptors == NULL) {
    weft_log(WEFT_LOG_ERROR, "out of memory starting a worker", NULL);
    for (size_t i = 0; i < n; i++) weft_tcp_close(w->listeners[i]);
  } else {
    for (size_t i = 0; i < n; i++) {
      acceptors[i].w = w;
      acceptors[i].listener = w->listeners[i];
      acceptors[i].handler = srv->o->handler;
      if (srv->o->handlers != NULL && srv->o->handlers[i] != NULL)
        acceptors[i].handler = srv->o->handlers[i];
      if (weft_spawn(accepting, server_accept_task, &acceptors[i]) < 0)
        weft_tcp_close(w->listeners[i]);
    }
    /* 0 when the shutdown begins; a cancellation when forced. */
    weft_event_wait(srv->stop);
  }
  if (accepting != NULL) {
    weft_group_cancel(accepting);
    weft_group_join(accepting);
  }
  /* No connection arrives here any more: the ones waiting idle can go. */
  if (srv->o->on_stop != NULL) srv->o->on_stop(srv->o->ctx);
  if (w->conns != NULL) {
    size_t live = weft_group_live(w->conns);
    if (live > 0)
      weft_log(WEFT_LOG_DEBUG, "draining", "executor=%d connections=%zu",
               w->executor, live);
    weft_group_join(w->conns);
  }
  free(acceptors);
  return 0;
}

/* ---- Shutdown callbacks (on the root's executor) ------------------------- */

/* The first SIGINT or SIGTERM: every worker stops accepting and drains. */
static void server_begin_stop(void *ctx, int signum) {
  server *srv = ctx;
  (void)signum;
  weft_event_set(srv->stop);
}

/* A second signal, the grace period over, or a failed start: the drain
 * ends too, by cancelling every connection. */
static void server_force_stop(void *ctx, int signum) {
  server *srv = ctx;
  server_begin_stop(srv, signum);
  weft_group_cancel(srv->workers);
}

static void server_dump(void *ctx) {
  server *srv = ctx;
  app_stats_print_json(srv->o->stats, stdout);
}

/* ---- The root ------------------------------------------------------------ */

/* Whether host:port is free to bind without SO_REUSEPORT. A listener with
 * SO_REUSEPORT joins any other socket that has it, of any process of the
 * same user: before the first listener of this server takes a given port,
 * a plain socket (SO_REUSEADDR only, as libuv binds) is bound there and
 * closed at once, so that a port something else holds is refused the way a
 * single listener would be. Returns 0, UV_EADDRINUSE or another error. */
static int server_probe_port(const app_addr *a, int port) {
#ifdef _WIN32
  (void)a;
  (void)port;
  return 0;
#else
  struct sockaddr_storage addr;
  memset(&addr, 0, sizeof addr);
  if (uv_ip4_addr(a->host, port, (struct sockaddr_in *)&addr) != 0 &&
      uv_ip6_addr(a->host, port, (struct sockaddr_in6 *)&addr) != 0) {
    int n = weft_dns_lookup(a->host, port, &addr, 1);
    if (n < 0) return n;
  }
  int fd = socket(addr.ss_family, SOCK_STREAM, 0);
  if (fd < 0) return uv_translate_sys_error(errno);
  int on = 1;
  int r = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
  if (r == 0 && addr.ss_family == AF_INET6)
    r = setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof on);
  socklen_t len = addr.ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                             : sizeof(struct sockaddr_in);
  if (r == 0) r = bind(fd, (struct sockaddr *)&addr, len);
  r = r == 0 ? 0 : uv_translate_sys_error(errno);
  close(fd);
  return r;
#endif
}

/* Descriptors kept free for what a connection's handler opens (a file it
 * serves, a log) and for the runtime. */
#define SERVER_FD_RESERVE 16

/* The number of descriptors the process has open, or -1. */
#ifndef _WIN32
static int64_t server_open_fds(int64_t limit) {
  int64_t n = 0;
  DIR *d = opendir("/proc/self/fd");
  if (d != NULL) {
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
      if (e->d_name[0] != '.') n++;
    closedir(d);
    return n - 1; /* the directory's own */
  }
  if (limit > 65536) return -1;
  for (int fd = 0; fd < (int)limit; fd++)
    if (fcntl(fd, F_GETFD) != -1) n++;
  return n;
}
#endif /* !_WIN32 */

/* How many connections the open-file limit leaves room for, with every
 * listener opened (and the connection libuv accepts ahead of each, and its
 * spare descriptor per executor) and SERVER_FD_RESERVE spare; 0 when there
 * is no such limit. Past it a connection is closed at once and counted, as
 * past max_connections. */
static int64_t server_fd_budget(int n_exec, size_t n_addr) {
#ifdef _WIN32
  (void)n_exec;
  (void)n_addr;
  return 0;
#else
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY ||
      rl.rlim_cur > (rlim_t)INT32_MAX)
    return 0;
  int64_t limit = (int64_t)rl.rlim_cur;
  int64_t open = server_open_fds(limit);
  if (open < 0) return 0;
  int64_t budget = limit - open - (int64_t)n_exec * (2 * (int64_t)n_addr + 1) -
                   SERVER_FD_RESERVE;
  return budget < 1 ? 1 : budget;
#endif
}

/* Writes the IP address listener is bound to into ip: what a name such as
 * localhost resolved to, 0.0.0.0 for 0. Falls back on the host as given. */
static void server_bound_ip(const weft_tcp *listener, const char *given,
                            char *ip, size_t len) {
  struct sockaddr_storage ss;
  if (listener != NULL && weft_tcp_sockname(listener, &ss) == 0) {
    if (ss.ss_family == AF_INET &&
        uv_ip4_name((const struct sockaddr_in *)&ss, ip, len) == 0)
      return;
    if (ss.ss_family == AF_INET6 &&
        uv_ip6_name((const struct sockaddr_in6 *)&ss, ip, len) == 0)
      return;
  }
  snprintf(ip, len, "%s", given);
}

/* Opens the root executor's listeners; port 0 gets its real port here, and
 * every other executor then listens on that port. */
static int server_open_home(server *srv, worker *w) {
  if (w->srv != srv) return UV_EINVAL; /* w is one of srv's by_exec */
  const app_listen_list *l = srv->o->listen;
  for (size_t i = 0; i < l->n; i++) srv->ports[i] = l->addrs[i].port;
  for (size_t i = 0; i < l->n && (srv->flags & WEFT_TCP_REUSEPORT); i++) {
    if (l->addrs[i].port == 0) continue; /* the kernel picks a free one */
    int r = server_probe_port(&l->addrs[i], l->addrs[i].port);
    if (r == UV_EADDRINUSE) {
      server_log_cannot_listen(l->addrs[i].host, l->addrs[i].port, 0, r);
      return r;
    }
  }
  int r = server_open_listeners(w);
  if (r == UV_ENOTSUP && (srv->flags & WEFT_TCP_REUSEPORT)) {
    weft_log(WEFT_LOG_WARN,
             "no SO_REUSEPORT: executor 1 accepts every connection", NULL);
    srv->flags &= ~WEFT_TCP_REUSEPORT;
    srv->n_exec = 1;
    r = server_open_listeners(w);
  }
  if (r < 0) return r;
  for (size_t i = 0; i < l->n; i++) {
    int port = weft_tcp_local_port(w->listeners[i]);
    if (port > 0) srv->ports[i] = port;
  }
  return 0;
}

/* Fills srv for o: the counters, and the connections the open-file limit
 * leaves room for. Allocates nothing. */
static void server_init(server *srv, const app_server_opts *o) {
  memset(srv, 0, sizeof *srv);
  srv->o = o;
  srv->home = weft_executor_id();
  srv->n_exec = weft_executor_count();
  srv->flags = srv->n_exec > 1 ? WEFT_TCP_REUSEPORT : 0;
  srv->accepted = app_stats_counter(o->stats, "accepted");
  srv->rejected = app_stats_counter(o->stats, "rejected");
  srv->closed_at_shutdown = app_stats_counter(o->stats, "closed_at_shutdown");
  srv->accept_errors = app_stats_counter(o->stats, "accept_errors");
  srv->shed_fd_limit = app_stats_counter(o->stats, "shed_fd_limit");
  srv->active = app_stats_gauge(o->stats, "active");
  app_stats_rate(o->stats, "connections_per_s", srv->accepted);
  srv->fd_budget = server_fd_budget(srv->n_exec, o->listen->n);
  if (srv->fd_budget > 0 &&
      (o->max_connections <= 0 || srv->fd_budget < o->max_connections))
    weft_log(WEFT_LOG_INFO, "the open-file limit bounds the connections",
             "connections=%lld max_connections=%lld", (long long)srv->fd_budget,
             (long long)o->max_connections);
  else
    srv->fd_budget = 0; /* max_connections comes first */
}

/* Allocates the ports, a worker per executor with its row of listeners,
 * the ready channel and the stop event. Returns 0 or UV_ENOMEM; what was
 * allocated is server_free()'s either way. */
static int server_alloc(server *srv) {
  size_t n_addr = srv->o->listen->n;
  size_t n_all = (size_t)srv->n_exec;
  srv->ports = calloc(n_addr, sizeof *srv->ports);
  srv->by_exec = calloc(n_all, sizeof *srv->by_exec);
  srv->listeners = calloc(n_all * n_addr, sizeof *srv->listeners);
  srv->ready = weft_chan_new(sizeof(int), n_all, WEFT_CHAN_MPMC);
  srv->stop = weft_event_new();
  if (srv->ports == NULL || srv->by_exec == NULL || srv->listeners == NULL ||
      srv->ready == NULL || srv->stop == NULL)
    return UV_ENOMEM;
  for (size_t k = 0; k < n_all; k++) {
    srv->by_exec[k].srv = srv;
    srv->by_exec[k].executor = (int)k + 1;
    srv->by_exec[k].listeners = srv->listeners + k * n_addr;
  }
  return 0;
}

static void server_free(server *srv) {
  if (srv->ready != NULL) weft_chan_free(srv->ready);
  if (srv->stop != NULL) weft_event_free(srv->stop);
  free(srv->ports);
  free(srv->by_exec);
  free(srv->listeners);
}

/* Starts the signal task (and the stats task when there is an interval) in
 * a group of their own, first, so that a SIGTERM after "listening on" is
 * ours. Returns 0 or the error; on an error nothing is left running. */
static int server_start_aux(server *srv) {
  const app_server_opts *o = srv->o;
  srv->sd = (app_shutdown){.begin = server_begin_stop,
                           .force = server_force_stop,
                           .dump = server_dump,
                           .ctx = srv,
                           .grace_ms = o->shutdown_grace_ms};
  srv->periodic = (app_stats_periodic){.stats = o->stats,
                                       .interval_ms = o->stats_interval_ms};
  srv->aux = weft_group_open(WEFT_COLLECT);
  if (srv->aux == NULL) return UV_ENOMEM;
  int r = weft_spawn(srv->aux, app_shutdown_task, &srv->sd);
  if (r == 0 && o->stats_interval_ms > 0)
    r = weft_spawn(srv->aux, app_stats_periodic_task, &srv->periodic);
  if (r < 0) {
    weft_group_cancel(srv->aux);
    weft_group_join(srv->aux);
    srv->aux = NULL;
    return r;
  }
  /* The signal task's first wait installs the handlers. */
  weft_yield();
  return 0;
}

/* Starts a worker on every executor that accepts, the home one included,
 * in srv->workers, and waits until the others listen too. Sets
 * *home_started when the home worker (which closes the home listeners)
 * runs. Returns 0 or the first error. */
static int server_start_workers(server *srv, int *home_started) {
  int err = 0, started_remote = 0;
  for (int k = 0; k < srv->n_exec; k++) {
    weft_task_opts topts = {.name = "worker", .executor = k + 1};
    err = weft_spawn_opts(srv->workers, &topts, server_worker_task,
                          &srv->by_exec[k]);
    if (err < 0) break;
    if (k + 1 != srv->home)
      started_remote++;
    else
      *home_started = 1;
  }
  /* Opening a listener does not wait for long; the deadline is a safety net
   * against a worker that never reports. */
  weft_scope startup;
  weft_scope_enter(&startup, 30000);
  for (int i = 0; i < started_remote; i++) {
    int r = 0;
    if (weft_chan_recv(srv->ready, &r) != 0) r = UV_ETIMEDOUT;
    if (r < 0 && err == 0) err = r;
  }
  weft_scope_leave(&startup);
  return err;
}

/* Logs "listening on" for address i, with the real port. */
static void server_log_listening(const server *srv, size_t i) {
  const app_server_opts *o = srv->o;
  char ip[64], where[96], msg[128];
  const char *given = o->listen->addrs[i].host;
  server_bound_ip(srv->by_exec[srv->home - 1].listeners[i], given, ip,
                  sizeof ip);
  app_addr_format(ip, srv->ports[i], where, sizeof where);
  snprintf(msg, sizeof msg, "listening on %s", where);
  const char *proto = o->protocols != NULL ? o->protocols[i] : NULL;
  /* A name (localhost) is shown with what it resolved to. */
  int numeric = strcmp(ip, given) == 0 ||
                uv_inet_pton(AF_INET, given, ip) == 0 ||
                uv_inet_pton(AF_INET6, given, ip) == 0;
  if (numeric && proto == NULL)
    weft_log(WEFT_LOG_INFO, msg, "executors=%d", srv->n_exec);
  else if (numeric)
    weft_log(WEFT_LOG_INFO, msg, "executors=%d proto=%s", srv->n_exec, proto);
  else if (proto == NULL)
    weft_log(WEFT_LOG_INFO, msg, "executors=%d given=%s", srv->n_exec, given);
  else
    weft_log(WEFT_LOG_INFO, msg, "executors=%d given=%s proto=%s", srv->n_exec,
             given, proto);
}

/* A start that failed once the home listeners were open: stops whatever
 * started, and closes the home listeners if no worker took them. */
static void server_abort_start(server *srv, int err, int home_started) {
  weft_log(WEFT_LOG_ERROR, "cannot start", "error=%s", weft_strerror(err));
  server_force_stop(srv, 0);
  if (!home_started) {
    worker *home = &srv->by_exec[srv->home - 1];
    for (size_t i = 0; i < srv->o->listen->n; i++)
      weft_tcp_close(home->listeners[i]);
  }
}

/* After a clean run: the last stats. The JSON first: the log line starts a
 * new interval, and both are to show the rates of the same one. */
static void server_report(const server *srv) {
  weft_log(WEFT_LOG_INFO, "stopped", NULL);
  app_stats_print_json(srv->o->stats, stdout);
  app_stats_log(srv->o->stats);
}

int app_server_run(const app_server_opts *o) {
  if (o == NULL || o->listen == NULL || o->listen->n == 0 ||
      o->handler == NULL || o->stats == NULL)
    return UV_EINVAL;
  app_ignore_sigpipe();
  server srv;
  int home_started = 0;
  server_init(&srv, o);
  int err = server_alloc(&srv);
  if (err == 0) err = server_open_home(&srv, &srv.by_exec[srv.home - 1]);
  if (err != 0) goto out_free;
  __atomic_store_n(&server_stop_event, srv.stop, __ATOMIC_RELEASE);
  /* The workers' group before the signal task, which may cancel it. */
  srv.workers = weft_group_open(WEFT_COLLECT);
  err = srv.workers != NULL ? server_start_aux(&srv) : UV_ENOMEM;
  if (err == 0) err = server_start_workers(&srv, &home_started);
  if (err != 0) {
    server_abort_start(&srv, err, home_started);
    goto out_join;
  }
  for (size_t i = 0; i < o->listen->n; i++) server_log_listening(&srv, i);
  /* Until the signal task begins the shutdown and the workers drain. */
out_join:
  if (srv.workers != NULL) weft_group_join(srv.workers);
  if (srv.aux != NULL) {
    weft_group_cancel(srv.aux);
    weft_group_join(srv.aux);
  }
  if (err == 0) server_report(&srv);
  /* Every connection has ended: nobody holds the event any more. */
  __atomic_store_n(&server_stop_event, NULL, __ATOMIC_RELEASE);
out_free:
  server_free(&srv);
  return err;
}
