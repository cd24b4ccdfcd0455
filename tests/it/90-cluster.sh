#!/usr/bin/env bash
# Rooms across daemons ([cluster], issue 13): a real redis-server on a free
# loopback port (no persistence), three daemons A, B, C sharing it, members
# on each.  Everyone hears everyone (datagrams, uni and bidi streams, in
# order, nobody twice: wtbench --also spreads one room's members over the
# daemons and checks every byte), member ids and join/leave cluster-wide,
# a reset relayed, slow members dropped across daemons; SIGKILL C: its
# members leave everywhere, A and B keep relaying; Redis stopped: local
# delivery goes on, /healthz and /metrics say so, cross-daemon delivery
# resumes once it is back.
. "$(dirname "$0")/lib.sh"
it_setup
command -v redis-server >/dev/null && command -v redis-cli >/dev/null ||
    it_abort "redis-server is not installed (scripts/install-deps.sh --test)"

RPORT=$(it_free_tcp_port) || it_abort "no free TCP port"
redis_start || it_abort "redis-server did not start: $(tail -n 3 "$TMP/redis.log")"

# says TEXT CMD...: CMD succeeds and its output contains TEXT
says() {
    local want=$1 out
    shift
    out=$("$@" 2>&1) || { echo "$out"; return 1; }
    case "$out" in *"$want"*) return 0 ;; esac
    echo "wanted \"$want\" in: $out"
    return 1
}

# ---- configuration errors name the line ----
conf_err() { # WANT LINES...: wtrelayd -t refuses the config, saying WANT
    local want=$1 out
    shift
    PORT=1 it_write_conf "$@"
    out=$("$BUILD/wtrelayd" -t -c "$TMP/wtrelayd.ini" 2>&1) && { echo "accepted: $out"; return 1; }
    case "$out" in *"$want"*) return 0 ;; esac
    echo "wanted \"$want\", got: $out"
    return 1
}
check conf-needs-redis conf_err "wtrelayd.ini:10: [cluster] needs 'redis'" \
    "[cluster]" "node_id = x"
check conf-bad-url conf_err "wtrelayd.ini:11: redis: not redis://" \
    "[cluster]" "redis = http://127.0.0.1:6379"
check conf-bad-port conf_err "wtrelayd.ini:11: redis: port: 1 .. 65535" \
    "[cluster]" "redis = redis://127.0.0.1:70000"
check conf-timeout conf_err "node_timeout (500ms) must be at least twice heartbeat" \
    "[cluster]" "redis = redis://127.0.0.1:1" "heartbeat = 1s" "node_timeout = 500ms"
check conf-node-id conf_err "wtrelayd.ini:12: node_id: printable ASCII without spaces" \
    "[cluster]" "redis = unix:/run/redis.sock" "node_id = a b"
check conf-unknown conf_err "wtrelayd.ini:12: unknown key 'redis_url' in [cluster]" \
    "[cluster]" "redis = redis://[::1]:6379/2" "redis_url = x"
PORT=1 it_write_conf "[cluster]" "redis = redis://:pw@127.0.0.1:6379/3" \
    "max_pending_bytes = 1M" "[route /r]" "handler = broadcast"
check conf-ok says "configuration OK" "$BUILD/wtrelayd" -t -c "$TMP/wtrelayd.ini"

# ---- three daemons, one Redis ----
ROUTES=("[route /tagged]" "handler = broadcast" "tag = yes"
    "[route /plain]" "handler = broadcast"
    "[route /ann]" "handler = broadcast" "tag = yes" "announce = yes"
    "[route /small]" "handler = broadcast" "tag = yes" "max_queue_bytes = 64k")
ADM_A=$(it_free_tcp_port) || it_abort "no free TCP port"
ADM_B=$(it_free_tcp_port) || it_abort "no free TCP port"
cluster_conf() { # NODE ADMINPORT
    echo "max_sessions_per_connection = 64"
    echo "[admin]"
    echo "listen = 127.0.0.1:$2"
    echo "[cluster]"
    echo "redis = redis://127.0.0.1:$RPORT"
    echo "node_id = $1"
    echo "heartbeat = 200ms"
    echo "node_timeout = 1s"
}
mapfile -t CONF_A < <(cluster_conf A "$ADM_A")
start_daemon "${CONF_A[@]}" "${ROUTES[@]}"
A_PORT=$PORT

