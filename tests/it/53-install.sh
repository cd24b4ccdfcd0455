#!/usr/bin/env bash
# make install / uninstall into a DESTDIR: the tree file by file, the
# installed config naming /etc/wtrelayd/{cert,key}.pem and passing
# `wtrelayd -t`, a second install keeping a modified config, uninstall
# leaving only the config; every man page renders without a warning.
set -u
cd "$(dirname "$0")/../.." || exit 1
BUILD=${BUILD:-build}
fail=0
check() { # NAME CMD...
    local name=$1 out
    shift
    if out=$("$@" 2>&1); then echo "ok $name"; else
        echo "FAIL $name: $(printf '%s\n' "$out" | tail -n 1)"
        fail=1
    fi
}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/wtrelayd-install.XXXXXX") || exit 1
trap 'rm -rf "$TMP"' EXIT
D=$TMP/root

inst() { make -s install BUILD="$BUILD" DESTDIR="$D" PREFIX=/usr >"$TMP/make.out" 2>&1 || { cat "$TMP/make.out"; return 1; }; }
check install-runs inst

want="etc/wtrelayd/wtrelayd.ini 0644
etc/wtrelayd/wtrelayd.ini.dist 0644
usr/bin/wtbench 0755
usr/bin/wtclient 0755
usr/lib/systemd/system/wtrelayd.service 0644
usr/lib/sysusers.d/wtrelayd.conf 0644
usr/sbin/wtrelayd 0755
usr/share/man/man1/wtbench.1 0644
usr/share/man/man1/wtclient.1 0644
usr/share/man/man5/wtrelayd.ini.5 0644
usr/share/man/man8/wtrelayd.8 0644"
tree() { (cd "$D" && find . -type f -printf '%P %m\n' | sed 's/ \([0-7]\{3\}\)$/ 0\1/' | sort); }
same_tree() { [ "$(tree)" = "$want" ] || { diff <(echo "$want") <(tree) | tr '\n' ' '; return 1; }; }
check install-tree same_tree
check install-binaries cmp "$BUILD/wtrelayd" "$D/usr/sbin/wtrelayd"
check install-version bash -c "'$D/usr/sbin/wtrelayd' --version | grep -qx 'wtrelayd [0-9.]*'"
check install-unit-execstart grep -qx 'ExecStart=/usr/sbin/wtrelayd -c /etc/wtrelayd/wtrelayd.ini' \
    "$D/usr/lib/systemd/system/wtrelayd.service"
for f in man/*.[158]; do
    check "install-man-$(basename "$f")" cmp "$f" "$D/usr/share/man/man${f##*.}/$(basename "$f")"
done
check install-config-cert grep -qx 'cert = /etc/wtrelayd/cert.pem' "$D/etc/wtrelayd/wtrelayd.ini"
check install-config-key grep -qx 'key = /etc/wtrelayd/key.pem' "$D/etc/wtrelayd/wtrelayd.ini"
# the group the unit reads the key through is one sysusers.d makes
check install-sysusers-group grep -qx 'g wtrelayd -' "$D/usr/lib/sysusers.d/wtrelayd.conf"
check install-sysusers-valid bash -c "command -v systemd-sysusers >/dev/null || exit 0; systemd-sysusers --dry-run --root='$D' '$D/usr/lib/sysusers.d/wtrelayd.conf' 2>&1 | grep -q wtrelayd"

# the installed config is valid once the files are where it says
mkdir "$TMP/creds"
scripts/gen-dev-cert.sh "$TMP/creds" >/dev/null 2>&1 || openssl req -x509 -newkey ec \
    -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$TMP/creds/key.pem" \
    -out "$TMP/creds/cert.pem" -days 13 -subj /CN=localhost >/dev/null 2>&1
sed "s|/etc/wtrelayd/|$TMP/creds/|" "$D/etc/wtrelayd/wtrelayd.ini" >"$TMP/installed.ini"
check install-config-valid "$D/usr/sbin/wtrelayd" -t -c "$TMP/installed.ini"

# an operator's edit survives the next install
echo "; edited by the operator" >>"$D/etc/wtrelayd/wtrelayd.ini"
cp "$D/etc/wtrelayd/wtrelayd.ini" "$TMP/edited.ini"
check reinstall-runs inst
check reinstall-keeps-config cmp "$TMP/edited.ini" "$D/etc/wtrelayd/wtrelayd.ini"
check reinstall-tree same_tree

unin() { make -s uninstall DESTDIR="$D" PREFIX=/usr >"$TMP/make.out" 2>&1 || { cat "$TMP/make.out"; return 1; }; }
check uninstall-runs unin
only_config() {
    local left
    left=$(cd "$D" && find . -type f -printf '%P\n')
    [ "$left" = etc/wtrelayd/wtrelayd.ini ] || { echo "left: $left" | tr '\n' ' '; return 1; }
    cmp "$TMP/edited.ini" "$D/etc/wtrelayd/wtrelayd.ini"
}
check uninstall-leaves-config only_config

# man pages: no groff warnings, and man-db renders them at 80 columns
render() {
    local out
    out=$(groff -man -ww -z "$1" 2>&1) && [ -z "$out" ] || { echo "groff: $out"; return 1; }
    out=$(MANWIDTH=80 man --warnings -l "$1" 2>&1 >/dev/null) && [ -z "$out" ] || { echo "man: $out"; return 1; }
    [ "$(MANWIDTH=80 man -l "$1" 2>/dev/null | wc -l)" -gt 20 ] || { echo "too short"; return 1; }
}
command -v groff >/dev/null && command -v man >/dev/null ||
    { echo "FAIL man-pages: groff or man is not installed (apt packages groff-base, man-db)"; exit 1; }
for f in man/*.[158]; do
    check "man-renders-$(basename "$f")" render "$f"
done
# every key the README's config tables document is in wtrelayd.ini(5)
keys_documented() {
    local k missing= n=0
    # the rows of the README's "| key | default | meaning |" tables only
    for k in $(awk '/^\| key \|/ { t = 1; next } !/^\|/ { t = 0 } t' README.md |
        sed -n 's/^| `\([a-z_]*\)`\(, `\([a-z_]*\)`\)\{0,1\} |.*/\1 \3/p'); do
        n=$((n + 1))
        grep -qw -- "$k" man/wtrelayd.ini.5 || missing="$missing $k"
    done
    [ $n -ge 30 ] || { echo "only $n keys found in README.md's tables"; return 1; }
    [ -z "$missing" ] || { echo "not in wtrelayd.ini.5:$missing"; return 1; }
}
check man-ini-has-every-key keys_documented
exit $fail
