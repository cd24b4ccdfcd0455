#!/usr/bin/env bash
# workers = 2: what one worker hands a client is honoured by the other and
# by a restarted one, because every secret derives from the key, never
# from the process: a NEW_TOKEN token from worker A skips the Retry on
# worker B, a TLS ticket from A resumes on B, and the connections of a
# worker killed and restarted get a stateless reset from its successor
# that the clients recognise (they learn at once, not after the idle
# timeout).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/workers-lib.sh"
it_setup
start_workers 2 "retry = on" "idle_timeout = 60s"
head -c 2000 /dev/urandom >"$TMP/msg"

# per_worker TEXT: "N0 N1", the daemon log's lines with TEXT from each
per_worker() {
    echo "$(grep -c "worker 0: .*$1" "$TMP/daemon.log") $(grep -c "worker 1: .*$1" "$TMP/daemon.log")"
}
on_both() { # TEXT MIN_TOTAL: both workers logged TEXT, MIN_TOTAL in all
    local a b
    read -r a b < <(per_worker "$1")
    [ "$a" -ge 1 ] && [ "$b" -ge 1 ] && [ $((a + b)) -ge "$2" ] && return 0
    echo "\"$1\": $a on worker 0, $b on worker 1 (wanted both, $2 in all)"
    return 1
}

# NEW_TOKEN: 20 connections, one after another; the first is sent a Retry
# and a token, the others present the newest token they have and skip the
# Retry on whichever worker the kernel gives them
check new-token-connections bench '"sessions_open":20,' '"errors":0' -- \
    --mode sessions -c 20 --inflight 1 --hold 0.1
check new-token-valid-on-both on_both "validated by a NEW_TOKEN token" 17

# TLS resumption: 16 wtclients one after another, each from a new port
T=$TMP/ticket
resume_all() {
    local i
    for i in $(seq 1 16); do
        client /echo --send "$TMP/msg" --verify --resume "$T" || return 1
    done
}
check resume-16-clients resume_all
check resumed-on-both on_both "handshake completed (resumed)" 15

# A worker killed under a transfer and restarted: its successor answers
# the client's next packet with a stateless reset the client accepts.
# (not inside check: its transfer runs on in the background, in this shell)
held_start
check reset-echo-before grep -q first "$TMP/client.out"
# the worker that holds it: the one with a connection open, once the
# earlier clients' connections (closing, draining) are gone from both
holder=
for _ in $(seq 1 100); do
    metrics_get m.now
    a=$(metric wtrelayd_connections_open 0 "$TMP/m.now")
    b=$(metric wtrelayd_connections_open 1 "$TMP/m.now")
    if [ $((${a:-0} + ${b:-0})) = 1 ]; then
        [ "$a" = 1 ] && holder=0 || holder=1
        break
    fi
    sleep 0.1
done
check reset-holder-found test -n "$holder"
readies() { grep -c "supervisor: worker ${holder:-x} (pid [0-9]*) ready" "$TMP/daemon.log"; }
before=$(readies)
old=$(worker_pid "${holder:-0}")
kill -KILL "$old"
restarted() {
    for _ in $(seq 1 100); do
        [ "$(readies)" -gt "$before" ] && return 0
        sleep 0.05
    done
    echo "worker $holder was not ready again within 5 s"
    return 1
}
check reset-worker-restarted restarted
held_finish
check reset-from-successor held_reset_quick
check reset-recognised client_err_has "stateless reset: the peer no longer has this connection"
check reset-sent-by-holder log_has "worker $holder: stateless reset to 127.0.0.1:"
it_finish
