// Browser tests of the demo page: a real `duet serve --demo` (DUET_BIN, default
// target/debug/duet) on a free port over a temporary data directory, driven by Debian's
// Chromium (headless, through playwright-core: no browser download). Screenshots of each step go to
// test-artifacts/.
//
//   npm test                                  # from web/demo, after `cargo build` and `npm run build`
//   DUET_BIN=target/release/duet CHROMIUM=/usr/bin/chromium npm test
//
// The binary serves the page it embedded when it was compiled. DUET_DEMO_DIST=1 (or a directory) puts a
// small proxy in front of it that serves the page's files from web/demo/dist (or that directory) instead,
// with the server's own headers (its CSP), and passes everything else through (the UserSig request, the
// WebSocket): it tests a freshly built page with a binary built before it.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, request } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deflateSync } from 'node:zlib';
import { chromium } from 'playwright-core';

const here = new URL('..', import.meta.url).pathname;
const artifacts = join(here, 'test-artifacts');
const DUET_BIN = process.env.DUET_BIN || join(here, '../../target/debug/duet');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const WAIT = 15_000;
const DEMO_DIST = process.env.DUET_DEMO_DIST
  ? (process.env.DUET_DEMO_DIST === '1' ? join(here, 'dist') : process.env.DUET_DEMO_DIST)
  : null;


/** Starts `duet serve --demo` on 127.0.0.1:0; resolves with its base URL once it logs its address. */
function startServer(data) {
  const child = spawn(DUET_BIN, ['serve', '--demo', '--listen', '127.0.0.1:0', '--data', data], {
    cwd: data,
    env: { PATH: process.env.PATH, RUST_LOG: 'info', NO_COLOR: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`duet did not start: ${stderr}`)), 20_000);
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/addr=(\S+)/);
      if (m) {
        clearTimeout(timer);
        resolve({ child, base: `http://${m[1]}`, stderr: () => stderr });
      }
    });
    child.on('exit', (code) => reject(new Error(`duet exited (${code}): ${stderr}`)));
  });
}

/** The page's files as the server names them, and which file of dist/ each is. */
const PAGE_FILES = { '/demo': 'index.html', '/demo/': 'index.html', '/demo/index.html': 'index.html', '/demo/app.js': 'app.js', '/demo/app.css': 'app.css' };

/**
 * A proxy in front of the server at `upstream` (`http://host:port`) that answers the page's files from
 * `dist` with the server's headers for them, and passes every other request and the WebSocket upgrade
 * through. Resolves with its base URL and a `close`.
 */
