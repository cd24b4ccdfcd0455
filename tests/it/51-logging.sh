#!/usr/bin/env bash
# Logging: log_format = json writes one valid JSON object per line, peer
# strings escaped (a close reason with a newline, quotes, a control
# character and invalid UTF-8); the session open and close lines carry
# peer, route, duration, bytes and streams each way, close code.  Text
# lines cannot be forged by a peer either.  With JOURNAL_STREAM naming
# stderr: syslog priority prefixes and no timestamp.
. "$(dirname "$0")/lib.sh"
it_setup
command -v node >/dev/null || it_abort "node is not installed (scripts/install-deps.sh --test)"

head -c 100000 /dev/urandom >"$TMP/payload"
# a CLOSE reason must be UTF-8 (the daemon refuses the capsule otherwise),
# a header value need not be: the origin brings the invalid bytes
hostile=$'bye\n2030-01-01T00:00:00.000Z error forged "x"\x01 \xc2\x85 end'
origin=$'https://evil"\xff\xc0\xaf\\' # nghttp3 drops values with controls

# 1. json
start_daemon "log_format = json"
check json-session client /echo --send "$TMP/payload" --verify --datagram d1 \
    --origin "$origin" --close "4242:$hostile"
check json-closed-logged log_has '"code":4242'
stop_daemon
check json-exit-0 it_exit_clean
cp "$TMP/daemon.log" "$TMP/json.log"

# every line parses; the session lines carry their fields (node: JSON.parse)
cat >"$TMP/check.js" <<'JS'
const fs = require('fs');
const lines = fs.readFileSync(process.argv[2], 'latin1').split('\n');
const raw = fs.readFileSync(process.argv[2]);
const want = process.argv[3], wantOrigin = process.argv[4];
if (lines.pop() !== '') throw new Error('no newline at the end');
let opened, closed;
// the bytes must be UTF-8: decoding and re-encoding gives them back
if (!Buffer.from(raw.toString('utf8'), 'utf8').equals(raw)) throw new Error('not UTF-8');
for (const [i, l] of raw.toString('utf8').split('\n').slice(0, -1).entries()) {
  let o;
  try { o = JSON.parse(l); } catch (e) { throw new Error(`line ${i + 1} is not JSON: ${l}`); }
  if (typeof o.ts !== 'string' || !/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/.test(o.ts)) throw new Error(`line ${i + 1}: ts ${o.ts}`);
  if (!['error', 'warn', 'info', 'debug'].includes(o.level)) throw new Error(`line ${i + 1}: level`);
  if (typeof o.msg !== 'string') throw new Error(`line ${i + 1}: msg`);
  if (/opened \/echo/.test(o.msg)) opened = o;
  if (/closed by peer/.test(o.msg)) closed = o;
}
if (!opened || !closed) throw new Error('no open or close line');
const eq = (k, v) => { if (opened[k] !== v && closed[k] !== v) throw new Error(`${k}: ${JSON.stringify(opened[k])} / ${JSON.stringify(closed[k])}, want ${JSON.stringify(v)}`); };
for (const k of ['peer', 'path', 'route', 'draft', 'origin', 'handler'])
  if (typeof opened[k] !== 'string') throw new Error(`open line lacks ${k}`);
if (!/^127\.0\.0\.1:\d+$/.test(closed.peer)) throw new Error(`peer ${closed.peer}`);
eq('path', '/echo'); eq('route', '/echo'); eq('code', 4242);
eq('bytes_in', 100000); eq('bytes_out', 100000);
eq('streams_in', 1); eq('streams_out', 0);
eq('datagrams_in', 1); eq('datagrams_out', 1);
if (typeof closed.duration !== 'number' || closed.duration < 0 || closed.duration > 30) throw new Error('duration');
if (closed.reason !== want) throw new Error(`reason ${JSON.stringify(closed.reason)}, want ${JSON.stringify(want)}`);
if (opened.origin !== wantOrigin) throw new Error(`origin ${JSON.stringify(opened.origin)}, want ${JSON.stringify(wantOrigin)}`);
console.log(`${lines.length} lines of JSON; close: ${JSON.stringify(closed)}`);
JS
# \xff, \xc0 and \xaf are invalid UTF-8: one U+FFFD each
want_origin=$'https://evil"\uFFFD\uFFFD\uFFFD\\'
check json-lines-valid node "$TMP/check.js" "$TMP/json.log" "$hostile" "$want_origin"
node "$TMP/check.js" "$TMP/json.log" "$hostile" "$want_origin" 2>&1 | tail -n 1 | cut -c1-400 | sed 's/^/    /'

# 2. text: the reason stays inside its quotes, on the one line
start_daemon
check text-session client /echo --datagram d1 --origin "$origin" --close "4242:$hostile"
check text-closed-logged log_has 'code=4242 reason="bye\x0a2030-01-01T00:00:00.000Z error forged \"x\"\x01 \xc2\x85 end"'
check text-origin-logged log_has 'origin="https://evil\"\xff\xc0\xaf\\"'
check text-no-forged-line bash -c "! grep -q '^2030' '$TMP/daemon.log'"
stop_daemon
check text-exit-0 it_exit_clean
cp "$TMP/daemon.log" "$TMP/text.log"

# 3. journal: JOURNAL_STREAM = stderr's device:inode (what systemd sets)
: >"$TMP/daemon.log"
PORT=$(it_free_port) || it_abort "no free UDP port"
it_write_conf "log_level = info"
JOURNAL_STREAM=$(stat -c '%d:%i' "$TMP/daemon.log") spawn_daemon ||
    it_abort "daemon exited at start-up (journal)"
check journal-session client /echo --close "7:bye"
check journal-info-prefix log_has '<6>conn '
journal_lines() {
    # every line starts with a priority, none with a timestamp
    local bad
    bad=$(grep -vE '^<[3467]>' "$TMP/daemon.log" | head -n 1)
    [ -z "$bad" ] || { echo "line without a prefix: $bad"; return 1; }
    ! grep -qE '^<[0-9]>[0-9]{4}-' "$TMP/daemon.log" || { echo "timestamp after the prefix"; return 1; }
}
check journal-lines journal_lines
stop_daemon
check journal-exit-0 it_exit_clean
# a broken configuration at start: an error line (<3>) with file:line, so
# `journalctl -p err` shows why the service failed
broken_at_start() {
    local log=$TMP/broken.log rc
    printf '[server]\nmax_connections = lots\n' >"$TMP/broken.ini"
    : >"$log"
    JOURNAL_STREAM=$(stat -c '%d:%i' "$log") timeout 10 "$BUILD/wtrelayd" -c "$TMP/broken.ini" 2>"$log"
    rc=$?
    [ "$rc" = 1 ] || { echo "exit $rc"; return 1; }
    grep -q "^<3>$TMP/broken.ini:2: max_connections" "$log" || { echo "got: $(head -n 1 "$log")"; return 1; }
}
check journal-config-error broken_at_start
[ "$IT_FAILED" -eq 0 ]
