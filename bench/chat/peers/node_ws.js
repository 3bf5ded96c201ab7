// A broadcast server in Node with the ws package (Debian node-ws), written
// the usual way: every text message a client sends goes to every client.
// Usage: node node_ws.js PORT   (0: any free port)
'use strict';
const { WebSocketServer } = require('ws');

const wss = new WebSocketServer({ host: '127.0.0.1', port: +process.argv[2] || 0, path: '/ws',
                                  perMessageDeflate: false });
wss.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => {
    for (const client of wss.clients) {
      if (client.readyState === 1) client.send(data, { binary: isBinary });
    }
  });
});
wss.on('listening', () => console.error('listening on 127.0.0.1:' + wss.address().port));
