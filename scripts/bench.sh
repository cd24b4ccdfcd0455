#!/usr/bin/env bash
# make bench: every figure next to a baseline measured in the same run, on
# this machine, over loopback; the results go to stdout and BENCHMARKS.md.
#
#   scripts/bench.sh [--quick]
#
# Baselines: ngtcp2's own HTTP/3 example (same ngtcp2/GnuTLS libraries)
# downloading a file of the same total size as our echo moves, and a plain
# UDP sendmmsg/recvmmsg blaster (tests/bench/udpblast) as the physical
# ceiling of loopback.  Targets (issue 4): bulk echo >= 90 % of the ngtcp2
# download rate; 10 000 idle sessions < 300 MB daemon RSS; datagram round
# trip p99 < 1 ms at 1 000/s.  Every run is bounded (counts and timeouts).
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
QUICK=0
[ "${1:-}" = "--quick" ] && QUICK=1
if [ $QUICK = 1 ]; then
    BULK_MB=256 RUNS=1 SESSIONS=1000 RPS_N=20000 DGRAMS=3000 IDLE_N=100
else
    BULK_MB=1024 RUNS=3 SESSIONS=10000 RPS_N=100000 DGRAMS=10000 IDLE_N=200
fi

log() { printf '%s\n' "$*" >&2; }
die() { log "bench: $*"; exit 1; }

# jget JSON KEY: a number or string field of a flat JSON line
jget() {
    printf '%s' "$1" | sed -n "s/.*\"$2\":\"\{0,1\}\([^\",}]*\).*/\1/p" | head -n 1
}
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }

[ -x "$BUILD/wtrelayd" ] && [ -x "$BUILD/wtbench" ] && [ -x "$BUILD/udpblast" ] ||
    die "build first: make all $BUILD/udpblast"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/wtrelayd-bench.XXXXXX")
