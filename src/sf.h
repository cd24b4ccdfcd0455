/*
 * sf: HTTP Structured Fields (RFC 9651, formerly RFC 8941), only as far as
 * WebTransport's subprotocol negotiation needs them: a List whose members
 * are all Strings (WT-Available-Protocols) or all Tokens (quiche's
 * WebTransport-Subprotocols-Available), an Item of one of those types
 * (WT-Protocol, WebTransport-Subprotocol), and their serialisation.
 * Parameters are parsed (they must be well-formed) and ignored.  Pure
 * codec: no I/O, no allocation, no globals.
 */
#ifndef WTRELAYD_SF_H
#define WTRELAYD_SF_H

#include <stddef.h>
#include <sys/types.h>

enum sf_type { SF_STRING, SF_TOKEN };

/* Failures; every one means "ignore the whole field" to the caller. */
#define SF_ERR_SYNTAX (-1) /* not a well-formed List / Item */
#define SF_ERR_TYPE (-2)   /* well-formed, but a member of another type */
#define SF_ERR_LIMIT (-3)  /* more members or bytes than the caller allows */

/* A decoded value: NUL-terminated, inside the caller's `out` buffer. */
struct sf_value {
    const char *s;
    size_t len;
};

/*
 * Parses `in` (inlen bytes; not NUL-terminated) as a List of `type`.
 * Decoded values (escapes removed) go to `out`; at most `max` of them.
 * An empty field is an empty List (count 0).  0, or SF_ERR_*.
 */
int sf_list_parse(const char *in, size_t inlen, enum sf_type type, char *out,
                  size_t outlen, struct sf_value *vals, size_t max,
                  size_t *count);
/* The same for a single Item. */
int sf_item_parse(const char *in, size_t inlen, enum sf_type type, char *out,
                  size_t outlen, struct sf_value *val);

/* 1 when s (n bytes) can be a String (printable ASCII 0x20..0x7e), resp.
 * a Token (RFC 9651 §3.3.4: ALPHA or '*', then tchar, ':' or '/'). */
int sf_is_string(const char *s, size_t n);
int sf_is_token(const char *s, size_t n);
/* Appends s (n bytes) serialised as `type` to out (NUL-terminated): the
 * new length, or -1 when it is not representable or does not fit. */
ssize_t sf_append(char *out, size_t outlen, size_t used, enum sf_type type,
                  const char *s, size_t n);

#endif