# spawn_other NAME [ADMINPORT]: another daemon on a free port, same Redis;
# sets NAME_PORT and NAME_PID (killed by the test's end, if still there)
spawn_other() {
    local name=$1 adm=${2:-0} port pid _ lines
    if [ "$adm" = 0 ]; then adm=$(it_free_tcp_port); fi
    shift 2
    mapfile -t lines < <(cluster_conf "$name" "$adm"; for l in "$@"; do echo "$l"; done)
    for _ in 1 2 3; do
        port=$(it_free_port) || return 1
        PORT=$port it_write_conf "${lines[@]}" "${ROUTES[@]}"
        mv "$TMP/wtrelayd.ini" "$TMP/$name.ini"
        setsid "$BUILD/wtrelayd" -c "$TMP/$name.ini" 2>"$TMP/$name.log" &
        pid=$!
        echo "$pid" >>"$TMP/backends.pids"
        for _ in $(seq 1 100); do
            grep -q listening "$TMP/$name.log" && break
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.05
        done
        if grep -q listening "$TMP/$name.log"; then
            printf -v "${name}_PORT" '%s' "$port"
            printf -v "${name}_PID" '%s' "$pid"
            return 0
        fi
    done
    return 1
}
spawn_other B "$ADM_B" || it_abort "daemon B did not start: $(tail -n 3 "$TMP/B.log")"
spawn_other C 0 || it_abort "daemon C did not start: $(tail -n 3 "$TMP/C.log")"

healthz() { curl -s --max-time 2 "http://127.0.0.1:$1/healthz"; }
metric() { # ADMINPORT NAME: its value
    curl -s --max-time 2 "http://127.0.0.1:$1/metrics" | awk -v n="$2" '$1 == n {print $2}'
}
wait_says() { # SECONDS TEXT CMD...: CMD's output contains TEXT within SECONDS
    local secs=$1 want=$2 out _
    shift 2
    for _ in $(seq 1 $((secs * 10))); do
        out=$("$@" 2>&1)
        case "$out" in *"$want"*) return 0 ;; esac
        sleep 0.1
    done
    echo "wanted \"$want\" within $secs s, got: $out"
    return 1
}
check cluster-up-A wait_says 5 "cluster: up" healthz "$ADM_A"
check cluster-up-B wait_says 5 "cluster: up" healthz "$ADM_B"
check cluster-up-C wait_says 5 "cluster: connected" cat "$TMP/C.log"
check metric-up says 1 metric "$ADM_A" wtrelayd_cluster_up

U() { echo "https://127.0.0.1:$1$2"; }
# bc ROOMPATH DAEMONPORTS... -- WTBENCH-ARGS: one room over those daemons;
# the JSON summary goes to $TMP/bc.json
bc() {
    local path=$1 main also=() p
    shift
    main=$1
    shift
    while [ "$1" != "--" ]; do also+=(--also "$(U "$1" "$path")"); shift; done
    shift
    # --settle: every daemon's subscription to the room is in place
    timeout -k 2 90 "$BUILD/wtbench" --insecure --json --mode broadcast -t 60 --settle 0.3 "$@" \
        "${also[@]}" "$(U "$main" "$path")" >"$TMP/bc.json" 2>"$TMP/bc.err"
}
# bc_all WANTS... : every WANT in the last summary
bc_has() {
    local w out
    out=$(cat "$TMP/bc.json")
    for w in "$@"; do
        case "$out" in *"$w"*) ;; *) echo "wanted $w in $out $(tail -n 1 "$TMP/bc.err")"; return 1 ;; esac
    done
}
whole() { # everyone got every message once, unchanged, one id per sender
    bc "$@" || true
    bc_has '"ratio":1.000000' '"duplicates":0' '"corrupt":0' '"errors":0' '"tags":"ok"'
}
# 6 members, 2 on each daemon; each sends: every message reaches the 5
# others whether they are on its daemon or not (100 kB streams go in
# chunks through Redis)
check everyone-streams whole "/tagged?room=s" "$A_PORT" "$B_PORT" "$C_PORT" -- \
    --kind stream --size 100000 -c 6 --senders 6 -n 10 --tagged
check everyone-bidi whole "/tagged?room=b" "$A_PORT" "$B_PORT" "$C_PORT" -- \
    --kind bidi --size 3000 -c 6 --senders 6 -n 20 --tagged
