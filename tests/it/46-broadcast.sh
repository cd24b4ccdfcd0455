#!/usr/bin/env bash
# The broadcast handler: rooms, relaying, limits, slow and departing
# members, and relayed bytes held once (issue 14), through wtprobe (each
# probe is one connection; its sessions are members) beside a witness.
. "$(dirname "$0")/lib.sh"
it_setup
start_daemon "max_sessions_per_connection = 64" \
    "[route /chat]" "handler = broadcast" \
    "[route /tagged]" "handler = broadcast" "tag = yes" \
    "[route /announce]" "handler = broadcast" "tag = yes" "announce = yes" \
    "[route /lim]" "handler = broadcast" "max_members = 2" "max_rooms = 2" \
    "[route /slow]" "handler = broadcast" "tag = yes" "max_queue_bytes = 64k" \
    "[route /slowd]" "handler = broadcast" "tag = yes" "max_queue_bytes = 64k" "slow = disconnect" \
    "[route /wide]" "handler = broadcast" "max_queue_bytes = 64M" "max_relays = 256"

# says TEXT CMD...: CMD succeeds and its output contains TEXT
says() {
    local want=$1 out
    shift
    out=$("$@") || { echo "$out"; return 1; }
    case "$out" in *"$want"*) return 0 ;; esac
    echo "wanted \"$want\" in: $out"
    return 1
}

witness_start 25
check relay probe bc-relay "/chat?room=a"
check relay-tagged probe bc-relay "/tagged?room=a" tag
check announce probe bc-announce "/announce?room=ann"
check relay-announce probe bc-relay "/announce?room=a" tag
check sender-gone probe bc-sender-gone "/chat?room=gone"
# 200 streams of 200 kB at once: more than the receiver's stream limit
# (the waiting copies must neither stall the sender nor be lost)
check many-streams probe --timeout 20 bc-send "/wide?room=many" 200 200000

# a member that leaves while its copies are still being relayed: the
# relays let go of it, the others' streams come whole
leaves_midway() {
    probe --timeout 10 --uni-window 16384 --hold-uni bc-listen "/wide?room=leave" 1 >"$TMP/leaver.out" 2>&1 &
    local lp=$!
    sleep 0.3
    probe --timeout 10 bc-send "/wide?room=leave" 20 300000 || { wait $lp; return 1; }
    wait $lp
    grep -q "bc-listen ok" "$TMP/leaver.out" || { cat "$TMP/leaver.out"; return 1; }
}
check member-leaves-midway leaves_midway

# limits: members per room, rooms per route, names
hold() { # hold PATH SECONDS: a member in the background
    timeout 10 "$BUILD/wtclient" --insecure --timeout "$2" --wait-close \
        "https://127.0.0.1:$PORT$1" >/dev/null 2>&1 &
}
check max-members probe_says "statuses 200 200 429" bc-members "/lim?room=full" 3
hold "/lim?room=r1" 3
hold "/lim?room=r2" 3
sleep 0.5
check max-rooms probe_says "status 503" status "/lim?room=r3"
check max-rooms-existing probe_says "status 200" status "/lim?room=r1"
check bad-name probe_says "status 400" status "/chat?room=%zz"
check bad-name-control probe_says "status 400" status "/chat?room=a%0Ab"
sleep 3
check rooms-freed probe_says "status 200" status "/lim?room=r3"

# a member that stops reading: dropped (its copies reset) or disconnected;
# the others get everything
slow_member() { # slow_member PATH: a stalled listener beside a sender and a reader
    probe --timeout 10 --uni-window 16384 --hold-uni bc-listen "$1" 3 >"$TMP/stalled.out" 2>"$TMP/stalled.err" &
    local lp=$!
    sleep 0.5
    probe --timeout 10 bc-send "$1" 20 100000 tag || { wait $lp; return 1; }
    wait $lp
    cat "$TMP/stalled.out"
}
check slow-drop says "reset (0xe1)" slow_member "/slow?room=s"
check slow-disconnect says "sessions closed by the server (0x42520004)" slow_member "/slowd?room=s"
check slow-logged log_has "over max_queue_bytes"

# relayed bytes are held once: 200 members get a 1 MiB stream; the
# daemon's peak RSS grows by a few MiB, not by 200 MiB
rss_peak() { awk '/VmHWM/ {print $2}' "/proc/$DAEMON_PID/status"; }
shared() {
    local r0 r1 i pids=()
    for i in 1 2 3 4; do
        probe --timeout 20 bc-listen "/wide?room=big" 8 50 >"$TMP/big$i.out" 2>&1 &
        pids+=($!)
    done
    sleep 2
    r0=$(rss_peak)
    probe --timeout 20 bc-send "/wide?room=big" 1 1048576 || return 1
    for i in "${pids[@]}"; do wait "$i"; done
    r1=$(rss_peak)
    for i in 1 2 3 4; do
        grep -q "ok: 50 streams whole (52428800 bytes)" "$TMP/big$i.out" ||
            { echo "listener $i: $(cat "$TMP/big$i.out")"; return 1; }
    done
    echo "200 members got 1 MiB each; daemon peak RSS $r0 -> $r1 kB"
    # (not measured under ASan: its redzones and quarantine)
    case "${BUILD##*/}" in *asan*) return 0 ;; esac
    [ $((r1 - r0)) -lt $((24 * 1024)) ] || { echo "grew $(((r1 - r0) / 1024)) MB"; return 1; }
}
check shared-blocks shared
check broadcast-witness witness_check
it_finish
