#!/usr/bin/env bash
# Security review (issue 8): a packet that cannot be authenticated must not
# move a connection.  Garbage with a connection's CID from another address
# redirected the server's packets there until the client spoke again; now
# only the path ngtcp2 has validated is used, and a real NAT rebinding
# still works (path validation, then the new address).
. "$(dirname "$0")/lib.sh"
it_setup
start_daemon

witness_start 6
check spoof-path probe spoof-path 4M
check rebind probe rebind 4M 127.0.0.3
check path-witness witness_check
check rebind-logged log_has "now on path"
it_finish