check everyone-small-streams whole "/tagged?room=m" "$A_PORT" "$B_PORT" "$C_PORT" -- \
    --kind stream --size 64 -c 6 --senders 3 -n 200 --tagged
# datagrams are unreliable by design: none twice, none corrupt, (almost) all
dgrams() {
    bc "/tagged?room=d" "$A_PORT" "$B_PORT" "$C_PORT" -- --kind dgram --rate 100 \
        -c 6 --senders 6 -n 40 --tagged --min-ratio 0.97 ||
        { echo "wtbench: $(cat "$TMP/bc.json") $(tail -n 1 "$TMP/bc.err")"; return 1; }
    bc_has '"duplicates":0' '"corrupt":0' '"errors":0' '"tags":"ok"'
}
check everyone-datagrams dgrams

# a stream reset (its sender left mid-way) reaches the members elsewhere
reset_relayed() {
    local l
    timeout 20 "$BUILD/wtclient" --insecure --listen 4 "$(U "$B_PORT" "/tagged?room=g")" \
        >"$TMP/g.out" 2>"$TMP/g.err" &
    l=$!
    sleep 0.5
    probe bc-sender-gone "/tagged?room=g" || { wait $l; return 1; }
    wait $l
    grep -q '^stream: .*(reset 0xe2)$' "$TMP/g.out" && return 0
    echo "B's member: $(cat "$TMP/g.out" "$TMP/g.err")"
    return 1
}
check reset-relayed reset_relayed

# a member on B that stops reading, streams from A: the others get
# everything, the stalled one only what its window took
slow_remote() {
    bc "/small?room=slow" "$A_PORT" "$B_PORT" -- --kind stream --size 30000 -c 3 \
        --senders 1 -n 20 --tagged --stall 1 --stall-window 16k || true
    bc_has '"ratio":1.000000' '"corrupt":0' '"members":1,' '"streams_whole":0,'
}
check slow-member-remote slow_remote
# no flow control reaches a sender on another daemon: a stream that
# arrives faster than B's members take it, max_queue_bytes (64k) ahead of
# the fastest, is reset for them (0xe1), whole for A's member; B holds no
# more than that
burst_remote() {
    bc "/small?room=burst" "$A_PORT" "$B_PORT" -- --kind stream --size 4000000 -c 4 \
        --senders 1 -n 2 --tagged || true
    bc_has '"deliveries":2,' '"copies_reset":4,' '"reset_code":"0xe1"' '"corrupt":0'
}
check burst-remote-reset burst_remote

# ---- ids and presence are cluster-wide; a daemon killed ----
presence() {
    timeout 30 "$BUILD/wtclient" --insecure --listen 6 "$(U "$A_PORT" "/ann?room=p")" \
        >"$TMP/pa.out" 2>"$TMP/pa.err" &
    PA=$!
    sleep 0.4
    timeout 30 "$BUILD/wtclient" --insecure --listen 20 "$(U "$C_PORT" "/ann?room=p")" \
        >"$TMP/pc.out" 2>"$TMP/pc.err" &
    PC=$!
    sleep 0.4
    timeout 30 "$BUILD/wtclient" --insecure --listen 1 "$(U "$B_PORT" "/ann?room=p")" \
        >"$TMP/pb.out" 2>"$TMP/pb.err"
}
presence
id_of() { sed -n 's/.*"type":"welcome","id":\([0-9]*\).*/\1/p' "$1"; }
ids_unique() {
    local a b c
    a=$(id_of "$TMP/pa.out")
    b=$(id_of "$TMP/pb.out")
    c=$(id_of "$TMP/pc.out")
    [ -n "$a" ] && [ -n "$b" ] && [ -n "$c" ] && [ "$a" != "$b" ] && [ "$a" != "$c" ] &&
        [ "$b" != "$c" ] && return 0
    echo "welcome ids A=$a B=$b C=$c"
    return 1
}
check ids-unique ids_unique
# B's member saw A's and C's (3 in all), A's heard B's come and go
check presence-B-sees-all says '"members":3}' cat "$TMP/pb.out"
B_ID=$(id_of "$TMP/pb.out")
C_ID=$(id_of "$TMP/pc.out")
check presence-join-remote says "{\"type\":\"join\",\"id\":$B_ID,\"members\":3}" cat "$TMP/pc.out"
check presence-leave-remote wait_says 3 "{\"type\":\"leave\",\"id\":$B_ID,\"members\":2}" cat "$TMP/pc.out"

