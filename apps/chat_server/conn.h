/* conn.h: one client connection, over TCP or WebSocket.
 *
 * Each connection is a task on the executor that accepted it, the reader,
 * which reads requests and answers them; a writer task drains the
 * connection's outbound queue onto the socket while there is something to
 * write, and ends once the queue has been empty for a second, so that an
 * idle connection is one task (what the reader queues in answer to its own request it writes
 * itself when nothing else is being written). Every byte the client gets
 * goes through that queue, in the order it was queued: replies, room
 * messages, presence, direct messages.
 *
 * The queue is bounded by --max-queue messages. A producer that finds it
 * full does not wait: the connection is cut off as a slow consumer (the
 * queue is dropped, the error "slow_consumer" is written once the socket
 * takes it, within a grace period, and the connection closes), so a reader
 * that does not keep up never slows a room down nor makes the server's
 * memory grow.
 *
 * A connection is reference-counted: the rooms it is a member of and the
 * nickname registry hold references, so that a room can queue a message
 * for a member on another executor at any time; once the connection has
 * ended, what is queued for it is dropped.
 */
#ifndef CHAT_CONN_H
#define CHAT_CONN_H

#include <weft.h>
#include <weft_ws.h>

#include "message.h"

typedef struct chat_conn chat_conn;

/** app_conn_fn of the TCP listeners: serves one line-delimited client. */
int chat_conn_serve_tcp(weft_tcp *tcp, void *ctx);

/** Serves a WebSocket client from the /ws handler, which then frees ws. */
int chat_conn_serve_ws(weft_ws *ws);

/** Queues b (taking a reference of its own) for c, from any executor.
 * Cuts c off when its queue is full. */
void chat_conn_push(chat_conn *c, chat_buf *b);

/** Queues an error reply that leaves the connection open. */
void chat_conn_error(chat_conn *c, const char *code, const char *text);

/** c's nickname ("" before hello). */
const char *chat_conn_nick(const chat_conn *c);

void chat_conn_ref(chat_conn *c);
void chat_conn_unref(chat_conn *c);

/** Makes and frees what every connection shares (before the first one,
 * after the last), for n_exec executors. */
int chat_conns_init(int n_exec);
void chat_conns_free(void);

/** The body of the writer starter of each executor (arg: the executor's
 * number, 1..n_exec, as an intptr_t): starts a writer task for each of
 * its connections that has something queued and no writer. Ends after
 * chat_conns_stop_starters(), once its writers have ended. */
int chat_writer_starter_task(void *executor);

/** Ends the starters; call once no connection is left. */
void chat_conns_stop_starters(void);

/** Says bye to every connection of the calling executor and stops reading
 * them (the server's on_stop hook). */
void chat_conns_stop_executor(void);

/** The body of the helper task of each executor: takes the connections cut
 * off by producers on any executor and bounds the wait for their writes. */
int chat_janitor_task(void *chan);

#endif /* CHAT_CONN_H */
