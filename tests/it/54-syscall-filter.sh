#!/usr/bin/env bash
# The sandbox in systemd/wtrelayd.service against what the daemon really
# does.  There is no systemd as PID 1 here, so the daemon runs under strace
# through every kind of work it has (echo, datagrams, broadcast, forward to
# TCP and UDP backends, the admin endpoint, [cluster]'s Redis connections
# and their loss, a reload, a drain) and every
# system call it made must be one the unit's SystemCallFilter= lines allow
# (expanded with systemd-analyze, read from the unit so a change to either
# side is checked), every socket a family RestrictAddressFamilies= allows,
# and no mapping both writable and executable (MemoryDenyWriteExecute=).
# Under the unit a refused call fails with EPERM (SystemCallErrorNumber=):
# the daemon would not be killed but would misbehave in ways no other test
# sees.
. "$(dirname "$0")/lib.sh"
it_setup
UNIT=$IT_ROOT/systemd/wtrelayd.service
command -v strace >/dev/null || it_abort "strace is missing (scripts/install-deps.sh --test)"
command -v systemd-analyze >/dev/null || it_abort "systemd-analyze is missing (scripts/install-deps.sh --test)"
command -v curl >/dev/null || it_abort "curl is missing (scripts/install-deps.sh --test)"

# expand NAME...: the system calls of groups (@x, recursively) and names
expand() {
    local n
    for n in "$@"; do
        case "$n" in
        @*) systemd-analyze syscall-filter "$n" | awk 'NR > 1 && $1 !~ /^#/ { print $1 }' |
            while read -r m; do expand "$m"; done ;;
        *) echo "$n" ;;
        esac
    done
}

# The allow list the unit builds: its first SystemCallFilter= line without
# ~ sets it, later lines add to it, lines with ~ take calls away (systemd's
# order-independent reading for an allow list: a deny wins).
allowed_calls() {
    local allow=() deny=() v
    while IFS= read -r v; do
        case "$v" in
        '~'*) read -ra words <<<"${v#\~}"; deny+=("${words[@]}") ;;
        *) read -ra words <<<"$v"; allow+=("${words[@]}") ;;
        esac
    done < <(sed -n 's/^SystemCallFilter=//p' "$UNIT")
    [ ${#allow[@]} -gt 0 ] || return 1
    expand "${allow[@]}" | sort -u >"$TMP/allow"
    if [ ${#deny[@]} -gt 0 ]; then
        expand "${deny[@]}" | sort -u >"$TMP/deny"
    else
        : >"$TMP/deny"
    fi
    comm -23 "$TMP/allow" "$TMP/deny"
}
allowed_calls >"$TMP/allowed" || it_abort "no SystemCallFilter= allow list in $UNIT"
check filter-expands test "$(wc -l <"$TMP/allowed")" -gt 100

# The daemon under strace: every kind of work it does
ECHO=$(backend tcp echo) || it_abort "no echo backend"
UECHO=$(backend udp echo) || it_abort "no udp echo backend"
APORT=$(it_free_tcp_port) || it_abort "no free TCP port"
PORT=$(it_free_port) || it_abort "no free UDP port"
# [cluster]: the Redis connections too (a redis-server of its own)
RPORT=$(it_free_tcp_port) || it_abort "no free TCP port"
redis_start || it_abort "redis-server did not start: $(tail -n 3 "$TMP/redis.log")"
it_write_conf "[cluster]" "redis = redis://127.0.0.1:$RPORT" "heartbeat = 200ms" "node_timeout = 1s" \
    "[route /chat]" "handler = broadcast" "tag = yes" "announce = yes" \
    "[route /fwd]" "handler = forward" "backend = tcp://127.0.0.1:$ECHO" \
    "datagram_backend = udp://127.0.0.1:$UECHO" \
    "[route /named]" "handler = forward" "backend = tcp://localhost:$ECHO" \
    "[admin]" "listen = 127.0.0.1:$APORT"
# (LeakSanitizer cannot run under ptrace: the ASan build's leak check is
# off for this one run; every other test keeps it)
ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 \
    strace -f -qq -o "$TMP/strace" "$BUILD/wtrelayd" -c "$TMP/wtrelayd.ini" 2>"$TMP/daemon.log" &
STRACE_PID=$!
for _ in $(seq 1 200); do
    grep -q 'listening' "$TMP/daemon.log" 2>/dev/null && break
    kill -0 "$STRACE_PID" 2>/dev/null || it_abort "the daemon exited at start-up under strace"
    sleep 0.05
done
DAEMON_PID=$(pgrep -P "$STRACE_PID" | head -n 1)
[ -n "$DAEMON_PID" ] || it_abort "no daemon process under strace"

head -c 200000 /dev/urandom >"$TMP/blob"
check echo client /echo --verify --send "$TMP/blob" --uni "$TMP/blob" --datagram hello
check cluster-connected log_has "cluster: connected"
check broadcast probe bc-relay "/chat?room=a" tag
# Redis gone: reconnection attempts (refused connections), local rooms on
kill -KILL "$REDIS_PID"
check cluster-lost log_has "local rooms go on"
sleep 0.5
check broadcast-redis-down probe bc-relay "/chat?room=b" tag
check forward client /fwd --verify --send "$TMP/blob" --datagram hello
check forward-named client /named --verify --send "$TMP/blob"
check admin-metrics curl -sf --max-time 5 -o /dev/null "http://127.0.0.1:$APORT/metrics"
kill -HUP "$DAEMON_PID"
check reloaded log_has "reload"
check echo-after-reload client /echo --verify --send "$TMP/blob"
kill -TERM "$DAEMON_PID"
for _ in $(seq 1 200); do
    kill -0 "$STRACE_PID" 2>/dev/null || break
    sleep 0.05
done
wait "$STRACE_PID"
status=$?
DAEMON_PID=
check clean-exit test "$status" -eq 0

# What it did, against what the unit allows
sed -n 's/^[0-9]\+ \+\([a-z_0-9]\+\)(.*/\1/p' "$TMP/strace" | sort -u >"$TMP/used"
check calls-traced test "$(wc -l <"$TMP/used")" -gt 20
refused() {
    local r
    r=$(comm -23 "$TMP/used" "$TMP/allowed" | tr '\n' ' ')
    [ -z "$r" ] && return 0
    echo "called but not allowed by SystemCallFilter=: $r"
    return 1
}
check syscalls-allowed refused

families() {
    local allow bad
    allow=$(sed -n 's/^RestrictAddressFamilies=//p' "$UNIT" | tr ' ' '\n' | grep . | sort -u)
    [ -n "$allow" ] || { echo "no RestrictAddressFamilies= in the unit"; return 1; }
    bad=$(sed -n 's/^[0-9]\+ \+socket(\(AF_[A-Z0-9]\+\).*/\1/p' "$TMP/strace" | sort -u |
        grep -vxF "$allow" | tr '\n' ' ')
    [ -z "$bad" ] && return 0
    echo "sockets of families the unit refuses: $bad"
    return 1
}
check address-families families

wx() {
    local bad
    bad=$(grep -E '^[0-9]+ +(mmap|mprotect|pkey_mprotect)\(.*PROT_WRITE\|PROT_EXEC|PROT_EXEC\|PROT_WRITE' \
        "$TMP/strace" | head -n 3)
    [ -z "$bad" ] && return 0
    echo "writable and executable memory: $bad"
    return 1
}
check no-write-exec wx
[ "$IT_FAILED" -eq 0 ]
