#!/usr/bin/env bash
# With workers = 2, a flood aimed at one worker (real client Initials whose
# DCID names worker V, so the steering program hands every one to V:
# initflood --worker V, 9 000 at 3 000/s from 200 loopback addresses,
# niced) costs a session on the other worker nothing that matters: its
# request/response p99 (100 requests a second over one connection)
# stays within 2x its quiet p99 plus 1 ms, every request is answered, and
# the other worker sees none of the flood (its connections, Retries and
# refusals unchanged) while V took it all (max_connections = 1000 refuses
# most of it once V holds 1000 half-open handshakes).  The quiet p99 is
# measured first, on a connection of its own, in the same run.
# What fails: without the steering program (WTRELAYD_NO_STEERING=1) the
# kernel's hash spreads the flood over both workers (seen: 1 000
# connections and 3 275 refusals on the session's worker).  The latency
# bound alone does not tell the two apart on this machine: with the flood
# aimed at the session's own worker its p99 stayed within it too (1.3x,
# 1.9x: the handshake queue, src/quic_hsq.c, lets a request wait for one
# handshake at most); the counters are what prove the isolation.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/workers-lib.sh"
command -v curl >/dev/null || it_abort "curl is missing (scripts/install-deps.sh --test)"
[ -x "$BUILD/initflood" ] || it_abort "$BUILD/initflood not built"
it_setup
start_workers 2 "shutdown_timeout = 1s"

# rps NAME SECS: one connection, 100 requests a second, JSON in $TMP/NAME.json
rps() {
    timeout -k 2 $(($2 + 30)) "$BUILD/wtbench" --insecure --json --mode rps -c 1 --rate 100 \
        -n $(($2 * 100)) -t $(($2 + 20)) "https://127.0.0.1:$PORT/echo" \
        >"$TMP/$1.json" 2>"$TMP/$1.err"
}
p99() { sed -n 's/.*"lat_us":{[^}]*"p99":\([0-9.]*\).*/\1/p' "$TMP/$1.json"; }
reqs() { sed -n 's/.*"requests":\([0-9]*\).*/\1/p' "$TMP/$1.json"; }
sum() { # NAME WORKER FILE: a counter's samples of one worker, summed
    awk -v n="wtrelayd_$1" -v w="worker=\"$2\"" '
        index($1, n "{") == 1 && index($1, w) { s += $2 } END { print s + 0 }' "$3"
}

rps quiet 4
check flood1-quiet-run bash -c "[ '$(reqs quiet)' = 400 ] || { cat '$TMP/quiet.json'; exit 1; }"

# the measured session first, then the flood at the worker it is not on
rps flooded 8 &
bpid=$!
holder=
for _ in $(seq 1 100); do
    metrics_get m.hold
    # the quiet run's connection is gone: only the measured one is open
    a=$(metric wtrelayd_connections_open 0 "$TMP/m.hold")
    b=$(metric wtrelayd_connections_open 1 "$TMP/m.hold")
    if [ "${a:-0}" -ge 1 ]; then holder=0; break; fi
    if [ "${b:-0}" -ge 1 ]; then holder=1; break; fi
    sleep 0.05
done
[ -n "$holder" ] || it_abort "the measured connection is on no worker"
victim=$((1 - holder))
sleep 1
metrics_get m.before
timeout -k 2 60 nice -n 19 "$BUILD/initflood" --worker "$victim" --first 127.4.0.1 \
    --sources 200 --count 9000 --rate 3000 --linger 0.5 "$PORT" >"$TMP/flood.out" 2>&1
wait "$bpid"
metrics_get m.after

check flood1-session-all-answered bash -c "[ '$(reqs flooded)' = 800 ] && grep -q '\"errors\":0,' '$TMP/flooded.json' || { cat '$TMP/flooded.json'; exit 1; }"
p99_within() {
    awk -v q="$(p99 quiet)" -v f="$(p99 flooded)" 'BEGIN {
        if (q == "" || f == "") exit 1
        printf "p99 %s us with the other worker flooded, quiet %s us (%.1fx)\n", f, q, f / q
        exit !(f <= 2 * q + 1000) }'
}
check flood1-p99-within p99_within
aimed() {
    local vc hc vr hr vf hf
    vc=$(($(sum connections_total "$victim" "$TMP/m.after") - $(sum connections_total "$victim" "$TMP/m.before")))
    vf=$(($(sum connections_refused_total "$victim" "$TMP/m.after") - $(sum connections_refused_total "$victim" "$TMP/m.before")))
    hf=$(($(sum connections_refused_total "$holder" "$TMP/m.after") - $(sum connections_refused_total "$holder" "$TMP/m.before")))
    vr=$(($(sum retry_sent_total "$victim" "$TMP/m.after") - $(sum retry_sent_total "$victim" "$TMP/m.before")))
    hc=$(($(sum connections_total "$holder" "$TMP/m.after") - $(sum connections_total "$holder" "$TMP/m.before")))
    hr=$(($(sum retry_sent_total "$holder" "$TMP/m.after") - $(sum retry_sent_total "$holder" "$TMP/m.before")))
    echo "flood: $(cat "$TMP/flood.out"); worker $victim: $vc connections, $vr retries, $vf refused; worker $holder: $hc, $hr, $hf"
    [ $((vc + vr + vf)) -ge 4500 ] && [ "$hc" = 0 ] && [ "$hr" = 0 ] && [ "$hf" = 0 ]
}
check flood1-aimed-at-one-worker aimed
check flood1-other-worker-alive kill -0 "$(worker_pid "$holder")"
check flood1-victim-alive kill -0 "$(worker_pid "$victim")"
echo "    $(p99_within); $(aimed | tail -n 1)"
it_finish
