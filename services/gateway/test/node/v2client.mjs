// The classic chat with the stock npm socket.io-client 2.x (Engine.IO 3),
// against a gateway started with --allow-eio3 (same environment as the
// contract suite; only "/" is used):
//
//   GATEWAY_URL=http://127.0.0.1:3000 TRANSPORTS=websocket node --test v2client.mjs
//
// A v2 client has no handshake auth payload (namespaces with "auth" need a
// v3 or v4 client), no emitWithAck and no connection state recovery: after a
// reconnect it is a new socket, auto-joined to the default rooms again.

import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, it } from 'node:test';

import io from 'socket.io-client-v2';

import { assertJoinAck, assertOk, assertSendAck, GATEWAY_URL, once, quiet, record, TRANSPORTS, uniqueRoom, WAIT_MS } from './helpers.mjs';

const opts = { timeout: 30_000 };

/** Connects a v2 socket to "/" and closes it after the test. */
async function connect(t, extra = {}) {
  const socket = io(GATEWAY_URL + '/', { forceNew: true, reconnection: false, transports: TRANSPORTS, ...extra });
  t.after(() => socket.close());
  await once(socket, 'connect');
  return socket;
}

/** Emits with an ack callback, as v2 clients do; resolves with the ack's first argument. */
function ack(socket, event, ...args) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ack for "${event}" within ${WAIT_MS} ms`)), WAIT_MS);
    socket.emit(event, ...args, (a) => {
      clearTimeout(timer);
      resolve(a);
    });
  });
}

describe(`socket.io-client 2.x (transports: ${TRANSPORTS.join(',')})`, () => {
  it('speaks Engine.IO 3', opts, async (t) => {
    const s = await connect(t);
    assert.equal(String(s.io.engine.transport.query.EIO), '3');
  });

  it('is refused by a namespace that needs a token, which v2 cannot send', opts, async (t) => {
    const s = io(GATEWAY_URL + '/chat', { forceNew: true, reconnection: false, transports: TRANSPORTS });
    t.after(() => s.close());
    const [err] = await once(s, 'error');
    assert.ok(err, 'an error names the refusal');
    assert.equal(s.connected, false);
  });

  it('two clients chat in room1 without acks; the sender gets no echo', opts, async (t) => {
    const [a, b] = await Promise.all([connect(t), connect(t)]);
    const aGot = record(a, 'receive message');
    const bGot = record(b, 'receive message');
    const hello = `hello ${randomUUID().slice(0, 8)}`;
    a.emit('send message', 'room1', hello);
    const [msg, meta] = await bGot.waitFor((m) => m === hello);
    assert.equal(msg, hello);
    assert.equal(meta.room, 'room1');
    assert.equal(typeof meta.from, 'string');
    await quiet();
    aGot.assertNone((m) => m === hello, 'own message echoed to its sender');
  });

  it('join, send and history with acks; switch room', opts, async (t) => {
    const [a, b] = await Promise.all([connect(t), connect(t)]);
    const room = uniqueRoom('v2');
    assertJoinAck(await ack(a, 'join', room), room);
    assertJoinAck(await ack(b, 'join', room), room);
    const bGot = record(b, 'receive message');
    const sent = assertSendAck(await ack(a, 'send message', room, { text: 'hi' }));
    const [msg, meta] = await bGot.waitFor((m, mm) => mm && mm.room === room);
    assert.deepEqual(msg, { text: 'hi' });
    assert.equal(meta.offset, sent.offset);
    const h = assertOk(await ack(a, 'history', room, {}));
    assert.deepEqual(h.messages.map((m) => m.id), [sent.id]);

    const other = uniqueRoom('v2');
    const bJoined = record(b, 'member joined');
    assertJoinAck(await ack(b, 'join', other), other);
    a.emit('switch room', other);
    await bJoined.waitFor((e) => e.room === other);
  });

  it('reconnects by itself as a new socket, auto-joined to room1 again', opts, async (t) => {
    const x = await connect(t, { reconnection: true, reconnectionDelay: 300, reconnectionDelayMax: 300 });
    const y = await connect(t);
    const first = x.id;
    // "reconnect" comes when the connection is open again, "connect" once
    // the gateway has the socket in its namespace and default rooms.
    const reconnected = Promise.all([once(x, 'reconnect', 10_000), once(x, 'connect', 10_000)]);
    x.io.engine.close();
    await reconnected;
    assert.notEqual(x.id, first, 'v2 has no session recovery: a new socket id');
    const got = record(x, 'receive message');
    const text = `after ${randomUUID().slice(0, 8)}`;
    y.emit('send message', 'room1', text);
    await got.waitFor((m) => m === text);
  });
});