function distProxy(upstream, dist) {
  const target = new URL(upstream);
  const proxy = createServer((req, res) => {
    const file = req.method === 'GET' ? PAGE_FILES[req.url.split('?')[0]] : undefined;
    const up = request({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers }, (upRes) => {
      if (file && upRes.statusCode === 200) {
        upRes.resume();
        const body = readFileSync(join(dist, file));
        const headers = { ...upRes.headers, 'content-length': String(body.length) };
        delete headers['transfer-encoding'];
        delete headers.etag;
        res.writeHead(200, headers);
        res.end(body);
        return;
      }
      res.writeHead(upRes.statusCode, upRes.headers);
      upRes.pipe(res);
    });
    up.on('error', (e) => res.destroy(e));
    req.pipe(up);
  });
  proxy.on('upgrade', (req, socket, head) => {
    const up = connect(Number(target.port), target.hostname, () => {
      const lines = [`${req.method} ${req.url} HTTP/${req.httpVersion}`];
      for (let i = 0; i < req.rawHeaders.length; i += 2) lines.push(`${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}`);
      up.write(`${lines.join('\r\n')}\r\n\r\n`);
      if (head?.length) up.write(head);
      up.pipe(socket);
      socket.pipe(up);
    });
    const end = () => {
      up.destroy();
      socket.destroy();
    };
    up.on('error', end);
    socket.on('error', end);
  });
  return new Promise((resolve) => {
    proxy.listen(0, '127.0.0.1', () => {
      resolve({
        base: `http://127.0.0.1:${proxy.address().port}`,
        close: () => {
          proxy.closeAllConnections?.();
          proxy.close();
        },
      });
    });
  });
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

describe('the demo page in Chromium', () => {
  let server, browser, data, proxy;
  const problems = []; // console errors and CSP violations, from every page

  before(async () => {
    mkdirSync(artifacts, { recursive: true });
    data = mkdtempSync(join(tmpdir(), 'duet-demo-'));
    server = await startServer(data);
    if (DEMO_DIST) {
      proxy = await distProxy(server.base, DEMO_DIST);
      server = { ...server, base: proxy.base };
    }
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true });
  });

  after(async () => {
    await browser?.close();
    proxy?.close();
    server?.child.kill();
    if (data) rmSync(data, { recursive: true, force: true });
  });

  /** A new browser context (a person) with a phone- or desktop-sized page. */
  async function person(viewport = { width: 1000, height: 700 }) {
    const context = await browser.newContext({ viewport });
    const page = await context.newPage();
    page.on('console', (m) => m.type() === 'error' && problems.push(m.text()));
    page.on('pageerror', (e) => problems.push(String(e)));
    return { context, page };
  }

  async function logIn(page, user, nick) {
    await page.goto(`${server.base}/demo`);
    await page.fill('#login-user', user);
    if (nick) await page.fill('#login-nick', nick);
    await page.click('#login-button');
    await page.waitForSelector('#app:not([hidden])', { timeout: WAIT });
  }

  const shot = (page, name) => page.screenshot({ path: join(artifacts, `${name}.png`) });
  const texts = (page) => page.$$eval('#messages .msg .text', (els) => els.map((e) => e.textContent));

  test('the server says demo mode is on and where', () => {
    assert.match(server.stderr(), /duet: demo on: http:\/\/127\.0\.0\.1:\d+\/demo — anyone who can reach this server/);
  });

  test('the login page says that demo mode hands out UserSigs, on a phone-sized screen too', async () => {
    const { context, page } = await person({ width: 375, height: 667 });
    await page.goto(`${server.base}/demo`);
    await page.waitForSelector('#login:not([hidden])');
    const warning = await page.textContent('[data-testid=demo-warning]');
    assert.match(warning, /hands a UserSig/);
    assert.ok(await page.isVisible('#login-user'));
    await shot(page, '01-login-phone');
    // Asking the server for a UserSig from the page, under its CSP, works.
    const answer = await page.evaluate(async () => {
      const r = await fetch('/demo/usersig', { method: 'POST', body: JSON.stringify({ userID: 'carol' }) });
      return r.json();
    });
    assert.equal(answer.userID, 'carol');
    assert.ok(answer.userSig.length > 20);
    await context.close();
    assert.deepEqual(problems, []);
  });

  describe('two people chat', () => {
    let alice, bob;

    before(async () => {
      alice = await person();
      bob = await person({ width: 390, height: 760 });
    });
    after(async () => {
      await alice?.context.close();
      await bob?.context.close();
    });

    test('both log in', async () => {
      await logIn(alice.page, 'alice', 'Alice');
      await logIn(bob.page, 'bob', 'Bob');
      await shot(alice.page, '10-alice-logged-in');
      await shot(bob.page, '11-bob-logged-in');
    });

    test('alice sends text; bob sees an unread badge, opens the conversation and reads it', async () => {
      await alice.page.fill('#new-peer', 'bob');
      await alice.page.click('#new-chat button');
      await alice.page.fill('#text', 'hello bob');
      await alice.page.click('#send');
      await bob.page.waitForSelector('[data-peer=alice] [data-testid=unread]', { timeout: WAIT });
      await shot(bob.page, '12-bob-unread');
      await bob.page.click('[data-peer=alice]');
      await bob.page.waitForSelector('#messages .msg.in .text', { timeout: WAIT });
      assert.deepEqual(await texts(bob.page), ['hello bob']);
      await shot(bob.page, '13-bob-reads');
      // Reading clears bob's badge (his read mark reached the server and came back in the conversation list),
      // and alice's message gets its read tick (the read receipt: MESSAGE_READ_BY_PEER).
      await bob.page.waitForSelector('[data-peer=alice] [data-testid=unread]', { state: 'detached', timeout: WAIT });
      const tick = await alice.page.waitForSelector('#messages .msg.out [data-testid=state].read', { timeout: WAIT });
      assert.match(await tick.textContent(), /Read/);
      await shot(alice.page, '14-alice-sent-and-read');
    });

    test('bob sends an image; alice sees the thumbnail and opens the full size', async () => {
      await bob.page.setInputFiles('#image-input', { name: 'gradient.png', mimeType: 'image/png', buffer: png(640, 480) });
      const img = await alice.page.waitForSelector('#messages .msg.in img[data-testid=image]', { timeout: WAIT });
      await alice.page.waitForFunction((el) => el.complete && el.naturalWidth > 0, img, { timeout: WAIT });
      await shot(alice.page, '15-alice-image-thumbnail');
      await img.click();
      await alice.page.waitForSelector('#viewer:not([hidden])');
      await alice.page.waitForFunction(() => document.querySelector('#viewer-img').naturalWidth >= 640, null, { timeout: WAIT });
      await shot(alice.page, '16-alice-image-full');
      await alice.page.click('#viewer');
    });

    test('bob goes offline, gets messages while away, comes back and sees them in order', async () => {
      await bob.context.setOffline(true);
      await bob.page.waitForSelector('#net:not([hidden])', { timeout: WAIT });
      await shot(bob.page, '17-bob-offline');
      for (const k of [1, 2, 3]) {
        await alice.page.fill('#text', `while you were away ${k}`);
        await alice.page.click('#send');
        await alice.page.waitForSelector(`#messages .msg.out:last-child [data-testid=state]:not(:has-text("…"))`, { timeout: WAIT });
      }
      await bob.context.setOffline(false);
      await bob.page.waitForFunction(() => document.querySelectorAll('#messages .msg.in .text').length >= 4, null, { timeout: 30_000 });
      await bob.page.waitForSelector('#net', { state: 'hidden', timeout: 30_000 });
      const inbound = await bob.page.$$eval('#messages .msg.in .text', (els) => els.map((e) => e.textContent));
      assert.deepEqual(inbound, ['hello bob', 'while you were away 1', 'while you were away 2', 'while you were away 3']);
      await shot(bob.page, '18-bob-back-online');
    });

    test('a reload keeps the history', async () => {
      await bob.page.reload();
      await bob.page.waitForSelector('#app:not([hidden])', { timeout: WAIT });
      await bob.page.waitForFunction(() => document.querySelectorAll('#messages .msg.in .text').length >= 4, null, { timeout: WAIT });
      const inbound = await bob.page.$$eval('#messages .msg.in .text', (els) => els.map((e) => e.textContent));
      assert.deepEqual(inbound, ['hello bob', 'while you were away 1', 'while you were away 2', 'while you were away 3']);
      assert.equal(await bob.page.$$eval('#messages .msg.out img[data-testid=image]', (els) => els.length), 1);
      await shot(bob.page, '19-bob-after-reload');
      assert.deepEqual(problems, []);
    });

    test('alice recalls a message: both see "Message recalled", and so does a reload', async () => {
      const recalledTexts = (page) => page.$$eval('#messages [data-testid=recalled]', (els) => els.map((e) => e.textContent));
      await alice.page.fill('#text', 'take this back');
      await alice.page.click('#send');
      await bob.page.waitForFunction(
        () => [...document.querySelectorAll('#messages .msg.in .text')].some((e) => e.textContent === 'take this back'),
        null, { timeout: WAIT });
      // Bob has the conversation open: he reads it, and alice sees her message read.
      const last = '#messages .msg.out:last-child';
      await alice.page.waitForSelector(`${last} [data-testid=state].read`, { timeout: WAIT });
      await shot(alice.page, '20-alice-read-tick');
      // Only one's own messages can be recalled.
      assert.equal(await bob.page.$$eval('#messages .msg.in [data-testid=recall]', (els) => els.length), 0);
      await alice.page.click(`${last} [data-testid=recall]`);
      await alice.page.waitForSelector(`${last} [data-testid=recalled]`, { timeout: WAIT });
      await bob.page.waitForSelector('#messages .msg.in [data-testid=recalled]', { timeout: WAIT });
      assert.deepEqual(await recalledTexts(alice.page), ['Message recalled']);
      assert.deepEqual(await recalledTexts(bob.page), ['Message recalled']);
      assert.ok(!(await texts(bob.page)).includes('take this back'), 'its text is gone from bob’s page');
      assert.equal(await alice.page.$$eval(`${last} [data-testid=recall]`, (els) => els.length), 0);
      await shot(alice.page, '21-alice-recalled');
      await shot(bob.page, '22-bob-sees-recalled');

      for (const p of [alice.page, bob.page]) {
        await p.reload();
        await p.waitForSelector('#messages [data-testid=recalled]', { timeout: WAIT });
        assert.deepEqual(await recalledTexts(p), ['Message recalled']);
      }
      assert.ok(!(await texts(bob.page)).includes('take this back'));
      // Alice's read ticks are still there after her reload (from the conversation's read time).
      await alice.page.waitForSelector('#messages .msg.out [data-testid=state].read', { timeout: WAIT });
      await shot(alice.page, '23-alice-after-reload');
      assert.deepEqual(problems, []);
    });

    test('alice edits a message: both see the new text and "(edited)"; bob deletes it from his view only', async () => {
      const hasText = (t) => [...document.querySelectorAll('#messages .msg .text')].some((e) => e.textContent === t);
      await alice.page.fill('#text', 'see you at 5');
      await alice.page.click('#send');
      await bob.page.waitForFunction(hasText, 'see you at 5', { timeout: WAIT });
      const last = '#messages .msg.out:last-child';
      await alice.page.waitForSelector(`${last} [data-testid=state]:not(:has-text("…"))`, { timeout: WAIT });
      // Only one's own text can be edited.
      assert.equal(await bob.page.$$eval('#messages .msg.in [data-testid=edit]', (els) => els.length), 0);
      alice.page.once('dialog', (d) => d.accept('see you at 6'));
      await alice.page.click(`${last} [data-testid=edit]`);
      await alice.page.waitForSelector(`${last} [data-testid=edited]`, { timeout: WAIT });
      await bob.page.waitForFunction(hasText, 'see you at 6', { timeout: WAIT });
      const edited = '#messages .msg.in:last-child';
      assert.equal(await bob.page.textContent(`${edited} .text`), 'see you at 6');
      assert.match(await bob.page.textContent(`${edited} [data-testid=edited]`), /edited/);
      assert.equal(await alice.page.textContent(`${last} .text`), 'see you at 6');
      assert.ok(!(await texts(bob.page)).includes('see you at 5'));
      // The conversation list shows the new text too.
      await bob.page.waitForFunction(() => document.querySelector('[data-peer] .last')?.textContent === 'see you at 6', null, { timeout: WAIT });
      await shot(alice.page, '24-alice-edited');
      await shot(bob.page, '25-bob-sees-edited');

      // Bob deletes it: gone from his view (and his conversation list's last message); alice keeps it.
      bob.page.once('dialog', (d) => d.accept());
      await bob.page.click(`${edited} [data-testid=delete]`);
      await bob.page.waitForFunction((t) => ![...document.querySelectorAll('#messages .msg .text')].some((e) => e.textContent === t), 'see you at 6', { timeout: WAIT });
      await bob.page.waitForFunction(() => document.querySelector('[data-peer] .last')?.textContent !== 'see you at 6', null, { timeout: WAIT });
      assert.ok(await alice.page.evaluate(hasText, 'see you at 6'));
      await shot(bob.page, '26-bob-deleted');

      // Reloads keep both: bob's view without it, alice's with the edit.
      for (const p of [alice.page, bob.page]) {
        await p.reload();
        await p.waitForSelector('#messages [data-testid=recalled]', { timeout: WAIT });
      }
      await alice.page.waitForFunction(hasText, 'see you at 6', { timeout: WAIT });
      assert.equal(await alice.page.$$eval('#messages [data-testid=edited]', (els) => els.length), 1);
      assert.ok(!(await texts(bob.page)).includes('see you at 6'));
      assert.ok((await texts(bob.page)).includes('hello bob'), 'the rest of bob’s history is there');
      // What each browser's IndexedDB keeps: alice's copy edited (version 1), none in bob's.
      const stored = (page, user) => page.evaluate((u) => new Promise((resolve, reject) => {
        const open = indexedDB.open(`duet:${location.origin}:${u}`);
        open.onerror = () => reject(open.error);
        open.onsuccess = () => {
          const all = open.result.transaction('messages').objectStore('messages').getAll();
          all.onsuccess = () => {
            resolve(all.result.map((r) => [r.message.body.map((e) => e.MsgContent.Text ?? '').join(''), r.message.version ?? 0]));
            open.result.close();
          };
          all.onerror = () => reject(all.error);
        };
      }), user);
      assert.deepEqual((await stored(alice.page, 'alice')).filter(([t]) => t.startsWith('see you')), [['see you at 6', 1]]);
      assert.deepEqual((await stored(bob.page, 'bob')).filter(([t]) => t.startsWith('see you')), []);
      assert.ok((await stored(bob.page, 'bob')).some(([t]) => t === 'hello bob'));
      await shot(bob.page, '27-bob-after-reload');
      assert.deepEqual(problems, []);
    });
  });
});
