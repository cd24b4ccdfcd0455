#!/usr/bin/env bash
# Floods (issue 12): a bounded burst of client Initials from 500 loopback
# addresses, never answered, while a real session runs request/response
# and other clients handshake.  Every request is answered (its p99 is
# shown; make bench holds it to 2x of the quiet run's), the loop's share
# of a handshake stays small, the daemon's RSS stays bounded, Retry (retry = auto) engages
# while the half-open handshakes pile up and disengages once they have
# timed out; the per-address limits are the shipped defaults.
# scripts/flood-measure.sh does the measuring (make bench uses it too).
. "$(dirname "$0")/lib.sh"
it_setup
command -v curl >/dev/null || it_abort "curl is missing (scripts/install-deps.sh --test)"
[ -x "$BUILD/initflood" ] || it_abort "$BUILD/initflood not built"
[ -x "$BUILD/wtbench" ] || it_abort "$BUILD/wtbench not built"

APORT=$(it_free_tcp_port) || it_abort "no free TCP port"

# The shipped per-address defaults (lib.sh turns them off for the other
# tests), Retry from 200 handshakes in progress, half-open handshakes gone
# after 2 s; info, not debug: a debug line per Initial is its own load.
# HS_THREADS=0 runs the handshakes on the loop thread (the check below
# then fails: what the handshake threads are for).
start_daemon "log_level = info" "max_connections = 5000" \
    "handshake_threads = ${HS_THREADS:-1}" \
    "max_connections_per_address = 50" "max_handshakes_per_address = 10" \
    "connection_rate_per_address = 10" "connection_burst_per_address = 40" \
    "max_sessions_per_address = 200" \
    "retry = auto" "retry_handshakes = 200" "handshake_timeout = 2s" \
    "[admin]" "listen = 127.0.0.1:$APORT"

# 6 000 Initials at 2 000/s from 500 addresses: 12 each, under every
# per-address limit, so Retry is what holds the flood
measure() {
    FLOOD_SOURCES=500 FLOOD_COUNT=6000 FLOOD_RATE=2000 \
        scripts/flood-measure.sh "$PORT" "$APORT" "$DAEMON_PID" >"$TMP/figures" 2>"$TMP/measure.err"
    sed 's/^/    # /' "$TMP/figures"
}
fig() { sed -n "s/^$1=//p" "$TMP/figures"; }
measure

check flood-quiet-clean test "$(fig quiet_errors)" = 0
check flood-all-sent bash -c "[ '$(fig initials_sent)' = 6000 ]"
check flood-session-clean test "$(fig flood_errors)" = 0
check flood-session-all-answered test "$(fig flood_requests)" = 600
# The session's p99 under the flood, beside 20 new clients' handshakes,
# against the quiet run's: the figure is shown here, and make bench's
# row (scripts/bench.sh, the same script) holds it to 2x.  It is not
# this test's gate: on this shared 2-core machine the same build gave
# 0.9-1.8x in one hour and 1.1-14x in another (the host's own noise: a
# handshake's loop share 19 us in the first, 26-34 in the second, quiet
# p99s from 0.25 to 1.3 ms), and a gate that depends on the hour is a
# timed test.  What the mechanisms change is checked free of that noise:
# the loop's own share of a handshake (its CPU time, handshake_start_us)
# below (494 us with handshake_threads = 0, where the p99 was 4.5x), and
# here only what a loop stalled for a tenth of a second would break: the
# flooded p99 under 100 ms (the worst seen in a noisy hour: 9.7 ms).
# Every other check holds whatever the hour.  The flood starts while the session runs
# (FLOOD_OVERLAP in scripts/flood-measure.sh), so its first 200
# handshakes (before Retry engages) fall inside the measured run.
p99_bounded() {
    awk -v q="$(fig quiet_p99_us)" -v f="$(fig flood_p99_us)" \
        -v h="$(fig handshake_start_us)" -v b="${P99_BOUND_US:-100000}" 'BEGIN {
        if (q == "" || f == "" || q <= 0) exit 1
        printf "p99 %s us under the flood, quiet %s us: %.2fx (make bench: <= 2x); the loop %s us a handshake\n",
            f, q, f / q, h
        exit !(f < b) }'
}
echo "    # $(p99_bounded 2>&1)"
check flood-p99-bounded p99_bounded
# (ASan: 100-125 us with the thread, 1.5-2 ms a first flight without)
loop_share_small() {
    local bound=100
    case "$BUILD" in *asan*) bound=500 ;; esac
    echo "the loop's share of a handshake: $(fig handshake_start_us) us (bound $bound)"
    [ -n "$(fig handshake_start_us)" ] &&
        awk -v h="$(fig handshake_start_us)" -v b="$bound" 'BEGIN { exit !(h < b) }'
}
check flood-loop-share-of-a-handshake loop_share_small
check flood-handshakes-served test "$(fig handshake_sessions)" = 20
# RSS: what the half-open handshakes cost before Retry engages (200 x
# ~75 KB) and the legitimate load: under 64 MB (256 MB under ASan)
rss_bound() {
    local bound=65536
    case "$BUILD" in *asan*) bound=262144 ;; esac
    [ "$(fig rss_peak_kb)" -gt 0 ] && [ "$(fig rss_peak_kb)" -lt $bound ] ||
        { echo "peak RSS $(fig rss_peak_kb) kB (bound $bound kB)"; return 1; }
}
check flood-rss-bounded rss_bound
check flood-retry-engaged test "$(fig retry_sent)" -gt 1000
# state for at most retry_handshakes (plus what was in flight) at a time
check flood-handshakes-held-down test "$(fig handshakes_peak)" -lt 400
check flood-half-open-timed-out test "$(fig handshakes_after)" = 0
check flood-retry-disengaged-served test "$(fig after_client_rc)" = 0
check flood-retry-disengaged test "$(fig after_retry_sent)" = 0
it_finish
