// Connection state recovery after a network drop, with the stock npm
// socket.io-client v4 (run with the contract suite: same environment).

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { ack, assertOk, connect, once, record, TRANSPORTS, uniqueRoom } from './helpers.mjs';

const opts = { timeout: 30_000 };
const reconnecting = { reconnection: true, reconnectionDelay: 300, reconnectionDelayMax: 300 };

describe(`connection state recovery (transports: ${TRANSPORTS.join(',')})`, () => {
  it('a client whose connection drops gets recovered === true, its rooms, and every missed message once, in order', opts, async (t) => {
    const room = uniqueRoom('rec');
    const x = await connect(t, '/', reconnecting);
    const y = await connect(t, '/');
    assertOk(await ack(x, 'join', room));
    assertOk(await ack(y, 'join', room));
    const got = record(x, 'receive message');

    assertOk(await ack(y, 'send message', room, 'before'));
    const [, , offset] = await got.waitFor((m) => m === 'before');
    assert.equal(typeof offset, 'string', 'each message ends with the offset string recovery needs');
    const id = x.id;

    // Drop the connection under the client, as a network failure would; it
    // reconnects by itself. Messages are sent while it is away.
    const dropped = once(x, 'disconnect');
    x.io.engine.close();
    await dropped;
    for (const text of ['missed-1', 'missed-2', 'missed-3']) {
      assertOk(await ack(y, 'send message', room, text));
    }
    await once(x, 'connect', 10_000);
    assert.equal(x.recovered, true, 'socket.recovered after reconnecting');
    assert.equal(x.id, id, 'the socket keeps its id');

    assertOk(await ack(y, 'send message', room, 'after'));
    await got.waitFor((m) => m === 'after');
    assert.deepEqual(got.events.map(([m]) => m), ['before', 'missed-1', 'missed-2', 'missed-3', 'after']);
    // The restored socket is in its room again: it can send to it.
    assertOk(await ack(x, 'send message', room, 'back'));
  });

  it('a client that reconnects with an unknown session starts afresh (recovered === false)', opts, async (t) => {
    const x = await connect(t, '/', { ...reconnecting, auth: { pid: 'not-a-session', offset: 'room1=1' } });
    assert.equal(x.recovered, false);
  });
});
