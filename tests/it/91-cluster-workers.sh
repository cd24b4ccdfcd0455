#!/usr/bin/env bash
# workers = 2 with [cluster]: one broadcast room whose members the kernel
# spread over both workers (one connection each) is one room — every
# member hears every other, whichever worker holds it, through the Redis
# the workers share.  Without [cluster] the config is refused
# (tests/it/89); this is what the section buys.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/workers-lib.sh"
it_setup
command -v redis-server >/dev/null && command -v redis-cli >/dev/null ||
    it_abort "redis-server is not installed (scripts/install-deps.sh --test)"
RPORT=$(it_free_tcp_port) || it_abort "no free TCP port"
redis_start || it_abort "redis-server did not start: $(tail -n 3 "$TMP/redis.log")"

start_workers 2 "[route /chat]" "handler = broadcast" "tag = yes" \
    "[cluster]" "redis = redis://127.0.0.1:$RPORT" "heartbeat = 200ms" "node_timeout = 1s"
both_up() { grep -c "cluster: connected" "$TMP/daemon.log" | grep -qx 2; }
wait_up() {
    for _ in $(seq 1 50); do both_up && return 0; sleep 0.1; done
    echo "cluster lines: $(grep -c 'cluster: connected' "$TMP/daemon.log")"
    return 1
}
check both-workers-connected wait_up

# bc KIND ARGS...: 16 members, one connection each, every one sending
bc() {
    timeout -k 2 60 "$BUILD/wtbench" --insecure --json --mode broadcast -t 40 --settle 0.5 \
        -c 16 --senders 16 --tagged "$@" "https://127.0.0.1:$PORT/chat?room=w" \
        >"$TMP/bc.json" 2>"$TMP/bc.err"
}
whole() {
    local w out
    bc "$@" || true
    out=$(cat "$TMP/bc.json")
    for w in '"ratio":1.000000' '"duplicates":0' '"corrupt":0' '"errors":0' '"tags":"ok"'; do
        case "$out" in *"$w"*) ;; *) echo "wanted $w in $out $(tail -n 1 "$TMP/bc.err")"; return 1 ;; esac
    done
}
check streams-across-workers whole --kind stream --size 20000 -n 5
check bidi-across-workers whole --kind bidi --size 2000 -n 5

# the room really spanned the workers: both took members of it
sessions_on() {
    local v
    v=$(metric wtrelayd_sessions_total "$1")
    [ -n "$v" ] && [ "$v" -gt 0 ] && return 0
    echo "worker $1: sessions_total '${v}'"
    return 1
}
check members-on-worker-0 sessions_on 0
check members-on-worker-1 sessions_on 1
it_finish
