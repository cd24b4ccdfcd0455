/*
 * wt_protocol: WebTransport subprotocol negotiation (draft-ietf-webtrans-
 * http3-15 §3.3), both roles.  The client offers a List in
 * WT-Available-Protocols (Strings) or, in Google quiche's spelling,
 * WebTransport-Subprotocols-Available (Tokens); the server answers with
 * one of them in WT-Protocol, resp. WebTransport-Subprotocol.  A field
 * that is not a well-formed List of the right type, or is larger than we
 * read, is ignored as a whole (§3.3: "treated as an error that causes the
 * entire field to be ignored"), which is the same as no offer.
 */
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "h3.h"
#include "sf.h"
#include "wt.h"
#include "wt_internal.h"

/* What an offer may hold before it is ignored: members, and decoded
 * bytes (each member is at most 128 bytes: twice what a route can name,
 * so anything longer could not match anyway). */
#define OFFER_MAX 32
#define OFFER_MEMBER_MAX 128
#define OFFER_BYTES (OFFER_MAX * (OFFER_MEMBER_MAX + 1))

static const char *const offer_name[2] = {"WT-Available-Protocols",
                                          "WebTransport-Subprotocols-Available"};
static const char *const answer_name[2] = {"wt-protocol",
                                           "webtransport-subprotocol"};
static const enum sf_type hdr_type[2] = {SF_STRING, SF_TOKEN};

static const char *sf_why(int rv)
{
    switch (rv) {
    case SF_ERR_TYPE:
        return "a member is not of the field's type";
    case SF_ERR_LIMIT:
        return "more members or bytes than read";
    default:
        return "malformed";
    }
}

/* The offer in one spelling: 0 with its members, or -1 (absent, or
 * ignored: logged). */
static int parse_offer(struct quic_conn *qc, const struct h3_request *req,
                       enum wt_proto_hdr h, char *buf, struct sf_value *v,
                       size_t *n)
{
    const char *f = req->proto[h];
    int rv;

    if (!f)
        return -1;
    rv = sf_list_parse(f, strlen(f), hdr_type[h], buf, OFFER_BYTES, v,
                       OFFER_MAX, n);
    for (size_t i = 0; rv == 0 && i < *n; i++)
        if (v[i].len > OFFER_MEMBER_MAX)
            rv = SF_ERR_LIMIT;
    if (rv < 0) {
        CLOG(debug, qc, "stream %lld: %s ignored: %s",
             (long long)req->stream_id, offer_name[h], sf_why(rv));
        return -1;
    }
    return 0;
}

int wt_protocol_select(struct wt_session *s, const struct h3_request *req,
                       const char *hdr[2], char *val, size_t vallen)
{
    const struct config_route *r = s->route;
    struct sf_value v[OFFER_MAX];
    char *buf;
    size_t n = 0;
    int h, rv = 0;

    hdr[0] = hdr[1] = NULL;
    if (r->nprotocols == 0)
        return 0; /* the route does not negotiate: any offer is ignored */
    if (!(buf = malloc(OFFER_BYTES)))
        return 503;
    /* the drafts' spelling first; quiche's when that one is absent or
     * ignored.  The answer goes in the spelling of the offer used. */
    for (h = WT_PROTO_HDR_WT; h <= WT_PROTO_HDR_QUICHE; h++)
        if (parse_offer(s->qc, req, (enum wt_proto_hdr)h, buf, v, &n) == 0)
            break;
    if (h > WT_PROTO_HDR_QUICHE)
        n = 0;
    /* the server's preference wins over the client's order */
    for (size_t i = 0; i < r->nprotocols && !s->protocol; i++)
        for (size_t k = 0; k < n; k++)
            if (strcmp(r->protocols[i], v[k].s) == 0) {
                ssize_t len = sf_append(val, vallen, 0, hdr_type[h],
                                        r->protocols[i],
                                        strlen(r->protocols[i]));

                if (len < 0 || !(s->protocol = strdup(r->protocols[i]))) {
                    rv = 503;
                    goto done;
                }
                hdr[0] = answer_name[h];
                hdr[1] = val;
                break;
            }
    if (!s->protocol && r->protocol_required)
        rv = 406;
done:
    free(buf);
    return rv;
}

int wt_protocol_offer(struct wt_session *s, const struct wt_connect_opts *o,
                      const char *hdr[2])
{
    size_t cap = 1, used = 0;
    char *p;

    hdr[0] = hdr[1] = NULL;
    if (o->nprotocols == 0)
        return 0;
    for (size_t i = 0; i < o->nprotocols; i++)
        cap += 2 * strlen(o->protocols[i]) + 4; /* escapes, quotes, ", " */
    if (!(p = malloc(cap)))
        return -1;
    for (size_t i = 0; i < o->nprotocols; i++) {
        ssize_t r = sf_append(p, cap, used, hdr_type[o->protocol_hdr],
                              o->protocols[i], strlen(o->protocols[i]));

        if (r < 0) {
            free(p);
            return -1;
        }
        used = (size_t)r;
    }
    free(s->offer);
    s->offer = p;
    s->offer_hdr = o->protocol_hdr;
    hdr[0] = o->protocol_hdr == WT_PROTO_HDR_WT
                 ? "wt-available-protocols"
                 : "webtransport-subprotocols-available";
    hdr[1] = p;
    return 0;
}

void wt_protocol_answer(struct wt_session *s, const struct h3_request *req)
{
    enum wt_proto_hdr h = s->offer_hdr;
    const char *f = req->proto[h];
    struct sf_value v[OFFER_MAX], a;
    char *buf = NULL, one[OFFER_MEMBER_MAX + 1];
    size_t n;
    int rv;

    if (!s->offer || !f)
        return;
    rv = sf_item_parse(f, strlen(f), hdr_type[h], one, sizeof(one), &a);
    if (rv < 0) {
        SLOG(debug, s, "%s ignored: %s", answer_name[h], sf_why(rv));
        return;
    }
    /* §3.3: a value we did not offer is ignored */
    if (!(buf = malloc(OFFER_BYTES)) ||
        sf_list_parse(s->offer, strlen(s->offer), hdr_type[h], buf,
                      OFFER_BYTES, v, OFFER_MAX, &n) < 0)
        n = 0;
    for (size_t k = 0; k < n; k++)
        if (v[k].len == a.len && memcmp(v[k].s, a.s, a.len) == 0) {
            s->protocol = strdup(a.s);
            break;
        }
    if (!s->protocol)
        SLOG(debug, s, "%s \"%s\" was not offered: ignored", answer_name[h],
             a.s);
    free(buf);
}

const char *wt_session_protocol(const struct wt_session *s)
{
    return s->protocol;
}
