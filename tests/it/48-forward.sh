#!/usr/bin/env bash
# The forward handler (issue 9): streams to TCP backends, datagrams to a UDP
# backend, through real backend processes on loopback (tests/tools/
# tbackend.c): byte-exact round trips, half-close, resets with their codes,
# backpressure both ways (RSS bounded), PROXY v2, round robin, limits, and
# no leak of sockets over churn.  Codes (README): refused 0xf1 = 241,
# timeout 0xf2 = 242, reset by the backend 0xf3 = 243.
. "$(dirname "$0")/lib.sh"
it_setup

ECHO=$(backend tcp echo) || it_abort "no echo backend"
HALF=$(backend tcp halfclose) || it_abort "no halfclose backend"
NAMEA=$(backend tcp name:A) || it_abort "no backend A"
NAMEB=$(backend tcp name:B) || it_abort "no backend B"
SINK=$(backend tcp sink) || it_abort "no sink backend"
FLOOD=$(backend tcp flood) || it_abort "no flood backend"
RST=$(backend tcp reset) || it_abort "no reset backend"
PROXY=$(backend tcp proxy) || it_abort "no proxy backend"
NOACC=$(backend tcp noaccept) || it_abort "no noaccept backend"
COUNT=$(backend tcp "count:$TMP/counted") || it_abort "no count backend"
UECHO=$(backend udp echo) || it_abort "no udp echo backend"
UPROXY=$(backend udp proxy) || it_abort "no udp proxy backend"
DEAD=$(it_free_port)

start_daemon "max_buffer_bytes = 256k" \
    "[route /fwd]" "handler = forward" "backend = tcp://127.0.0.1:$ECHO" \
    "datagram_backend = udp://127.0.0.1:$UECHO" \
    "[route /half]" "handler = forward" "backend = tcp://127.0.0.1:$HALF" \
    "[route /rr]" "handler = forward" \
    "backend = tcp://127.0.0.1:$NAMEA, tcp://127.0.0.1:$DEAD, tcp://127.0.0.1:$NAMEB" \
    "[route /dead]" "handler = forward" "backend = tcp://127.0.0.1:$DEAD" \
    "[route /timeout]" "handler = forward" "backend = tcp://127.0.0.1:$NOACC" "connect_timeout = 500ms" \
    "[route /sink]" "handler = forward" "backend = tcp://127.0.0.1:$SINK" \
    "[route /flood]" "handler = forward" "backend = tcp://127.0.0.1:$FLOOD" \
    "[route /rst]" "handler = forward" "backend = tcp://127.0.0.1:$RST" \
    "[route /pp]" "handler = forward" "backend = tcp://127.0.0.1:$PROXY" \
    "datagram_backend = udp://127.0.0.1:$UPROXY" "proxy_protocol = v2" \
    "[route /lim]" "handler = forward" "backend = tcp://127.0.0.1:$ECHO" "max_backend_connections = 2" \
    "[route /count]" "handler = forward" "backend = tcp://127.0.0.1:$COUNT" \
    "[route /sinkl]" "handler = forward" "backend = tcp://127.0.0.1:$SINK" "linger = 300ms" \
    "[route /floodl]" "handler = forward" "backend = tcp://127.0.0.1:$FLOOD" "linger = 300ms"

rss_peak() { awk '/VmHWM/ {print $2}' "/proc/$DAEMON_PID/status"; }
nfds() { ls "/proc/$DAEMON_PID/fd" | wc -l; }

witness_start 25
head -c 1 /dev/urandom >"$TMP/d1"
head -c 65536 /dev/urandom >"$TMP/d64k"
head -c $((64 << 20)) /dev/urandom >"$TMP/d64m"
check echo-1 client /fwd --send "$TMP/d1" --verify
check echo-64k client /fwd --send "$TMP/d64k" --verify
check echo-64m client /fwd --timeout 30 --send "$TMP/d64m" --verify
# a uni stream is a write-only connection: the backend gets every byte
# and the FIN, though it answers as it reads (what comes back is read and
# dropped: a close with unread bytes would be an RST, losing the tail)
# (wtclient waits in vain for an answer on a uni stream of the server's)
uni_counted() {
    head -c $((4 << 20)) /dev/urandom >"$TMP/d4m"
    client /count --timeout 3 --uni "$TMP/d4m" >/dev/null
    for _ in $(seq 1 60); do
        [ -s "$TMP/counted" ] && break
        sleep 0.05
    done
    [ "$(cat "$TMP/counted" 2>/dev/null)" = $((4 << 20)) ] ||
        { echo "backend counted: $(cat "$TMP/counted" 2>/dev/null)"; return 1; }
}
check uni-write-only uni_counted
dgrams() {
    client /fwd --datagram hello --datagram world || return 1
    grep -qx hello "$TMP/client.out" && grep -qx world "$TMP/client.out" ||
        { echo "got: $(cat "$TMP/client.out")"; return 1; }
}
check datagrams dgrams
check streams-100 sh -c "timeout 60 '$BUILD/wtbench' --insecure --json --mode rps -m 100 -n 2000 https://127.0.0.1:$PORT/fwd | grep -q '\"requests\":2000,'"
# half-close: the backend answers only once it has read to EOF
check half-close client /half --send "$TMP/d64k" --verify

