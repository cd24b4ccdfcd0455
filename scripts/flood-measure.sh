#!/usr/bin/env bash
# A handshake flood against a running daemon, measured (tests/it/76-flood.sh
# asserts on the figures; scripts/bench.sh makes a BENCHMARKS.md row of them).
#
#   scripts/flood-measure.sh PORT ADMIN_PORT DAEMON_PID
#
# The daemon listens on 127.0.0.1:PORT with an /echo route and its admin
# endpoint on 127.0.0.1:ADMIN_PORT.  Steps, each bounded in count and time:
#   1. quiet: wtbench request/response (FLOOD_RPS a second, FLOOD_REQS
#      requests) from 127.0.0.2: its p99;
#   2. flood: tests/tools/initflood sends FLOOD_COUNT client Initials at
#      FLOOD_RATE a second from FLOOD_SOURCES addresses (127.1.0.1 on), never
#      answered, while the same request/response runs again from 127.0.0.2
#      and 20 new sessions from 127.0.0.4 handshake (wtbench sessions): the
#      p99, the handshakes/s served, the daemon's peak RSS, the highest
#      handshakes in progress, Retry packets and refusals;
#   3. after: the half-open handshakes time out (handshake_timeout), then a
#      new client from 127.0.0.3 must get no Retry (auto mode disengaged).
# Output: key=value lines on stdout (figures), progress on stderr.
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
PORT=$1 APORT=$2 DPID=$3
SOURCES=${FLOOD_SOURCES:-500}
COUNT=${FLOOD_COUNT:-6000}
RATE=${FLOOD_RATE:-2000}
RPS=${FLOOD_RPS:-200}
REQS=${FLOOD_REQS:-600}
OVERLAP=${FLOOD_OVERLAP:-1}
URL="https://127.0.0.1:$PORT/echo"
W=$(mktemp -d "${TMPDIR:-/tmp}/wtrelayd-flood.XXXXXX")
trap 'rm -rf "$W"' EXIT

metric() {
    curl -s --max-time 5 "http://127.0.0.1:$APORT/metrics" |
        awk -v s="$1" '$1 == s { print $2 }'
}
metric_sum() { # PREFIX: the sum of every series of a family
    curl -s --max-time 5 "http://127.0.0.1:$APORT/metrics" |
        awk -v p="$1" 'index($1, p) == 1 { s += $2 } END { print s + 0 }'
}
rss() { awk '/VmRSS/ {print $2}' "/proc/$DPID/status" 2>/dev/null; }
# the daemon's user + system CPU, in clock ticks (fields 14, 15: the
# command name in field 2 has no spaces here)
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$DPID/stat" 2>/dev/null; }
p99() { sed -n 's/.*"lat_us":{[^}]*"p99":\([0-9.]*\).*/\1/p' "$1"; }
jnum() { sed -n "s/.*\"$2\":\([0-9.]*\).*/\1/p" "$1" | head -n 1; }
rps() {
    timeout -k 2 60 "$BUILD/wtbench" --insecure --json --mode rps --rate "$RPS" -n "$REQS" \
        -t 40 --bind 127.0.0.2 "$URL" >"$1" 2>"$1.err"
}

echo "flood: quiet run ($REQS requests at $RPS/s)..." >&2
rps "$W/quiet.json"
echo "quiet_p99_us=$(p99 "$W/quiet.json")"
echo "quiet_errors=$(jnum "$W/quiet.json" errors)"

RSS0=$(rss)
# The flood's sender, the new clients' load generator and the samplers
# run at nice 19: they stand for an attacker, other users and a monitor,
# all on other machines, and on two shared cores must not take a core from
# the daemon or the measured client when those wake up.  The measured
# client runs at the daemon's nice, in the quiet run as under the flood.
# The Initials are all made first (seconds), then sent on a line to its
# stdin.  FLOOD_OVERLAP=1 (default): the flood starts once the session
# runs, so the flood's first burst of handshakes (retry_handshakes of them,
# before Retry engages) falls inside the measured run: with
# handshake_threads = 0 each request that meets it waits for one
# handshake's first flight (handshake_start_us), on a quiet machine 1.5x
# the quiet p99 itself; with the handshake thread, for the loop's few
# microseconds of linking one.  FLOOD_OVERLAP=0: the session starts
# 0.2 s into the flood, after that burst (what this script did first).
mkfifo "$W/go"
exec 3<>"$W/go"
timeout -k 2 120 nice -n 19 "$BUILD/initflood" --first 127.1.0.1 --sources "$SOURCES" --count "$COUNT" \
    --rate "$RATE" --linger 0.2 --wait "$PORT" <"$W/go" >"$W/flood.out" 2>"$W/flood.err" &
FLOOD=$!
for _ in $(seq 1 600); do
    grep -q '^ready' "$W/flood.err" 2>/dev/null && break
    sleep 0.1
