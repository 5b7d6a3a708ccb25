// Helpers for the gateway contract tests (see README.md).
//
// Environment:
//   GATEWAY_URL  base URL of the gateway, e.g. http://127.0.0.1:3000 (default)
//   JWT_SECRET   HS256 secret of the "/secure" namespace (needed by the /secure tests)
//   TRANSPORTS   "websocket" (default) or "polling"; a comma-separated list is passed as is
//
// Every wait here is bounded: a helper that waits for something rejects with a clear
// message when it does not happen in time. The one deliberate delay is `quiet(ms)`,
// used only to assert that something does NOT arrive.

import assert from 'node:assert/strict';
import { createHmac, randomUUID } from 'node:crypto';
import { io } from 'socket.io-client';

export const GATEWAY_URL = (process.env.GATEWAY_URL || 'http://127.0.0.1:3000').replace(/\/+$/, '');

export const TRANSPORTS = (process.env.TRANSPORTS || 'websocket')
  .split(',')
  .map((s) => s.trim())
  .filter(Boolean);
for (const tr of TRANSPORTS) {
  if (tr !== 'websocket' && tr !== 'polling') {
    throw new Error(`TRANSPORTS must be "websocket" or "polling", got ${JSON.stringify(process.env.TRANSPORTS)}`);
  }
}

/** Default bound for any single wait (event, ack, connect). */
export const WAIT_MS = 5000;
/** How long to listen when asserting that an event does NOT arrive. */
export const QUIET_MS = 300;

/** Error codes an ack may carry. */
export const ERROR_CODES = [
  'invalid_argument',
  'not_found',
  'permission_denied',
  'unauthenticated',
  'resource_exhausted',
  'unavailable',
  'unimplemented',
  'internal',
];

/** The HS256 secret of "/secure"; throws (failing the calling test) when unset. */
export function jwtSecret() {
  const s = process.env.JWT_SECRET;
  if (!s) throw new Error('JWT_SECRET must be set to the HS256 secret of the gateway\'s "/secure" namespace');
  return s;
}

/** A room name no other test (or concurrent run) uses. */
export function uniqueRoom(prefix = 'r') {
  return `${prefix}-${randomUUID().slice(0, 8)}`;
}

/** A user id (JWT sub) no other test uses. */
export function uniqueUser(prefix = 'u') {
  return `${prefix}-${randomUUID().slice(0, 8)}`;
}

const b64url = (v) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');

/** Signs `payload` as a compact HS256 JWT with `secret` (no library: node:crypto only). */
export function signJwt(payload, secret = jwtSecret()) {
  const signingInput = `${b64url({ alg: 'HS256', typ: 'JWT' })}.${b64url(payload)}`;
  const sig = createHmac('sha256', secret).update(signingInput).digest('base64url');
  return `${signingInput}.${sig}`;
}

/** An unsigned token with header alg "none" (must never be accepted). */
export function unsignedJwt(payload) {
  return `${b64url({ alg: 'none', typ: 'JWT' })}.${b64url(payload)}.`;
}

/** A valid token for user `sub`, expiring in an hour. */
export function tokenFor(sub, extra = {}) {
  const now = Math.floor(Date.now() / 1000);
  return signJwt({ sub, iat: now, exp: now + 3600, ...extra });
}

/**
 * Creates a socket for namespace `nsp` with the suite's defaults (forceNew, no
 * reconnection, TRANSPORTS) and registers its closing with `t.after`, so it is closed
 * whatever the test's outcome. Does not wait for the connection.
 */
export function makeSocket(t, nsp = '/', opts = {}) {
  const socket = io(GATEWAY_URL + nsp, {
    forceNew: true,
    reconnection: false,
    transports: TRANSPORTS,
    timeout: WAIT_MS,
    ...opts,
  });
  t.after(() => socket.close());
  return socket;
}

/** Connects to `nsp` and resolves with the socket once `connect` fired; rejects on connect_error or timeout. */
export async function connect(t, nsp = '/', opts = {}) {
  const socket = makeSocket(t, nsp, opts);
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => done(new Error(`no "connect" on ${nsp} within ${WAIT_MS} ms`)), WAIT_MS);
    function onConnect() {
      done();
    }
    function onError(err) {
      const data = err && err.data !== undefined ? ` data=${JSON.stringify(err.data)}` : '';
      done(new Error(`connect_error on ${GATEWAY_URL}${nsp} (${TRANSPORTS.join(',')}): ${err && err.message}${data}`));
    }
    function done(err) {
      clearTimeout(timer);
      socket.off('connect', onConnect);
      socket.off('connect_error', onError);
      if (err) {
        socket.close();
        reject(err);
      } else {
        resolve();
      }
    }
    socket.on('connect', onConnect);
    socket.on('connect_error', onError);
  });
  return socket;
}

/** Connects `n` sockets to `nsp` in parallel. */
export function connectMany(t, n, nsp = '/', opts = {}) {
  return Promise.all(Array.from({ length: n }, () => connect(t, nsp, opts)));
}

