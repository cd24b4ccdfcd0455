#!/usr/bin/env bash
# Runs the test suites and prints one closing line "N passed, N failed".
#   tests/run.sh [unit] [it] [browser]     (default: all three)
#   tests/run.sh soak      tests/it/77-soak.sh alone (make soak: SOAK_SECONDS)
# Every test program prints "ok NAME" or "FAIL NAME: why" per test; this
# script counts those lines (and prints "# PROGRAM: N s" after each).  BUILD selects the build directory (build).
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
export BUILD
suites=("$@")
[ ${#suites[@]} -eq 0 ] && suites=(unit it browser)

pass=0
fail=0
count() { # reads a test program's output, echoes it, counts ok/FAIL
    local line
    while IFS= read -r line; do
        printf '%s\n' "$line"
        case "$line" in
        "ok "*) pass=$((pass + 1)) ;;
        "FAIL "*) fail=$((fail + 1)) ;;
        esac
    done
}
run_one() { # name, command...: a crash or non-zero exit without FAIL lines counts as one failure
    local name=$1 out rc before=$fail t0=$SECONDS
    shift
    out=$(mktemp)
    "$@" >"$out" 2>&1
    rc=$?
    count <"$out"
    rm -f "$out"
    # how long each program took, so the suite's time stays watched
    echo "# $name: $((SECONDS - t0)) s"
    if [ $rc -ne 0 ] && [ $fail -eq $before ]; then
        echo "FAIL $name: exited with status $rc"
        fail=$((fail + 1))
    fi
}

for s in "${suites[@]}"; do
    case "$s" in
    unit)
        for t in "$BUILD"/tests/test_*; do
            [ -x "$t" ] && run_one "$(basename "$t")" "$t"
        done
        ;;
    it)
        for t in tests/it/[0-9]*.sh; do
            [ -f "$t" ] && run_one "$(basename "$t")" bash "$t"
        done
        ;;
    soak)
        run_one 77-soak.sh bash tests/it/77-soak.sh
        ;;
    browser)
        if [ -f tests/browser/run.js ]; then
            run_one browser node tests/browser/run.js
        fi
        ;;
    *) echo "unknown suite $s" >&2; exit 2 ;;
    esac
done
echo "$pass passed, $fail failed"
[ $fail -eq 0 ] && [ $pass -gt 0 ]
