#!/usr/bin/env bash
# workers = 2: a supervisor and two workers on one port.  Echo works;
# handshakes land on both workers (the admin endpoint labels each
# worker's figures); every log line of a worker says which; SIGHUP
# reloads every worker (a change of listen is refused: it takes a
# restart); SIGTERM drains both and the service exits 0.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/workers-lib.sh"
command -v curl >/dev/null || it_abort "curl is missing (scripts/install-deps.sh --test)"
it_setup
start_workers 2 "shutdown_timeout = 2s"

echo hello-workers >"$TMP/payload"
check workers-echo-stream client /echo --send "$TMP/payload" --verify
check workers-echo-stream-content grep -qx hello-workers "$TMP/client.out"
check workers-echo-datagram client /echo --datagram dgram-workers
check workers-echo-ipv6 bash -c "CLIENT_HOST='[::1]'; $(declare -f client); BUILD='$BUILD' TMP='$TMP' PORT='$PORT' PROBE_TIMEOUT=10 client /echo --datagram v6"

# 40 connections: the kernel's hash spreads their first Initials
many() {
    out=$(timeout -k 2 60 "$BUILD/wtbench" --insecure --json --mode rps -c 40 -n 400 -t 30 \
        "https://127.0.0.1:$PORT/echo" 2>"$TMP/bench.err") || { echo "wtbench: $out"; return 1; }
    case "$out" in *'"errors":0,'*) ;; *) echo "$out"; return 1 ;; esac
}
check workers-40-connections many
both_served() {
    local a b
    metrics_get metrics.now
    a=$(metric wtrelayd_handshakes_completed_total 0 "$TMP/metrics.now")
    b=$(metric wtrelayd_handshakes_completed_total 1 "$TMP/metrics.now")
    echo "handshakes: worker 0 ${a:-none}, worker 1 ${b:-none}"
    [ -n "$a" ] && [ -n "$b" ] && [ "$a" -ge 3 ] && [ "$b" -ge 3 ] && [ $((a + b)) -ge 43 ]
}
check workers-handshakes-on-both both_served
both_served | tail -n 1 >"$TMP/spread.txt"
check workers-metrics-up bash -c "grep -qx 'wtrelayd_worker_up{worker=\"0\"} 1' '$TMP/metrics.now' && grep -qx 'wtrelayd_worker_up{worker=\"1\"} 1' '$TMP/metrics.now'"
check workers-metrics-count grep -qx 'wtrelayd_workers 2' "$TMP/metrics.now"
# one HELP and one TYPE a family however many workers report it
check workers-metrics-help-once bash -c "[ \$(grep -c '^# TYPE wtrelayd_handshakes_completed_total ' '$TMP/metrics.now') = 1 ]"
check workers-metrics-grouped bash -c "awk '/^# TYPE/ { if (seen[\$3]++) bad = 1 } END { exit bad }' '$TMP/metrics.now'"
check workers-healthz bash -c "[ \"\$(curl -s --max-time 5 '$ADMIN/healthz')\" = ok ]"
check workers-config-json bash -c "curl -s --max-time 5 '$ADMIN/config.json' | grep -q '\"port\":$PORT'"
check workers-log-worker-0 log_has 'worker 0: listening on udp'
check workers-log-worker-1 log_has 'worker 1: listening on udp'
check workers-log-session-says-worker bash -c "grep 'session 0: opened /echo' '$TMP/daemon.log' | grep -q 'worker [01]: '"

# SIGHUP: every worker reloads; the service says so once
kill -HUP "$DAEMON_PID"
check workers-reload-all log_has 'supervisor: all 2 workers reloaded'
check workers-reload-w0 log_has 'worker 0: reloaded in'
check workers-reload-w1 log_has 'worker 1: reloaded in'
check workers-serve-after-reload client /echo --datagram after-reload
# listen cannot change with workers > 1: refused, the service goes on
cp "$TMP/wtrelayd.ini" "$TMP/good.ini"
sed -i "s/^listen = .*/listen = 127.0.0.1:$PORT/" "$TMP/wtrelayd.ini"
kill -HUP "$DAEMON_PID"
check workers-reload-listen-refused log_has 'listen changed; with workers > 1 that takes a restart'
cp "$TMP/good.ini" "$TMP/wtrelayd.ini"
check workers-serve-after-refused-reload client /echo --datagram after-refusal

# SIGTERM with a session held open: both workers drain, exit 0
timeout -k 2 30 "$BUILD/wtclient" --insecure --timeout 20 --wait-close \
    "https://127.0.0.1:$PORT/echo" >"$TMP/held.out" 2>"$TMP/held.err" &
held=$!
check workers-held-opened log_has 'opened /echo'
sleep 0.3
w0=$(worker_pid 0)
w1=$(worker_pid 1)
stop_daemon
wait "$held"
held_rc=$?
check workers-sigterm-exit-0 it_exit_clean
check workers-sigterm-both-stopped bash -c "! kill -0 $w0 2>/dev/null && ! kill -0 $w1 2>/dev/null"
check workers-sigterm-drained log_has 'worker 0: signal 15: shutting down'
check workers-sigterm-drained-1 log_has 'worker 1: signal 15: shutting down'
check workers-held-session-closed-cleanly test "$held_rc" -eq 0
check workers-supervisor-stopped log_has 'supervisor: stopped'
echo "    $(cat "$TMP/spread.txt")"
[ "$IT_FAILED" -eq 0 ]
