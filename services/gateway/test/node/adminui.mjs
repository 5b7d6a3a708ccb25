// The official socket.io Admin UI (the Vue app of npm @socket.io/admin-ui
// 0.5.1, its ui/dist) in a real browser (Debian's chromium driven by
// playwright-core), against a server speaking the Admin UI protocol on the
// namespace "/admin". Two stock socket.io-client v4 chat clients, Ann and
// Bob, connect first. The UI must then refuse a wrong password, sign in with
// the right one, list both chat sockets, show the servers, and disconnect
// Ann's socket from its details page: Ann's client must see "io server
// disconnect", Bob must stay connected, and the UI must stop listing Ann.
//
// It prints these lines, each after a "# <seconds>s" comment line, for the
// Go e2e test to read, or FAIL <why> (and exits 1) as soon as something does
// not happen in time:
//   ANN <socket id>, BOB <socket id>  both chat clients are connected
//   REFUSED                           the UI said "Invalid credentials"
//   SIGNEDIN                          the UI connected and closed its modal
//   LISTED                            the Sockets view lists both sockets
//   SERVERS <n>                       rows in the Servers view (not checked here)
//   DISCONNECTED <reason>             Ann's client's disconnect reason
//   OK                                the UI no longer lists Ann, still Bob
// Screenshots sockets.png, servers.png, refused.png and disconnected.png go
// to SCREENSHOT_DIR (failure.png too when it fails with the page open).
//
// Environment: ADMIN_URL (where the UI's static files are served, e.g.
// http://127.0.0.1:8080/admin/), SERVER_URL (the socket.io server the UI
// connects to, e.g. http://127.0.0.1:8080), ADMIN_USER, ADMIN_PASSWORD,
// GATEWAY_URL and GATEWAY_URL_2 (Ann's and Bob's socket.io servers; the
// second defaults to the first), CHAT_NAMESPACE (default "/"), JWT_SECRET
// (optional: the chat clients then send auth {token}, a JWT signed with it),
// SCREENSHOT_DIR, CHROMIUM (path).

import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { io } from 'socket.io-client';
import { signJwt } from './helpers.mjs';

for (const name of ['ADMIN_URL', 'SERVER_URL', 'ADMIN_USER', 'ADMIN_PASSWORD', 'GATEWAY_URL', 'SCREENSHOT_DIR']) {
  if (!process.env[name]) {
    console.log(`FAIL ${name} is not set`);
    process.exit(1);
  }
}
const trim = (u) => (u || '').replace(/\/+$/, '');
const adminURL = process.env.ADMIN_URL;
const serverURL = trim(process.env.SERVER_URL);
const user = process.env.ADMIN_USER;
const password = process.env.ADMIN_PASSWORD;
const annsURL = trim(process.env.GATEWAY_URL);
const bobsURL = trim(process.env.GATEWAY_URL_2) || annsURL;
const nsp = process.env.CHAT_NAMESPACE || '/';
const shots = process.env.SCREENSHOT_DIR;
mkdirSync(shots, { recursive: true });
const started = Date.now();
const step = (line) => console.log(`# ${((Date.now() - started) / 1000).toFixed(1)}s\n${line}`);
const WAIT = { timeout: 10_000 };

let browser;
let page;
const chatters = [];
const fail = async (msg) => {
  console.log(`FAIL ${msg}`);
  // What the UI showed is the quickest way to tell why it did not do it.
  if (page) await page.screenshot({ path: join(shots, 'failure.png'), timeout: 5000 }).catch(() => {});
  for (const c of chatters) c.close();
  await browser?.close();
  process.exit(1);
};
setTimeout(() => fail('timed out'), 90_000).unref();
// Anything unforeseen is a FAIL line too, not just a stack trace on stderr.
const crash = (e) => {
  console.error(e);
  return fail(e?.message?.split('\n')[0] ?? String(e));
};
process.on('uncaughtException', crash);
process.on('unhandledRejection', crash);
// A wait that must succeed, failing with what did not happen.
const must = (what, wait) => wait.catch((e) => fail(`${what} (${e.message.split('\n')[0]})`));

