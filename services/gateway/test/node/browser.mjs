// The chat page in a real browser (Debian's chromium driven by
// playwright-core), run by the gateway's Go e2e test TestChatPageInBrowser:
// people chat, a late joiner gets history and scrolls back, presence
// updates, and a page whose gateway restarts shows that it is offline and
// then every message sent meanwhile, once. Screenshots of each state go to
// SCREENSHOT_DIR. The test restarts the gateway when this prints RESTART and
// answers on stdin once the messages are published and the gateway is back.
//
// With GATEWAY_URL_2, Bob's page is on that second gateway and the others'
// on the first (run by TestChatPageAcrossGatewaysOnRedis): what they say to
// each other crosses gateways and rooms replicas.
//
// Environment: GATEWAY_URL, GATEWAY_URL_2 (optional), JWT_SECRET,
// SCREENSHOT_DIR, CHROMIUM (path).

import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { chromium } from 'playwright-core';
import { io } from 'socket.io-client';
import { signJwt } from './helpers.mjs';

const url = process.env.GATEWAY_URL;
const bobsURL = process.env.GATEWAY_URL_2 || url;
const shots = process.env.SCREENSHOT_DIR;
mkdirSync(shots, { recursive: true });
const stdin = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
const started = Date.now();
const step = (line) => console.log(`# ${((Date.now() - started) / 1000).toFixed(1)}s\n${line}`);
const WAIT = { timeout: 10_000 };

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'],
});
const fail = async (msg) => {
  console.log(`FAIL ${msg}`);
  await browser.close();
  process.exit(1);
};
setTimeout(() => fail('timed out'), 120_000).unref();

async function signIn(name, shot, at = url) {
  const page = await (await browser.newContext({ viewport: { width: 1100, height: 650 } })).newPage();
  page.on('pageerror', (e) => fail(`${name}'s page threw: ${e.message}`));
  await page.goto(at + '/');
  await page.fill('#name', name);
  if (shot) await page.screenshot({ path: join(shots, shot) });
  await page.click('#signin-form button[type=submit]');
  await page.waitForSelector("#room-title:has-text('# general')", WAIT);
  return page;
}

const message = (page, text) => page.locator('#message-list li:not(.notice)', { hasText: text });
async function send(page, text) {
  await page.fill('#text', text);
  await page.press('#text', 'Enter');
  await message(page, text).waitFor(WAIT);
}
async function expectOnce(page, text) {
  await message(page, text).first().waitFor(WAIT);
  const n = await message(page, text).count();
  if (n !== 1) await fail(`"${text}" shown ${n} times`);
}
async function expectOnline(page, user) {
  await page.locator('#member-list li.online', { hasText: user }).waitFor(WAIT);
}

// Two people chat.
const ann = await signIn('Ann', 'signin.png');
const bob = await signIn('Bob', undefined, bobsURL);
await send(ann, 'Hello from Ann');
await expectOnce(bob, 'Hello from Ann');
await send(bob, 'Hi Ann, Bob here');
await expectOnce(ann, 'Hi Ann, Bob here');
await expectOnline(ann, 'Bob');
await ann.screenshot({ path: join(shots, 'chat.png') });
step('CHATTED');

// Presence: a newcomer shows up, with a notice, in the others' member lists.
const carol = await signIn('Carol');
await ann.locator('#message-list li.notice', { hasText: 'Carol joined' }).waitFor(WAIT);
await expectOnline(ann, 'Carol');
await expectOnline(carol, 'Ann');
await ann.screenshot({ path: join(shots, 'presence.png') });
step('PRESENCE');

// A late joiner sees the latest history, and older messages on request.
const zed = io(url + '/chat', {
  forceNew: true, transports: ['websocket'],
  auth: { token: signJwt({ sub: 'Zed', exp: Math.floor(Date.now() / 1000) + 600 }) },
});
await new Promise((resolve) => zed.once('connect', resolve));
await zed.timeout(5000).emitWithAck('join', 'general');
for (let i = 1; i <= 55; i++) {
  let ack;
  do {
    ack = await zed.timeout(5000).emitWithAck('send message', 'general', { text: `filler ${String(i).padStart(3, '0')}` });
    if (!ack.ok) await new Promise((r) => setTimeout(r, 100));
  } while (!ack.ok && ack.error.code === 'resource_exhausted');
  if (!ack.ok) await fail(`filler ${i}: ${JSON.stringify(ack)}`);
}
zed.close();
const dave = await signIn('Dave');
await expectOnce(dave, 'filler 055');
if (await message(dave, 'Hello from Ann').count() !== 0) await fail('the join showed more than the latest page of history');
await dave.click('#older');
await expectOnce(dave, 'Hello from Ann');
await expectOnce(dave, 'filler 001');
await dave.screenshot({ path: join(shots, 'history.png') });
step('HISTORY');

// The gateway restarts: pages go offline, then recover what was sent meanwhile.
step('RESTART');
await ann.locator('#banner').waitFor({ state: 'visible', ...WAIT });
await ann.screenshot({ path: join(shots, 'offline.png') });
step('OFFLINE');
await stdin.next(); // messages were published and the gateway is back
await ann.locator('#banner').waitFor({ state: 'hidden', timeout: 20_000 });
for (const text of ['sent while you were away 1', 'sent while you were away 2', 'sent while you were away 3']) {
  await expectOnce(ann, text);
  await expectOnce(bob, text);
}
await send(bob, 'back online');
await expectOnce(ann, 'back online');
await ann.screenshot({ path: join(shots, 'recovered.png') });
step('RECOVERED');
await browser.close();
step('DONE');
process.exit(0);
