#!/usr/bin/env bash
# workers in the configuration: N, auto, bounds; broadcast routes with
# workers > 1 and no [cluster] are an error naming the route's line (a
# room would not span the workers); workers = 1 is the single process of
# before (no supervisor); a worker's JSON log lines carry "worker"; a
# second instance on the same addresses is refused; and the supervisor's
# and workers' system calls stay inside the unit's SystemCallFilter=.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/workers-lib.sh"
. "$(dirname "$0")/sandbox-lib.sh"
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
f=$(conf bcastcl "workers = 2" "[route /chat]" "handler = broadcast" "" "[cluster]" "redis = redis://127.0.0.1:6379")
check wcfg-broadcast-cluster-ok "$BUILD/wtrelayd" -t -c "$f"
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
stop_daemon
check wcfg-auto-exit it_exit_clean

# The supervisor's and workers' system calls (fork, exec, prctl,
# setpgid, socketpair, SO_ATTACH_REUSEPORT_CBPF...) against the unit's
# SystemCallFilter= (as tests/it/54 does for one process): workers = 2
# under strace -f through echo, /metrics, a reload, a worker's death and
# restart, and the drain.
if command -v strace >/dev/null && command -v systemd-analyze >/dev/null; then
    sandbox_allowed || it_abort "no SystemCallFilter= allow list in $UNIT"
    aport=$(it_free_tcp_port) || it_abort "no free TCP port"
    it_write_conf "workers = 2" "[admin]" "listen = 127.0.0.1:$aport"
    strace_start 'all 2 workers ready'
    check wcfg-strace-echo client /echo --datagram traced
    check wcfg-strace-metrics curl -sf --max-time 5 -o /dev/null "http://127.0.0.1:$aport/metrics"
    kill -HUP "$DAEMON_PID"
    check wcfg-strace-reloaded log_has 'all 2 workers reloaded'
    kill -KILL "$(worker_pid 1)"
    check wcfg-strace-restarted log_has 'supervisor: worker 1 (pid'
    strace_stop
    check wcfg-strace-exit-0 test "$STRACE_STATUS" -eq 0
    sandboxed() {
        grep -qx execve "$TMP/used" && grep -qx prctl "$TMP/used" ||
            { echo "no execve/prctl traced: not the workers' calls"; return 1; }
        sandbox_refused
    }
    check wcfg-syscalls-allowed sandboxed
else
    echo "    (no strace or systemd-analyze: the sandbox leg is skipped; scripts/install-deps.sh --test)"
fi
[ "$IT_FAILED" -eq 0 ]
