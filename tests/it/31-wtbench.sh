#!/usr/bin/env bash
# wtbench against the daemon (small, bounded runs): several sessions per
# connection, 1000 concurrent streams in one session, request/response,
# datagrams, many sessions; every echoed byte verified by wtbench itself.
. "$(dirname "$0")/lib.sh"
it_setup
start_daemon "max_streams_per_session = 1000" "max_sessions_per_connection = 8"

check bench-4-sessions-one-conn bench '"sessions_open":4,' '"streams_done":40,' '"mismatches":0' -- -s 4 -m 10 -b 256k
check bench-1000-streams-one-session bench '"sessions_open":1,' '"streams_done":1000,' -- -m 1000 -b 1k
check bench-8-sessions-2-conns bench '"sessions_open":16,' '"bytes_echoed":16777216,' -- -c 2 -s 8 -b 1M
check bench-rps bench '"requests":2000,' -- --mode rps -m 10 -n 2000
check bench-datagrams bench '"dgrams_sent":500,' -- --mode datagram -n 500 --rate 2000
check bench-sessions bench '"sessions_open":200,' -- --mode sessions -c 50 -s 4 --hold 0.2
bench_404() {
    timeout 20 "$BUILD/wtbench" --insecure -t 5 "https://127.0.0.1:$PORT/nope" >"$TMP/bench.out" 2>&1
    [ $? -eq 1 ] && grep -q "rejected: 404" "$TMP/bench.out" && return 0
    echo "wanted exit 1 and a rejection: $(tail -n 2 "$TMP/bench.out")"
    return 1
}
check bench-404 bench_404
check bench-sessions-logged log_has "session 12: opened /echo"
it_finish
