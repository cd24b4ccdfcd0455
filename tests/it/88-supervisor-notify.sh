#!/usr/bin/env bash
# sd_notify with workers = 2 (tests/tools/notifylisten as systemd): the
# supervisor alone speaks (the workers get no NOTIFY_SOCKET), READY=1
# once, after both workers are ready, and a client is served right then;
# STATUS= counts the workers up; watchdog pings; a worker's death and
# restart say no second READY; SIGHUP: RELOADING=1 then READY=1 once
# every worker reloaded; SIGTERM: STOPPING=1, exit 0.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/workers-lib.sh"
command -v curl >/dev/null || it_abort "curl is missing (scripts/install-deps.sh --test)"
it_setup
notify_listen 60 \
    "timeout 20 $BUILD/wtclient --insecure --timeout 10 --datagram ready-check https://127.0.0.1:\$(cat $TMP/port)/echo >$TMP/ready.out 2>$TMP/ready.err"
count() { grep -cE -- "$1" "$NOTES"; }

# the ready command needs the port, which start_daemon picks: it reads it
# from a file written before the daemon starts (it_write_conf runs first)
it_write_conf() {
    local conf=$TMP/wtrelayd.ini line
    echo "$PORT" >"$TMP/port"
    {
        echo "[server]"
        echo "listen = 127.0.0.1:$PORT"
        echo "cert = $CERT"
        echo "key = $KEY"
        echo "log_level = debug"
        echo "max_connections_per_address = 0"
        echo "connection_rate_per_address = 0"
        for line in "$@"; do printf '%s\n' "$line"; done
        echo "[route /echo]"
        echo "handler = echo"
    } >"$conf"
}
NOTIFY_SOCKET=$SOCK WATCHDOG_USEC=400000 start_workers 2 "shutdown_timeout = 1s"

check sv-ready notes_have '^[0-9]+ READY=1$'
check sv-ready-client-served notes_have '^[0-9]+ ready-command exit 0$'
check sv-ready-client-echoed grep -qx ready-check "$TMP/ready.out"
ready_after_workers() {
    local w0 w1 all
    w0=$(grep -n 'worker 0: listening on udp' "$TMP/daemon.log" | head -n 1 | cut -d: -f1)
    w1=$(grep -n 'worker 1: listening on udp' "$TMP/daemon.log" | head -n 1 | cut -d: -f1)
    all=$(grep -n 'supervisor: all 2 workers ready' "$TMP/daemon.log" | head -n 1 | cut -d: -f1)
    [ -n "$w0" ] && [ -n "$w1" ] && [ -n "$all" ] && [ "$all" -gt "$w0" ] && [ "$all" -gt "$w1" ] ||
        { echo "worker 0 at line ${w0:-none}, worker 1 at ${w1:-none}, ready at ${all:-none}"; return 1; }
}
check sv-ready-after-both-workers ready_after_workers
check sv-status-workers notes_have '^[0-9]+ STATUS=serving: [0-9]+ connections, [0-9]+ sessions \(2 of 2 workers up\)$'
check sv-watchdog notes_have '^[0-9]+ WATCHDOG=1$'
no_notify_env() {
    local i pid
    for i in 0 1; do
        pid=$(worker_pid $i)
        [ -r "/proc/$pid/environ" ] || { echo "no /proc/$pid/environ"; return 1; }
        if tr '\0' '\n' <"/proc/$pid/environ" | grep -qE '^(NOTIFY_SOCKET|WATCHDOG_USEC|WATCHDOG_PID)='; then
            echo "worker $i has systemd's variables"
            return 1
        fi
    done
    tr '\0' '\n' <"/proc/$DAEMON_PID/environ" | grep -q '^NOTIFY_SOCKET=' ||
        { echo "the supervisor lacks NOTIFY_SOCKET"; return 1; }
}
check sv-workers-not-notifying no_notify_env

# a worker dies and comes back: STATUS says so, READY is not said again
kill -KILL "$(worker_pid 1)"
check sv-status-one-down notes_have '^[0-9]+ STATUS=serving: .*\(1 of 2 workers up\)$'
check sv-restarted log_has 'supervisor: worker 1 (pid'
check sv-no-second-ready bash -c "[ \$(grep -cE '^[0-9]+ READY=1$' '$NOTES') = 1 ]"

# SIGHUP: RELOADING=1, then READY=1 once both reloaded
kill -HUP "$DAEMON_PID"
reload_seen() {
    for _ in $(seq 1 100); do
        awk '/ RELOADING=1\|MONOTONIC_USEC=[0-9]+$/ { r = NR } / READY=1$/ && r && NR > r { ok = 1 }
             END { exit !ok }' "$NOTES" && return 0
        sleep 0.05
    done
    echo "no RELOADING then READY: $(cut -d' ' -f2- "$NOTES" | sort | uniq -c | tr '\n' ';')"
    return 1
}
check sv-reloading-then-ready reload_seen
ready_after_reload() {
    local all ready
    all=$(grep -n 'supervisor: all 2 workers reloaded' "$TMP/daemon.log" | head -n 1 | cut -d: -f1)
    ready=$(grep -n 'sd_notify: READY=1' "$TMP/daemon.log" | grep -v 'worker' | tail -n 1 | cut -d: -f1)
    [ -n "$all" ] && [ -n "$ready" ] && [ "$ready" -gt "$all" ] ||
        { echo "reloaded at line ${all:-none}, READY at ${ready:-none}"; return 1; }
}
check sv-ready-after-all-reloaded ready_after_reload

stop_daemon
check sv-stopping notes_have '^[0-9]+ STOPPING=1$'
check sv-status-draining notes_have '^[0-9]+ STATUS=draining: '
check sv-exit-0 it_exit_clean
notify_stop
[ "$IT_FAILED" -eq 0 ]
