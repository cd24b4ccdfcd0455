# shellcheck shell=bash
# Helpers for the tests of workers = N (tests/it/85..89), over lib.sh.
#
#   start_workers N [INI LINES...]  # start_daemon with workers = N and an
#                                   # admin endpoint; waits for all N ready
#   worker_pid I                    # the pid of worker I (from the log)
#   metric NAME WORKER              # a worker's sample from /metrics
#   metrics_get FILE                # /metrics into $TMP/FILE
ADMIN=

start_workers() {
    local n=$1 aport
    shift
    aport=$(it_free_tcp_port) || it_abort "no free TCP port"
    ADMIN="http://127.0.0.1:$aport"
    start_daemon "workers = $n" "$@" "[admin]" "listen = 127.0.0.1:$aport"
    local _
    if [ "$n" = auto ]; then # as the daemon counts: online CPUs, 64 at most
        n=$(getconf _NPROCESSORS_ONLN)
        [ "$n" -gt 64 ] && n=64
    fi
    for _ in $(seq 1 200); do
        grep -q "supervisor: all $n workers ready" "$TMP/daemon.log" && return 0
        daemon_alive || it_abort "supervisor exited at start-up"
        sleep 0.05
    done
    it_abort "the $n workers were not ready within 10 s"
}

# the newest pid the supervisor logged for worker I
worker_pid() {
    sed -n "s/.*supervisor: worker $1 started (pid \([0-9]*\)).*/\1/p" \
        "$TMP/daemon.log" | tail -n 1
}

metrics_get() {
    curl -s --max-time 5 "$ADMIN/metrics" >"$TMP/$1"
}

# metric NAME WORKER [FILE]: the value of NAME{worker="W"} (first sample)
metric() {
    local f=${3:-$TMP/metrics.now}
    [ -n "${3:-}" ] || metrics_get metrics.now
    awk -v n="$1" -v w="worker=\"$2\"" '
        index($1, n "{") == 1 && index($1, w) { print $2; exit }' "$f"
}
