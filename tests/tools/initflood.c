/*
 * initflood: a bounded burst of QUIC client Initials that never go further
 * (tests/it/75-per-address.sh, 76-flood.sh, scripts/bench.sh).
 *
 *   initflood [--host 127.0.0.1] [--first 127.1.0.1] [--sources N]
 *             [--count N] [--rate R] [--linger S] [--wait] [--worker I] PORT
 *
 * Each Initial is a real one: a fresh connection (random DCID), a real TLS
 * ClientHello (ALPN h3), padded to 1200 bytes, exactly what a browser's
 * first packet looks like to the server.  All are made before the first
 * is sent (COUNT x 1.5 kB), so the sending itself is cheap.  They go round robin from N
 * source addresses (a socket bound to each of --first, --first + 1, ...:
 * all of 127.0.0.0/8 is local), paced at R a second, COUNT in all; then
 * what came back is counted for S seconds more.  Nothing is ever answered:
 * every connection the daemon makes for one is a half-open handshake.
 * --wait: once they are made, print "ready" on stderr and start sending
 * only when a line (or end of file) comes on stdin, so that a script can
 * start the flood at a moment of its choosing (scripts/flood-measure.sh:
 * while a session runs request/response).
 * --worker I: byte 1 of every Initial's 18-byte DCID is I, so that a
 * daemon with workers = N steers them all to its worker I (src/cid.h: the
 * steering program reads that byte of any 18-byte DCID); tests/it/82.
 *
 * One result line on stdout:
 *   sent N in T s (R/s) from K addresses; answers D datagrams, B bytes:
 *   retry X, handshake Y, small Z
 * "handshake": a datagram of 1000 bytes or more (the server's first
 * flight: it made a connection); "small": a short one (CONNECTION_REFUSED);
 * "retry": a Retry packet (address validation: no state).
 * Exit status 0, or 2 on a usage or set-up error.  Loopback only.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <ngtcp2/ngtcp2.h>
#include <ngtcp2/ngtcp2_crypto.h>
#include <ngtcp2/ngtcp2_crypto_gnutls.h>

#define MAX_SOURCES 4096
#define MAX_COUNT 100000 /* all made before the first is sent: 120 MB */

static const char tls_priority[] =
    "NORMAL:-VERS-ALL:+VERS-TLS1.3:-CIPHER-ALL:+AES-128-GCM:+AES-256-GCM:"
    "+CHACHA20-POLY1305:-GROUP-ALL:+GROUP-X25519:+GROUP-SECP256R1:"
    "%DISABLE_TLS13_COMPAT_MODE";

struct one {
    ngtcp2_conn *conn;
    gnutls_session_t tls;
    ngtcp2_crypto_conn_ref ref;
};

static gnutls_certificate_credentials_t cred;
static int steer_to = -1; /* --worker */

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static ngtcp2_tstamp now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (ngtcp2_tstamp)ts.tv_sec * NGTCP2_SECONDS + (ngtcp2_tstamp)ts.tv_nsec;
}

static ngtcp2_conn *get_conn(ngtcp2_crypto_conn_ref *ref)
{
    return ((struct one *)ref->user_data)->conn;
}

static void rand_cb(uint8_t *dest, size_t len, const ngtcp2_rand_ctx *ctx)
{
    (void)ctx;
    (void)gnutls_rnd(GNUTLS_RND_RANDOM, dest, len);
}

static int new_cid_cb(ngtcp2_conn *conn, ngtcp2_cid *cid, uint8_t *token,
                      size_t cidlen, void *ud)
{
    (void)conn;
    (void)ud;
    if (gnutls_rnd(GNUTLS_RND_RANDOM, cid->data, cidlen) != 0 ||
        gnutls_rnd(GNUTLS_RND_RANDOM, token, NGTCP2_STATELESS_RESET_TOKENLEN) != 0)
        return NGTCP2_ERR_CALLBACK_FAILURE;
    cid->datalen = cidlen;
    return 0;
}

