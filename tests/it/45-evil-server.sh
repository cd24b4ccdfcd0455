#!/usr/bin/env bash
# The client role against a server that misbehaves (build/wtrelayd-evil,
# tests/tools/evil.c).  Security review (issue 8): a malformed response that
# ends the request stream made the session layer act on a request nghttp3
# was deleting (use-after-free in wtbench with two sessions).  Clients must
# report the failure and go on with their other sessions.
. "$(dirname "$0")/lib.sh"
it_setup
[ -x "$BUILD/wtrelayd-evil" ] || it_abort "$BUILD/wtrelayd-evil not built"

evil_bench() { # wtbench -s 2: the first session fails, the second works
    timeout -k 2 40 "$BUILD/wtbench" --insecure --json -s 2 --mode rps -m 4 \
        -n 2000 -t 20 "https://127.0.0.1:$PORT/echo" >"$TMP/bench.out" 2>"$TMP/bench.err"
    local rc=$?
    [ $rc -le 1 ] || { echo "wtbench exit $rc: $(grep -v '^\[' "$TMP/bench.err" | tail -n 3)"; return 1; }
    grep -q ERROR: "$TMP/bench.err" && { grep ERROR: "$TMP/bench.err" | head -n 2; return 1; }
    grep -q '"sessions_open":1,"sessions_failed":1' "$TMP/bench.out" ||
        { echo "wanted 1 open, 1 failed: $(cat "$TMP/bench.out")"; return 1; }
    grep -q '"requests":2000' "$TMP/bench.out" ||
        { echo "the good session did not finish: $(cat "$TMP/bench.out")"; return 1; }
}

WTEVIL=bad-first DAEMON_BIN=wtrelayd-evil start_daemon
check evil-first-bench evil_bench
stop_daemon

WTEVIL=bad-response DAEMON_BIN=wtrelayd-evil start_daemon
check evil-client client_exit 3 /echo --send /etc/hostname
check evil-client-says client_err_has "closed without a response"
it_finish
