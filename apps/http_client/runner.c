/* runner.c: executors, workers, limiters, retries and stopping. */
#include "runner.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <weft.h>

#include "retry.h"
#include "signals.h"

/* How often the progress bar is redrawn, in milliseconds. */
#define PROGRESS_INTERVAL_MS 200

/* Workers per weft_curl client. libcurl looks for a free connection by
 * walking every connection to the host in its cache, so one client for
 * 500 workers spends more on that walk than on the request; clients of
 * this many keep it short. */
#define WORKERS_PER_CLIENT 32

typedef struct run_state run_state;
typedef struct exec_state exec_state;

/* One worker task: one request at a time. */
typedef struct worker {
  exec_state *ex;
  weft_curl *client; /* one of the executor's */
  hc_fetcher fetch;
  weft_scope *waiting; /* a limiter or backoff wait that stopping cuts */
  uint64_t rng;        /* for the backoff's jitter */
} worker;

/* What one executor owns. Touched only by that executor's tasks, except
 * that the root reads the tally once they have all ended. */
struct exec_state {
  run_state *run;
  int id;        /* 1..N */
  int n_workers; /* at most this many workers... */
  int started;   /* ...of which these are started, each when work is left */
  worker *workers;
  weft_curl **clients; /* one per WORKERS_PER_CLIENT workers, made lazily */
  int n_clients;
  weft_group *group; /* the workers' */
  hc_tally *tally;
  int err;
};

struct run_state {
  const hc_run_input *in;
  const hc_config *cfg;
  uint64_t planned; /* requests to make; 0: until stopped */
  int retries;
  _Atomic uint64_t next;       /* the next request number to take */
  _Atomic int stopping;        /* no new requests */
  const char *stopped;         /* why the run ended early; root executor only */
  weft_event *stop_ev;         /* set with stopping, for the watchers */
  weft_limiter *rate;          /* NULL: no global limit */
  weft_limiter_set *host_rate; /* NULL: no per-host limit */
  weft_group *work;            /* the executors' tasks, for a forced end */
  exec_state *execs;
  int n_exec;
  int64_t workers; /* at most this many workers in all */
  uint64_t start_ns, end_ns;
};

/* Stops new requests. Called on the root executor; the watchers carry it
 * to the others. */
static void run_stop(run_state *run) {
  atomic_store(&run->stopping, 1);
  weft_event_set(run->stop_ev);
}

/* ---- Waiting that stopping cuts short ------------------------------------ */

/* Enters a scope that the executor's watcher cancels when the run stops. */
static int stoppable_enter(worker *w, weft_scope *s) {
  weft_scope_enter(s, WEFT_NO_DEADLINE);
  w->waiting = s;
  /* Checked inside the scope: a stop from now on cancels it. */
  return atomic_load(&w->ex->run->stopping) ? UV_ECANCELED : 0;
}

/* Leaves the scope stoppable_enter() entered. */
static void stoppable_leave(worker *w, weft_scope *s) {
  w->waiting = NULL;
  weft_scope_leave(s);
}

/* Waits for the limiters to let one attempt at t through. Returns 0, or an
 * error when the run stopped or was cancelled meanwhile. */
static int wait_turn(worker *w, const hc_target *t) {
  run_state *run = w->ex->run;
  /* Without limits there is nothing to wait for, and no scope to enter. */
  if (run->host_rate == NULL && run->rate == NULL)
    return atomic_load(&run->stopping) ? UV_ECANCELED : weft_cancelled();
  weft_scope s;
  int rc = stoppable_enter(w, &s);
  if (rc == 0 && run->host_rate != NULL)
    rc = weft_limiter_set_acquire(run->host_rate, t->host, 1);
  if (rc == 0 && run->rate != NULL) rc = weft_limiter_acquire(run->rate, 1);
  if (rc == 0) rc = weft_cancelled();
  stoppable_leave(w, &s);
  return rc;
}

/* Sleeps ms before a retry. Returns 0, or an error when stopped first. */
static int wait_backoff(worker *w, int64_t ms) {
  weft_scope s;
  int rc = stoppable_enter(w, &s);
  if (rc == 0) rc = weft_sleep(ms);
  stoppable_leave(w, &s);
  return rc;
}

/* The body of each executor's watcher: once the run stops, cancels the
 * waits of that executor's workers (scopes are cancelled from their own
 * executor). */
