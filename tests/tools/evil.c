/*
 * evil: linked into a copy of the daemon (build/wtrelayd-evil) that
 * misbehaves on purpose, for testing the client role (wtclient, wtbench,
 * and the session layer they share with the daemon).  The link wraps
 * nghttp3_conn_submit_response (-Wl,--wrap=...), so everything else is the
 * real daemon.  WTEVIL=MODE in the environment picks the misbehaviour:
 *
 *   bad-response   every response carries a connection-specific header
 *                  ("connection: close": malformed, RFC 9114 §4.2) and
 *                  ends the stream
 *   bad-first      only the first response of each connection (the
 *                  others are normal), so that a client's other
 *                  sessions go on beside the failed one
 *
 * Anything else, or no WTEVIL, behaves like wtrelayd.
 */
#include <stdlib.h>
#include <string.h>

#include <nghttp3/nghttp3.h>

int __real_nghttp3_conn_submit_response(nghttp3_conn *conn, int64_t stream_id,
                                        const nghttp3_nv *nva, size_t nvlen,
                                        const nghttp3_data_reader *dr);
int __wrap_nghttp3_conn_submit_response(nghttp3_conn *conn, int64_t stream_id,
                                        const nghttp3_nv *nva, size_t nvlen,
                                        const nghttp3_data_reader *dr);

int __wrap_nghttp3_conn_submit_response(nghttp3_conn *conn, int64_t stream_id,
                                        const nghttp3_nv *nva, size_t nvlen,
                                        const nghttp3_data_reader *dr)
{
    static nghttp3_conn *last;
    const char *mode = getenv("WTEVIL");
    nghttp3_nv v[16];
    int first = conn != last;

    last = conn;
    if (!mode || nvlen >= 16 ||
        !(strcmp(mode, "bad-response") == 0 ||
          (strcmp(mode, "bad-first") == 0 && first)))
        return __real_nghttp3_conn_submit_response(conn, stream_id, nva, nvlen,
                                                   dr);
    memcpy(v, nva, nvlen * sizeof(*nva));
    v[nvlen] = (nghttp3_nv){(const uint8_t *)"connection",
                            (const uint8_t *)"close", 10, 5,
                            NGHTTP3_NV_FLAG_NONE};
    return __real_nghttp3_conn_submit_response(conn, stream_id, v, nvlen + 1,
                                               NULL);
}
