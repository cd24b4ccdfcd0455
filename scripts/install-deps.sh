#!/usr/bin/env bash
# Installs what wtrelayd needs to build, run and test on Debian 12.
# Idempotent: installs only what is missing; uses sudo only when not root.
#   scripts/install-deps.sh          build + run dependencies
#   scripts/install-deps.sh --test   also the test tools (browsers, node packages)
#   scripts/install-deps.sh --bench  also the benchmark baselines (ngtcp2's examples;
#                                    Node.js and the ws package for the WebSocket one)
set -euo pipefail

want_test=0
want_bench=0
for a in "$@"; do
    case "$a" in
    --test) want_test=1 ;;
    --bench) want_bench=1 ;;
    *) echo "usage: $0 [--test] [--bench]" >&2; exit 2 ;;
    esac
done

SUDO=
if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; fi
export DEBIAN_FRONTEND=noninteractive

build_pkgs="build-essential pkg-config libev-dev libinih-dev libgnutls28-dev libsystemd-dev libmicrohttpd-dev libhiredis-dev openssl"
bp_pkgs="libngtcp2-dev libngtcp2-crypto-gnutls-dev libnghttp3-dev"
# systemd-analyze (the unit test), groff and man (the man page test), curl
# (the admin endpoint test), strace (the sandbox test), clang and its runtime with libFuzzer
# (-fsanitize=fuzzer: the libclang_rt.fuzzer archive is only recommended by
# clang, which --no-install-recommends skips) for tests/fuzz/, redis-server
# for the cluster tests (each starts its own on a loopback port)
test_pkgs="chromium firefox-esr systemd groff-base man-db curl strace clang libclang-rt-14-dev redis-server"
# ngtcp2's own HTTP/3 example server and client, the same 1.11 libraries
[ "$want_bench" = 1 ] && bp_pkgs="$bp_pkgs ngtcp2-server ngtcp2-client"
# the flood row reads the daemon's metrics (scripts/flood-measure.sh)
[ "$want_bench" = 1 ] && build_pkgs="$build_pkgs curl"
# the cross-daemon broadcast row starts its own Redis
[ "$want_bench" = 1 ] && build_pkgs="$build_pkgs redis-server"

missing() {
    local out=""
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || out="$out $p"
    done
    echo "$out"
}

# ngtcp2 >= 1.11: installed version of the dev package, or empty.
ngtcp2_ok() {
    local v
    v=$(dpkg-query -W -f='${Version}' libngtcp2-dev 2>/dev/null) || return 1
    [ -n "$v" ] && dpkg --compare-versions "$v" ge 1.11
}

updated=0
apt_update() {
    [ "$updated" = 1 ] && return 0
    $SUDO apt-get update -qq
    updated=1
}

pkgs="$build_pkgs"
[ "$want_test" = 1 ] && pkgs="$pkgs $test_pkgs"
if [ "$want_test" = 1 ] || [ "$want_bench" = 1 ]; then
    # node may come from elsewhere (e.g. NodeSource); Debian's needs npm too.
    command -v node >/dev/null 2>&1 || pkgs="$pkgs nodejs"
    command -v npm >/dev/null 2>&1 || pkgs="$pkgs npm"
fi
m=$(missing $pkgs)
if [ -n "$m" ]; then
    apt_update
    # shellcheck disable=SC2086
    $SUDO apt-get install -y -qq --no-install-recommends $m
fi

bpm=$(missing $bp_pkgs)
if [ -n "$bpm" ] || ! ngtcp2_ok; then
    codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")
    # Debian 12's own ngtcp2 is 0.12; 1.11 lives in backports.
    if ! grep -rqs "${codename}-backports" /etc/apt/sources.list /etc/apt/sources.list.d/; then
        echo "install-deps: adding ${codename}-backports apt source" >&2
        echo "deb http://deb.debian.org/debian ${codename}-backports main" |
            $SUDO tee /etc/apt/sources.list.d/wtrelayd-backports.list >/dev/null
        updated=0
    fi
    apt_update
    # shellcheck disable=SC2086
    $SUDO apt-get install -y -qq --no-install-recommends -t "${codename}-backports" $bp_pkgs
    ngtcp2_ok || { echo "install-deps: libngtcp2-dev >= 1.11 is not installable" >&2; exit 1; }
fi

here=$(cd "$(dirname "$0")/.." && pwd)
if [ "$want_bench" = 1 ] && [ -f "$here/tests/bench/ws/package-lock.json" ] &&
    [ ! -d "$here/tests/bench/ws/node_modules/ws" ]; then
    # the WebSocket broadcast baseline: the locked ws, installed here only
    (cd "$here/tests/bench/ws" && npm ci --no-audit --no-fund --silent)
fi
if [ "$want_test" = 1 ]; then
    if [ -f "$here/tests/browser/package-lock.json" ] &&
        [ ! -d "$here/tests/browser/node_modules/puppeteer-core" ]; then
        # Never let puppeteer fetch a browser: the system ones are used.
        (cd "$here/tests/browser" && PUPPETEER_SKIP_DOWNLOAD=1 npm ci --no-audit --no-fund --silent)
    fi
fi