static int stop_watcher(void *arg) {
  exec_state *ex = arg;
  weft_task_set_name("stop-watcher");
  if (weft_event_wait(ex->run->stop_ev) != 0) return 0;
  for (int i = 0; i < ex->n_workers; i++)
    if (ex->workers[i].waiting != NULL)
      weft_scope_cancel(ex->workers[i].waiting);
  return 0;
}

/* ---- One request --------------------------------------------------------- */

/* Makes request t with its retries and reports it. A request the run
 * stopped before its first attempt is not reported: it counts as not
 * sent. */
static void do_request(worker *w, const hc_target *t) {
  exec_state *ex = w->ex;
  run_state *run = ex->run;
  const hc_config *cfg = run->cfg;
  hc_report *rep = run->in->report;
  hc_result r = {
      .url = t->url, .ttfb_us = -1, .total_us = -1, .elapsed_us = -1};
  if (t->error != NULL) {
    r.error = HC_ERR_MALFORMED_URL;
    r.detail = t->error;
    hc_report_request(rep, ex->tally, &r);
    /* Nothing here waits: without a yield, a load run over a bad URL would
     * keep the executor from its timers and signals. */
    weft_yield();
    return;
  }
  hc_attempt a;
  uint64_t first_ns = 0;
  int attempts = 0;
  for (;;) {
    if (wait_turn(w, t) != 0) break;
    if (attempts == 0) first_ns = weft_now_ns();
    attempts++;
    hc_fetch_once(&w->fetch, w->client, t->url, t->parsed, &a);
    if (attempts > run->retries ||
        !hc_fetch_retryable(&a, run->in->request->idempotent))
      break;
    if (atomic_load(&run->stopping) || weft_cancelled()) break;
    int64_t delay = a.retry_after_ms;
    if (delay > cfg->retry_after_max) break; /* too far off: give up */
    if (delay < 0)
      delay = hc_retry_backoff_ms(attempts, cfg->retry_backoff_ms,
                                  cfg->retry_max_backoff_ms, &w->rng);
    weft_log(WEFT_LOG_DEBUG, "retrying", "url=%s attempt=%d delay_ms=%lld",
             t->url, attempts, (long long)delay);
    if (wait_backoff(w, delay) != 0) break;
  }
  if (attempts == 0) return;
  r.status = a.status;
  r.bytes = a.bytes;
  r.ttfb_us = a.ttfb_us;
  r.total_us = a.total_us;
  r.elapsed_us = (int64_t)((weft_now_ns() - first_ns) / 1000);
  r.attempts = attempts;
  r.redirects = a.redirects;
  r.http_version = a.http_version;
  r.error = a.error;
  r.detail = a.detail;
  hc_report_request(rep, ex->tally, &r);
}

static int worker_main(void *arg);

/* Starts the executor's next worker (its client first, when it is the
 * first of that client's). Returns 0, or an error after which no more
 * workers start. */
static int start_worker(exec_state *ex) {
  run_state *run = ex->run;
  int k = ex->started;
  int ci = k / WORKERS_PER_CLIENT;
  if (ex->clients[ci] == NULL) {
    /* The cache keeps a connection for each worker of the client: with
     * fewer, connections would be closed and opened again all the time. */
    int share = ex->n_workers - ci * WORKERS_PER_CLIENT;
    if (share > WORKERS_PER_CLIENT) share = WORKERS_PER_CLIENT;
    weft_curl_opts copts = {.max_connections = share + 4,
                            .multiplex =
                                run->in->request->forbid_reuse ? -1 : 0};
    ex->clients[ci] = weft_curl_new(&copts);
    if (ex->clients[ci] == NULL) {
      weft_log(WEFT_LOG_ERROR, "cannot start an HTTP client", "executor=%d",
               ex->id);
      return UV_ENOMEM;
    }
  }
  worker *w = &ex->workers[k];
  w->ex = ex;
  w->client = ex->clients[ci];
  w->rng = weft_now_ns() ^ ((uint64_t)(uintptr_t)w * 0x9e3779b97f4a7c15ull);
  if (hc_fetcher_init(&w->fetch, run->in->request) != 0) {
    weft_log(WEFT_LOG_ERROR, "cannot make a libcurl handle", "executor=%d",
             ex->id);
    return UV_ENOMEM;
  }
  ex->started++;
  weft_task_opts topts = {.name = "worker"};
  return weft_spawn_opts(ex->group, &topts, worker_main, w);
}

/* The body of a worker task: takes request numbers until none are left or
 * the run stops. Workers start one by one, each once the one before has
 * work: a run never has more workers than requests, and a stop ends the
 * starting too. */
