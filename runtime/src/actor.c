/* Actors: a task reading a mailbox channel of envelopes, and supervisors
 * that restart them.
 *
 * An envelope is a pointer to an ask record (NULL for a tell) followed by
 * the message. The ask record lives on the heap with two references, the
 * asker's and the envelope's, because either side may be gone first: an
 * asker that timed out leaves, and the actor may reply later into the
 * record without harm. Exactly one party settles a record (the actor with a
 * reply, or the asker by abandoning it), with one compare-and-swap, and the
 * actor wakes the asker only when it settled a record whose asker had
 * parked, so a wake-up is never lost nor left over to disturb a later
 * wait.
 *
 * A supervisor runs each incarnation of each actor in a group of its own,
 * so that it can cancel and join one actor (or all) whichever executor they
 * run on. An incarnation's last act is to post an event (which actor, which
 * incarnation, why it ended) to the supervisor's channel; events of
 * incarnations the supervisor already ended itself are recognised by their
 * number and ignored.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "weft/actor.h"

/* Bytes before the message in an envelope: the ask pointer. Messages are
 * thus 8-byte aligned, and a 64-bit message makes a 16-byte envelope, which
 * the channels copy without a call. */
#define WEFT__ENV_HEADER 8

/* An ask's states. The asker first watches the record for a moment
 * (WAITING) when nothing else is ready on its executor, since an actor on
 * another executor answers in far less time than a sleep and a wake-up
 * through the loop take; then it parks (PARKED). The actor settles WAITING
 * quietly (the asker sees it by itself) and PARKED with a wake-up. */
enum {
  WEFT__ASK_WAITING = 0,      /* the asker is running or watching */
  WEFT__ASK_PARKED,           /* the asker is parked: settling wakes it */
  WEFT__ASK_DONE,             /* the actor settled it: result and reply set */
  WEFT__ASK_ABANDONED,        /* the asker gave up (timeout, cancellation) */
  WEFT__ASK_CLOSED            /* the asker found the actor ended for good */
};

typedef struct weft__ask {
  int state;                  /* atomic: WEFT__ASK_* */
  int refs;                   /* atomic */
  int result;                 /* written by the settling actor before DONE */
  weft__task *asker;          /* touched by the actor only once it settled */
  unsigned char reply[];
} weft__ask;

/* Rounds an asker watches for the reply before it parks. */
#define WEFT__ASK_SPIN_ROUNDS 2000

static inline void weft__cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ __volatile__("yield");
#endif
}

struct weft_actor {
  char name[32];
  weft_actor_def def;
  weft_chan *mailbox;
  size_t env_size;
  unsigned char *env;         /* the running incarnation's envelope */
  void *state;
  int shared;                 /* MPMC mailbox: counters need atomics */
  int terminated;             /* atomic: ended for good, mailbox drained */
  /* Supervision. */
  weft_supervisor *sup;
  uint32_t index;
  uint32_t incarnation;
  /* Counters, atomic. */
  uint64_t told;
  uint64_t asked;
  uint64_t handled;
  uint64_t failures;
  uint64_t restarts;
  uint64_t dead;
  uint64_t dropped;
  uint64_t rejected;
};

typedef struct {
  uint32_t index;
  uint32_t incarnation;
  int32_t why;
} weft__sup_event;

struct weft_supervisor {
  char name[32];
  weft_supervisor_opts opts;
  size_t n;
  weft_actor **actors;
  weft_group **groups;        /* the running incarnation's group, or NULL */
  unsigned char *ended;       /* the actor stopped for good */
  weft_chan *events;
  int64_t *fails;             /* ring of the last K+1 failure times */
  size_t nfails;
  size_t fail_cap;
  uint64_t restarts;          /* atomic */
  uint64_t failures;          /* atomic */
  int escalated;              /* atomic */
};

/* ---- Counters and dead letters ------------------------------------------ */

static inline void weft__actor_count(const weft_actor *a, uint64_t *c) {
  if (a->shared)
    __atomic_fetch_add(c, 1, __ATOMIC_RELAXED);
  else
    __atomic_store_n(c, __atomic_load_n(c, __ATOMIC_RELAXED) + 1, __ATOMIC_RELAXED);
}

