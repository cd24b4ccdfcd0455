/* tls: see tls.h. */
#include "tls.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <ngtcp2/ngtcp2_crypto_gnutls.h>

#include "log.h"

struct tls_ctx {
    /* A GnuTLS session points at these credentials without owning them:
     * each connection holds a reference for as long as it may have a
     * session, so a reload's new context never frees them under it. */
    unsigned refs;
    gnutls_certificate_credentials_t cred;
    /* parsed once: gnutls_priority_set_direct costs ~8 KiB per session */
    gnutls_priority_t prio;
    int client;
    char sha256[65];             /* server: our certificate's hash */
    int64_t not_after;           /* server: the leaf's validity */
    int hashable;                /* see tls_ctx_cert_hashable() */
    uint8_t want_hash[32];       /* client: --cert-hash */
    int has_hash, insecure;
    uint8_t secret[32];          /* server: see tls_ctx_secret() */
    /* server: the master key of session tickets (see derive_secret) */
    uint8_t ticket_key[64];
    /* client, with resume: the newest session (a ticket and what goes
     * with it), given to every new connection's session */
    int resume;
    gnutls_datum_t ticket;
};

static const char alpn_h3[] = "h3";

/* QUIC is TLS 1.3 only; the middlebox compatibility mode is meaningless
 * over QUIC (RFC 9001 §8.4). */
static const char priority[] =
    "%DISABLE_TLS13_COMPAT_MODE:NORMAL:-VERS-ALL:+VERS-TLS1.3";

/* The most a certificate taken by hash may be valid for. */
#define HASH_MAX_VALIDITY (14 * 24 * 3600)

/* What browsers require of a certificate they accept by its hash. */
static int cert_hashable(gnutls_x509_crt_t crt)
{
    gnutls_ecc_curve_t curve;
    gnutls_datum_t x = {0}, y = {0};
    time_t from = gnutls_x509_crt_get_activation_time(crt);
    time_t until = gnutls_x509_crt_get_expiration_time(crt);
    int ok;

    if (gnutls_x509_crt_get_pk_algorithm(crt, NULL) != GNUTLS_PK_ECDSA ||
        gnutls_x509_crt_get_pk_ecc_raw(crt, &curve, &x, &y) < 0)
        return 0;
    ok = curve == GNUTLS_ECC_CURVE_SECP256R1 && from != (time_t)-1 &&
         until != (time_t)-1 && until >= from &&
         until - from <= HASH_MAX_VALIDITY;
    gnutls_free(x.data);
    gnutls_free(y.data);
    return ok;
}

static int cert_hash(struct tls_ctx *ctx, const char *cert, char *err,
                     size_t errlen)
{
    gnutls_datum_t pem = {0}, der = {0};
    gnutls_x509_crt_t crt = NULL;
    uint8_t md[32];
    int rv;

    if ((rv = gnutls_load_file(cert, &pem)) < 0 ||
        (rv = gnutls_x509_crt_init(&crt)) < 0 ||
        (rv = gnutls_x509_crt_import(crt, &pem, GNUTLS_X509_FMT_PEM)) < 0 ||
        (rv = gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_DER, &der)) < 0 ||
        (rv = gnutls_hash_fast(GNUTLS_DIG_SHA256, der.data, der.size, md)) <
            0) {
        snprintf(err, errlen, "%s: %s", cert, gnutls_strerror(rv));
        goto done;
    }
    for (int i = 0; i < 32; i++)
        snprintf(ctx->sha256 + 2 * i, 3, "%02x", md[i]);
    ctx->not_after = (int64_t)gnutls_x509_crt_get_expiration_time(crt);
    ctx->hashable = cert_hashable(crt);
done:
    gnutls_free(pem.data);
    gnutls_free(der.data);
    if (crt)
        gnutls_x509_crt_deinit(crt);
    return rv < 0 ? -1 : 0;
}

/* What both roles start from: credentials and the parsed priorities. */
static struct tls_ctx *ctx_alloc(char *err, size_t errlen)
{
    struct tls_ctx *ctx = calloc(1, sizeof(*ctx));
    int rv;

