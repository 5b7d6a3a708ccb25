// Driven by the gateway's Go e2e test (TestRecoveryAcrossGatewayRestart): a
// stock socket.io-client v4 chats, the test restarts the gateway (or puts
// another instance on its address) while messages are published, and the
// client must come back with socket.recovered === true and every missed
// message exactly once, in order. Lines on stdout tell the test where the
// script is; a line on stdin tells the script the gateway is back.
//
// Environment: GATEWAY_URL, ROOM, TRANSPORTS (websocket or polling).

import { createInterface } from 'node:readline';
import { io } from 'socket.io-client';

const url = process.env.GATEWAY_URL;
const room = process.env.ROOM;
const transports = [process.env.TRANSPORTS || 'websocket'];
const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
const fail = (msg) => {
  console.log(`FAIL ${msg}`);
  process.exit(1);
};
setTimeout(() => fail('timed out'), 60_000).unref();

const x = io(url, { transports, forceNew: true, reconnectionDelay: 200, reconnectionDelayMax: 500 });
const got = [];
x.on('receive message', (msg) => got.push(msg));
await new Promise((resolve) => x.once('connect', resolve));
const joined = await x.timeout(5000).emitWithAck('join', room);
if (!joined.ok) fail(`join: ${JSON.stringify(joined)}`);
console.log('JOINED');
await lines.next(); // the test published "before"
while (!got.includes('before')) await new Promise((r) => setTimeout(r, 20));
const id = x.id;
const down = new Promise((resolve) => x.once('disconnect', resolve));
console.log('READY');
const reason = await down;
console.log(`DISCONNECTED ${reason}`);
await lines.next(); // the gateway is back, and messages were published meanwhile
if (!x.connected) await new Promise((resolve) => x.once('connect', resolve));
if (x.recovered !== true) fail(`recovered = ${x.recovered}`);
if (x.id !== id) fail(`socket id changed from ${id} to ${x.id}`);
console.log('RECOVERED');
await lines.next(); // the test published "after"
const deadline = Date.now() + 10_000;
while (!got.includes('after') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
console.log(`GOT ${JSON.stringify(got)}`);
x.close();
process.exit(0);
