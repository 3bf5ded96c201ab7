/* weft/actor.h: actors and their supervisors.
 *
 * An actor is a task with a bounded mailbox, private state and a behaviour
 * function called once per message, one message at a time, so the state
 * needs no lock. Messages are fixed-size and copied into the mailbox.
 *
 *   static int counter(weft_actor *self, void *state, void *msg, void *reply) {
 *     long *n = state;
 *     if (reply != NULL) *(long *)reply = *n;    // an ask: answer it
 *     else *n += *(long *)msg;                   // a tell
 *     return 0;
 *   }
 *   weft_actor_def def = {.name = "counter", .msg_size = sizeof(long),
 *                         .reply_size = sizeof(long),
 *                         .state_size = sizeof(long), .behaviour = counter};
 *   weft_actor *a;
 *   weft_actor_spawn(g, &def, &a);
 *   weft_actor_tell(a, &one);
 *   long total;
 *   weft_actor_ask(a, &zero, &total, 100);       // UV_ETIMEDOUT after 100 ms
 *
 * tell sends and does not wait for the behaviour; when the mailbox is full
 * the mailbox's overflow policy says whether tell waits, drops the message
 * or fails. ask sends and waits for the behaviour's reply, with a timeout.
 *
 * A behaviour (or start hook) that returns a negative error fails the
 * actor. Unsupervised (weft_actor_spawn), the actor then ends and the error
 * goes to its group. Under a supervisor the actor is restarted, with fresh
 * or kept state, after an exponential backoff; the supervisor gives up
 * after more than max_restarts failures within within_ms and returns the
 * failure to its own group. The mailbox survives restarts: messages queued
 * meanwhile are handled by the next incarnation.
 *
 * Messages that cannot be delivered (the actor has stopped, or a full
 * mailbox dropped or refused them, or they were still queued when the actor
 * ended for good) are dead letters: counted, and logged with weft_log at
 * warn level (the 1st, 2nd, 4th, 8th... of each actor, to keep logs short).
 * An ask still queued when the actor ends for good returns WEFT_ECLOSED.
 *
 * Executors. With the default WEFT_ACTOR_SHARED mailbox (MPMC), tell and
 * ask may be called from tasks on any executor, and the actor itself may
 * run on any (def.executor). A WEFT_ACTOR_LOCAL mailbox is faster but the
 * actor and every task that tells or asks it must run on the executor that
 * spawned it. weft_actor_stop() and the counters work from any executor a
 * mailbox mode allows. Spawning, weft_supervisor_start() and the _free
 * functions are for the task that owns the group.
 *
 * Lifetime. weft_actor and weft_supervisor handles stay valid after the
 * actor has ended (tells then count dead letters) until they are freed,
 * which is done after the group they run in has been joined.
 */
#ifndef WEFT_ACTOR_H
#define WEFT_ACTOR_H

#include <stddef.h>
#include <stdint.h>

#include "group.h"

