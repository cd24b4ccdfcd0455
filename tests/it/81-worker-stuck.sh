#!/usr/bin/env bash
# A worker that is alive but whose loop does not turn (here SIGSTOP; a
# bug or a livelock looks the same from outside) with workers = 2 and
# worker_timeout = 3s:
#  - /metrics still answers within 1.5 s (the supervisor's 1 s deadline
#    plus slack), listing the stopped worker as down and the other up,
#    and /healthz answers at once (< 0.5 s) while a /metrics waits: the
#    supervisor's loop never waits for a worker (before, /metrics asked
#    each worker in turn, blocking up to 1 s per silent one);
#  - the other worker keeps serving a session (a witness, 50 requests a
#    second, none later than 2 s) throughout;
#  - the stopped worker is killed within worker_timeout + 1.5 s of its
#    stop and replaced (ready) within worker_timeout + 3 s; the
#    replacement takes new connections;
#  - SIGTERM with a worker stopped: the service still ends, exit 0,
#    within worker_timeout + shutdown_timeout + 3 s (before: only the
#    supervisor's kill timer, shutdown_timeout + 10 s, ended it).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/workers-lib.sh"
command -v curl >/dev/null || it_abort "curl is missing (scripts/install-deps.sh --test)"
it_setup
start_workers 2 "worker_timeout = 3s" "shutdown_timeout = 1s"

now_ms() { echo $(($(date +%s%N) / 1000000)); }

# the witness's connection: on which worker?
witness_start 14
holder=
for _ in $(seq 1 100); do
    metrics_get m.witness
    a=$(metric wtrelayd_connections_open 0 "$TMP/m.witness")
    b=$(metric wtrelayd_connections_open 1 "$TMP/m.witness")
    if [ "${a:-0}" -ge 1 ]; then holder=0; break; fi
    if [ "${b:-0}" -ge 1 ]; then holder=1; break; fi
    sleep 0.05
done
[ -n "$holder" ] || it_abort "the witness's connection is on no worker"
victim=$((1 - holder))
vpid=$(worker_pid "$victim")
sleep 1
kill -STOP "$vpid"
t_stop=$(now_ms)

# /metrics while it is stopped: bounded, the victim down, the holder up
timed_metrics() {
    local t0 t1
    t0=$(now_ms)
    curl -s --max-time 5 "$ADMIN/metrics" >"$TMP/m.stopped" || { echo "curl failed"; return 1; }
    t1=$(now_ms)
    echo "took $((t1 - t0)) ms"
    [ $((t1 - t0)) -le 1500 ] || return 1
    grep -qx "wtrelayd_worker_up{worker=\"$victim\"} 0" "$TMP/m.stopped" ||
        { echo "victim not down: $(grep worker_up "$TMP/m.stopped" | tr '\n' ' ')"; return 1; }
    grep -qx "wtrelayd_worker_up{worker=\"$holder\"} 1" "$TMP/m.stopped" ||
        { echo "holder not up: $(grep worker_up "$TMP/m.stopped" | tr '\n' ' ')"; return 1; }
    # the holder's own figures are there, the silent one's are not
    grep -q "^wtrelayd_connections_open{worker=\"$holder\"}" "$TMP/m.stopped" || { echo "holder's figures missing"; return 1; }
    ! grep -q "^wtrelayd_connections_open{worker=\"$victim\"}" "$TMP/m.stopped"
}
check stuck-metrics-bounded timed_metrics

# /healthz while /metrics requests wait for the silent worker: at once
healthz_at_once() {
    local t0 t1 code i
    for i in 1 2 3 4; do
        curl -s --max-time 5 -o /dev/null "$ADMIN/metrics" &
    done
    # it says "not answering" once 2.5 pings (1.5 s here) went unanswered:
    # not before 2 s after the stop (the kill comes at 3 s)
    while [ $(($(now_ms) - t_stop)) -lt 2000 ]; do sleep 0.05; done
    t0=$(now_ms)
    code=$(curl -s --max-time 5 -o "$TMP/healthz.stopped" -w '%{http_code}' "$ADMIN/healthz")
    t1=$(now_ms)
    wait
    echo "/healthz: $code in $((t1 - t0)) ms: $(cat "$TMP/healthz.stopped")"
    [ $((t1 - t0)) -lt 500 ] && [ "$code" = 503 ]
}
check stuck-healthz-at-once healthz_at_once

