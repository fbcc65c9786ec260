// The example app in Chromium against a real server: `duet serve` (DUET_BIN) on a free port over a
// temporary data directory with a known secret key, UserSigs from `duet usersig`, and the page served from
// another origin by a small static server here, as a real app would be. Two people, alice and bob, each in
// their own browser context (Debian's Chromium, CHROMIUM, headless, through playwright-core). Screenshots
// of each step go to test-artifacts/.
//
//   npm run build && DUET_BIN=../../../target/debug/duet CHROMIUM=/usr/bin/chromium npm test
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { extname, join, normalize } from 'node:path';
import { deflateSync } from 'node:zlib';
import { chromium } from 'playwright-core';

const here = new URL('..', import.meta.url).pathname;
const artifacts = join(here, 'test-artifacts');
const DUET_BIN = process.env.DUET_BIN || join(here, '../../../target/debug/duet');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const SECRET_KEY = 'duet-tencent-c2c-example-key';
const SDKAPPID = 1400000000;
const WAIT = 15_000;

/** Starts `duet serve` on 127.0.0.1:0; resolves with its base URL once it logs its address. */
function startDuet(data) {
  const child = spawn(
    DUET_BIN,
    ['serve', '--listen', '127.0.0.1:0', '--data', data, '--secret-key', SECRET_KEY, '--no-demo'],
    { cwd: data, env: { PATH: process.env.PATH, RUST_LOG: 'info', NO_COLOR: '1' }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let log = '';
  child.stderr.on('data', (d) => (log += d));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`duet did not start: ${log}`)), 20_000);
    child.stdout.on('data', (d) => {
      log += d;
      const m = log.match(/duet is serving addr=(\S+)/);
      if (m) {
        clearTimeout(timer);
        resolve({ child, base: `http://${m[1]}` });
      }
    });
    child.on('exit', (code) => reject(new Error(`duet exited (${code}): ${log}`)));
  });
}

/** The page's own web server: index.html and dist/, on another port (another origin) than Duet. */
function startSite() {
  const types = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.map': 'application/json' };
  const server = createServer((req, res) => {
    const path = normalize(decodeURIComponent(new URL(req.url, 'http://x').pathname));
    const file = path === '/' || path === '/index.html' ? 'index.html' : path.startsWith('/dist/') ? path.slice(1) : null;
    if (!file || !existsSync(join(here, file))) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'Content-Type': types[extname(file)] ?? 'application/octet-stream' });
    res.end(readFileSync(join(here, file)));
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

function usersig(user) {
  return execFileSync(DUET_BIN, ['usersig', '--secret-key', SECRET_KEY, '--user', user], { encoding: 'utf8' }).trim();
}

/** A small valid PNG (an RGB gradient), made here so the test needs no fixture file. */
function png(width, height) {
  const crcTable = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc = (buf) => {
    let c = 0xffffffff;
    for (const b of buf) c = crcTable[(c ^ b) & 0xff] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type, data) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const body = Buffer.concat([Buffer.from(type), data]);
    const sum = Buffer.alloc(4);
    sum.writeUInt32BE(crc(body));
    return Buffer.concat([len, body, sum]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 2, 0, 0, 0], 8); // 8-bit RGB
  const rows = [];
  for (let y = 0; y < height; y++) {
    const row = Buffer.alloc(1 + width * 3);
    for (let x = 0; x < width; x++) row.set([(x * 255) / width, (y * 255) / height, 160], 1 + x * 3);
    rows.push(row);
  }
  const sig = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  return Buffer.concat([sig, chunk('IHDR', ihdr), chunk('IDAT', deflateSync(Buffer.concat(rows))), chunk('IEND', Buffer.alloc(0))]);
}

/** The message pane as data: one entry a message, in the order shown. */
const messages = (page) =>
  page.$$eval('#messages li', (items) =>
    items.map((li) => ({
      flow: li.className,
      status: li.dataset.status,
      ...(li.querySelector('.text') ? { text: li.querySelector('.text').textContent } : {}),
      ...(li.querySelector('img') ? { image: li.querySelector('img').src } : {}),
    })));

/** Waits until the message pane shows `n` messages, every one sent or received (none pending). */
const showsMessages = (page, n) =>
  page.waitForFunction(
    (n) => {
      const items = document.querySelectorAll('#messages li');
      return items.length === n && [...items].every((li) => li.dataset.status === 'success');
    },
    n, { timeout: WAIT },
  );

