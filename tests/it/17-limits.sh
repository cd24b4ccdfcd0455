#!/usr/bin/env bash
# Per-connection and per-route limits: max_sessions_per_connection answers
# 429, max_streams_per_session rejects the extra streams with
# WT_BUFFERED_STREAM_REJECTED, allowed_origins answers 403 to other origins.
. "$(dirname "$0")/lib.sh"
it_setup
start_daemon "max_sessions_per_connection = 2" "max_streams_per_session = 8" \
    "" "[route /locked]" "handler = echo" \
    "allowed_origins = https://good.example, https://also.example"

check sessions-2-of-2 probe_says "statuses 200 200" sessions /echo 2
check sessions-3rd-429 probe_says "statuses 200 200 429" sessions /echo 3
check sessions-429-logged log_has "refused with 429: max_sessions_per_connection reached"
check streams-8-of-8 probe_says "8 echoing, 0 rejected" open-streams /echo 8
# 0x3994bd84 = WT_BUFFERED_STREAM_REJECTED
check streams-9th-rejected probe_says "8 echoing, 1 rejected (0x3994bd84)" open-streams /echo 9
check streams-rejected-logged log_has "max_streams_per_session reached"
check origin-allowed probe_says "status 200" --origin https://good.example status /locked
check origin-allowed-2nd probe_says "status 200" --origin https://also.example status /locked
check origin-other-403 probe_says "status 403" --origin https://evil.example status /locked
check origin-missing-403 probe_says "status 403" --origin - status /locked
check origin-403-logged log_has "refused with 403: origin not allowed"
check origin-unrestricted probe_says "status 200" --origin https://evil.example status /echo
it_finish
