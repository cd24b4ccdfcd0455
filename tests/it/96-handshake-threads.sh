#!/usr/bin/env bash
# Handshake threads (handshake_threads, src/quic_hsq.c + src/offload.c):
# new connections' first flights are made off the loop thread and the
# connections handed back to it.  Many handshakes at once from several
# addresses all complete, and the metrics count each once; a reload
# (SIGHUP) and a drain (SIGTERM) that meet handshakes in the threads are
# clean (under ASan too: no leak, no race on what the loop frees);
# handshake_threads = 0 still serves, on the loop alone.
. "$(dirname "$0")/lib.sh"
it_setup
command -v curl >/dev/null || it_abort "curl is missing (scripts/install-deps.sh --test)"
[ -x "$BUILD/wtbench" ] || it_abort "$BUILD/wtbench not built"

APORT=$(it_free_tcp_port) || it_abort "no free TCP port"
metric() {
    curl -s --max-time 5 "http://127.0.0.1:$APORT/metrics" |
        awk -v s="wtrelayd_$1" '$1 == s { print $2 }'
}
# wtbench sessions from one address: N connections, K handshakes at once
sessions() { # ADDR N K OUT
    timeout -k 2 120 "$BUILD/wtbench" --insecure --json --mode sessions -c "$2" \
        --inflight "$3" -s 1 --hold 0.05 -t 90 --bind "$1" \
        "https://127.0.0.1:$PORT/echo" >"$4" 2>"$4.err"
}
jnum() { sed -n "s/.*\"$2\":\([0-9.]*\).*/\1/p" "$1" | head -n 1; }
all_open() { # N FILES...: each run opened N sessions, none failed
    local n=$1 f
    shift
    for f in "$@"; do
        [ "$(jnum "$f" sessions_open)" = "$n" ] && [ "$(jnum "$f" sessions_failed)" = 0 ] ||
            { echo "$f: $(head -c 300 "$f") $(tail -n 1 "$f.err")"; return 1; }
    done
}
# (info: a debug line per packet would be the test's own load)
start_daemon "log_level = info" "handshake_threads = 2" "max_connections = 5000" \
    "[admin]" "listen = 127.0.0.1:$APORT"

# ---- one at a time, on an idle daemon: the hand-back wakes the loop ----
# (a connection handed back while the loop slept waited for the next
# event: the client's retransmission, ~1 s later; a handshake takes a few
# milliseconds)
one_quick() {
    local t0 t1 i
    printf 'hello\n' >"$TMP/hello"
    for i in 1 2 3 4 5; do
        t0=$(date +%s%N)
        timeout 10 "$BUILD/wtclient" --insecure --timeout 5 --send "$TMP/hello" \
            "https://127.0.0.1:$PORT/echo" >"$TMP/one.out" 2>"$TMP/one.err" ||
            { echo "wtclient: $(tail -n 1 "$TMP/one.err")"; return 1; }
        t1=$(date +%s%N)
        echo "session $i in $(((t1 - t0) / 1000000)) ms"
        [ $(((t1 - t0) / 1000000)) -lt 800 ] || return 1
        sleep 0.2
    done
}
check one-at-a-time-quick one_quick

# ---- many at once, from four addresses: all complete, counted once ----
C0=$(metric connections_total)
H0=$(metric handshakes_completed_total)
S0=$(metric handshakes_started_total)
F0=$(curl -s --max-time 5 "http://127.0.0.1:$APORT/metrics" |
    awk 'index($1, "wtrelayd_handshakes_failed_total") == 1 { s += $2 } END { print s + 0 }')
pids=()
for a in 11 12 13 14; do
    sessions "127.0.0.$a" 150 50 "$TMP/many.$a" &
    pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done
check many-all-opened all_open 150 "$TMP"/many.1[1-4]
F1=$(curl -s --max-time 5 "http://127.0.0.1:$APORT/metrics" |
    awk 'index($1, "wtrelayd_handshakes_failed_total") == 1 { s += $2 } END { print s + 0 }')
delta() { # NAME BEFORE WANT
    local now
    now=$(metric "$1")
    [ $((now - $2)) = "$3" ] || { echo "$1: $((now - $2)), wanted $3"; return 1; }
}
check many-connections-counted-once delta connections_total "$C0" 600
check many-handshakes-completed-once delta handshakes_completed_total "$H0" 600
check many-handshakes-started-once delta handshakes_started_total "$S0" 600
check many-none-failed test "$F1" = "$F0"
# the threads did the first flights, and the loop's share of each is small
thread_share() {
    awk -v t="$(metric handshake_thread_seconds_total)" \
        -v l="$(metric handshake_start_seconds_total)" -v n="$(metric handshakes_started_total)" 'BEGIN {
        printf "threads %.0f us, loop %.0f us a handshake\n", t / n * 1e6, l / n * 1e6
        exit !(t > 0 && l < t / 4) }'
}
check many-made-by-the-threads thread_share
settled() {
    for _ in $(seq 1 50); do
        [ "$(metric handshakes_in_progress)" = 0 ] && [ "$(metric handshakes_queued)" = 0 ] &&
            return 0
        sleep 0.1
    done
    echo "in progress $(metric handshakes_in_progress), queued $(metric handshakes_queued)"
    return 1
}
check many-nothing-left settled

# ---- reloads while handshakes are in the threads ----
busy_sample() { # waits (3 s at most) until handshakes wait or are in the threads
    for _ in $(seq 1 60); do
        [ "$(metric handshakes_queued)" -gt 0 ] && return 0
        sleep 0.05
    done
    return 1
}
R0=$(grep -c 'reloaded in' "$TMP/daemon.log")
H0=$(metric handshakes_completed_total)
pids=()
for a in 21 22; do
    sessions "127.0.0.$a" 400 100 "$TMP/reload.$a" &
    pids+=($!)
done
busy=0
for _ in 1 2 3 4 5; do
    busy_sample && busy=$((busy + 1))
    kill -HUP "$DAEMON_PID"
    sleep 0.15
done
# a reload that changes the thread count: read at start only, and said
sed -i 's/^handshake_threads = 2$/handshake_threads = 3/' "$TMP/wtrelayd.ini"
kill -HUP "$DAEMON_PID"
for p in "${pids[@]}"; do wait "$p"; done
echo "    # $busy of 5 reloads met handshakes queued or in the threads"
check reload-met-handshakes test "$busy" -ge 1
check reload-all-reloaded bash -c "[ \$(grep -c 'reloaded in' '$TMP/daemon.log') -ge $((R0 + 6)) ]"
check reload-threads-change-said log_has "handshake_threads changed; it takes effect at the next start"
check reload-all-opened all_open 400 "$TMP"/reload.2[12]
check reload-handshakes-completed delta handshakes_completed_total "$H0" 800
check reload-nothing-left settled
check reload-log-clean it_log_clean

# ---- a drain (SIGTERM) while handshakes are in the threads ----
pids=()
for a in 31 32; do
    sessions "127.0.0.$a" 2000 200 "$TMP/drain.$a" &
    pids+=($!)
done
check drain-met-handshakes busy_sample
stop_daemon
for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
check drain-clean-exit it_exit_clean

# ---- handshake_threads = 0: on the loop thread, as before ----
start_daemon "log_level = info" "handshake_threads = 0" \
    "[admin]" "listen = 127.0.0.1:$APORT"
sessions 127.0.0.41 100 20 "$TMP/zero"
check zero-all-opened all_open 100 "$TMP/zero"
check zero-no-thread-time test "$(metric handshake_thread_seconds_total)" = 0.000000
check zero-started-counted test "$(metric handshakes_started_total)" = 100
it_finish
