#!/usr/bin/env bash
# Live reload on SIGHUP (issue 10): established sessions keep running on
# what they started with (streams, datagrams, a stream spanning the reload,
# a broadcast room, a forward stream on its old backend, a connection on a
# removed address, a forward connection lingering past its route), new
# ones get the new routes, certificate and listen addresses; broken
# configs and certificates leave the running one in force; 50 reloads in a
# row under traffic leak nothing (the ASan build's leak check at exit).
# shellcheck source=tests/it/lib.sh
. "$(dirname "$0")/lib.sh"
it_setup

C1=$CERT K1=$KEY
mkdir -p "$TMP/c2"
CERT= KEY=
it_make_cert "$TMP/c2" || it_abort "no second certificate"
C2=$CERT K2=$KEY
CERT=$C1 KEY=$K1
sha() { openssl x509 -in "$1" -outform DER | sha256sum | cut -d' ' -f1; }
H1=$(sha "$C1") H2=$(sha "$C2")
[ -n "$H1" ] && [ "$H1" != "$H2" ] || it_abort "certificate hashes: '$H1' '$H2'"

ECHOB=$(backend tcp echo) || it_abort "no echo backend"
NAMEB=$(backend tcp name:B) || it_abort "no backend B"
SINK=$(backend tcp sink) || it_abort "no sink backend"

PORT=$(it_free_port) || it_abort "no port"
PORT2=$(it_free_port) || it_abort "no port"
PORT3=$(it_free_port) || it_abort "no port"
INI=$TMP/wtrelayd.ini

# conf A|B [EXTRA LINES...]: generation A (cert 1, /old, /sinkl, /fwd to
# the echo backend, a third port) or B (cert 2, /new, /fwd to backend B,
# a second port instead of the third, /chat's max_members changed).
conf() {
    local gen=$1 line
    shift
    {
        echo "[server]"
        if [ "$gen" = A ]; then
            echo "listen = 127.0.0.1:$PORT, 127.0.0.1:$PORT3"
            echo "cert = $C1"
            echo "key = $K1"
        else
            echo "listen = 127.0.0.1:$PORT, 127.0.0.1:$PORT2"
            echo "cert = ${GEN_B_CERT:-$C2}"
            echo "key = ${GEN_B_KEY:-$K2}"
            echo "max_connections = 500"
        fi
        echo "log_level = debug"
        for line in "$@"; do printf '%s\n' "$line"; done
        echo "[route /echo]"
        echo "handler = echo"
        echo "[route /chat]"
        echo "handler = broadcast"
        if [ "$gen" = A ]; then
            echo "max_members = 10"
            echo "[route /old]"
            echo "handler = echo"
            echo "[route /sinkl]"
            echo "handler = forward"
            echo "backend = tcp://127.0.0.1:$SINK"
            echo "linger = 2s"
            echo "[route /fwd]"
            echo "handler = forward"
            echo "backend = tcp://127.0.0.1:$ECHOB"
        else
            echo "max_members = 20"
            echo "[route /new]"
            echo "handler = echo"
            echo "[route /fwd]"
            echo "handler = forward"
            echo "backend = tcp://127.0.0.1:$NAMEB"
        fi
    } >"$INI"
}

