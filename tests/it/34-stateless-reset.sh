#!/usr/bin/env bash
# A daemon that lost its connections (killed and restarted) answers their
# packets with a stateless reset that the clients recognise, because the
# token is derived from the key and so matches what the previous process
# handed out: a client learns at once instead of after its idle timeout.
# Resets are shorter than what triggered them, never sent for packets too
# short for that, and at most 1000 leave per second.
. "$(dirname "$0")/lib.sh"
it_setup
start_daemon idle_timeout=60s

# restart: SIGKILL (no CONNECTION_CLOSE goes out) and a new process on the
# same port with the same certificate and key.  Runs in this shell, not
# inside check, so that DAEMON_PID follows the new process.
restart() {
    kill -KILL "$DAEMON_PID"
    wait "$DAEMON_PID" 2>/dev/null
    spawn_daemon || it_abort "the restarted daemon exited at start-up"
}

# A transfer in progress when the daemon dies: its next packet is answered
# by the new process with a reset, and wtclient ends within seconds (the
# idle timeout is 60 s) saying why.
# (not inside check: its transfer runs on in the background, in this shell)
held_start
check reset-echo-before-restart grep -q first "$TMP/client.out"
restart
held_finish
check reset-after-restart held_reset_quick
check reset-after-restart-says client_err_has "stateless reset: the peer no longer has this connection"
check reset-after-restart-logged log_has "stateless reset to 127.0.0.1:"

# Raw short-header packets for a connection ID nobody has.  Prints the size
# of each answer and the token (its last 16 bytes), or "none".
raw() { # raw DCID-HEX SIZE...
    python3 - "$PORT" "$@" <<'PY'
import os, socket, sys
port, dcid, sizes = int(sys.argv[1]), bytes.fromhex(sys.argv[2]), sys.argv[3:]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(0.5)
for n in map(int, sizes):
    s.sendto(bytes([0x40 | 0x01]) + dcid + os.urandom(n - 1 - len(dcid)), ("127.0.0.1", port))
    try:
        r = s.recv(2048)
        print(len(r), r[-16:].hex())
    except socket.timeout:
        print("none")
PY
}
DCID=0123456789abcdef0123456789abcdef4242

sizes() {
    local out
    out=$(raw "$DCID" 38 39 43 44 1200 | awk '{print $1}' | tr '\n' ' ')
    [ "$out" = "none 38 42 42 42 " ] && return 0
    echo "answers to 38/39/43/44/1200 bytes: $out (wanted none 38 42 42 42)"
    return 1
}
check reset-sizes sizes

TOKEN1=$(raw "$DCID" 1200 | awk '{print $2}')
restart
TOKEN2=$(raw "$DCID" 1200 | awk '{print $2}')
same_token() {
    echo "token before the restart $TOKEN1, after $TOKEN2"
    [ -n "$TOKEN1" ] && [ "$TOKEN1" != none ] && [ "$TOKEN1" = "$TOKEN2" ]
}
check reset-token-survives-restart same_token

# 2500 unknown packets in a burst: at most 1000 answers per second
rate() {
    local n
    n=$(python3 - "$PORT" "$DCID" <<'PY'
import os, socket, sys, time
port, dcid = int(sys.argv[1]), bytes.fromhex(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
s.setblocking(False)
got = 0
for i in range(2500):
    s.sendto(b"\x41" + dcid + os.urandom(100), ("127.0.0.1", port))
    if i % 100 == 0:
        time.sleep(0.001)
    try:
        while True:
            s.recv(2048)
            got += 1
    except BlockingIOError:
        pass
end = time.time() + 0.5
while time.time() < end:
    try:
        s.recv(2048)
        got += 1
    except BlockingIOError:
        time.sleep(0.01)
print(got)
PY
)
    [ "$n" -ge 500 ] && [ "$n" -le 2000 ] && { echo "$n answers"; return 0; }
    echo "$n answers to 2500 unknown packets (wanted 500..2000)"
    return 1
}
check reset-rate-limited rate
head -c 65536 /dev/urandom >"$TMP/64K"
check reset-then-echo client_exit 0 /echo --send "$TMP/64K" --verify
it_finish
