#!/usr/bin/env bash
# Steering by connection ID, proved by what breaks without it.  16
# connections to workers = 2 exchange paced requests (each in turn); at
# 1.5 s each moves to a new source port (wtbench --rebind: a NAT
# rebinding).  The kernel's hash would send a moved connection's packets
# to either worker; the steering program sends them to the worker named
# in the connection ID.
#   - steered: all 16 survive, every request is answered
#   - WTRELAYD_NO_STEERING=1 (a knob for this test only: the groups get
#     no program): about half land on the worker that does not know them
#     and break (a stateless reset, or an answer that never comes);
#     2..14 of 16 (a fair coin each: anything else 3 times in 10 000)
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/workers-lib.sh"
command -v curl >/dev/null || it_abort "curl is missing (scripts/install-deps.sh --test)"
it_setup

# rebind_run NAME: the bench's JSON line into $TMP/NAME.json
rebind_run() {
    timeout -k 2 40 "$BUILD/wtbench" --insecure --json --mode rps -c 16 --rate 100 -n 400 \
        --rebind 1.5 -t 10 "https://127.0.0.1:$PORT/echo" >"$TMP/$1.json" 2>"$TMP/$1.err"
    return 0
}
field() { sed -n "s/.*\"$2\":\([0-9]*\).*/\1/p" "$TMP/$1.json"; }

start_workers 2 "shutdown_timeout = 1s"
check steer-attached log_has 'steered by connection ID'
rebind_run steered
check steer-all-rebound bash -c "[ '$(field steered rebound)' = 16 ]"
check steer-none-lost bash -c "[ '$(field steered conns_lost)' = 0 ] && [ '$(field steered stalled)' = 0 ] || { cat '$TMP/steered.json'; exit 1; }"
check steer-all-answered bash -c "grep -q '\"requests\":400,' '$TMP/steered.json' && grep -q '\"errors\":0,' '$TMP/steered.json' || { cat '$TMP/steered.json'; exit 1; }"
# (that the moves reach the server as new addresses is what the
# unsteered run below shows: there they break)
stop_daemon
check steer-clean-exit it_exit_clean

export WTRELAYD_NO_STEERING=1
start_workers 2 "shutdown_timeout = 1s"
unset WTRELAYD_NO_STEERING
check nosteer-said log_has 'NOT steered'
rebind_run unsteered
# broken: reset by the worker that does not know it, or still waiting at
# the end for an answer that went to its old port
lost=$(( $(field unsteered conns_lost) + $(field unsteered stalled) ))
check nosteer-all-rebound bash -c "[ '$(field unsteered rebound)' = 16 ]"
check nosteer-about-half-lost bash -c "[ -n '$lost' ] && [ '$lost' -ge 2 ] && [ '$lost' -le 14 ] || { echo 'lost ${lost:-?} of 16'; cat '$TMP/unsteered.json'; exit 1; }"
echo "    steered: $(field steered conns_lost) of 16 lost; unsteered: ${lost:-?} of 16 lost"
it_finish
