/*
 * wt_fc: session-level flow control (draft-ietf-webtrans-http3-14..16 §5).
 * Owns the decision whether a session uses it, the flow-control capsules
 * (WT_MAX_DATA, WT_MAX_STREAMS_*, WT_DATA_BLOCKED, WT_STREAMS_BLOCKED_*)
 * both ways, the peer's credit counted on what it sends (exceeding it is
 * WT_FLOW_CONTROL_ERROR for its session alone) and ours on what we send
 * (streams and bytes wait for WT_MAX_* capsules).  Sessions and streams
 * call in here (wt_session.c, wt_stream.c); the state is struct wt_fc.
 */
#include <string.h>

#include "config.h"
#include "h3.h"
#include "log.h"
#include "quic.h"
#include "wire.h"
#include "wt.h"
#include "wt_internal.h"

/* Flow-control capsules queued and not yet sent past this many bytes: a
 * peer that does not read its CONNECT stream gets no more updates (it has
 * stalled itself); the next consume tries again. */
#define FC_CAPS_UNSENT_MAX 4096

void wt_fc_init(struct wt_session *s)
{
    struct quic_conn *qc = s->qc;
    const struct config *cfg = cfg_of(qc);
    struct wt_fc *f = &s->fc;
    uint64_t data, bidi, uni, v;
    int ours;

    memset(f, 0, sizeof(*f));
    if (s->draft != WT_DRAFT14 && s->draft != WT_DRAFT15)
        return; /* draft-02 and -07 have none: unchanged */
    /* what our SETTINGS said (h3_own_settings): a server always declares
     * it, a client when it speaks draft-14 or -15 */
    ours = qc->ep->role == QUIC_SERVER || cfg->client_draft == 14 ||
           cfg->client_draft == 15;
    if (!ours || !h3_peer_fc_intent(qc, s->draft == WT_DRAFT14))
        return;
    f->on = 1;
    config_wt_initial(cfg, &data, &bidi, &uni);
    f->rx_max_data = f->win_data = data;
    f->rx_max_streams[0] = f->win_streams[0] = uni;
    f->rx_max_streams[1] = f->win_streams[1] = bidi;
    /* §5.5: absent settings are 0: nothing until a WT_MAX_* capsule */
    if (h3_peer_setting(qc, WIRE_SETTING_WT_INITIAL_MAX_DATA, &v))
        f->tx_max_data = v;
    if (h3_peer_setting(qc, WIRE_SETTING_WT_INITIAL_MAX_STREAMS_UNI, &v))
        f->tx_max_streams[0] = v;
    if (h3_peer_setting(qc, WIRE_SETTING_WT_INITIAL_MAX_STREAMS_BIDI, &v))
        f->tx_max_streams[1] = v;
}

static void send_varint_capsule(struct wt_session *s, uint64_t type,
                                uint64_t v)
{
    uint8_t cap[24];
    ssize_t n = wire_varint_capsule_encode(cap, sizeof(cap), type, v);

    if (n > 0)
        wt_session_queue_capsule(s, cap, (size_t)n);
}

/* A capsule for our side may go now: the CONNECT stream is open and its
 * unsent capsules are few. */
static int can_send(const struct wt_session *s)
{
    return s->open && s->req && !s->caps_fin &&
           buf_unsent(&s->caps) <= FC_CAPS_UNSENT_MAX;
}

/* Gives the peer credit again as the handler consumes and streams end
 * (§5.6: not waiting for a BLOCKED capsule): bytes once half the window is
 * used, streams once half the stream window has ended. */
