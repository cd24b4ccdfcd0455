#!/usr/bin/env bash
# systemd/wtrelayd.service: `systemd-analyze verify` accepts it (a copy whose
# ExecStart is the built daemon, with our man pages on MANPATH for its
# Documentation= lines), and `systemd-analyze security --offline=yes`
# rates its exposure at 2.0 or below.  No systemd as PID 1 needed.
set -u
cd "$(dirname "$0")/../.." || exit 1
BUILD=${BUILD:-build}
case "$BUILD" in /*) ;; *) BUILD="$PWD/$BUILD" ;; esac
fail=0
ok() { echo "ok $1"; }
bad() { echo "FAIL $1: $2"; fail=1; }

command -v systemd-analyze >/dev/null || { echo "FAIL systemd-unit: systemd-analyze is not installed (apt package systemd)"; exit 1; }
[ -x "$BUILD/wtrelayd" ] || { echo "FAIL systemd-unit: $BUILD/wtrelayd not built"; exit 1; }
TMP=$(mktemp -d "${TMPDIR:-/tmp}/wtrelayd-unit.XXXXXX") || exit 1
trap 'rm -rf "$TMP"' EXIT
mkdir -p "$TMP/man/man8" "$TMP/man/man5"
cp man/wtrelayd.8 "$TMP/man/man8/"
cp man/wtrelayd.ini.5 "$TMP/man/man5/"
sed "s|^ExecStart=[^ ]*|ExecStart=$BUILD/wtrelayd|" systemd/wtrelayd.service >"$TMP/wtrelayd.service"

if out=$(MANPATH="$TMP/man" systemd-analyze verify "$TMP/wtrelayd.service" 2>&1) && [ -z "$out" ]; then
    ok unit-verify
else
    bad unit-verify "$(printf '%s' "$out" | tail -n 1)"
fi
grep -q '^ExecStart=/usr/local/sbin/wtrelayd -c /etc/wtrelayd/wtrelayd.ini$' systemd/wtrelayd.service &&
    ok unit-execstart || bad unit-execstart "ExecStart is not /usr/local/sbin/wtrelayd -c /etc/wtrelayd/wtrelayd.ini"
for k in Type=notify 'ExecReload=/bin/kill -HUP $MAINPID' Restart=on-failure WatchdogSec= \
    DynamicUser=yes ProtectSystem=strict ProtectHome=yes PrivateTmp=yes NoNewPrivileges=yes \
    CapabilityBoundingSet=CAP_NET_BIND_SERVICE AmbientCapabilities=CAP_NET_BIND_SERVICE \
    'RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX' SystemCallFilter=@system-service \
    MemoryDenyWriteExecute=yes LimitNOFILE= SupplementaryGroups=wtrelayd; do
    grep -qF -- "$k" systemd/wtrelayd.service || { bad unit-settings "no $k"; break; }
done
[ $fail = 0 ] && ok unit-settings

# systemd 252 (Debian 12) has --offline
out=$(systemd-analyze security --offline=yes --no-pager "$TMP/wtrelayd.service" 2>&1)
level=$(printf '%s\n' "$out" | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
if [ -z "$level" ]; then
    bad unit-exposure "no exposure figure: $(printf '%s' "$out" | tail -n 1)"
elif awk -v l="$level" 'BEGIN { exit !(l <= 2.0) }'; then
    ok unit-exposure
    echo "    exposure $level"
else
    bad unit-exposure "exposure $level > 2.0"
fi
exit $fail
