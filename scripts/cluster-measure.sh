#!/usr/bin/env bash
# Rooms across daemons ([cluster], issue 13), measured: the same broadcast
# room on one daemon and spread over three daemons sharing one Redis, in
# the same run (scripts/bench.sh makes a BENCHMARKS.md row of it; runs
# alone too).
#
#   scripts/cluster-measure.sh CERT KEY
#
# Starts its own redis-server (free loopback port, no persistence) and
# three daemons (A, B, C: [cluster] on, a /chat route with tag = yes and
# max_queue_bytes = 4M), then wtbench --mode broadcast, 30 members:
#   dgram:  1 sender, CLUSTER_DGRAMS datagrams of 64 B at 500/s: latency;
#   stream: 3 senders, CLUSTER_STREAMS uni streams of 4 KiB each, as fast
#           as allowed: deliveries/s and latency;
# each once with every member on daemon A ("one_*") and once with the
# members round robin over A, B and C ("cross_*": wtbench --also; 2/3 of
# the deliveries go through Redis, the sender's daemon serves the rest).
# Both with --settle 0.5 (every daemon subscribed before the first
# message).  Output: key=JSON lines on stdout, progress on stderr; every
# run bounded in count and time.
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
CERT=$1 KEY=$2
DGRAMS=${CLUSTER_DGRAMS:-2000}
STREAMS=${CLUSTER_STREAMS:-300}
W=$(mktemp -d "${TMPDIR:-/tmp}/wtrelayd-cluster.XXXXXX")
PIDS=
cleanup() {
    for p in $PIDS; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
    rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
log() { printf '%s\n' "$*" >&2; }

free_port() { # PROTO (udp|tcp)
    local p
    for _ in $(seq 1 50); do
        p=$((20000 + RANDOM % 40000))
        if ! awk '{print $2}' /proc/net/"$1" /proc/net/"$1"6 2>/dev/null |
            grep -qi ":$(printf %04X "$p")\$"; then
            echo "$p"
            return 0
        fi
    done
    return 1
}

command -v redis-server >/dev/null || { log "cluster-measure: no redis-server"; exit 1; }
RPORT=$(free_port tcp)
redis-server --port "$RPORT" --bind 127.0.0.1 --save '' --appendonly no >"$W/redis.log" 2>&1 &
PIDS="$PIDS $!"
for _ in $(seq 1 100); do
    redis-cli -p "$RPORT" ping 2>/dev/null | grep -q PONG && break
    sleep 0.05
done

declare -A DPORT
for n in A B C; do
    DPORT[$n]=$(free_port udp)
    cat >"$W/$n.ini" <<EOF
[server]
listen = 127.0.0.1:${DPORT[$n]}
cert = $CERT
key = $KEY
log_level = warn
max_connections_per_address = 0
max_handshakes_per_address = 0
max_sessions_per_address = 0
connection_rate_per_address = 0
max_datagram_queue = 1024
max_streams_per_session = 1000

[cluster]
redis = redis://127.0.0.1:$RPORT
node_id = $n

[route /chat]
handler = broadcast
tag = yes
max_queue_bytes = 4M
EOF
    "$BUILD/wtrelayd" -c "$W/$n.ini" 2>"$W/$n.log" &
    PIDS="$PIDS $!"
done
for n in A B C; do
    for _ in $(seq 1 50); do
        awk '{print $2}' /proc/net/udp | grep -qi ":$(printf %04X "${DPORT[$n]}")\$" && break
        sleep 0.1
    done
done
sleep 0.5 # their Redis connections

url() { echo "https://127.0.0.1:${DPORT[$1]}/chat?room=$2"; }
run() { # KEY ROOM CROSS(0|1) WTBENCH-ARGS...
    local key=$1 room=$2 cross=$3 out also=()
    shift 3
    [ "$cross" = 1 ] && also=(--also "$(url B "$room")" --also "$(url C "$room")")
    out=$(timeout -k 5 150 "$BUILD/wtbench" --insecure --json --mode broadcast --tagged \
        -t 120 --settle 0.5 "$@" "${also[@]}" "$(url A "$room")" 2>"$W/bc.err")
    [ -n "$out" ] || out="{\"errors\":1,\"first_error\":\"wtbench: $(tail -n 1 "$W/bc.err" | tr -d '"')\"}"
    echo "$key=$out"
}
log "cluster: 30 members, datagrams at 500/s, one daemon then three..."
run one_dgram d1 0 -c 30 -n "$DGRAMS" --rate 500 --size 64
run cross_dgram d3 1 -c 30 -n "$DGRAMS" --rate 500 --size 64
log "cluster: 30 members, 3 senders of 4 KiB streams, one daemon then three..."
run one_stream s1 0 -c 30 --senders 3 -n "$STREAMS" --kind stream --size 4096
run cross_stream s3 1 -c 30 --senders 3 -n "$STREAMS" --kind stream --size 4096
