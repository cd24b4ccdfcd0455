/*
 * room: the members of named rooms, and what one member sends reaching the
 * others.  The broadcast handler puts each of its sessions in a room and
 * tells the room what the session sends; the room hands it to every other
 * member through the member's callbacks (struct room_member_ops).  This
 * is the local room, delivering in this process; a room shared with other
 * daemons would sit behind the same calls, publishing what local members
 * send and delivering what comes from elsewhere, without the handler's
 * stream logic changing.
 *
 * Nothing here does I/O: the callbacks do.  Also pure: member ids, the
 * limits, and the room name from a request's query (unit-tested).
 */
#ifndef WTRELAYD_ROOM_H
#define WTRELAYD_ROOM_H

#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include "buf.h"

#define ROOM_NAME_MAX 128

struct room;
struct room_set;
struct room_member;

/* What a member does with what the others send (the handler's side). */
struct room_member_ops {
    /* A datagram from member `from`. */
    void (*datagram)(struct room_member *to, uint64_t from, const uint8_t *p,
                     size_t n);
    /* A stream from `from` begins: the member's copy of it, or NULL when
     * the member cannot take it (that message is lost for it). */
    void *(*copy_open)(struct room_member *to, uint64_t from);
    /* Bytes [off, off + n) of `b` for the copy, and/or its end.  -1 when
     * the member cannot take them: the copy is gone (the member dealt with
     * it: reset it, or closed its session), and hears no more of it. */
    int (*copy_write)(struct room_member *to, void *copy, struct buf_shared *b,
                      size_t off, size_t n, int fin);
    /* The sender aborted the stream (`code`): so does the copy, and the
     * room is done with it (no copy_done follows). */
    void (*copy_abort)(struct room_member *to, void *copy, uint32_t code);
    /* The room is done with the copy (ended, aborted or dropped); the
     * member's own stream may still be sending it. */
    void (*copy_done)(struct room_member *to, void *copy);
    /* Another member joined (1) or left (0); the room now has `count`. */
    void (*presence)(struct room_member *to, int joined, uint64_t who,
                     size_t count);
};

struct room_member {
    const struct room_member_ops *ops;
    struct room *room; /* NULL when in none */
    uint64_t id;       /* 1, 2, ...: unique in the room while in it */
    LIST_ENTRY(room_member) link;
};

/* The rooms of one route, with its limits. */
struct room_set *room_set_new(size_t max_rooms, size_t max_members);
/* Only once empty (every member gone). */
void room_set_free(struct room_set *rs);
size_t room_set_count(const struct room_set *rs);

enum {
    ROOM_OK = 0,
    ROOM_FULL = -1,     /* the room has max_members */
    ROOM_TOO_MANY = -2, /* a new room, and the set has max_rooms */
    ROOM_NOMEM = -3,
};

/* Puts m (ops set) in the room `name` (created as needed): it gets its id,
 * the others hear of it (presence). */
int room_join(struct room_set *rs, const char *name, size_t len,
              struct room_member *m);
/* Takes m out: the others hear of it, the room goes with its last member.
 * m must first have ended the relays it sends (room_relay_close) and let
 * go of the copies it receives (room_relay_drop). */
void room_leave(struct room_member *m);
size_t room_count(const struct room *r);
const char *room_name(const struct room *r);

/* A datagram from `from` to every other member (and to itself with
 * `self`). */
void room_send_datagram(struct room_member *from, const uint8_t *p, size_t n,
                        int self);

/*
 * A stream `from` sends, relayed to every other member (and itself with
 * `self`) as its bytes arrive: a copy is opened for each member now in the
 * room; who joins later does not get this one.  Bytes are held once, shared
 * by every copy.
 */
struct room_relay *room_relay_open(struct room_member *from, int self);
/* More bytes, and/or the end.  -1 when out of memory (nothing relayed). */
int room_relay_write(struct room_relay *r, const uint8_t *p, size_t n,
                     int fin);
/* The sender aborted it: every copy is aborted with `code` (and left). */
void room_relay_abort(struct room_relay *r, uint32_t code);
/* The sender is done with it (after its end or abort); frees it. */
void room_relay_close(struct room_relay *r);
/* `copy` of `to` ended on the member's side (its stream reset or closed,
 * its session ending): the relay writes no more to it. */
void room_relay_drop(struct room_relay *r, void *copy);
/* How many copies the relay still writes to. */
size_t room_relay_copies(const struct room_relay *r);

/*
 * The room a request names: the value of query parameter `param` in
 * `path` ("/chat?room=lobby"), percent-decoded ('+' is a space, as forms
 * send it), at most ROOM_NAME_MAX bytes, no control characters.  No such
 * parameter: "" (the route's default room).  0 with out (NUL-terminated,
 * ROOM_NAME_MAX + 1 bytes) and *len, or -1 for a bad name.
 */
int room_name_from_path(const char *path, const char *param, char *out,
                        size_t *len);

#endif
