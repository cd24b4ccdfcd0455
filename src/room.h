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
#include <sys/types.h>

#include "buf.h"

#define ROOM_NAME_MAX 128

struct room;
struct room_set;
struct room_member;
struct room_relay;

/*
 * What a member does with what the others send (the handler's side).
 *
 * A relayed stream is paced by its fastest member: each copy takes the
 * bytes it has room for (its member's budget), the room keeps the rest for
 * it, and the sender gets credit as soon as one member has the bytes.  A
 * copy that falls more than the relay's lag limit behind the fastest is
 * slow: copy_slow, and the room lets go of it.  So one slow member never
 * sets the pace, and what the room holds for a relay stays bounded.
 */
struct room_member_ops {
    /* A datagram from member `from`. */
    void (*datagram)(struct room_member *to, uint64_t from, const uint8_t *p,
                     size_t n);
    /* A stream from `from` begins (relay `r`, for room_relay_resume and
     * room_relay_drop): the member's copy of it, or NULL when the member
     * cannot take it (that message is lost for it). */
    void *(*copy_open)(struct room_member *to, uint64_t from,
                       struct room_relay *r);
    /* Bytes [off, off + n) of `b` for the copy (fin: they end it): returns
     * how many it took (0..n; the end goes only with all of them), or
     * ROOM_WAIT when the copy cannot start yet (no stream to send it on:
     * it does not count among the takers that set the pace, and lags), or
     * -1 when the copy is gone (reset, or its session closing) and hears
     * no more.  What it does not take now it is offered again after
     * room_relay_resume(). */
    ssize_t (*copy_write)(struct room_member *to, void *copy,
                          struct buf_shared *b, size_t off, size_t n,
                          int fin);
    /* The copy is `lag` bytes behind the fastest now (waiting ones too):
     * the member sums what all its copies lag, and answers -1 when that
     * is too much (the room lets go of the copy: copy_slow follows), 0
     * otherwise.  May be NULL. */
    int (*copy_lag)(struct room_member *to, void *copy, uint64_t lag);
    /* The copy fell more than the lag limit behind, its own or its
     * member's: the member drops it (or its session); the room lets go
     * of it. */
    void (*copy_slow)(struct room_member *to, void *copy);
    /* The sender aborted the stream (`code`): so does the copy, and the
     * room lets go of it (no copy_done follows). */
    void (*copy_abort)(struct room_member *to, void *copy, uint32_t code);
    /* The relay is over for the copy (it got everything, or the relay is
     * freed); the member's own stream may still be sending it. */
    void (*copy_done)(struct room_member *to, void *copy);
    /* Another member joined (1) or left (0); the room now has `count`. */
    void (*presence)(struct room_member *to, int joined, uint64_t who,
                     size_t count);
};

#define ROOM_WAIT (-2)

/* What the sender of a relayed stream hears (its side). */
struct room_sender_ops {
    /* The fastest member has taken the first `front` bytes: their
     * flow-control credit may go back to the sender. */
    void (*progress)(void *sender, uint64_t front);
    /* With the end received: every member still in it has everything
     * (the sender's acknowledgement). */
    void (*delivered)(void *sender);
    /* The relay is freed; no more calls. */
    void (*gone)(void *sender);
};

struct room_member {
    const struct room_member_ops *ops;
    struct room *room; /* NULL when in none */
    uint64_t id;       /* 1, 2, ...: unique in the room while in it */
    LIST_ENTRY(room_member) link;
};

/* The rooms of one route, with its limits. */
struct room_set *room_set_new(size_t max_rooms, size_t max_members);
/* Sets are reference-counted (a reload's new route shares its
 * predecessor's rooms); room_set_free() drops a reference, the last must
 * come once the set is empty (every member gone). */
struct room_set *room_set_ref(struct room_set *rs);
void room_set_free(struct room_set *rs);
/* New limits for joins from now on: members and rooms beyond them stay. */
void room_set_limits(struct room_set *rs, size_t max_rooms,
                     size_t max_members);
