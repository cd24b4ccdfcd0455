#!/usr/bin/env bash
# Security review (issue 8), stream bookkeeping, each beside a well-behaved
# client:
#  - a uni stream that arrives complete (and closed by QUIC) before its
#    CONNECT was silently dropped: it must survive until the session opens;
#  - an echo waiting for a stream slot never resumed when a slot freed;
#  - streams naming refused sessions stayed pending, filling the list;
#  - streams adopted when their session opens skipped the stream limit;
#  - a stream naming a session that never comes waits only pending_timeout;
#  - prefix bytes of streams reset mid-prefix were never credited back;
#  - a reset CONNECT stream was reported as a clean close;
#  - CONNECTs before the client's SETTINGS (draft-16 §7.1) wait unanswered,
#    costing nothing but the requests, and are all served once they come.
. "$(dirname "$0")/lib.sh"
it_setup
start_daemon "pending_timeout = 1s"
witness_start 8
check early-uni probe early-uni 1000
check early-uni-large probe early-uni 500000
check refused-streams probe refused-streams 40
check pending-timeout probe pending-timeout 800 3000
check connect-reset probe connect-reset
check connect-reset-logged log_has "CONNECT stream reset"
check settings-late probe_says "statuses 200 200 200 200 200 200 200 200" settings-late 8 1500
check settings-late-logged log_has "CONNECT waits for the client's SETTINGS"
check streams-witness witness_check

stop_daemon
start_daemon "max_streams_per_session = 2"
witness_start 4
check slot-wait probe slot-wait
check adopt-limit probe_says "2 adopted, 2 rejected" adopt-limit 4
check limits-witness witness_check

stop_daemon
start_daemon "max_connection_buffer_bytes = 16k"
witness_start 5
# 9 bytes of credit each: 2000 streams leak 18 kB, more than the window
check prefix-reset probe --timeout 20 prefix-reset 2000
check prefix-witness witness_check
it_finish
