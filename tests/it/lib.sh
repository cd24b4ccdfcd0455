# shellcheck shell=bash
# Integration-test helpers; sourced by tests/it/[0-9]*.sh.
#
#   . "$(dirname "$0")/lib.sh"
#   it_setup                      # temp dir, certificate, free port, traps
#   start_daemon [INI LINES...]   # plain "key = value" lines go to [server];
#                                 # a "[route /x]" line starts a new section
#   check NAME CMD...             # prints "ok NAME" or "FAIL NAME: why"
#   probe [PROBE OPTIONS] SCENARIO ARGS...   # wtprobe against 127.0.0.1
#   probe6 ...                    # the same against [::1]
#   client PATH [WTCLIENT OPTIONS] # build/wtclient --insecure, 127.0.0.1
#   client_exit WANT PATH [OPTS]  # ...whose exit status must be WANT
#   log_has STRING                # daemon.log contains STRING (waits 3 s)
#   backend tcp|udp MODE          # a test backend (tbackend); prints its port
#   redis_start                   # a redis-server on $RPORT (tests of [cluster])
#   notify_listen SECS [CMD], notify_stop, notes_have REGEX
#                                 # systemd's notify socket (tests of sd_notify)
#   held_start, held_finish       # a transfer held open across a restart
#   witness_start SECS            # a well-behaved client beside an attack ...
#   witness_check                 # ... was served throughout (see below)
#   it_finish                     # daemon still alive? stop it, exit status
#
# Every test line goes through `check`, so tests/run.sh counts them.
# BUILD selects the build directory (default build); PROBE_TIMEOUT the
# probe's --timeout (default 10 s); IT_KEEP=1 keeps the temp directory
# (config, certificate, daemon.log, probe.err).