reloads() { grep -c 'reloaded in' "$TMP/daemon.log"; }
failures() { grep -c 'reload failed' "$TMP/daemon.log"; }
# hup COUNTER: SIGHUP, then wait (5 s at most) until COUNTER has grown.
hup() {
    local before _
    before=$($1)
    kill -HUP "$DAEMON_PID" || return 1
    for _ in $(seq 1 100); do
        [ "$($1)" -gt "$before" ] && return 0
        sleep 0.05
    done
    echo "no new '$1' line after SIGHUP"
    return 1
}
# holder NAME PATH [PORT]: wtclient --send - on a FIFO, started now (its
# connection and session open before what follows); the test writes to
# fd 7/8/... later.  Output: $TMP/NAME.out, .err, .rc.
holder() {
    local name=$1 path=$2 port=${3:-$PORT}
    mkfifo "$TMP/$name.fifo"
    (
        timeout -k 2 40 "$BUILD/wtclient" --insecure --timeout 30 --send - \
            "https://127.0.0.1:$port$path" <"$TMP/$name.fifo" \
            >"$TMP/$name.out" 2>"$TMP/$name.err"
        echo $? >"$TMP/$name.rc"
    ) &
}
holder_done() { # NAME: waits (10 s at most) for its exit status 0
    local _
    for _ in $(seq 1 200); do
        [ -s "$TMP/$1.rc" ] && break
        sleep 0.05
    done
    [ -s "$TMP/$1.rc" ] || { echo "$1: still running"; return 1; }
    [ "$(cat "$TMP/$1.rc")" = 0 ] || { echo "$1: exit $(cat "$TMP/$1.rc"): $(tail -n 1 "$TMP/$1.err")"; return 1; }
}
out_is() { # FILE WANT
    [ "$(cat "$1")" = "$2" ] && return 0
    echo "$1 has '$(head -c 200 "$1")', wanted '$2'"
    return 1
}
# listener_got NAME STREAMS BYTES: a bc-listen got that many whole
# streams, and datagrams too
listener_got() {
    local _ d
    for _ in $(seq 1 300); do
        grep -q "bc-listen" "$TMP/$1.lst" 2>/dev/null && break
        sleep 0.05
    done
    d=$(sed -n 's/.*reset ([^)]*), \([0-9]*\) datagrams.*/\1/p' "$TMP/$1.lst")
    grep -q "bc-listen ok: $2 streams whole ($3 bytes)" "$TMP/$1.lst" &&
        [ "${d:-0}" -ge 1 ] && return 0
    echo "$1: $(cat "$TMP/$1.lst")"
    return 1
}
at_port() { local PORT=$1; shift; "$@"; }

conf A
spawn_daemon || it_abort "daemon did not start"
check initial-cert-1 client /old --cert-hash "$H1"
check initial-third-port at_port "$PORT3" client /echo

# ---- traffic that starts before the reload ----
witness_start 8
timeout -k 2 30 "$BUILD/wtbench" --insecure --json --mode datagram -n 300 --rate 50 -t 20 \
    "https://127.0.0.1:$PORT/echo" >"$TMP/dgram.out" 2>"$TMP/dgram.err" &
DGRAM_PID=$!
holder long /echo
holder fwdold /fwd
# a member that joined before the reload and sends a datagram every
# 0.5 s across it (two members: wtbench needs a room)
timeout -k 2 30 "$BUILD/wtbench" --insecure --mode broadcast -c 1 -s 2 -n 16 \
    --rate 2 -t 20 "https://127.0.0.1:$PORT/chat?room=lobby" \
    >"$TMP/bcold.out" 2>&1 &
holder third /echo "$PORT3"
PROBE_TIMEOUT=30 probe bc-listen "/chat?room=lobby" 10 >"$TMP/lold.lst" 2>&1 &
# the holders' stdin, opened last: no other process may hold a write end,
# or their EOF would never come
exec 7>"$TMP/long.fifo" 8>"$TMP/fwdold.fifo" 6>"$TMP/third.fifo"
printf 'part-one-' >&7
printf 'fwd-one-' >&8
printf 'third-one-' >&6
# a forward connection that lingers past its session (the sink never reads
# nor ends), and past its route: gen B drops /sinkl
head -c 65536 /dev/zero >"$TMP/64k"
client /sinkl --uni "$TMP/64k" --timeout 0.5 >/dev/null
sleep 1

