#!/usr/bin/env bash
# wtbench --mode broadcast against the broadcast handler (small, bounded
# runs): 50 members each sending 1 000 messages to the room as uni streams,
# bidi streams and datagrams, every delivered byte verified by wtbench
# (tagged: the member id is stripped and checked); a member that never
# reads does not slow the others and is dropped as the route says.
. "$(dirname "$0")/lib.sh"
it_setup
# The default max_streams_per_session (256): a member's relayed copies
# (bursts of 4 900 here) count apart from the streams it opens, so its
# own messages are never refused for them (BUFFERED_STREAM_REJECTED).
start_daemon "max_sessions_per_connection = 16" \
    "max_datagram_queue = 1024" \
    "[route /chat]" "handler = broadcast" "tag = yes" "max_members = 10000" \
    "max_queue_bytes = 16M" \
    "[route /slow]" "handler = broadcast" "tag = yes" "max_queue_bytes = 64k" \
    "slow = drop" \
    "[route /slowd]" "handler = broadcast" "tag = yes" "max_queue_bytes = 64k" \
    "slow = disconnect"

# bc WANT... -- WTBENCH-ARGS... URL-PATH: wtbench --mode broadcast exits 0
# and its JSON summary (kept in $TMP/bc.json) contains every WANT.
bc() {
    local wants=() out w
    while [ "$1" != "--" ]; do wants+=("$1"); shift; done
    shift
    out=$(timeout -k 2 150 "$BUILD/wtbench" --insecure --json --mode broadcast --tagged -t 40 \
        "${@:1:$#-1}" "https://$CLIENT_HOST:$PORT${*: -1}" 2>"$TMP/bc.err")
    local rc=$?
    printf '%s\n' "$out" >"$TMP/bc.json"
    [ $rc -eq 0 ] || { echo "wtbench exit $rc: $out $(tail -n 1 "$TMP/bc.err")"; return 1; }
    for w in "${wants[@]}"; do
        case "$out" in *"$w"*) ;; *) echo "wanted $w in $out"; return 1 ;; esac
    done
}
# jnum FIELD [FILE]: a number of the last JSON summary ("stalled" fields too)
jnum() {
    sed -n "s/.*\"$1\":\"\{0,1\}\([0-9.x]*\).*/\1/p" "${2:-$TMP/bc.json}" | head -n 1
}

# 50 members, each sending 1 000 messages: 2 450 000 deliveries, all of
# them, byte-exact and in order per stream (about 25 s)
check bc-streams-all-delivered bc '"deliveries_expected":2450000,' '"deliveries":2450000,' \
    '"ratio":1.000000' '"duplicates":0,' '"corrupt":0,' '"tags":"ok"' -- \
    -c 50 --senders 50 -n 1000 -m 10 --kind stream --size 200 -t 120 "/chat?room=streams"
check bc-bidi-all-delivered-and-acked bc '"deliveries":49000,' '"acks":1000,' \
    '"ratio":1.000000' '"tags":"ok"' -- \
    -c 50 --senders 50 -n 20 -m 5 --kind bidi --size 100 "/chat?room=bidi"
# datagrams may be dropped (that is what datagrams are), never corrupted;
# paced, nearly all arrive
check bc-datagrams-verified bc '"messages_sent":5000,' '"duplicates":0,' \
    '"corrupt":0,' -- \
    -c 10 -s 5 --senders 50 -n 100 --rate 100 --kind dgram --min-ratio 0.9 "/chat?room=dgrams"
check bc-streams-large bc '"deliveries":36,' '"ratio":1.000000' -- \
    -c 5 -s 2 --senders 4 -n 1 --kind stream --size 300k "/chat?room=large"

# A stalled member (it never reads: no flow-control credit comes back) on
# a route with max_queue_bytes = 64k, slow = drop: the others finish as
# fast as without it, and the daemon drops its copies.  Small messages
# for 2 s: each copy lags little, the stalled member's copies together
# pass the limit, and it takes nothing for over a second (the grace).
stall_run() { # NAME STALL [ROUTE [WANT...]]
    bc '"ratio":1.000000' '"corrupt":0,' "${@:4}" -- -c 20 --senders 4 -n 400 --rate 200 \
        --kind stream --size 1k -m 20 --stall "$2" --stall-window 32k --hold 0.3 \
        "/${3:-slow}?room=$1" || return 1
    cp "$TMP/bc.json" "$TMP/$1.json"
}
check bc-stall-baseline stall_run nostall 0
check bc-stall-run stall_run stall 1
stall_not_slower() {
    local a b
    a=$(jnum elapsed_s "$TMP/nostall.json")
    b=$(jnum elapsed_s "$TMP/stall.json")
    [ -n "$a" ] && [ -n "$b" ] || { echo "no elapsed_s"; return 1; }
    awk -v a="$a" -v b="$b" 'BEGIN { exit !(b <= 2 * a + 1) }' ||
        { echo "with a stalled member $b s, without $a s"; return 1; }
}
check bc-stall-does-not-slow-others stall_not_slower
stall_dropped() {
    local whole due
    whole=$(jnum streams_whole "$TMP/stall.json")
    due=$(jnum streams_due "$TMP/stall.json")
    [ -n "$whole" ] && [ "$due" = 1600 ] && [ "$whole" -lt "$due" ] ||
        { echo "the stalled member took $whole of $due messages whole"; return 1; }
    grep -qE 'left room "stall" \(0 datagrams, [1-9][0-9]* streams' "$TMP/daemon.log" ||
        { echo "the daemon log shows no copies dropped for the stalled member"; return 1; }
}
check bc-stall-dropped stall_dropped
# slow = disconnect: the stalled member's session is closed; its CLOSE
# capsule waits for flow-control credit the member never gives, so the
# CONNECT stream is reset after a second (no code reaches it)
check bc-stall-disconnected stall_run stalld 1 slowd '"closed":1,'
check bc-stall-disconnect-logged log_has 'over max_queue_bytes (65536), disconnected'
check bc-stall-connect-reset log_has 'CLOSE capsule not acknowledged'

bc_rejected() {
    timeout 20 "$BUILD/wtbench" --insecure --mode broadcast -c 2 --senders 5 \
        "https://127.0.0.1:$PORT/chat" >"$TMP/bench.out" 2>&1
    [ $? -eq 2 ] && grep -q "only 2 members" "$TMP/bench.out" && return 0
    echo "wanted exit 2: $(tail -n 1 "$TMP/bench.out")"
    return 1
}
check bc-bad-arguments bc_rejected
it_finish