// Chat clients, as a stock client connects: default transports (polling,
// then the upgrade), no reconnection so that a disconnect is final.
async function chatter(name, base) {
  const auth = process.env.JWT_SECRET
    ? { token: signJwt({ sub: name, exp: Math.floor(Date.now() / 1000) + 600 }) }
    : undefined;
  const socket = io(base + nsp, { forceNew: true, reconnection: false, auth });
  chatters.push(socket);
  await new Promise((resolve) => {
    socket.once('connect', resolve);
    socket.once('connect_error', (e) => fail(`${name} could not connect to ${base}${nsp}: ${e.message}`));
  });
  return socket;
}
const ann = await chatter('ann', annsURL);
const bob = await chatter('bob', bobsURL);
const annReason = new Promise((resolve) => ann.once('disconnect', resolve));
let bobReason;
bob.once('disconnect', (reason) => { bobReason = reason; });
// Kept: a client forgets its id when disconnected.
const annID = ann.id;
const bobID = bob.id;
step(`ANN ${annID}`);
step(`BOB ${bobID}`);

browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'],
});
// A fresh context: the UI keeps the server URL and a session id in
// localStorage and would otherwise reconnect without showing its modal.
// 1280 px is Vuetify's "lg": the navigation drawer and the app bar's
// connection status show, as on a desktop.
const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
// The UI's index.html links Roboto and the Material Design icons from Google
// and jsDelivr, which this machine cannot reach; those stylesheets block the
// UI's scripts until they fail, so answer them at once with nothing.
const local = new Set([adminURL, serverURL].map((u) => new URL(u).origin));
await context.route((u) => !local.has(u.origin), (route) => route.fulfill({ status: 200, contentType: 'text/css', body: '' }));
page = await context.newPage();
// The UI is not ours: its errors explain a failure but are not one.
page.on('pageerror', (e) => console.error(`# admin UI threw: ${e.message}`));
page.on('dialog', (d) => d.accept());
await page.goto(adminURL, { waitUntil: 'domcontentloaded' });

// Views and the modal slide and fade (App.vue's transitions): wait for them
// to end, or a screenshot shows them half drawn.
async function screenshot(name) {
  await page.waitForFunction(() => !document.querySelector('[class*="-enter-active"], [class*="-leave-active"]'), null, WAIT);
  await page.screenshot({ path: join(shots, name) });
}

// The connection modal (its texts are those of the UI's locales/en.json).
async function submit(pass) {
  await page.getByLabel('Server URL', { exact: true }).fill(serverURL);
  await page.getByLabel('Username', { exact: true }).fill(user);
  await page.getByLabel('Password', { exact: true }).fill(pass);
  await page.getByRole('button', { name: 'Connect', exact: true }).click();
}
await must('no connection modal', page.getByLabel('Password', { exact: true }).waitFor(WAIT));
await submit('wrong-password');
await must('the UI did not say "Invalid credentials" for a wrong password',
  page.getByText('Invalid credentials', { exact: true }).waitFor(WAIT));
await screenshot('refused.png');
step('REFUSED');
await submit(password);
const said = page.locator('.v-dialog .red--text');
await page.getByLabel('Password', { exact: true }).waitFor({ state: 'hidden', ...WAIT })
  .catch(async () => fail(`the UI did not sign in: ${await said.innerText().catch(() => 'its modal stayed open')}`));
// The app bar's "Status: connected" chip (text-transform shows it uppercase).
await must('the app bar does not show the status "connected"',
  page.locator('header .v-chip').filter({ hasText: /^\s*connected\s*$/, visible: true }).waitFor(WAIT));
step('SIGNEDIN');