static void replenish(struct wt_session *s)
{
    struct wt_fc *f = &s->fc;

    if (!f->on || !can_send(s))
        return;
    if (f->rx_max_data - f->rx_consumed <= f->win_data / 2) {
        f->rx_max_data = f->rx_consumed + f->win_data;
        send_varint_capsule(s, WIRE_CAPSULE_WT_MAX_DATA, f->rx_max_data);
        f->updates_sent++;
    }
    for (int b = 0; b < 2; b++) {
        uint64_t target = f->rx_done[b] + f->win_streams[b];
        uint64_t step = f->win_streams[b] / 2 ? f->win_streams[b] / 2 : 1;

        if (target >= f->rx_max_streams[b] + step &&
            target <= WIRE_WT_MAX_STREAMS_LIMIT) {
            f->rx_max_streams[b] = target;
            send_varint_capsule(s,
                                b ? WIRE_CAPSULE_WT_MAX_STREAMS_BIDI
                                  : WIRE_CAPSULE_WT_MAX_STREAMS_UNI,
                                target);
            f->updates_sent++;
        }
    }
}

/* §5.6: the peer went past what we allowed: its session ends with
 * WT_FLOW_CONTROL_ERROR, the others on the connection carry on. */
static void violation(struct wt_session *s, const char *why)
{
    SLOG(info, s, "flow control: %s: WT_FLOW_CONTROL_ERROR", why);
    wt_session_abort(s, WIRE_WT_FLOW_CONTROL_ERROR, why);
}

/* The streams of the session that waited for WT_MAX_DATA may send. */
static void wake_senders(struct wt_session *s)
{
    struct wt_stream *st;

    /* each wake takes the stream off the list (wq_push never puts it back) */
    while ((st = LIST_FIRST(&s->fc_waiters)))
        wt_stream_fc_wake(st);
}

int wt_fc_is_capsule(uint64_t type)
{
    return type >= WIRE_CAPSULE_WT_MAX_DATA &&
           type <= WIRE_CAPSULE_WT_STREAMS_BLOCKED_UNI;
}

void wt_fc_capsule(struct wt_session *s, uint64_t type, const uint8_t *val,
                   size_t len)
{
    struct wt_fc *f = &s->fc;
    uint64_t v;
    int b;

    if (s->draft != WT_DRAFT14 && s->draft != WT_DRAFT15)
        return; /* not capsules of these drafts: skipped as unknown */
    /* §5.4: the HTTP/2 per-stream capsules are a session error */
    if (type == WIRE_CAPSULE_WT_MAX_STREAM_DATA ||
        type == WIRE_CAPSULE_WT_STREAM_DATA_BLOCKED) {
        violation(s, "WT_MAX_STREAM_DATA or WT_STREAM_DATA_BLOCKED");
        return;
    }
    /* §5.1: without flow control they are ignored (the peer may have sent
     * them before it saw our SETTINGS) */
    if (!f->on)
        return;
    if (wire_varint_capsule_decode(val, len, &v) != 0) {
        wt_session_abort(s, WIRE_H3_MESSAGE_ERROR,
                         "malformed flow-control capsule");
        return;
    }
    switch (type) {
    case WIRE_CAPSULE_WT_MAX_DATA:
        /* §5.6.4 (draft-16): a value that does not increase the limit */
        if (v <= f->tx_max_data) {
            violation(s, "WT_MAX_DATA does not increase the limit");
            return;
        }
        f->tx_max_data = v;
        wake_senders(s);
        break;
    case WIRE_CAPSULE_WT_MAX_STREAMS_BIDI:
    case WIRE_CAPSULE_WT_MAX_STREAMS_UNI:
        b = type == WIRE_CAPSULE_WT_MAX_STREAMS_BIDI;
        if (v > WIRE_WT_MAX_STREAMS_LIMIT) {
            violation(s, "WT_MAX_STREAMS above 2^60");
            return;
        }
        if (v <= f->tx_max_streams[b]) {
            violation(s, "WT_MAX_STREAMS does not increase the limit");
            return;
        }
        f->tx_max_streams[b] = v;
        wt_session_slot_freed(s); /* session_streams_available */
        break;
    case WIRE_CAPSULE_WT_STREAMS_BLOCKED_BIDI:
    case WIRE_CAPSULE_WT_STREAMS_BLOCKED_UNI:
        if (v > WIRE_WT_MAX_STREAMS_LIMIT) {
            violation(s, "WT_STREAMS_BLOCKED above 2^60");
            return;
        }
        /* fall through */
    case WIRE_CAPSULE_WT_DATA_BLOCKED:
        /* input for tuning only (§5.6.3, §5.6.5): credit already goes
         * back as the handler consumes */
        SLOG(debug, s, "peer blocked (capsule 0x%llx at %llu)",
             (unsigned long long)type, (unsigned long long)v);
        break;
    default:
        break; /* reserved values in the range: skipped */
    }
}