# backends that refuse, never answer, or reset: the stream is reset with
# its code, quickly
fails_fast() { # fails_fast CODE PATH: wtclient fails within 3 s with CODE
    local t0=$SECONDS
    client_exit 1 "$2" --timeout 10 --send "$TMP/d1" >/dev/null
    client_err_has "(code $1)" || return 1
    [ $((SECONDS - t0)) -le 3 ] || { echo "took $((SECONDS - t0)) s"; return 1; }
}
check backend-down fails_fast 241 /dead
check backend-timeout fails_fast 242 /timeout
check backend-reset fails_fast 243 /rst
check down-logged log_has "skipped for"

# round robin, skipping the dead one (for backend_retry)
rr() {
    local got=
    for _ in 1 2 3 4; do
        client /rr --send "$TMP/d1" || return 1
        got="$got$(cat "$TMP/client.out")"
    done
    [ "$got" = ABAB ] || { echo "answers $got, wanted ABAB"; return 1; }
}
check round-robin rr

# PROXY v2: the backend reads the client's address and port, :authority and
# :path, and answers them; datagrams get the header first too
proxy_ok() {
    client /pp?x=1 --send "$TMP/d1" || return 1
    grep -aq "^stream src=127.0.0.1:[0-9]* dst=127.0.0.1:$PORT authority=127.0.0.1:$PORT path=/pp?x=1" "$TMP/client.out" ||
        { echo "backend saw: $(head -n 1 "$TMP/client.out")"; return 1; }
    client /pp?y=2 --datagram hi || return 1
    grep -aq "^dgram src=127.0.0.1:[0-9]* dst=127.0.0.1:$PORT authority=127.0.0.1:$PORT path=/pp?y=2" "$TMP/client.out" ||
        { echo "backend saw: $(cat "$TMP/client.out")"; return 1; }
}
check proxy-v2 proxy_ok

# limits: max_backend_connections
check max-backend-connections probe_says "2 echoing, 1 rejected" open-streams /lim 3

# backpressure: a backend that never reads, and one that floods a client
# that does not read: the daemon's memory stays bounded (windows of 256k)
sink_bounded() {
    local r0 r1
    r0=$(rss_peak)
    client /sink --timeout 3 --send "$TMP/d64m" >/dev/null
    r1=$(rss_peak)
    echo "sink: daemon peak RSS $r0 -> $r1 kB"
    [ $((r1 - r0)) -lt 16384 ] || { echo "grew $(((r1 - r0) / 1024)) MB"; return 1; }
}
flood_bounded() {
    local r0 r1 out
    r0=$(rss_peak)
    out=$(probe --window 65536 hold-stream /flood 3) || { echo "$out"; return 1; }
    r1=$(rss_peak)
    echo "$out; daemon peak RSS $r0 -> $r1 kB"
    case "$out" in *" 65536 bytes arrived"* | *" 6553"[0-9]" bytes arrived"*) ;; *) echo "more than the window arrived"; return 1 ;; esac
    [ $((r1 - r0)) -lt 16384 ] || { echo "grew $(((r1 - r0) / 1024)) MB"; return 1; }
}
check sink-bounded sink_bounded
check flood-bounded flood_bounded

# a connection whose stream ended whole outlives it (and its session) only
# while the backend makes progress: one that never reads, one that never
# ends, are reset after `linger`, and their sockets go
lingered() {
    local f0 f1 n0 n
    f0=$(nfds)
    n0=$(grep -c "no progress for 300 ms" "$TMP/daemon.log")
    client "$1" --timeout 0.5 --uni "$TMP/d64k" >/dev/null
    for _ in $(seq 1 60); do
        n=$(grep -c "no progress for 300 ms" "$TMP/daemon.log")
        [ "$n" -gt "$n0" ] && break
        sleep 0.05
    done
    f1=$(nfds)
    echo "resets logged $n0 -> $n, daemon fds $f0 -> $f1"
    [ "$n" -gt "$n0" ] && [ "$f1" -le "$f0" ]
}
check linger-sink lingered /sinkl
check linger-flood lingered /floodl

# churn: streams and sessions come and go; sockets do not leak
churn() {
    local f0 f1
    sleep 1
    f0=$(nfds)
    for _ in 1 2 3; do
        timeout 60 "$BUILD/wtbench" --insecure --json --mode rps -c 4 -s 4 -m 8 -n 2000 \
            "https://127.0.0.1:$PORT/fwd" >/dev/null 2>&1 || { echo "wtbench failed"; return 1; }
    done
    sleep 1
    f1=$(nfds)
    echo "daemon fds $f0 -> $f1"
    [ "$f1" -le $((f0 + 2)) ] || return 1
}
check churn-no-leak churn
check forward-witness witness_check
it_finish
