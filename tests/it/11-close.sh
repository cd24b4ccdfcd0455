#!/usr/bin/env bash
# Closing sessions: the client's CLOSE capsule (code and reason reach the
# log), and the server's CLOSE after max_session_duration (/expire).
# shellcheck source=tests/it/lib.sh
. "$(dirname "$0")/lib.sh"
it_setup
start_daemon

check close-client probe close 4242 bye
check close-client-logged log_has 'code=4242 reason="bye"'
check close-client-empty-reason probe close 77 ""
check close-client-empty-reason-logged log_has 'code=77 reason=""'
check close-client-max-code probe close 4294967295 "max code"
check close-client-max-code-logged log_has 'code=4294967295 reason="max code"'
check close-server-expire probe server-close /expire 4343 "expired by test"
check close-server-expire-logged log_has 'code=4343 reason="expired by test"'

it_finish