    if (!ctx) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    ctx->refs = 1;
    if ((rv = gnutls_certificate_allocate_credentials(&ctx->cred)) < 0 ||
        (rv = gnutls_priority_init(&ctx->prio, priority, NULL)) < 0) {
        snprintf(err, errlen, "gnutls: %s", gnutls_strerror(rv));
        tls_ctx_free(ctx);
        return NULL;
    }
    return ctx;
}

/*
 * Stateless reset tokens must be the same in the process that handed out a
 * connection ID and in the one that answers for it after a restart, or a
 * client of a restarted daemon waits out its idle timeout instead of
 * learning at once that its connection is gone.  A secret only this server
 * knows and that survives restarts is already here: the private key.  A MAC
 * keyed with the key file and a fixed label keeps the two uses apart; a new
 * key simply starts a new series of tokens.
 */
/*
 * The session ticket key (TLS 1.3 resumption) comes from the same place,
 * under its own label: every process that loads the key issues and
 * accepts the same tickets, also after a restart.  It is the master key
 * of GnuTLS's rotation (gnutls_session_ticket_enable_server): the key that
 * encrypts tickets is derived from it and the time, and changes every
 * 3 x the ticket lifetime (6 h by default: 18 h), at the same instant in
 * every process (it counts from the Unix epoch).
 */
static int derive_secret(struct tls_ctx *ctx, const char *key, char *err,
                         size_t errlen)
{
    static const char label[] = "wtrelayd stateless reset secret v1";
    static const char tlabel[] = "wtrelayd session ticket key v1";
    gnutls_datum_t d = {NULL, 0};
    int rv;

    if ((rv = gnutls_load_file(key, &d)) < 0 ||
        (rv = gnutls_hmac_fast(GNUTLS_MAC_SHA256, d.data, d.size, label,
                               sizeof(label) - 1, ctx->secret)) < 0 ||
        (rv = gnutls_hmac_fast(GNUTLS_MAC_SHA512, d.data, d.size, tlabel,
                               sizeof(tlabel) - 1, ctx->ticket_key)) < 0) {
        snprintf(err, errlen, "%s: %s", key, gnutls_strerror(rv));
        rv = -1;
    }
    if (d.data) {
        gnutls_memset(d.data, 0, d.size);
        gnutls_free(d.data);
    }
    return rv < 0 ? -1 : 0;
}

/*
 * Every certificate of the chain file parses.  Checked apart, before the
 * credentials load it: GnuTLS 3.7 leaks what it had parsed when a PEM
 * block of the file is not base64 (seen under LeakSanitizer), and a
 * reload with a broken file must cost nothing.
 */
static int chain_check(const char *cert, char *err, size_t errlen)
{
    gnutls_datum_t pem = {0};
    gnutls_x509_crt_t *crts = NULL;
    unsigned n = 0;
    int rv;

    if ((rv = gnutls_load_file(cert, &pem)) >= 0)
        rv = gnutls_x509_crt_list_import2(&crts, &n, &pem, GNUTLS_X509_FMT_PEM,
                                          0);
    if (rv < 0)
        snprintf(err, errlen, "%s: %s", cert, gnutls_strerror(rv));
    for (unsigned i = 0; i < n; i++)
        gnutls_x509_crt_deinit(crts[i]);
    gnutls_free(crts);
    gnutls_free(pem.data);
    return rv < 0 ? -1 : 0;
}

struct tls_ctx *tls_ctx_new(const char *cert, const char *key, char *err,
                            size_t errlen)
{
    struct tls_ctx *ctx = ctx_alloc(err, errlen);
    int rv;

    if (!ctx)
        return NULL;
    if (chain_check(cert, err, errlen) < 0)
        goto fail;
    rv = gnutls_certificate_set_x509_key_file(ctx->cred, cert, key,
                                              GNUTLS_X509_FMT_PEM);
    if (rv < 0) {
        snprintf(err, errlen, "%s / %s: %s", cert, key, gnutls_strerror(rv));
        goto fail;
    }
    if (cert_hash(ctx, cert, err, errlen) < 0 ||
        derive_secret(ctx, key, err, errlen) < 0)
        goto fail;
    return ctx;

fail:
    tls_ctx_free(ctx);
    return NULL;
}

