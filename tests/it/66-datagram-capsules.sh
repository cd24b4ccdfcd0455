#!/usr/bin/env bash
# HTTP datagrams as DATAGRAM capsules on the CONNECT stream (RFC 9297
# §3.5): a client without QUIC datagrams (max_datagram_frame_size 0, as
# behind an intermediary that cannot forward them) sends its datagrams as
# capsules and gets the echoes back as capsules; a client with QUIC
# datagrams that sends a capsule gets its echo as a QUIC datagram; an
# empty one and a malformed capsule after it behave; one past the largest
# datagram (70000 bytes) is dropped, counted and never buffered, its
# session untouched, a witness served meanwhile.
. "$(dirname "$0")/lib.sh"
it_setup
start_daemon "log_level = debug"

caps_echo() { # DRAFT
    client /echo --draft "$1" --no-quic-datagrams --datagram hello \
        --datagram "datagram two" --verify || return 1
    grep -qx "hello" "$TMP/client.out" || { echo "no hello back"; return 1; }
}
check capsules-both-ways-draft02 caps_echo 02
check capsules-both-ways-draft14 caps_echo 14
check capsules-both-ways-draft15 caps_echo 15
check capsules-counted log_has "datagram capsules: 2 in, 2 out, 0 dropped"

# capsule in (type 0x00, 5 bytes "hello"), QUIC datagram out
quic_back() {
    # a bidi echo of zeros keeps the client for a few round trips
    head -c 1000000 /dev/zero >"$TMP/zero.bin"
    client /echo --draft 14 --capsule 000568656c6c6f --send "$TMP/zero.bin" \
        --verify || return 1
    grep -aq "hello" "$TMP/client.out" || { echo "no datagram back"; return 1; }
}
check capsule-in-quic-datagram-out quic_back
check capsule-in-counted log_has "datagrams_in=1 datagrams_out=1"
check capsule-in-counted-apart log_has "datagram capsules: 1 in, 0 out, 0 dropped"

# an empty DATAGRAM capsule is an empty datagram: echoed (an empty QUIC
# datagram used to abort the daemon: ngtcp2 asserts on an empty vector)
check empty-datagram-capsule client /echo --capsule 0000 --datagram x --verify
check empty-datagram-capsule-echoed log_has "datagrams_in=2 datagrams_out=2"
# a DATAGRAM capsule cut short by FIN: H3_MESSAGE_ERROR, B unaffected
check datagram-capsule-truncated probe capsule-truncated 0
witness_start 4
check datagram-capsule-oversized probe capsule-dgram-oversized
check datagram-capsule-oversized-counted log_has "datagram capsules: 0 in, 0 out, 1 dropped"
check datagram-capsule-oversized-witness witness_check
it_finish
