/* weft_redis.h: Redis from weft tasks, through hiredis on the executor's
 * loop.
 *
 * A weft_redis connection is a hiredis async context attached to the libuv
 * loop of the executor that opened it (hiredis's libuv adapter), so that
 * any number of tasks of that executor send commands over it at once:
 * commands are pipelined, and each task is suspended, that task only,
 * until its own reply arrives.
 *
 *   weft_redis *r;
 *   int err = weft_redis_connect("127.0.0.1", 6379, NULL, &r);  // in a task
 *   redisReply *reply;
 *   if (err == 0 && weft_redis_command(r, &reply, "INCR room:%s:seq", room) == 0) {
 *     printf("%lld\n", reply->integer);
 *     freeReplyObject(reply);
 *   }
 *   weft_redis_close(r);
 *
 * Errors: a reply of type REDIS_REPLY_ERROR is a reply like any other (the
 * call returns 0 and the caller reads reply->str). The call fails, with no
 * reply, when the connection is lost or was closed (UV_ECONNRESET, and
 * every later call at once: a lost connection is not reopened by itself,
 * see weft_redis_connected()), or when opts.command_timeout_ms passes
 * (UV_ETIMEDOUT, and the connection is then dropped, since the reply would
 * land on the next command).
 *
 * Publish/subscribe: a connection that called weft_redis_subscribe() is in
 * subscriber mode, as Redis says, and takes only weft_redis_subscribe()
 * and weft_redis_next_message() (commands get UV_EINVAL); use a second
 * connection for commands. Messages that no task is waiting for are kept
 * in memory without a bound: a subscriber must keep reading. Send
 * SUBSCRIBE, MONITOR and the like only through these calls, never through
 * weft_redis_command().
 *
 * Cancellation: every call honours the calling task's scope. A cancelled
 * command's reply, when it comes, is dropped, so the connection stays in
 * step.
 *
 * Threads: a connection belongs to the executor that opened it and is used
 * from that executor's tasks only (a call from another executor gets
 * UV_EINVAL). Open one per executor that needs one.
 */
#ifndef WEFT_REDIS_H
#define WEFT_REDIS_H

#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>
#include <weft.h>

#ifdef __cplusplus
extern "C" {
#endif

/** A connection on an executor's loop (opaque). */
typedef struct weft_redis weft_redis;

/** Options for weft_redis_connect(); zero everywhere gives the defaults. */
typedef struct weft_redis_opts {
  int connect_timeout_ms; /**< 0: 2000 */
  int command_timeout_ms; /**< 0: none (the caller's scope bounds it) */
} weft_redis_opts;

/**
 * Connects to host:port (an IP address or a name, resolved with
 * weft_dns_lookup() and tried address by address) on the calling task's
 * executor, and waits for the reply to a PING. Returns 0 and *out, or an
 * error: UV_EINVAL, UV_ENOMEM, UV_ETIMEDOUT, UV_ECONNREFUSED or another
 * connect or resolver error, UV_ECANCELED.
 */
int weft_redis_connect(const char *host, int port, const weft_redis_opts *opts,
                       weft_redis **out);

/**
 * Sends a command formatted as hiredis's redisCommand() formats it (%s for
 * a C string, %b for a pointer and a length) and waits for its reply.
 * Returns 0 and *reply (free it with freeReplyObject()), or an error (see
 * Errors above) with *reply NULL.
 */
int weft_redis_command(weft_redis *r, redisReply **reply, const char *fmt, ...);

/** The same with the arguments as an array (argvlen NULL: C strings). */
int weft_redis_commandv(weft_redis *r, redisReply **reply, int argc, const char **argv,
                        const size_t *argvlen);

/**
 * Subscribes to a channel (pattern 0) or a pattern (pattern 1, PSUBSCRIBE).
 * Returns once Redis has confirmed it: 0 or an error (UV_EINVAL while
 * commands of the connection still wait for replies).
 */
int weft_redis_subscribe(weft_redis *r, const char *channel, int pattern);

/**
 * Waits up to timeout_ms (-1: no limit, 0: only what is queued) for the
 * next message of the subscriptions. Returns 0 and *channel / *payload
 * (malloc'ed, the payload NUL-terminated and *len bytes long; the caller
 * frees both; for a pattern subscription *channel is the channel the
 * message was published on), UV_ETIMEDOUT when none came, or an error when
 * the connection is lost (messages queued before are still returned
 * first). Messages that arrive while no task waits are queued in order;
 * several waiting tasks get messages in the order they started waiting.
 */
int weft_redis_next_message(weft_redis *r, int64_t timeout_ms, char **channel, char **payload,
                            size_t *len);

/** 1 while the connection is up, 0 once it was lost or closed. */
int weft_redis_connected(const weft_redis *r);

/**
 * Closes the connection: commands still waiting fail with UV_ECONNRESET.
 * Call it from a task of the connection's executor. NULL is ignored.
 */
void weft_redis_close(weft_redis *r);

#ifdef __cplusplus
}
#endif

#endif /* WEFT_REDIS_H */
