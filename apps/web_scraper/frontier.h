/* frontier.h: the URLs to fetch and the URLs seen, behind one interface.
 *
 * The crawler asks the frontier two things: "is this URL new?" (the seen
 * set, which every URL passes through once, links and redirect targets
 * alike) and "what is next for this host?" (one FIFO queue per host:port,
 * as scrapy-redis keeps them, so that politeness can pick among hosts).
 * Depth ordering is the crawler's: it pops only items no deeper than the
 * level it is serving.
 *
 * Backends: memory (this file's ws_frontier_memory: a hash set of 64-bit
 * URL fingerprints and linked queues); SQLite and Redis backends implement
 * the same operations for --state and --redis.
 *
 * Every call is made from a task of the crawler's executor. A backend may
 * suspend the calling task (SQLite and Redis do), so the crawler reads
 * nothing it checked before a call as still true after it.
 */
#ifndef WS_FRONTIER_H
#define WS_FRONTIER_H

#include <stddef.h>
#include <stdint.h>

/** An item flag: the URL is a seed (it gets a record whatever happens). */
#define WS_ITEM_SEED 1u
/** An item flag: the URL is a sitemap (read for URLs, not parsed as HTML). */
#define WS_ITEM_SITEMAP 2u

/** One URL to fetch. The strings are malloc'ed and owned by the item. */
typedef struct ws_item {
  char *url;      /**< normalised */
  char *referrer; /**< the page that linked it; NULL for a seed */
  int depth;      /**< link distance from a seed */
  unsigned flags; /**< WS_ITEM_* */
  int recorded;   /**< recording() said yes: its record is being written */
} ws_item;

/** Frees the strings of it and zeroes it. */
void ws_item_clear(ws_item *it);

typedef struct ws_frontier ws_frontier;

/** A backend's operations. Errors are negative weft/libuv codes. */
typedef struct ws_frontier_ops {
  /** Adds url to the seen set: 1 when it was new, 0 when already seen. */
  int (*mark_seen)(ws_frontier *f, const char *url);
  /** 1 when url is in the seen set, else 0; NULL when asking costs a
   * round trip (the crawler then goes straight to add()). A fast path only:
   * the answer may be stale by the time add() runs. */
  int (*contains)(ws_frontier *f, const char *url);
  /** Adds it->url to the seen set and, when it was new, appends the item
   * (copied) to the queue of host: 1 when queued, 0 when already seen. */
  int (*add)(ws_frontier *f, const char *host, const ws_item *it);
  /** The depth of the head of host's queue, or -1 when it is empty. */
  int (*head_depth)(ws_frontier *f, const char *host);
  /** Takes the head of host's queue into *out: 0, or 1 when empty, or 2
   * when its head is deeper than the level the crawl serves (a shared
   * frontier, which serves the levels across all its processes). */
  int (*pop)(ws_frontier *f, const char *host, ws_item *out);
  /** Durable frontiers (NULL in the memory one): says, before a popped
   * item's record is written, that it is being recorded, so that a run
   * resumed after the process was killed looks for the record in the
   * output rather than fetch the page again. 1: write the record; 0: do
   * not (another process took the item meanwhile); or an error. */
  int (*recording)(ws_frontier *f, ws_item *it);
  /** Says that a popped item is finished (and recorded, when it->recorded). */
  int (*done)(ws_frontier *f, const ws_item *it);
  /** Calls fn for every host and depth with items queued when the
   * frontier was opened (a resumed crawl), with their number. */
  int (*each_queued)(ws_frontier *f,
                     int (*fn)(void *ctx, const char *host, int depth,
                               int64_t n),
                     void *ctx);
  /* ---- Shared frontiers only (Redis); NULL in the others ---- */
  /** Calls fn for every host with items queued by any process, with their
   * number, and queues again the items of the processes whose lease has
   * expired (they died, or hang); *level is set to the depth served (-1:
   * nothing pending). */
  int (*refresh)(ws_frontier *f,
                 int (*fn)(void *ctx, const char *host, int64_t n), void *ctx,
                 int *level);
  /** Renews this process's lease, which keeps its claims its own: 0, or 1
   * when it had lapsed (the others may have taken its items), or an
   * error. Call it several times per claim timeout. */
  int (*renew)(ws_frontier *f);
  /** 1 when nothing is queued, claimed or being recorded by any process,
   * else 0. */
  int (*finished)(ws_frontier *f);
  /** Takes one of the limit shared slots of host, keeping delay_ms after
   * the previous request to it: 0 (token names the slot, for release), or
   * the milliseconds to wait before asking again. A slot never released
   * (its process died) frees itself after ttl_ms. */
  int64_t (*lease)(ws_frontier *f, const char *host, int64_t limit,
                   int64_t delay_ms, int64_t ttl_ms, char *token,
                   size_t token_len);
  void (*release)(ws_frontier *f, const char *host, const char *token);
  /** robots.txt of host as a process of the job stored it (put_robots):
   * 0 with *value (malloc'ed, *len bytes) and *ttl_ms, the milliseconds
   * it stays; 1 when nobody has: this process fetches it, and holds the
   * host's robots.txt until its put_robots(); 2 when a live process is
   * fetching it (ask again soon); or an error. */
  int (*get_robots)(ws_frontier *f, const char *host, char **value,
                    size_t *len, int64_t *ttl_ms);
  /** Stores value (len bytes) as host's robots.txt for ttl_ms and lets
   * the others read it; value NULL stores nothing (the fetch was cut
   * short) and lets another process fetch it. */
  int (*put_robots)(ws_frontier *f, const char *host, const char *value,
                    size_t len, int64_t ttl_ms);
  /** URLs seen, and items queued, in all. */
  uint64_t (*seen_count)(ws_frontier *f);
  uint64_t (*queued_count)(ws_frontier *f);
  /** Frees the frontier. */
  void (*close)(ws_frontier *f);
} ws_frontier_ops;

/** The common head of every backend. */
struct ws_frontier {
  const ws_frontier_ops *ops;
};

/** An in-memory frontier. NULL when out of memory. */
ws_frontier *ws_frontier_memory(void);

/** Where the records go, for finding them again after a kill (output.h). */
typedef struct ws_output_info {
  const char *path; /**< the output's absolute path; NULL: not a file */
  int64_t size;     /**< its size when this run starts writing */
} ws_output_info;

/**
 * A frontier in the SQLite database DIR/frontier.db (DIR made when
 * missing), for --state: items in flight when a crawl stopped are queued
 * again, except those whose record the output already holds. Call from a
 * task. Returns 0 and *out, or an error (logged).
 */
int ws_frontier_sqlite(const char *dir, const ws_output_info *oi,
                       ws_frontier **out);

/**
 * A frontier shared through Redis at host:port by every process of job
 * (--redis, --job): the seen set, a queue per host (sorted by depth), the
 * items claimed by each process, the lease of each process (its claims
 * are queued again claim_ms after it last renewed it: it died), per-host
 * leases that hold --per-host and the delay across processes, and the
 * robots.txt of each host. node names this machine (NULL: its host
 * name): a process reads the outputs of the dead processes of its node.
 * Call from a task.
 */
int ws_frontier_redis(const char *host, int port, const char *job,
                      const char *node, int64_t claim_ms,
                      const ws_output_info *oi, ws_frontier **out);

#endif /* WS_FRONTIER_H */
