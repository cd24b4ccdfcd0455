#!/usr/bin/env bash
# The same-stack baseline for make bench: ngtcp2's own HTTP/3 example
# (Debian's ngtcp2-server/ngtcp2-client 1.11, GnuTLS build: gtlsserver,
# gtlsclient) downloading one file over loopback.
#
#   scripts/bench-baseline.sh [SIZE_MB] [RUNS] [REQUESTS] [IDLE]
#                                               (1024, 3, 100000, 200)
#
# One JSON line on stdout; progress on stderr.
# - download: each timed run is a whole client process: handshake, request
#   and SIZE_MB MiB of response body, with the body dropped (-q
#   --no-http-dump), so neither side is slowed by a disk or a terminal.  One
#   untimed run first downloads the file to check that every byte arrives.
# - requests: REQUESTS GETs of a 32-byte file on one connection, at most
#   100 at once (the example server's stream limit); the time of a 1-request
#   run (process start, handshake) is subtracted.
# - idle connections: IDLE clients connect at once and hold their request
#   back (--delay-stream); the server's RSS growth divided by IDLE is what
#   the example spends on an idle connection (one client process each, so
#   IDLE stays in the hundreds).
set -u
SIZE_MB=${1:-1024}
RUNS=${2:-3}
REQS=${3:-100000}
IDLE=${4:-200}
cd "$(dirname "$0")/.."

for b in gtlsserver gtlsclient; do
    command -v "$b" >/dev/null 2>&1 || [ -x "/usr/sbin/$b" ] ||
        { echo "bench-baseline: $b missing (scripts/install-deps.sh --bench)" >&2; exit 1; }
done
SERVER=$(command -v gtlsserver || echo /usr/sbin/gtlsserver)
CLIENT=$(command -v gtlsclient || echo /usr/bin/gtlsclient)

TMP=$(mktemp -d "${TMPDIR:-/tmp}/wtrelayd-baseline.XXXXXX")
SPID=
cleanup() {
    [ -n "$SPID" ] && kill "$SPID" 2>/dev/null && wait "$SPID" 2>/dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$TMP/key.pem" -out "$TMP/cert.pem" -days 2 -subj /CN=localhost \
    >/dev/null 2>&1 || { echo "bench-baseline: openssl failed" >&2; exit 1; }
mkdir -p "$TMP/www" "$TMP/dl"
head -c "$((SIZE_MB * 1048576))" /dev/urandom >"$TMP/www/file"
head -c 32 /dev/urandom >"$TMP/www/small"
BYTES=$((SIZE_MB * 1048576))

PORT=
for _ in $(seq 1 50); do
    p=$((20000 + RANDOM % 40000))
    if ! awk '{print $2}' /proc/net/udp | grep -qi ":$(printf %04X "$p")\$"; then
        PORT=$p
        break
    fi
done
[ -n "$PORT" ] || { echo "bench-baseline: no free port" >&2; exit 1; }
"$SERVER" -q -d "$TMP/www" 127.0.0.1 "$PORT" "$TMP/key.pem" "$TMP/cert.pem" \
    >"$TMP/server.log" 2>&1 &
SPID=$!
sleep 0.3
kill -0 "$SPID" 2>/dev/null || { echo "bench-baseline: server did not start" >&2; exit 1; }
URL="https://127.0.0.1:$PORT/file"

# the check run: the whole body arrives
timeout 120 "$CLIENT" -q --exit-on-all-streams-close --download "$TMP/dl" \
    127.0.0.1 "$PORT" "$URL" >/dev/null 2>&1
got=$(stat -c %s "$TMP/dl/file" 2>/dev/null || echo 0)
[ "$got" = "$BYTES" ] || { echo "bench-baseline: downloaded $got of $BYTES bytes" >&2; exit 1; }
rm -f "$TMP/dl/file"

times=()
for i in $(seq 1 "$RUNS"); do
    t0=$(date +%s.%N)
    timeout 120 "$CLIENT" -q --no-http-dump --exit-on-all-streams-close \
        127.0.0.1 "$PORT" "$URL" >/dev/null 2>&1 ||
        { echo "bench-baseline: client run $i failed" >&2; exit 1; }
    t1=$(date +%s.%N)
    times+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')")
    echo "bench-baseline: run $i: ${times[-1]} s" >&2
done
# wall time of a client run fetching /small N times
small_run() {
    local t0 t1
    t0=$(date +%s.%N)
    timeout 120 "$CLIENT" -q --no-http-dump --exit-on-all-streams-close -n "$1" \
        127.0.0.1 "$PORT" "https://127.0.0.1:$PORT/small" >/dev/null 2>&1 ||
        { echo "bench-baseline: $1-request run failed" >&2; exit 1; }
    t1=$(date +%s.%N)
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f", b - a }'
}
t1=$(small_run 1)
tn=$(small_run "$REQS")
rps=$(awk -v n="$REQS" -v a="$t1" -v b="$tn" 'BEGIN { d = b - a; printf "%.1f", (d > 0 ? (n - 1) / d : 0) }')
echo "bench-baseline: $REQS requests: $tn s (1 request: $t1 s)" >&2

rss() { awk '/VmRSS/ {print $2}' "/proc/$SPID/status"; }
rss0=$(rss)
cpids=()
for _ in $(seq 1 "$IDLE"); do
    timeout 60 "$CLIENT" -q --no-http-dump --delay-stream=10s --timeout=30s \
        127.0.0.1 "$PORT" "https://127.0.0.1:$PORT/small" >/dev/null 2>&1 &
    cpids+=($!)
done
sleep 5 # every handshake done, no request sent yet
rss1=$(rss)
kill "${cpids[@]}" 2>/dev/null
wait "${cpids[@]}" 2>/dev/null
per_conn=$(( (rss1 - rss0) * 1024 / IDLE ))
echo "bench-baseline: $IDLE idle connections: RSS $rss0 -> $rss1 kB" >&2

sorted=$(printf '%s\n' "${times[@]}" | sort -g)
best=$(echo "$sorted" | head -n 1)
median=$(echo "$sorted" | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
ver=$(dpkg-query -W -f '${Version}' ngtcp2-client 2>/dev/null || echo "?")
runs=$(IFS=,; echo "${times[*]}")
rate=$(awk -v b="$BYTES" -v t="$median" 'BEGIN { printf "%.1f", b / t / 1e6 }')
printf '{"tool":"ngtcp2 gtlsserver/gtlsclient %s","bytes":%s,"runs":[%s],"best_s":%s,"median_s":%s,"mbytes_per_s":%s,"requests":%s,"rps":%s,"idle_conns":%s,"rss_bytes_per_idle_conn":%s}\n' \
    "$ver" "$BYTES" "$runs" "$best" "$median" "$rate" "$REQS" "$rps" "$IDLE" "$per_conn"