# SIGKILL C (its member still in the room): A's member hears it leave
# within node_timeout (1 s) + a heartbeat
kill -KILL "$C_PID"
T_KILL=$(date +%s%N)
check killed-member-leaves wait_says 4 "{\"type\":\"leave\",\"id\":$C_ID,\"members\":1}" cat "$TMP/pa.out"
leave_time() {
    local ms=$((($(date +%s%N) - T_KILL) / 1000000))
    [ "$ms" -le 3500 ] && return 0
    echo "the leave came $ms ms after the kill"
    return 1
}
check killed-member-leaves-soon leave_time
check node-expired-logged log_has "no word from a daemon"
kill "$PC" 2>/dev/null
wait "$PA" "$PC" 2>/dev/null
check after-kill-relaying whole "/tagged?room=k" "$A_PORT" "$B_PORT" -- \
    --kind stream --size 20000 -c 4 --senders 4 -n 10 --tagged

# ---- over max_pending_bytes: Redis frozen (SIGSTOP), nothing answered ----
ADM_S=$(it_free_tcp_port) || it_abort "no free TCP port"
spawn_other S "$ADM_S" "max_pending_bytes = 64k" || it_abort "daemon S did not start"
spawn_other T 0 || it_abort "daemon T did not start"
check cluster-up-S wait_says 5 "cluster: up" healthz "$ADM_S"
check cluster-up-T wait_says 5 "cluster: connected" cat "$TMP/T.log"
head -c 1048576 /dev/urandom | base64 -w 0 | head -c 1000000 >"$TMP/mb.txt"
pending_cut() {
    local l
    timeout 20 "$BUILD/wtclient" --insecure --listen 4 "$(U "$T_PORT" "/plain?room=pend")" \
        >"$TMP/pend.out" 2>"$TMP/pend.err" &
    l=$!
    sleep 0.5
    kill -STOP "$REDIS_PID"
    timeout 20 "$BUILD/wtclient" --insecure --listen 1 --uni "$TMP/mb.txt" \
        "$(U "$S_PORT" "/plain?room=pend")" >/dev/null 2>&1
    kill -CONT "$REDIS_PID"
    wait $l
    grep -q '^stream: .*(reset 0xe4)$' "$TMP/pend.out" ||
        { echo "T's member: $(cut -c1-80 "$TMP/pend.out") $(tail -n 1 "$TMP/pend.err")"; return 1; }
    [ "$(metric "$ADM_S" 'wtrelayd_cluster_dropped_total{reason="max_pending_bytes"}')" -gt 0 ] ||
        { echo "no max_pending_bytes drop counted"; return 1; }
    [ "$(metric "$ADM_S" wtrelayd_cluster_streams_cut_total)" -gt 0 ] ||
        { echo "no stream cut counted"; return 1; }
    [ "$(metric "$ADM_S" wtrelayd_cluster_pending_bytes)" -le 131072 ] ||
        { echo "pending: $(metric "$ADM_S" wtrelayd_cluster_pending_bytes)"; return 1; }
}
check over-pending-cut pending_cut
check over-pending-S-alive kill -0 "$S_PID"

# ---- Redis stopped: local goes on; back: cross-daemon again ----
kill -TERM "$REDIS_PID"
check redis-down-healthz wait_says 5 "cluster: down" healthz "$ADM_A"
check redis-down-metric says 0 metric "$ADM_A" wtrelayd_cluster_up
check redis-down-logged log_has "local rooms go on"
check local-while-down whole "/tagged?room=l" "$A_PORT" -- \
    --kind stream --size 20000 -c 3 --senders 3 -n 10 --tagged
