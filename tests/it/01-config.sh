#!/usr/bin/env bash
# `wtrelayd -t -c FILE` through the real binary: the shipped default config
# is accepted; bad files exit 1 with "file:line: message" and never start.
. "$(dirname "$0")/lib.sh"
it_setup

# cfg_fails NAME LINE PATTERN BODY: BODY is rejected at LINE with PATTERN.
cfg_fails() {
    local line=$1 pat=$2 body=$3 out rc
    printf '%b' "$body" | sed "s|CERT|$CERT|g; s|KEY|$KEY|g" >"$TMP/bad.ini"
    out=$("$BUILD/wtrelayd" -t -c "$TMP/bad.ini" 2>&1)
    rc=$?
    [ $rc -eq 1 ] || { echo "exit $rc, want 1: $out"; return 1; }
    case "$out" in
    *"$TMP/bad.ini:$line: "*"$pat"*) return 0 ;;
    esac
    echo "got: $out"
    return 1
}

shipped_config() {
    # the shipped file, next to a certs/ like the one make run creates
    mkdir -p "$TMP/conf" "$TMP/certs"
    cp conf/wtrelayd.ini "$TMP/conf/"
    cp "$CERT" "$TMP/certs/cert.pem"
    cp "$KEY" "$TMP/certs/key.pem"
    "$BUILD/wtrelayd" -t -c "$TMP/conf/wtrelayd.ini"
}

base='[server]\ncert = CERT\nkey = KEY\n'
check config-shipped-default shipped_config
check config-unknown-key cfg_fails 4 "unknown key 'listn'" "${base}listn = 1.2.3.4:1\n"
check config-unknown-section cfg_fails 4 "unknown section" "${base}[serverr]\n"
check config-bad-size cfg_fails 5 "max_buffer_bytes" "${base}\nmax_buffer_bytes = 1x\n"
check config-bad-duration cfg_fails 4 "idle_timeout" "${base}idle_timeout = forever\n"
check config-bad-address cfg_fails 4 "listen" "${base}listen = 127.0.0.1:99999\n"
check config-missing-cert cfg_fails 2 "No such file" '[server]\ncert = /nonexistent.pem\n'
check config-unknown-handler cfg_fails 5 "unknown handler" "${base}[route /x]\nhandler = nope\n"
check config-route-no-handler cfg_fails 4 "has no 'handler'" "${base}[route /x]\n"
check config-syntax cfg_fails 4 "syntax error" "${base}this is not ini\n"

# the daemon refuses to start on a bad file too (same message, exit 1)
start_refused() {
    printf '[server]\ncert = %s\nkey = %s\nmax_connections = 0\n' "$CERT" "$KEY" >"$TMP/bad.ini"
    out=$(timeout 5 "$BUILD/wtrelayd" -c "$TMP/bad.ini" 2>&1)
    rc=$?
    [ $rc -eq 1 ] && [[ "$out" == *"bad.ini:4: max_connections"* ]] || { echo "exit $rc: $out"; return 1; }
}
check config-daemon-refuses start_refused
missing_file() {
    out=$("$BUILD/wtrelayd" -t -c "$TMP/none.ini" 2>&1)
    [ $? -eq 1 ] && [[ "$out" == *"none.ini:0: No such file"* ]] || { echo "$out"; return 1; }
}
check config-missing-file missing_file
[ "$IT_FAILED" -eq 0 ]