/** Expects the connection to `nsp` to be refused; resolves with the connect_error Error. */
export async function connectError(t, nsp = '/', opts = {}) {
  const socket = makeSocket(t, nsp, opts);
  try {
    return await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`neither connect nor connect_error on ${nsp} within ${WAIT_MS} ms`)), WAIT_MS);
      socket.once('connect', () => {
        clearTimeout(timer);
        reject(new Error(`connection to ${nsp} was accepted but should have been refused`));
      });
      socket.once('connect_error', (err) => {
        clearTimeout(timer);
        resolve(err);
      });
    });
  } finally {
    socket.close();
  }
}

/**
 * Resolves with the arguments (an array) of the next `event` on `socket` for which
 * `predicate(...args)` is true; rejects after `ms`.
 */
export function once(socket, event, ms = WAIT_MS, predicate = () => true) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.off(event, listener);
      reject(new Error(`no matching "${event}" within ${ms} ms`));
    }, ms);
    function listener(...args) {
      if (!predicate(...args)) return;
      clearTimeout(timer);
      socket.off(event, listener);
      resolve(args);
    }
    socket.on(event, listener);
  });
}

/** Resolves after `ms` (default QUIET_MS). Only for asserting that something does NOT arrive. */
export function quiet(ms = QUIET_MS) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Records every `event` on `socket` from now on (arguments arrays in `events`), so a
 * test can check what arrived, or wait for something that may already have arrived.
 */
export function record(socket, event) {
  const events = [];
  const waiters = new Set();
  const listener = (...args) => {
    events.push(args);
    for (const w of waiters) {
      if (w.predicate(...args)) w.resolve(args);
    }
  };
  socket.on(event, listener);
  return {
    events,
    /** Recorded argument arrays matching `predicate`. */
    matching(predicate = () => true) {
      return events.filter((args) => predicate(...args));
    },
    /** Resolves with the first matching arguments (already recorded or not); rejects after `ms`. */
    waitFor(predicate = () => true, ms = WAIT_MS) {
      const found = events.find((args) => predicate(...args));
      if (found) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const w = {
          predicate,
          resolve: (args) => {
            clearTimeout(timer);
            waiters.delete(w);
            resolve(args);
          },
        };
        const timer = setTimeout(() => {
          waiters.delete(w);
          reject(new Error(`no matching "${event}" within ${ms} ms (recorded: ${JSON.stringify(events).slice(0, 500)})`));
        }, ms);
        waiters.add(w);
      });
    },
    /** Asserts nothing matching `predicate` was recorded. */
    assertNone(predicate = () => true, what = `"${event}"`) {
      const got = events.filter((args) => predicate(...args));
      assert.equal(got.length, 0, `unexpected ${what}: ${JSON.stringify(got).slice(0, 500)}`);
    },
    stop() {
      socket.off(event, listener);
    },
  };
}

/** Emits `event` with `args` and an ack callback; resolves with the ack's first argument. */
export async function ack(socket, event, ...args) {
  return ackWithin(WAIT_MS, socket, event, ...args);
}

/** As `ack`, with an explicit bound. */
export async function ackWithin(ms, socket, event, ...args) {
  try {
    return await socket.timeout(ms).emitWithAck(event, ...args);
  } catch (err) {
    throw new Error(`no ack for "${event}" ${JSON.stringify(args).slice(0, 200)} within ${ms} ms (${err.message})`);
  }
}

/** Asserts an ack is `{ok: true, ...}` and returns it. */
export function assertOk(a, what = 'ack') {
  assert.ok(a && typeof a === 'object', `${what}: expected an object, got ${JSON.stringify(a)}`);
  assert.equal(a.ok, true, `${what}: expected ok:true, got ${JSON.stringify(a).slice(0, 500)}`);
  return a;
}

/** Asserts an ack is `{ok: false, error: {code, message}}` with code in `codes`; returns the error. */
export function assertError(a, codes, what = 'ack') {
  const allowed = Array.isArray(codes) ? codes : [codes];
  assert.ok(a && typeof a === 'object', `${what}: expected an object, got ${JSON.stringify(a)}`);
  assert.equal(a.ok, false, `${what}: expected ok:false, got ${JSON.stringify(a).slice(0, 500)}`);
  assert.ok(a.error && typeof a.error === 'object', `${what}: expected an error object, got ${JSON.stringify(a)}`);
  assert.ok(ERROR_CODES.includes(a.error.code), `${what}: error.code ${JSON.stringify(a.error.code)} is not one of the contract's codes`);
  assert.ok(allowed.includes(a.error.code), `${what}: expected error.code in ${JSON.stringify(allowed)}, got ${JSON.stringify(a.error)}`);
  assert.equal(typeof a.error.message, 'string', `${what}: error.message must be a string, got ${JSON.stringify(a.error)}`);
  return a.error;
}

