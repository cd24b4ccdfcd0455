#!/usr/bin/env bash
# WebTransport streams that name a session the daemon does not have.
# shellcheck source=tests/it/lib.sh
. "$(dirname "$0")/lib.sh"
it_setup
start_daemon

check stream-unknown-session probe stream-unknown-session 16
check stream-closed-session probe stream-closed-session

# the bound comes from the configuration: 4 waiting streams, the 5th refused
stop_daemon
start_daemon "max_pending_streams = 4"
check stream-unknown-session-max4 probe stream-unknown-session 4

it_finish