struct tls_ctx *tls_ctx_ref(struct tls_ctx *ctx)
{
    ctx->refs++;
    return ctx;
}

void tls_ctx_free(struct tls_ctx *ctx)
{
    if (!ctx || --ctx->refs)
        return;
    if (ctx->cred)
        gnutls_certificate_free_credentials(ctx->cred);
    if (ctx->prio)
        gnutls_priority_deinit(ctx->prio);
    gnutls_memset(ctx->secret, 0, sizeof(ctx->secret));
    gnutls_memset(ctx->ticket_key, 0, sizeof(ctx->ticket_key));
    if (ctx->ticket.data) {
        gnutls_memset(ctx->ticket.data, 0, ctx->ticket.size);
        gnutls_free(ctx->ticket.data);
    }
    free(ctx);
}

const char *tls_ctx_cert_sha256(const struct tls_ctx *ctx)
{
    return ctx->sha256;
}

int64_t tls_ctx_cert_not_after(const struct tls_ctx *ctx)
{
    return ctx->not_after;
}

int tls_ctx_cert_hashable(const struct tls_ctx *ctx)
{
    return ctx->hashable;
}

const uint8_t *tls_ctx_secret(const struct tls_ctx *ctx)
{
    return ctx->secret;
}

struct tls_ctx *tls_client_ctx_new(const struct tls_client_opts *o, char *err,
                                   size_t errlen)
{
    struct tls_ctx *ctx = ctx_alloc(err, errlen);
    int rv;

    if (!ctx)
        return NULL;
    ctx->client = 1;
    ctx->insecure = o->insecure;
    ctx->resume = o->resume;
    if (o->cert_hash) {
        memcpy(ctx->want_hash, o->cert_hash, sizeof(ctx->want_hash));
        ctx->has_hash = 1;
    }
    if (o->cafile)
        rv = gnutls_certificate_set_x509_trust_file(ctx->cred, o->cafile,
                                                    GNUTLS_X509_FMT_PEM);
    else if (!o->cert_hash && !o->insecure)
        rv = gnutls_certificate_set_x509_system_trust(ctx->cred);
    else
        rv = 0;
    if (rv < 0) {
        snprintf(err, errlen, "%s: %s", o->cafile ? o->cafile : "system trust",
                 gnutls_strerror(rv));
        goto fail;
    }
    if (o->cafile && rv == 0) {
        snprintf(err, errlen, "%s: no certificates", o->cafile);
        goto fail;
    }
    return ctx;

fail:
    tls_ctx_free(ctx);
    return NULL;
}

int tls_cert_hash_parse(const char *hex, uint8_t out[32])
{
    size_t j = 0;

    for (; *hex; hex++) {
        int v;

        if (*hex == ':')
            continue;
        if (*hex >= '0' && *hex <= '9')
            v = *hex - '0';
        else if (*hex >= 'a' && *hex <= 'f')
            v = *hex - 'a' + 10;
        else if (*hex >= 'A' && *hex <= 'F')
            v = *hex - 'A' + 10;
        else
            return -1;
        if (j == 64)
            return -1;
        if (j % 2 == 0)
            out[j / 2] = (uint8_t)(v << 4);
        else
            out[j / 2] |= (uint8_t)v;
        j++;
    }
    return j == 64 ? 0 : -1;
}

/* ---- resumption, client side ---- */

/* The newest session replaces the one kept: the server sends a ticket
 * after every handshake, resumed ones too.  The context is found through
 * the session's db pointer, which only a server's session cache uses. */
