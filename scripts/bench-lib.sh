# shellcheck shell=bash
# What scripts/bench.sh and scripts/bench-workers.sh share; sourced after
# `cd` to the repository and with BENCH_NAME set (die's prefix).
#
#   log MSG...          progress, on stderr
#   die MSG...          "BENCH_NAME: MSG" on stderr, exit 1
#   jget JSON KEY       a number or string field of a flat JSON line
#   median N...         the median of the numbers
#   port                a UDP port nothing on this machine uses now
#   bench_cert DIR      a development certificate in DIR (cert.pem,
#                       key.pem), or die

log() { printf '%s\n' "$*" >&2; }
die() { log "${BENCH_NAME:-bench}: $*"; exit 1; }
jget() {
    printf '%s' "$1" | sed -n "s/.*\"$2\":\"\{0,1\}\([^\",}]*\).*/\1/p" | head -n 1
}
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
port() {
    local p
    for _ in $(seq 1 50); do
        p=$((20000 + RANDOM % 40000))
        if ! awk '{print $2}' /proc/net/udp /proc/net/udp6 | grep -qi ":$(printf %04X "$p")\$"; then
            echo "$p"
            return
        fi
    done
}
bench_cert() {
    scripts/gen-dev-cert.sh "$1" >/dev/null 2>&1 || die "cannot make a certificate"
}
