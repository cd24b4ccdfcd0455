#!/usr/bin/env bash
# The sandbox in systemd/wtrelayd.service against what the daemon really
# does.  There is no systemd as PID 1 here, so the daemon runs under strace
# through every kind of work it has (echo, datagrams, broadcast, forward to
# TCP and UDP backends, the admin endpoint, [cluster]'s Redis connections
# and their loss, a reload, a drain) and every
# system call it made must be one the unit's SystemCallFilter= lines allow
# (expanded with systemd-analyze, read from the unit so a change to either
# side is checked), every socket a family RestrictAddressFamilies= allows,
# and no mapping both writable and executable (MemoryDenyWriteExecute=).
# Under the unit a refused call fails with EPERM (SystemCallErrorNumber=):
# the daemon would not be killed but would misbehave in ways no other test
# sees.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sandbox-lib.sh"
it_setup
command -v strace >/dev/null || it_abort "strace is missing (scripts/install-deps.sh --test)"
command -v systemd-analyze >/dev/null || it_abort "systemd-analyze is missing (scripts/install-deps.sh --test)"
command -v curl >/dev/null || it_abort "curl is missing (scripts/install-deps.sh --test)"

sandbox_allowed || it_abort "no SystemCallFilter= allow list in $UNIT"
check filter-expands test "$(wc -l <"$TMP/allowed")" -gt 100

# The daemon under strace: every kind of work it does
ECHO=$(backend tcp echo) || it_abort "no echo backend"
UECHO=$(backend udp echo) || it_abort "no udp echo backend"
APORT=$(it_free_tcp_port) || it_abort "no free TCP port"
PORT=$(it_free_port) || it_abort "no free UDP port"
# [cluster]: the Redis connections too (a redis-server of its own)
RPORT=$(it_free_tcp_port) || it_abort "no free TCP port"
redis_start || it_abort "redis-server did not start: $(tail -n 3 "$TMP/redis.log")"
it_write_conf "[cluster]" "redis = redis://127.0.0.1:$RPORT" "heartbeat = 200ms" "node_timeout = 1s" \
    "[route /chat]" "handler = broadcast" "tag = yes" "announce = yes" \
    "[route /fwd]" "handler = forward" "backend = tcp://127.0.0.1:$ECHO" \
    "datagram_backend = udp://127.0.0.1:$UECHO" \
    "[route /named]" "handler = forward" "backend = tcp://localhost:$ECHO" \
    "[admin]" "listen = 127.0.0.1:$APORT"
strace_start listening

head -c 200000 /dev/urandom >"$TMP/blob"
check echo client /echo --verify --send "$TMP/blob" --uni "$TMP/blob" --datagram hello
check cluster-connected log_has "cluster: connected"
check broadcast probe bc-relay "/chat?room=a" tag
# Redis gone: reconnection attempts (refused connections), local rooms on
kill -KILL "$REDIS_PID"
check cluster-lost log_has "local rooms go on"
sleep 0.5
check broadcast-redis-down probe bc-relay "/chat?room=b" tag
check forward client /fwd --verify --send "$TMP/blob" --datagram hello
check forward-named client /named --verify --send "$TMP/blob"
check admin-metrics curl -sf --max-time 5 -o /dev/null "http://127.0.0.1:$APORT/metrics"
kill -HUP "$DAEMON_PID"
check reloaded log_has "reload"
check echo-after-reload client /echo --verify --send "$TMP/blob"
strace_stop
check clean-exit test "$STRACE_STATUS" -eq 0

# What it did, against what the unit allows
check calls-traced test "$(wc -l <"$TMP/used")" -gt 20
check syscalls-allowed sandbox_refused

check address-families sandbox_families

check no-write-exec sandbox_wx
[ "$IT_FAILED" -eq 0 ]