/** Waits until every image in the message pane has loaded (its pixels, not just its element). */
const imagesLoaded = (page) =>
  page.waitForFunction(
    () => {
      const imgs = [...document.querySelectorAll('#messages img')];
      return imgs.length > 0 && imgs.every((img) => img.complete && img.naturalWidth > 0);
    },
    null, { timeout: WAIT },
  );

describe('the Tencent C2C example on Duet, in Chromium', () => {
  let duet, site, siteURL, browser, data;
  const problems = []; // console errors and uncaught exceptions, from every page
  const sigs = {};

  before(async () => {
    assert.ok(existsSync(join(here, 'dist/app.js')), 'dist/app.js is missing: run `npm run build` first');
    mkdirSync(artifacts, { recursive: true });
    data = mkdtempSync(join(tmpdir(), 'duet-example-'));
    duet = await startDuet(data);
    site = await startSite();
    siteURL = `http://127.0.0.1:${site.address().port}`;
    for (const user of ['alice', 'bob']) sigs[user] = usersig(user);
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true });
  });

  after(async () => {
    await browser?.close();
    site?.close();
    duet?.child.kill();
    if (data) rmSync(data, { recursive: true, force: true });
  });

  /** The app's address for `user`: the settings a real app would get from its backend. */
  const appURL = (user) =>
    `${siteURL}/index.html?${new URLSearchParams({ SDKAppID: String(SDKAPPID), server: duet.base, userID: user, userSig: sigs[user] })}`;

  function watch(page) {
    page.on('console', (m) => m.type() === 'error' && problems.push(`${m.text()} (${m.location().url})`));
    page.on('pageerror', (e) => problems.push(String(e)));
  }

  /** A person: a browser context of their own, with the app open and logged in (SDK_READY). */
  async function person(user) {
    const context = await browser.newContext({ viewport: { width: 900, height: 640 } });
    const page = await context.newPage();
    watch(page);
    await page.goto(appURL(user));
    await page.waitForSelector('#status[data-state=ready]', { timeout: WAIT });
    return { context, page };
  }

  const shot = (page, name) => page.screenshot({ path: join(artifacts, `${name}.png`) });
  const conversation = (peer) => `#conversations li[data-conversation-id="C2C${peer}"]`;

  let alice, bob;

  test('alice and bob log in (the page is on another origin than the server)', async () => {
    assert.notEqual(new URL(siteURL).origin, new URL(duet.base).origin);
    alice = await person('alice');
    bob = await person('bob');
    assert.equal(await alice.page.textContent('#me'), 'alice');
    assert.equal(await alice.page.$$eval('#conversations li', (l) => l.length), 0);
    await shot(alice.page, '01-alice-logged-in');
  });

  test('alice starts a chat with bob and sends text; bob sees the conversation unread, opens and reads it', async () => {
    await alice.page.fill('#new-peer', 'bob');
    await alice.page.click('#new-chat button');
    await alice.page.waitForSelector('#chat:not([hidden])');
    assert.equal(await alice.page.textContent('#peer'), 'bob');
    await alice.page.fill('#text', 'hello bob');
    await alice.page.click('#send');
    await showsMessages(alice.page, 1);
    assert.deepEqual(await messages(alice.page), [{ flow: 'out', status: 'success', text: 'hello bob' }]);
    await shot(alice.page, '02-alice-sent');

    // CONVERSATION_LIST_UPDATED: bob's list has the conversation, unread 1, with its last message.
    await bob.page.waitForSelector(`${conversation('alice')} .unread`, { timeout: WAIT });
    assert.equal(await bob.page.textContent(`${conversation('alice')} .unread`), '1');
    assert.equal(await bob.page.textContent(`${conversation('alice')} .last`), 'hello bob');
    await shot(bob.page, '03-bob-unread');

    // getMessageList shows it; setMessageRead clears the unread count (back through the server).
    await bob.page.click(conversation('alice'));
    await showsMessages(bob.page, 1);
    assert.deepEqual(await messages(bob.page), [{ flow: 'in', status: 'success', text: 'hello bob' }]);
    await bob.page.waitForSelector(`${conversation('alice')} .unread`, { state: 'detached', timeout: WAIT });
    await shot(bob.page, '04-bob-read');
  });

  test('bob replies with text and an image from the file input; alice sees both and the image loads', async () => {
    await bob.page.fill('#text', 'hi alice, a picture:');
    await bob.page.click('#send');
    await bob.page.setInputFiles('#image-picker', { name: 'gradient.png', mimeType: 'image/png', buffer: png(320, 240) });
    await showsMessages(bob.page, 3);
    assert.equal(await bob.page.$eval('#image-picker', (input) => input.files.length), 0, 'the app clears the input');

    // MESSAGE_RECEIVED on alice's open conversation: both messages, and the image's pixels from Duet.
    await showsMessages(alice.page, 3);
    await imagesLoaded(alice.page);
    const shown = await messages(alice.page);
    assert.deepEqual(shown.map(({ flow, text }) => [flow, text]), [
      ['out', 'hello bob'], ['in', 'hi alice, a picture:'], ['in', undefined],
    ]);
    assert.equal(new URL(shown[2].image).origin, new URL(duet.base).origin, 'the image comes from the server');
    assert.equal(await alice.page.$eval('#messages img', (img) => img.naturalWidth), 320);
    // Alice has the conversation open: what came in is read, and the list shows the last message.
    await alice.page.waitForFunction(
      (item) => document.querySelector(`${item} .last`)?.textContent === '[Image]' && !document.querySelector(`${item} .unread`),
      conversation('bob'), { timeout: WAIT },
    );
    await shot(alice.page, '05-alice-got-image');
  });

  test('bob reloads: getMessageList shows the history in order', async () => {
    await bob.page.reload();
    await bob.page.waitForSelector('#status[data-state=ready]', { timeout: WAIT });
    await bob.page.waitForSelector(conversation('alice'), { timeout: WAIT });
    assert.equal(await bob.page.$(`${conversation('alice')} .unread`), null, 'read before the reload');
    assert.equal(await bob.page.textContent(`${conversation('alice')} .last`), '[Image]');
    await bob.page.click(conversation('alice'));
    await showsMessages(bob.page, 3);
    await imagesLoaded(bob.page);
    const shown = await messages(bob.page);
    assert.deepEqual(shown.map(({ flow, text, image }) => [flow, text, !!image]), [
      ['in', 'hello bob', false], ['out', 'hi alice, a picture:', false], ['out', undefined, true],
    ]);
    assert.equal(await bob.page.isHidden('#older'), true, 'the whole history fits a page');
    await shot(bob.page, '06-bob-history');
  });

  test('a longer history comes a page at a time (nextReqMessageID)', async () => {
    const more = Array.from({ length: 15 }, (_, i) => `message ${i + 1}`);
    for (const [i, text] of more.entries()) {
      await alice.page.fill('#text', text);
      await alice.page.click('#send');
      await showsMessages(alice.page, 4 + i);
    }
    await showsMessages(bob.page, 18); // live, in bob's open conversation
    await bob.page.reload();
    await bob.page.waitForSelector('#status[data-state=ready]', { timeout: WAIT });
    await bob.page.click(conversation('alice'));
    // Tencent's page is 15 messages: the newest 15, and a way to the older ones.
    await showsMessages(bob.page, 15);
    assert.deepEqual((await messages(bob.page)).map((m) => m.text), more);
    await bob.page.waitForSelector('#older:not([hidden])');
    await shot(bob.page, '07-bob-first-page');
    await bob.page.click('#older');
    await showsMessages(bob.page, 18);
    assert.deepEqual((await messages(bob.page)).map((m) => m.text), ['hello bob', 'hi alice, a picture:', undefined, ...more]);
    assert.equal(await bob.page.isHidden('#older'), true, 'isCompleted after the second page');
  });

  test('bob opens the app in a second tab: the first gets KICKED_OUT', async () => {
    const second = await bob.context.newPage(); // the same browser profile, so the same device
    watch(second);
    await second.goto(appURL('bob'));
    await second.waitForSelector('#status[data-state=ready]', { timeout: WAIT });
    await bob.page.waitForSelector('#status[data-state=kicked]', { timeout: WAIT });
    assert.match(await bob.page.textContent('#status'), /logged in on another page/);
    assert.equal(await bob.page.isDisabled('#send'), true);
    await shot(bob.page, '08-bob-kicked');
    await second.close();
  });

  test('alice logs out', async () => {
    await alice.page.click('#logout');
    await alice.page.waitForSelector('#status[data-state=logged-out]', { timeout: WAIT });
    assert.equal(await alice.page.isDisabled('#text'), true);
    await shot(alice.page, '09-alice-logged-out');
    assert.deepEqual(problems, []);
  });
});
