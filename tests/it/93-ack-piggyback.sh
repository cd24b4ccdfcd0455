#!/usr/bin/env bash
# Request/response: the ACK of a request leaves in the packet that carries
# its answer, not alone after the delayed-ACK timer (settings.ack_thresh =
# 1 in quic_conn.c; ngtcp2 adds an ACK to a packet only once one is due).
# 10 connections x 10 streams, 10 000 echoed requests: the client sends its
# 10 requests of a connection in one packet and the daemon's 10 answers
# go back in one, so about 1 000 datagrams leave the daemon besides the
# handshakes; with ngtcp2's default of 2 it was 1.6-1.8 times that (an
# ACK or MAX_STREAMS alone after most answers), and more with the
# connections split over two workers.  Read from the admin endpoint's
# datagram counter, with workers = 1 and workers = 2.
. "$(dirname "$0")/lib.sh"
. "$IT_DIR/workers-lib.sh"
it_setup
command -v curl >/dev/null || it_abort "curl is missing (scripts/install-deps.sh --test)"

N=10000
M=10
# every datagram the daemon's workers sent so far (all samples summed)
sent() {
    metrics_get "$1"
    awk '$1 ~ /^wtrelayd_udp_datagrams_sent_total([{]|$)/ { s += $2; n++ }
         END { if (n) print s }' "$TMP/$1"
}
rps() {
    local out
    out=$(timeout -k 2 60 "$BUILD/wtbench" --insecure --json --mode rps -c 10 \
        -m $M -n $N -t 30 "https://$CLIENT_HOST:$PORT/echo" 2>"$TMP/bench.err")
    case "$out" in *"\"requests\":$N,"*'"errors":0,'*) ;;
    *) echo "wtbench: $out $(tail -n 1 "$TMP/bench.err")"; return 1 ;; esac
}
# piggybacked WORKERS: the datagrams the daemon sent for the run, within
# N/M answers x 1.6 + 100 (handshakes: ~5 a connection; a loop turn now
# and then reading a connection's requests in two packets, more often
# since the client acks as browsers do, every second packet: 1 200-1 400
# here; with the ACKs apart, 2 000-2 400)
piggybacked() {
    local d0 d1 d
    d0=$(sent m0.txt)
    rps || return 1
    d1=$(sent m1.txt)
    [ -n "$d0" ] && [ -n "$d1" ] || { echo "no datagram counter: '$d0' '$d1'"; return 1; }
    d=$((d1 - d0))
    echo "workers = $1: $d datagrams sent for $N requests ($M answers a packet: $((N / M)))" |
        tee "$TMP/figure"
    [ "$d" -ge $((N / M)) ] || { echo "$d datagrams: fewer than answer packets, the counter is off"; return 1; }
    [ "$d" -le $((N / M * 8 / 5 + 100)) ] ||
        { echo "$d datagrams for $N requests: ACKs or stream credit alone besides the answers"; return 1; }
}

# one process, no supervisor: its own admin endpoint
ADMIN="http://127.0.0.1:$(it_free_tcp_port)" || it_abort "no free TCP port"
start_daemon "max_streams_per_session = 100" "[admin]" "listen = ${ADMIN#http://}"
check answers-carry-acks-workers-1 piggybacked 1
echo "# $(cat "$TMP/figure" 2>/dev/null)"
stop_daemon
start_workers 2 "max_streams_per_session = 100"
check answers-carry-acks-workers-2 piggybacked 2
echo "# $(cat "$TMP/figure" 2>/dev/null)"
it_finish
