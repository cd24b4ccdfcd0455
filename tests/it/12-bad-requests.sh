#!/usr/bin/env bash
# Requests the daemon must refuse without harming the connection.
# shellcheck source=tests/it/lib.sh
. "$(dirname "$0")/lib.sh"
it_setup
start_daemon

status_is() { # status_is WANT PATH
    local out
    out=$(probe status "$2") || { echo "$out"; return 1; }
    [ "$out" = "status $1" ] || { echo "wanted status $1, got: $out"; return 1; }
}

check status-200 status_is 200 /echo
check status-404 status_is 404 /nope
check status-404-logged log_has "CONNECT /nope refused with 404: no route"
check status-404-prefix status_is 404 /echo/x
check connect-missing-authority probe connect-missing authority
check connect-missing-path probe connect-missing path
check connect-missing-logged log_has "reset by HTTP/3 with 0x10e"
check connect-bogus-protocol probe connect-missing protocol-value
check connect-bogus-protocol-logged log_has "refused with 501: unsupported :protocol"

it_finish
