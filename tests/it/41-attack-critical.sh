#!/usr/bin/env bash
# Security review (issue 8): the HTTP/3 streams that live as long as the
# connection.  STOP_SENDING on the server's control stream while it still
# held unsent bytes (the client allowing 1 byte of connection data, then
# more) made the write loop spin at 100 % CPU, serving nobody.  Stopping or
# closing any critical stream, ours or the peer's, must close the
# connection with H3_CLOSED_CRITICAL_STREAM (RFC 9114 §6.2.1, RFC 9204
# §4.2); a well-behaved client beside it stays served throughout.
. "$(dirname "$0")/lib.sh"
it_setup
start_daemon

cpu_ticks() { awk '{print $14 + $15}' "/proc/$DAEMON_PID/stat"; }

witness_start 6
t0=$(cpu_ticks)
check stop-control-unsent probe --max-data 1 critical-stream stop-control
check stop-control probe critical-stream stop-control
check stop-qpack-enc probe critical-stream stop-qpack-enc
check stop-qpack-dec probe critical-stream stop-qpack-dec
check fin-control probe critical-stream fin-control
check reset-control probe critical-stream reset-control
check critical-witness witness_check
# a spinning loop burns a whole core: 6 s of test must not cost 3 s of CPU
check critical-cpu-bounded sh -c "t=\$(( $(cpu_ticks) - $t0 )); [ \$t -lt 300 ] || { echo \"daemon used \$t ticks\"; exit 1; }"
check critical-logged log_has "closed critical stream"
it_finish
