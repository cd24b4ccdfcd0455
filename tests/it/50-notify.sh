#!/usr/bin/env bash
# systemd's notify protocol with a NOTIFY_SOCKET of our own (no systemd
# needed): READY=1 only once the UDP port serves, STATUS= lines with the
# counts (at state changes and every 5 s), WATCHDOG=1 at half of
# WATCHDOG_USEC, STOPPING=1 at SIGTERM, exit 0; no watchdog pings when
# WATCHDOG_PID names another process; nothing at all without NOTIFY_SOCKET.
. "$(dirname "$0")/lib.sh"
it_setup
# The port is free before start_daemon picks it; the READY command must
# reach the echo route through it right when READY=1 arrives.
PORT=$(it_free_port) || it_abort "no free UDP port"
ready_cmd="timeout 20 $BUILD/wtclient --insecure --timeout 10 --datagram ready-check https://127.0.0.1:PORT/echo >$TMP/ready.out 2>$TMP/ready.err"

# 1. everything, with the watchdog at 400 ms (pings every 200 ms)
started=0
for _ in 1 2 3; do
    PORT=$(it_free_port) || it_abort "no free UDP port"
    it_write_conf "shutdown_timeout = 1s"
    notify_listen 40 "${ready_cmd//PORT/$PORT}"
    if NOTIFY_SOCKET=$SOCK WATCHDOG_USEC=400000 spawn_daemon; then
        started=1
        break
    fi
    notify_stop
    grep -qi 'in use' "$TMP/daemon.log" || break
done
[ $started = 1 ] || it_abort "daemon exited at start-up"

check notify-ready notes_have '^[0-9]+ READY=1$'
check notify-ready-client-served notes_have '^[0-9]+ ready-command exit 0$'
check notify-ready-client-echoed grep -qx ready-check "$TMP/ready.out"
# the daemon logs each message it sends at debug: READY after every bind
ready_after_listen() {
    local last_listen ready
    last_listen=$(grep -n 'listening on udp' "$TMP/daemon.log" | tail -n 1 | cut -d: -f1)
    ready=$(grep -n 'sd_notify: READY=1' "$TMP/daemon.log" | head -n 1 | cut -d: -f1)
    [ -n "$last_listen" ] && [ -n "$ready" ] && [ "$ready" -gt "$last_listen" ] ||
        { echo "listening at line ${last_listen:-none}, READY at ${ready:-none}"; return 1; }
}
check notify-ready-after-bind ready_after_listen
check notify-status-serving notes_have '^[0-9]+ STATUS=serving: 0 connections, 0 sessions$'

# a session held open: the periodic STATUS counts it
timeout -k 2 30 "$BUILD/wtclient" --insecure --timeout 20 --wait-close \
    "https://127.0.0.1:$PORT/echo" >"$TMP/held.out" 2>"$TMP/held.err" &
held=$!
check notify-held-session-opened log_has 'opened /echo'
check notify-status-periodic notes_have '^[0-9]+ STATUS=serving: 1 connections, 1 sessions$'

# watchdog rate: WATCHDOG_USEC=400000 -> a ping every 0.2 s
watchdog_rate() {
    awk '$2 == "WATCHDOG=1" { if (n++) { d = $1 - last; if (d > max) max = d; sum += d }; last = $1 }
         END { if (n < 10) { print "only " n " pings"; exit 1 }
               avg = sum / (n - 1)
               printf "%d pings, every %.0f ms on average, %d ms at most\n", n, avg, max
               exit !(avg > 150 && avg < 260 && max < 600) }' "$NOTES"
}
check notify-watchdog-rate watchdog_rate
watchdog_rate >"$TMP/watchdog.txt" 2>&1

# SIGHUP: RELOADING=1 with MONOTONIC_USEC (moving forward from one reload
# to the next), then READY=1 again; a broken config the
# same (the daemon keeps serving), the held session untouched.
reloading_then_ready() {
    awk -v want="$1" '
        $2 ~ /^RELOADING=1\|MONOTONIC_USEC=[0-9]+/ {
            split($2, a, /[|=]/); us = a[4]
            # the clock only moves forward, and by about the time between
            if (r && (us <= last || us - last > 30000000)) { print "MONOTONIC_USEC " last " then " us; bad = 1 }
            last = us; r++; pending = 1; next }
        $2 == "READY=1" && pending { ready++; pending = 0 }
        END { if (bad) exit 1
              if (r != want || ready != want) { print r " RELOADING, " ready " READY after them; want " want; exit 1 } }' "$NOTES"
}
reloads() { local want=$1; for _ in $(seq 1 100); do reloading_then_ready "$want" >/dev/null && return 0; sleep 0.05; done; reloading_then_ready "$want"; }
kill -HUP "$DAEMON_PID"
check notify-reloading-then-ready reloads 1
cp "$TMP/wtrelayd.ini" "$TMP/good.ini"
echo "max_connections = many" >>"$TMP/wtrelayd.ini"
kill -HUP "$DAEMON_PID"
check notify-broken-reload-ready-again reloads 2
check notify-broken-reload-logged log_has 'reload failed'
cp "$TMP/good.ini" "$TMP/wtrelayd.ini"
check notify-serves-after-reloads client /echo --datagram after-reload

# SIGTERM: STOPPING=1, STATUS says draining with the session still there
# (and maybe the connection of the last check, closing)
stop_daemon
wait "$held" 2>/dev/null
held_rc=$?
check notify-stopping notes_have '^[0-9]+ STOPPING=1$'
check notify-status-draining notes_have '^[0-9]+ STATUS=draining: [12] connections, 1 sessions$'
stopping_after_ready() {
    local r s
    r=$(grep -n ' READY=1$' "$NOTES" | head -n 1 | cut -d: -f1)
    s=$(grep -n ' STOPPING=1$' "$NOTES" | head -n 1 | cut -d: -f1)
    [ -n "$r" ] && [ -n "$s" ] && [ "$s" -gt "$r" ]
}
check notify-stopping-after-ready stopping_after_ready
check notify-exit-0 it_exit_clean
check notify-held-session-closed test "$held_rc" -eq 0
notify_stop
grep -c 'WATCHDOG=1' "$NOTES" >"$TMP/pings.txt"

# 2. WATCHDOG_PID naming another process: READY, but no pings
notify_listen 20
NOTIFY_SOCKET=$SOCK WATCHDOG_USEC=200000 WATCHDOG_PID=1 spawn_daemon ||
    it_abort "daemon exited at start-up (WATCHDOG_PID=1)"
check notify-other-pid-ready notes_have '^[0-9]+ READY=1$'
sleep 1
check notify-other-pid-no-pings bash -c "! grep -q WATCHDOG=1 '$NOTES'"
stop_daemon
check notify-other-pid-exit-0 it_exit_clean
notify_stop

# 3. no NOTIFY_SOCKET: the daemon runs the same and sends nothing
notify_listen 20
spawn_daemon || it_abort "daemon exited at start-up (no NOTIFY_SOCKET)"
check notify-none-serves client /echo --datagram plain
sleep 0.5
check notify-none-silent bash -c "[ \$(wc -l <'$NOTES') -eq 1 ]"
stop_daemon
check notify-none-exit-0 it_exit_clean
notify_stop
echo "    watchdog: $(cat "$TMP/watchdog.txt")"
[ "$IT_FAILED" -eq 0 ]
