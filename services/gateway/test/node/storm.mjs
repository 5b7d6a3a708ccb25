// Driven by the gateway's Go fault test (TestFaults): SOCKETS stock
// socket.io-client v4 sockets connect to the gateways in turn and join rooms
// of ten; on a line on stdin they all go at once, half with a DISCONNECT and
// half by the process exiting under them, as a crowd closing a tab or losing
// its network would.
//
// Environment: GATEWAY_URLS (comma-separated), NAMESPACE, SOCKETS, ROOM_PREFIX.
// Prints "JOINED <n>" once every socket is in its room; "FAIL <why>" ends it.

import { createInterface } from 'node:readline';
import { io } from 'socket.io-client';

const urls = process.env.GATEWAY_URLS.split(',');
const namespace = process.env.NAMESPACE || '/';
const count = Number(process.env.SOCKETS);
const prefix = process.env.ROOM_PREFIX;
const fail = (msg) => {
  console.log(`FAIL ${msg}`);
  process.exit(1);
};
setTimeout(() => fail('timed out'), 300_000).unref();

const sockets = [];
const join = async (i) => {
  const s = io(urls[i % urls.length] + namespace, { transports: ['websocket'], forceNew: true, reconnection: false });
  sockets.push(s);
  await new Promise((resolve, reject) => {
    s.once('connect', resolve);
    s.once('connect_error', reject);
  }).catch((err) => fail(`socket ${i} connect: ${err.message}`));
  // As the contract asks of clients: an unavailable is retried.
  for (let attempt = 1; ; attempt++) {
    const ack = await s.timeout(30_000).emitWithAck('join', prefix + Math.floor(i / 10));
    if (ack.ok) return;
    if (ack.error?.code !== 'unavailable' || attempt === 3) fail(`socket ${i} join: ${JSON.stringify(ack)}`);
    await new Promise((r) => setTimeout(r, 500 * attempt));
  }
};
// A bounded number of handshakes at once, as a crowd arriving over seconds.
let next = 0;
await Promise.all(
  Array.from({ length: 20 }, async () => {
    while (next < count) await join(next++);
  }),
);
console.log(`JOINED ${sockets.length}`);

await createInterface({ input: process.stdin })[Symbol.asyncIterator]().next();
for (const s of sockets.slice(0, count / 2)) s.disconnect();
setImmediate(() => process.exit(0));
