#!/usr/bin/env bash
# Datagrams for a session that does not exist are dropped silently.  An
# empty datagram is a datagram: echoed, and the daemon lives (it used to
# abort: ngtcp2 asserts that no datagram vector is empty, so one packet from
# anyone stopped the daemon for everybody).
# shellcheck source=tests/it/lib.sh
. "$(dirname "$0")/lib.sh"
it_setup
start_daemon

check dgram-unknown-session probe dgram-unknown-session 20
check dgram-empty-echoed client /echo --datagram "" --verify
check dgram-empty-daemon-alive daemon_alive
check dgram-empty-then-others-served client /echo --datagram after-empty --verify

it_finish