static void weft__dead_letter(weft_actor *a, const char *why) {
  uint64_t n = __atomic_add_fetch(&a->dead, 1, __ATOMIC_RELAXED);
  /* Powers of two only: a sender stuck on a dead actor must not flood the
   * log, yet the first one is always seen. */
  if ((n & (n - 1)) == 0)
    weft_log(WEFT_LOG_WARN, "dead letter", "actor=%s reason=%s dead_letters=%llu",
             a->name, why, (unsigned long long)n);
}

/* ---- Asks --------------------------------------------------------------- */

static void weft__ask_release(weft__ask *k) {
  if (__atomic_sub_fetch(&k->refs, 1, __ATOMIC_ACQ_REL) == 0) free(k);
}

/* The actor's side: settles k with result (the reply is already in place),
 * wakes the asker if it parked, and drops the envelope's reference. */
static void weft__ask_complete(weft__ask *k, int result) {
  k->result = result;
  int state = WEFT__ASK_WAITING;
  if (!__atomic_compare_exchange_n(&k->state, &state, WEFT__ASK_DONE, 0,
                                   __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE) &&
      state == WEFT__ASK_PARKED &&
      __atomic_compare_exchange_n(&k->state, &state, WEFT__ASK_DONE, 0,
                                  __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
    /* The asker parked and waits for this wake-up alone: it is alive. */
    weft__wake_any(k->asker, 0);
  weft__ask_release(k);
}

/* The asker's cancel function: gives up unless the actor settled first, in
 * which case its wake-up is on the way. */
static void weft__ask_cancel(weft__task *t, void *data) {
  weft__ask *k = data;
  int expected = WEFT__ASK_PARKED;
  if (__atomic_compare_exchange_n(&k->state, &expected, WEFT__ASK_ABANDONED, 0,
                                  __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
    weft__wake(t, 0);
}

/* The asker's wait for the reply. Returns the cancellation code if the
 * wait was cancelled, else 0; the record's state says what happened. */
static int weft__ask_wait(weft__task *t, weft__ask *k) {
  weft__exec *e = t->exec;
  for (int i = 0; i < WEFT__ASK_SPIN_ROUNDS && e->ready_head == NULL; i++) {
    if (__atomic_load_n(&k->state, __ATOMIC_ACQUIRE) != WEFT__ASK_WAITING) return 0;
    weft__cpu_relax();
  }
  int expected = WEFT__ASK_WAITING;
  if (!__atomic_compare_exchange_n(&k->state, &expected, WEFT__ASK_PARKED, 0,
                                   __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
    return 0; /* settled meanwhile */
  return weft__park(weft__ask_cancel, k);
}

/* ---- Mailboxes ---------------------------------------------------------- */

/* Takes every message left in a's mailbox: each is a dead letter, and each
 * ask among them returns WEFT_ECLOSED. */
static void weft__mailbox_drain(weft_actor *a, unsigned char *env) {
  while (weft_chan_try_recv(a->mailbox, env) == 0) {
    weft__ask *k;
    memcpy(&k, env, sizeof k);
    weft__dead_letter(a, "ended");
    if (k != NULL) weft__ask_complete(k, WEFT_ECLOSED);
  }
}

/* Ends a for good: no message is taken any more and none is left behind. */
static void weft__actor_terminate(weft_actor *a) {
  weft_chan_close(a->mailbox);
  /* An asker on another executor may have put its envelope in just as the
   * mailbox closed. After its send it reads `terminated` with a
   * read-modify-write, and this side sets it with one before draining: RMWs
   * of one word are totally ordered, so either the asker sees the flag or
   * the drain sees its envelope, and no asker waits for an envelope nobody
   * reads. (RMWs rather than fences, which ThreadSanitizer cannot follow.) */
  __atomic_exchange_n(&a->terminated, 1, __ATOMIC_ACQ_REL);
  weft__mailbox_drain(a, a->env);
}

/* Puts an envelope in a's mailbox per its overflow policy. */
static int weft__actor_post(weft_actor *a, const unsigned char *env, int is_ask) {
  int r;
  if (a->def.overflow == WEFT_ACTOR_WAIT) {
    r = weft_chan_send(a->mailbox, env);
  } else {
    r = weft_chan_try_send(a->mailbox, env);
    if (r == UV_EAGAIN) {
      if (a->def.overflow == WEFT_ACTOR_DROP) {
        weft__actor_count(a, &a->dropped);
        weft__dead_letter(a, "mailbox full, dropped");
        return is_ask ? UV_ENOBUFS : WEFT_ACTOR_DROPPED;
      }
      weft__actor_count(a, &a->rejected);
      weft__dead_letter(a, "mailbox full, refused");
      return UV_ENOBUFS;
    }
  }
  if (WEFT__LIKELY(r == 0)) {
    weft__actor_count(a, is_ask ? &a->asked : &a->told);
    return 0;
  }
  if (r == WEFT_ECLOSED) weft__dead_letter(a, "stopped");
  return r;
}

int weft_actor_tell(weft_actor *a, const void *msg) {
  unsigned char small[256];
  unsigned char *env = a->env_size <= sizeof small ? small : malloc(a->env_size);
  if (env == NULL) return UV_ENOMEM;
  memset(env, 0, sizeof(weft__ask *)); /* cppcheck-suppress pointerSize ; zeroes the envelope's reply pointer */
  memcpy(env + WEFT__ENV_HEADER, msg, a->def.msg_size);
  int r = weft__actor_post(a, env, 0);
  if (env != small) free(env);
  return r;
}

int weft_actor_ask(weft_actor *a, const void *msg, void *reply,
                   int64_t timeout_ms) {
  weft__task *t = weft__current_task;
  if (t == NULL) return WEFT_ENOTASK;
  if (a->def.reply_size == 0 || reply == NULL) return UV_EINVAL;
  weft__ask *k = malloc(sizeof *k + a->def.reply_size);
  unsigned char small[256];
  unsigned char *env = a->env_size <= sizeof small ? small : malloc(a->env_size);
  if (k == NULL || env == NULL) {
    free(k);
    if (env != small) free(env);
    return UV_ENOMEM;
  }
  k->state = WEFT__ASK_WAITING;
  k->refs = 2;
  k->result = 0;
  k->asker = t;
  memcpy(env, &k, sizeof k);
  memcpy(env + WEFT__ENV_HEADER, msg, a->def.msg_size);

  weft_scope scope;
  if (timeout_ms >= 0) weft_scope_enter(&scope, timeout_ms);
  int r = weft__actor_post(a, env, 1);
  if (env != small) free(env);
  if (r != 0) {
    free(k); /* It never reached the mailbox: this side holds the only reference. */
  } else {
    if (a->shared) {
      int expected = WEFT__ASK_WAITING;
      if (__atomic_fetch_or(&a->terminated, 0, __ATOMIC_ACQ_REL) &&
          __atomic_compare_exchange_n(&k->state, &expected, WEFT__ASK_CLOSED, 0,
                                      __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
        weft__dead_letter(a, "ended");
    }
    r = weft__ask_wait(t, k);
    int state = __atomic_load_n(&k->state, __ATOMIC_ACQUIRE);
    if (state == WEFT__ASK_DONE) {
      /* Settled by the actor: that is the answer, whatever the timeout says. */
      r = k->result;
      if (r == 0) memcpy(reply, k->reply, a->def.reply_size);
    } else if (state == WEFT__ASK_CLOSED) {
      r = WEFT_ECLOSED;
    }
    weft__ask_release(k);
  }
  if (timeout_ms >= 0) weft_scope_leave(&scope);
  return r;
}

void weft_actor_stop(weft_actor *a) { weft_chan_close(a->mailbox); }

const char *weft_actor_name(const weft_actor *a) { return a->name; }

void weft_actor_stats_get(const weft_actor *a, weft_actor_stats *out) {
  out->told = __atomic_load_n(&a->told, __ATOMIC_RELAXED);
  out->asked = __atomic_load_n(&a->asked, __ATOMIC_RELAXED);
  out->handled = __atomic_load_n(&a->handled, __ATOMIC_RELAXED);
  out->failures = __atomic_load_n(&a->failures, __ATOMIC_RELAXED);
  out->restarts = __atomic_load_n(&a->restarts, __ATOMIC_RELAXED);
  out->dead_letters = __atomic_load_n(&a->dead, __ATOMIC_RELAXED);
  out->dropped = __atomic_load_n(&a->dropped, __ATOMIC_RELAXED);
  out->rejected = __atomic_load_n(&a->rejected, __ATOMIC_RELAXED);
}

/* ---- The actor's task --------------------------------------------------- */

static void weft__sup_notify(weft_supervisor *s, weft_actor *a, int why);

static int weft__actor_run(void *arg) {
  weft_actor *a = arg;
  int why = 0;
  if (a->def.start != NULL) why = a->def.start(a, a->state, a->def.arg);
  if (why >= 0) {
    why = 0;
    for (;;) {
      int r = weft_chan_try_recv(a->mailbox, a->env);
      if (r == UV_EAGAIN && a->shared && weft__current_exec->ready_head != NULL) {
        /* Going to sleep on a shared mailbox costs a process-wide barrier
         * (see chan_wait.c). Tasks ready on this executor are the likeliest
         * senders of the next message: let them run once first. */
        weft_yield();
        r = weft_chan_try_recv(a->mailbox, a->env);
      }
      if (r == UV_EAGAIN) r = weft_chan_recv(a->mailbox, a->env);
      if (r == WEFT_ECLOSED) break; /* stopped, and the mailbox is drained */
      if (r < 0) {
        why = r;
        break;
      }
      weft__ask *k;
      memcpy(&k, a->env, sizeof k);
      int b = a->def.behaviour(a, a->state, a->env + WEFT__ENV_HEADER,
                               k ? k->reply : NULL);
      weft__actor_count(a, &a->handled);
      if (k != NULL) weft__ask_complete(k, b < 0 ? b : 0);
      if (b < 0) {
        why = b;
        break;
      }
    }
  }
  /* A behaviour that returns because its task was cancelled has not
   * failed: the cancellation is the reason. */
  int cancelled = weft_cancelled();
  if (why < 0 && cancelled)
    why = cancelled;
  else if (why < 0)
    weft__actor_count(a, &a->failures);
  if (a->def.stop != NULL) a->def.stop(a, a->state, why);
  if (why < 0 && !cancelled)
    weft_log(WEFT_LOG_WARN, "actor failed", "actor=%s error=%s", a->name,
             weft_err_name(why));
  if (a->sup != NULL)
    weft__sup_notify(a->sup, a, why);
  else
    weft__actor_terminate(a);
  return why;
}

static weft_actor *weft__actor_new(const weft_actor_def *def, int *err) {
  *err = UV_EINVAL;
  if (def == NULL || def->behaviour == NULL || def->msg_size == 0 ||
      def->msg_size > 65536 - WEFT__ENV_HEADER)
    return NULL;
  if (def->mailbox_mode != WEFT_ACTOR_SHARED && def->mailbox_mode != WEFT_ACTOR_LOCAL)
    return NULL;
  if (def->overflow < WEFT_ACTOR_WAIT || def->overflow > WEFT_ACTOR_FAIL) return NULL;
  if (def->mailbox_mode == WEFT_ACTOR_LOCAL && def->executor != 0) return NULL;
  *err = UV_ENOMEM;
  weft_actor *a = calloc(1, sizeof *a);
  if (a == NULL) return NULL;
  a->def = *def;
  strncpy(a->name, def->name ? def->name : "actor", sizeof a->name - 1);
  a->def.name = a->name;
  if (a->def.mailbox == 0) a->def.mailbox = 64;
  a->shared = def->mailbox_mode == WEFT_ACTOR_SHARED;
  a->env_size = WEFT__ENV_HEADER + def->msg_size;
  a->mailbox = weft_chan_new(a->env_size, a->def.mailbox,
                             a->shared ? WEFT_CHAN_MPMC : WEFT_CHAN_LOCAL);
  a->env = malloc(a->env_size);
  a->state = calloc(1, def->state_size > 0 ? def->state_size : 1);
  if (a->mailbox == NULL || a->env == NULL || a->state == NULL) {
    weft_chan_free(a->mailbox);
    free(a->env);
    free(a->state);
    free(a);
    return NULL;
  }
  *err = 0;
  return a;
}

int weft_actor_spawn(weft_group *g, const weft_actor_def *def, weft_actor **out) {
  if (weft__current_task == NULL) return WEFT_ENOTASK;
  if (g == NULL || out == NULL) return UV_EINVAL;
  int err;
  weft_actor *a = weft__actor_new(def, &err);
  if (a == NULL) return err;
  weft_task_opts opts = {a->name, 0, a->def.executor};
  err = weft_spawn_opts(g, &opts, weft__actor_run, a);
  if (err != 0) {
    weft_actor_free(a);
    return err;
  }
  *out = a;
  return 0;
}

void weft_actor_free(weft_actor *a) {
  if (a == NULL) return;
  weft_chan_close(a->mailbox);
  weft__mailbox_drain(a, a->env);
  weft_chan_free(a->mailbox);
  free(a->env);
  free(a->state);
  free(a);
}

/* ---- Supervisors -------------------------------------------------------- */

/* The incarnation's last act: tells the supervisor why it ended. The
 * channel has room for every event that can be pending; should it not, the
 * send waits shielded, since the supervisor reads until it ends. */
static void weft__sup_notify(weft_supervisor *s, weft_actor *a, int why) {
  weft__sup_event ev = {a->index, a->incarnation, why};
  if (weft_chan_try_send(s->events, &ev) == 0) return;
  weft_scope shield;
  weft_scope_enter_shielded(&shield, -1);
  weft_chan_send(s->events, &ev);
  weft_scope_leave(&shield);
}

/* Starts a new incarnation of actor i in a group of its own. */
static int weft__sup_launch(weft_supervisor *s, size_t i) {
  weft_actor *a = s->actors[i];
  weft_group *g = weft_group_open(WEFT_FAIL_FAST);
  if (g == NULL) return UV_ENOMEM;
  a->incarnation++;
  weft_task_opts opts = {a->name, 0, a->def.executor};
  int err = weft_spawn_opts(g, &opts, weft__actor_run, a);
  if (err != 0) {
    weft_group_join(g);
    return err;
  }
  s->groups[i] = g;
  return 0;
}

/* Cancels and joins the running incarnation of actor i, if any. */
static void weft__sup_halt(weft_supervisor *s, size_t i) {
  if (s->groups[i] == NULL) return;
  weft_group_cancel(s->groups[i]);
  weft_group_join(s->groups[i]);
  s->groups[i] = NULL;
}

/* Records a failure now; returns the number of failures within the
 * window, the newest included. */
static size_t weft__sup_failures_in_window(weft_supervisor *s) {
  int64_t now = weft_now();
  s->fails[s->nfails % s->fail_cap] = now;
  s->nfails++;
  size_t kept = s->nfails < s->fail_cap ? s->nfails : s->fail_cap;
  size_t n = 0;
  for (size_t i = 0; i < kept; i++)
    if (now - s->fails[i] <= s->opts.within_ms) n++;
  return n;
}

static int64_t weft__sup_backoff(const weft_supervisor *s, size_t failures) {
  if (s->opts.backoff_ms < 0) return 0;
  int64_t d = s->opts.backoff_ms;
  for (size_t i = 1; i < failures && d < s->opts.backoff_max_ms; i++) d *= 2;
  return d < s->opts.backoff_max_ms ? d : s->opts.backoff_max_ms;
}

/* Restarts actor i: fresh state if it asks for it, then a new incarnation. */
static int weft__sup_restart(weft_supervisor *s, size_t i) {
  weft_actor *a = s->actors[i];
  if (a->def.restart == WEFT_ACTOR_RESTART_FRESH)
    memset(a->state, 0, a->def.state_size > 0 ? a->def.state_size : 1);
  __atomic_fetch_add(&a->restarts, 1, __ATOMIC_RELAXED);
  __atomic_fetch_add(&s->restarts, 1, __ATOMIC_RELAXED);
  weft_log(WEFT_LOG_INFO, "actor restarting", "actor=%s supervisor=%s", a->name,
           s->name);
  return weft__sup_launch(s, i);
}

static int weft__sup_run(void *arg) {
  weft_supervisor *s = arg;
  int result = 0;
  size_t live = 0;
  for (size_t i = 0; i < s->n && result == 0; i++) {
    result = weft__sup_launch(s, i);
    if (result == 0) live++;
  }
  while (result == 0 && live > 0) {
    weft__sup_event ev;
    int r = weft_chan_recv(s->events, &ev);
    if (r < 0) {
      result = r;
      break;
    }
    size_t i = ev.index;
    weft_actor *a = s->actors[i];
    /* An incarnation this supervisor ended itself has been joined already. */
    if (s->groups[i] == NULL || ev.incarnation != a->incarnation) continue;
    weft_group_join(s->groups[i]);
    s->groups[i] = NULL;
    if (ev.why == 0) {
      s->ended[i] = 1;
      live--;
      weft__actor_terminate(a);
      continue;
    }
    if (weft_cancelled()) {
      result = weft_cancelled();
      break;
    }
    __atomic_fetch_add(&s->failures, 1, __ATOMIC_RELAXED);
    size_t failures = weft__sup_failures_in_window(s);
    if (failures > s->fail_cap - 1) {
      weft_log(WEFT_LOG_ERROR, "supervisor gives up",
               "supervisor=%s actor=%s error=%s failures=%zu within_ms=%lld",
               s->name, a->name, weft_err_name(ev.why), failures,
               (long long)s->opts.within_ms);
      __atomic_store_n(&s->escalated, ev.why, __ATOMIC_RELAXED);
      result = ev.why;
      break;
    }
    int all = s->opts.strategy == WEFT_SUPERVISE_ONE_FOR_ALL;
    if (all)
      for (size_t j = 0; j < s->n; j++) weft__sup_halt(s, j);
    int64_t delay = weft__sup_backoff(s, failures);
    if (delay > 0 && (r = weft_sleep(delay)) != 0) {
      result = r;
      break;
    }
    for (size_t j = 0; j < s->n && result == 0; j++) {
      if (s->ended[j] || (j != i && !all)) continue;
      result = weft__sup_restart(s, j);
    }
  }
  /* Whatever ended the loop, no actor outlives its supervisor, and no
   * message is left waiting in a mailbox nobody reads. */
  for (size_t j = 0; j < s->n; j++) weft__sup_halt(s, j);
  for (size_t j = 0; j < s->n; j++) weft__actor_terminate(s->actors[j]);
  return result;
}

int weft_supervisor_start(weft_group *g, const weft_supervisor_opts *opts,
                          const weft_actor_def *defs, size_t n,
                          weft_supervisor **out) {
  if (weft__current_task == NULL) return WEFT_ENOTASK;
  if (g == NULL || out == NULL || defs == NULL || n == 0 || n > UINT32_MAX / 4)
    return UV_EINVAL;
  weft_supervisor *s = calloc(1, sizeof *s);
  if (s == NULL) return UV_ENOMEM;
  if (opts != NULL) s->opts = *opts;
  strncpy(s->name, s->opts.name ? s->opts.name : "supervisor", sizeof s->name - 1);
  s->opts.name = s->name;
  if (s->opts.max_restarts == 0) s->opts.max_restarts = 3;
  if (s->opts.within_ms <= 0) s->opts.within_ms = 5000;
  if (s->opts.backoff_ms == 0) s->opts.backoff_ms = 10;
  if (s->opts.backoff_max_ms <= 0) s->opts.backoff_max_ms = 1000;
  s->fail_cap = (size_t)(s->opts.max_restarts < 0 ? 0 : s->opts.max_restarts) + 1;
  s->n = n;
  s->actors = calloc(n, sizeof *s->actors);
  s->groups = calloc(n, sizeof *s->groups);
  s->ended = calloc(n, 1);
  s->fails = calloc(s->fail_cap, sizeof *s->fails);
  int err = (s->actors && s->groups && s->ended && s->fails) ? 0 : UV_ENOMEM;
  int cross = 0;
  for (size_t i = 0; i < n && err == 0; i++) {
    s->actors[i] = weft__actor_new(&defs[i], &err);
    if (s->actors[i] == NULL) break;
    s->actors[i]->sup = s;
    s->actors[i]->index = (uint32_t)i;
    if (defs[i].executor != 0) cross = 1;
  }
  /* At most two events per actor are ever pending: a stale one from an
   * incarnation that was halted, and the current one. */
  if (err == 0) {
    s->events = weft_chan_new(sizeof(weft__sup_event), 2 * n + 2,
                              cross ? WEFT_CHAN_MPMC : WEFT_CHAN_LOCAL);
    if (s->events == NULL) err = UV_ENOMEM;
  }
  if (err == 0) {
    weft_task_opts topts = {s->name, 0, 0};
    err = weft_spawn_opts(g, &topts, weft__sup_run, s);
  }
  if (err != 0) {
    weft_supervisor_free(s);
    return err;
  }
  *out = s;
  return 0;
}

weft_actor *weft_supervisor_actor(weft_supervisor *s, size_t i) {
  return s != NULL && i < s->n ? s->actors[i] : NULL;
}

void weft_supervisor_stats_get(const weft_supervisor *s,
                               weft_supervisor_stats *out) {
  out->restarts = __atomic_load_n(&s->restarts, __ATOMIC_RELAXED);
  out->failures = __atomic_load_n(&s->failures, __ATOMIC_RELAXED);
  out->escalated = __atomic_load_n(&s->escalated, __ATOMIC_RELAXED);
}

void weft_supervisor_free(weft_supervisor *s) {
  if (s == NULL) return;
  for (size_t i = 0; s->actors != NULL && i < s->n; i++)
    weft_actor_free(s->actors[i]);
  weft_chan_free(s->events);
  free(s->actors);
  free(s->groups);
  free(s->ended);
  free(s->fails);
  free(s);
}