// Routes are hashes (router/index.js): setting one does not reload the page,
// which would sign in again with the session id instead of the password.
const go = (hash) => page.evaluate((h) => { location.hash = h; }, hash);
// Tables by their column headers: while the views slide, the one left still
// shows, and a socket's details page has its id in a row too (its own room).
const table = (header) => page.locator('main table', { has: page.locator('th', { hasText: header }) });
const row = (id) => table('IP address').locator('tbody tr', { hasText: id });

// The Sockets view lists the namespace picked in its selector, by default "/"
// (or the first one the UI heard of): pick the chat namespace if it is not.
await go('#/sockets/');
const selector = page.getByRole('button', { name: /^Select namespace/ });
await must('no namespace selector in the Sockets view', selector.waitFor(WAIT));
const [selected] = await selector.locator('.v-select__selection').allInnerTexts();
if (selected?.trim() !== nsp) {
  await selector.click();
  await must(`the UI knows no namespace ${nsp}`, page.getByRole('option', { name: nsp, exact: true }).click(WAIT));
}
await must(`the Sockets view did not list both ${annID} and ${bobID} within 15 s`,
  Promise.all([row(annID).waitFor({ timeout: 15_000 }), row(bobID).waitFor({ timeout: 15_000 })]));
await screenshot('sockets.png');
step('LISTED');

// The Servers view has a row per server whose server_stats the UI heard;
// give a second gateway's a moment to arrive, but the Go test judges the count.
await go('#/servers/');
const servers = table('Hostname').locator('tbody tr:not(.v-data-table__empty-wrapper)');
await must('the Servers view lists no server', servers.first().waitFor(WAIT));
const wanted = annsURL === bobsURL ? 1 : 2;
for (const until = Date.now() + 5000; await servers.count() < wanted && Date.now() < until;) {
  await page.waitForTimeout(200);
}
await screenshot('servers.png');
step(`SERVERS ${await servers.count()}`);

// Ann's details page, from her row in the Sockets view. Its "Socket" table
// (the one with a Namespace row; the "Client" table has a Status row and a
// disconnect button too) has the socket's disconnect button in its Status row,
// whose tooltip tells them apart.
await go('#/sockets/');
await must(`could not open ${annID}'s details`, row(annID).click(WAIT));
const socketTable = page.locator('main table', { has: page.locator('td', { hasText: /^Namespace$/ }) });
await must(`no details page for ${annID}`, socketTable.filter({ hasText: annID }).waitFor(WAIT));
const status = socketTable.locator('tr', { has: page.locator('td', { hasText: /^Status$/ }) });
// The UI shows it only if the server's config lists the DISCONNECT feature.
await must('no disconnect button on Ann\'s details page', status.getByRole('button').hover(WAIT));
await must('no "Disconnect this Socket instance" tooltip',
  page.getByText('Disconnect this Socket instance', { exact: true }).waitFor(WAIT));
await status.getByRole('button').click(WAIT);
const reason = await Promise.race([annReason, new Promise((r) => setTimeout(r, 10_000, null))]);
if (reason === null) await fail("Ann's client got no disconnect within 10 s of clicking the UI's disconnect");
step(`DISCONNECTED ${reason}`);
if (reason !== 'io server disconnect') await fail(`Ann's client was disconnected with "${reason}", want "io server disconnect"`);
if (bobReason !== undefined || !bob.connected) await fail(`Bob was disconnected too: ${bobReason}`);
await must('the details page does not show Ann\'s socket disconnected',
  status.getByText('disconnected', { exact: true }).waitFor(WAIT));

// The Sockets view drops Ann but not Bob.
await go('#/sockets/');
await must(`the Sockets view no longer lists Bob's ${bobID}`, row(bobID).waitFor(WAIT));
await must(`the Sockets view still lists Ann's ${annID}`, row(annID).waitFor({ state: 'detached', ...WAIT }));
if (!bob.connected) await fail(`Bob was disconnected: ${bobReason}`);
await screenshot('disconnected.png');
for (const c of chatters) c.close();
await browser.close();
step('OK');
process.exit(0);
