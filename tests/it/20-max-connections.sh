#!/usr/bin/env bash
# max_connections: a connection over the limit is refused (CONNECTION_REFUSED,
# no state kept); once a slot frees up, new connections are served again.
. "$(dirname "$0")/lib.sh"
it_setup
start_daemon "max_connections = 1" "log_level = debug"

over_limit() {
    # one connection held open by a session that lives ~1 s (/expire)...
    "$BUILD/wtprobe" --insecure --timeout 10 127.0.0.1 "$PORT" \
        server-close /expire 4343 "expired by test" >"$TMP/holder.out" 2>&1 &
    local holder=$!
    log_has "session 0: opened /expire" >/dev/null || { kill $holder; echo "holder never opened"; return 1; }
    # ...so a second one is refused: the probe cannot connect (exit 2)
    local rc
    timeout 15 "$BUILD/wtprobe" --insecure --timeout 3 127.0.0.1 "$PORT" status /echo >"$TMP/second.out" 2>&1
    rc=$?
    wait $holder
    local hrc=$?
    [ $hrc -eq 0 ] || { echo "holder failed: $(tail -n 1 "$TMP/holder.out")"; return 1; }
    [ $rc -eq 2 ] || { echo "second connection: exit $rc, want 2 (refused): $(tail -n 2 "$TMP/second.out")"; return 1; }
}
check max-connections-refused over_limit
check max-connections-logged log_has "refusing a connection: max_connections reached"

# the holder's connection is gone (after its closing period): served again
served_again() {
    local i
    for i in $(seq 1 20); do
        probe echo-bidi /echo 1000 >/dev/null 2>&1 && return 0
        sleep 0.25
    done
    echo "no connection accepted within 5 s after the slot freed"
    return 1
}
check max-connections-slot-reused served_again
it_finish
