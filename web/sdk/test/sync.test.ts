/** The sync rules against a real server: gap repair, the ping's `latest`, reconnect after the server dies. */

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { type Entry, elems } from '../src/index.js';
import { client, newUser, Recorder, type Server, startServer, stopClients } from './helpers.js';

let server: Server;
before(async () => {
  server = await startServer();
});
after(async () => {
  await stopClients();
  await server.stop();
});

function text(e: Entry): string {
  const el = e.kind === 'msg' ? e.msg.body[0] : undefined;
  return el?.MsgType === 'TIMTextElem' ? el.MsgContent.Text : '';
}

test('a lost push is noticed at the next entry and pulled: every entry once, in order', async () => {
  const [a, b] = [newUser('alice'), newUser('bob')];
  const alice = client(server, a);
  const dropped: string[] = [];
  const bob = client(server, b, {
    // Lose the pushes of messages 3 and 4: bob sees 5 arrive after 2, a gap.
    dropLiveEntry: (e) => {
      const lose = ['m3', 'm4'].includes(text(e));
      if (lose) dropped.push(text(e));
      return lose;
    },
  });
  const rb = new Recorder(bob);
  await alice.login();
  await bob.login();
  await rb.until('synced', (r) => r.of('syncComplete').length === 1);
  for (let i = 1; i <= 6; i++) await alice.send(b, [elems.text(`m${i}`)]);
  await rb.until('six messages', (r) => r.of('message').length === 6);
  assert.deepEqual(dropped, ['m3', 'm4'], 'the pushes were lost');
  assert.deepEqual(rb.texts(), ['m1', 'm2', 'm3', 'm4', 'm5', 'm6']);
  assert.equal(bob.cursor, 6);
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(rb.of('message').length, 6, 'nothing twice');
});

test('a lost last push is noticed by the ping (its latest is past the cursor) and pulled', async () => {
  const [a, b] = [newUser('alice'), newUser('bob')];
  const alice = client(server, a);
  const bob = client(server, b, { heartbeatMs: 300, dropLiveEntry: (e) => text(e) === 'last' });
  const rb = new Recorder(bob);
  await alice.login();
  await bob.login();
  await rb.until('synced', (r) => r.of('syncComplete').length === 1);
  await alice.send(b, [elems.text('first')]);
  await alice.send(b, [elems.text('last')]);
  await rb.until('both', (r) => r.texts().length === 2, 5_000);
  assert.deepEqual(rb.texts(), ['first', 'last']);
});

test('after the server is killed and restarted, clients reconnect with backoff and catch up in order', async () => {
  const [a, b] = [newUser('alice'), newUser('bob')];
  const alice = client(server, a);
  const bob = client(server, b, { backoff: { minMs: 200, maxMs: 800 } });
  const rb = new Recorder(bob);
  const ra = new Recorder(alice);
  await alice.login();
  await bob.login();
  await rb.until('synced', (r) => r.of('syncComplete').length === 1);
  await alice.send(b, [elems.text('before the crash')]);
  await rb.until('first', (r) => r.texts().length === 1);

  await server.kill();
  await rb.until('disconnected', (r) => r.of('connection').some((c) => c.state === 'disconnected'));
  // While the server is down, attempts fail and are retried with growing delays.
  await new Promise((r) => setTimeout(r, 1_500));
  const attempts = rb.of('connection').filter((c) => c.state === 'connecting').length;
  assert.ok(attempts >= 3 && attempts <= 8, `${attempts} connection attempts in 1.5 s with a 200–800 ms backoff`);
  assert.equal(bob.connected, false);

  await server.restart();
  // Alice reconnects and sends; bob may still be waiting out his backoff: he gets the messages once,
  // in order, live or through the sync of his next login.
  await ra.until('alice back', (r) => r.of('syncComplete').length === 2);
  for (const t of ['after 1', 'after 2', 'after 3']) await alice.send(b, [elems.text(t)]);
  await rb.until('bob caught up', (r) => r.texts().length === 4 && r.of('syncComplete').length === 2);
  assert.deepEqual(rb.texts(), ['before the crash', 'after 1', 'after 2', 'after 3']);
  assert.equal(rb.of('stopped').length, 0);
});

test('dropConnection reconnects, and requests made meanwhile wait for the new login', async () => {
  const [a, b] = [newUser('alice'), newUser('bob')];
  const alice = client(server, a);
  const ra = new Recorder(alice);
  await client(server, b).login();
  await alice.login();
  alice.dropConnection('test');
  const sent = alice.send(b, [elems.text('queued while reconnecting')]);
  await ra.until('back', (r) => r.of('connection').filter((c) => c.state === 'connected').length === 2);
  assert.ok((await sent).convSeq > 0);
});

test('a send cut off by a dropped connection, retried with its random, is stored once and never raised to its sender', async () => {
  const [a, b] = [newUser('alice'), newUser('bob')];
  const alice = client(server, a);
  const bob = client(server, b);
  const ra = new Recorder(alice);
  const rb = new Recorder(bob);
  await alice.login();
  await bob.login();
  await rb.until('synced', (r) => r.of('syncComplete').length === 1);
  const body = [elems.text('cut off')];
  const first = alice.send(b, body, { random: 4242 });
  alice.dropConnection('test: the network went away mid-send');
  const outcome = await first.then(() => 'sent', (e: { code: number }) => e.code);
  await ra.until('back', (r) => r.of('syncComplete').length === 2);
  // The app retries as Tencent's resendMessage does: same random, same body.
  const retry = await alice.send(b, body, { random: 4242 });
  await rb.until('delivered', (r) => r.texts().includes('cut off'));
  await alice.send(b, [elems.text('after')]);
  await rb.until('after', (r) => r.texts().includes('after'));
  assert.deepEqual(rb.texts(), ['cut off', 'after'], `stored once (first send: ${String(outcome)})`);
  assert.equal(rb.of('message')[0]?.msgKey, retry.msgKey);
  assert.equal(ra.of('message').length, 0, 'the sender is not told of its own message');
});
