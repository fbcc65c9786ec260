/** Media upload with progress, and history paging with the local cache, against a real server. */

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { elems, MemoryStore, type Progress } from '../src/index.js';
import { client, importMsg, rest, newUser, png, Recorder, type Server, startServer, stopClients } from './helpers.js';

let server: Server;
before(async () => {
  server = await startServer();
});
after(async () => {
  await stopClients();
  await server.stop();
});

test('an image uploads with progress and the message carries the server’s URLs', async () => {
  const [a, b] = [newUser('alice'), newUser('bob')];
  const alice = client(server, a);
  const bob = client(server, b);
  const rb = new Recorder(bob);
  await alice.login();
  await bob.login();
  await rb.until('synced', (r) => r.of('syncComplete').length === 1);

  const image = png(400, 300);
  assert.ok(image.byteLength > 64 * 1024, 'large enough for several progress steps');
  const progress: Progress[] = [];
  const up = await alice.upload('image', image, { filename: 'cat.png', onProgress: (p) => progress.push(p) });
  assert.ok(progress.length >= 2, `${progress.length} progress events`);
  assert.deepEqual(progress.at(-1), { loaded: image.byteLength, total: image.byteLength });
  assert.ok(progress.every((p, i) => i === 0 || p.loaded >= (progress[i - 1]?.loaded ?? 0)), 'progress only grows');
  assert.equal(up.ImageFormat, 3, 'PNG');
  assert.deepEqual(up.ImageInfoArray?.map((i) => i.Type), [1, 2, 3]);
  assert.deepEqual([up.ImageInfoArray?.[0]?.Width, up.ImageInfoArray?.[0]?.Height], [400, 300]);
  assert.equal(up.ImageInfoArray?.[2]?.Width, 198, 'the thumbnail is 198 px wide');

  await alice.send(b, [elems.image(up)]);
  await rb.until('image', (r) => r.of('message').length === 1);
  const elem = rb.of('message')[0]?.body[0];
  assert.equal(elem?.MsgType, 'TIMImageElem');
  if (elem?.MsgType !== 'TIMImageElem') return;
  assert.equal(elem.MsgContent.UUID, up.UUID);
  const thumb = elem.MsgContent.ImageInfoArray.find((i) => i.Type === 3);
  assert.ok(thumb?.URL.startsWith(`${server.url}/v1/media/${up.UUID}`), thumb?.URL);
  if (thumb === undefined) return;

  // The URL needs credentials; the client adds them for its own server only.
  assert.equal((await fetch(thumb.URL)).status, 401);
  const res = await fetch(bob.authorizedUrl(thumb.URL));
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('content-type'), 'image/png');
  assert.equal(bob.authorizedUrl('https://elsewhere.example/v1/media/x'), 'https://elsewhere.example/v1/media/x');

  // A file keeps its name; a refused upload rejects with the server's code.
  const fileUp = await alice.upload('file', new TextEncoder().encode('report'), { filename: 'r.txt' });
  await alice.send(b, [elems.file(fileUp)]);
  await rb.until('file', (r) => r.of('message').length === 2);
  const fileElem = rb.of('message')[1]?.body[0];
  assert.equal(fileElem?.MsgType === 'TIMFileElem' && fileElem.MsgContent.FileSize, 6);
  await assert.rejects(alice.upload('image', new TextEncoder().encode('not an image')), (e: { code: number }) => e.code === 6031);
});

