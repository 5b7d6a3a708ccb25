// Contract tests for the Parley socket.io gateway, driven by the stock npm
// socket.io-client v4. Run against a live gateway:
//
//   GATEWAY_URL=http://127.0.0.1:3000 JWT_SECRET=... TRANSPORTS=websocket node --test
//
// The gateway under test is configured with namespaces "/" (no auth, default room
// "room1") and "/secure" (HS256 JWT with JWT_SECRET), a max message size of 16384 bytes,
// and a per-socket rate limit of a burst of 50 events refilled at 20/s.

import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, it } from 'node:test';

import {
  ack,
  ackWithin,
  assertError,
  assertJoinAck,
  assertMembers,
  assertMessageList,
  assertMessageObject,
  assertOk,
  assertSendAck,
  assertTimestamp,
  connect,
  connectError,
  connectMany,
  eventually,
  joinAlone,
  once,
  quiet,
  record,
  signJwt,
  tokenFor,
  TRANSPORTS,
  uniqueRoom,
  uniqueUser,
  unsignedJwt,
  WAIT_MS,
} from './helpers.mjs';

// Upper bound for any one test (each wait inside is bounded by WAIT_MS too).
const TEST_TIMEOUT = 30_000;
const opts = { timeout: TEST_TIMEOUT };

const fromRoom = (room) => (msg, meta) => meta && meta.room === room;
const memberEvent = (room, user) => (e) => e && e.room === room && (user === undefined || e.user === user);

/** Joins `room` with each socket in turn; returns the acks. */
async function joinAll(sockets, room) {
  const acks = [];
  for (const s of sockets) acks.push(assertJoinAck(await ack(s, 'join', room), room));
  return acks;
}

