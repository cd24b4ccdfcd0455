#!/usr/bin/env bash
# Address validation by Retry: `retry = on` sends every new client through a
# Retry round trip, `auto` only while retry_handshakes handshakes are in
# progress, `off` never.  Tokens that are not ours are ignored; Retry tokens
# of ours that do not fit the client (another address, another connection
# ID) end the attempt with INVALID_TOKEN; NEW_TOKEN tokens spare a returning
# client the Retry.  Sessions work the same either way.
. "$(dirname "$0")/lib.sh"
it_setup
head -c 65536 /dev/urandom >"$TMP/64K"
[ -x "$BUILD/mktoken" ] || it_abort "$BUILD/mktoken not built"

retries() { grep -c "retry sent to" "$TMP/daemon.log"; }
no_retry() {
    local n
    n=$(retries)
    [ "$n" -eq 0 ] && return 0
    echo "$n retries sent"
    return 1
}

# ---- retry = on ----
start_daemon retry=on
check retry-on-echo client /echo --send "$TMP/64K" --verify -v
check retry-on-client-saw-retry client_err_has "Retry: the server validates our address"
check retry-on-logged log_has "retry sent to 127.0.0.1:"
ipv6() { CLIENT_HOST='[::1]' client /echo --send "$TMP/64K" --verify; }
check retry-on-ipv6 ipv6
check retry-on-sessions bench '"sessions_open":40,' '"errors":0' -- --mode sessions -c 20 -s 2 --hold 0.2
check retry-on-lossy client /echo --send "$TMP/64K" --verify --loss 0.1
# a token that is not ours (unreadable): ignored, the client is sent a Retry
check retry-on-foreign-token client /echo --send "$TMP/64K" --verify --token b7deadbeef00
check retry-on-foreign-token-logged log_has "unreadable retry token ignored"
# one of ours, but for another client: INVALID_TOKEN, no connection
read -r TOKEN DCID < <("$BUILD/mktoken" "$CERT" "$KEY")
[ -n "$DCID" ] || it_abort "mktoken failed"
check retry-bad-token client_exit 3 /echo --token "$TOKEN" --dcid "$DCID"
check retry-bad-token-says client_err_has "INVALID_TOKEN"
check retry-bad-token-logged log_has "retry token expired or not for this address"
check retry-after-bad-token client /echo --send "$TMP/64K" --verify
# NEW_TOKEN: after its first connection, wtbench presents the server's
# token (as browsers do) and later connections skip the Retry
new_tokens() {
    local r0 v0 r v
    r0=$(retries)
    v0=$(grep -c "validated by a NEW_TOKEN token" "$TMP/daemon.log")
    bench '"sessions_open":20,' '"errors":0' -- --mode sessions -c 20 --inflight 1 --hold 0.1 || return 1
    r=$(($(retries) - r0))
    v=$(($(grep -c "validated by a NEW_TOKEN token" "$TMP/daemon.log") - v0))
    echo "20 connections: $r Retry, $v by NEW_TOKEN"
    [ "$r" -ge 1 ] && [ "$r" -le 3 ] && [ "$v" -ge 17 ]
}
check retry-new-token-skips-retry new_tokens
# a NEW_TOKEN token of ours for another address: ignored, never fatal
read -r NTOKEN _ < <("$BUILD/mktoken" "$CERT" "$KEY" new-token)
check retry-foreign-new-token client /echo --send "$TMP/64K" --verify --token "$NTOKEN" -v
check retry-foreign-new-token-logged log_has "NEW_TOKEN token not valid here, ignored"
check retry-foreign-new-token-retried client_err_has "Retry: the server validates our address"
stop_daemon

# ---- retry = off: no Retry, whatever the token ----
start_daemon retry=off
check retry-off-echo client /echo --send "$TMP/64K" --verify
check retry-off-foreign-token client /echo --send "$TMP/64K" --verify --token b7deadbeef00
check retry-off-none-sent no_retry
stop_daemon

# ---- retry = auto: only past retry_handshakes handshakes in progress ----
start_daemon
check retry-auto-default-echo client /echo --send "$TMP/64K" --verify
check retry-auto-default-none-sent no_retry
stop_daemon
start_daemon retry=auto retry_handshakes=2
some_retries() {
    local n
    n=$(retries)
    echo "$n retries for 60 connections"
    [ "$n" -gt 0 ] && [ "$n" -lt 60 ]
}
check retry-auto-busy bench '"sessions_open":60,' '"errors":0' -- --mode sessions -c 60 --inflight 30 --hold 0.2
check retry-auto-busy-some-retried some_retries
it_finish
