#!/usr/bin/env bash
# The loop thread's scheduling slice (loop_slice_us, src/prio.c): the
# loop thread of the daemon, and of each worker, runs with the short
# slice it asked for (the kernel's /proc/PID/task/TID/sched says so); the
# handshake threads keep the kernel's default (a thread inherits its
# creator's slice: they put theirs back) and run handshake_nice (10) nice
# steps below the loop; a reload applies a new slice; 0 leaves the
# default; out of range is a config error with file:line.
# On a kernel without custom slices (before 6.12) the daemon says so and
# serves: that is checked instead.
. "$(dirname "$0")/lib.sh"
it_setup

# slice PID TID: the task's slice in ns, as the kernel has it
slice() { awk '$1 == "se.slice" { print $3 }' "/proc/$1/task/$2/sched" 2>/dev/null; }
DEFAULT=$(awk '$1 == "se.slice" { print $3 }' /proc/self/sched 2>/dev/null)
threads() { ls "/proc/$1/task"; }
# nice PID TID: the task's nice value (stat field 19; the command name in
# field 2 has no spaces here)
nice_of() { awk '{ print $19 }' "/proc/$1/task/$2/stat" 2>/dev/null; }

start_daemon "log_level = info" "handshake_threads = 2"
if log_has "keeps its own scheduling slice" >/dev/null; then
    # an older kernel: the daemon serves with the default
    check old-kernel-serves client /echo --send /etc/hostname --verify
    it_finish
fi
[ -n "$DEFAULT" ] || it_abort "no se.slice in /proc/self/sched"
check slice-logged log_has "a scheduling slice of 100 us"
check loop-thread-100us test "$(slice "$DAEMON_PID" "$DAEMON_PID")" = 100000
others_default() { # PID [INC]: every thread but the loop has the default
    local t n=0 s want # slice, and a nice value INC (10) above the loop's
    want=$(($(nice_of "$1" "$1") + ${2:-10}))
    [ "$want" -le 19 ] || want=19
    for t in $(threads "$1"); do
        [ "$t" = "$1" ] && continue
        s=$(slice "$1" "$t")
        [ "$s" = "$DEFAULT" ] || { echo "thread $t: slice $s, default $DEFAULT"; return 1; }
        [ "$(nice_of "$1" "$t")" = "$want" ] ||
            { echo "thread $t: nice $(nice_of "$1" "$t"), want $want"; return 1; }
        n=$((n + 1))
    done
    echo "$n other threads at the default $DEFAULT, nice $want"
    [ "$n" -ge 2 ]
}
check loop-thread-nice-unchanged test "$(nice_of "$DAEMON_PID" "$DAEMON_PID")" = "$(awk '{ print $19 }' /proc/self/stat)"
check handshake-threads-default others_default "$DAEMON_PID"
check serves client /echo --send /etc/hostname --verify

# a reload applies a new value
sed -i 's/^log_level = info$/log_level = info\nloop_slice_us = 500/' "$TMP/wtrelayd.ini"
kill -HUP "$DAEMON_PID"
reloaded() {
    local _
    for _ in $(seq 1 50); do
        [ "$(slice "$DAEMON_PID" "$DAEMON_PID")" = 500000 ] && return 0
        sleep 0.1
    done
    echo "slice $(slice "$DAEMON_PID" "$DAEMON_PID") after the reload"
    return 1
}
check reload-500us reloaded
check reload-logged log_has "a scheduling slice of 500 us"
check reload-threads-default others_default "$DAEMON_PID"
stop_daemon
check clean-exit it_exit_clean

# 0: the kernel's default; the handshake threads at the loop's priority
start_daemon "loop_slice_us = 0" "handshake_threads = 2" "handshake_nice = 0"
check zero-default test "$(slice "$DAEMON_PID" "$DAEMON_PID")" = "$DEFAULT"
check nice-zero others_default "$DAEMON_PID" 0
stop_daemon

cfg_bad() {
    local out
    printf '[server]\ncert = %s\nkey = %s\nloop_slice_us = 100001\n' "$CERT" "$KEY" >"$TMP/bad.ini"
    out=$("$BUILD/wtrelayd" -t -c "$TMP/bad.ini" 2>&1)
    [ $? -eq 1 ] && [[ "$out" == *"bad.ini:4: "*"loop_slice_us"* ]] || { echo "$out"; return 1; }
}
check out-of-range cfg_bad

# workers: each worker's loop thread
start_daemon "log_level = info" "workers = 2"
workers_100us() {
    local w n=0
    for w in $(pgrep -P "$DAEMON_PID"); do
        [ "$(slice "$w" "$w")" = 100000 ] || { echo "worker $w: $(slice "$w" "$w")"; return 1; }
        n=$((n + 1))
    done
    echo "$n workers at 100 us"
    [ "$n" = 2 ]
}
ready() { # the workers log their slice once their loops run
    local _
    for _ in $(seq 1 100); do
        [ "$(grep -c 'a scheduling slice of 100 us' "$TMP/daemon.log")" -ge 2 ] && return 0
        sleep 0.05
    done
    return 1
}
check workers-logged ready
check workers-100us workers_100us

it_finish
