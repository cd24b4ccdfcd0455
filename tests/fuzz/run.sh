#!/usr/bin/env bash
# Runs the libFuzzer targets (build-fuzz/fuzz_*, from `make fuzz-build`),
# each for FUZZ_SECONDS on a temporary copy of its seed corpus
# (tests/fuzz/corpus/NAME/: the seeds and the inputs of crashes since
# fixed, so every run replays them first; the corpus itself is never
# written).  Prints per target one line for tests/run.sh to count:
#   ok fuzz_NAME: 60 s, 1804233 execs (30070/s), cov 133, ft 817, corpus 9 -> 261
# or FAIL with the input that crashed (kept in build-fuzz/crashes/).
#   tests/fuzz/run.sh [NAME...]        (default: every target)
# FUZZ_SECONDS (default 60) bounds each run; FUZZ_BUILD the binaries'
# directory (build-fuzz).  Exit status 0 when every target passed.
set -u
cd "$(dirname "$0")/../.."
FUZZ_SECONDS=${FUZZ_SECONDS:-60}
FUZZ_BUILD=${FUZZ_BUILD:-build-fuzz}
case "$FUZZ_SECONDS" in '' | *[!0-9]*) echo "FUZZ_SECONDS: a number of seconds" >&2; exit 2 ;; esac

names=("$@")
if [ ${#names[@]} -eq 0 ]; then
    for f in tests/fuzz/fuzz_*.c; do
        n=${f##*/fuzz_}
        names+=("${n%.c}")
    done
fi

# in memory when there is a tmpfs: fuzz_config writes its file per input
tmp=$( { [ -w /dev/shm ] && mktemp -d -p /dev/shm wtrelayd-fuzz.XXXXXX; } 2>/dev/null || mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$FUZZ_BUILD/crashes"
failed=0
for n in "${names[@]}"; do
    bin=$FUZZ_BUILD/fuzz_$n
    if [ ! -x "$bin" ]; then
        echo "FAIL fuzz_$n: $bin not built (make fuzz-build)"
        failed=1
        continue
    fi
    mkdir -p "$tmp/$n/corpus" "$tmp/$n/art"
    seeds=0
    if [ -d "tests/fuzz/corpus/$n" ]; then
        cp -p "tests/fuzz/corpus/$n"/* "$tmp/$n/corpus/" 2>/dev/null
        seeds=$(find "tests/fuzz/corpus/$n" -type f | wc -l)
    fi
    # -timeout: one input taking 10 s is a hang; -rss_limit_mb: growth
    # past 2 GB is a leak or an unbounded allocation; both are failures.
    # The outer timeout only guards against libFuzzer itself wedging.
    TMPDIR="$tmp/$n" timeout -k 5 $((FUZZ_SECONDS + 60)) "$bin" -max_total_time="$FUZZ_SECONDS" \
        -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 \
        -artifact_prefix="$tmp/$n/art/" "$tmp/$n/corpus" >"$tmp/$n/log" 2>&1
    rc=$?
    done_line=$(grep -a -E '[[:space:]]DONE[[:space:]]' "$tmp/$n/log" | tail -n 1)
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$tmp/$n/log")
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$tmp/$n/log")
    cov=$(printf '%s\n' "$done_line" | sed -n 's/.* cov: \([0-9]*\).*/\1/p')
    ft=$(printf '%s\n' "$done_line" | sed -n 's/.* ft: \([0-9]*\).*/\1/p')
    corp=$(printf '%s\n' "$done_line" | sed -n 's/.* corp: \([0-9]*\).*/\1/p')
    art=$(find "$tmp/$n/art" -type f | head -n 1)
    if [ $rc -eq 0 ] && [ -n "$done_line" ] && [ -z "$art" ]; then
        echo "ok fuzz_$n: $FUZZ_SECONDS s, ${execs:-?} execs (${rate:-?}/s), cov ${cov:-?}, ft ${ft:-?}, corpus $seeds -> ${corp:-?}"
        continue
    fi
    failed=1
    keep=
    if [ -n "$art" ]; then
        keep="$FUZZ_BUILD/crashes/fuzz_${n}-$(basename "$art")"
        cp "$art" "$keep"
    fi
    echo "FAIL fuzz_$n: exit $rc${keep:+, input kept in $keep (replay: $bin $keep)}"
    grep -a -E 'ERROR|check failed|SUMMARY|#[0-9]+ in ' "$tmp/$n/log" | head -n 12 | sed 's/^/    | /'
done
exit $failed