/* One client Initial from local to remote into out: its length, or -1. */
static ssize_t make_initial(uint8_t *out, size_t cap,
                            const struct sockaddr_storage *local,
                            socklen_t locallen,
                            const struct sockaddr_storage *remote,
                            socklen_t remotelen)
{
    ngtcp2_callbacks cb = {
        .client_initial = ngtcp2_crypto_client_initial_cb,
        .recv_crypto_data = ngtcp2_crypto_recv_crypto_data_cb,
        .encrypt = ngtcp2_crypto_encrypt_cb,
        .decrypt = ngtcp2_crypto_decrypt_cb,
        .hp_mask = ngtcp2_crypto_hp_mask_cb,
        .recv_retry = ngtcp2_crypto_recv_retry_cb,
        .rand = rand_cb,
        .get_new_connection_id = new_cid_cb,
        .update_key = ngtcp2_crypto_update_key_cb,
        .delete_crypto_aead_ctx = ngtcp2_crypto_delete_crypto_aead_ctx_cb,
        .delete_crypto_cipher_ctx = ngtcp2_crypto_delete_crypto_cipher_ctx_cb,
        .get_path_challenge_data = ngtcp2_crypto_get_path_challenge_data_cb,
        .version_negotiation = ngtcp2_crypto_version_negotiation_cb,
    };
    static const char h3[] = "h3";
    gnutls_datum_t alpn = {(unsigned char *)(uintptr_t)h3, 2};
    struct one o = {0};
    ngtcp2_settings settings;
    ngtcp2_transport_params params;
    ngtcp2_cid dcid = {.datalen = 18}, scid = {.datalen = 16};
    ngtcp2_path path = {
        .local = {(struct sockaddr *)(uintptr_t)local, locallen},
        .remote = {(struct sockaddr *)(uintptr_t)remote, remotelen},
    };
    ngtcp2_ssize n = -1;

    if (gnutls_rnd(GNUTLS_RND_RANDOM, dcid.data, dcid.datalen) != 0 ||
        gnutls_rnd(GNUTLS_RND_RANDOM, scid.data, scid.datalen) != 0)
        return -1;
    if (steer_to >= 0)
        dcid.data[1] = (uint8_t)steer_to;
    o.ref.get_conn = get_conn;
    o.ref.user_data = &o;
    if (gnutls_init(&o.tls, GNUTLS_CLIENT | GNUTLS_ENABLE_EARLY_DATA |
                                GNUTLS_NO_END_OF_EARLY_DATA) != 0)
        return -1;
    if (ngtcp2_crypto_gnutls_configure_client_session(o.tls) != 0 ||
        gnutls_priority_set_direct(o.tls, tls_priority, NULL) != 0 ||
        gnutls_credentials_set(o.tls, GNUTLS_CRD_CERTIFICATE, cred) != 0)
        goto done;
    gnutls_session_set_ptr(o.tls, &o.ref);
    gnutls_alpn_set_protocols(o.tls, &alpn, 1, GNUTLS_ALPN_MANDATORY);
    gnutls_server_name_set(o.tls, GNUTLS_NAME_DNS, "localhost", 9);
    ngtcp2_settings_default(&settings);
    settings.initial_ts = now_ns();
    ngtcp2_transport_params_default(&params);
    params.initial_max_data = 1 << 20;
    params.initial_max_stream_data_bidi_local = 1 << 16;
    params.initial_max_streams_uni = 3;
    params.max_idle_timeout = 30 * NGTCP2_SECONDS;
    if (ngtcp2_conn_client_new(&o.conn, &dcid, &scid, &path,
                               NGTCP2_PROTO_VER_V1, &cb, &settings, &params,
                               NULL, &o) != 0)
        goto done;
    ngtcp2_conn_set_tls_native_handle(o.conn, o.tls);
    n = ngtcp2_conn_write_pkt(o.conn, NULL, NULL, out, cap, now_ns());
done:
    if (o.conn)
        ngtcp2_conn_del(o.conn);
    gnutls_deinit(o.tls);
    return n > 0 ? (ssize_t)n : -1;
}

struct tally {
    unsigned long datagrams, bytes, retry, handshake, small;
};

static void drain(struct pollfd *pfd, int n, int wait_ms, struct tally *t)
{
    uint8_t buf[2048];

    if (poll(pfd, (nfds_t)n, wait_ms) <= 0)
        return;
    for (int i = 0; i < n; i++) {
        if (!(pfd[i].revents & POLLIN))
            continue;
        for (int k = 0; k < 64; k++) {
            ssize_t got = recv(pfd[i].fd, buf, sizeof(buf), MSG_DONTWAIT);

            if (got <= 0)
                break;
            t->datagrams++;
            t->bytes += (unsigned long)got;
            if ((buf[0] & 0x80) && (buf[0] & 0x30) == 0x30)
                t->retry++;
            else if (got >= 1000)
                t->handshake++;
            else
                t->small++;
        }
    }
}

static int usage(void)
{
    fprintf(stderr, "usage: initflood [--host 127.0.0.1] [--first 127.1.0.1] "
                    "[--sources N] [--count N] [--rate R] [--linger S] [--wait] "
                    "[--worker I] PORT\n");
    return 2;
}

