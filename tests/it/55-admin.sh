#!/usr/bin/env bash
# The admin endpoint ([admin]): /metrics moves as a session echoes and is
# strict Prometheus text, /healthz (200, then 503 while draining), 405 and
# 404, loopback Host names only; slow and hostile admin clients are bounded
# and cost QUIC clients nothing; the certificate expiry warning and metric.
. "$(dirname "$0")/lib.sh"
it_setup
command -v curl >/dev/null || it_abort "curl is missing (scripts/install-deps.sh --test)"

APORT=$(it_free_tcp_port) || it_abort "no free TCP port"
ADMIN=http://127.0.0.1:$APORT

# HTTP status of a request: http_status [CURL ARGS...] URL
http_status() {
    curl -s -o "$TMP/body" -D "$TMP/headers" -w '%{http_code}' --max-time 5 "$@"
}
# want_status WANT [CURL ARGS...] URL
want_status() {
    local want=$1 got
    shift
    got=$(http_status "$@")
    [ "$got" = "$want" ] && return 0
    echo "HTTP $got, wanted $want: $(head -c 200 "$TMP/body")"
    return 1
}

# Strict reading of the Prometheus text format 0.0.4: every line a HELP,
# a TYPE (counter or gauge, once per family, before its samples) or a
# sample of a declared family (counters named *_total), labels quoted and
# escaped, values numbers, no series twice.
prom_check() {
    awk '
    function bad(why) { printf "line %d: %s: %s\n", NR, why, $0; err = 1; exit 1 }
    /^# HELP / { if ($3 !~ /^[a-zA-Z_:][a-zA-Z0-9_:]*$/) bad("HELP name"); next }
    /^# TYPE / {
        if (NF != 4 || $3 !~ /^[a-zA-Z_:][a-zA-Z0-9_:]*$/) bad("TYPE line")
        if ($4 != "counter" && $4 != "gauge") bad("type")
        if ($3 in type) bad("TYPE twice")
        if ($4 == "counter" && $3 !~ /_total$/) bad("counter not named _total")
        type[$3] = $4; next
    }
    /^#/ { bad("comment") }
    /^$/ { bad("empty line") }
    {
        line = $0
        if (!match(line, /^[a-zA-Z_:][a-zA-Z0-9_:]*/)) bad("metric name")
        name = substr(line, 1, RLENGTH); rest = substr(line, RLENGTH + 1)
        if (!(name in type)) bad("sample before its TYPE")
        series = name
        if (substr(rest, 1, 1) == "{") {
            lab = "^\\{[a-zA-Z_][a-zA-Z0-9_]*=\"([^\"\\\\\n]|\\\\[\\\\\"n])*\"(,[a-zA-Z_][a-zA-Z0-9_]*=\"([^\"\\\\\n]|\\\\[\\\\\"n])*\")*\\}"
            if (!match(rest, lab)) bad("labels")
            series = name substr(rest, 1, RLENGTH); rest = substr(rest, RLENGTH + 1)
        }
        if (rest !~ /^ -?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?$/) bad("value")
        if (series in seen) bad("series twice")
        seen[series] = 1; n++
    }
    END { if (!err && n < 20) { print "only " n " samples"; exit 1 } }
    ' "$1"
}

metrics_get() { curl -s --max-time 5 "$ADMIN/metrics" >"$TMP/$1"; }
# metric FILE SERIES: its value (the exact series, labels included)
metric() { awk -v s="$2" '$1 == s { print $2 }' "$TMP/$1"; }
# grew FILE1 FILE2 SERIES MIN: SERIES went up by at least MIN
grew() {
    local a b
    a=$(metric "$1" "$3")
    b=$(metric "$2" "$3")
    [ -n "$b" ] || { echo "$3 missing"; return 1; }
    a=${a:-0} # a labelled series appears with its first count
    [ "$((b - a))" -ge "$4" ] && return 0
    echo "$3: $a -> $b, wanted +$4 at least"
    return 1
}

# ---- configuration ----
conf_with() {
    printf '[server]\nlisten = 127.0.0.1:%s\ncert = %s\nkey = %s\n[admin]\n' "$PORT" "$CERT" "$KEY"
    printf '%s\n' "$@"
    printf '[route /echo]\nhandler = echo\n'
}
PORT=4433
conf_with "listen = 0.0.0.0:$APORT" >"$TMP/remote.ini"
check admin-non-loopback-refused bash -c \
    "! '$BUILD/wtrelayd' -t -c '$TMP/remote.ini' 2>'$TMP/t.err' && grep -q 'remote.ini:6: .*not a loopback address' '$TMP/t.err'"