#ifdef __cplusplus
extern "C" {
#endif

/** An actor (opaque). */
typedef struct weft_actor weft_actor;

/** A supervisor (opaque). */
typedef struct weft_supervisor weft_supervisor;

/** Mailbox modes: who may tell and ask (see the top of this file). */
enum {
  WEFT_ACTOR_SHARED = 0,  /**< any executor (an MPMC channel); the default */
  WEFT_ACTOR_LOCAL = 1    /**< the spawner's executor only (a LOCAL channel) */
};

/** Mailbox overflow policies: what tell does when the mailbox is full. */
enum {
  WEFT_ACTOR_WAIT = 0,    /**< waits for room (the default) */
  WEFT_ACTOR_DROP = 1,    /**< drops the message (a dead letter), returns WEFT_ACTOR_DROPPED */
  WEFT_ACTOR_FAIL = 2     /**< refuses it (a dead letter), returns UV_ENOBUFS */
};

/** tell's result when the DROP policy dropped the message. */
#define WEFT_ACTOR_DROPPED 1

/** What state a supervised actor restarts with. */
enum {
  WEFT_ACTOR_RESTART_FRESH = 0, /**< zeroed, then the start hook (the default) */
  WEFT_ACTOR_RESTART_KEEP = 1   /**< as the failed incarnation left it */
};

/**
 * The behaviour: handles msg (msg_size bytes, 8-byte aligned, its to change) with
 * the actor's state. For an ask, reply points to reply_size bytes to fill;
 * for a tell it is NULL. Returns 0, or a negative error that fails the
 * actor (an ask being handled then returns that error). It may wait (sleep,
 * I/O, channels); the actor handles the next message when it returns.
 */
typedef int (*weft_actor_fn)(weft_actor *self, void *state, void *msg,
                             void *reply);

/**
 * The start hook: runs in the actor's task before its first message, and
 * again at every restart. Returns 0, or a negative error that fails the
 * actor like a behaviour's.
 */
typedef int (*weft_actor_start_fn)(weft_actor *self, void *state, void *arg);

/**
 * The stop hook: runs in the actor's task when an incarnation ends, with
 * why: 0 after weft_actor_stop(), the behaviour's error, or the
 * cancellation code (waits then fail at once: use a shielded scope to wait).
 */
typedef void (*weft_actor_stop_fn)(weft_actor *self, void *state, int why);

/** What an actor is. Zero fields mean the defaults; the struct is copied. */
typedef struct weft_actor_def {
  const char *name;         /**< for the task, logs and dead letters; copied */
  size_t msg_size;          /**< bytes per message, 1 to 65000 */
  size_t reply_size;        /**< bytes per reply; 0: the actor takes no asks */
  size_t mailbox;           /**< messages the mailbox holds; 0: 64 */
  int mailbox_mode;         /**< WEFT_ACTOR_SHARED (default) or LOCAL */
  int overflow;             /**< WEFT_ACTOR_WAIT (default), DROP or FAIL */
  size_t state_size;        /**< bytes of private state, zeroed at start */
  int restart;              /**< WEFT_ACTOR_RESTART_FRESH (default) or KEEP */
  int executor;             /**< where the actor runs: 0 the spawner's, 1..N,
                                 or WEFT_EXEC_NEXT (SHARED mailboxes only) */
  weft_actor_fn behaviour;  /**< required */
  weft_actor_start_fn start; /**< may be NULL */
  weft_actor_stop_fn stop;  /**< may be NULL */
  void *arg;                /**< passed to start */
} weft_actor_def;

/** An actor's counters. */
typedef struct weft_actor_stats {
  uint64_t told;            /**< tells accepted into the mailbox */
  uint64_t asked;           /**< asks accepted into the mailbox */
  uint64_t handled;         /**< messages the behaviour returned from */
  uint64_t failures;        /**< incarnations that failed */
  uint64_t restarts;        /**< restarts by the supervisor */
  uint64_t dead_letters;    /**< messages not delivered, all reasons */
  uint64_t dropped;         /**< of which dropped by a full DROP mailbox */
  uint64_t rejected;        /**< of which refused by a full FAIL mailbox */
} weft_actor_stats;

/**
 * Spawns an unsupervised actor into g: when it fails, it ends and g gets
 * the error. Returns 0 and the actor in *out, or UV_EINVAL / UV_ENOMEM /
 * WEFT_ENOTASK. Free the actor with weft_actor_free() after joining g.
 */
int weft_actor_spawn(weft_group *g, const weft_actor_def *def, weft_actor **out);

/**
 * Sends a copy of msg. Returns 0 once it is in the mailbox; when the mailbox
 * is full, per its overflow policy: waits (a cancellation point: UV_ECANCELED
 * or UV_ETIMEDOUT), returns WEFT_ACTOR_DROPPED, or returns UV_ENOBUFS.
 * Returns WEFT_ECLOSED when the actor has stopped (a dead letter).
 */
int weft_actor_tell(weft_actor *a, const void *msg);

/**
 * Sends a copy of msg and waits for the behaviour to handle it, at most
 * timeout_ms (< 0: without limit). Returns 0 with the reply in reply
 * (reply_size bytes), the behaviour's error, UV_ETIMEDOUT when the reply
 * did not come in time (the behaviour may still handle the message later;
 * its reply is then thrown away), WEFT_ECLOSED when the actor has stopped
 * or stops before handling it, UV_ENOBUFS when the mailbox is full and its
 * policy is DROP or FAIL, UV_ECANCELED, or UV_EINVAL when the actor takes
 * no asks. Must be called from a task.
 */
int weft_actor_ask(weft_actor *a, const void *msg, void *reply,
                   int64_t timeout_ms);

/**
 * Stops a: the mailbox takes no more messages, the actor handles those it
 * holds, runs its stop hook with 0 and ends without error (a supervised
 * actor is then not restarted). Idempotent; may be called by the actor's
 * own behaviour.
 */
void weft_actor_stop(weft_actor *a);

/** The actor's name. */
const char *weft_actor_name(const weft_actor *a);

/** Fills *out with a's counters (a snapshot across executors). */
void weft_actor_stats_get(const weft_actor *a, weft_actor_stats *out);

/**
 * Frees an unsupervised actor once the group it ran in has been joined.
 * Messages still in its mailbox are dead letters. Actors of a supervisor
 * are freed with it.
 */
void weft_actor_free(weft_actor *a);

/* ---- Supervisors -------------------------------------------------------- */

/** Supervision strategies. */
enum {
  /** Only the failed actor restarts (the default). */
  WEFT_SUPERVISE_ONE_FOR_ONE = 0,
  /** Every actor of the supervisor restarts when one fails. */
  WEFT_SUPERVISE_ONE_FOR_ALL = 1
};

/** Options of a supervisor; zero fields mean the defaults. */
typedef struct weft_supervisor_opts {
  const char *name;         /**< task name; default "supervisor" */
  int strategy;             /**< WEFT_SUPERVISE_ONE_FOR_ONE (default) or ALL */
  int max_restarts;         /**< K: restarts allowed within within_ms; 0: 3;
                                 < 0: none (the first failure escalates) */
  int64_t within_ms;        /**< T; 0: 5000 */
  int64_t backoff_ms;       /**< first restart's delay, doubled for each
                                 further failure within T; 0: 10; < 0: none */
  int64_t backoff_max_ms;   /**< the delay's ceiling; 0: 1000 */
} weft_supervisor_opts;

/** A supervisor's counters. */
typedef struct weft_supervisor_stats {
  uint64_t restarts;        /**< actor restarts, all actors */
  uint64_t failures;        /**< actor failures seen */
  int escalated;            /**< the error it gave up with, or 0 */
} weft_supervisor_stats;

/**
 * Starts a supervisor task in g with n actors made from defs[0..n-1]
 * (started in that order), and returns it in *out. The supervisor ends
 * without error when every actor has stopped (weft_actor_stop), with the
 * failure when it gives up (its actors are cancelled first), and with
 * UV_ECANCELED when g is cancelled. Returns 0, UV_EINVAL, UV_ENOMEM or
 * WEFT_ENOTASK. Free it with weft_supervisor_free() after joining g.
 */
int weft_supervisor_start(weft_group *g, const weft_supervisor_opts *opts,
                          const weft_actor_def *defs, size_t n,
                          weft_supervisor **out);

/** The i-th actor of s (in the order of defs), or NULL. */
weft_actor *weft_supervisor_actor(weft_supervisor *s, size_t i);

/** Fills *out with s's counters. */
void weft_supervisor_stats_get(const weft_supervisor *s,
                               weft_supervisor_stats *out);

/** Frees s and its actors, once the group it ran in has been joined. */
void weft_supervisor_free(weft_supervisor *s);

#ifdef __cplusplus
}
#endif
#endif /* WEFT_ACTOR_H */
