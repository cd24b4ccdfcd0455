#!/usr/bin/env bash
# The handshake queue (src/quic_hsq.c): new connections' Initials wait in a
# bounded queue and their handshakes start one per loop turn, after the
# packets of established connections.
#   - bounded and counted: a burst of Initials far faster than handshakes
#     can start (retry = off, so every one wants a handshake) never holds
#     more than handshake_queue of them; the rest are dropped and counted
#     (connections_refused_total{reason="handshake_queue"}); a new client
#     still gets in (its retransmission does) and an established session
#     is served throughout;
#   - no starvation: established connections sending back to back (a
#     packet in every loop turn) do not keep new clients out: 40 new
#     sessions open beside them, at a rate (one handshake per turn) well
#     above a floor.
. "$(dirname "$0")/lib.sh"
it_setup
command -v curl >/dev/null || it_abort "curl is missing (scripts/install-deps.sh --test)"
[ -x "$BUILD/initflood" ] || it_abort "$BUILD/initflood not built"
[ -x "$BUILD/wtbench" ] || it_abort "$BUILD/wtbench not built"

APORT=$(it_free_tcp_port) || it_abort "no free TCP port"
QMAX=16
start_daemon "log_level = info" "retry = off" "handshake_queue = $QMAX" \
    "handshake_timeout = 2s" "max_connections = 5000" \
    "[admin]" "listen = 127.0.0.1:$APORT"

metrics() { curl -s --max-time 5 "http://127.0.0.1:$APORT/metrics"; }
metric() { metrics | awk -v s="$1" '$1 == s { print $2 }'; }
DROPPED='wtrelayd_connections_refused_total{reason="handshake_queue"}'

check queue-metrics-exported bash -c "[ '$(metric wtrelayd_handshakes_queued)' = 0 ] &&
    [ '$(metric "$DROPPED")' = 0 ]"

# ---- bounded and counted ----
WITNESS_RATE=50 WITNESS_MAX_MS=2000 witness_start 4
sleep 0.5
# the gauge, sampled every 20 ms while the burst lasts (bounded)
(
    for _ in $(seq 1 200); do
        [ -e "$TMP/stop" ] && break
        metric wtrelayd_handshakes_queued
        sleep 0.02
    done >"$TMP/queued"
) &
SAMPLER=$!
# 3 000 Initials from 100 addresses as fast as the sender goes (a burst in
# the socket's buffer): far more than handshakes can start meanwhile
timeout -k 2 60 nice -n 19 "$BUILD/initflood" --first 127.1.0.1 --sources 100 --count 3000 \
    --rate 100000 --linger 0.5 "$PORT" >"$TMP/flood.out" 2>"$TMP/flood.err"
printf 'hello\n' >"$TMP/hello"
# a new client meanwhile: its first Initial may be dropped, its
# retransmission gets in
check queue-new-client-served client /echo --bind 127.0.0.3 --send "$TMP/hello"
touch "$TMP/stop"
wait "$SAMPLER"
sed 's/^/    # /' "$TMP/flood.out"
echo "    # handshakes_queued samples: $(sort -n "$TMP/queued" | uniq -c | tr -s ' \n' ' ')"
echo "    # dropped: $(metric "$DROPPED")"
check queue-all-sent grep -q '^sent 3000 ' "$TMP/flood.out"
queue_bounded() {
    local max
    max=$(sort -n "$TMP/queued" | tail -n 1)
    [ -n "$max" ] || { echo "no samples"; return 1; }
    [ "$max" -le "$QMAX" ] || { echo "handshakes_queued reached $max (handshake_queue = $QMAX)"; return 1; }
}
check queue-bounded queue_bounded
check queue-overflow-counted bash -c "[ '$(metric "$DROPPED")' -gt 0 ]"
# what was dropped made no connection: connections made + dropped within
# what was sent (and the one client)
made_plus_dropped() {
    local made dropped
    made=$(metric wtrelayd_connections_total)
    dropped=$(metric "$DROPPED")
    [ $((made + dropped)) -le 3010 ] ||
        { echo "$made connections + $dropped dropped > 3000 Initials sent"; return 1; }
}
check queue-dropped-made-nothing made_plus_dropped
check queue-established-served witness_check

# ---- no starvation ----
# wait for the half-open handshakes of the burst to time out
for _ in $(seq 1 100); do
    [ "$(metric wtrelayd_handshakes_in_progress)" = 0 ] && break
    sleep 0.1
done
# 8 streams at once, back to back, for 8 s at most: a request or an answer
# in every loop turn
timeout -k 2 40 "$BUILD/wtbench" --insecure --json --mode rps -m 8 -n 1000000 -t 8 \
    --bind 127.0.0.2 "https://127.0.0.1:$PORT/echo" >"$TMP/busy.json" 2>"$TMP/busy.err" &
BUSY=$!
sleep 1
timeout -k 2 40 "$BUILD/wtbench" --insecure --json --mode sessions -c 40 --inflight 10 \
    --hold 0.1 -t 20 --bind 127.0.0.4 "https://127.0.0.1:$PORT/echo" >"$TMP/hs.json" 2>"$TMP/hs.err"
HS_RC=$?
# the busy client was still sending when the last session opened
BUSY_ALIVE=0
kill -0 "$BUSY" 2>/dev/null && BUSY_ALIVE=1
wait "$BUSY"
jnum() { sed -n "s/.*\"$2\":\([0-9.]*\).*/\1/p" "$1" | head -n 1; }
echo "    # beside $(jnum "$TMP/busy.json" rps) requests/s back to back: $(jnum "$TMP/hs.json" sessions_open) sessions, $(jnum "$TMP/hs.json" handshakes_per_s) handshakes/s"
check starve-busy-throughout test "$BUSY_ALIVE" = 1
check starve-sessions-opened bash -c "[ $HS_RC = 0 ] && [ '$(jnum "$TMP/hs.json" sessions_open)' = 40 ]"
# one handshake a loop turn: far above 10/s even on two shared cores (an
# idle-only start would open none while the busy client runs)
check starve-handshake-rate awk -v r="$(jnum "$TMP/hs.json" handshakes_per_s)" \
    'BEGIN { exit !(r + 0 >= 10) }'
# (it stops at -t with requests left: that is its one "error")
check starve-busy-clean bash -c "[ '$(jnum "$TMP/busy.json" mismatches)' = 0 ] &&
    [ '$(jnum "$TMP/busy.json" requests)' -gt 1000 ]"
check queue-empty-after bash -c "[ '$(metric wtrelayd_handshakes_queued)' = 0 ]"
it_finish
