/* chat.h: the chat server's configuration and the state its parts share.
 *
 * The parts, each in a file named for what it holds:
 *
 *   main.c      the options (config.json and the command line)
 *   server.c    listeners (TCP and HTTP), the web page, /ws, /healthz,
 *               /metrics, the per-executor helper tasks, shutdown
 *   conn.c      one connection: its reader task (the protocol), its writer
 *               task and its bounded outbound queue
 *   room.c      rooms as actors, and the directory that creates them
 *   nicks.c     the nickname registry
 *   auth.c      HS256 JSON Web Tokens
 *   store.c     durable history in SQLite (--store)
 *   cluster.c   rooms, seqs and nicknames shared through Redis (--redis)
 *   message.c   shared message buffers, JSON text, UTF-8 checks
 *   map.c       the string hash map under the registry and the directory
 */
#ifndef CHAT_H
#define CHAT_H

#include <stdint.h>

#include <weft.h>

#include "config.h"
#include "stats.h"

/** The options; see main.c and README.md. */
typedef struct chat_config {
  app_listen_list listen;
  app_listen_list http_listen;
  int64_t executors;
  int64_t history;
  int64_t max_line;
  int64_t rate;
  int64_t burst;
  int64_t max_queue;
  int64_t max_connections;
  int64_t idle_timeout;      /* ms; 0: none */
  int64_t max_rooms_per_conn;
  int64_t backlog;
  char *store;
  char *redis;
  int64_t redis_key_ttl;     /* seconds */
  char *auth_secret_file;
  int64_t shutdown_grace_ms;
  int64_t stats_interval_ms;
  int log_level;
} chat_config;

/** Bytes of a nickname, at most. */
#define CHAT_NICK_MAX 32
/** Bytes of a room name, at most. */
#define CHAT_ROOM_MAX 64
/** Characters of a say's id, at most. */
#define CHAT_ID_MAX 64

typedef struct chat_auth chat_auth;
typedef struct chat_store chat_store;

/** What every part reads; made once by chat_server_run(). */
typedef struct chat_server {
  const chat_config *cfg;
  chat_auth *auth;        /* NULL: nicknames are first come, first served */
  chat_store *store;      /* NULL: history in memory only */
  int cluster;            /* non-zero with --redis */
  int n_exec;
  weft_chan **janitors;   /* one per executor, index executor - 1 */
  app_stats *stats;
  app_counter *messages;  /* room messages said */
  app_counter *delivered; /* copies queued for members */
  app_counter *dms;
  app_counter *errors;    /* error replies */
  app_counter *slow_consumers;
  app_counter *rate_limited;
  app_gauge *sessions;    /* connections that said hello */
  weft_counter *m_messages, *m_delivered, *m_dms, *m_errors, *m_slow;
  weft_gauge *m_sessions, *m_rooms;
} chat_server;

/** The running server (set before the first connection). */
extern chat_server *chat_srv;

/** What main() hands the server: the options and what it loaded. */
typedef struct chat_start {
  const chat_config *cfg;
  chat_auth *auth;
  int bad_option; /* set when the server could not start because of an
                     option (a store it cannot open): exit 2 */
} chat_start;

/** The root task of weft_main_opts() (arg: a chat_start): runs the server
 * until SIGINT or SIGTERM and the goodbyes. */
int chat_server_run(void *arg);

#endif /* CHAT_H */
