/*
 * tls: TLS 1.3 for QUIC through ngtcp2's GnuTLS backend.  The only file
 * that includes GnuTLS: another backend is a change to tls.c alone.
 */
#ifndef WTRELAYD_TLS_H
#define WTRELAYD_TLS_H

#include <stddef.h>

#include <ngtcp2/ngtcp2_crypto.h>

struct tls_ctx;

/* Loads the certificate chain and key (PEM).  NULL with a message in err. */
struct tls_ctx *tls_ctx_new(const char *cert, const char *key, char *err,
                            size_t errlen);
void tls_ctx_free(struct tls_ctx *ctx);
/* Lowercase hex SHA-256 of the leaf certificate's DER (65 bytes with NUL):
 * what browsers take as serverCertificateHashes. */
const char *tls_ctx_cert_sha256(const struct tls_ctx *ctx);

/*
 * A server-side TLS session for one QUIC connection, ALPN "h3" required.
 * `ref` must outlive the session.  Returns the native handle to give to
 * ngtcp2_conn_set_tls_native_handle(), or NULL.
 */
void *tls_session_new(struct tls_ctx *ctx, ngtcp2_crypto_conn_ref *ref);
void tls_session_free(void *session);

#endif