# ---- the reload ----
conf B
check reload-logged hup reloads
check reload-time-logged log_has "reloaded in"
check reload-says-routes grep -qE "reloaded in [0-9.]+ ms: routes .*~/chat.*\+/new.*-/old.*-/sinkl" "$TMP/daemon.log"
check reload-says-fwd-changed grep -qE "reloaded in .*~/fwd" "$TMP/daemon.log"
check reload-says-limits grep -qE "reloaded in .*limits max_connections 1000->500" "$TMP/daemon.log"
check reload-says-listen grep -qF "listen +127.0.0.1:$PORT2 -127.0.0.1:$PORT3" "$TMP/daemon.log"
check reload-says-cert log_has "certificate sha-256 $H1 -> $H2"
check reload-says-keep-port log_has "udp 127.0.0.1:$PORT3: no longer listening (1 connections keep it"

# new connections and sessions: new routes, new certificate, new ports
check new-route-answers client /new --cert-hash "$H2"
check new-cert-only client_exit 3 /echo --cert-hash "$H1"
check removed-route-404 client_exit 4 /old
check removed-route-says-404 client_err_has 404
check added-port-answers at_port "$PORT2" client /new --cert-hash "$H2"
PROBE_TIMEOUT=2 check removed-port-refuses at_port "$PORT3" client_exit 3 /echo

# the broadcast room spans the reload: a member who joins now meets the
# ones who joined before, both ways (the old sender's datagrams reach the
# new listener, the new sender's stream the old listener)
PROBE_TIMEOUT=20 probe bc-listen "/chat?room=lobby" 3 >"$TMP/lnew.lst" 2>&1 6>&- 7>&- 8>&- &
sleep 0.7
check room-new-sends probe bc-send "/chat?room=lobby" 1 1000
check room-new-hears-old listener_got lnew 1 1000
check room-old-hears-new listener_got lold 1 1000
check room-one-room log_has 'of room "lobby" (4 members)'

# streams that span the reload finish on what they started with
printf 'part-two' >&7
exec 7>&-
check long-stream-done holder_done long
check long-stream-echoed out_is "$TMP/long.out" "part-one-part-two"
printf 'fwd-two' >&8
exec 8>&-
check fwd-old-done holder_done fwdold
check fwd-old-backend out_is "$TMP/fwdold.out" "fwd-one-fwd-two"
printf 'x' >"$TMP/x"
check fwd-new-backend client /fwd --send "$TMP/x"
check fwd-new-backend-is-B out_is "$TMP/client.out" "B"
printf 'third-two' >&6
exec 6>&-
check removed-port-conn-done holder_done third
check removed-port-conn-echoed out_is "$TMP/third.out" "third-one-third-two"
check removed-port-closed log_has "udp 127.0.0.1:$PORT3: closed (its last connection ended)"
check witness-across-reload witness_check
dgrams_ok() {
    local out sent back
    wait "$DGRAM_PID" || { echo "wtbench: $(tail -n 1 "$TMP/dgram.err")"; return 1; }
    out=$(cat "$TMP/dgram.out")
    sent=$(printf '%s' "$out" | sed -n 's/.*"dgrams_sent":\([0-9]*\).*/\1/p')
    back=$(printf '%s' "$out" | sed -n 's/.*"dgrams_back":\([0-9]*\).*/\1/p')
    [ "${sent:-0}" -eq 300 ] && [ "${back:-0}" -ge 297 ] && return 0
    echo "datagrams: $out"
    return 1
}
check datagrams-across-reload dgrams_ok
check linger-outlives-route log_has "no progress for 2000 ms after its stream ended; reset"

