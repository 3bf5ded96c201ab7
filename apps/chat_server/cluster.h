/* cluster.h: several nodes sharing rooms, seqs and nicknames (--redis).
 *
 * Nodes that name the same Redis share:
 *
 *   - a room's messages: a script takes the room's next seq (INCR) and
 *     appends the message to the room's stream with the ID 0-seq, in one
 *     step, so the stream holds every node's messages in one order with
 *     one seq; each node reads the streams of its rooms (XREAD) and its
 *     rooms deliver what they read, their own messages included, in stream
 *     order. History and "since" are ranges of the stream.
 *   - presence: a second stream per room; members: one set per room and
 *     node, with a TTL that the node refreshes, so that the members of a
 *     node that dies go away;
 *   - nicknames: one key per nick holding its node, with a TTL that the
 *     node refreshes; a direct message to a nick on another node goes to
 *     that node's inbox stream.
 *
 * Everything runs on executor 1, with two connections (commands, and the
 * blocking stream reads): with a cluster, rooms run there too. A node that
 * loses Redis says so in the log and /healthz, keeps serving its own
 * members (its rooms number their messages themselves meanwhile) and
 * reconnects with backoff; once back, it raises each room's seq in Redis
 * to at least its own, claims its nicks and members again, and reads on.
 */
#ifndef CHAT_CLUSTER_H
#define CHAT_CLUSTER_H

#include <stddef.h>
#include <stdint.h>

#include <weft.h>

#include "conn.h"
#include "message.h"

/** Starts the cluster's tasks in g (from the root task) for Redis at
 * host:port, after a first connection. Returns 0, or an error with a
 * sentence in why (Redis unreachable at start is not an error: the node
 * starts alone and keeps trying). */
int chat_cluster_start(weft_group *g, const char *host_port, char *why,
                       size_t why_len);

/** Stops the cluster's tasks (before g is joined). */
void chat_cluster_stop(void);

/** Frees what is left once g is joined. */
void chat_cluster_free(void);

/** Non-zero while the node is connected to Redis. */
int chat_cluster_up(void);

/* ---- For rooms (their actors run on executor 1) --------------------------- */

/** Loads room's last seq and up to max recent messages (oldest first, in
 * *msgs; unreference each and free the array) and starts reading its
 * streams. Returns 0, or an error when Redis is down (the room starts
 * empty and is read once the node is back). */
int chat_cluster_room_open(const char *room, size_t max, int64_t *last_seq,
                           chat_buf ***msgs, size_t *n);

/** Stops reading room's streams. */
void chat_cluster_room_close(const char *room);

/** Appends a message to the room's stream with the next seq, returned in
 * *seq. The message comes back through the room's stream reader. Returns 0
 * or an error (Redis down). */
int chat_cluster_say(const char *room, const char *from, const char *text,
                     int64_t *seq);

/** Records a join or leave of a local member and tells the other nodes. */
void chat_cluster_presence(const char *room, const char *nick, int join);

/** Appends the nicks in room on every node, as JSON strings separated by
 * commas, to sb. Returns 0, or an error (nothing appended). */
int chat_cluster_members(const char *room, chat_sb *sb);

/* ---- For connections (any executor) ----------------------------------------- */

/** Claims nick for this node: 0, UV_EEXIST when another node holds it, or
 * another error when Redis is down (the nick is then local only). */
int chat_cluster_claim(const char *nick);

/** Gives nick back. */
void chat_cluster_release(const char *nick);

/** Sends a direct message b to nick on whichever node holds it: 0, or
 * UV_ENOENT when no node does, or another error (Redis down). */
int chat_cluster_dm(const char *nick, chat_buf *b);

/** The cluster-wide rooms list ({"type":"rooms",...}), or NULL when Redis
 * is down. */
chat_buf *chat_cluster_rooms(void);

#endif /* CHAT_CLUSTER_H */
