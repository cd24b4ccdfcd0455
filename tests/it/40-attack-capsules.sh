#!/usr/bin/env bash
# Security review (issue 8), and siblings: malformed capsules and frames on
# the CONNECT stream, beside a well-behaved client that must stay served.
#  - a CLOSE/DRAIN capsule over its size limit, followed in the same read by
#    more capsule bytes: the parser must end in a state that ignores them
#    (the daemon crashed writing through a NULL value buffer);
#  - trailers on an extended CONNECT: a connection error, nothing more.
. "$(dirname "$0")/lib.sh"
it_setup
start_daemon

witness_start 6
check merged-close probe capsule-merged 0x2843
check merged-drain probe capsule-merged 0x78ae
check oversized-close probe capsule-oversized
check connect-trailer probe connect-trailer
check capsules-witness witness_check
check capsules-log-clean it_log_clean
it_finish
