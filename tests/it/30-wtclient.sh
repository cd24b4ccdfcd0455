#!/usr/bin/env bash
# wtclient against the daemon: echo with byte verification over every
# transport and draft, trust options, close codes both ways, refusals, and
# its exit statuses (0 ok, 3 connect failed, 4 rejected).
. "$(dirname "$0")/lib.sh"
it_setup
start_daemon

head -c 1 /dev/urandom >"$TMP/1B"
head -c 65536 /dev/urandom >"$TMP/64K"
head -c 16777216 /dev/urandom >"$TMP/16M"
head -c 104857600 /dev/urandom >"$TMP/100M"

same_as() { # same_as FILE: the client's stdout equals FILE
    cmp -s "$1" "$TMP/client.out" && return 0
    echo "output differs from $(basename "$1") ($(stat -c %s "$TMP/client.out") bytes)"
    return 1
}
echo_file() { # echo_file FILE [OPTIONS]: bidi echo, verified in the client and here
    local f=$1
    shift
    client /echo --send "$f" --verify "$@" && same_as "$f"
}

check wtclient-bidi-1B echo_file "$TMP/1B"
check wtclient-bidi-64KiB echo_file "$TMP/64K"
check wtclient-bidi-16MiB echo_file "$TMP/16M"
check wtclient-bidi-100MiB echo_file "$TMP/100M"
uni() { client /echo --uni "$TMP/64K" --verify && same_as "$TMP/64K"; }
check wtclient-uni-64KiB uni
stdin_pipe() {
    head -c 3000000 /dev/urandom | tee "$TMP/piped" |
        client /echo --send - --verify && same_as "$TMP/piped"
}
check wtclient-stdin-pipe stdin_pipe
dgrams() {
    local args=() i
    for i in $(seq 1 20); do args+=(--datagram "datagram number $i"); done
    client /echo "${args[@]}" --verify || return 1
    [ "$(wc -l <"$TMP/client.out")" -eq 20 ] || { echo "$(wc -l <"$TMP/client.out") datagrams printed"; return 1; }
}
check wtclient-datagrams-20 dgrams
check wtclient-draft-07 echo_file "$TMP/64K" --draft 07
check wtclient-draft-07-logged log_has '(draft-07,'
check wtclient-draft-15 echo_file "$TMP/64K" --draft 15
check wtclient-draft-15-logged log_has '(draft-15,'
ipv6() { CLIENT_HOST='[::1]' echo_file "$TMP/64K"; }
check wtclient-ipv6 ipv6

# -v: the handshake, the server's SETTINGS (WebTransport ones included),
# the response headers and the capsules, in that order of events
check wtclient-verbose echo_file "$TMP/1B" -v --close "4141:verbose"
check wtclient-verbose-handshake client_err_has "handshake completed"
check wtclient-verbose-settings client_err_has "0x2b603742=1"
check wtclient-verbose-status client_err_has ":status: 200"
check wtclient-verbose-draft-header client_err_has "sec-webtransport-http3-draft: draft02"
check wtclient-verbose-capsule client_err_has "closing the session: code 4141"

# trust: the serverCertificateHashes model, a CA file, nothing
HASH=$(openssl x509 -in "$CERT" -outform der | sha256sum | cut -d' ' -f1)
check wtclient-cert-hash echo_file "$TMP/64K" --cert-hash "$HASH"
check wtclient-cert-hash-wrong client_exit 3 /echo --cert-hash "$(printf '%064d' 0)"
check wtclient-cert-hash-wrong-says client_err_has "certificate hash mismatch"
cafile() { CLIENT_HOST=localhost echo_file "$TMP/64K" --cafile "$CERT"; }
check wtclient-cafile cafile
check wtclient-untrusted client_exit 3 /echo --cafile /etc/ssl/certs/ca-certificates.crt

# close codes both ways
check wtclient-close-code client /echo --close "4242:bye from wtclient"
check wtclient-close-code-logged log_has 'closed by peer: code=4242 reason="bye from wtclient"'
check wtclient-server-close client /expire --wait-close
check wtclient-server-close-says client_err_has 'code=4343 reason="expired by test"'

# refusals and failures
check wtclient-404 client_exit 4 /nope
check wtclient-404-says client_err_has "HTTP 404"
noserver() { local PORT; PORT=$(it_free_port); PROBE_TIMEOUT=3 client_exit 3 /echo; }
check wtclient-no-server noserver
check wtclient-bad-url client_exit 2 /echo --draft 3

# protocol errors the server must contain: an oversized CLOSE capsule
# (type 0x2843, length 4000) aborts that session only
check wtclient-oversized-capsule client /echo --capsule 68434fa0 --wait-close
check wtclient-oversized-capsule-logged log_has 'closed by protocol error: code=0 reason="oversized capsule"'
check wtclient-after-bad-capsule echo_file "$TMP/64K"
stop_daemon
# a stream naming a session that does not exist, with no room to wait
start_daemon "max_pending_streams = 0"
check wtclient-unknown-session-stream client_exit 1 /echo --send "$TMP/64K" --stream-session 4000
check wtclient-unknown-session-says client_err_has "reset by the server"
check wtclient-unknown-session-logged log_has "too many streams waiting for sessions"
check wtclient-after-unknown-session echo_file "$TMP/64K"
stop_daemon

# --verify notices what did not come back: with room for one queued
# datagram per session, a burst of 50 echoes mostly gets dropped (exit 5)
start_daemon "max_datagram_queue = 1"
dgram_burst() {
    local args=() i
    for i in $(seq 1 50); do args+=(--datagram "burst datagram $i"); done
    client_exit 5 /echo "${args[@]}" --verify
}
check wtclient-datagram-loss-is-mismatch dgram_burst
check wtclient-datagram-loss-says client_err_has "datagrams did not come back"

# shutdown: a waiting client hears DRAIN, then CLOSE with the reason
shutdown_close() {
    local before cpid rc _
    before=$(grep -c "opened /echo" "$TMP/daemon.log")
    timeout 20 "$BUILD/wtclient" --insecure --wait-close -v \
        "https://127.0.0.1:$PORT/echo" >"$TMP/client.out" 2>"$TMP/client.err" &
    cpid=$!
    for _ in $(seq 1 100); do
        [ "$(grep -c "opened /echo" "$TMP/daemon.log")" -gt "$before" ] && break
        sleep 0.05
    done
    stop_daemon
    wait $cpid
    rc=$?
    [ $rc -eq 0 ] || { echo "wtclient exit $rc: $(tail -n 1 "$TMP/client.err")"; return 1; }
    grep -q "peer sent DRAIN_WEBTRANSPORT_SESSION" "$TMP/client.err" || { echo "no DRAIN seen"; return 1; }
    client_err_has 'code=0 reason="server shutting down"'
}
check wtclient-close-on-shutdown shutdown_close
start_daemon
it_finish