size_t room_set_count(const struct room_set *rs);
/* The longest hash chain (tests: names chosen to collide stay spread). */
size_t room_set_longest_chain(const struct room_set *rs);

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
/* Takes m out: the others hear of it, the room goes with its last member
 * (and its last relay).  m must first have aborted the relays it sends
 * (room_relay_abort, room_relay_release) and let go of the copies it
 * receives (room_relay_drop). */
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
 * room; who joins later does not get this one.  Bytes are held once,
 * shared by every copy.  `lag` is how far (bytes) a copy may fall behind
 * the fastest.  `sops`/`sender` hear of the relay's progress (may be
 * NULL: a sender elsewhere).
 */
struct room_relay *room_relay_open(struct room_member *from, int self,
                                   uint64_t lag,
                                   const struct room_sender_ops *sops,
                                   void *sender);
/* More bytes, and/or the end.  -1 when out of memory (nothing relayed). */
int room_relay_write(struct room_relay *r, const uint8_t *p, size_t n,
                     int fin);
/* The member of `copy` has room again: the relay offers it what it holds
 * for it. */
void room_relay_resume(struct room_relay *r, void *copy);
/* The sender aborted it: every copy is aborted with `code` (and left). */
void room_relay_abort(struct room_relay *r, uint32_t code);
/* The sender's side is gone (its stream closed): the relay goes on for
 * the copies still taking what it holds, then frees itself (gone). */
void room_relay_release(struct room_relay *r);
/* `copy` ended on the member's side (its stream reset or closed, its
 * session ending): the relay offers it nothing more. */
void room_relay_drop(struct room_relay *r, void *copy);
/* How many copies the relay still offers bytes to. */
size_t room_relay_copies(const struct room_relay *r);

/*
 * The rest of a room, on other daemons (cluster.c).  A set given remote
 * ops tells them what its local members do, and hears through the
 * room_remote_* calls what members elsewhere do: their datagrams, streams
 * and presence reach the local members as if from members of this room.
 * Without remote ops (no [cluster]) nothing of this runs.
 */
struct room_remote_ops {
    /* The room has its first local member (1), or lost its last (0: no
     * room_remote_* call for it from then on, until it is active again;
     * the room may live on while relays finish). */
    void (*active)(void *ctx, struct room *r, int active);
    /* A local member joined (1) or left (0). */
    void (*member)(void *ctx, struct room *r, int joined, uint64_t id);
    /* A local member's datagram. */
    void (*datagram)(void *ctx, struct room *r, uint64_t from,
                     const uint8_t *p, size_t n);
    /* Bytes [off, off + n) of a local member's stream `sid` (fin: its
     * end): 0, or -1 when they cannot go elsewhere (then no more calls
     * for that stream). */
    int (*chunk)(void *ctx, struct room *r, uint64_t from, uint64_t sid,
                 uint64_t off, const uint8_t *p, size_t n, int fin);
    /* A local member's stream `sid` was aborted. */
    void (*reset)(void *ctx, struct room *r, uint64_t from, uint64_t sid,
                  uint32_t code);
};

/* Rooms of rs have another side from now on; member ids start after
 * id_base (so that ids of different daemons differ). */
void room_set_remote(struct room_set *rs, const struct room_remote_ops *ops,
                     void *ctx, uint64_t id_base);
int room_set_has_remote(const struct room_set *rs);
/* The remote side's own pointer for a room (cluster.c's state). */
void *room_remote_data(const struct room *r);
void room_set_remote_data(struct room *r, void *data);
size_t room_name_len(const struct room *r);
/* Up to max ids of the local members, from the skip-th on; how many. */
size_t room_member_ids(const struct room *r, size_t skip, uint64_t *ids,
                       size_t max);
/* Members here and elsewhere (what presence counts). */
size_t room_total(const struct room *r);
/* From elsewhere, to every local member: a datagram of member `from`; a
 * member who joined (1) or left (0) elsewhere (the total changes). */
void room_remote_datagram(struct room *r, uint64_t from, const uint8_t *p,
                          size_t n);
void room_remote_presence(struct room *r, int joined, uint64_t who);
/* A stream of member `from` elsewhere, relayed to every local member as
 * room_relay_write() brings its bytes.  Nothing holds it back (no flow
 * control reaches the other daemon): it is paced by its fastest copy
 * until that one is `lag` bytes behind what arrived, then by the
 * arrivals, and a copy more than `lag` behind the pace is slow.  Ended by room_relay_write(fin) or
 * room_relay_abort(), then room_relay_release(). */
struct room_relay *room_remote_relay_open(struct room *r, uint64_t from,
                                          uint64_t lag);

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