conf_with "listen = 0.0.0.0:$APORT" "allow_remote = yes" >"$TMP/remote2.ini"
check admin-allow-remote "$BUILD/wtrelayd" -t -c "$TMP/remote2.ini"
conf_with "listen = [::1]:$APORT" "max_connections = 0" >"$TMP/bad.ini"
check admin-bad-limit bash -c "! '$BUILD/wtrelayd' -t -c '$TMP/bad.ini' 2>/dev/null"

# ---- a certificate that expires within 7 days: warned, and the metric ----
CERT_MAIN=$CERT
KEY_MAIN=$KEY
mkdir -p "$TMP/short"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3 \
    -subj /CN=localhost -keyout "$TMP/short/key.pem" -out "$TMP/short/cert.pem" \
    >/dev/null 2>&1 || it_abort "openssl"
CERT=$TMP/short/cert.pem
KEY=$TMP/short/key.pem
start_daemon "[admin]" "listen = 127.0.0.1:$APORT"
check cert-expiry-warned log_has "expires in 3.0 days"
want_expiry=$(date -u -d "$(openssl x509 -in "$CERT" -noout -enddate | cut -d= -f2)" +%s)
metrics_get m0.txt
check cert-expiry-metric test "$(metric m0.txt wtrelayd_certificate_expiry_seconds)" = "$want_expiry"
stop_daemon
CERT=$CERT_MAIN
KEY=$KEY_MAIN

# ---- the daemon under test ----
start_daemon "shutdown_timeout = 3s" "[admin]" "listen = 127.0.0.1:$APORT" \
    "max_connections = 8" "timeout = 2s"
check admin-listening log_has "admin: listening on tcp 127.0.0.1:$APORT"
check cert-13-days-no-warning log_lacks "expires in"

metrics_get m1.txt
check metrics-prometheus-text prom_check "$TMP/m1.txt"
check metrics-content-type bash -c "curl -sI --max-time 5 '$ADMIN/metrics' | grep -qi '^content-type: text/plain; version=0.0.4'"
head -c 100000 /dev/urandom >"$TMP/payload"
check echo-session client /echo --send "$TMP/payload" --verify --datagram one --datagram two
metrics_get m2.txt
check metrics-after-prometheus-text prom_check "$TMP/m2.txt"
check metrics-connections-total grew m1.txt m2.txt wtrelayd_connections_total 1
check metrics-handshakes grew m1.txt m2.txt wtrelayd_handshakes_completed_total 1
check metrics-sessions-by-route grew m1.txt m2.txt 'wtrelayd_sessions_total{route="/echo"}' 1
check metrics-stream-bytes-in grew m1.txt m2.txt wtrelayd_stream_bytes_received_total 100000
check metrics-stream-bytes-out grew m1.txt m2.txt wtrelayd_stream_bytes_sent_total 100000
check metrics-datagrams-in grew m1.txt m2.txt wtrelayd_datagrams_received_total 1
check metrics-datagrams-out grew m1.txt m2.txt wtrelayd_datagrams_sent_total 1
check metrics-udp-bytes grew m1.txt m2.txt wtrelayd_udp_bytes_received_total 100000
check metrics-rss test "$(metric m2.txt wtrelayd_resident_memory_bytes)" -gt 1000000
client_exit 4 /nowhere >/dev/null
metrics_get m3.txt
check metrics-rejected-404 grew m2.txt m3.txt 'wtrelayd_sessions_rejected_total{route="(none)",status="404"}' 1
check metrics-build-info grep -q '^wtrelayd_build_info{version="[0-9.]*"} 1$' "$TMP/m3.txt"

