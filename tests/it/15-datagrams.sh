#!/usr/bin/env bash
# Datagrams for a session that does not exist are dropped silently.
# shellcheck source=tests/it/lib.sh
. "$(dirname "$0")/lib.sh"
it_setup
start_daemon

check dgram-unknown-session probe dgram-unknown-session 20

it_finish
