#!/usr/bin/env bash
# A half-open handshake (a client that sends its Initial and goes silent)
# holds its handshake slot for handshake_timeout and no longer: with
# handshake_timeout = 2s, wtrelayd_handshakes_in_progress sampled every
# 50 ms from outside (/metrics) is back to 0 within 2.3 s of the Initial
# (the timeout plus 0.3 s: the loop, the sampling, a loaded machine), and
# the per-address handshake slot is free again (max_handshakes_per_address
# = 1: a second silent Initial from the same address then makes a
# connection of its own, not a refusal).  Before, the slot was held
# through the closing period that follows the timeout (3 PTO, another
# ~3 s with no RTT sample): ~5 s in all.
. "$(dirname "$0")/lib.sh"
command -v curl >/dev/null || it_abort "curl is missing (scripts/install-deps.sh --test)"
[ -x "$BUILD/initflood" ] || it_abort "$BUILD/initflood not built"
it_setup
APORT=$(it_free_tcp_port) || it_abort "no free TCP port"
start_daemon "handshake_timeout = 2s" "retry = off" "max_handshakes_per_address = 1" \
    "[admin]" "listen = 127.0.0.1:$APORT"

now_ms() { echo $(($(date +%s%N) / 1000000)); }
gauge() {
    curl -s --max-time 2 "http://127.0.0.1:$APORT/metrics" |
        awk -v n="wtrelayd_$1" '$1 == n { print $2; exit }'
}

# one silent Initial; the gauge over time, until it is 0 (8 s at most)
half_open() {
    local out t0 t up=0 v
    t0=$(now_ms)
    out=$(timeout 20 "$BUILD/initflood" --first 127.0.3.1 --count 1 --rate 1000 \
        --linger 0 "$PORT") || { echo "initflood: $out"; return 1; }
    : >"$TMP/samples"
    for _ in $(seq 1 160); do
        v=$(gauge handshakes_in_progress)
        t=$(($(now_ms) - t0))
        echo "$t ${v:-?}" >>"$TMP/samples"
        [ "${v:-0}" -ge 1 ] && up=1
        [ "$up" = 1 ] && [ "${v:-1}" = 0 ] && break
        sleep 0.05
    done
    echo "$out; in progress 1 until $(awk '$2 >= 1 { t = $1 } END { print t }' "$TMP/samples") ms, 0 at $t ms"
    [ "$up" = 1 ] || { echo "never in progress"; return 1; }
    [ "${v:-1}" = 0 ] && [ "$t" -le 2300 ]
}
check half-open-slot-freed half_open
# counted as a timeout when it ended, not when its closing period did
check half-open-counted-timeout bash -c "curl -s --max-time 2 'http://127.0.0.1:$APORT/metrics' | grep -qx 'wtrelayd_handshakes_failed_total{reason=\"timeout\"} 1'"

# the address's one handshake slot is free: its next silent Initial gets
# a connection (the server's first flight), not CONNECTION_REFUSED
slot_free() {
    local out
    out=$(timeout 20 "$BUILD/initflood" --first 127.0.3.1 --count 1 --rate 1000 \
        --linger 0.5 "$PORT") || { echo "initflood: $out"; return 1; }
    echo "$out"
    case "$out" in *"handshake 0"*) return 1 ;; esac
    case "$out" in *"small 0"*) return 0 ;; esac
    return 1
}
check half-open-address-slot-free slot_free
check half-open-refused-none bash -c "! curl -s --max-time 2 'http://127.0.0.1:$APORT/metrics' | grep -q 'wtrelayd_connections_refused_total{reason=\"handshakes_per_address\"} [1-9]'"
echo "    $(tail -n 1 "$TMP/samples" 2>/dev/null)"
it_finish
