#!/usr/bin/env bash
# workers in the configuration: N, auto, bounds; broadcast routes with
# workers > 1 and no [cluster] are an error naming the route's line (a
# room would not span the workers); workers = 1 is the single process of
# before (no supervisor); a worker's JSON log lines carry "worker".
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/workers-lib.sh"
it_setup
PORT=$(it_free_port) || it_abort "no free UDP port"

conf() { # conf NAME LINES...: a config file with a [server] section
    local f=$TMP/$1.ini
    shift
    { echo "[server]"; echo "listen = 127.0.0.1:$PORT"; echo "cert = $CERT"; echo "key = $KEY"
      printf '%s\n' "$@"; } >"$f"
    echo "$f"
}
# refused FILE TEXT: wtrelayd -t exits 1 and says TEXT
refused() {
    local out rc
    out=$("$BUILD/wtrelayd" -t -c "$1" 2>&1)
    rc=$?
    [ $rc = 1 ] || { echo "exit $rc: $out"; return 1; }
    case "$out" in *"$2"*) return 0 ;; esac
    echo "wanted \"$2\" in: $out"
    return 1
}

f=$(conf bcast "workers = 2" "[route /echo]" "handler = echo" "" "[route /chat]" "handler = broadcast")
check wcfg-broadcast-needs-cluster refused "$f" "$f:9: [route /chat] broadcast with workers = 2 (line 5) needs a [cluster] section"
f=$(conf bcast1 "workers = 1" "[route /chat]" "handler = broadcast")
check wcfg-broadcast-one-worker-ok "$BUILD/wtrelayd" -t -c "$f"
f=$(conf zero "workers = 0")
check wcfg-zero refused "$f" "$f:5: workers"
f=$(conf many "workers = 65")
check wcfg-too-many refused "$f" "$f:5: workers"
f=$(conf word "workers = lots")
check wcfg-not-a-number refused "$f" "$f:5: workers"
f=$(conf auto "workers = auto" "[route /echo]" "handler = echo")
check wcfg-auto "$BUILD/wtrelayd" -t -c "$f"

# workers = 1: one process, no supervisor
start_daemon "workers = 1"
check wcfg-one-no-supervisor log_lacks 'supervisor'
check wcfg-one-serves client /echo --datagram one
check wcfg-one-no-children bash -c "[ -z \"\$(pgrep -P $DAEMON_PID)\" ]"
check wcfg-one-no-worker-prefix log_lacks 'worker 0:'
stop_daemon
check wcfg-one-exit it_exit_clean

# workers = auto on this machine, JSON logs: each worker's lines say so
start_workers auto "log_format = json"
n=$(getconf _NPROCESSORS_ONLN)
[ "$n" -gt 64 ] && n=64
ready_n() { log_has "supervisor: all $n workers ready"; }
check wcfg-auto-is-nproc ready_n
check wcfg-json-worker-field bash -c "grep -q '\"worker\":0,\"msg\":\"listening on udp' '$TMP/daemon.log'"
check wcfg-json-valid bash -c "grep -v '^[^{]' '$TMP/daemon.log' | head -n 50 | python3 -c 'import sys, json; [json.loads(l) for l in sys.stdin]'"
check wcfg-auto-serves client /echo --datagram auto
# a second instance on the same addresses does not join the first's
# SO_REUSEPORT groups: refused as without workers
second() {
    local out rc
    out=$(timeout 10 "$BUILD/wtrelayd" -c "$TMP/wtrelayd.ini" 2>&1)
    rc=$?
    [ $rc = 1 ] || { echo "exit $rc: $out"; return 1; }
    case "$out" in *"in use"*) return 0 ;; esac
    echo "no 'in use' in: $out"
    return 1
}
check wcfg-second-instance-refused second
check wcfg-first-still-serves client /echo --datagram still
it_finish
