#!/usr/bin/env bash
# workers = 1 against workers = 2 in the same run (scripts/bench.sh makes
# BENCHMARKS.md rows of the figures; run alone to see them):
#
#   scripts/bench-workers.sh [HS_N RPS_N ROUNDS]
#
# Each round starts a fresh daemon of each shape, one after the other
# (the same moment's machine for both), and measures on it:
#   - handshakes/s: wtbench --mode sessions, HS_N connections (100 at once)
#   - rps: wtbench --mode rps, RPS_N 32-byte request/response streams on 10
#     connections x 10 at once
# and then the steering program's own cost: one worker under a supervisor
# (WTRELAYD_SUPERVISE=1) with the program attached, and the same without
# it (WTRELAYD_NO_STEERING=1): rps as above.  Those two knobs are for
# tests and this measurement only.  Medians of ROUNDS; every connection
# must survive (errors and failed sessions are summed).  wtbench runs on
# the same 2 cores as the daemon's workers: the figure that matters is
# that 2 workers are not slower, not that they are twice as fast.
# Output: key=value lines on stdout, progress on stderr.
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
HS_N=${1:-2000}
RPS_N=${2:-100000}
ROUNDS=${3:-3}
W=$(mktemp -d "${TMPDIR:-/tmp}/wtrelayd-workers.XXXXXX")
DPID=
cleanup() {
    [ -n "$DPID" ] && kill "$DPID" 2>/dev/null && wait "$DPID" 2>/dev/null
    rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
BENCH_NAME=bench-workers
. scripts/bench-lib.sh
bench_cert "$W"
PORT=$(port)
URL="https://127.0.0.1:$PORT/echo"

# start N [ENV...]: a daemon with workers = N, ready for clients
start() {
    local n=$1 _
    shift
    cat >"$W/w.ini" <<EOF
[server]
listen = 127.0.0.1:$PORT
cert = $W/cert.pem
key = $W/key.pem
workers = $n
max_connections = 20000
max_connections_per_address = 0
max_handshakes_per_address = 0
max_sessions_per_address = 0
connection_rate_per_address = 0
max_streams_per_session = 1000
idle_timeout = 120s

[route /echo]
handler = echo
EOF
    env "$@" "$BUILD/wtrelayd" -c "$W/w.ini" 2>"$W/daemon.log" &
    DPID=$!
    for _ in $(seq 1 100); do
        if grep -qE 'all [0-9]+ workers ready|^[^ ]+ info listening on udp' "$W/daemon.log"; then
            return 0
        fi
        kill -0 "$DPID" 2>/dev/null || die "the daemon did not start: $(tail -n 3 "$W/daemon.log")"
        sleep 0.05
    done
    die "the daemon was not ready in 5 s"
}
stop() {
    kill "$DPID" 2>/dev/null
    wait "$DPID" 2>/dev/null
    DPID=
}
# The load generator runs at nice -5 where allowed (root): on 2 cores,
# three busy processes (wtbench and 2 workers) would each get 2/3 of a
# core, and the single-threaded client, not the daemon, would set the
# pace (handshakes 0.75-0.83x with 2 workers at nice 0, while the daemon's
# CPU per handshake was the same for both shapes).  Ahead of the workers
# it stands for clients on other machines; both shapes get the same.
NICE=()
nice -n -5 true 2>/dev/null && NICE=(nice -n -5)
wtb() { timeout -k 5 300 "${NICE[@]}" "$BUILD/wtbench" --insecure --json "$@" "$URL"; }
# the CPU clock ticks of the daemon and its workers so far (live ones)
cpu_ticks() {
    local t=0 p
    for p in "$DPID" $(pgrep -P "$DPID"); do
        t=$((t + $(awk '{ print $14 + $15 }' "/proc/$p/stat" 2>/dev/null || echo 0)))
    done
    echo "$t"
}
HZ=$(getconf CLK_TCK)
BAD=0
# measure ARGS...: a wtbench run's JSON line in $J; what did not survive
# (errors, failed sessions, or no summary at all) counts in $BAD
J=
measure() {
    local e f
    J=$(wtb "$@") || log "wtbench $*: $(jget "$J" first_error)"
    e=$(jget "$J" errors)
    f=$(jget "$J" sessions_failed)
    if [ -z "$e" ] || [ -z "$f" ]; then
        BAD=$((BAD + 1))
    else
        BAD=$((BAD + e + f))
    fi
}

hs1=() hs2=() rps1=() rps2=() on=() off=() cpu1=() cpu2=() rcpu1=() rcpu2=()
for r in $(seq 1 "$ROUNDS"); do
    for n in 1 2; do
        log "round $r: workers = $n: $HS_N handshakes, $RPS_N requests..."
        start "$n"
        c0=$(cpu_ticks)
        measure --mode sessions -c "$HS_N" -s 1 -t 120
        c1=$(cpu_ticks)
        eval "hs$n+=(\"$(jget "$J" handshakes_per_s)\")"
        eval "cpu$n+=(\"$(awk -v c=$((c1 - c0)) -v hz="$HZ" -v n="$HS_N" 'BEGIN { printf "%.0f", c / hz / n * 1e6 }')\")"
        c0=$(cpu_ticks)
        measure --mode rps -c 10 -m 10 -n "$RPS_N" -t 120
        c1=$(cpu_ticks)
        eval "rps$n+=(\"$(jget "$J" rps)\")"
        eval "rcpu$n+=(\"$(awk -v c=$((c1 - c0)) -v hz="$HZ" -v n="$RPS_N" 'BEGIN { printf "%.1f", c / hz / n * 1e6 }')\")"
        stop
    done
    for s in on off; do
        log "round $r: one worker under the supervisor, steering $s: $RPS_N requests..."
        if [ $s = on ]; then
            start 1 WTRELAYD_SUPERVISE=1
        else
            start 1 WTRELAYD_SUPERVISE=1 WTRELAYD_NO_STEERING=1
        fi
        want="steered by connection ID"
        [ $s = off ] && want="NOT steered"
        grep -q "$want" "$W/daemon.log" ||
            die "steering $s: the daemon says otherwise: $(grep -m1 'sockets' "$W/daemon.log")"
        measure --mode rps -c 10 -m 10 -n "$RPS_N" -t 120
        eval "$s+=(\"$(jget "$J" rps)\")"
        stop
    done
done
echo "hs_1=$(median "${hs1[@]}")"
echo "hs_2=$(median "${hs2[@]}")"
echo "cpu_us_per_hs_1=$(median "${cpu1[@]}")"
echo "cpu_us_per_hs_2=$(median "${cpu2[@]}")"
echo "cpu_us_per_req_1=$(median "${rcpu1[@]}")"
echo "cpu_us_per_req_2=$(median "${rcpu2[@]}")"
echo "client_nice=${NICE[2]:-0}"
echo "rps_1=$(median "${rps1[@]}")"
echo "rps_2=$(median "${rps2[@]}")"
echo "rps_steer_on=$(median "${on[@]}")"
echo "rps_steer_off=$(median "${off[@]}")"
# every run's figure, in order, for the spread
echo "all_hs=${hs1[*]} / ${hs2[*]}"
echo "all_rps=${rps1[*]} / ${rps2[*]}"
echo "all_steer=${on[*]} / ${off[*]}"
echo "bad=$BAD"
echo "runs=$ROUNDS"
