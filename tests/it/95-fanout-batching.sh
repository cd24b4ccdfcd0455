#!/usr/bin/env bash
# A room's fan-out to members on their own connections: the packets of
# every member written in one loop turn leave together in sendmmsg calls
# (quic_endpoint_tx_flush), not one system call per connection, and every
# copy still arrives byte-exact.  Read from the admin endpoint's counters
# of datagrams sent and the system calls that sent them.
. "$(dirname "$0")/lib.sh"
it_setup
command -v curl >/dev/null || it_abort "curl is missing (scripts/install-deps.sh --test)"
APORT=$(it_free_tcp_port) || it_abort "no free TCP port"
start_daemon "max_datagram_queue = 1024" "[admin]" "listen = 127.0.0.1:$APORT" \
    "[route /chat]" "handler = broadcast" "tag = yes" "max_members = 1000"

metrics_get() { curl -s --max-time 5 "http://127.0.0.1:$APORT/metrics" >"$TMP/$1"; }
metric() { awk -v s="wtrelayd_$2" '$1 == s { print $2 }' "$TMP/$1"; }

# 200 members, one per connection, one sender: 40 datagrams of 64 B at
# 50/s, 7 960 copies; datagrams may be dropped (never on a quiet
# loopback, a few under load), never corrupted
fanout() {
    local out
    out=$(timeout -k 2 120 "$BUILD/wtbench" --insecure --json --mode broadcast --tagged \
        -c 200 -s 1 -n 40 --rate 50 --size 64 --min-ratio 0.95 -t 60 \
        "https://$CLIENT_HOST:$PORT/chat?room=fan" 2>"$TMP/bench.err")
    local rc=$?
    printf '%s\n' "$out" >"$TMP/fan.json"
    [ $rc -eq 0 ] || { echo "wtbench exit $rc: $out $(tail -n 1 "$TMP/bench.err")"; return 1; }
    case "$out" in *'"deliveries_expected":7960,'*'"duplicates":0,"corrupt":0,'*'"tags":"ok"'*) ;;
    *) echo "unexpected: $out"; return 1 ;; esac
}
metrics_get m1.txt
check fanout-delivered fanout
metrics_get m2.txt

# every copy is a packet of its own connection (two copies share one
# only when a member's queue held both): thousands of datagrams; one
# system call per connection written would be about as many calls, the
# batches make it a small fraction (a fan-out of 200: 4 sendmmsg calls)
batched() {
    local d0 d1 c0 c1 dd dc
    d0=$(metric m1.txt udp_datagrams_sent_total)
    d1=$(metric m2.txt udp_datagrams_sent_total)
    c0=$(metric m1.txt udp_send_calls_total)
    c1=$(metric m2.txt udp_send_calls_total)
    [ -n "$d0" ] && [ -n "$d1" ] && [ -n "$c0" ] && [ -n "$c1" ] ||
        { echo "counters missing: $d0 $d1 $c0 $c1"; return 1; }
    dd=$((d1 - d0))
    dc=$((c1 - c0))
    echo "datagrams sent $dd, in $dc system calls"
    [ "$dd" -ge 4000 ] || { echo "only $dd datagrams for 7 960 copies"; return 1; }
    [ $((dc * 4)) -le "$dd" ] || { echo "$dc calls for $dd datagrams: not batched"; return 1; }
}
check fanout-sends-batched batched
it_finish