# ---- HTTP ----
check healthz-200 want_status 200 "$ADMIN/healthz"
check healthz-body grep -qx ok "$TMP/body"
check head-no-body bash -c "[ \"\$(curl -s --max-time 5 -I '$ADMIN/healthz' | head -n 1 | tr -d '\r')\" = 'HTTP/1.1 200 OK' ]"
check post-405 want_status 405 -X POST --data x "$ADMIN/metrics"
check post-405-allow grep -qi '^allow: GET, HEAD' "$TMP/headers"
check delete-405 want_status 405 -X DELETE "$ADMIN/"
check unknown-404 want_status 404 "$ADMIN/nope"
check foreign-host-403 want_status 403 -H "Host: attacker.example" "$ADMIN/metrics"
check demo-page want_status 200 "$ADMIN/"
check demo-page-html grep -q 'new WebTransport' "$TMP/body"
check config-json want_status 200 "$ADMIN/config.json"
check config-json-port grep -q "\"port\":$PORT," "$TMP/body"
check config-json-hash grep -q "\"hash\":\"$(cat "$TMP/cert.sha256")\"" "$TMP/body"

# ---- hostile admin clients ----
# connections to the admin port the server side holds now
admin_conns() {
    local hex
    hex=$(printf '%04X' "$APORT")
    awk -v h=":$hex" '$2 ~ h"$" && $4 == "01"' /proc/net/tcp /proc/net/tcp6 | wc -l
}
# 20 connections that send nothing (bash /dev/tcp), from 127.0.0.1
slow=()
for _ in $(seq 1 20); do
    exec {fd}<>"/dev/tcp/127.0.0.1/$APORT" && slow+=("$fd")
done
sleep 0.3
n=$(admin_conns)
check slow-clients-bounded test "$n" -le 4 # per address: half of max_connections = 8
witness_start 3
check echo-beside-slow-clients client /echo --send "$TMP/payload" --verify
check other-address-still-served want_status 200 --interface 127.0.0.2 "$ADMIN/healthz"
# a huge header: refused (431) or cut off, nothing else
big=$(head -c 60000 /dev/zero | tr '\0' a)
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 --interface 127.0.0.3 -H "X-Big: $big" "$ADMIN/metrics")
check huge-header-refused bash -c "[ '$code' = 431 ] || [ '$code' = 000 ] || { echo 'HTTP $code'; false; }"
check witness-served witness_check
# the silent ones are dropped after the admin timeout (2 s)
for _ in $(seq 1 50); do
    [ "$(admin_conns)" -eq 0 ] && break
    sleep 0.1
done
check slow-clients-timed-out test "$(admin_conns)" -eq 0
for fd in "${slow[@]}"; do exec {fd}>&-; done
check served-again want_status 200 "$ADMIN/healthz"
metrics_get m4.txt
check metrics-strict-after-attack prom_check "$TMP/m4.txt"
# every buffer counted in is counted out: nothing is held once the
# sessions are over and their bytes acknowledged
buffered_zero() {
    for _ in $(seq 1 50); do
        metrics_get m5.txt
        [ "$(metric m5.txt wtrelayd_buffered_bytes)" = 0 ] && return 0
        sleep 0.1
    done
    echo "wtrelayd_buffered_bytes $(metric m5.txt wtrelayd_buffered_bytes) after every session ended"
    return 1
}
check buffered-bytes-back-to-zero buffered_zero

# ---- draining: /healthz 503 while a session finishes ----
opened() { grep -c 'opened /echo' "$TMP/daemon.log"; }
# more_opened N: a session opened since there were N
more_opened() {
    for _ in $(seq 1 100); do
        [ "$(opened)" -gt "$1" ] && return 0
        sleep 0.05
    done
    echo "no new session"
    return 1
}
before=$(opened)
timeout 20 "$BUILD/wtclient" --insecure --timeout 15 --wait-close \
    "https://127.0.0.1:$PORT/echo" >/dev/null 2>"$TMP/waiter.err" &
waiter=$!
check drain-session-open more_opened "$before"
kill -TERM "$DAEMON_PID"
check drain-logged log_has "shutting down"
check healthz-503-draining want_status 503 "$ADMIN/healthz"
check metrics-draining bash -c "curl -s --max-time 5 '$ADMIN/metrics' | grep -qx 'wtrelayd_draining 1'"
for _ in $(seq 1 100); do
    kill -0 "$DAEMON_PID" 2>/dev/null || break
    sleep 0.1
done
wait "$DAEMON_PID" 2>/dev/null
DAEMON_STATUS=$?
DAEMON_PID=
wait "$waiter" 2>/dev/null
check drain-clean-exit it_exit_clean
check admin-port-closed bash -c "! curl -s --max-time 2 '$ADMIN/healthz' >/dev/null"
[ "$IT_FAILED" -eq 0 ]
