/*
 * tls: TLS 1.3 for QUIC through ngtcp2's GnuTLS backend.  The only file
 * that includes GnuTLS: another backend is a change to tls.c alone.
 */
#ifndef WTRELAYD_TLS_H
#define WTRELAYD_TLS_H

#include <stddef.h>
#include <stdint.h>

#include <ngtcp2/ngtcp2_crypto.h>

struct tls_ctx;

/* Loads the certificate chain and key (PEM): the key must match the leaf.
 * NULL with a message in err.  Contexts are reference-counted (the
 * creator's reference is the first): tls_ctx_free() drops one, the last
 * frees it. */
struct tls_ctx *tls_ctx_new(const char *cert, const char *key, char *err,
                            size_t errlen);
struct tls_ctx *tls_ctx_ref(struct tls_ctx *ctx);
void tls_ctx_free(struct tls_ctx *ctx);
/* Lowercase hex SHA-256 of the leaf certificate's DER (65 bytes with NUL):
 * what browsers take as serverCertificateHashes. */
const char *tls_ctx_cert_sha256(const struct tls_ctx *ctx);
/* The leaf certificate's notAfter, in unix seconds. */
int64_t tls_ctx_cert_not_after(const struct tls_ctx *ctx);
/* 1 when browsers take the leaf by its hash (serverCertificateHashes,
 * W3C WebTransport §4.4: ECDSA on P-256 and a validity period of at most
 * 14 days), else 0: then only a CA they trust will do. */
int tls_ctx_cert_hashable(const struct tls_ctx *ctx);
/* Server: 32 secret bytes derived from the private key, the same in every
 * process that loads that key (stateless reset tokens). */
const uint8_t *tls_ctx_secret(const struct tls_ctx *ctx);

/* Client side: how the server's certificate is checked.  With none of the
 * three, the system's trust store and the host name. */
struct tls_client_opts {
    const uint8_t *cert_hash; /* 32 bytes: SHA-256 of the leaf's DER, as
                                 browsers' serverCertificateHashes */
    const char *cafile;       /* PEM bundle; the host name is checked */
    int insecure;             /* no check at all */
    int resume;               /* keep the server's session tickets and
                                 resume with the newest (TLS 1.3) */
};

struct tls_ctx *tls_client_ctx_new(const struct tls_client_opts *o, char *err,
                                   size_t errlen);
/* Client, with resume: a session to resume is kept (a ticket came, or
 * one was loaded)?  Load and save it (a file of at most TLS_TICKET_MAX
 * bytes, written 0600): 0 or -1. */
#define TLS_TICKET_MAX 16384
int tls_ctx_has_ticket(const struct tls_ctx *ctx);
int tls_ctx_ticket_load(struct tls_ctx *ctx, const char *path);
int tls_ctx_ticket_save(const struct tls_ctx *ctx, const char *path);
/* "ab12..." (64 hex digits, ':' separators allowed) -> 32 bytes.  0/-1. */
int tls_cert_hash_parse(const char *hex, uint8_t out[32]);

/*
 * A TLS session for one QUIC connection, ALPN "h3" required, in the role of
 * the context.  `ref` must outlive the session; `sni` (clients) is the server
 * name to send, NULL or an IP literal for none.  Returns the native handle
 * to give to ngtcp2_conn_set_tls_native_handle(), or NULL.
 */
void *tls_session_new(struct tls_ctx *ctx, ngtcp2_crypto_conn_ref *ref,
                      const char *sni);
void tls_session_free(void *session);
/* Server, once the handshake is complete: one NewSessionTicket.  0/-1. */
int tls_session_send_ticket(void *session);
/* The handshake resumed a session (no certificate was sent)? */
int tls_session_resumed(void *session);
/* Client with resume: no ticket has come on this session yet, so it must
 * be kept past the handshake to read one. */
int tls_session_awaits_ticket(void *session);

/* Client, after the handshake: ALPN is h3 and the certificate passes the
 * context's check for `host`.  0, or -1 with a message in err. */
int tls_session_verify(struct tls_ctx *ctx, void *session, const char *host,
                       char *err, size_t errlen);

#endif
