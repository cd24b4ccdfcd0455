#!/usr/bin/env bash
# Datagrams that are not QUIC, or are broken QUIC, are dropped without a
# trace: the daemon keeps serving sessions, old and new.  Stray signals too.
. "$(dirname "$0")/lib.sh"
it_setup
start_daemon

# send N datagrams built by a generator to 127.0.0.1:$PORT
blast() {
    python3 - "$PORT" <<'PY'
import os, random, socket, sys
port = int(sys.argv[1])
rnd = random.Random(1234)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
def send(b): s.sendto(b, ("127.0.0.1", port))
for i in range(2000):
    kind = i % 5
    if kind == 0:   # random bytes of random size
        send(os.urandom(rnd.randint(1, 1500)))
    elif kind == 1: # long header, QUIC v1, random CIDs, truncated
        send(bytes([0xc0 | rnd.randint(0, 0x3f)]) + b"\x00\x00\x00\x01" + os.urandom(rnd.randint(0, 60)))
    elif kind == 2: # an Initial-sized packet with garbage after the header
        send(b"\xc3\x00\x00\x00\x01\x08" + os.urandom(8) + b"\x08" + os.urandom(8) + b"\x00\x44\xd0" + os.urandom(1180))
    elif kind == 3: # unknown version: answered by version negotiation
        send(b"\xc0\x1a\x2b\x3c\x4d\x08" + os.urandom(8) + b"\x08" + os.urandom(8) + os.urandom(1180))
    else:           # short header for a connection that does not exist
        send(bytes([0x40 | rnd.randint(0, 0x3f)]) + os.urandom(rnd.randint(20, 1200)))
PY
}

check garbage-sent blast
check garbage-daemon-alive daemon_alive
check garbage-then-echo probe echo-bidi /echo 65536
# and while a session is busy
busy() {
    probe echo-bidi /echo 4194304 &
    local p=$!
    blast
    wait $p
}
check garbage-during-echo busy

# SIGHUP amid garbage: a reload (of the same file), and the daemon lives on
hup() {
    kill -HUP "$DAEMON_PID" && log_has "reloaded in" && daemon_alive
}
check sighup-reloads hup
check sighup-then-echo probe echo-bidi /echo 1
it_finish
