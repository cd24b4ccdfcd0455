#!/usr/bin/env bash
# A worker killed mid-session (SIGKILL) costs only its own connections:
# those on the other worker keep echoing, the supervisor restarts the
# dead one (its socket stayed open in the supervisor, so the group keeps
# its order), and the new worker takes new connections.  A worker that
# dies again soon after its start waits twice as long.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/workers-lib.sh"
command -v curl >/dev/null || it_abort "curl is missing (scripts/install-deps.sh --test)"
it_setup
start_workers 2 "shutdown_timeout = 1s"
w0=$(worker_pid 0)
w1=$(worker_pid 1)

# 12 connections, 100 paced requests a second for 6 s
timeout -k 2 40 "$BUILD/wtbench" --insecure --json --mode rps -c 12 --rate 100 -n 600 -t 9 \
    "https://127.0.0.1:$PORT/echo" >"$TMP/run.json" 2>"$TMP/run.err" &
bench=$!
on_each() {
    local a b
    for _ in $(seq 1 60); do
        metrics_get m.before
        a=$(metric wtrelayd_connections_open 0 "$TMP/m.before")
        b=$(metric wtrelayd_connections_open 1 "$TMP/m.before")
        [ $((${a:-0} + ${b:-0})) -ge 12 ] && break
        sleep 0.05
    done
    echo "${a:-0} ${b:-0}"
}
sleep 1.5
read -r n0 n1 < <(on_each)
kill -KILL "$w1"
wait "$bench"
check restart-spread bash -c "[ $n0 -ge 1 ] && [ $n1 -ge 1 ] && [ $((n0 + n1)) = 12 ] || { echo 'connections: $n0 on worker 0, $n1 on worker 1'; exit 1; }"
lost=$(sed -n 's/.*"conns_lost":\([0-9]*\).*/\1/p' "$TMP/run.json")
done_=$(sed -n 's/.*"requests":\([0-9]*\).*/\1/p' "$TMP/run.json")
# the dead worker's connections end (a stateless reset from the new
# worker, or they hang until the run's end); none of worker 0's does
check restart-lost-only-its-own bash -c "[ '${lost:-99}' -le '$n1' ] || { echo 'lost $lost, worker 1 had $n1: $(cat "$TMP/run.json")'; exit 1; }"
# the survivors kept being served after the kill: requests went on to
# (nearly) the end; only those in flight on the dead worker's ones failed
check restart-others-kept-echoing bash -c "[ '${done_:-0}' -ge 570 ] || { echo 'requests answered: ${done_:-0} of 600'; exit 1; }"
check restart-logged log_has "worker 1 (pid $w1) killed by signal 9"
check restart-backoff-first log_has "restarting in 0.1 s"
check restart-ready log_has 'supervisor: worker 1 (pid'
check restart-worker0-untouched kill -0 "$w0"
check restart-worker0-same-pid bash -c "[ '$(worker_pid 0)' = '$w0' ]"
nw1=$(worker_pid 1)
check restart-new-pid bash -c "[ -n '$nw1' ] && [ '$nw1' != '$w1' ] && kill -0 '$nw1'"

# new connections: both workers take them, the new one included
fresh() {
    out=$(timeout -k 2 60 "$BUILD/wtbench" --insecure --json --mode rps -c 30 -n 300 -t 30 \
        "https://127.0.0.1:$PORT/echo" 2>"$TMP/fresh.err") || { echo "wtbench: $out"; return 1; }
    case "$out" in *'"errors":0,'*) ;; *) echo "$out"; return 1 ;; esac
}
check restart-new-connections fresh
metrics_get m.after
h1=$(metric wtrelayd_handshakes_completed_total 1 "$TMP/m.after")
check restart-new-worker-serves bash -c "[ '${h1:-0}' -ge 1 ] || { echo 'worker 1 handshakes: ${h1:-none}'; exit 1; }"
check restart-counted grep -qx 'wtrelayd_worker_restarts_total{worker="1"} 1' "$TMP/m.after"
check restart-other-not-counted grep -qx 'wtrelayd_worker_restarts_total{worker="0"} 0' "$TMP/m.after"
check restart-healthz-ok bash -c "[ \"\$(curl -s --max-time 5 '$ADMIN/healthz')\" = ok ]"

# dying again within 10 s of its start: the wait doubles
ready_count() {
    for _ in $(seq 1 100); do
        [ "$(grep -c 'supervisor: worker 1 (pid [0-9]*) ready' "$TMP/daemon.log")" -ge "$1" ] && return 0
        sleep 0.05
    done
    return 1
}
kill -KILL "$nw1"
check restart-ready-again ready_count 2
kill -KILL "$(worker_pid 1)"
check restart-backoff-doubles log_has "restarting in 0.2 s"
check restart-ready-third ready_count 3
check restart-serves-again client /echo --datagram again

# SIGHUPs while a worker is being started: held until its loop handles
# them (before, one could end the new process)
kill -KILL "$(worker_pid 1)"
for _ in $(seq 1 250); do
    kill -HUP "$DAEMON_PID"
    sleep 0.01
done
both_up() {
    for _ in $(seq 1 100); do
        metrics_get m.storm
        grep -qx 'wtrelayd_worker_up{worker="1"} 1' "$TMP/m.storm" &&
            grep -qx 'wtrelayd_worker_up{worker="0"} 1' "$TMP/m.storm" && return 0
        sleep 0.05
    done
    echo "not both up: $(grep worker_up "$TMP/m.storm" | tr '\n' ' ')"
    return 1
}
check restart-hup-storm-up both_up
check restart-hup-storm-no-death log_lacks 'killed by signal 1 '
check restart-hup-storm-serves client /echo --datagram storm
echo "    killed worker 1 with $n1 of 12 connections (worker 0: $n0); lost $lost; $done_ of 600 requests answered"
it_finish
