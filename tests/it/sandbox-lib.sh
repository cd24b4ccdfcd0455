# shellcheck shell=bash
# The daemon under strace, checked against the sandbox of
# systemd/wtrelayd.service (tests/it/54 for one process, 89 for a
# supervisor and its workers), over lib.sh.
#
#   sandbox_allowed               # $TMP/allowed: the calls the unit's
#                                 # SystemCallFilter= lines allow
#   strace_start READY_TEXT       # the daemon on $TMP/wtrelayd.ini under
#                                 # strace -f; DAEMON_PID is the daemon's
#   strace_stop                   # SIGTERM, wait; STRACE_STATUS, $TMP/used
#   sandbox_refused               # used calls the filter refuses (check it)
#   sandbox_families, sandbox_wx  # socket families and W+X mappings
UNIT=$IT_ROOT/systemd/wtrelayd.service
STRACE_PID=
STRACE_STATUS=

# expand NAME...: the system calls of groups (@x, recursively) and names
sandbox_expand() {
    local n
    for n in "$@"; do
        case "$n" in
        @*) systemd-analyze syscall-filter "$n" | awk 'NR > 1 && $1 !~ /^#/ { print $1 }' |
            while read -r m; do sandbox_expand "$m"; done ;;
        *) echo "$n" ;;
        esac
    done
}

# The allow list the unit builds: its SystemCallFilter= lines without ~
# add to it, lines with ~ take calls away (for an allow list systemd's
# reading is order-independent: a deny wins).  1 when there is none.
sandbox_allowed() {
    local allow=() deny=() v words
    while IFS= read -r v; do
        case "$v" in
        '~'*) read -ra words <<<"${v#\~}"; deny+=("${words[@]}") ;;
        *) read -ra words <<<"$v"; allow+=("${words[@]}") ;;
        esac
    done < <(sed -n 's/^SystemCallFilter=//p' "$UNIT")
    [ ${#allow[@]} -gt 0 ] || return 1
    sandbox_expand "${allow[@]}" | sort -u >"$TMP/allow"
    if [ ${#deny[@]} -gt 0 ]; then
        sandbox_expand "${deny[@]}" | sort -u >"$TMP/deny"
    else
        : >"$TMP/deny"
    fi
    comm -23 "$TMP/allow" "$TMP/deny" >"$TMP/allowed"
}

# strace_start READY_TEXT: (LeakSanitizer cannot run under ptrace: the
# ASan build's leak check is off for this one run; every other test
# keeps it)
strace_start() {
    local _
    ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 \
        strace -f -qq -o "$TMP/strace" "$BUILD/wtrelayd" -c "$TMP/wtrelayd.ini" \
        2>"$TMP/daemon.log" &
    STRACE_PID=$!
    for _ in $(seq 1 200); do
        grep -q "$1" "$TMP/daemon.log" 2>/dev/null && break
        kill -0 "$STRACE_PID" 2>/dev/null || it_abort "the daemon exited at start-up under strace"
        sleep 0.05
    done
    DAEMON_PID=$(pgrep -P "$STRACE_PID" | head -n 1)
    [ -n "$DAEMON_PID" ] || it_abort "no daemon process under strace"
}

strace_stop() {
    local _
    kill -TERM "$DAEMON_PID"
    for _ in $(seq 1 300); do
        kill -0 "$STRACE_PID" 2>/dev/null || break
        sleep 0.05
    done
    wait "$STRACE_PID"
    STRACE_STATUS=$?
    DAEMON_PID=
    sed -n 's/^[0-9]\+ \+\([a-z_0-9]\+\)(.*/\1/p' "$TMP/strace" | sort -u >"$TMP/used"
}

sandbox_refused() {
    local r
    r=$(comm -23 "$TMP/used" "$TMP/allowed" | tr '\n' ' ')
    [ -z "$r" ] && return 0
    echo "called but not allowed by SystemCallFilter=: $r"
    return 1
}

sandbox_families() {
    local allow bad
    allow=$(sed -n 's/^RestrictAddressFamilies=//p' "$UNIT" | tr ' ' '\n' | grep . | sort -u)
    [ -n "$allow" ] || { echo "no RestrictAddressFamilies= in the unit"; return 1; }
    bad=$(sed -n 's/^[0-9]\+ \+socket(\(AF_[A-Z0-9]\+\).*/\1/p' "$TMP/strace" | sort -u |
        grep -vxF "$allow" | tr '\n' ' ')
    [ -z "$bad" ] && return 0
    echo "sockets of families the unit refuses: $bad"
    return 1
}

sandbox_wx() {
    local bad
    bad=$(grep -E '^[0-9]+ +(mmap|mprotect|pkey_mprotect)\(.*PROT_WRITE\|PROT_EXEC|PROT_EXEC\|PROT_WRITE' \
        "$TMP/strace" | head -n 3)
    [ -z "$bad" ] && return 0
    echo "writable and executable memory: $bad"
    return 1
}