set -u
IT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
IT_ROOT=$(cd "$IT_DIR/../.." && pwd)
cd "$IT_ROOT" || exit 1
BUILD=${BUILD:-build}
case "$BUILD" in /*) ;; *) BUILD="$IT_ROOT/$BUILD" ;; esac
IT_NAME=$(basename "$0" .sh)
TMP=
PORT=
CERT=
KEY=
DAEMON_PID=
IT_FAILED=0
PROBE_TIMEOUT=${PROBE_TIMEOUT:-10}

it_cleanup() {
    local b
    if [ -n "$TMP" ] && [ -f "$TMP/backends.pids" ]; then
        for b in $(cat "$TMP/backends.pids"); do
            kill -KILL -- "-$b" 2>/dev/null
        done
    fi
    if [ -n "$DAEMON_PID" ] && kill -0 "$DAEMON_PID" 2>/dev/null; then
        kill -KILL "$DAEMON_PID" 2>/dev/null
        wait "$DAEMON_PID" 2>/dev/null
    fi
    DAEMON_PID=
    if [ -n "$TMP" ] && [ -d "$TMP" ] && [ -z "${IT_KEEP:-}" ]; then
        rm -rf "$TMP"
    fi
}

# Prints FAIL for the whole script and exits (set-up problems).
it_abort() {
    echo "FAIL $IT_NAME: $*"
    if [ -n "$TMP" ] && [ -f "$TMP/daemon.log" ]; then
        tail -n 20 "$TMP/daemon.log" | sed 's/^/    | /'
    fi
    exit 1
}

# A certificate like the browsers accept: ECDSA P-256, 13 days, SAN
# localhost, 127.0.0.1, ::1.
it_make_cert() {
    local dir=$1
    if [ -x scripts/gen-dev-cert.sh ]; then
        scripts/gen-dev-cert.sh "$dir" >"$dir/gen-dev-cert.log" 2>&1
        local f
        for f in "$dir"/*.pem "$dir"/*.crt "$dir"/*.key; do
            [ -f "$f" ] || continue
            if [ -z "$CERT" ] && grep -q 'BEGIN CERTIFICATE' "$f"; then
                CERT=$f
            elif [ -z "$KEY" ] && grep -q 'PRIVATE KEY' "$f"; then
                KEY=$f
            fi
        done
        [ -n "$CERT" ] && [ -n "$KEY" ] && return 0
        CERT=
        KEY=
    fi
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
        -nodes -keyout "$dir/key.pem" -out "$dir/cert.pem" -days 13 \
        -subj /CN=localhost \
        -addext "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1" \
        >"$dir/openssl.log" 2>&1 || return 1
    CERT=$dir/cert.pem
    KEY=$dir/key.pem
}

# A UDP port that nothing on 127.0.0.1 / ::1 (or any address) uses now.
it_free_port() {
    local port hex
    for _ in $(seq 1 50); do
        port=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
        hex=$(printf ':%04X' "$port")
        if ! cat /proc/net/udp /proc/net/udp6 2>/dev/null |
            awk '{print $2}' | grep -q -- "$hex\$"; then
            echo "$port"
            return 0
        fi
    done
    return 1
}

it_setup() {
    TMP=$(mktemp -d "${TMPDIR:-/tmp}/wtrelayd-it.XXXXXX") || it_abort "mktemp"
    trap it_cleanup EXIT
    trap 'exit 130' INT TERM
    [ -x "$BUILD/wtrelayd" ] || it_abort "$BUILD/wtrelayd not built"
    [ -x "$BUILD/wtprobe" ] || it_abort "$BUILD/wtprobe not built"
    [ -x "$BUILD/wtclient" ] || it_abort "$BUILD/wtclient not built"
    it_make_cert "$TMP" || it_abort "cannot make a certificate"
}

# it_free_tcp_port: a TCP port nothing listens on now (random, checked in
# /proc/net/tcp*).
it_free_tcp_port() {
    local port hex
    for _ in $(seq 1 50); do
        port=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
        hex=$(printf ':%04X' "$port")
        if ! awk '{print $2}' /proc/net/tcp /proc/net/tcp6 2>/dev/null | grep -q -- "$hex\$"; then
            echo "$port"
            return 0
        fi
    done
    return 1
}

it_write_conf() {
    local conf=$TMP/wtrelayd.ini line
    {
        echo "[server]"
        echo "listen = 127.0.0.1:$PORT, [::1]:$PORT"
        echo "cert = $CERT"
        echo "key = $KEY"
        echo "log_level = debug"
        # Every test client comes from 127.0.0.1: the per-address limits
        # (tests/it/75-per-address.sh) are off unless a test sets them
        # (a later line wins).
        echo "max_connections_per_address = 0"
        echo "max_handshakes_per_address = 0"
        echo "max_sessions_per_address = 0"
        echo "connection_rate_per_address = 0"
        for line in "$@"; do
            printf '%s\n' "$line"
        done
        echo
        echo "[route /echo]"
        echo "handler = echo"
        echo
        echo "[route /expire]"
        echo "handler = echo"
        echo "max_session_duration = 1s"
        echo "expire_code = 4343"
        echo "expire_reason = expired by test"
    } >"$conf"
}

# start_daemon [INI LINES...]: starts $BUILD/wtrelayd, waits for "listening".
start_daemon() {
    for _ in 1 2 3; do
        PORT=$(it_free_port) || it_abort "no free UDP port"
        it_write_conf "$@"
        spawn_daemon && return 0
        # exited: a port clash is worth another try, anything else is not
        grep -qi 'in use' "$TMP/daemon.log" || break
    done
    it_abort "daemon exited at start-up"
}

# spawn_daemon: starts $BUILD/${DAEMON_BIN:-wtrelayd} on the current $TMP/wtrelayd.ini (a
# fresh daemon.log) and waits for "listening": 0, or 1 when it exited first.
spawn_daemon() {
    local _
    "$BUILD/${DAEMON_BIN:-wtrelayd}" -c "$TMP/wtrelayd.ini" 2>"$TMP/daemon.log" &
    DAEMON_PID=$!
    for _ in $(seq 1 100); do
        if ! kill -0 "$DAEMON_PID" 2>/dev/null; then
            wait "$DAEMON_PID" 2>/dev/null
            DAEMON_PID=
            return 1
        fi
        grep -q 'listening' "$TMP/daemon.log" 2>/dev/null && return 0
        sleep 0.05
    done
    it_abort "daemon did not log 'listening' within 5 s"
}

daemon_alive() {
    [ -n "$DAEMON_PID" ] && kill -0 "$DAEMON_PID" 2>/dev/null
}

# stop_daemon: SIGTERM, then wait (SIGKILL after 10 s).  Sets DAEMON_STATUS.
DAEMON_STATUS=
stop_daemon() {
    local _
    DAEMON_STATUS=
    [ -n "$DAEMON_PID" ] || return 0
    kill -TERM "$DAEMON_PID" 2>/dev/null
    for _ in $(seq 1 200); do
        kill -0 "$DAEMON_PID" 2>/dev/null || break
        sleep 0.05
    done
    if kill -0 "$DAEMON_PID" 2>/dev/null; then
        kill -KILL "$DAEMON_PID" 2>/dev/null
        echo "daemon ignored SIGTERM for 10 s; killed" >>"$TMP/daemon.log"
    fi
    wait "$DAEMON_PID" 2>/dev/null
    DAEMON_STATUS=$?
    DAEMON_PID=
    return 0
}

# held_start (not inside check: its processes must stay in the test's
# shell): a wtclient transfer to /echo that sends "first", has it
# echoed (0; 1 when it was not within 5 s) and holds its stream open;
# held_finish then sends "second" and waits for wtclient's end: HELD_RC its
# status, HELD_MS how long it took (tests of what a restart does to a
# transfer in progress: tests/it/34, 92).
HELD_CPID=
HELD_WPID=
HELD_RC=
HELD_MS=
held_start() {
    local _
    mkfifo "$TMP/held.in"
    (
        exec 3>"$TMP/held.in"
        printf first >&3
        while [ ! -e "$TMP/held.go" ]; do sleep 0.05; done
        printf second >&3
        sleep 30
    ) &
    HELD_WPID=$!
    timeout 40 "$BUILD/wtclient" --insecure --send "$TMP/held.in" \
        "https://127.0.0.1:$PORT/echo" >"$TMP/client.out" 2>"$TMP/client.err" &
    HELD_CPID=$!
    for _ in $(seq 1 100); do
        grep -q first "$TMP/client.out" 2>/dev/null && return 0
        sleep 0.05
    done
    return 1
}
held_finish() {
    local t0 t1
    t0=$(date +%s%N)
    touch "$TMP/held.go"
    wait "$HELD_CPID"
    HELD_RC=$?
    t1=$(date +%s%N)
    HELD_MS=$(((t1 - t0) / 1000000))
    pkill -P "$HELD_WPID" 2>/dev/null
    kill "$HELD_WPID" 2>/dev/null
    wait "$HELD_WPID" 2>/dev/null
}
# held_reset_quick: the held transfer ended in a failure within 5 s (its
# client told at once, not after its idle timeout)
held_reset_quick() {
    echo "wtclient exit $HELD_RC after $HELD_MS ms"
    [ "$HELD_RC" -eq 1 ] && [ "$HELD_MS" -lt 5000 ]
}

# notify_listen SECONDS [READY-COMMAND]: systemd's end of NOTIFY_SOCKET
# (tests/tools/notifylisten) on $SOCK, a fresh one, its lines in $NOTES
# (tests/it/50, 88); notify_stop ends it; notes_have REGEX: a message
# matching REGEX arrived (waits up to 5 s).
SOCK=
NOTES=
LISTENER=
notify_listen() {
    SOCK=$TMP/notify.sock
    NOTES=$TMP/notify.out
    [ -x "$BUILD/notifylisten" ] || it_abort "$BUILD/notifylisten not built"
    rm -f "$SOCK" "$NOTES"
    "$BUILD/notifylisten" "$SOCK" "$@" >"$NOTES" 2>"$TMP/notify.err" &
    LISTENER=$!
    for _ in $(seq 1 100); do
        grep -q listening "$NOTES" 2>/dev/null && return 0
        sleep 0.05
    done
    it_abort "notifylisten did not start: $(cat "$TMP/notify.err")"
}
notify_stop() {
    [ -n "$LISTENER" ] && kill -TERM "$LISTENER" 2>/dev/null
    wait "$LISTENER" 2>/dev/null
    LISTENER=
}
notes_have() {
    for _ in $(seq 1 100); do
        grep -qE -- "$1" "$NOTES" && return 0
        sleep 0.05
    done
    echo "no notify message matches $1; got: $(cut -d' ' -f2- "$NOTES" | sort | uniq -c | tr '\n' ';')"
    return 1
}

# redis_start: a redis-server of the test's own on 127.0.0.1:$RPORT, no
# persistence (REDIS_PID; killed at the end like the backends); 0 once it
# answers PING
REDIS_PID=
redis_start() {
    local _
    setsid redis-server --port "$RPORT" --bind 127.0.0.1 --save '' \
        --appendonly no >"$TMP/redis.log" 2>&1 &
    REDIS_PID=$!
    echo "$REDIS_PID" >>"$TMP/backends.pids"
    for _ in $(seq 1 100); do
        redis-cli -p "$RPORT" ping 2>/dev/null | grep -q PONG && return 0
        sleep 0.05
    done
    return 1
}

# probe [--timeout S] [--draft N] [--window BYTES] [--verbose] [--no-grease]
#       [--max-data N] [--uni-streams N] [--uni-window N] [--bind ADDR] SCENARIO ARGS...
# Output: $TMP/probe.out (result line), $TMP/probe.err (diagnostics).
PROBE_HOST=127.0.0.1
probe() {
    local opts=()
    while [ $# -gt 0 ]; do
        case "$1" in
        --timeout | --draft | --ca | --window | --origin | --max-data | --uni-streams | \
            --uni-window | --bind | --fc-data) opts+=("$1" "$2"); shift 2 ;;
        --*) opts+=("$1"); shift ;;
        *) break ;;
        esac
    done
    if ! daemon_alive; then
        echo "the daemon is not running"
        return 1
    fi
    local limit=$((PROBE_TIMEOUT + 20))
    timeout -k 2 "$limit" "$BUILD/wtprobe" --timeout "$PROBE_TIMEOUT" "${opts[@]}" \
        --insecure "$PROBE_HOST" "$PORT" "$@" >"$TMP/probe.out" 2>"$TMP/probe.err"
    local rc=$?
    cat "$TMP/probe.out"
    return $rc
}

# client PATH [OPTIONS...]: wtclient against https://$CLIENT_HOST:$PORT$PATH
# (--insecure unless the options bring their own trust).  Stdout goes to
# $TMP/client.out, stderr to $TMP/client.err; returns wtclient's status and
# prints its last stderr line on failure.
CLIENT_HOST=127.0.0.1
client() {
    local path=$1 trust=--insecure a rc
    shift
    for a in "$@"; do
        case "$a" in --cert-hash | --cafile) trust= ;; esac
    done
    timeout -k 2 $((PROBE_TIMEOUT + 30)) "$BUILD/wtclient" --timeout "$PROBE_TIMEOUT" \
        ${trust:+"$trust"} "$@" "https://$CLIENT_HOST:$PORT$path" \
        >"$TMP/client.out" 2>"$TMP/client.err"
    rc=$?
    [ $rc -eq 0 ] || tail -n 1 "$TMP/client.err"
    return $rc
}

# client_exit WANT PATH [OPTIONS...]: wtclient exits with status WANT.
client_exit() {
    local want=$1 rc
    shift
    client "$@" >/dev/null
    rc=$?
    [ $rc -eq "$want" ] && return 0
    echo "wtclient exit $rc, wanted $want: $(tail -n 1 "$TMP/client.err")"
    return 1
}

# client_err_has TEXT: wtclient's stderr (last run) contains TEXT.
client_err_has() {
    grep -qF -- "$1" "$TMP/client.err" && return 0
    echo "wtclient stderr lacks: $1 (has: $(tail -n 1 "$TMP/client.err"))"
    return 1
}

# bench WANT... -- WTBENCH-ARGS...: wtbench against /echo exits 0 and its
# JSON summary contains every WANT.
bench() {
    local wants=() out w
    while [ "$1" != "--" ]; do wants+=("$1"); shift; done
    shift
    out=$(timeout -k 2 90 "$BUILD/wtbench" --insecure --json -t 60 "$@" \
        "https://$CLIENT_HOST:$PORT/echo" 2>"$TMP/bench.err") ||
        { echo "wtbench failed: $out $(tail -n 1 "$TMP/bench.err")"; return 1; }
    for w in "${wants[@]}"; do
        case "$out" in *"$w"*) ;; *) echo "wanted $w in $out"; return 1 ;; esac
    done
}

# backend tcp|udp MODE: starts $BUILD/tbackend (tests/tools/tbackend.c) on a
# free 127.0.0.1 port, in a process group of its own that the test's end
# kills (its per-connection children too); prints the port.
backend() {
    local out _
    out=$(mktemp "$TMP/backend.XXXXXX")
    setsid "$BUILD/tbackend" "$1" 0 "$2" >"$out" 2>&1 &
    echo $! >>"$TMP/backends.pids"
    for _ in $(seq 1 100); do
        if grep -q '^listening' "$out"; then
            awk '/^listening/ {print $2}' "$out"
            return 0
        fi
        sleep 0.05
    done
    echo "tbackend $1 $2 did not start: $(cat "$out")" >&2
    return 1
}

# witness_start SECS: a well-behaved client runs beside whatever the test
# does next: WITNESS_RATE (default 50) request/response round trips a
# second on /echo for SECS seconds, from its own connection.
# witness_check: waits for it; every request must have been answered, none
# later than WITNESS_MAX_MS (default 2000) — one client must never hurt
# another, whether by a crash, a hang or by starving it.
witness_start() {
    local secs=$1 rate=${WITNESS_RATE:-50}
    rm -f "$TMP/witness.rc"
    WITNESS_WAIT=$((secs + 40))
    (
        timeout -k 2 $((secs + 30)) "$BUILD/wtbench" --insecure --json --mode rps \
            --rate "$rate" -n $((secs * rate)) -t $((secs + 20)) \
            "https://$CLIENT_HOST:$PORT/echo" >"$TMP/witness.out" 2>"$TMP/witness.err"
        echo $? >"$TMP/witness.rc"
    ) &
}

# (runs under check, in a subshell: the status comes through a file)
witness_check() {
    local rc out n max _
    for _ in $(seq 1 $((${WITNESS_WAIT:-60} * 10))); do
        [ -s "$TMP/witness.rc" ] && break
        sleep 0.1
    done
    [ -s "$TMP/witness.rc" ] || { echo "witness: still running"; return 1; }
    rc=$(cat "$TMP/witness.rc")
    out=$(cat "$TMP/witness.out")
    [ "$rc" -eq 0 ] || { echo "witness: exit $rc: $out $(tail -n 1 "$TMP/witness.err")"; return 1; }
    n=$(printf '%s' "$out" | sed -n 's/.*"lat_us":{"n":\([0-9]*\).*/\1/p')
    max=$(printf '%s' "$out" | sed -n 's/.*"lat_us":{[^}]*"max":\([0-9.]*\)}.*/\1/p')
    [ -n "$n" ] && [ -n "$max" ] || { echo "witness: no figures in: $out"; return 1; }
    if awk -v m="$max" -v lim="${WITNESS_MAX_MS:-2000}" 'BEGIN { exit !(m > lim * 1000) }'; then
        echo "witness: a request took $max us (limit ${WITNESS_MAX_MS:-2000} ms): $out"
        return 1
    fi
}

