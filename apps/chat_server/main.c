/* chat_server: multi-room chat over TCP and WebSocket, on weft.
 *
 * This file wires the options (config.json and the command line) to the
 * server in server.c; see README.md for every option and PROTOCOL.md for
 * what clients send and get.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <weft.h>

#include "auth.h"
#include "chat.h"
#include "config.h"

static const app_option chat_options[] = {
    APP_OPTION_LISTEN(chat_config, listen, "127.0.0.1:7070"),
    {.name = "http_listen",
     .type = APP_OPT_LISTEN,
     .offset = offsetof(chat_config, http_listen),
     .default_value = NULL,
     .help = "address of the HTTP side (WebSocket at /ws, the web client at /, "
             "/healthz, /metrics); repeatable; none by default"},
    APP_OPTION_EXECUTORS(chat_config, executors, "0"),
    APP_OPTION_INT(chat_config, history, "100", 0, 1000000,
                   "messages kept per room for joins and history requests"),
    APP_OPTION_INT(chat_config, max_line, "65536", 64, 64 << 20,
                   "the largest message a client may send, in bytes (a TCP "
                   "line or a WebSocket message); a longer one gets too_large "
                   "and the connection closes"),
    APP_OPTION_INT(chat_config, rate, "50", 0, 1000000,
                   "say and dm messages per second per connection, a token "
                   "bucket (0: no limit)"),
    APP_OPTION_INT(chat_config, burst, "100", 1, 1000000,
                   "the token bucket's size: messages a connection may send "
                   "at once above --rate"),
    APP_OPTION_INT(chat_config, max_queue, "1024", 1, 1000000,
                   "messages waiting for one reader; one more cuts it off "
                   "with slow_consumer"),
    APP_OPTION_INT(chat_config, max_connections, "10000", 0, 10000000,
                   "connections served at once, TCP and HTTP together; one "
                   "more is closed at once (0: no limit)"),
    APP_OPTION_CUSTOM(chat_config, idle_timeout, "120s", "DURATION",
                      "close a connection silent this long (a WebSocket is "
                      "pinged at half of it); 0: never",
                      app_parse_duration_ms_2e6, NULL,
                      app_format_duration_ms),
    APP_OPTION_INT(chat_config, max_rooms_per_conn, "256", 1, 100000,
                   "rooms one connection may be in at once"),
    APP_OPTION_INT(chat_config, backlog, "4096", 1, 65535,
                   "connections the kernel queues for each listener before "
                   "the server accepts them"),
    APP_OPTION_STRING(chat_config, store, NULL,
                      "SQLite file (WAL) that keeps every room's history "
                      "across restarts; a message is acked once committed"),
    APP_OPTION_STRING(chat_config, redis, NULL,
                      "HOST:PORT of a Redis that several nodes share: rooms, "
                      "seqs, members and nicks are then cluster-wide"),
    APP_OPTION_INT(chat_config, redis_key_ttl, "15", 2, 3600,
                   "seconds a node's nicks and members outlive it in Redis "
                   "(it refreshes them at a third of that)"),
    APP_OPTION_STRING(chat_config, auth_secret_file, NULL,
                      "a file holding the HS256 secret; hello must then carry "
                      "a JWT signed with it whose sub is the nick"),
    APP_OPTION_INT(chat_config, shutdown_grace_ms, "5000", 0, INT32_MAX,
                   "on SIGINT or SIGTERM, how long clients get to read their "
                   "bye, in milliseconds, before the rest are closed"),
    APP_OPTION_INT(chat_config, stats_interval_ms, "0", 0, INT32_MAX,
                   "log the stats this often, in milliseconds (0: never); "
                   "SIGUSR1 prints them as JSON on stdout at any time"),
    APP_OPTION_LOG_LEVEL(chat_config, log_level),
};

static const app_spec chat_spec = APP_SPEC(
    "chat_server",
    "A multi-room chat server on weft: clients speak JSON lines over TCP "
    "(--listen) or JSON text frames over WebSocket at /ws (--http-listen, "
    "which also serves a web client at /). Rooms with presence and history, "
    "direct messages, rate limits, slow consumers cut off. SIGINT or SIGTERM "
    "says bye to every client and exits 0.",
    chat_options);

int main(int argc, char **argv) {
  chat_config cfg;
  int rc = app_config_load(&chat_spec, &cfg, argc, argv);
  if (rc != APP_RUN) return rc;
  if (cfg.listen.n + cfg.http_listen.n == 0) {
    fprintf(stderr, "chat_server: --listen: give at least one address\n");
    app_config_free(&chat_spec, &cfg);
    return 2;
  }
  chat_start start = {.cfg = &cfg};
  if (cfg.auth_secret_file != NULL) {
    char why[512];
    start.auth = chat_auth_load(cfg.auth_secret_file, why, sizeof why);
    if (start.auth == NULL) {
      fprintf(stderr, "chat_server: --auth-secret-file: %s\n", why);
      app_config_free(&chat_spec, &cfg);
      return 2;
    }
  }
  app_config_log(&chat_spec, &cfg);

  weft_opts opts = {.executors = (int)cfg.executors};
  int err = weft_main_opts(&opts, chat_server_run, &start);
  chat_auth_free(start.auth);
  app_config_free(&chat_spec, &cfg);
  if (start.bad_option) return 2;
  if (err < 0) {
    fprintf(stderr, "chat_server: %s\n", weft_strerror(err));
    return 1;
  }
  return 0;
}
