/* room.h: rooms as actors.
 *
 * Each room is an actor that owns its members, its sequence counter and its
 * recent history; everything a connection asks of a room is a message to
 * that actor, handled one at a time, so a room's messages get their seq and
 * reach every member in one order. Rooms are made on first join by the
 * directory (an actor too, since the task that owns a group spawns into
 * it) and live until the server stops.
 */
#ifndef CHAT_ROOM_H
#define CHAT_ROOM_H

#include <stdint.h>

#include <weft.h>

#include "conn.h"

/** Non-zero when name is a valid room name: 1 to 64 bytes of UTF-8
 * without control characters. */
int chat_room_name_valid(const char *name);

/** Starts the directory in g (a group of the root task). */
int chat_rooms_start(weft_group *g);

/** Stops every room and the directory; call before joining g. */
void chat_rooms_stop(void);

/** Frees what chat_rooms_start() made, after g was joined. */
void chat_rooms_free(void);

/** The room called name, made when create is non-zero and it does not
 * exist yet; NULL when it does not exist (or cannot be made). Waits for the
 * directory when the room is made. */
weft_actor *chat_room_get(const char *name, int create);

/** What a connection asks of a room. c's reference goes with the request
 * (the caller takes one for it); text and id are malloc'ed and owned by
 * the room from here on. Returns 0 or the tell's error. */
int chat_room_join(weft_actor *room, chat_conn *c, int64_t since);
int chat_room_leave(weft_actor *room, chat_conn *c);
int chat_room_gone(weft_actor *room, chat_conn *c);
int chat_room_say(weft_actor *room, chat_conn *c, char *text, char *id);
int chat_room_history(weft_actor *room, chat_conn *c, int64_t since);

/** {"type":"rooms","rooms":[...]} with every room that has members. */
chat_buf *chat_rooms_list(void);

/** Hands room name a message read from the cluster's stream (presence 0)
 * or another node's presence event (presence 1); b's reference goes with
 * it. */
void chat_room_remote(const char *name, chat_buf *b, int presence);

/** The last seq of room name (0 when there is no such room). */
int64_t chat_room_seq(const char *name);

/** The number of rooms. */
int64_t chat_rooms_count(void);

#endif /* CHAT_ROOM_H */
