#!/usr/bin/env bash
# The clients' simulated bad path, each impairment alone and together:
# --reorder, --dup, --delay (wtclient, wtbench) really act each way (their
# counters say so), and whatever they do, every byte still arrives intact
# and in order at the application, close codes too.
. "$(dirname "$0")/lib.sh"
it_setup
start_daemon

head -c 1048576 /dev/urandom >"$TMP/1M"
head -c 262144 /dev/urandom >"$TMP/256K"
same_as() { cmp -s "$1" "$TMP/client.out" || { echo "output differs from $(basename "$1")"; return 1; }; }
# path_has WORD: wtclient's counters show WORD (e.g. "reordered") each way
path_has() {
    local line
    line=$(grep '^wtclient: path:' "$TMP/client.err")
    [ "$(printf '%s' "$line" | grep -oE "[1-9][0-9]* $1" | wc -l)" -ge 2 ] && return 0
    echo "wanted $1 both ways: ${line:-no path line}"
    return 1
}
bidi() { client /echo "$@" --send "$TMP/1M" --verify && same_as "$TMP/1M"; }
uni() { client /echo "$@" --uni "$TMP/256K" --verify && same_as "$TMP/256K"; }
timed() { # SECS-AT-LEAST CMD...: CMD passes and takes at least that long
    local min=$1 t0 t1
    shift
    t0=$(date +%s%N)
    "$@" || return 1
    t1=$(date +%s%N)
    [ $(((t1 - t0) / 1000000)) -ge "$min" ] && return 0
    echo "took $(((t1 - t0) / 1000000)) ms, less than the delay allows ($min ms)"
    return 1
}

check reorder-bidi-1MiB bidi --reorder 0.2
check reorder-counted path_has reordered
check dup-bidi-1MiB bidi --dup 0.2
check dup-counted path_has duplicated
# a handshake and a request/response are 3 round trips at the least: 3 x
# (2 x 100 ms) when each way is delayed 100 +- 20 ms
check delay-uni-256KiB timed 480 uni --delay 100:20
check delay-counted path_has delayed
check all-bidi-1MiB bidi --loss 0.03 --reorder 0.05 --dup 0.05 --delay 5:3
check all-close-code client /echo --reorder 0.1 --dup 0.1 --delay 10:5 --close "4344:bad path"
check all-close-code-logged log_has 'closed by peer: code=4344 reason="bad path"'
# the close of a client with nothing to send came before the server's 200
# on a slow path, and wt_session_close() ignores a session still
# connecting: it hung until --timeout (wtclient now waits for the 200)
check close-after-slow-answer client /echo --delay 100 --close "4345:slow answer"
check close-after-slow-answer-logged log_has 'closed by peer: code=4345 reason="slow answer"'
check bad-value client_exit 2 /echo --delay 5:x
check bad-fraction client_exit 2 /echo --reorder 0.9

check bench-rps-reorder-dup bench '"requests":2000,' -- --reorder 0.05 --dup 0.05 --delay 2:1 --mode rps -m 10 -n 2000
check bench-bulk-all bench '"streams_done":8,' '"reordered":' -- --loss 0.02 --reorder 0.05 --dup 0.02 --delay 3:1 -c 2 -s 2 -m 2 -b 256k
it_finish
