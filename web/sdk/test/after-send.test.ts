/**
 * What happens to a message after it is sent, against a real server: the sender's recall, the
 * conversation's read receipt (`peer_read`), message-level read receipts (`receipt`), and a device that
 * was away catching up on all three through the sync.
 */

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { Code, type DuetClient, DuetError, elems, MemoryStore, type Message, textOf } from '../src/index.js';
import { client, newUser, Recorder, type Server, startServer, stopClients } from './helpers.js';

let server: Server;
before(async () => {
  server = await startServer();
});
after(async () => {
  await stopClients();
  await server.stop();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Two logged-in, synced clients. */
async function pair(opts: { aliceStore?: MemoryStore; bobStore?: MemoryStore } = {}) {
  const [a, b] = [newUser('alice'), newUser('bob')];
  const alice = client(server, a, opts.aliceStore ? { store: opts.aliceStore } : {});
  const bob = client(server, b, opts.bobStore ? { store: opts.bobStore } : {});
  const ra = new Recorder(alice);
  const rb = new Recorder(bob);
  await alice.login();
  await bob.login();
  await ra.until('alice synced', (r) => r.of('syncComplete').length === 1);
  await rb.until('bob synced', (r) => r.of('syncComplete').length === 1);
  return { a, b, alice, bob, ra, rb };
}

async function historyOf(c: DuetClient, peer: string): Promise<Message[]> {
  return (await c.history(peer, { count: 50 })).messages;
}

test('the sender recalls: both sides are told who recalled it, history keeps it without content, unread follows', async () => {
  const { a, b, alice, bob, ra, rb } = await pair();
  const one = await alice.send(b, [elems.text('one')]);
  const two = await alice.send(b, [elems.text('two')], { cloudCustomData: 'secret' });
  const three = await alice.send(b, [elems.text('three')]);
  await rb.until('three messages', (r) => r.texts().length === 3);
  await rb.until('unread 3', (r) => r.of('conversation').some((c) => c.peer === a && c.unread === 3));

  await alice.recall(b, two.msgKey);
  await ra.until('alice told', (r) => r.of('recalled').length === 1);
  await rb.until('bob told', (r) => r.of('recalled').length === 1);
  assert.deepEqual(ra.of('recalled'), [{ peer: b, msgKey: two.msgKey, by: a }], 'the sender’s own device hears of it too');
  assert.deepEqual(rb.of('recalled'), [{ peer: a, msgKey: two.msgKey, by: a }]);
  await rb.until('unread 2', (r) => r.of('conversation').some((c) => c.peer === a && c.unread === 2));
  assert.equal(bob.conversationList().find((c) => c.peer === a)?.unread, 2, 'a recalled unread message no longer counts');

  for (const [who, c, peer] of [['bob', bob, a], ['alice', alice, b]] as const) {
    const h = await historyOf(c, peer);
    assert.deepEqual(h.map((m) => m.msgKey), [three.msgKey, two.msgKey, one.msgKey], `${who}: it stays in history`);
    const gone = h[1] as Message;
    assert.equal(gone.recalled, true, who);
    assert.equal(gone.revoker, a, who);
    assert.deepEqual(gone.body, [], `${who}: without content`);
    assert.equal(gone.cloudCustomData, '', `${who}: nor custom data`);
    assert.deepEqual([h[0], h[2]].map((m) => m?.recalled), [false, false]);
  }

  // The last message recalled: the conversation's last shows it recalled, without content.
  await alice.recall(b, three.msgKey);
  await rb.until('last recalled', (r) => r.of('conversation').some((c) => c.peer === a && c.last?.recalled === true && c.unread === 1));
  const conv = bob.conversationList().find((c) => c.peer === a);
  assert.deepEqual([conv?.last?.msgKey, conv?.last?.body, conv?.last?.revoker], [three.msgKey, [], a]);
  const listed = (await bob.conversations()).find((c) => c.peer === a);
  assert.deepEqual([listed?.last?.recalled, listed?.last?.body, listed?.unread], [true, [], 1], 'and so does the server’s list');

  // What cannot be recalled, with the server's codes.
  await assert.rejects(alice.recall(b, two.msgKey), (e: unknown) => e instanceof DuetError && e.code === Code.ALREADY_RECALLED);
  const fromBob = await bob.send(a, [elems.text('mine')]);
  await assert.rejects(alice.recall(b, fromBob.msgKey), (e: unknown) => e instanceof DuetError && e.code === Code.NO_SUCH_MESSAGE);
  await assert.rejects(alice.recall(b, 'not-a-key'), (e: unknown) => e instanceof DuetError && e.code === Code.INVALID_MSG_KEY);
});

test('a recall after the window is refused with 20016 and changes nothing', async () => {
  const short = await startServer('recall_window_secs = 1\n');
  try {
    const [a, b] = [newUser('alice'), newUser('bob')];
    const alice = client(short, a);
    const bob = client(short, b);
    const rb = new Recorder(bob);
    await alice.login();
    await bob.login();
    const sent = await alice.send(b, [elems.text('too late to take back')]);
    await rb.until('received', (r) => r.texts().length === 1);
    await sleep(2_100);
    await assert.rejects(alice.recall(b, sent.msgKey), (e: unknown) => {
      assert.ok(e instanceof DuetError);
      assert.equal(e.code, Code.RECALL_TOO_LATE);
      assert.match(e.message, /can no longer be recalled/);
      return true;
    });
    const [kept] = await historyOf(bob, a);
    assert.equal(kept?.recalled, false);
    assert.equal(kept && textOf(kept), 'too late to take back');
    assert.equal(rb.of('recalled').length, 0);
    await alice.logout();
    await bob.logout();
  } finally {
    await short.stop();
  }
});

test('the peer reads the conversation: the sender gets peerRead, and its messages up to then are read', async () => {
  const { a, b, alice, bob, ra, rb } = await pair();
  const m1 = await alice.send(b, [elems.text('m1')]);
  const m2 = await alice.send(b, [elems.text('m2')]);
  assert.equal(alice.isPeerRead(m1.message), false);
  assert.deepEqual((await historyOf(alice, b)).map((m) => m.peerRead), [false, false]);
  await rb.until('both', (r) => r.texts().length === 2);

  await bob.markRead(a);
  await ra.until('peerRead', (r) => r.of('peerRead').length === 1);
  const [pr] = ra.of('peerRead');
  assert.equal(pr?.peer, b);
  assert.ok((pr?.time ?? 0) >= m2.time, 'the read covers the messages sent before it');
  await ra.until('conversation', (r) => r.of('conversation').some((c) => c.peer === b && c.peerReadTime === pr?.time));
  assert.equal(alice.isPeerRead(m1.message), true);
  assert.equal(alice.isPeerRead(m2.message), true);
  assert.deepEqual((await historyOf(alice, b)).map((m) => [textOf(m), m.peerRead]), [['m2', true], ['m1', true]]);
  assert.equal((await alice.conversations()).find((c) => c.peer === b)?.peerReadTime, pr?.time, 'the server’s list says so too');
  assert.equal(rb.of('peerRead').length, 0, 'the reader gets no receipt of its own');
  assert.equal(bob.isPeerRead(rb.of('message')[0] as Message), false, 'a received message is never "read by the peer"');

  // A message sent after the read (in a later second) is not read.
  await sleep(1_100);
  const m3 = await alice.send(b, [elems.text('m3')]);
  assert.equal(alice.isPeerRead(m3.message), false);
  const [found] = await alice.findMessages(b, [m3.msgKey]);
  assert.equal(found?.peerRead, false);
});

test('a message-level read receipt: asked for on send, given by the receiver, seen by the sender', async () => {
  const { a, b, alice, bob, ra, rb } = await pair();
  const asked = await alice.send(b, [elems.text('please confirm')], { needReadReceipt: true });
  const plain = await alice.send(b, [elems.text('no receipt needed')]);
  assert.equal(asked.message.needReadReceipt, true);
  await rb.until('both', (r) => r.texts().length === 2);
  const got = rb.of('message');
  assert.deepEqual(got.map((m) => m.needReadReceipt), [true, false], 'the receiver sees which asked');
  assert.deepEqual(got.map((m) => m.receiptTime), [0, 0]);

  const acknowledged = await bob.sendReadReceipts(a, [asked.msgKey, plain.msgKey]);
  assert.deepEqual(acknowledged, [asked.msgKey], 'a message that asked for no receipt is left out');
  await ra.until('receipt', (r) => r.of('readReceipt').length === 1);
  const [rr] = ra.of('readReceipt');
  assert.equal(rr?.peer, b);
  assert.equal(rr?.msgKey, asked.msgKey);
  assert.ok((rr?.time ?? 0) >= asked.time);

  const h = await historyOf(alice, b);
  assert.deepEqual(h.map((m) => [textOf(m), m.needReadReceipt, m.receiptTime]), [
    ['no receipt needed', false, 0], ['please confirm', true, rr?.time],
  ]);
  const found = await alice.findMessages(b, [asked.msgKey, plain.msgKey, `1_1_${asked.time - 1}`]);
  assert.deepEqual(found.map((m) => m && [m.needReadReceipt, m.receiptTime]), [[true, rr?.time], [false, 0], null]);
  assert.equal(bob.conversationList().find((c) => c.peer === a)?.unread, 2, 'a receipt is not a read mark');

  // A second receipt changes nothing and raises nothing.
  assert.deepEqual(await bob.sendReadReceipts(a, [asked.msgKey]), [asked.msgKey]);
  await alice.send(b, [elems.text('after')]);
  await rb.until('after', (r) => r.texts().includes('after'));
  await sleep(200);
  assert.equal(ra.of('readReceipt').length, 1);
  assert.deepEqual(await bob.sendReadReceipts(a, []), []);
});

test('a device that was away catches up on recalls, reads and receipts through the sync', async () => {
  const bobStore = new MemoryStore();
  const { a, b, alice: phone, bob, rb } = await pair({ bobStore });
  const pcStore = new MemoryStore();
  const pc = client(server, a, { store: pcStore, device: `pc-${a}`, platform: 'PC' });
  const rpc = new Recorder(pc);
  await pc.login();
  await rpc.until('pc synced', (r) => r.of('syncComplete').length === 1);

  const asked = await phone.send(b, [elems.text('confirm please')], { needReadReceipt: true });
  const doomed = await phone.send(b, [elems.text('to be recalled')]);
  await rpc.until('pc has both', (r) => r.texts().length === 2);
  await rb.until('bob has both', (r) => r.texts().length === 2);
  await pc.logout();
  await bob.logout();

  // While the PC and bob are away: bob's phone reads and acknowledges, alice's phone recalls, and sends
  // two more, one of which it recalls before bob is back.
  const bobPhone = client(server, b, { device: `phone-${b}`, platform: 'Android' });
  await bobPhone.login();
  await bobPhone.markRead(a);
  assert.deepEqual(await bobPhone.sendReadReceipts(a, [asked.msgKey]), [asked.msgKey]);
  await bobPhone.logout();
  await phone.recall(b, doomed.msgKey);
  await sleep(1_100); // what follows is sent after the read's second: unread

  const x = await phone.send(b, [elems.text('x, recalled while bob is away')]);
  const y = await phone.send(b, [elems.text('y')]);
  await phone.recall(b, x.msgKey);

  // The PC comes back with its store: each change once, in log order, then the conversation.
  const pc2 = client(server, a, { store: pcStore, device: `pc-${a}`, platform: 'PC', syncLimit: 2 });
  const rpc2 = new Recorder(pc2);
  await pc2.login();
  await rpc2.until('pc caught up', (r) => r.of('syncComplete').length === 1);
  assert.deepEqual(rpc2.of('peerRead').map((p) => p.peer), [b]);
  assert.deepEqual(rpc2.of('readReceipt').map((r) => [r.peer, r.msgKey]), [[b, asked.msgKey]]);
  assert.deepEqual(rpc2.of('recalled'), [
    { peer: b, msgKey: doomed.msgKey, by: a }, { peer: b, msgKey: x.msgKey, by: a },
  ]);
  const names = rpc2.events.map((e) => e.name);
  assert.ok(names.indexOf('peerRead') < names.indexOf('syncComplete'), 'raised during the catch-up');
  const conv = pc2.conversationList().find((c) => c.peer === b);
  assert.ok((conv?.peerReadTime ?? 0) >= doomed.time);
  assert.equal(pc2.isPeerRead(asked.message), true);
  const h = await historyOf(pc2, b);
  assert.deepEqual(h.map((m) => [textOf(m), m.recalled, m.receiptTime > 0]), [
    ['y', false, false], ['', true, false], ['', true, false], ['confirm please', false, true],
  ]);

  // What the store keeps: a reload shows the same.
  const snap = await pcStore.load();
  assert.equal(snap.conversations.find((c) => c.peer === b)?.peerReadTime, conv?.peerReadTime);
  const keptRecall = await pcStore.message(b, doomed.msgKey);
  assert.deepEqual([keptRecall?.message.recalled, keptRecall?.message.revoker, keptRecall?.message.body], [true, a, []]);
  assert.ok(((await pcStore.message(b, asked.msgKey))?.message.receiptTime ?? 0) > 0);

  // Bob comes back: x arrives already recalled and never counted as unread; y is the one unread.
  const bob2 = client(server, b, { store: bobStore });
  const rb2 = new Recorder(bob2);
  await bob2.login();
  await rb2.until('bob caught up', (r) => r.of('syncComplete').length === 1);
  const msgs = rb2.of('message');
  assert.deepEqual(msgs.map((m) => [m.msgKey, m.recalled, textOf(m)]), [[x.msgKey, true, ''], [y.msgKey, false, 'y']]);
  assert.deepEqual(rb2.of('recalled').map((r) => r.msgKey), [doomed.msgKey, x.msgKey]);
  assert.equal(bob2.conversationList().find((c) => c.peer === a)?.unread, 1);
  const bh = await historyOf(bob2, a);
  assert.deepEqual(bh.map((m) => [textOf(m), m.recalled, m.revoker]), [
    ['y', false, ''], ['', true, a], ['', true, a], ['confirm please', false, ''],
  ]);
  assert.equal((await bobStore.message(a, doomed.msgKey))?.message.recalled, true);
});
