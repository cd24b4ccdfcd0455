/* sf: see sf.h.  Section numbers are RFC 9651's. */
#include "sf.h"

#include <string.h>

struct in {
    const char *p, *end;
};

/* Where decoded values go: NULL `buf` while a value is only skipped. */
struct out {
    char *buf;
    size_t cap, used;
};

static int is_alpha(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int is_digit(int c)
{
    return c >= '0' && c <= '9';
}

static int is_lcalpha(int c)
{
    return c >= 'a' && c <= 'z';
}

/* RFC 9110 §5.6.2 tchar */
static int is_tchar(int c)
{
    return is_alpha(c) || is_digit(c) || (c && strchr("!#$%&'*+-.^_`|~", c));
}

static int put(struct out *o, char c)
{
    if (!o->buf)
        return 0;
    if (o->used >= o->cap)
        return SF_ERR_LIMIT;
    o->buf[o->used++] = c;
    return 0;
}

static void skip_sp(struct in *in)
{
    while (in->p < in->end && *in->p == ' ')
        in->p++;
}

static void skip_ows(struct in *in)
{
    while (in->p < in->end && (*in->p == ' ' || *in->p == '\t'))
        in->p++;
}

/* §4.2.5: '"', printable ASCII with \" and \\ escapes, '"'. */
static int parse_string(struct in *in, struct out *o)
{
    int rv;

    in->p++; /* the opening DQUOTE */
    while (in->p < in->end) {
        char c = *in->p++;

        if (c == '\\') {
            if (in->p == in->end || (*in->p != '"' && *in->p != '\\'))
                return SF_ERR_SYNTAX;
            c = *in->p++;
        } else if (c == '"') {
            return 0;
        } else if (c < 0x20 || c > 0x7e) {
            return SF_ERR_SYNTAX;
        }
        if ((rv = put(o, c)) < 0)
            return rv;
    }
    return SF_ERR_SYNTAX; /* no closing DQUOTE */
}

/* §4.2.6 */
static int parse_token(struct in *in, struct out *o)
{
    int rv;

    if ((rv = put(o, *in->p++)) < 0)
        return rv;
    while (in->p < in->end &&
           (is_tchar(*in->p) || *in->p == ':' || *in->p == '/'))
        if ((rv = put(o, *in->p++)) < 0)
            return rv;
    return 0;
}

/* §4.2.4: an Integer (15 digits) or a Decimal (12.3 digits). */
static int skip_number(struct in *in)
{
    size_t ints = 0, fracs = 0;
    int dot = 0;

    if (in->p < in->end && *in->p == '-')
        in->p++;
    if (in->p == in->end || !is_digit(*in->p))
        return SF_ERR_SYNTAX;
    for (; in->p < in->end; in->p++) {
        if (is_digit(*in->p)) {
            if (dot)
                fracs++;
            else
                ints++;
        } else if (*in->p == '.' && !dot) {
            if (ints > 12)
                return SF_ERR_SYNTAX;
            dot = 1;
        } else {
            break;
        }
        if ((!dot && ints > 15) || fracs > 3)
            return SF_ERR_SYNTAX;
    }
    return dot && fracs == 0 ? SF_ERR_SYNTAX : 0;
}

/* §4.2.7 Byte Sequence: ':' base64 ':' */
static int skip_bytes(struct in *in)
{
    in->p++;
    while (in->p < in->end && *in->p != ':') {
        char c = *in->p++;

        if (!is_alpha(c) && !is_digit(c) && c != '+' && c != '/' && c != '=')
            return SF_ERR_SYNTAX;
    }
    if (in->p == in->end)
        return SF_ERR_SYNTAX;
    in->p++;
    return 0;
}

/* §4.2.10 Display String: '%"', printable ASCII and %xx (lowercase), '"' */
static int skip_display(struct in *in)
{
    in->p++;
    if (in->p == in->end || *in->p++ != '"')
        return SF_ERR_SYNTAX;
    while (in->p < in->end) {
        char c = *in->p++;

        if (c == '"')
            return 0;
        if (c == '%') {
            for (int k = 0; k < 2; k++, in->p++)
                if (in->p == in->end ||
                    !(is_digit(*in->p) || (*in->p >= 'a' && *in->p <= 'f')))
                    return SF_ERR_SYNTAX;
        } else if (c < 0x20 || c > 0x7e) {
            return SF_ERR_SYNTAX;
        }
    }
    return SF_ERR_SYNTAX;
}

/*
 * §4.2.3.1 Bare Item.  With `want` >= 0 it is a member's value: it must be
 * of that type and is stored; with -1 (a parameter's value) any type goes
 * and nothing is kept.
 */
static int parse_bare(struct in *in, int want, struct out *o)
{
    struct out none = {0};
    char c;

    if (in->p == in->end)
        return SF_ERR_SYNTAX;
    c = *in->p;
    if (c == '"') {
        if (want == SF_TOKEN)
            return SF_ERR_TYPE;
        return parse_string(in, want < 0 ? &none : o);
    }
    if (is_alpha(c) || c == '*') {
        if (want == SF_STRING)
            return SF_ERR_TYPE;
        return parse_token(in, want < 0 ? &none : o);
    }
    if (want >= 0) {
        /* anything else well-formed is of another type; checked for form
         * all the same, so that garbage reads as garbage */
        int rv = parse_bare(in, -1, &none);

        return rv < 0 ? rv : SF_ERR_TYPE;
    }
    if (c == '-' || is_digit(c))
        return skip_number(in);
    if (c == '?') {
        in->p++;
        if (in->p == in->end || (*in->p != '0' && *in->p != '1'))
            return SF_ERR_SYNTAX;
        in->p++;
        return 0;
    }
    if (c == ':')
        return skip_bytes(in);
    if (c == '@') {
        in->p++;
        if (in->p == in->end || *in->p == '.')
            return SF_ERR_SYNTAX;
        return skip_number(in); /* a Date is an Integer */
    }
    if (c == '%')
        return skip_display(in);
    return SF_ERR_SYNTAX;
}

/* §4.2.3.2: parameters are parsed (their form checked) and dropped. */
static int skip_params(struct in *in)
{
    int rv;

    while (in->p < in->end && *in->p == ';') {
        in->p++;
        skip_sp(in);
        if (in->p == in->end || !(is_lcalpha(*in->p) || *in->p == '*'))
            return SF_ERR_SYNTAX;
        while (in->p < in->end &&
               (is_lcalpha(*in->p) || is_digit(*in->p) || *in->p == '_' ||
                *in->p == '-' || *in->p == '.' || *in->p == '*'))
            in->p++;
        if (in->p < in->end && *in->p == '=') {
            in->p++;
            if ((rv = parse_bare(in, -1, NULL)) < 0)
                return rv;
        }
    }
    return 0;
}

/* HTTP has removed the field's surrounding whitespace already; a value
 * combined from several field lines, or sent carelessly, may keep some. */
static void trim(struct in *in)
{
    skip_ows(in);
    while (in->end > in->p && (in->end[-1] == ' ' || in->end[-1] == '\t'))
        in->end--;
}

/* One member (or the Item): its value stored and NUL-terminated. */
static int parse_value(struct in *in, enum sf_type type, struct out *o,
                       struct sf_value *v)
{
    size_t start = o->used;
    int rv;

    if (in->p < in->end && *in->p == '(')
        return SF_ERR_TYPE; /* an Inner List */
    if ((rv = parse_bare(in, (int)type, o)) < 0 || (rv = put(o, '\0')) < 0)
        return rv;
    v->s = o->buf + start;
    v->len = o->used - start - 1;
    return skip_params(in);
}

int sf_list_parse(const char *in, size_t inlen, enum sf_type type, char *out,
                  size_t outlen, struct sf_value *vals, size_t max,
                  size_t *count)
{
    struct in i = {in, in + inlen};
    struct out o = {out, outlen, 0};
    int rv;

    *count = 0;
    trim(&i);
    while (i.p < i.end) {
        if (*count == max)
            return SF_ERR_LIMIT;
        if ((rv = parse_value(&i, type, &o, &vals[*count])) < 0)
            return rv;
        (*count)++;
        skip_ows(&i);
        if (i.p == i.end)
            break;
        if (*i.p++ != ',')
            return SF_ERR_SYNTAX;
        skip_ows(&i);
        if (i.p == i.end)
            return SF_ERR_SYNTAX; /* a trailing comma */
    }
    return 0;
}

int sf_item_parse(const char *in, size_t inlen, enum sf_type type, char *out,
                  size_t outlen, struct sf_value *val)
{
    struct in i = {in, in + inlen};
    struct out o = {out, outlen, 0};
    int rv;

    trim(&i);
    if (i.p == i.end)
        return SF_ERR_SYNTAX;
    if ((rv = parse_value(&i, type, &o, val)) < 0)
        return rv;
    return i.p == i.end ? 0 : SF_ERR_SYNTAX;
}

int sf_is_string(const char *s, size_t n)
{
    for (size_t k = 0; k < n; k++)
        if (s[k] < 0x20 || s[k] > 0x7e)
            return 0;
    return 1;
}

int sf_is_token(const char *s, size_t n)
{
    if (n == 0 || !(is_alpha(s[0]) || s[0] == '*'))
        return 0;
    for (size_t k = 1; k < n; k++)
        if (!is_tchar(s[k]) && s[k] != ':' && s[k] != '/')
            return 0;
    return 1;
}

ssize_t sf_append(char *out, size_t outlen, size_t used, enum sf_type type,
                  const char *s, size_t n)
{
    struct out o = {out, outlen, used};

    if (type == SF_STRING ? !sf_is_string(s, n) : !sf_is_token(s, n))
        return -1;
    if (used && (put(&o, ',') < 0 || put(&o, ' ') < 0))
        return -1;
    if (type == SF_STRING && put(&o, '"') < 0)
        return -1;
    for (size_t k = 0; k < n; k++)
        if (((s[k] == '"' || s[k] == '\\') && type == SF_STRING &&
             put(&o, '\\') < 0) ||
            put(&o, s[k]) < 0)
            return -1;
    if ((type == SF_STRING && put(&o, '"') < 0) || o.used >= o.cap)
        return -1;
    out[o.used] = '\0';
    return (ssize_t)o.used;
}
