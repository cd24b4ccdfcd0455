/*
 * A session's capsule handling (src/wt_session.c wt_on_capsule_data and
 * what it acts on: CLOSE_WEBTRANSPORT_SESSION, DRAIN, DATAGRAM capsules,
 * the flow-control capsules of wt_fc.c, unknown types skipped, the value
 * size limits), driven without sockets: one server session on a
 * connection with no ngtcp2 connection behind it.  The few calls that
 * would reach ngtcp2 or the write loop are wrapped at link time
 * (Makefile: FUZZ_LDFLAGS_session) and only recorded.
 *
 * Input: a flags byte (the draft; flow control on; the peer's initial
 * limits), one byte k and k piece sizes, then the CONNECT stream's data;
 * the stream then ends (FIN) or not.
 *
 * Properties: whatever the pieces, the session ends the same way (by the
 * peer's CLOSE with the same code and reason, or aborted with the same
 * HTTP/3 code, or not at all), the handler gets the same datagrams, the
 * same DRAIN and flow-control limits are taken; a session never hears
 * anything after it has ended; nothing of a capsule's value is kept past
 * its capsule; ASan watches the value buffer each capsule gets.
 */
#include <ev.h>
#include <ngtcp2/ngtcp2.h>

#include "fuzz.h"
#include "handler.h"
#include "quic.h"
#include "wt_internal.h"

/* ---- what would reach ngtcp2 or the write loop: recorded ---- */
static uint64_t shut_code;
static int shut_calls;

int __wrap_ngtcp2_conn_shutdown_stream(ngtcp2_conn *conn, uint32_t flags,
                                       int64_t stream_id, uint64_t app_error_code);
int __wrap_ngtcp2_conn_shutdown_stream(ngtcp2_conn *conn, uint32_t flags,
                                       int64_t stream_id, uint64_t app_error_code)
{
    shut_calls++;
    shut_code = app_error_code;
    return 0;
}
int __wrap_ngtcp2_conn_extend_max_offset(ngtcp2_conn *conn, uint64_t datalen);
int __wrap_ngtcp2_conn_extend_max_offset(ngtcp2_conn *conn, uint64_t datalen)
{
    return 0;
}
int __wrap_ngtcp2_conn_set_stream_user_data(ngtcp2_conn *conn,
                                            int64_t stream_id, void *data);
int __wrap_ngtcp2_conn_set_stream_user_data(ngtcp2_conn *conn,
                                            int64_t stream_id, void *data)
{
    return 0;
}
void __wrap_quic_conn_want_write(struct quic_conn *qc);
void __wrap_quic_conn_want_write(struct quic_conn *qc)
{
}
void __wrap_h3_resume(struct quic_conn *qc, int64_t stream_id);
void __wrap_h3_resume(struct quic_conn *qc, int64_t stream_id)
{
}

/* ---- the handler: what it hears ---- */
struct outcome {
    int closed, close_calls, aborted, draining, shut_calls;
    uint32_t code;
    uint64_t reason_hash, shut_code;
    uint64_t dgrams, dgram_hash, dropped;
    uint64_t tx_max_data, tx_max_streams[2];
};
static struct outcome *cur;

static uint64_t fnv(uint64_t h, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3ULL;
    return h;
}

static void on_close(struct wt_session *s, uint32_t code, const char *reason,
                     size_t reasonlen)
{
    FUZZ_CHECK(cur->close_calls == 0); /* told once */
    cur->close_calls++;
    cur->code = code;
    cur->reason_hash = fnv(0xcbf29ce484222325ULL, (const uint8_t *)reason,
                           reasonlen);
}

static void on_datagram(struct wt_session *s, const uint8_t *p, size_t n)
{
    FUZZ_CHECK(s->open && cur->close_calls == 0); /* never after the end */
    FUZZ_CHECK(n <= WT_DGRAM_CAPSULE_MAX);
    cur->dgrams++;
    cur->dgram_hash = fnv(cur->dgram_hash ^ n, p, n);
}

static const struct wt_handler_ops fuzz_ops = {
    .name = "fuzz",
    .session_close = on_close,
    .datagram = on_datagram,
};