not_across() { # while down, a datagram from A does not reach B (nor A twice)
    timeout 20 "$BUILD/wtclient" --insecure --listen 1.5 "$(U "$B_PORT" "/plain?room=x")" \
        >"$TMP/x.out" 2>&1 &
    local l=$!
    sleep 0.3
    client "/plain?room=x" --listen 0.5 --datagram while-down >/dev/null
    wait $l
    if grep -q while-down "$TMP/x.out"; then echo "B got it"; return 1; fi
    [ "$(metric "$ADM_A" 'wtrelayd_cluster_dropped_total{reason="redis_down"}')" -gt 0 ] ||
        { echo "no redis_down drop counted"; return 1; }
}
check not-across-while-down not_across
sleep 2 # a few reconnection attempts while it is away
redis_start || it_abort "redis-server did not restart"
check redis-back-A wait_says 10 "cluster: up" healthz "$ADM_A"
check redis-back-B wait_says 10 "cluster: up" healthz "$ADM_B"
once() { # the loss was logged once however many attempts failed
    local n
    n=$(grep -c "cluster: lost" "$TMP/daemon.log")
    [ "$n" -eq 1 ] && grep -q "cannot reach\|connected to" "$TMP/daemon.log" && return 0
    echo "\"cluster: lost\" logged $n times"
    return 1
}
check redis-loss-logged-once once
check across-after-redis whole "/tagged?room=r" "$A_PORT" "$B_PORT" -- \
    --kind stream --size 20000 -c 4 --senders 4 -n 10 --tagged
positive() { # ADMINPORT NAME: a metric above 0
    local v
    v=$(metric "$1" "$2")
    [ -n "$v" ] && [ "$v" -gt 0 ] && return 0
    echo "$2 = '$v'"
    return 1
}
check metric-published positive "$ADM_A" wtrelayd_cluster_published_total
check metric-received positive "$ADM_B" wtrelayd_cluster_received_total
check metric-connects says 2 metric "$ADM_A" wtrelayd_cluster_connects_total

# a Redis with a password: the right one connects; a wrong one is
# refused, said once however often it is retried, and the daemon serves
RPORT2=$(it_free_tcp_port) || it_abort "no free TCP port"
setsid redis-server --port "$RPORT2" --bind 127.0.0.1 --save '' --appendonly no \
    --requirepass s3cret >"$TMP/redis2.log" 2>&1 &
echo $! >>"$TMP/backends.pids"
for _ in $(seq 1 100); do
    redis-cli -p "$RPORT2" -a s3cret --no-auth-warning ping 2>/dev/null | grep -q PONG && break
    sleep 0.05
done
auth_daemon() { # NAME URL
    local port
    port=$(it_free_port) || return 1
    PORT=$port it_write_conf "[cluster]" "redis = $2" "node_id = $1" "[route /r]" "handler = broadcast"
    mv "$TMP/wtrelayd.ini" "$TMP/$1.ini"
    setsid "$BUILD/wtrelayd" -c "$TMP/$1.ini" 2>"$TMP/$1.log" &
    echo $! >>"$TMP/backends.pids"
    printf -v "${1}_PID" '%s' "$!"
}
auth_daemon P "redis://:s3cret@127.0.0.1:$RPORT2"
auth_daemon Q "redis://:wrong@127.0.0.1:$RPORT2"
auth_daemon N "redis://127.0.0.1:$RPORT2"
check auth-right wait_says 5 "cluster: connected" cat "$TMP/P.log"
sleep 3 # retries at 0.1, 0.2, 0.4, 0.8, 1.6 s
auth_refused() { # NAME: never up, the refusal logged once, still running
    local n
    n=$(grep -c "cluster: redis://.*\(WRONGPASS\|NOAUTH\|invalid\)" "$TMP/$1.log")
    grep -q "cluster: connected" "$TMP/$1.log" && { echo "$1 connected"; return 1; }
    [ "$n" -eq 1 ] || { echo "$1: the refusal logged $n times: $(grep cluster "$TMP/$1.log" | tail -n 3)"; return 1; }
    kill -0 "$(eval echo "\$${1}_PID")" || { echo "$1 is not running"; return 1; }
}
check auth-wrong auth_refused Q
check auth-missing auth_refused N
check auth-password-masked says ":***@" grep -h "cluster: node" "$TMP/P.log"
no_password_in_log() { ! grep -q s3cret "$TMP/P.log" || { echo "the password is in the log"; return 1; }; }
check auth-password-not-logged no_password_in_log

# B stops cleanly too (no leak, no sanitizer report)
kill -TERM "$B_PID"
for _ in $(seq 1 100); do kill -0 "$B_PID" 2>/dev/null || break; sleep 0.1; done
wait "$B_PID"
B_STATUS=$?
stop_b() {
    [ "$B_STATUS" -eq 0 ] || { echo "B exited with $B_STATUS"; return 1; }
    if grep -qE 'ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:' "$TMP/B.log"; then
        grep -E 'ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:' "$TMP/B.log" | head -n 3
        return 1
    fi
}
check B-clean-exit stop_b
it_finish
