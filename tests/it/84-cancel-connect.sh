#!/usr/bin/env bash
# A client closes a session while it still waits for the server's 2xx
# (wt_session_close() on a connecting session, through wtclient
# --cancel-first): the request is cancelled on the wire (the CONNECT
# stream reset with H3_REQUEST_CANCELLED), the daemon sees that session
# end (sessions open back to the one that runs, not 2 until the
# connection goes), the connection stays up and a second session on it
# echoes.  The client's path is delayed 100 ms each way so that the
# cancel (150 ms after the CONNECT) meets a session the daemon has
# already opened and answered.  Before, the close did nothing: the first
# session stayed open on both sides until the connection closed.
. "$(dirname "$0")/lib.sh"
command -v curl >/dev/null || it_abort "curl is missing (scripts/install-deps.sh --test)"
it_setup
APORT=$(it_free_tcp_port) || it_abort "no free TCP port"
start_daemon "[admin]" "listen = 127.0.0.1:$APORT"

sample() { # NAME [LABELS]: one sample of /metrics
    curl -s --max-time 2 "http://127.0.0.1:$APORT/metrics" |
        awk -v n="wtrelayd_$1${2:-}" '$1 == n { print $2; exit }'
}

timeout -k 2 40 "$BUILD/wtclient" --insecure --timeout 20 --delay 100 --cancel-first 150 \
    --datagram hello --listen 4 "https://127.0.0.1:$PORT/echo" \
    >"$TMP/client.out" 2>"$TMP/client.err" &
cpid=$!

# while the second session runs: the first is gone from the daemon
first_gone() {
    local o t c
    for _ in $(seq 1 100); do
        t=$(sample sessions_total '{route="/echo"}')
        o=$(sample sessions_open '{route="/echo"}')
        [ "${t:-0}" = 2 ] && [ "${o:-0}" = 1 ] && break
        sleep 0.05
    done
    c=$(sample connections_open)
    echo "sessions: $o open of $t; connections open: $c"
    [ "${t:-0}" = 2 ] && [ "${o:-0}" = 1 ] && [ "${c:-0}" = 1 ]
}
check cancel-first-gone-connection-up first_gone
check cancel-reset-seen log_has "session 0: closed"
check cancel-reset-code log_has "CONNECT stream reset (0x10c)"
wait "$cpid"
rc=$?
check cancel-client-ok bash -c "echo 'wtclient exit $rc: $(tail -n 1 "$TMP/client.err")'; [ $rc = 0 ]"
check cancel-client-cancelled grep -q "first session cancelled (code 0)" "$TMP/client.err"
check cancel-second-echoes grep -qx "datagram: hello" "$TMP/client.out"
check cancel-one-connection bash -c "[ \"\$(grep -c 'new connection' '$TMP/daemon.log')\" = 1 ]"
all_gone() {
    local o
    for _ in $(seq 1 60); do
        o=$(sample sessions_open '{route="/echo"}')
        [ "${o:-1}" = 0 ] && return 0
        sleep 0.05
    done
    echo "sessions open: $o"
    return 1
}
check cancel-all-gone all_gone
it_finish
