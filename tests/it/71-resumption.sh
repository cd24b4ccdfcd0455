#!/usr/bin/env bash
# TLS 1.3 session resumption: the daemon sends a ticket after every
# handshake, keyed from the private key; wtclient --resume keeps it and
# resumes (the daemon logs "handshake completed (resumed)"), also after a
# restart and a reload with the same key; with another key, or a ticket
# that is garbage or too large, a clean full handshake.  A resumed session
# still checks the certificate (--cert-hash).  wtbench --resume: every
# connection after the first resumes.
. "$(dirname "$0")/lib.sh"
it_setup
command -v curl >/dev/null || it_abort "curl is missing (scripts/install-deps.sh --test)"
APORT=$(it_free_tcp_port) || it_abort "no free TCP port"
start_daemon "[admin]" "listen = 127.0.0.1:$APORT"
printf 'resume me' >"$TMP/msg"
T=$TMP/ticket

# go WANT [OPTIONS]: an echo session whose handshake was WANT
# ("resumed" or "full handshake")
go() {
    local want=$1
    shift
    client /echo --send "$TMP/msg" --verify --resume "$T" "$@" || return 1
    client_err_has "wtclient: $want"
}
resumed_count() { grep -c 'handshake completed (resumed)' "$TMP/daemon.log"; }
count_is() {
    local n
    n=$(resumed_count)
    [ "$n" -eq "$1" ] && return 0
    echo "daemon logged $n resumed handshakes, wanted $1"
    return 1
}

check first-is-full go "full handshake"
check ticket-kept test -s "$T"
mode() { [ "$(stat -c %a "$T")" = 600 ] || { echo "mode $(stat -c %a "$T")"; return 1; }; }
check ticket-file-0600 mode
check second-resumes go resumed
check third-resumes go resumed
check daemon-counted count_is 2
metric() { # the admin endpoint's resumed counter is N
    local got
    got=$(curl -s --max-time 5 "http://127.0.0.1:$APORT/metrics" |
        awk '$1 == "wtrelayd_handshakes_resumed_total" {print $2}')
    [ "$got" = "$1" ] && return 0
    echo "wtrelayd_handshakes_resumed_total is '$got', wanted $1"
    return 1
}
check metric-counted metric 2
check resumed-cert-hash go resumed --cert-hash "$(cat "$TMP/cert.sha256" 2>/dev/null ||
    openssl x509 -in "$CERT" -outform der | sha256sum | cut -c1-64)"
bad_hash() {
    client_exit 3 /echo --resume "$T" --cert-hash "$(printf '0%.0s' $(seq 1 64))" &&
        client_err_has "certificate hash mismatch"
}
check resumed-still-checks-cert bad_hash

# a reload with the same key keeps the tickets good
reload() {
    kill -HUP "$DAEMON_PID" && log_has "reloaded in" && go resumed
}
check after-reload-resumes reload

# a restart with the same key: the same ticket key (restarted here, not
# under check, which runs in a subshell)
stop_daemon
spawn_daemon || it_abort "the daemon did not start again"
check after-restart-resumes go resumed
check after-restart-counted count_is 1

# hostile ticket files: a full handshake, and the file replaced
head -c 833 /dev/urandom >"$T"
check garbage-ticket-full go "full handshake"
check garbage-replaced go resumed
head -c 20000 /dev/urandom >"$T"
check oversized-ticket-full go "full handshake"
: >"$T"
check empty-ticket-full go "full handshake"
rm -f "$T"
check missing-ticket-full go "full handshake"

# wtbench --resume: the first connection full, the 19 others resumed
bench_resume() {
    local before after
    before=$(resumed_count)
    bench '"sessions_open":20' '"resumed":19' -- --mode sessions -c 20 --resume || return 1
    after=$(resumed_count)
    [ $((after - before)) -eq 19 ] && return 0
    echo "daemon logged $((after - before)) resumed handshakes, wanted 19"
    return 1
}
check wtbench-resume bench_resume
check wtbench-fresh bench '"sessions_open":20' '"resumed":0' -- --mode sessions -c 20

# another key: the old ticket is refused, a full handshake follows cleanly
check ticket-of-first-key go resumed
mkdir -p "$TMP/k2" && scripts/gen-dev-cert.sh "$TMP/k2" >/dev/null 2>&1 &&
    [ -s "$TMP/k2/key.pem" ] || it_abort "no second key"
stop_daemon
sed -i -e "s|^cert = .*|cert = $TMP/k2/cert.pem|" \
    -e "s|^key = .*|key = $TMP/k2/key.pem|" "$TMP/wtrelayd.ini"
spawn_daemon || it_abort "the daemon did not start with the new key"
check other-key-full-handshake go "full handshake"
check other-key-nothing-resumed count_is 0
check other-key-then-resumes go resumed
it_finish