# ---- broken configurations and certificates: the old one stays ----
broken() { # NAME WANT-IN-LOG: SIGHUP on what $INI is now
    check "broken-$1-rejected" hup failures
    check "broken-$1-says" log_has "$2"
    check "broken-$1-still-serving" client /new --cert-hash "$H2"
}
conf B "max_connections = lots"
broken value "reload failed, the running configuration stays: $INI:7: max_connections: 'lots' is not a whole number"
conf B
echo "[server" >>"$INI"
broken syntax "reload failed, the running configuration stays: $INI:$(wc -l <"$INI"): section header without ']'"
printf -- '-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n' >"$TMP/garbage.pem"
GEN_B_CERT=$TMP/garbage.pem conf B
broken garbage-pem "reload failed, the running configuration stays: $TMP/garbage.pem"
GEN_B_CERT=$C2 GEN_B_KEY=$K1 conf B
broken key-mismatch "reload failed, the running configuration stays: $C2 / $K1"
check broken-nothing-reloaded-meanwhile test "$(reloads)" -eq 1

# a chain file (leaf first, then the CA's certificate): the leaf serves
cat "$C2" "$C1" >"$TMP/chain.pem"
GEN_B_CERT=$TMP/chain.pem conf B
check chain-reloaded hup reloads
check chain-leaf-serves client /new --cert-hash "$H2"

# ---- tokens across a change of key ----
# A NEW_TOKEN token made with key 1 spares its holder the Retry while key 1
# is in force, and still after a reload to key 2 (the old secret is kept
# for a token's lifetime); one made with a key never loaded does not.
it_make_cert_to() { local c=$CERT k=$KEY; CERT= KEY=; mkdir -p "$1"; it_make_cert "$1"; C3=$CERT K3=$KEY; CERT=$c KEY=$k; }
it_make_cert_to "$TMP/c3" || it_abort "no third certificate"
read -r NT1 _ < <("$BUILD/mktoken" "$C1" "$K1" new-token 127.0.0.1)
read -r NT3 _ < <("$BUILD/mktoken" "$C3" "$K3" new-token 127.0.0.1)
[ -n "$NT1" ] && [ -n "$NT3" ] || it_abort "mktoken failed"
validated() { grep -c "validated by a NEW_TOKEN token" "$TMP/daemon.log"; }
# token_spares NAME TOKEN HASH: the token is taken, no Retry
token_spares() {
    local v0
    v0=$(validated)
    client /new --cert-hash "$3" --token "$2" -v || return 1
    client_err_has "Retry: the server validates our address" && { echo "a Retry despite the token"; return 1; }
    [ "$(validated)" -gt "$v0" ] || { echo "not validated by the token"; return 1; }
}
conf A "retry = on"
echo "[route /new]" >>"$INI"; echo "handler = echo" >>"$INI"
check token-key1-reloaded hup reloads
check token-key1-taken token_spares key1 "$NT1" "$H1"
conf B "retry = on"
check token-key2-reloaded hup reloads
check token-key1-taken-after-key-change token_spares old "$NT1" "$H2"
token_foreign() {
    client /new --cert-hash "$H2" --token "$NT3" -v || return 1
    client_err_has "Retry: the server validates our address"
}
check token-unknown-key-retried token_foreign
check token-unknown-key-logged log_has "NEW_TOKEN token not valid here, ignored"

# ---- 50 reloads in a row under traffic ----
witness_start 10
many() {
    local i before
    before=$(reloads)
    for i in $(seq 1 50); do
        if [ $((i % 2)) = 1 ]; then conf A; else conf B; fi
        hup reloads >/dev/null || { echo "reload $i not done"; return 1; }
    done
    [ "$(reloads)" -eq $((before + 50)) ] || { echo "$(reloads) reloads"; return 1; }
}
check reload-50-times many
check after-50-cert-2 client /new --cert-hash "$H2"
check witness-across-50 witness_check
check no-reload-failed test "$(failures)" -eq 4
times=$(sed -n 's/.*reloaded in \([0-9.]*\) ms.*/\1/p' "$TMP/daemon.log" | sort -n)
echo "    reload times (ms): min $(echo "$times" | head -n 1), max $(echo "$times" | tail -n 1), n $(echo "$times" | wc -l)"

it_finish
