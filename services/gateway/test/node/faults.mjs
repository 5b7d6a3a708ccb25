// Driven by the gateway's Go fault test (TestFaults): stock socket.io-client
// v4 sockets spread over several gateways chat in one room, each sending a
// message with an ack every PERIOD_MS, while the test kills and restarts the
// processes behind them. At the end the test hands over the room's history
// as stored, and the script reports, for every client, what it missed, got
// twice or got that was never stored, and whether every reconnect recovered.
//
// Environment: GATEWAY_URLS (comma-separated), NAMESPACE, ROOM, CLIENTS,
// PERIOD_MS, TRANSPORTS (websocket or polling).
//
// Commands on stdin, answered on stdout:
//   up          -> "UP {"disconnected": [clients]}" once every client is
//                  connected, listing those that lost their connection since
//                  the last up
//   stop        -> "STOPPED <acked>" once sending stopped and every ack is in
//   check FILE  -> "RESULT <json>"; FILE is the history: [[offset, text], ...]
// Along the way: "READY" once all clients have joined, "DOWN <client> <reason>"
// on each disconnect. "FAIL <why>" ends the script.

import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { io } from 'socket.io-client';

const urls = process.env.GATEWAY_URLS.split(',');
const namespace = process.env.NAMESPACE || '/';
const room = process.env.ROOM;
const count = Number(process.env.CLIENTS);
const period = Number(process.env.PERIOD_MS);
const transports = [process.env.TRANSPORTS || 'websocket'];

const fail = (msg) => {
  console.log(`FAIL ${msg}`);
  process.exit(1);
};
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
// waitFor polls cond every 20 ms for at most ms and reports whether it held.
const waitFor = async (cond, ms) => {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) return false;
    await sleep(20);
  }
  return true;
};
const until = async (cond, ms, what) => (await waitFor(cond, ms)) || fail(what());

// refusals counts the sends not acknowledged, by error code.
const refusals = {};
const tally = (m, key) => (m[key] = (m[key] || 0) + 1);

const clients = [];
for (let i = 0; i < count; i++) {
  const c = {
    i,
    prefix: `c${i}-`,
    received: new Map(), // text -> times received
    acked: new Map(), // text -> offset
    disconnects: 0,
    reported: 0, // disconnects already listed by an "up"
    notRecovered: [],
    inflight: 0,
    joined: false,
  };
  c.socket = io(urls[i % urls.length] + namespace, {
    transports,
    forceNew: true,
    reconnectionDelay: 100,
    reconnectionDelayMax: 500,
  });
  c.socket.on('receive message', (msg) => c.received.set(msg, (c.received.get(msg) || 0) + 1));
  c.socket.on('connect', () => {
    // Every connect after the first must have recovered the session.
    if (c.joined && c.socket.recovered !== true) c.notRecovered.push(c.disconnects);
  });
  c.socket.on('disconnect', (reason) => {
    c.disconnects++;
    console.log(`DOWN ${i} ${reason}`);
  });
  clients.push(c);
}

// Join in small batches: a crowd of first connects is a test of its own.
for (let at = 0; at < count; at += 20) {
  await Promise.all(
    clients.slice(at, at + 20).map(async (c) => {
      if (!c.socket.connected) await new Promise((r) => c.socket.once('connect', r));
      const ack = await c.socket.timeout(10_000).emitWithAck('join', room);
      if (!ack.ok) fail(`client ${c.i} join: ${JSON.stringify(ack)}`);
      c.joined = true;
    }),
  );
}

let sending = true;
const senders = clients.map(async (c) => {
  await sleep(Math.random() * period);
  for (let seq = 0; sending; seq++) {
    if (c.socket.connected) {
      const text = c.prefix + seq;
      c.inflight++;
      c.socket
        .timeout(10_000)
        .emitWithAck('send message', room, text)
        .then((ack) => (ack.ok ? c.acked.set(text, ack.offset) : tally(refusals, ack.error?.code)))
        .catch(() => tally(refusals, 'no ack')) // it may or may not be stored
        .finally(() => c.inflight--);
    }
    await sleep(period);
  }
});
console.log('READY');

const disconnects = () => clients.reduce((n, c) => n + c.disconnects, 0);

for await (const line of createInterface({ input: process.stdin })) {
  const [cmd, arg] = line.trim().split(' ');
  if (cmd === 'up') {
    await until(
      () => clients.every((c) => c.socket.connected),
      60_000,
      () => `clients not connected: ${clients.filter((c) => !c.socket.connected).map((c) => c.i)}`,
    );
    const disconnected = clients.filter((c) => c.disconnects > c.reported).map((c) => c.i);
    for (const c of clients) c.reported = c.disconnects;
    console.log(`UP ${JSON.stringify({ disconnected })}`);
  } else if (cmd === 'stop') {
    sending = false;
    await Promise.all(senders);
    await until(
      () => clients.every((c) => c.inflight === 0),
      15_000,
      () => 'acks outstanding',
    );
    console.log(`STOPPED ${clients.reduce((n, c) => n + c.acked.size, 0)}`);
  } else if (cmd === 'check') {
    const history = JSON.parse(readFileSync(arg, 'utf8'));
    const stored = new Map(history.map(([offset, text]) => [text, offset]));
    const expected = (c) => history.filter(([, text]) => !text.startsWith(c.prefix));
    // Live delivery may still be under way for the last messages.
    await waitFor(() => clients.every((c) => expected(c).every(([, text]) => c.received.has(text))), 30_000);
    const result = { clients: count, stored: history.length, acked: 0, refusals, disconnects: disconnects(), problems: [] };
    for (const c of clients) {
      const missing = expected(c).filter(([, text]) => !c.received.has(text)).map(([, text]) => text);
      const twice = [...c.received].filter(([, n]) => n > 1).map(([text]) => text);
      const unstored = [...c.received.keys()].filter((text) => !stored.has(text));
      const lostAcks = [...c.acked].filter(([text, offset]) => stored.get(text) !== offset).map(([text]) => text);
      result.acked += c.acked.size;
      if (missing.length || twice.length || unstored.length || lostAcks.length || c.notRecovered.length) {
        result.problems.push({
          client: c.i,
          missing: missing.length,
          twice: twice.length,
          unstored: unstored.length,
          lostAcks: lostAcks.length,
          notRecovered: c.notRecovered.length,
          examples: [...missing, ...twice, ...unstored, ...lostAcks].slice(0, 5),
        });
      }
    }
    console.log(`RESULT ${JSON.stringify(result)}`);
    for (const c of clients) c.socket.close();
    process.exit(0);
  }
}