# probe_says TEXT PROBE-ARGS...: the probe passes and its result line
# contains TEXT.
probe_says() {
    local want=$1 out
    shift
    out=$(probe "$@") || { echo "$out"; return 1; }
    case "$out" in *"$want"*) return 0 ;; esac
    echo "wanted \"$want\", got: $out"
    return 1
}

# probe_fails TEXT PROBE-ARGS...: the probe reports a failed expectation
# (exit 1) whose result line contains TEXT.
probe_fails() {
    local want=$1 out rc
    shift
    out=$(probe "$@")
    rc=$?
    [ $rc -eq 1 ] || { echo "wanted exit 1, got $rc: $out"; return 1; }
    case "$out" in *"$want"*) return 0 ;; esac
    echo "wanted a failure with \"$want\", got: $out"
    return 1
}

probe6() {
    local PROBE_HOST=::1
    probe "$@"
}

# log_has STRING: the daemon log contains STRING (fixed string), waiting up
# to 3 s for it to appear.
log_has() {
    local _
    for _ in $(seq 1 60); do
        grep -qF -- "$1" "$TMP/daemon.log" 2>/dev/null && return 0
        sleep 0.05
    done
    echo "daemon log lacks: $1"
    return 1
}

# log_lacks STRING: the daemon log does not contain STRING (now).
log_lacks() {
    if grep -qF -- "$1" "$TMP/daemon.log" 2>/dev/null; then
        echo "daemon log has: $(grep -F -- "$1" "$TMP/daemon.log" | head -n 1)"
        return 1
    fi
    return 0
}

