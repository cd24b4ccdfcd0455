#!/usr/bin/env bash
# Churn: rounds of connections and sessions that open, move data and close.
# After each round every connection is freed (closing and draining periods
# over), and whatever they held is reused by the next round: the daemon's
# resident memory after the last round is about what it was after the
# first (a leak of 1 KiB a session would add 5 MB here).
. "$(dirname "$0")/lib.sh"
it_setup
start_daemon "max_sessions_per_connection = 8"

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$DAEMON_PID/status"; }

# all_freed: every connection the daemon accepted has been freed (closing
# and draining periods included), within 5 s
all_freed() {
    local n f _
    for _ in $(seq 1 100); do
        n=$(grep -c ": new connection" "$TMP/daemon.log")
        f=$(grep -c ": freed" "$TMP/daemon.log")
        [ "$n" -gt 0 ] && [ "$n" -eq "$f" ] && return 0
        sleep 0.05
    done
    echo "$n connections, $f freed"
    return 1
}

round() { # one round: sessions (idle), then bulk and rps on fresh ones
    bench '"sessions_open":1000,' '"errors":0' -- --mode sessions -c 250 -s 4 --hold 0.1 &&
        bench '"streams_done":64,' '"mismatches":0' -- -c 4 -s 4 -m 4 -b 64k &&
        bench '"requests":2000,' '"errors":0' -- --mode rps -c 2 -m 10 -n 2000
}

check churn-round-1 round
check churn-round-1-freed all_freed
RSS1=$(rss_kb)
for i in 2 3 4 5 6; do
    check "churn-round-$i" round
    check "churn-round-$i-freed" all_freed
done
RSS6=$(rss_kb)
bounded() {
    echo "daemon RSS after round 1: $RSS1 kB, after round 6: $RSS6 kB"
    [ -n "$RSS1" ] && [ -n "$RSS6" ] && [ "$RSS6" -le $((RSS1 + RSS1 / 10 + 2048)) ]
}
# (not under ASan: its quarantine keeps freed memory resident on purpose,
# and its own leak check at exit covers that build)
case "${BUILD##*/}" in
*asan*) ;;
*) check churn-memory-bounded bounded ;;
esac
check churn-then-echo probe echo-bidi /echo 65536
it_finish