static int worker_main(void *arg) {
  worker *w = arg;
  exec_state *ex = w->ex;
  run_state *run = ex->run;
  while (!atomic_load(&run->stopping) && weft_cancelled() == 0) {
    uint64_t n = atomic_fetch_add(&run->next, 1);
    if (run->planned > 0 && n >= run->planned) break;
    if (ex->started < ex->n_workers && ex->err == 0) {
      int r = start_worker(ex);
      if (r != 0) {
        ex->err = r;
        run_stop(run);
      }
    }
    do_request(w, hc_targets_pick(run->in->targets, n));
  }
  return 0;
}

/* ---- One executor -------------------------------------------------------- */

/* The body of the task that runs an executor's share of the workers, with
 * that executor's clients. */
static int exec_main(void *arg) {
  exec_state *ex = arg;
  run_state *run = ex->run;
  weft_task_set_name("executor");
  ex->n_clients = (ex->n_workers + WORKERS_PER_CLIENT - 1) / WORKERS_PER_CLIENT;
  ex->clients = calloc((size_t)ex->n_clients, sizeof *ex->clients);
  weft_group *watch = weft_group_open(WEFT_FAIL_FAST);
  ex->group = weft_group_open(WEFT_COLLECT);
  if (ex->clients == NULL || watch == NULL || ex->group == NULL) {
    ex->err = UV_ENOMEM;
    run_stop(run);
  } else {
    weft_spawn(watch, stop_watcher, ex);
    /* The first worker; each starts the next once it has work. */
    int r = start_worker(ex);
    if (r != 0) {
      ex->err = r;
      run_stop(run);
    }
  }
  if (ex->group != NULL) weft_group_join(ex->group);
  if (watch != NULL) {
    weft_group_cancel(watch);
    weft_group_join(watch);
  }
  for (int i = 0; i < ex->started; i++) hc_fetcher_free(&ex->workers[i].fetch);
  for (int i = 0; ex->clients != NULL && i < ex->n_clients; i++)
    if (ex->clients[i] != NULL) weft_curl_free(ex->clients[i]);
  free(ex->clients);
  ex->clients = NULL;
  return ex->err;
}

/* ---- The root ------------------------------------------------------------ */

/* The first SIGINT or SIGTERM: stop issuing, let what is in flight end. */
static void on_signal(void *ctx, int signum) {
  (void)signum;
  run_state *run = ctx;
  if (run->stopped == NULL) run->stopped = "signal";
  run_stop(run);
}

/* The grace period is over, or a second signal came: cancel everything
 * still running. The work group is NULL once joined. */
static void on_force(void *ctx, int signum) {
  (void)signum;
  run_state *run = ctx;
  if (run->work != NULL) weft_group_cancel(run->work);
}

/* Stops the run once -z DURATION has passed. */
static int duration_timer(void *arg) {
  run_state *run = arg;
  weft_task_set_name("duration");
  if (weft_sleep(run->cfg->duration) == 0) run_stop(run);
  return 0;
}

/* Redraws the progress bar until cancelled, then clears it. */
static int progress_task(void *arg) {
  run_state *run = arg;
  weft_task_set_name("progress");
  while (weft_sleep(PROGRESS_INTERVAL_MS) == 0)
    hc_report_progress(stderr, run->in->report, run->planned,
                       (int64_t)((weft_now_ns() - run->start_ns) / 1000000),
                       run->cfg->duration, 0);
  hc_report_progress(stderr, run->in->report, 0, 0, 0, 1);
  return 0;
}

/* The root task: starts the executors' tasks and the helpers, waits for
 * the end. */
