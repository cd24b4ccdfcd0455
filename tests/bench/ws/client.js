// The WebSocket baseline's load generator: the room shapes of
// wtbench --mode broadcast, through server.js.  -c members connect (each
// its own TLS connection, as browser tabs would); once every one is in,
// the first --senders send -n messages each (--rate per sender, 0: all at
// once, kept below 4 MiB buffered per socket), and every member verifies
// what reaches it (common.js): duplicates, corrupt messages, latency from
// the send time in the message to its arrival.  One JSON line on stdout,
// like wtbench --json; with --server-pid also the server's CPU time while
// messages flowed and its RSS.  Bounded by its counts and -t.
//
//   node client.js [-c N] [--senders K] [-n N] [--rate R] [--size S]
//                  [--insecure | --cafile FILE] [--server-pid P] [-t S]
//                  [--inflight N] wss://HOST:PORT/
'use strict';
const fs = require('fs');
const { execSync } = require('child_process');
const WebSocket = require('ws');
const { HDR, now, makeMessage, bodyOk } = require('./common');

const o = { c: 2, senders: 1, n: 100, rate: 0, size: 64, t: 60, inflight: 100, insecure: false };
let url = null;
for (let i = 2; i < process.argv.length; i++) {
  const a = process.argv[i];
  const v = process.argv[i + 1];
  const num = () => {
    i++;
    const x = Number(v);
    if (!Number.isFinite(x) || x < 0) usage(`bad value for ${a}`);
    return x;
  };
  if (a === '-c') o.c = num();
  else if (a === '--senders') o.senders = num();
  else if (a === '-n') o.n = num();
  else if (a === '--rate') o.rate = num();
  else if (a === '--size') o.size = num();
  else if (a === '-t') o.t = num();
  else if (a === '--inflight') o.inflight = num();
  else if (a === '--server-pid') o.pid = num();
  else if (a === '--insecure') o.insecure = true;
  else if (a === '--cafile') { o.ca = fs.readFileSync(v); i++; }
  else if (a.startsWith('-')) usage(`unknown option ${a}`);
  else url = a;
}
function usage(why) {
  console.error(`ws client: ${why}`);
  process.exit(2);
}
if (!url) usage('want a URL wss://HOST:PORT/');
if (o.c < 2 || o.senders > o.c || o.size < HDR + 8) usage('need -c >= 2, --senders <= -c, --size >= 24');

const M = o.c, K = o.senders, N = o.n;
const seen = new Uint8Array(Math.ceil((M * K * N) / 8) + 1);
const sent = new Array(K).fill(0);
const lat = [];
let deliveries = 0, duplicates = 0, corrupt = 0, errors = 0, firstError = '';
let opened = 0, started = 0, failed = 0;
let tStart = now(), tAll = 0n, tSend = 0n, tLast = 0n, tProgress = 0n, tDone = 0n;
let cpu0 = -1, cpu1 = -1, self0 = 0, self1 = 0, rssBefore = -1, rssJoined = -1, rssPeak = -1, rssAfter = -1;
let peakReset = false, done = false;
const members = [];