static int ticket_cb(gnutls_session_t s, unsigned htype, unsigned when,
                     unsigned incoming, const gnutls_datum_t *msg)
{
    struct tls_ctx *ctx = gnutls_db_get_ptr(s);
    gnutls_datum_t d = {NULL, 0};

    (void)htype;
    (void)when;
    (void)msg;
    if (!incoming || !ctx || gnutls_session_get_data2(s, &d) < 0)
        return 0;
    if (ctx->ticket.data) {
        gnutls_memset(ctx->ticket.data, 0, ctx->ticket.size);
        gnutls_free(ctx->ticket.data);
    }
    ctx->ticket = d;
    return 0;
}

int tls_ctx_has_ticket(const struct tls_ctx *ctx)
{
    return ctx->ticket.size > 0;
}

int tls_ctx_ticket_load(struct tls_ctx *ctx, const char *path)
{
    gnutls_datum_t d = {NULL, 0};

    /* what a hostile file can do: be large (refused here) or garbage
     * (GnuTLS refuses it in tls_session_new: a full handshake) */
    if (gnutls_load_file(path, &d) < 0)
        return -1;
    if (d.size == 0 || d.size > TLS_TICKET_MAX) {
        gnutls_free(d.data);
        return -1;
    }
    if (ctx->ticket.data)
        gnutls_free(ctx->ticket.data);
    ctx->ticket = d;
    return 0;
}

int tls_ctx_ticket_save(const struct tls_ctx *ctx, const char *path)
{
    FILE *f;
    int fd, rv = 0;

    if (!ctx->ticket.size)
        return -1;
    /* the session's secrets: readable by its owner only */
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || !(f = fdopen(fd, "wb"))) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    if (fwrite(ctx->ticket.data, 1, ctx->ticket.size, f) != ctx->ticket.size)
        rv = -1;
    if (fclose(f) != 0)
        rv = -1;
    return rv;
}

/* RFC 9114 §3.1: refuse a client that did not offer h3. */
static int client_hello_cb(gnutls_session_t s, unsigned htype, unsigned when,
                           unsigned incoming, const gnutls_datum_t *msg)
{
    gnutls_datum_t alpn;

    (void)htype;
    (void)when;
    (void)incoming;
    (void)msg;
    if (gnutls_alpn_get_selected_protocol(s, &alpn) != 0)
        return -1;
    if (alpn.size != sizeof(alpn_h3) - 1 ||
        memcmp(alpn.data, alpn_h3, alpn.size) != 0)
        return -1;
    return 0;
}

void *tls_session_new(struct tls_ctx *ctx, ngtcp2_crypto_conn_ref *ref,
                      const char *sni)
{
    gnutls_session_t s;
    gnutls_datum_t alpn = {.data = (unsigned char *)alpn_h3,
                           .size = sizeof(alpn_h3) - 1};
    unsigned flags = GNUTLS_NO_END_OF_EARLY_DATA;

    flags |= ctx->client ? GNUTLS_CLIENT
                         : GNUTLS_SERVER | GNUTLS_NO_AUTO_SEND_TICKET;
    if (gnutls_init(&s, flags) != 0)
        return NULL;
    if (gnutls_priority_set(s, ctx->prio) != 0)
        goto fail;
    if (ctx->client) {
        if (ngtcp2_crypto_gnutls_configure_client_session(s) != 0)
            goto fail;
        if (ctx->resume) {
            gnutls_db_set_ptr(s, ctx);
            gnutls_handshake_set_hook_function(
                s, GNUTLS_HANDSHAKE_NEW_SESSION_TICKET, GNUTLS_HOOK_POST,
                ticket_cb);
            /* a ticket GnuTLS does not take (garbage, another server's
             * format) just means a full handshake */
            if (ctx->ticket.size &&
                gnutls_session_set_data(s, ctx->ticket.data,
                                        ctx->ticket.size) != 0)
                log_debug("%s", "TLS: the kept session was refused: a full "
                                "handshake");
        }
        /* no SNI for IP literals (RFC 6066 §3) */
        if (sni && !strchr(sni, ':') && strspn(sni, "0123456789.") != strlen(sni) &&
            gnutls_server_name_set(s, GNUTLS_NAME_DNS, sni, strlen(sni)) != 0)
            goto fail;
    } else {
        gnutls_handshake_set_hook_function(s, GNUTLS_HANDSHAKE_CLIENT_HELLO,
                                           GNUTLS_HOOK_POST, client_hello_cb);
        if (ngtcp2_crypto_gnutls_configure_server_session(s) != 0)
            goto fail;
        /* GnuTLS takes the key as the master of its own rotation; the
         * datum is copied */
        if (gnutls_session_ticket_enable_server(
                s, &(gnutls_datum_t){ctx->ticket_key,
                                     sizeof(ctx->ticket_key)}) != 0)
            goto fail;
    }
    gnutls_session_set_ptr(s, ref);
    if (gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, ctx->cred) != 0)
        goto fail;
    if (gnutls_alpn_set_protocols(s, &alpn, 1,
                                  GNUTLS_ALPN_MANDATORY |
                                      (ctx->client
                                           ? 0
                                           : GNUTLS_ALPN_SERVER_PRECEDENCE)) !=
        0)
        goto fail;
    return s;