/** Asserts `ts` looks like epoch milliseconds of about now. */
export function assertTimestamp(ts, what = 'ts') {
  assert.equal(typeof ts, 'number', `${what} must be a number, got ${JSON.stringify(ts)}`);
  assert.ok(Number.isFinite(ts), `${what} must be finite`);
  // Milliseconds, not seconds: within 5 minutes of the test's clock (same machine).
  assert.ok(Math.abs(ts - Date.now()) < 5 * 60 * 1000, `${what}=${ts} is not epoch milliseconds near now (${Date.now()})`);
}

/** Asserts `o` is a room offset (non-negative integer). */
export function assertOffset(o, what = 'offset') {
  assert.equal(typeof o, 'number', `${what} must be a number, got ${JSON.stringify(o)}`);
  assert.ok(Number.isInteger(o) && o >= 0, `${what} must be a non-negative integer, got ${o}`);
}

/** Asserts a stored message object {msg, room, id, offset, from, ts}. */
export function assertMessageObject(m, room, what = 'message') {
  assert.ok(m && typeof m === 'object', `${what}: expected an object, got ${JSON.stringify(m)}`);
  for (const k of ['msg', 'room', 'id', 'offset', 'from', 'ts']) {
    assert.ok(k in m, `${what}: missing field ${k} in ${JSON.stringify(m)}`);
  }
  assert.equal(m.room, room, `${what}.room`);
  assert.equal(typeof m.id, 'string', `${what}.id must be a string`);
  assert.ok(m.id.length > 0, `${what}.id must not be empty`);
  assertOffset(m.offset, `${what}.offset`);
  assert.ok(m.offset >= 1, `${what}.offset must be >= 1`);
  assert.equal(typeof m.from, 'string', `${what}.from must be a string`);
  assert.ok(m.from.length > 0, `${what}.from must not be empty`);
  assertTimestamp(m.ts, `${what}.ts`);
}

/** Asserts an array of message objects of `room` in strictly ascending offset order. */
export function assertMessageList(list, room, what = 'messages') {
  assert.ok(Array.isArray(list), `${what} must be an array, got ${JSON.stringify(list)}`);
  list.forEach((m, i) => assertMessageObject(m, room, `${what}[${i}]`));
  for (let i = 1; i < list.length; i++) {
    assert.ok(list[i].offset > list[i - 1].offset, `${what} not in ascending offset order: ${list.map((m) => m.offset)}`);
  }
}

/** Asserts a members array of {user, online}; returns it. */
export function assertMembers(members, what = 'members') {
  assert.ok(Array.isArray(members), `${what} must be an array, got ${JSON.stringify(members)}`);
  members.forEach((m, i) => {
    assert.ok(m && typeof m === 'object', `${what}[${i}] must be an object`);
    assert.equal(typeof m.user, 'string', `${what}[${i}].user must be a string`);
    assert.ok(m.user.length > 0, `${what}[${i}].user must not be empty`);
    assert.equal(typeof m.online, 'boolean', `${what}[${i}].online must be a boolean`);
  });
  return members;
}

/** Asserts a join (or switch room) ack for `room`; returns it. */
export function assertJoinAck(a, room, what = 'join ack') {
  assertOk(a, what);
  assert.equal(a.room, room, `${what}.room`);
  assertOffset(a.offset, `${what}.offset`);
  assertMessageList(a.messages, room, `${what}.messages`);
  if (a.messages.length > 0) {
    assert.equal(a.messages.at(-1).offset, a.offset, `${what}: last message's offset must equal the room offset`);
  }
  assertMembers(a.members, `${what}.members`);
  return a;
}

/** Asserts `ack` is a valid send message ack; returns it. */
export function assertSendAck(a, what = 'send ack') {
  assertOk(a, what);
  assert.equal(typeof a.id, 'string', `${what}.id must be a string`);
  assert.ok(a.id.length > 0, `${what}.id must not be empty`);
  assertOffset(a.offset, `${what}.offset`);
  assert.ok(a.offset >= 1, `${what}.offset must be >= 1`);
  assertTimestamp(a.ts, `${what}.ts`);
  return a;
}

/**
 * Joins `room` on an already connected socket (the socket is alone in the room), and
 * returns {ack, user}: the ack and the user id the gateway gave this socket, read from
 * the members list.
 */
export async function joinAlone(socket, room) {
  const a = assertJoinAck(await ack(socket, 'join', room), room);
  assert.equal(a.members.length, 1, `a fresh room must list just its one member, got ${JSON.stringify(a.members)}`);
  assert.equal(a.members[0].online, true, 'the joining socket\'s user must be online');
  return { ack: a, user: a.members[0].user };
}

/**
 * Retries `fn` until it returns a truthy value, at most `ms` in all, pausing
 * `intervalMs` between tries (for a limiter to refill). Rejects with the last error.
 */
export async function eventually(fn, { ms = WAIT_MS, intervalMs = 100, what = 'condition' } = {}) {
  const deadline = Date.now() + ms;
  let last;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
      last = new Error(`${what} not met`);
    } catch (err) {
      last = err;
    }
    if (Date.now() + intervalMs > deadline) break;
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  throw new Error(`${what} not met within ${ms} ms: ${last && last.message}`);
}