/* ---- one connection, one session ---- */
static struct quic_endpoint ep;
static struct config cfg;
static struct quic_conn qc;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    config_defaults(&cfg);
    ep.role = QUIC_SERVER;
    ep.loop = ev_loop_new(EVFLAG_AUTO);
    if (!ep.loop)
        abort();
    log_level = LOG_LVL_ERROR;
    return 0;
}

static void run(uint8_t flags, const uint8_t *p, size_t n, const uint8_t *sz,
                size_t nsz, int fin, struct outcome *o)
{
    static const enum wt_draft drafts[4] = {WT_DRAFT02, WT_DRAFT07,
                                            WT_DRAFT14, WT_DRAFT15};
    struct wt_session *s;
    size_t off = 0, k = 0;
    int allzero = 1;

    memset(o, 0, sizeof(*o));
    cur = o;
    shut_calls = 0;
    shut_code = 0;
    memset(&qc, 0, sizeof(qc));
    qc.ep = &ep;
    qc.cfg = &cfg;
    snprintf(qc.peer, sizeof(qc.peer), "fuzz");
    wt_conn_init(&qc);
    if (!(s = calloc(1, sizeof(*s))))
        abort();
    s->qc = &qc;
    s->id = 0;
    s->draft = drafts[flags & 3];
    s->open = 1;
    s->ops = &fuzz_ops;
    buf_init(&s->caps);
    LIST_INIT(&s->streams);
    ev_init(&s->expire, NULL);
    /* flow control as wt_fc_init leaves it when both sides declared it */
    if ((flags & 4) && (s->draft == WT_DRAFT14 || s->draft == WT_DRAFT15)) {
        s->fc.on = 1;
        s->fc.tx_max_data = flags & 8 ? 65536 : 0;
        s->fc.tx_max_streams[0] = s->fc.tx_max_streams[1] = flags & 16 ? 4 : 0;
        s->fc.rx_max_data = s->fc.win_data = 1 << 20;
        s->fc.rx_max_streams[0] = s->fc.win_streams[0] = 128;
        s->fc.rx_max_streams[1] = s->fc.win_streams[1] = 128;
    }
    LIST_INSERT_HEAD(&qc.wt.sessions, s, link);
    qc.wt.nopen = 1;

    for (size_t i = 0; i < nsz; i++)
        allzero &= sz[i] == 0;
    while (off < n) {
        size_t piece = !nsz ? n : allzero ? 1 : sz[k++ % nsz];

        if (piece > n - off)
            piece = n - off;
        FUZZ_CHECK(wt_on_capsule_data(s, p + off, piece) == 0);
        off += piece;
        /* a value is kept only while its capsule is being read */
        if (!s->crd.in)
            FUZZ_CHECK(s->cval == NULL);
        if (s->cdead)
            FUZZ_CHECK(!s->open && s->cval == NULL);
    }
    if (fin)
        wt_on_connect_fin(s);
    o->closed = !s->open;
    o->aborted = s->aborted;
    o->draining = s->draining;
    o->shut_calls = shut_calls;
    o->shut_code = shut_code;
    o->dropped = s->dgram_capsules_dropped;
    o->tx_max_data = s->fc.tx_max_data;
    o->tx_max_streams[0] = s->fc.tx_max_streams[0];
    o->tx_max_streams[1] = s->fc.tx_max_streams[1];
    FUZZ_CHECK(!s->aborted || s->open == 0);
    FUZZ_CHECK(shut_calls <= 1); /* the CONNECT stream is reset once */
    wt_conn_free(&qc); /* frees the session, its buffers, its capsules */
    cur = NULL;
}

static struct outcome whole, split;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_in in = {data, size};
    uint8_t flags = fuzz_u8(&in);
    size_t nsz = fuzz_u8(&in) % 16;
    const uint8_t *sz = in.p;
    int fin = (flags >> 5) & 1;

    if (in.n < nsz || in.n - nsz > 256 * 1024)
        return 0;
    in.p += nsz;
    in.n -= nsz;
    run(flags, in.p, in.n, NULL, 0, fin, &whole);
    run(flags, in.p, in.n, sz, nsz, fin, &split);
    FUZZ_CHECK(memcmp(&whole, &split, sizeof(whole)) == 0);
    return 0;
}
