#!/usr/bin/env bash
# Echo respects flow control: with max_buffer_bytes = 64k a client that does
# not read stalls after (its own window + the server's buffer + the server's
# window), and gets every byte once it reads; bytes of streams reset before
# they were echoed are credited back at connection level; a stream signal
# that arrives one byte per packet is still recognised.
. "$(dirname "$0")/lib.sh"
it_setup
start_daemon "max_buffer_bytes = 64k" "max_connection_buffer_bytes = 256k"

# 64k client window + 64k echo buffer + 64k server window, plus a little slack
check no-read-stalls probe --window 65536 --timeout 20 no-read /echo 4M 200k
check reset-loop-credit probe --timeout 30 reset-loop /echo 20 64k
check split-prefix-bidi probe --split-prefix echo-bidi /echo 100000
check split-prefix-uni probe --split-prefix echo-uni /echo 100000
check stop-sending-aborts-echo probe --timeout 20 stop-sending /echo 4M
check stop-sending-logged log_has "the peer stopped reading it"
check no-read-still-serving probe echo-bidi /echo 1M
it_finish
