#!/usr/bin/env bash
# Echo handler over every transport: bidi streams (1 B, 64 KiB, 16 MiB),
# uni streams, datagrams, 100 concurrent streams, drafts 02/07/15, IPv6.
# shellcheck source=tests/it/lib.sh
. "$(dirname "$0")/lib.sh"
it_setup
start_daemon

check echo-bidi-1B probe echo-bidi /echo 1
check echo-bidi-64KiB probe echo-bidi /echo 65536
check echo-bidi-16MiB probe --timeout 30 echo-bidi /echo 16777216
check echo-bidi-empty probe echo-bidi /echo 0
check echo-uni-4KiB probe echo-uni /echo 4096
check echo-uni-1MiB probe --timeout 20 echo-uni /echo 1048576
check echo-dgram-100 probe echo-dgram /echo 100
check streams-100 probe --timeout 20 streams /echo 100
check draft-02 probe --draft 02 draft /echo
check draft-02-logged log_has '(draft-02,'
check draft-07 probe --draft 07 draft /echo
check draft-07-logged log_has '(draft-07,'
check draft-15 probe --draft 15 draft /echo
check draft-15-logged log_has '(draft-15,'
check echo-bidi-ipv6 probe6 echo-bidi /echo 65536
check echo-no-grease probe --no-grease echo-bidi /echo 1000

it_finish
