// What wtbench --mode broadcast and the WebSocket baseline agree on: the
// shape of a message (src/wtbench_broadcast.c).  Little-endian sender
// index (u32), sequence (u32), send time (u64 ns, one clock: every member
// lives in one process), then the pattern from an offset that (sender,
// sequence) names.
'use strict';

const PATTERN = 65536;
const HDR = 16;
// PATTERN bytes twice: any run of up to PATTERN bytes is contiguous
const pattern = Buffer.alloc(PATTERN * 2);
for (let i = 0; i < pattern.length; i++) {
  const j = i % PATTERN;
  pattern[i] = (j * 7 + Math.floor(j / 251)) & 0xff;
}

function seedOf(sender, seq) {
  // (uint32_t)(sender * 2654435761u + seq * 40503u + 7u) % PATTERN
  return ((Math.imul(sender, 2654435761 | 0) + Math.imul(seq, 40503) + 7) >>> 0) % PATTERN;
}

function now() {
  return process.hrtime.bigint();
}

function makeMessage(sender, seq, size) {
  const b = Buffer.allocUnsafe(size);
  b.writeUInt32LE(sender, 0);
  b.writeUInt32LE(seq, 4);
  b.writeBigUInt64LE(now(), 8);
  let pos = (seedOf(sender, seq) + HDR) % PATTERN;
  for (let off = HDR; off < size;) {
    const k = Math.min(size - off, PATTERN);
    pattern.copy(b, off, pos, pos + k);
    off += k;
    pos = (pos + k) % PATTERN;
  }
  return b;
}

// The body of a message (bytes HDR..size) is what its header names?
function bodyOk(b, sender, seq) {
  let pos = (seedOf(sender, seq) + HDR) % PATTERN;
  for (let off = HDR; off < b.length;) {
    const k = Math.min(b.length - off, PATTERN);
    if (b.compare(pattern, pos, pos + k, off, off + k) !== 0) return false;
    off += k;
    pos = (pos + k) % PATTERN;
  }
  return true;
}

module.exports = { PATTERN, HDR, seedOf, now, makeMessage, bodyOk };
