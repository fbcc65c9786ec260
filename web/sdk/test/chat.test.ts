/** Two clients against a real `duet serve`: send and receive, offline catch-up, conversations, friends. */

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { elems, MemoryStore } from '../src/index.js';
import { client, newUser, stopClients, Recorder, type Server, startServer } from './helpers.js';

let server: Server;
before(async () => {
  server = await startServer();
});
after(async () => {
  await stopClients();
  await server.stop();
});

test('login, send and receive every element kind between two clients', async () => {
  const [a, b] = [newUser('alice'), newUser('bob')];
  const alice = client(server, a);
  const bob = client(server, b);
  const bobEvents = new Recorder(bob);
  await alice.login();
  await bob.login();
  await bobEvents.until('bob synced', (r) => r.of('syncComplete').length === 1);

  const body = [
    [elems.text('hello bob')],
    [elems.face(3, 'smile')],
    [elems.location('office', 22.5, 113.9)],
    [elems.custom('{"k":1}', 'a custom one', 'ext')],
  ];
  const sent = [];
  for (const b2 of body) sent.push(await alice.send(b, b2));
  await bobEvents.until('four messages', (r) => r.of('message').length === 4);
  const got = bobEvents.of('message');
  assert.deepEqual(got.map((m) => m.body[0]?.MsgType), ['TIMTextElem', 'TIMFaceElem', 'TIMLocationElem', 'TIMCustomElem']);
  assert.deepEqual(got.map((m) => m.msgKey), sent.map((s) => s.msgKey));
  assert.equal(got[0]?.from, a);
  assert.deepEqual(got[2]?.body[0], elems.location('office', 22.5, 113.9));
  assert.deepEqual(
    sent.map((s) => s.convSeq), [1, 2, 3, 4], 'conv_seq numbers the conversation from 1');

  // The conversation on bob's side: four unread, the custom message last; marking read clears it.
  await bobEvents.until('unread 4', (r) => r.of('conversation').some((c) => c.peer === a && c.unread === 4));
  const [conv] = await bob.conversations();
  assert.equal(conv?.peer, a);
  assert.equal(conv?.unread, 4);
  assert.equal(conv?.last?.msgKey, sent[3]?.msgKey);
  await bob.markRead(a);
  await bobEvents.until('unread 0', (r) => r.of('conversation').some((c) => c.peer === a && c.unread === 0));
  assert.equal((await bob.conversations())[0]?.unread, 0);

  // Alice's own sends are not raised back to her.
  const aliceEvents = new Recorder(alice);
  await alice.send(b, [elems.text('one more')]);
  await bobEvents.until('fifth', (r) => r.of('message').length === 5);
  assert.equal(aliceEvents.of('message').length, 0);
  await alice.logout();
  await bob.logout();
  assert.ok(bob.stopped);
});

test('messages sent while a device is offline arrive once, in order, at its next login', async () => {
  const [a, b] = [newUser('alice'), newUser('bob')];
  const alice = client(server, a);
  await alice.login();
  const store = new MemoryStore();
  const bob1 = client(server, b, { store });
  const r1 = new Recorder(bob1);
  await bob1.login();
  await alice.send(b, [elems.text('before')]);
  await r1.until('before', (r) => r.texts().includes('before'));
  await bob1.logout();

  for (let i = 1; i <= 30; i++) await alice.send(b, [elems.text(`away ${i}`)]);

  // The same device comes back with its store (its cursor): only what it missed, once, in order.
  const bob2 = client(server, b, { store, syncLimit: 7 });
  const r2 = new Recorder(bob2);
  await bob2.login();
  await r2.until('caught up', (r) => r.of('syncComplete').length === 1);
  assert.deepEqual(r2.texts(), Array.from({ length: 30 }, (_, i) => `away ${i + 1}`));
  const names = r2.events.map((e) => e.name).filter((n) => n !== 'connection');
  assert.equal(names[0], 'syncStarted');
  assert.equal(names.indexOf('syncComplete'), names.length - 1, 'messages and conversations come before syncComplete');
  const conv = r2.of('conversation').find((c) => c.peer === a);
  assert.equal(conv?.unread, 31);
  assert.equal(conv?.last?.body[0]?.MsgType, 'TIMTextElem');
  await bob2.logout();
  await alice.logout();
});

test('friends and the blacklist, with relation events', async () => {
  const [a, b] = [newUser('alice'), newUser('bob')];
  const alice = client(server, a);
  const bob = client(server, b);
  const rb = new Recorder(bob);
  await alice.login();
  await bob.login();
  const { pending } = await alice.addFriend(b, { wording: 'hi bob' });
  assert.equal(pending, true, 'the default AllowType needs confirmation');
  await rb.until('request', (r) => r.of('relation').some((e) => e.kind === 'request_received'));
  assert.deepEqual((await bob.friendRequests()).incoming.map((q) => [q.from, q.wording]), [[a, 'hi bob']]);
  await bob.acceptFriend(a);
  assert.deepEqual((await alice.friendList()).map((f) => f.peer), [b]);
  assert.deepEqual((await bob.friendList()).map((f) => f.peer), [a]);

  await bob.addToBlacklist(a);
  assert.deepEqual((await bob.blacklist()).map((x) => x.peer), [a]);
  assert.deepEqual(await bob.friendList(), [], 'blacklisting ends the friendship');
  await rb.until('black_added', (r) => r.of('relation').some((e) => e.kind === 'black_added'));
  await bob.removeFromBlacklist(a);
  assert.deepEqual(await bob.blacklist(), []);
  await assert.rejects(bob.removeFromBlacklist(a), (e: { code: number }) => e.code === 30001);
  await alice.logout();
  await bob.logout();
});

test('a refused login rejects with the server code and stops', async () => {
  const u = newUser('mallory');
  const c = client(server, u, { usersig: 'not-a-usersig' });
  await assert.rejects(c.login(), (e: { code: number }) => e.code === 70003);
  assert.ok(c.stopped);
});
