// The WebSocket baseline of make bench: a broadcast server as people deploy
// one today, Node.js and the ws package, following ws's documented
// broadcast recipe (every other open client gets the message), over TLS
// with the daemon's certificate.  One room: every client is a member.
//
//   node server.js CERT KEY PORT
'use strict';
const fs = require('fs');
const https = require('https');
const WebSocket = require('ws');

const [cert, key, port] = process.argv.slice(2);
if (!cert || !key || !port) {
  console.error('usage: node server.js CERT KEY PORT');
  process.exit(2);
}
const server = https.createServer({ cert: fs.readFileSync(cert), key: fs.readFileSync(key) });
const wss = new WebSocket.WebSocketServer({ server });

wss.on('connection', function connection(ws) {
  ws.on('error', console.error);
  ws.on('message', function message(data, isBinary) {
    wss.clients.forEach(function each(client) {
      if (client !== ws && client.readyState === WebSocket.OPEN) {
        client.send(data, { binary: isBinary });
      }
    });
  });
});

server.listen(Number(port), '127.0.0.1', () => {
  console.log(`listening on 127.0.0.1:${port}`);
});
process.on('SIGTERM', () => process.exit(0));
