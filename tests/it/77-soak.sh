#!/usr/bin/env bash
# The soak: SOAK_SESSIONS sessions (default 100, 4 to a connection) of
# mixed bidi and uni streams (1 B .. 256 KiB) and datagrams on /echo for
# SOAK_SECONDS (default 30 here; make soak: 600), through a bad path on
# the client's side: 1 % loss, 2 % reordered, 1 % duplicated, 5 +- 2 ms
# delay, each way (wtbench --mode mixed).  Every stream byte-exact, no
# session lost, no stream left unfinished, datagrams intact; the daemon's
# RSS flat between the warm-up (20 % of the run, at least 10 s) and the
# end, its open descriptors not grown (and back where they started once
# the client is gone).
. "$(dirname "$0")/lib.sh"
SECS=${SOAK_SECONDS:-30}
SESS=${SOAK_SESSIONS:-100}
PATHOPTS=${SOAK_PATH:---loss 0.01 --reorder 0.02 --dup 0.01 --delay 5:2}
it_setup
[ -x "$BUILD/wtbench" ] || it_abort "$BUILD/wtbench not built"
start_daemon

fds() { ls "/proc/$DAEMON_PID/fd" 2>/dev/null | wc -l; }
# a number, or the Nth (0-based) of an array, from the JSON summary
jnum() { sed -n "s/.*\"$1\":\([0-9.-]*\).*/\1/p" "$TMP/soak.json"; }
jarr() { sed -n "s/.*\"$1\":\[\([-0-9,]*\)\].*/\1/p" "$TMP/soak.json" | cut -d, -f$(($2 + 1)); }

conns=$(((SESS + 3) / 4))
per=$(((SESS + conns - 1) / conns))
fds_before=$(fds)
# shellcheck disable=SC2086
timeout -k 5 $((SECS + 120)) "$BUILD/wtbench" --insecure --json --mode mixed \
    -c "$conns" -s "$per" -t "$SECS" --drain 30 --server-pid "$DAEMON_PID" \
    $PATHOPTS "https://127.0.0.1:$PORT/echo" >"$TMP/soak.json" 2>"$TMP/soak.err"
soak_rc=$?
sleep 2 # the connections' close, at the daemon
fds_after=$(fds)

ran() {
    [ $soak_rc -eq 0 ] && return 0
    echo "wtbench exit $soak_rc: $(cat "$TMP/soak.json") $(tail -n 2 "$TMP/soak.err")"
    return 1
}
sessions_kept() {
    local open lost
    open=$(jnum sessions_open)
    lost=$(jnum sessions_lost)
    [ "$open" = "$((conns * per))" ] && [ "$lost" = 0 ] && return 0
    echo "sessions open $open of $((conns * per)), lost $lost: $(sed -n 's/.*"lost_why":"\([^"]*\)".*/\1/p' "$TMP/soak.json")"
    return 1
}
streams_exact() {
    local done mm stuck reset
    done=$(jnum streams_done)
    mm=$(jnum mismatches)
    stuck=$(jnum streams_stuck)
    reset=$(jnum streams_reset)
    # a stream every 4 s per session at the least, however slow the machine
    [ "$mm" = 0 ] && [ "$stuck" = 0 ] && [ "$reset" = 0 ] &&
        [ "${done:-0}" -ge $((SECS * conns * per / 4)) ] && return 0
    echo "streams done $done, mismatches $mm, stuck $stuck, reset $reset"
    return 1
}
datagrams_intact() {
    local sent back corrupt
    sent=$(jnum dgrams_sent)
    back=$(jnum dgrams_back)
    corrupt=$(jnum dgrams_corrupt)
    # loss is by design; most come back, none altered
    [ "$corrupt" = 0 ] && [ "${back:-0}" -gt 0 ] && [ $((back * 10)) -ge $((sent * 8)) ] &&
        return 0
    echo "datagrams sent $sent, back $back, corrupt $corrupt"
    return 1
}
path_impaired() {
    local k
    for k in lost delayed reordered duplicated; do
        [ "$(grep -o "\"$k\":[0-9]*" "$TMP/soak.json" | grep -vc ':0$')" -ge 2 ] ||
            { echo "the path did not impair ($k each way): $(sed -n 's/.*"path":\({[^}]*}[^}]*}}\).*/\1/p' "$TMP/soak.json")"; return 1; }
    done
}
# RSS: end <= warm-up + max(25 %, 16 MiB), both sampled with every session
# open and no stream in flight.  Measured here (2 cores, 100 sessions):
# the daemon's RSS follows the largest amount in flight at once and glibc
# keeps what was freed, so it creeps up as rarer peaks come: +7 to +11 MB
# between a warm-up at 10-24 s and the end of 30-120 s runs, while the
# heap in use (malloc_stats) with the sessions idle did not grow with the
# run's length (7.3 MB after 10 s, 6.9 MB after 40 more) and was 0.36 MB
# once they closed.  A leak of 4 KiB a stream is ~150 MB in 30 s; of 100
# bytes a stream, ~70 MB in make soak's 600 s.
rss_flat() {
    local warm end bound
    warm=$(jarr rss_kb 1)
    end=$(jarr rss_kb 2)
    [ -n "$warm" ] && [ -n "$end" ] && [ "$warm" -gt 0 ] ||
        { echo "no RSS samples: $(cat "$TMP/soak.json")"; return 1; }
    bound=$((warm / 4 > 16384 ? warm / 4 : 16384))
    [ "$end" -le $((warm + bound)) ] && return 0
    echo "RSS grew from $warm kB (warm-up) to $end kB (end), more than $bound kB"
    return 1
}
fds_flat() {
    local start warm end
    start=$(jarr fds 0)
    warm=$(jarr fds 1)
    end=$(jarr fds 2)
    [ -n "$end" ] && [ "$end" -le "$warm" ] && [ "$fds_after" -le "$fds_before" ] && return 0
    echo "fds: $start at the start, $warm at the warm-up, $end at the end, $fds_before before and $fds_after after the client"
    return 1
}

check soak-run ran
check soak-sessions-kept sessions_kept
check soak-streams-byte-exact streams_exact
check soak-datagrams-intact datagrams_intact
check soak-path-impaired path_impaired
if ldd "$BUILD/wtrelayd" 2>/dev/null | grep -q libasan; then
    # ASan's quarantine holds freed memory (up to 256 MB): RSS says
    # nothing there; LeakSanitizer checks for leaks at the daemon's exit
    echo "# soak: RSS not checked under ASan (LeakSanitizer at exit instead)"
else
    check soak-rss-flat rss_flat
fi
check soak-fds-flat fds_flat
echo "# soak: ${SECS}s, $((conns * per)) sessions: $(sed -e 's/"path":.*//' "$TMP/soak.json")"
echo "# soak: path $(sed -n 's/.*"path":\({[^}]*}[^}]*}}\).*/\1/p' "$TMP/soak.json")"
echo "# soak: daemon fds $fds_before before, $fds_after after the client"
it_finish
