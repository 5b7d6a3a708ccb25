// Driven by the gateway's Go fault and soak tests (TestFaults, TestSoak):
// stock socket.io-client v4 sockets spread over several gateways chat in
// rooms, each sending a message with an ack every PERIOD_MS, while the test
// kills and restarts the processes behind them, or just lets them run. At the
// end the test hands over the rooms' history as stored, and the script
// reports, for every client, what it missed, got twice or got that was not
// stored in its room, and whether every reconnect recovered.
//
// Environment: GATEWAY_URLS (comma-separated), NAMESPACE, ROOM, CLIENTS,
// PERIOD_MS, TRANSPORTS (websocket or polling), ROOM_SIZE (0, the default,
// puts every client in ROOM; otherwise client i is in ROOM-<i/ROOM_SIZE>).
//
// Commands on stdin, answered on stdout:
//   up          -> "UP {"disconnected": [clients]}" once every client is
//                  connected, listing those that lost their connection since
//                  the last up
//   leave N     -> "LEFT <n>" once the first N clients still there have
//                  closed their sockets, as users leaving for good
//   stop        -> "STOPPED <acked>" once sending stopped and every ack is in
//   check FILE  -> "RESULT <json>"; FILE is the history of each room:
//                  {"room": [[offset, text], ...], ...}
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
const roomSize = Number(process.env.ROOM_SIZE || 0);

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
    room: roomSize ? `${room}-${Math.floor(i / roomSize)}` : room,
    prefix: `c${i}-`,
    left: false,
    received: new Map(), // text -> times received
    offsets: new Map(), // text -> offset received at
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
  c.socket.on('receive message', (msg, meta) => {
    c.received.set(msg, (c.received.get(msg) || 0) + 1);
    c.offsets.set(msg, meta.offset);
  });
  c.socket.on('connect', () => {
    c.id = c.socket.id;
    // Every connect after the first must have recovered the session.
    if (c.joined && c.socket.recovered !== true) c.notRecovered.push(c.disconnects);
  });
  c.socket.on('disconnect', (reason) => {
    if (c.left) return;
    c.disconnects++;
    console.log(`DOWN ${i} ${reason} ${c.id}`);
  });
  clients.push(c);
}

// Join in small batches: a crowd of first connects is a test of its own.
const joining = setTimeout(() => fail('clients not all joined within 5 minutes'), 300_000);
for (let at = 0; at < count; at += 20) {
  await Promise.all(
    clients.slice(at, at + 20).map(async (c) => {
      if (!c.socket.connected) await new Promise((r) => c.socket.once('connect', r));
      const ack = await c.socket.timeout(10_000).emitWithAck('join', c.room);
      if (!ack.ok) fail(`client ${c.i} join: ${JSON.stringify(ack)}`);
      c.joined = true;
    }),
  );
}

clearTimeout(joining);

let sending = true;
const senders = clients.map(async (c) => {
  await sleep(Math.random() * period);
  for (let seq = 0; sending; seq++) {
    if (c.socket.connected && !c.left) {
      const text = c.prefix + seq;
      c.inflight++;
      c.socket
        .timeout(10_000)
        .emitWithAck('send message', c.room, text)
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
  const staying = clients.filter((c) => !c.left);
  if (cmd === 'up') {
    await until(
      () => staying.every((c) => c.socket.connected),
      60_000,
      () => `clients not connected: ${staying.filter((c) => !c.socket.connected).map((c) => c.i)}`,
    );
    const disconnected = clients.filter((c) => c.disconnects > c.reported).map((c) => c.i);
    for (const c of clients) c.reported = c.disconnects;
    console.log(`UP ${JSON.stringify({ disconnected })}`);
  } else if (cmd === 'leave') {
    const leaving = staying.slice(0, Number(arg));
    for (const c of leaving) {
      c.left = true;
      c.socket.close();
    }
    console.log(`LEFT ${leaving.length}`);
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
    const stored = new Map(); // room -> text -> offset
    for (const [name, messages] of Object.entries(history)) stored.set(name, new Map(messages.map(([o, t]) => [t, o])));
    // A room keeps a bounded history: what was trimmed before the test read
    // it cannot be checked against it.
    const oldest = (name) => history[name]?.[0]?.[0] ?? Infinity;
    // What a client must have got: its room's messages but its own.
    const expected = (c) => (history[c.room] || []).filter(([, text]) => !text.startsWith(c.prefix)).map(([, text]) => text);
    const checked = clients.filter((c) => !c.left); // those that left stopped receiving
    // Live delivery may still be under way for the last messages.
    await waitFor(() => checked.every((c) => expected(c).every((text) => c.received.has(text))), 30_000);
    const result = {
      clients: checked.length,
      stored: [...stored.values()].reduce((n, m) => n + m.size, 0),
      acked: 0,
      refusals,
      disconnects: disconnects(),
      problems: [],
    };
    for (const c of checked) {
      const own = stored.get(c.room) || new Map();
      const missing = expected(c).filter((text) => !c.received.has(text));
      const twice = [...c.received].filter(([, n]) => n > 1).map(([text]) => text);
      const kept = (offset) => offset >= oldest(c.room);
      const unstored = [...c.received.keys()].filter((text) => kept(c.offsets.get(text)) && !own.has(text));
      const lostAcks = [...c.acked].filter(([text, offset]) => kept(offset) && own.get(text) !== offset).map(([text]) => text);
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
  }
}
process.exit(0);