describe(`gateway contract (transports: ${TRANSPORTS.join(',')})`, () => {
  describe('seed compatibility (classic socket.io chat client)', () => {
    it('two clients on "/" chat in room1 without acks, then switch room isolates them', opts, async (t) => {
      const tag = randomUUID().slice(0, 8);
      // Both are auto-joined to room1 on connect: once "connect" fired, room1 messages
      // must reach them (the classic client sends right after connecting).
      const [a, b] = await connectMany(t, 2, '/');
      const aGot = record(a, 'receive message');
      const bGot = record(b, 'receive message');
      const bLeft = record(b, 'member left');

      const hello = `hello ${tag}`;
      a.emit('send message', 'room1', hello); // no ack, as the classic client does
      const [first, meta] = await bGot.waitFor((m) => m === hello);
      assert.equal(first, hello, 'the message must be the FIRST argument of "receive message"');
      assert.equal(meta.room, 'room1');
      const aUser = meta.from;
      assert.equal(typeof aUser, 'string');

      // An observer in room2 (and, by auto-join, in room1 too).
      const c = await connect(t, '/');
      const cGot = record(c, 'receive message');
      const cJoined = record(c, 'member joined');
      await joinAll([c], 'room2');

      a.emit('switch room', 'room2'); // no ack
      // Synchronise on the membership events rather than on event ordering.
      await cJoined.waitFor(memberEvent('room2', aUser));
      await bLeft.waitFor(memberEvent('room1', aUser));

      const inRoom2 = `in room2 ${tag}`;
      a.emit('send message', 'room2', inRoom2);
      await cGot.waitFor((m, mm) => m === inRoom2 && mm.room === 'room2');

      const inRoom1 = `in room1 ${tag}`;
      b.emit('send message', 'room1', inRoom1);
      await cGot.waitFor((m, mm) => m === inRoom1 && mm.room === 'room1');

      await quiet();
      bGot.assertNone((m) => m === inRoom2, 'room2 message at the client still in room1');
      aGot.assertNone((m) => m === inRoom1, 'room1 message at the client that switched to room2');
      aGot.assertNone((m) => m === hello || m === inRoom2, 'own message echoed to its sender');
    });
  });

  describe('namespaces and auth', () => {
    it('an unknown namespace gets connect_error "Invalid namespace"', opts, async (t) => {
      const err = await connectError(t, `/no-such-${randomUUID().slice(0, 8)}`);
      assert.equal(err.message, 'Invalid namespace');
    });

    it('/secure accepts a valid HS256 token; from and members report its sub', opts, async (t) => {
      const sub = uniqueUser('alice');
      const other = uniqueUser('bob');
      const room = uniqueRoom();
      const [a1, a2, b] = await Promise.all([
        connect(t, '/secure', { auth: { token: tokenFor(sub) } }),
        connect(t, '/secure', { auth: { token: tokenFor(sub) } }), // second session of the same user
        connect(t, '/secure', { auth: { token: tokenFor(other) } }),
      ]);

      const { user } = await joinAlone(a1, room);
      assert.equal(user, sub, 'members must report the JWT sub as the user');
      await joinAll([a2, b], room);

      const a1Got = record(a1, 'receive message');
      const a2Got = record(a2, 'receive message');
      const bGot = record(b, 'receive message');
      const sent = assertSendAck(await ack(a1, 'send message', room, { text: 'hi from alice' }));
      for (const got of [bGot, a2Got]) {
        const [msg, meta] = await got.waitFor(fromRoom(room));
        assert.deepEqual(msg, { text: 'hi from alice' });
        assert.equal(meta.from, sub, 'meta.from must be the JWT sub');
        assert.equal(meta.offset, sent.offset);
      }

      const { members } = assertOk(await ack(b, 'members', room));
      assertMembers(members);
      const users = new Set(members.map((m) => m.user));
      assert.ok(users.has(sub) && users.has(other), `members must list both subs: ${JSON.stringify(members)}`);

      await quiet();
      a1Got.assertNone(fromRoom(room), 'own message echoed to the sending socket');
    });

    it('/secure has no default room', opts, async (t) => {
      const s = await connect(t, '/secure', { auth: { token: tokenFor(uniqueUser()) } });
      assertError(await ack(s, 'send message', 'room1', 'hello'), ['permission_denied', 'not_found']);
    });

    describe('/secure refuses bad credentials with connect_error "unauthorized" and data.code', () => {
      const now = () => Math.floor(Date.now() / 1000);
      const cases = [
        ['missing token (no auth)', () => ({})],
        ['missing token (empty auth)', () => ({ auth: {} })],
        ['empty token', () => ({ auth: { token: '' } })],
        ['token that is not a JWT', () => ({ auth: { token: 'not-a-jwt' } })],
        ['bad signature', () => ({ auth: { token: signJwt({ sub: uniqueUser(), exp: now() + 3600 }, 'not-the-secret') } })],
        ['tampered payload', () => {
          const [h, , s] = tokenFor(uniqueUser()).split('.');
          const p = Buffer.from(JSON.stringify({ sub: 'admin', exp: now() + 3600 })).toString('base64url');
          return { auth: { token: `${h}.${p}.${s}` } };
        }],
        ['unsigned token (alg none)', () => ({ auth: { token: unsignedJwt({ sub: uniqueUser(), exp: now() + 3600 }) } })],
        ['expired token', () => ({ auth: { token: signJwt({ sub: uniqueUser(), iat: now() - 7200, exp: now() - 3600 }) } })],
      ];
      for (const [name, makeOpts] of cases) {
        it(name, opts, async (t) => {
          const err = await connectError(t, '/secure', makeOpts());
          assert.equal(err.message, 'unauthorized');
          assert.ok(err.data && typeof err.data === 'object', `err.data must be an object, got ${JSON.stringify(err.data)}`);
          assert.equal(typeof err.data.code, 'string', `err.data.code must be a string, got ${JSON.stringify(err.data)}`);
          assert.ok(err.data.code.length > 0, 'err.data.code must not be empty');
        });
      }
    });
  });

  describe('rooms', () => {
    it('join acks {ok, room, offset, messages, members}; a second joiner triggers "member joined"', opts, async (t) => {
      const room = uniqueRoom();
      const [a, b] = await connectMany(t, 2, '/');
      const { ack: aAck, user: aUser } = await joinAlone(a, room);
      assert.equal(aAck.offset, 0, 'a new room\'s offset is 0');
      assert.deepEqual(aAck.messages, [], 'a new room has no messages');

      const aJoined = once(a, 'member joined', WAIT_MS, memberEvent(room));
      aJoined.catch(() => {}); // awaited below; avoid an unhandled rejection if the join fails first
      const bAck = assertJoinAck(await ack(b, 'join', room), room);
      assert.equal(bAck.members.length, 2, `members after the second join: ${JSON.stringify(bAck.members)}`);
      assert.ok(bAck.members.every((m) => m.online === true), 'both members online');
      const bUser = bAck.members.find((m) => m.user !== aUser)?.user;
      assert.ok(bUser, 'the second joiner must be listed under a user of its own');
      assert.ok(bAck.members.some((m) => m.user === aUser), 'the first joiner must still be listed');

      const [ev, ...rest] = await aJoined;
      assert.equal(rest.length, 0, '"member joined" has exactly one argument');
      assert.deepEqual({ room: ev.room, user: ev.user }, { room, user: bUser });
    });

    it('join ack carries the latest messages and the room offset', opts, async (t) => {
      const room = uniqueRoom();
      const [a, b] = await connectMany(t, 2, '/');
      const { user: aUser } = await joinAlone(a, room);
      const sent = [];
      for (let i = 0; i < 3; i++) sent.push(assertSendAck(await ack(a, 'send message', room, { i })));

      const bAck = assertJoinAck(await ack(b, 'join', room), room);
      assert.equal(bAck.offset, sent[2].offset);
      assert.deepEqual(
        bAck.messages.map((m) => [m.offset, m.id, m.from, m.msg]),
        sent.map((s, i) => [s.offset, s.id, aUser, { i }]),
      );
    });

    it('members lists every member with online true', opts, async (t) => {
      const room = uniqueRoom();
      const [a, b] = await connectMany(t, 2, '/');
      const { user: aUser } = await joinAlone(a, room);
      await joinAll([b], room);

      for (const s of [a, b]) {
        const { members } = assertOk(await ack(s, 'members', room));
        assertMembers(members);
        assert.equal(members.length, 2, `members: ${JSON.stringify(members)}`);
        assert.ok(members.every((m) => m.online === true), `all online: ${JSON.stringify(members)}`);
        assert.ok(members.some((m) => m.user === aUser));
        assert.equal(new Set(members.map((m) => m.user)).size, 2, 'two sockets on "/" are two users');
      }
    });

    it('leave acks ok; others get "member left"; the leaver gets no more messages', opts, async (t) => {
      const room = uniqueRoom();
      const [a, b, c] = await connectMany(t, 3, '/');
      const { user: aUser } = await joinAlone(a, room);
      const bJoin = assertJoinAck(await ack(b, 'join', room), room);
      const bUser = bJoin.members.find((m) => m.user !== aUser)?.user;
      assert.ok(bUser, `the second joiner must be listed under a user of its own: ${JSON.stringify(bJoin.members)}`);
      await joinAll([c], room);

      const aLeft = record(a, 'member left');
      const bGot = record(b, 'receive message');
      const cGot = record(c, 'receive message');
      const left = assertOk(await ack(b, 'leave', room));
      assert.equal(left.ok, true);

      const [ev, ...rest] = await aLeft.waitFor(memberEvent(room));
      assert.equal(rest.length, 0, '"member left" has exactly one argument');
      assert.deepEqual({ room: ev.room, user: ev.user }, { room, user: bUser });

      const after = { after: 'leave', tag: randomUUID() };
      assertSendAck(await ack(a, 'send message', room, after));
      await cGot.waitFor((m) => m && m.tag === after.tag);
      await quiet();
      bGot.assertNone((m) => m && m.tag === after.tag, 'message delivered to a socket that left');

      assertError(await ack(b, 'send message', room, 'after leaving'), ['permission_denied', 'not_found']);
      const { members: now } = assertOk(await ack(a, 'members', room));
      assert.ok(!now.some((m) => m.user === bUser), `the leaver must no longer be a member: ${JSON.stringify(now)}`);
    });

    it('switch room leaves every joined room and acks like join', opts, async (t) => {
      const [r1, r2, r3] = [uniqueRoom(), uniqueRoom(), uniqueRoom()];
      const [a, b] = await connectMany(t, 2, '/');
      const { user: aUser } = await joinAlone(a, r1);
      await joinAll([a], r2);
      await joinAll([b], r1);
      await joinAll([b], r2);

      const bLeft = record(b, 'member left');
      const aGot = record(a, 'receive message');
      const sw = assertJoinAck(await ack(a, 'switch room', r3), r3);
      assert.equal(sw.offset, 0);
      assert.deepEqual(sw.messages, []);
      assert.deepEqual(sw.members.map((m) => [m.user, m.online]), [[aUser, true]]);

      await bLeft.waitFor(memberEvent(r1, aUser));
      await bLeft.waitFor(memberEvent(r2, aUser));
      await bLeft.waitFor(memberEvent('room1', aUser)); // the default room is left too

      assertSendAck(await ack(b, 'send message', r1, 'to r1'));
      assertSendAck(await ack(b, 'send message', r2, 'to r2'));
      for (const r of [r1, r2, 'room1']) {
        assertError(await ack(a, 'send message', r, 'x'), ['permission_denied', 'not_found'], `send to ${r} after switch`);
      }
      assertSendAck(await ack(a, 'send message', r3, 'to r3'));
      await quiet();
      aGot.assertNone((m, meta) => meta && (meta.room === r1 || meta.room === r2), 'message from a room left by switch room');
    });
  });

  describe('messages', () => {
    it('send message acks {ok, id, offset, ts}; others receive (msg, meta); the sender does not', opts, async (t) => {
      const room = uniqueRoom();
      const [a, b, c] = await connectMany(t, 3, '/');
      const { ack: joined, user: aUser } = await joinAlone(a, room);
      await joinAll([b, c], room);

      const aGot = record(a, 'receive message');
      const bGot = record(b, 'receive message');
      const cGot = record(c, 'receive message');
      const msg = { text: 'hi', n: 1, nested: { list: [1, 'two', null] } };
      const sent = assertSendAck(await ack(a, 'send message', room, msg));
      assert.equal(sent.offset, joined.offset + 1, 'offsets increase by one per message');

      for (const got of [bGot, cGot]) {
        const [m, meta, ...rest] = await got.waitFor(fromRoom(room));
        // A third argument, the offset string of socket.io connection state
        // recovery, follows (msg, meta); handlers written for two ignore it.
        assert.equal(rest.length, 1, '"receive message" has (msg, meta, offset)');
        assert.equal(typeof rest[0], 'string', 'the recovery offset is a string');
        assert.deepEqual(m, msg);
        assert.deepEqual(
          { room: meta.room, id: meta.id, offset: meta.offset, from: meta.from, ts: meta.ts },
          { room, id: sent.id, offset: sent.offset, from: aUser, ts: meta.ts },
        );
        assertTimestamp(meta.ts, 'meta.ts');
      }
      await quiet();
      aGot.assertNone(fromRoom(room), 'own message echoed to its sender');
    });

    it('send message keeps a client-given id', opts, async (t) => {
      const room = uniqueRoom();
      const [a, b] = await connectMany(t, 2, '/');
      await joinAlone(a, room);
      await joinAll([b], room);
      const bGot = record(b, 'receive message');
      const id = `client-${randomUUID()}`;
      const sent = assertSendAck(await ack(a, 'send message', room, 'with id', { id }));
      assert.equal(sent.id, id);
      const [, meta] = await bGot.waitFor(fromRoom(room));
      assert.equal(meta.id, id);
    });

    it('any JSON value round-trips as msg', opts, async (t) => {
      const room = uniqueRoom();
      const [a, b] = await connectMany(t, 2, '/');
      await joinAlone(a, room);
      await joinAll([b], room);
      const bGot = record(b, 'receive message');
      const values = ['text', '', 'héllo wörld 🌍', 42, -3.5, 0, true, false, null, [], [1, 'a', { b: [null] }], {}, { deep: { er: { est: [1, 2, 3] } } }];
      const offsets = [];
      for (const v of values) offsets.push(assertSendAck(await ack(a, 'send message', room, v), `send ${JSON.stringify(v)}`).offset);
      for (let i = 0; i < values.length; i++) {
        const [m] = await bGot.waitFor((mm, meta) => meta && meta.room === room && meta.offset === offsets[i]);
        assert.deepEqual(m, values[i], `value #${i}`);
      }
      const h = assertOk(await ack(a, 'history', room, { after: offsets[0] - 1, limit: values.length }));
      assert.deepEqual(h.messages.map((m) => m.msg), values);
    });

    it('a retry with the same id returns the same offset and is delivered once', opts, async (t) => {
      const room = uniqueRoom();
      const [a, b] = await connectMany(t, 2, '/');
      await joinAlone(a, room);
      await joinAll([b], room);
      const bGot = record(b, 'receive message');

      const id = `retry-${randomUUID()}`;
      const first = assertSendAck(await ack(a, 'send message', room, 'once', { id }));
      const again = assertSendAck(await ack(a, 'send message', room, 'once', { id }));
      assert.equal(again.offset, first.offset, 'the retry must return the first offset');
      assert.equal(again.id, id);
      const next = assertSendAck(await ack(a, 'send message', room, 'next'));
      assert.equal(next.offset, first.offset + 1, 'the retry must not take an offset');

      await bGot.waitFor((m, meta) => meta && meta.room === room && meta.offset === next.offset);
      await quiet();
      assert.deepEqual(
        bGot.matching(fromRoom(room)).map(([m, meta]) => [m, meta.offset]),
        [['once', first.offset], ['next', next.offset]],
        'the retried message must be delivered exactly once',
      );
      const h = assertOk(await ack(a, 'history', room, {}));
      assert.deepEqual(h.messages.map((m) => [m.msg, m.id]), [['once', id], ['next', next.id]]);
    });

    it('sending to a room not joined is refused (permission_denied or not_found)', opts, async (t) => {
      const room = uniqueRoom();
      const [a, b] = await connectMany(t, 2, '/');
      await joinAlone(a, room);
      const aGot = record(a, 'receive message');
      assertError(await ack(b, 'send message', room, 'intruder'), ['permission_denied', 'not_found'], 'existing room');
      assertError(await ack(b, 'send message', uniqueRoom('missing'), 'nobody'), ['not_found', 'permission_denied'], 'missing room');
      await quiet();
      aGot.assertNone(fromRoom(room), 'message from a socket that had not joined');
    });

    it('history: latest, before, after, limit and has_more', opts, async (t) => {
      const room = uniqueRoom();
      const a = await connect(t, '/');
      const { user } = await joinAlone(a, room);
      const sent = [];
      for (let i = 1; i <= 5; i++) sent.push(assertSendAck(await ack(a, 'send message', room, `m${i}`)));
      const o = sent.map((s) => s.offset); // o[0]..o[4]
      for (let i = 1; i < o.length; i++) assert.equal(o[i], o[i - 1] + 1);

      const page = async (q) => {
        const h = assertOk(await ack(a, 'history', room, q), `history ${JSON.stringify(q)}`);
        assertMessageList(h.messages, room, `history ${JSON.stringify(q)}`);
        assert.equal(typeof h.has_more, 'boolean', 'has_more must be a boolean');
        return [h.messages.map((m) => m.offset), h.has_more, h.messages];
      };

      const [all, allMore, msgs] = await page({});
      assert.deepEqual([all, allMore], [o, false], 'no cursor: the latest messages');
      msgs.forEach((m, i) => {
        assertMessageObject(m, room);
        assert.deepEqual([m.msg, m.id, m.from], [`m${i + 1}`, sent[i].id, user]);
      });
      assert.deepEqual(await page({ limit: 2 }).then((r) => r.slice(0, 2)), [[o[3], o[4]], true], 'latest 2');
      assert.deepEqual(await page({ before: o[2] }).then((r) => r.slice(0, 2)), [[o[0], o[1]], false], 'before');
      assert.deepEqual(await page({ before: o[4], limit: 2 }).then((r) => r.slice(0, 2)), [[o[2], o[3]], true], 'before + limit');
      assert.deepEqual(await page({ before: o[0] }).then((r) => r.slice(0, 2)), [[], false], 'before the first');
      assert.deepEqual(await page({ after: o[1] }).then((r) => r.slice(0, 2)), [[o[2], o[3], o[4]], false], 'after');
      assert.deepEqual(await page({ after: o[0], limit: 2 }).then((r) => r.slice(0, 2)), [[o[1], o[2]], true], 'after + limit');
      assert.deepEqual(await page({ after: o[4] }).then((r) => r.slice(0, 2)), [[], false], 'after the last');
    });
  });

  describe('errors and limits', () => {
    it('an unknown event is acked with unimplemented', opts, async (t) => {
      const s = await connect(t, '/');
      assertError(await ack(s, 'no such event'), 'unimplemented');
      assertError(await ack(s, 'chat message', 'room1', 'hi'), 'unimplemented');
      assertError(await ack(s, 'no such event', { with: 'args' }, 1, 2), 'unimplemented');
      assert.equal(s.connected, true);
      const room = uniqueRoom();
      assertJoinAck(await ack(s, 'join', room), room);
    });

    it('malformed arguments are acked with invalid_argument and the socket stays usable', opts, async (t) => {
      const s = await connect(t, '/');
      const room = uniqueRoom();
      const cases = [
        ['join', [123]],
        ['join', ['']],
        ['join', ['x'.repeat(1000)]],
        ['join', []],
        ['join', [null]],
        ['join', [{ room }]],
        ['leave', [42]],
        ['switch room', ['']],
        ['switch room', [7]],
        ['members', [42]],
        ['history', ['']],
        ['send message', [123, 'hi']],
        ['send message', ['', 'hi']],
      ];
      for (const [event, args] of cases) {
        assertError(await ack(s, event, ...args), 'invalid_argument', `${event} ${JSON.stringify(args).slice(0, 40)}`);
      }
      // Without an ack, a bad request must not cost the connection either.
      s.emit('join', 123);
      s.emit('send message', { not: 'a room' }, 'hi');
      assert.equal(s.connected, true);
      assertJoinAck(await ack(s, 'join', room), room);
      assertSendAck(await ack(s, 'send message', room, 'still here'));
      assert.equal(s.connected, true);
    });

    it('an oversized message is refused (resource_exhausted) and the socket stays usable', opts, async (t) => {
      const room = uniqueRoom();
      const [a, b] = await connectMany(t, 2, '/');
      const { ack: joined } = await joinAlone(a, room);
      await joinAll([b], room);
      const bGot = record(b, 'receive message');

      const big = 'x'.repeat(20000);
      assertError(await ack(a, 'send message', room, big), ['resource_exhausted', 'invalid_argument'], 'oversized send');
      assert.equal(a.connected, true, 'an oversized message must not disconnect the socket');

      const ok = assertSendAck(await ack(a, 'send message', room, 'normal'));
      assert.equal(ok.offset, joined.offset + 1, 'the refused message must not have taken an offset');
      await bGot.waitFor((m) => m === 'normal');
      bGot.assertNone((m) => m === big, 'oversized message delivered');
      assert.equal(a.connected, true);
    });

    it('a burst of 200 history events is rate limited (resource_exhausted) without disconnecting', opts, async (t) => {
      const room = uniqueRoom();
      const s = await connect(t, '/');
      await joinAlone(s, room);
      let disconnected = null;
      s.on('disconnect', (reason) => { disconnected = reason; });

      const acks = await Promise.all(
        Array.from({ length: 200 }, () => ackWithin(15_000, s, 'history', room, { limit: 1 })),
      );
      const codes = acks.map((a) => (a && a.ok === true ? 'ok' : a && a.error && a.error.code));
      const counts = codes.reduce((m, c) => ({ ...m, [c]: (m[c] || 0) + 1 }), {});
      assert.ok(counts.resource_exhausted >= 1, `expected at least one resource_exhausted, got ${JSON.stringify(counts)}`);
      assert.ok(counts.ok >= 1, `the burst allowance must let some through, got ${JSON.stringify(counts)}`);
      assert.deepEqual(Object.keys(counts).sort(), ['ok', 'resource_exhausted'], `every ack is ok or resource_exhausted: ${JSON.stringify(counts)}`);
      for (const a of acks) if (!a.ok) assertError(a, 'resource_exhausted');

      assert.equal(disconnected, null, `rate limiting must not disconnect (reason: ${disconnected})`);
      assert.equal(s.connected, true);
      // The bucket refills at 20/s: a request soon succeeds again.
      await eventually(async () => (await ack(s, 'history', room, {})).ok === true, { ms: WAIT_MS, intervalMs: 100, what: 'history ok after the burst' });
    });
  });
});
