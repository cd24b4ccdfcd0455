/*
 * cluster: broadcast rooms shared by every daemon configured with the same
 * Redis ([cluster] redis).  What local members send is published on the
 * room's channel (cluster_msg.h); what other daemons publish there reaches
 * the local members through room.h's remote calls, as if sent by members
 * of this room.  Local members are still served directly (room.c).
 *
 * Two hiredis connections in our libev loop (hiredis's libev adapter;
 * never blocking): one publishes, one is subscribed (a subscribed Redis
 * connection can do nothing else).  A room's channel is subscribed while
 * this daemon has members in it.  Redis down: local rooms go on, the
 * daemon reconnects with backoff and subscribes again; the state is logged
 * once per change and shown in /metrics and /healthz.
 */
#ifndef WTRELAYD_CLUSTER_H
#define WTRELAYD_CLUSTER_H

#include <stddef.h>
#include <stdint.h>

#include <ev.h>

struct config;
struct room_set;

/* Stream codes a member's copy of another daemon's stream may be reset
 * with (README, broadcast): the sender's daemon went away (no heartbeat
 * for node_timeout) or its stream stopped arriving; the stream was cut on
 * the way (bytes missing: Redis was unreachable, or its daemon had more
 * than max_pending_bytes waiting for Redis). */
#define CLUSTER_CODE_GONE 0xe2
#define CLUSTER_CODE_CUT 0xe4

/* Connects as [cluster] says (nothing without it): 0, or -1 when out of
 * memory (Redis being unreachable is not an error: it is retried). */
int cluster_start(struct ev_loop *loop, struct config *cfg);
void cluster_stop(void);
/* A broadcast route's rooms are shared from now on (no-op without a
 * cluster, or when they already are).  `lag`: how far a member's copy of
 * another daemon's stream may fall behind; `after` runs after what
 * arrived from Redis was handed to the members (the handler's deferred
 * work: closing slow members). */
void cluster_attach(struct room_set *rs, const char *route_path, uint64_t lag,
                    void (*after)(void));
/* 1 when [cluster] is on and both Redis connections are up. */
int cluster_up(void);
int cluster_on(void);

#endif