DPID=
cleanup() {
    [ -n "$DPID" ] && kill "$DPID" 2>/dev/null && wait "$DPID" 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port() {
    local p
    for _ in $(seq 1 50); do
        p=$((20000 + RANDOM % 40000))
        if ! awk '{print $2}' /proc/net/udp /proc/net/udp6 | grep -qi ":$(printf %04X "$p")\$"; then
            echo "$p"
            return
        fi
    done
}

scripts/gen-dev-cert.sh "$TMP" >/dev/null 2>&1 || die "cannot make a certificate"
PORT=$(port)
cat >"$TMP/bench.ini" <<EOF
[server]
listen = 127.0.0.1:$PORT
cert = $TMP/cert.pem
key = $TMP/key.pem
log_level = warn
max_connections = 20000
max_sessions_per_connection = 16
max_streams_per_session = 1000
max_datagram_queue = 1024
idle_timeout = 120s

[route /echo]
handler = echo
EOF
# A fresh daemon for each memory figure: a heap that earlier runs grew
# would hide the growth.
start_daemon() {
    : >"$TMP/daemon.log"
    "$BUILD/wtrelayd" -c "$TMP/bench.ini" 2>"$TMP/daemon.log" &
    DPID=$!
    for _ in $(seq 1 50); do
        grep -q "listening" "$TMP/daemon.log" 2>/dev/null && break
        sleep 0.1
    done
    kill -0 "$DPID" 2>/dev/null || die "the daemon did not start: $(tail -n 3 "$TMP/daemon.log")"
}
stop_daemon() {
    PEAK=$(awk '/VmHWM/ {print $2}' "/proc/$DPID/status" 2>/dev/null)
    kill "$DPID" 2>/dev/null
    wait "$DPID" 2>/dev/null
    DPID=
}
start_daemon
URL="https://127.0.0.1:$PORT/echo"
wtbench() { timeout -k 5 300 "$BUILD/wtbench" --insecure --json "$@"; }

# ---- loopback UDP ceiling ----
log "udp ceiling (udpblast, 3 s each)..."
UDP=$("$BUILD/udpblast" -t 3) || die "udpblast failed"
UDPG=$("$BUILD/udpblast" -t 3 -g) || UDPG=""
log "udp round trip (udpblast -p), $DGRAMS at 1000/s..."
PING=$("$BUILD/udpblast" -p "$DGRAMS" -r 1000) || die "udpblast -p failed"

# ---- ngtcp2 example: h3 download of the same total size ----
log "ngtcp2 example h3 download, $BULK_MB MiB x $RUNS..."
NG=$(scripts/bench-baseline.sh "$BULK_MB" "$RUNS" "$RPS_N" "$IDLE_N") || die "bench-baseline.sh failed"
NG_RATE=$(jget "$NG" mbytes_per_s)
NG_RPS=$(jget "$NG" rps)
NG_TOOL=$(jget "$NG" tool)

# ---- bulk echo: BULK_MB in all, half each way, one stream ----
log "wtrelayd bulk echo, $BULK_MB MiB in all, x $RUNS..."
rates=()
for _ in $(seq 1 "$RUNS"); do
    J=$(wtbench -b "$((BULK_MB / 2))M" "$URL") || die "wtbench bulk failed: $J"
    rates+=("$(jget "$J" mbytes_per_s_both)")
done
BULK_RATE=$(median "${rates[@]}")
J=$(wtbench -c 4 -s 4 -m 8 -b 1M "$URL") || die "wtbench bulk many failed"
MANY_RATE=$(jget "$J" mbytes_per_s_both)

# ---- request/response ----
log "rps, $RPS_N requests, 100 streams at once..."
J=$(wtbench --mode rps -m 100 -n "$RPS_N" "$URL") || die "wtbench rps failed: $J"
RPS=$(jget "$J" rps)
RPS_P50=$(printf '%s' "$J" | sed -n 's/.*"p50":\([0-9.]*\).*/\1/p')
RPS_P99=$(printf '%s' "$J" | sed -n 's/.*"p99":\([0-9.]*\).*/\1/p')

# ---- datagram round trip ----
log "datagrams, $DGRAMS at 1000/s..."
J=$(wtbench --mode datagram -n "$DGRAMS" --rate 1000 --size 64 "$URL") || die "wtbench datagram failed: $J"
DG_P50=$(printf '%s' "$J" | sed -n 's/.*"p50":\([0-9.]*\).*/\1/p')
DG_P99=$(printf '%s' "$J" | sed -n 's/.*"p99":\([0-9.]*\).*/\1/p')
DG_MAX=$(printf '%s' "$J" | sed -n 's/.*"max":\([0-9.]*\).*/\1/p')
DG_LOSS=$(jget "$J" loss_pct)

# ---- idle sessions: memory ----
stop_daemon
BULK_PEAK=$PEAK
start_daemon
log "$SESSIONS idle sessions, one per connection..."
J=$(wtbench --mode sessions -c "$SESSIONS" -s 1 --hold 2 -t 240 --server-pid "$DPID" "$URL") ||
    die "wtbench sessions failed: $J"
S1_OPEN=$(jget "$J" sessions_open)
S1_RSS=$(jget "$J" server_rss_kb_after)
S1_PER=$(jget "$J" server_rss_bytes_per_session)
S1_HS=$(jget "$J" handshakes_per_s)
S1_BASE=$(jget "$J" server_rss_kb_before)
stop_daemon
start_daemon
log "$SESSIONS idle sessions, 16 per connection..."
J=$(wtbench --mode sessions -c "$((SESSIONS / 16))" -s 16 --hold 2 -t 240 --server-pid "$DPID" "$URL") ||
    die "wtbench sessions x16 failed: $J"
S16_OPEN=$(jget "$J" sessions_open)
S16_PER=$(jget "$J" server_rss_bytes_per_session)
S16_RSS=$(jget "$J" server_rss_kb_after)
stop_daemon

# ---- report ----
UDP_RATE=$(jget "$UDP" recv_mbytes_per_s)
UDPG_RATE=$(jget "$UDPG" recv_mbytes_per_s)
CPU=$(lscpu | sed -n 's/^Model name: *//p' | head -n 1)
ver() { dpkg-query -W -f '${Version}' "$1" 2>/dev/null || echo "?"; }
verdict() { [ "$1" = 1 ] && echo "met" || echo "missed"; }
mverdict() { [ $QUICK = 1 ] && echo "n/a (--quick: $SESSIONS sessions)" || verdict "$1"; }
T_BULK=$(awk -v r="$(ratio "$BULK_RATE" "$NG_RATE")" 'BEGIN { print (r >= 0.9) }')
# the target: 10 000 sessions under 300 MB, either layout
mem_ok() { awk -v k="$1" -v n="$2" 'BEGIN { print (n >= 10000 && k > 0 && k < 300 * 1024) }'; }
T_MEM1=$(mem_ok "$S1_RSS" "$S1_OPEN")
T_MEM16=$(mem_ok "$S16_RSS" "$S16_OPEN")
UDP_HALF=$(awk -v a="$MANY_RATE" 'BEGIN { printf "%.1f", a / 2 }')
T_DG=$(awk -v p="$DG_P99" 'BEGIN { print (p > 0 && p < 1000) }')

{
    echo "# Benchmarks"
    echo
    echo "Written by \`make bench\` (scripts/bench.sh$([ $QUICK = 1 ] && echo ' --quick')) on $(date -u +%Y-%m-%d\ %H:%M) UTC; do not edit by hand."
    echo "Every figure is measured in the same run as its baseline, on loopback."
    echo
    echo "Machine: $CPU, $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), Linux $(uname -r)."
    echo "Libraries: ngtcp2 $(ver libngtcp2-16), nghttp3 $(ver libnghttp3-9), GnuTLS $(ver libgnutls30), libev $(ver libev4)."
    echo
    echo "| what | wtrelayd | baseline | ratio | target |"
    echo "|---|---|---|---|---|"
    echo "| bulk echo, 1 stream, $BULK_MB MiB in all (sent + echoed), median of $RUNS | $BULK_RATE MB/s | $NG_TOOL: $NG_RATE MB/s download of $BULK_MB MiB | $(ratio "$BULK_RATE" "$NG_RATE") | >= 0.90: $(verdict "$T_BULK") |"
    echo "| bulk echo, 16 sessions x 8 streams x 1 MiB | $MANY_RATE MB/s both ways, $UDP_HALF MB/s each way | loopback UDP ceiling, one way: $UDP_RATE MB/s (1200-byte datagrams, sendmmsg)$([ -n "$UDPG_RATE" ] && echo ", $UDPG_RATE MB/s with GSO") | $(ratio "$UDP_HALF" "$UDP_RATE") (each way / sendmmsg) | |"
    echo "| request/response, 32 B echo streams, 100 at once, $RPS_N | $RPS req/s, p50 $RPS_P50 us, p99 $RPS_P99 us | ngtcp2 example: $NG_RPS GET/s of a 32-byte file, 100 at once | $(ratio "$RPS" "$NG_RPS") | |"
    echo "| datagram round trip at 1000/s, 64 B, $DGRAMS | p50 $DG_P50 us, p99 $DG_P99 us, max $DG_MAX us, loss $DG_LOSS % | plain UDP ping-pong between two processes at 1000/s: p50 $(jget "$PING" p50_us) us, p99 $(jget "$PING" p99_us) us | p99 $(ratio "$DG_P99" "$(jget "$PING" p99_us)")x | p99 < 1000 us: $(verdict "$T_DG") |"
    echo "| $SESSIONS idle sessions, 1 per connection | daemon RSS $((S1_RSS / 1024)) MB ($((S1_BASE / 1024)) MB before), $S1_PER bytes/session, $S1_HS handshakes/s ($S1_OPEN open) | ngtcp2 example server: $(jget "$NG" rss_bytes_per_idle_conn) bytes per idle HTTP/3 connection ($IDLE_N held) | $(ratio "$S1_PER" "$(jget "$NG" rss_bytes_per_idle_conn)") | < 300 MB: $(mverdict "$T_MEM1") |"
    echo "| $SESSIONS idle sessions, 16 per connection | daemon RSS $((S16_RSS / 1024)) MB, $S16_PER bytes/session ($S16_OPEN open) | | | < 300 MB: $(mverdict "$T_MEM16") |"
    echo
    echo "Daemon peak RSS during the throughput runs: $((BULK_PEAK / 1024)) MB (windows: 1 MiB per stream, 16 MiB per connection)."
    echo
    echo "Raw baseline lines:"
    echo
    echo '```'
    echo "$NG"
    echo "$UDP"
    [ -n "$UDPG" ] && echo "$UDPG"
    echo "$PING"
    echo '```'
} >"$TMP/BENCHMARKS.md"
cp "$TMP/BENCHMARKS.md" BENCHMARKS.md
cat BENCHMARKS.md