int wt_fc_rx_stream(struct wt_session *s, struct wt_stream *st)
{
    struct wt_fc *f = &s->fc;
    int b = st->bidi;

    if (!f->on || st->fc_counted)
        return 0;
    st->fc_counted = 1;
    f->rx_streams[b]++;
    /* §5.6.2: a stream past the cumulative limit */
    if (f->rx_streams[b] > f->rx_max_streams[b]) {
        violation(s, b ? "more bidi streams than WT_MAX_STREAMS allows"
                       : "more uni streams than WT_MAX_STREAMS allows");
        return -1;
    }
    return 0;
}

int wt_fc_rx_data(struct wt_session *s, uint64_t n, int consumed)
{
    struct wt_fc *f = &s->fc;

    if (!f->on || !s->open)
        return 0;
    f->rx_data += n;
    if (consumed)
        f->rx_consumed += n;
    /* §5.6.4: more stream body than WT_MAX_DATA allows */
    if (f->rx_data > f->rx_max_data) {
        violation(s, "more data than WT_MAX_DATA allows");
        return -1;
    }
    if (consumed)
        replenish(s);
    return 0;
}

void wt_fc_consumed(struct wt_session *s, uint64_t n)
{
    struct wt_fc *f = &s->fc;

    if (!f->on || !s->open || n == 0)
        return;
    f->rx_consumed += n;
    if (f->rx_consumed > f->rx_data)
        f->rx_consumed = f->rx_data; /* never credit what did not come */
    replenish(s);
}

void wt_fc_stream_done(struct wt_session *s, struct wt_stream *st)
{
    if (!s->fc.on || !st->fc_counted || st->fc_done)
        return;
    st->fc_done = 1;
    s->fc.rx_done[st->bidi]++;
    replenish(s);
}

int wt_fc_may_open(struct wt_session *s, int bidi)
{
    struct wt_fc *f = &s->fc;
    int b = bidi ? 1 : 0;

    if (!f->on || f->tx_streams[b] < f->tx_max_streams[b])
        return 1;
    /* §5.6.3: say so, once per limit */
    if (f->tx_sblocked_at[b] != f->tx_max_streams[b] + 1 && can_send(s)) {
        f->tx_sblocked_at[b] = f->tx_max_streams[b] + 1;
        send_varint_capsule(s,
                            b ? WIRE_CAPSULE_WT_STREAMS_BLOCKED_BIDI
                              : WIRE_CAPSULE_WT_STREAMS_BLOCKED_UNI,
                            f->tx_max_streams[b]);
        f->blocked_sent++;
    }
    return 0;
}

void wt_fc_opened(struct wt_session *s, int bidi)
{
    if (s->fc.on)
        s->fc.tx_streams[bidi ? 1 : 0]++;
}

uint64_t wt_fc_tx_credit(struct wt_session *s)
{
    struct wt_fc *f = &s->fc;

    if (!f->on)
        return UINT64_MAX;
    if (f->tx_data < f->tx_max_data)
        return f->tx_max_data - f->tx_data;
    /* §5.6.5: say so, once per limit */
    if (f->tx_blocked_at != f->tx_max_data + 1 && can_send(s)) {
        f->tx_blocked_at = f->tx_max_data + 1;
        send_varint_capsule(s, WIRE_CAPSULE_WT_DATA_BLOCKED, f->tx_max_data);
        f->blocked_sent++;
    }
    return 0;
}

void wt_fc_sent(struct wt_session *s, uint64_t n)
{
    if (s->fc.on)
        s->fc.tx_data += n;
}