int main(int argc, char **argv)
{
    const char *host = "127.0.0.1", *first = "127.1.0.1";
    long sources = 1, count = 100, port = 0;
    double rate = 1000, linger = 0.5;
    int wait = 0;
    struct sockaddr_storage remote = {0}, *local;
    socklen_t remotelen = sizeof(struct sockaddr_in), *locallen;
    struct sockaddr_in *r4 = (struct sockaddr_in *)&remote;
    struct pollfd *pfd;
    struct in_addr base;
    struct rlimit rl;
    struct tally t = {0};
    uint8_t (*pkts)[1500];
    ssize_t *lens;
    double start, elapsed;
    long sent = 0, failed = 0;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

        if (strcmp(a, "--host") == 0 && v)
            host = argv[++i];
        else if (strcmp(a, "--first") == 0 && v)
            first = argv[++i];
        else if (strcmp(a, "--sources") == 0 && v)
            sources = atol(argv[++i]);
        else if (strcmp(a, "--count") == 0 && v)
            count = atol(argv[++i]);
        else if (strcmp(a, "--rate") == 0 && v)
            rate = atof(argv[++i]);
        else if (strcmp(a, "--linger") == 0 && v)
            linger = atof(argv[++i]);
        else if (strcmp(a, "--wait") == 0)
            wait = 1;
        else if (strcmp(a, "--worker") == 0 && v && atoi(v) >= 0 &&
                 atoi(v) < 64)
            steer_to = atoi(argv[++i]);
        else if (a[0] != '-' && !port)
            port = atol(a);
        else
            return usage();
    }
    if (port <= 0 || port > 65535 || sources < 1 || sources > MAX_SOURCES ||
        count < 1 || count > MAX_COUNT || rate <= 0 || linger < 0 ||
        linger > 30)
        return usage();
    r4->sin_family = AF_INET;
    r4->sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &r4->sin_addr) != 1 ||
        inet_pton(AF_INET, first, &base) != 1 ||
        (ntohl(r4->sin_addr.s_addr) >> 24) != 127 ||
        (ntohl(base.s_addr) >> 24) != 127 ||
        ((ntohl(base.s_addr) + (uint32_t)sources - 1) >> 24) != 127) {
        fprintf(stderr, "initflood: loopback (127.0.0.0/8) addresses only\n");
        return 2;
    }
    /* a socket per source address */
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)sources + 64) {
        rl.rlim_cur = rl.rlim_max < (rlim_t)sources + 64 ? rl.rlim_max
                                                         : (rlim_t)sources + 64;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (gnutls_certificate_allocate_credentials(&cred) != 0)
        return 2;
    pfd = calloc((size_t)sources, sizeof(*pfd));
    local = calloc((size_t)sources, sizeof(*local));
    locallen = calloc((size_t)sources, sizeof(*locallen));
    if (!pfd || !local || !locallen)
        return 2;
    for (long i = 0; i < sources; i++) {
        struct sockaddr_in a = {.sin_family = AF_INET};
        int sz = 1 << 20;

        a.sin_addr.s_addr = htonl(ntohl(base.s_addr) + (uint32_t)i);
        pfd[i].fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        pfd[i].events = POLLIN;
        if (pfd[i].fd < 0 || bind(pfd[i].fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
            fprintf(stderr, "initflood: source %ld: %s\n", i, strerror(errno));
            return 2;
        }
        setsockopt(pfd[i].fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
        locallen[i] = sizeof(local[i]);
        getsockname(pfd[i].fd, (struct sockaddr *)&local[i], &locallen[i]);
    }

    /* Every Initial is made first (a TLS ClientHello each, the costly
     * part), so that the paced sending below costs a sendto() each and
     * the sender takes as little CPU from the daemon as it can while the
     * flood runs (two cores, shared). */
    pkts = malloc((size_t)count * sizeof(*pkts));
    lens = malloc((size_t)count * sizeof(*lens));
    if (!pkts || !lens)
        return 2;
    for (long k = 0; k < count; k++) {
        long i = k % sources;

        lens[k] = make_initial(pkts[k], sizeof(pkts[k]), &local[i], locallen[i],
                               &remote, remotelen);
    }
    if (wait) {
        char line[16];

        fprintf(stderr, "ready\n");
        if (!fgets(line, sizeof(line), stdin) && ferror(stdin))
            return 2;
    }
    fprintf(stderr, "sending\n"); /* for scripts: the flood starts now */
    start = now_s();
    while (sent + failed < count) {
        /* paced: what is due by now goes, in bursts of at most 64 */
        long due = (long)((now_s() - start) * rate) + 1;

        for (int b = 0; b < 64 && sent + failed < count && sent + failed < due; b++) {
            long k = sent + failed, i = k % sources;

            if (lens[k] < 0 || sendto(pfd[i].fd, pkts[k], (size_t)lens[k], 0,
                                      (struct sockaddr *)&remote, remotelen) != lens[k])
                failed++;
            else
                sent++;
        }
        drain(pfd, (int)sources, 0, &t);
        if (sent + failed < due)
            continue;
        {
            struct timespec ts = {0, 500000};

            nanosleep(&ts, NULL);
        }
    }
    elapsed = now_s() - start;
    for (double end = now_s() + linger; now_s() < end;)
        drain(pfd, (int)sources, 10, &t);
    printf("sent %ld in %.2f s (%.0f/s) from %ld addresses; answers %lu "
           "datagrams, %lu bytes: retry %lu, handshake %lu, small %lu%s\n",
           sent, elapsed, elapsed > 0 ? (double)sent / elapsed : 0.0, sources,
           t.datagrams, t.bytes, t.retry, t.handshake, t.small,
           failed ? " (some not sent)" : "");
    for (long i = 0; i < sources; i++)
        close(pfd[i].fd);
    free(pfd);
    free(local);
    free(locallen);
    free(pkts);
    free(lens);
    gnutls_certificate_free_credentials(cred);
    return failed ? 1 : 0;
}