fail:
    gnutls_deinit(s);
    return NULL;
}

int tls_session_send_ticket(void *session)
{
    /* one ticket: a browser resumes with it; the next handshake, resumed
     * or not, brings another (GNUTLS_NO_AUTO_SEND_TICKET: QUIC sends it
     * after the handshake, RFC 9001 §4.6.1) */
    return gnutls_session_ticket_send(session, 1, 0) == 0 ? 0 : -1;
}

int tls_session_resumed(void *session)
{
    return gnutls_session_is_resumed(session) != 0;
}

int tls_session_awaits_ticket(void *session)
{
    gnutls_session_t s = session;

    return gnutls_db_get_ptr(s) != NULL &&
           !(gnutls_session_get_flags(s) & GNUTLS_SFLAGS_SESSION_TICKET);
}

void tls_session_free(void *session)
{
    if (session)
        gnutls_deinit(session);
}

/*
 * Checked once the handshake is complete, before any request is sent: the
 * TLS stack stays backend-neutral (no verify callback plumbing), and nothing
 * has been said to an unverified server yet.
 */
int tls_session_verify(struct tls_ctx *ctx, void *session, const char *host,
                       char *err, size_t errlen)
{
    gnutls_session_t s = session;
    const gnutls_datum_t *certs;
    unsigned n = 0, status = 0;
    gnutls_datum_t alpn, out = {0};
    uint8_t md[32];

    if (gnutls_alpn_get_selected_protocol(s, &alpn) != 0 ||
        alpn.size != sizeof(alpn_h3) - 1 ||
        memcmp(alpn.data, alpn_h3, alpn.size) != 0) {
        snprintf(err, errlen, "the server did not select ALPN h3");
        return -1;
    }
    if (ctx->insecure)
        return 0;
    if (ctx->has_hash) {
        char got[65];

        certs = gnutls_certificate_get_peers(s, &n);
        if (!certs || n == 0) {
            snprintf(err, errlen, "the server sent no certificate");
            return -1;
        }
        if (gnutls_hash_fast(GNUTLS_DIG_SHA256, certs[0].data, certs[0].size,
                             md) < 0) {
            snprintf(err, errlen, "cannot hash the server's certificate");
            return -1;
        }
        if (memcmp(md, ctx->want_hash, sizeof(md)) == 0)
            return 0;
        for (int i = 0; i < 32; i++)
            snprintf(got + 2 * i, 3, "%02x", md[i]);
        snprintf(err, errlen, "certificate hash mismatch: the server's is %s",
                 got);
        return -1;
    }
    if (gnutls_certificate_verify_peers3(s, host, &status) < 0) {
        snprintf(err, errlen, "certificate verification failed");
        return -1;
    }
    if (status == 0)
        return 0;
    if (gnutls_certificate_verification_status_print(
            status, GNUTLS_CRT_X509, &out, 0) == 0) {
        snprintf(err, errlen, "certificate: %s", out.data);
        gnutls_free(out.data);
    } else {
        snprintf(err, errlen, "certificate not trusted (status 0x%x)", status);
    }
    return -1;
}