done
RETRY0=$(metric wtrelayd_retry_sent_total)
CONNS0=$(metric wtrelayd_connections_total)
REF0=$(metric_sum wtrelayd_connections_refused_total)
SESS0=$(metric_sum wtrelayd_sessions_open)
STARTED0=$(metric wtrelayd_handshakes_started_total)
STARTS0=$(metric wtrelayd_handshake_start_seconds_total)
THREAD0=$(metric wtrelayd_handshake_thread_seconds_total)
QDROP0=$(metric 'wtrelayd_connections_refused_total{reason="handshake_queue"}')
CPU0=$(cpu_ticks)
T0=$(date +%s.%N)
echo "flood: $COUNT Initials at $RATE/s from $SOURCES addresses..." >&2
# samplers: RSS and handshakes in progress, every 100 ms, bounded
(
    renice -n 19 -p $BASHPID >/dev/null 2>&1
    for _ in $(seq 1 $((COUNT / RATE * 10 + 400))); do
        [ -e "$W/stop" ] && break
        echo "$(rss) $(metric wtrelayd_handshakes_in_progress)"
        sleep 0.1
    done >"$W/samples"
) &
SAMPLER=$!
if [ "$OVERLAP" = 1 ]; then
    rps "$W/flood.json" &
    RPSPID=$!
    # its session open (5 s at most), then the flood
    for _ in $(seq 1 100); do
        [ "$(metric_sum wtrelayd_sessions_open)" -gt "$SESS0" ] && break
        sleep 0.05
    done
    echo go >&3
else
    # the session starts 0.2 s into the flood (Retry answers the rest)
    echo go >&3
    sleep 0.2
    rps "$W/flood.json" &
    RPSPID=$!
fi
exec 3>&-
# new clients beside it
timeout -k 2 60 nice -n 19 "$BUILD/wtbench" --insecure --json --mode sessions -c 20 --inflight 5 \
    --hold 0.1 -t 30 --bind 127.0.0.4 "$URL" >"$W/hs.json" 2>"$W/hs.err"
wait "$RPSPID"
wait "$FLOOD"
CPU1=$(cpu_ticks)
T1=$(date +%s.%N)
STARTED1=$(metric wtrelayd_handshakes_started_total)
STARTS1=$(metric wtrelayd_handshake_start_seconds_total)
THREAD1=$(metric wtrelayd_handshake_thread_seconds_total)
QDROP1=$(metric 'wtrelayd_connections_refused_total{reason="handshake_queue"}')
RETRY1=$(metric wtrelayd_retry_sent_total)
CONNS1=$(metric wtrelayd_connections_total)
REF1=$(metric_sum wtrelayd_connections_refused_total)
touch "$W/stop"
wait "$SAMPLER"
FLOODLINE=$(cat "$W/flood.out")
SENT=$(printf '%s' "$FLOODLINE" | sed -n 's/^sent \([0-9]*\) in.*/\1/p')
SECS=$(printf '%s' "$FLOODLINE" | sed -n 's/^sent [0-9]* in \([0-9.]*\) s.*/\1/p')
echo "flood_line=$FLOODLINE"
echo "flood_p99_us=$(p99 "$W/flood.json")"
echo "flood_errors=$(jnum "$W/flood.json" errors)"
echo "flood_requests=$(sed -n 's/.*"lat_us":{"n":\([0-9]*\).*/\1/p' "$W/flood.json")"
echo "handshakes_per_s=$(jnum "$W/hs.json" handshakes_per_s)"
echo "handshake_sessions=$(jnum "$W/hs.json" sessions_open)"
echo "rss_before_kb=$RSS0"
echo "rss_peak_kb=$(awk '$1 > m { m = $1 } END { print m + 0 }' "$W/samples")"
echo "handshakes_peak=$(awk '$2 > m { m = $2 } END { print m + 0 }' "$W/samples")"
echo "retry_sent=$((RETRY1 - RETRY0))"
echo "refused=$((REF1 - REF0))"
echo "queue_dropped=$((QDROP1 - QDROP0))"
# what one handshake held the loop for, on average: the longest a request
# of an established connection should wait for one (handshake_threads = 0:
# its whole first flight; else linking it), and what the handshake
# threads spent on one (0 without them)
awk -v n="$((STARTED1 - STARTED0))" -v a="$STARTS0" -v b="$STARTS1" \
    -v c="${THREAD0:-0}" -v d="${THREAD1:-0}" \
    'BEGIN { printf "handshakes_started=%d\nhandshake_start_us=%.0f\nhandshake_thread_us=%.0f\n", n, (n > 0 ? (b - a) / n * 1e6 : 0), (n > 0 ? (d - c) / n * 1e6 : 0) }'
awk -v c="$((CPU1 - CPU0))" -v hz="$(getconf CLK_TCK)" -v a="$T0" -v b="$T1" \
    'BEGIN { if (b > a) printf "daemon_cpu_pct=%.0f\n", c / hz / (b - a) * 100 }'
# every Initial of the flood that made no connection was answered with a
# Retry or a refusal, or dropped: no state either way
MADE=$((CONNS1 - CONNS0))
echo "connections_made=$MADE"
echo "initials_sent=${SENT:-0}"
awk -v n="${SENT:-0}" -v s="${SECS:-0}" -v m="$MADE" -v r="$((RETRY1 - RETRY0))" \
    'BEGIN { if (s > 0) printf "initials_per_s=%.0f\nstateless_per_s=%.0f\nretry_per_s=%.0f\n", n / s, (n - m) / s, r / s }'

echo "flood: waiting for the half-open handshakes to time out..." >&2
for _ in $(seq 1 150); do
    [ "$(metric wtrelayd_handshakes_in_progress)" = 0 ] && break
    sleep 0.1
done
echo "handshakes_after=$(metric wtrelayd_handshakes_in_progress)"
RETRY2=$(metric wtrelayd_retry_sent_total)
printf 'hello\n' >"$W/hello"
timeout -k 2 30 "$BUILD/wtclient" --insecure --timeout 10 --bind 127.0.0.3 --send "$W/hello" \
    "$URL" >"$W/after.out" 2>"$W/after.err"
echo "after_client_rc=$?"
echo "after_retry_sent=$(($(metric wtrelayd_retry_sent_total) - RETRY2))"
