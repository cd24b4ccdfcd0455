#!/usr/bin/env bash
# A lossy path without netem (not in every kernel): wtclient and wtbench
# drop a seeded fraction of packets each way (--loss), so the daemon must
# retransmit from buffers it keeps until acknowledged, and every byte must
# still arrive intact; handshakes, close codes and datagrams under loss too.
. "$(dirname "$0")/lib.sh"
it_setup
start_daemon

head -c 1048576 /dev/urandom >"$TMP/1M"
head -c 262144 /dev/urandom >"$TMP/256K"
same_as() { cmp -s "$1" "$TMP/client.out" || { echo "output differs from $(basename "$1")"; return 1; }; }
lossy_bidi() { client /echo --loss 0.05 --send "$TMP/1M" --verify && same_as "$TMP/1M"; }
lossy_uni() { client /echo --loss 0.05 --uni "$TMP/256K" --verify && same_as "$TMP/256K"; }
check loss-5pct-bidi-1MiB lossy_bidi
check loss-5pct-uni-256KiB lossy_uni
check loss-10pct-close-code client /echo --loss 0.1 --close "4343:through loss"
check loss-10pct-close-code-logged log_has 'closed by peer: code=4343 reason="through loss"'

check loss-3pct-bulk-2x2x4 bench '"streams_done":16,' -- --loss 0.03 -c 2 -s 2 -m 4 -b 256k
check loss-5pct-rps bench '"requests":2000,' -- --loss 0.05 --mode rps -m 10 -n 2000
check loss-10pct-handshakes bench '"sessions_open":40,' -- --loss 0.1 --mode sessions -c 20 -s 2 --hold 0.2
it_finish