test('history comes from the cache when it holds the whole page, else from the server', async () => {
  const [a, b, c] = [newUser('alice'), newUser('bob'), newUser('carol')];
  const alice = client(server, a);
  await alice.login();
  await client(server, b).login();
  await rest(server, 'im_open_login_svc/multiaccount_import', { Accounts: [c] });
  const now = Math.floor(Date.now() / 1000);
  // carol's conversation with bob is imported from an old system as history: it reaches no sync log.
  for (let i = 1; i <= 25; i++) await importMsg(server, c, b, `old${i}`, now - 1000 + i, 'history');
  for (let i = 1; i <= 25; i++) await alice.send(b, [elems.text(`h${i}`)]);

  // A new device of bob's: alice's messages come through the log, carol's only through history.
  const bob = client(server, b, { store: new MemoryStore(), device: `${b}-tablet` });
  const rb = new Recorder(bob);
  await bob.login();
  await rb.until('synced', (r) => r.of('syncComplete').length === 1);
  assert.equal(rb.texts().length, 25);
  const texts = (ms: { body: unknown[] }[]) =>
    ms.map((m) => (m.body[0] as { MsgContent: { Text: string } }).MsgContent.Text);
  const desc = (prefix: string, from: number, n: number) => Array.from({ length: n }, (_, i) => `${prefix}${from - i}`);

  // alice's 25 came through the log from conv_seq 1: the cache holds the whole conversation.
  const a1 = await bob.history(a, { count: 10 });
  assert.equal(a1.fromCache, true);
  assert.deepEqual(texts(a1.messages), desc('h', 25, 10));
  const a2 = await bob.history(a, { count: 20, before: a1.messages.at(-1)?.msgKey });
  assert.deepEqual([a2.fromCache, a2.complete], [true, true]);
  assert.deepEqual(texts(a2.messages), desc('h', 15, 15));

  // carol's: the conversation list says conv_seq 25 exists and nothing is held: the server answers,
  // and each page it answers is then answered by the cache.
  const c1 = await bob.history(c, { count: 10 });
  assert.deepEqual([c1.fromCache, c1.complete], [false, false]);
  assert.deepEqual(texts(c1.messages), desc('old', 25, 10));
  const c1again = await bob.history(c, { count: 10 });
  assert.equal(c1again.fromCache, true);
  assert.deepEqual(texts(c1again.messages), texts(c1.messages));
  const c2 = await bob.history(c, { count: 20, before: c1.messages.at(-1)?.msgKey });
  assert.deepEqual([c2.fromCache, c2.complete], [false, true]);
  assert.deepEqual(texts(c2.messages), desc('old', 15, 15));
  const c2again = await bob.history(c, { count: 20, before: c1.messages.at(-1)?.msgKey });
  assert.deepEqual([c2again.fromCache, c2again.complete], [true, true]);
  assert.deepEqual(texts(c2again.messages), texts(c2.messages));

  // A live message extends the coverage (the next conv_seq): the newest page stays local.
  await alice.send(b, [elems.text('h26')]);
  await rb.until('h26', (r) => r.texts().includes('h26'));
  const a3 = await bob.history(a, { count: 3 });
  assert.equal(a3.fromCache, true);
  assert.deepEqual(texts(a3.messages), ['h26', 'h25', 'h24']);

  // A message imported into alice's past (the next conv_seq, an old time) arrives through the log and is
  // placed by its time: the oldest of the page.
  await importMsg(server, a, b, 'imported', now - 5000);
  await rb.until('imported', (r) => r.texts().includes('imported'));
  const a4 = await bob.history(a, { count: 30 });
  assert.deepEqual([a4.fromCache, a4.complete], [true, true]);
  assert.equal(texts(a4.messages).at(-1), 'imported');
  assert.equal(a4.messages.length, 27);

  // One imported as history (no sync log) is heard of through the conversation list: pages go to the
  // server until one covers it, then the cache answers again.
  await importMsg(server, a, b, 'from the old system', now - 6000, 'history');
  await bob.conversations();
  const a5 = await bob.history(a, { count: 40 });
  assert.deepEqual([a5.fromCache, a5.complete], [false, true]);
  assert.equal(texts(a5.messages).at(-1), 'from the old system');
  const a5again = await bob.history(a, { count: 40 });
  assert.equal(a5again.fromCache, true);
  assert.deepEqual(texts(a5again.messages), texts(a5.messages));
});
