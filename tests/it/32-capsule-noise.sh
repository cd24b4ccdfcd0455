#!/usr/bin/env bash
# Random bytes on the CONNECT stream (120 sessions, bounded, seeded): each
# gets its session closed or aborted as the parser sees fit, never more;
# the daemon stays up and a session next to them is unaffected.
. "$(dirname "$0")/lib.sh"
it_setup
start_daemon

hex_noise() { # hex_noise N: N pseudo-random bytes as hex (bash RANDOM, seeded)
    local i out=
    for ((i = 0; i < $1; i++)); do out+=$(printf '%02x' $((RANDOM % 256))); done
    printf '%s' "$out"
}

noise() {
    local i rc bad=0
    RANDOM=4242
    for i in $(seq 1 120); do
        PROBE_TIMEOUT=3 client /echo --capsule "$(hex_noise $((1 + RANDOM % 48)))" >/dev/null
        rc=$?
        # 0: closed normally, 1: the server ended the session; anything
        # else (no connection, a crash) is a failure
        if [ $rc -gt 1 ]; then
            echo "run $i: wtclient exit $rc: $(tail -n 1 "$TMP/client.err")"
            bad=1
            break
        fi
    done
    return $bad
}

head -c 200000 /dev/urandom >"$TMP/data"
# a long transfer runs next to the noise and must come through intact
beside() {
    timeout 60 "$BUILD/wtclient" --insecure --timeout 50 --send "$TMP/data" --verify \
        "https://127.0.0.1:$PORT/echo" >"$TMP/beside.out" 2>"$TMP/beside.err" &
    local bpid=$! rc
    noise || { wait $bpid; return 1; }
    wait $bpid
    rc=$?
    [ $rc -eq 0 ] || { echo "the session beside: exit $rc: $(tail -n 1 "$TMP/beside.err")"; return 1; }
    cmp -s "$TMP/data" "$TMP/beside.out" || { echo "the session beside got other bytes"; return 1; }
}
check capsule-noise-120-sessions beside
check capsule-noise-echo-after client /echo --send "$TMP/data" --verify
check capsule-noise-aborts-logged log_has "aborted:"
it_finish