# check NAME CMD...: runs CMD; "ok NAME" when it succeeds, else
# "FAIL NAME: <its last output line>" plus the tails of the probe's
# diagnostics and the daemon log (indented, so they are not counted).
check() {
    local name=$1 out rc why
    shift
    [ -n "$TMP" ] && : >"$TMP/probe.err"
    out=$("$@" 2>&1)
    rc=$?
    if [ $rc -eq 0 ]; then
        echo "ok $name"
        return 0
    fi
    IT_FAILED=$((IT_FAILED + 1))
    why=$(printf '%s\n' "$out" | grep -v '^[[:space:]]*$' | tail -n 1)
    [ -n "$why" ] || why="exit status $rc"
    echo "FAIL $name: $why"
    if [ -s "$TMP/probe.err" ]; then
        echo "    probe stderr:"
        tail -n 15 "$TMP/probe.err" | sed 's/^/    | /'
    fi
    if [ -f "$TMP/daemon.log" ]; then
        echo "    daemon.log:"
        tail -n 25 "$TMP/daemon.log" | sed 's/^/    | /'
    fi
    if ! daemon_alive && [ -n "$DAEMON_PID" ]; then
        echo "    (the daemon is no longer running)"
    fi
    return 1
}

# Sanitizer reports or a crash in the log.
it_log_clean() {
    if grep -qE 'ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:|Assertion .* failed' \
        "$TMP/daemon.log"; then
        grep -E 'ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:|Assertion .* failed' \
            "$TMP/daemon.log" | head -n 3
        return 1
    fi
    return 0
}

# (after stop_daemon, which must run in the main shell, not under check)
it_exit_clean() {
    if [ "$DAEMON_STATUS" != 0 ]; then
        echo "daemon exited with status $DAEMON_STATUS after SIGTERM"
        return 1
    fi
    it_log_clean
}

# it_finish: the daemon survived the script, and stops cleanly.
it_finish() {
    check "$IT_NAME-daemon-alive" daemon_alive
    if daemon_alive; then
        stop_daemon
        check "$IT_NAME-clean-exit" it_exit_clean
    fi
    [ "$IT_FAILED" -eq 0 ]
    exit $?
}