static int root_main(void *arg) {
  run_state *run = arg;
  const hc_config *cfg = run->cfg;
  int executors = weft_executor_count();
  int64_t workers = run->workers;
  int used = workers < executors ? (int)workers : executors;
  run->n_exec = used;
  for (int k = 0; k < used; k++) {
    exec_state *ex = &run->execs[k];
    ex->run = run;
    ex->id = k + 1;
    ex->n_workers = (int)(workers / used) + (k < (int)(workers % used) ? 1 : 0);
    ex->workers = calloc((size_t)ex->n_workers, sizeof *ex->workers);
    ex->tally = calloc(1, sizeof *ex->tally);
    if (ex->workers == NULL || ex->tally == NULL) return UV_ENOMEM;
  }

  weft_group *aux = weft_group_open(WEFT_FAIL_FAST);
  if (aux == NULL) return UV_ENOMEM;
  app_shutdown sd = {.begin = on_signal,
                     .force = on_force,
                     .ctx = run,
                     .grace_ms = cfg->shutdown_grace_ms};
  weft_spawn(aux, app_shutdown_task, &sd);
  /* One turn lets the signal task install its handlers before any request
   * goes out. */
  weft_yield();
  run->start_ns = weft_now_ns();
  if (cfg->duration > 0) weft_spawn(aux, duration_timer, run);
  if (run->in->progress) weft_spawn(aux, progress_task, run);

  weft_scope deadline;
  weft_scope_enter(&deadline,
                   cfg->deadline > 0 ? cfg->deadline : WEFT_NO_DEADLINE);
  int err = 0;
  run->work = weft_group_open(WEFT_COLLECT);
  if (run->work == NULL) err = UV_ENOMEM;
  for (int k = 0; err == 0 && k < used; k++) {
    weft_task_opts topts = {.name = "executor", .executor = k + 1};
    err = weft_spawn_opts(run->work, &topts, exec_main, &run->execs[k]);
  }
  if (run->work != NULL) {
    if (err != 0) weft_group_cancel(run->work);
    weft_group_join(run->work);
    run->work = NULL;
  }
  if (weft_scope_leave(&deadline) == UV_ETIMEDOUT && run->stopped == NULL)
    run->stopped = "deadline";
  run->end_ns = weft_now_ns();
  weft_group_cancel(aux);
  weft_group_join(aux);
  for (int k = 0; err == 0 && k < used; k++) err = run->execs[k].err;
  return err;
}

int hc_run(const hc_run_input *in, hc_tally *total, hc_run_facts *facts) {
  const hc_config *cfg = in->cfg;
  hc_mode mode = hc_options_mode(cfg);
  run_state run;
  memset(&run, 0, sizeof run);
  run.in = in;
  run.cfg = cfg;
  run.retries = (int)hc_options_retries(cfg);
  run.planned =
      mode == HC_MODE_FETCH ? in->targets->n : (uint64_t)cfg->requests;
  atomic_init(&run.next, 0);
  atomic_init(&run.stopping, 0);
  int err = 0;
  run.stop_ev = weft_event_new();
  if (cfg->rate > 0) run.rate = weft_limiter_new(cfg->rate, (double)cfg->burst);
  if (cfg->host_rate > 0)
    run.host_rate = weft_limiter_set_new(cfg->host_rate, (double)cfg->burst, 0);
  /* No more workers than requests (-c 100000 -n 1 needs one), and no more
   * executors than workers. */
  run.workers = cfg->concurrency;
  if (run.planned > 0 && (uint64_t)run.workers > run.planned)
    run.workers = (int64_t)run.planned;
  if (run.workers < 1) run.workers = 1;
  /* The runtime's own default (weft_main_opts with executors 0): one per
   * CPU that the process may use. */
  int executors = cfg->executors > 0 ? (int)cfg->executors
                                     : (int)uv_available_parallelism();
  if (executors < 1) executors = 1;
  if (executors > run.workers) executors = (int)run.workers;
  run.execs = calloc((size_t)executors, sizeof *run.execs);
  if (run.stop_ev == NULL || run.execs == NULL ||
      (cfg->rate > 0 && run.rate == NULL) ||
      (cfg->host_rate > 0 && run.host_rate == NULL)) {
    err = UV_ENOMEM;
  } else {
    weft_opts opts = {.executors = executors,
                      .idle_spin_us = (int)cfg->idle_spin_us};
    err = weft_main_opts(&opts, root_main, &run);
  }

  memset(total, 0, sizeof *total);
  int started = 0;
  for (int k = 0; run.execs != NULL && k < run.n_exec; k++) {
    started += run.execs[k].started;
    if (run.execs[k].tally != NULL) hc_tally_merge(total, run.execs[k].tally);
    free(run.execs[k].tally);
    free(run.execs[k].workers);
  }
  free(run.execs);
  memset(facts, 0, sizeof *facts);
  facts->mode = mode == HC_MODE_FETCH ? "fetch" : "load";
  facts->elapsed_s = (double)(run.end_ns - run.start_ns) / 1e9;
  facts->planned = run.planned;
  facts->not_sent =
      run.planned > total->requests ? run.planned - total->requests : 0;
  facts->concurrency = (int)cfg->concurrency;
  facts->workers = started;
  facts->executors = run.n_exec;
  facts->rate = cfg->rate;
  facts->stopped = run.stopped;
  if (run.rate != NULL) weft_limiter_free(run.rate);
  if (run.host_rate != NULL) weft_limiter_set_free(run.host_rate);
  if (run.stop_ev != NULL) weft_event_free(run.stop_ev);
  return err;
}