# killed and replaced within the bounds
# logged_within WHAT PATTERN MS: PATTERN in the log within MS of the stop
logged_within() {
    local t
    for _ in $(seq 1 200); do
        grep -q "$2" "$TMP/daemon.log" && break
        sleep 0.05
    done
    t=$(($(now_ms) - t_stop))
    echo "$1 after $t ms"
    grep -q "$2" "$TMP/daemon.log" && [ "$t" -le "$3" ]
}
check stuck-killed logged_within killed "worker $victim (pid $vpid) has not answered for" 4500
check stuck-killed-by-9 log_has "worker $victim (pid $vpid) killed by signal 9"
check stuck-replaced logged_within "ready again" "supervisor: worker $victim (pid [0-9]*) ready" 6000
npid=$(worker_pid "$victim")
check stuck-new-pid bash -c "[ -n '$npid' ] && [ '$npid' != '$vpid' ] && kill -0 '$npid'"
check stuck-other-untouched bash -c "[ '$(worker_pid "$holder")' != '' ] && kill -0 '$(worker_pid "$holder")'"

# new connections: the replacement takes its share
fresh() {
    out=$(timeout -k 2 60 "$BUILD/wtbench" --insecure --json --mode rps -c 20 -n 200 -t 30 \
        "https://127.0.0.1:$PORT/echo" 2>"$TMP/fresh.err") || { echo "wtbench: $out"; return 1; }
    case "$out" in *'"errors":0,'*) ;; *) echo "$out"; return 1 ;; esac
}
check stuck-new-connections fresh
metrics_get m.after
hv=$(metric wtrelayd_handshakes_completed_total "$victim" "$TMP/m.after")
check stuck-replacement-serves bash -c "[ '${hv:-0}' -ge 1 ] || { echo 'worker $victim handshakes: ${hv:-none}'; exit 1; }"
check stuck-kill-counted grep -qx "wtrelayd_worker_kills_total{worker=\"$victim\"} 1" "$TMP/m.after"
check stuck-restart-counted grep -qx "wtrelayd_worker_restarts_total{worker=\"$victim\"} 1" "$TMP/m.after"
check stuck-both-up bash -c "grep -qx 'wtrelayd_worker_up{worker=\"0\"} 1' '$TMP/m.after' && grep -qx 'wtrelayd_worker_up{worker=\"1\"} 1' '$TMP/m.after'"
check stuck-witness-served witness_check
check stuck-healthz-ok bash -c "[ \"\$(curl -s --max-time 5 '$ADMIN/healthz')\" = ok ]"

# SIGTERM with a worker stopped: the drain still ends, bounded
spid=$(worker_pid 0)
kill -STOP "$spid"
t0=$(now_ms)
kill -TERM "$DAEMON_PID"
for _ in $(seq 1 300); do
    kill -0 "$DAEMON_PID" 2>/dev/null || break
    sleep 0.05
done
t_end=$(($(now_ms) - t0))
if kill -0 "$DAEMON_PID" 2>/dev/null; then
    kill -KILL "$DAEMON_PID"
fi
wait "$DAEMON_PID"
st=$?
DAEMON_PID=
kill -0 "$spid" 2>/dev/null && { kill -CONT "$spid"; kill -KILL "$spid"; }
check stuck-drain-bounded bash -c "echo 'exit $st after $t_end ms'; [ $st = 0 ] && [ $t_end -le 7000 ]"
check stuck-drain-killed-stopped log_has "worker 0 (pid $spid) has not answered for"
check stuck-log-clean it_log_clean
echo "    stopped worker $victim (witness on $holder): $(grep -o "worker $victim (pid $vpid) has not answered for [0-9.]* s" "$TMP/daemon.log"); drain with worker 0 stopped: $t_end ms"
[ "$IT_FAILED" -eq 0 ]
