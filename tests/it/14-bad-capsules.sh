#!/usr/bin/env bash
# Malformed and unknown capsules on the CONNECT stream.
# shellcheck source=tests/it/lib.sh
. "$(dirname "$0")/lib.sh"
it_setup
start_daemon

check capsule-truncated-close probe capsule-truncated 0x2843
check capsule-truncated-unknown probe capsule-truncated 0x17cd
check capsule-oversized probe capsule-oversized
check capsule-grease probe capsule-grease

it_finish
