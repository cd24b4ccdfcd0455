#!/usr/bin/env bash
# Every libFuzzer target (tests/fuzz/) for a few seconds: each replays its
# seed corpus (the regression inputs of crashes since fixed among them),
# then fuzzes on.  One "ok"/"FAIL" line per target; any crash, hang,
# failed property or leak is a FAIL.  make fuzz runs them longer.
#   FUZZ_SECONDS (default here 3): seconds per target.
# Needs clang with libFuzzer (scripts/install-deps.sh --test installs it);
# without it the test says so and counts nothing.
set -u
cd "$(dirname "$0")/../.." || exit 1
if ! command -v "${FUZZ_CC:-clang}" >/dev/null 2>&1; then
    echo "skip 80-fuzz: no clang (scripts/install-deps.sh --test installs it)"
    exit 0
fi
# its own build directory (build-fuzz/), whatever BUILD the suite runs
# with; incremental, so a second run builds nothing
if ! out=$(make -s fuzz-build 2>&1); then
    echo "FAIL 80-fuzz: make fuzz-build"
    printf '%s\n' "$out" | tail -n 20 | sed 's/^/    | /'
    exit 1
fi
FUZZ_SECONDS=${FUZZ_SECONDS:-3} tests/fuzz/run.sh