function note(msg) {
  errors++;
  if (!firstError) firstError = String(msg).replace(/["\\\n]/g, "'");
}

// ---- the server process ----
const tck = (() => { try { return Number(execSync('getconf CLK_TCK').toString()) || 100; } catch { return 100; } })();
function serverCpu() {
  if (!o.pid) return -1;
  try {
    const s = fs.readFileSync(`/proc/${o.pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / tck; // fields 14, 15
  } catch { return -1; }
}
function serverKb(field) {
  if (!o.pid) return -1;
  try {
    const m = fs.readFileSync(`/proc/${o.pid}/status`, 'utf8').match(new RegExp(`^${field}:\\s+(\\d+)`, 'm'));
    return m ? Number(m[1]) : -1;
  } catch { return -1; }
}
function selfCpu() {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

// ---- receiving ----
function receive(to, data) {
  const t = now();
  tProgress = t;
  if (data.length !== o.size) {
    corrupt++;
    return note(`member ${to}: a message of ${data.length} bytes`);
  }
  const sender = data.readUInt32LE(0), seq = data.readUInt32LE(4), ts = data.readBigUInt64LE(8);
  if (sender >= K || seq >= N || seq >= sent[sender] || sender === to || ts < tSend || ts > t) {
    corrupt++;
    return note(`member ${to}: a message names sender ${sender}, message ${seq}`);
  }
  if (!bodyOk(data, sender, seq)) {
    corrupt++;
    return note(`member ${to}: message ${seq} of sender ${sender} differs`);
  }
  const bit = (to * K + sender) * N + seq;
  if (seen[bit >> 3] & (1 << (bit & 7))) {
    duplicates++;
    return note(`member ${to} got message ${seq} of sender ${sender} twice`);
  }
  seen[bit >> 3] |= 1 << (bit & 7);
  deliveries++;
  tLast = t;
  lat.push(Number(t - ts) / 1e3);
  if (deliveries >= K * N * (M - 1)) finish();
}

// ---- sending ----
const totalSent = () => sent.reduce((a, b) => a + b, 0);
function due() {
  if (!o.rate) return N;
  return Math.min(N, 1 + Math.floor((Number(now() - tSend) / 1e9) * o.rate));
}
function fill() {
  if (done) return;
  const d = due();
  let more = false;
  for (let s = 0; s < K; s++) {
    const ws = members[s];
    if (ws.readyState !== WebSocket.OPEN) continue;
    while (sent[s] < d && ws.bufferedAmount < 4 << 20) {
      ws.send(makeMessage(s, sent[s], o.size), { binary: true });
      sent[s]++;
    }
    if (sent[s] < N) more = true;
  }
  if (!more) clearInterval(pacer);
  else if (!o.rate) setImmediate(fill); // waits for buffered bytes to go
}
let pacer = null;

function allJoined() {
  tAll = now();
  if (failed) {
    note(`${failed} of ${M} members could not join`);
    return finish();
  }
  rssJoined = serverKb('VmRSS');
  if (o.pid) {
    try { fs.writeFileSync(`/proc/${o.pid}/clear_refs`, '5'); peakReset = true; } catch { peakReset = false; }
  }
  cpu0 = serverCpu();
  self0 = selfCpu();
  tSend = tProgress = now();
  if (o.rate) pacer = setInterval(fill, 1);
  fill();
}

// ---- members ----
function connect(i) {
  started++;
  const ws = new WebSocket(url, {
    perMessageDeflate: false,
    rejectUnauthorized: !o.insecure,
    ca: o.ca,
  });
  ws.binaryType = 'nodebuffer';
  members[i] = ws;
  let isOpen = false;
  ws.on('open', () => {
    isOpen = true;
    opened++;
    if (started < M) connect(started);
    if (opened + failed === M) allJoined();
  });
  ws.on('message', (data) => receive(i, data));
  ws.on('error', (e) => {
    if (!isOpen) {
      failed++;
      note(`member ${i}: ${e.message}`);
      if (started < M) connect(started);
      if (opened + failed === M) allJoined();
    } else if (!done) note(`member ${i}: ${e.message}`);
  });
  ws.on('close', () => {
    if (isOpen && !done) note(`member ${i}: closed by the server`);
  });
}

// ---- the end ----
function finish() {
  if (done) return;
  done = true;
  tDone = now();
  cpu1 = serverCpu();
  self1 = selfCpu();
  rssPeak = serverKb('VmHWM');
  rssAfter = serverKb('VmRSS');
  clearInterval(pacer);
  report();
  for (const ws of members) if (ws) ws.terminate();
  setTimeout(() => process.exit(errors || corrupt || duplicates ? 1 : 0), 100).unref();
  process.exitCode = errors || corrupt || duplicates ? 1 : 0;
}

function pct(sorted, p) {
  if (!sorted.length) return 0;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}

function report() {
  const messages = totalSent();
  const expected = messages * (M - 1);
  const end = tLast || tDone;
  const el = tSend && end > tSend ? Number(end - tSend) / 1e9 : 0;
  lat.sort((a, b) => a - b);
  const r = {
    mode: 'ws-broadcast',
    members: M,
    senders: K,
    size: o.size,
    messages_per_sender: N,
    rate: o.rate,
    sessions_open: opened,
    sessions_failed: failed,
    setup_s: Number(((tAll || tDone) - tStart) / 1000000n) / 1e3,
    messages_sent: messages,
    deliveries_expected: expected,
    deliveries,
    ratio: expected ? Number((deliveries / expected).toFixed(6)) : 1,
    duplicates,
    corrupt,
    elapsed_s: Number(el.toFixed(6)),
    deliveries_per_s: el > 0 ? Number((deliveries / el).toFixed(1)) : 0,
    lat_us: {
      n: lat.length,
      p50: Number(pct(lat, 50).toFixed(1)),
      p90: Number(pct(lat, 90).toFixed(1)),
      p99: Number(pct(lat, 99).toFixed(1)),
      max: Number(pct(lat, 100).toFixed(1)),
    },
    server_rss_kb_before: rssBefore,
    server_rss_kb_joined: rssJoined,
    server_rss_kb_peak: rssPeak,
    server_rss_kb_after: rssAfter,
    server_peak_reset: peakReset,
    server_cpu_s: cpu0 >= 0 && cpu1 >= 0 ? Number((cpu1 - cpu0).toFixed(2)) : -1,
    client_cpu_s: Number((self1 - self0).toFixed(2)),
    errors,
    first_error: firstError,
  };
  process.stdout.write(JSON.stringify(r) + '\n');
}

// every message sent and nothing arrived for a second: the rest is lost
setInterval(() => {
  if (!done && tSend && totalSent() >= K * N && Number(now() - tProgress) > 1e9) finish();
}, 50);
setTimeout(() => {
  if (!tSend) note('-t reached before every member joined');
  else if (totalSent() < K * N) note('-t reached before every message was sent');
  finish();
}, o.t * 1000);

rssBefore = serverKb('VmRSS');
tStart = now();
for (let i = 0; i < Math.min(o.inflight, M); i++) connect(i);
