/**
 * Edit, one-sided delete, clearing a conversation's history and deleting a conversation, against a real
 * server (the web twin of the Rust SDK's `crates/duet-client/tests/edit_delete.rs`). Each reaches two
 * devices of one user, one of them away during the change and catching up when it logs in again with its
 * store, and, for an edit, the peer.
 */

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import {
  Code, type DuetClient, DuetError, EditConflictError, elems, MemoryStore, type Message, textOf,
} from '../src/index.js';
import { client, newUser, Recorder, rest, type Server, startServer, stopClients } from './helpers.js';

let server: Server;
before(async () => {
  server = await startServer();
});
after(async () => {
  await stopClients();
  await server.stop();
});

/** alice on two devices (a phone, and a PC whose store is kept to come back with), and bob. */
async function trio() {
  const [a, b] = [newUser('alice'), newUser('bob')];
  const pcStore = new MemoryStore();
  const phone = client(server, a, { device: `phone-${a}`, platform: 'iPhone' });
  const pc = client(server, a, { store: pcStore, device: `pc-${a}`, platform: 'PC' });
  const bob = client(server, b);
  const [rphone, rpc, rb] = [new Recorder(phone), new Recorder(pc), new Recorder(bob)];
  for (const [c, r] of [[phone, rphone], [pc, rpc], [bob, rb]] as const) {
    await c.login();
    await r.until('synced', (x) => x.of('syncComplete').length === 1);
  }
  return { a, b, phone, pc, pcStore, bob, rphone, rpc, rb };
}

/** The PC again, with the store it had: a reload. */
async function comeBack(a: string, pcStore: MemoryStore) {
  const pc = client(server, a, { store: pcStore, device: `pc-${a}`, platform: 'PC', syncLimit: 2 });
  const rpc = new Recorder(pc);
  await pc.login();
  await rpc.until('caught up', (r) => r.of('syncComplete').length === 1);
  return { pc, rpc };
}

const texts = (ms: Message[]) => ms.map(textOf);
async function historyOf(c: DuetClient, peer: string): Promise<{ messages: Message[]; fromCache: boolean }> {
  return c.history(peer, { count: 50 });
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const code = (n: number) => (e: unknown) => e instanceof DuetError && e.code === n;

test('an edit reaches the peer and the user’s other device, conflicts with a stale version, and a device away catches up', async () => {
  const { a, b, phone, pc, pcStore, bob, rphone, rpc, rb } = await trio();
  const sent = await phone.send(b, [elems.text('teh')]);
  await rb.until('bob has it', (r) => r.texts().includes('teh'));
  await rpc.until('the PC has it', (r) => r.texts().includes('teh'));
  assert.equal(sent.message.version, 0);

  const edited = await phone.modify(b, sent.msgKey, { body: [elems.text('the')], cloudCustomData: 'fixed', version: 0 });
  assert.deepEqual([textOf(edited), edited.cloudCustomData, edited.version, edited.msgKey], ['the', 'fixed', 1, sent.msgKey]);
  for (const [who, r] of [['bob', rb], ['the phone', rphone], ['the PC', rpc]] as const) {
    await r.until(`${who} told`, (x) => x.of('modified').length === 1);
    const [m] = r.of('modified');
    assert.deepEqual([m?.msgKey, m && textOf(m), m?.cloudCustomData, m?.version], [sent.msgKey, 'the', 'fixed', 1], who);
  }
  await pc.logout();

  // History and the conversation list show the edit: from the server, and from the local copy.
  for (const [c, peer] of [[bob, a], [phone, b]] as const) {
    const h = await historyOf(c, peer);
    assert.deepEqual(h.messages.map((m) => [textOf(m), m.version]), [['the', 1]]);
    assert.equal(textOf(c.conversationList().find((x) => x.peer === peer)?.last as Message), 'the');
    const listed = (await c.conversations()).find((x) => x.peer === peer);
    assert.deepEqual([listed?.last && textOf(listed.last), listed?.last?.version], ['the', 1]);
  }

  // Someone edited it since version 0: a conflict, with the latest.
  await assert.rejects(phone.modify(b, sent.msgKey, { body: [elems.text('teh!')], version: 0 }), (e: unknown) => {
    assert.ok(e instanceof EditConflictError, String(e));
    assert.equal(e.code, Code.EDIT_CONFLICT);
    assert.deepEqual([e.latest && textOf(e.latest), e.latest?.version, e.latest?.cloudCustomData], ['the', 1, 'fixed']);
    return true;
  });
  // Only text and custom elements; only one's own message; only a message that exists.
  const image = elems.image({ UUID: 'u1', URL: 'http://x.invalid/u1', Size: 1, FileName: 'a.png' });
  await assert.rejects(phone.modify(b, sent.msgKey, { body: [image] }), code(Code.INVALID_PARAMS));
  await assert.rejects(bob.modify(a, sent.msgKey, { body: [elems.text('x')] }), code(Code.NO_SUCH_MESSAGE));
  await assert.rejects(phone.modify(b, '1_2_3', { cloudCustomData: 'x' }), code(Code.NO_SUCH_MESSAGE));

  // The app admin edits it too (REST, no version): everyone hears of it, the custom data stays.
  const r = await rest(server, 'openim/modify_c2c_msg', {
    From_Account: a, To_Account: b, MsgKey: sent.msgKey,
    MsgBody: [{ MsgType: 'TIMCustomElem', MsgContent: { Data: 'card', Desc: '', Ext: '' } }],
  });
  assert.equal(r.ErrorCode, 0, JSON.stringify(r));
  await rb.until('bob told again', (x) => x.of('modified').some((m) => m.version === 2));
  const last = bob.conversationList().find((x) => x.peer === a)?.last;
  assert.deepEqual([last?.version, last?.body[0]?.MsgType], [2, 'TIMCustomElem']);
  // An edit of the latest (no version) goes through.
  assert.equal((await phone.modify(b, sent.msgKey, { cloudCustomData: 'again' })).version, 3);
  await rphone.until('the phone told', (x) => x.of('modified').some((m) => m.version === 3));

  // The PC comes back with its store: the sync brings each edit, as the message is now; the local copy
  // (history from the cache) and the conversation's last message are the latest.
  const { pc: pc2, rpc: rpc2 } = await comeBack(a, pcStore);
  assert.deepEqual(rpc2.of('modified').map((m) => m.version), [3, 3], 'each entry carries the message as it is now');
  const names = rpc2.events.map((e) => e.name);
  assert.ok(names.indexOf('modified') < names.indexOf('syncComplete'), 'raised during the catch-up');
  const h = await historyOf(pc2, b);
  assert.equal(h.fromCache, true);
  assert.deepEqual(h.messages.map((m) => [m.version, m.body[0]?.MsgType, m.cloudCustomData]), [[3, 'TIMCustomElem', 'again']]);
  const kept = (await pcStore.message(b, sent.msgKey))?.message;
  assert.deepEqual([kept?.version, kept?.cloudCustomData], [3, 'again']);
  assert.equal((await pcStore.load()).conversations.find((c) => c.peer === b)?.last?.version, 3);
});

test('a delete reaches the user’s other device, the peer keeps the message, and unread and the last message follow', async () => {
  const { a, b, phone, pc, pcStore, bob, rphone, rpc } = await trio();
  const keys: string[] = [];
  for (const n of [1, 2, 3]) {
    keys.push((await bob.send(a, [elems.text(`m${n}`)])).msgKey);
    await rphone.until(`m${n}`, (r) => r.texts().includes(`m${n}`));
    await rpc.until(`m${n}`, (r) => r.texts().includes(`m${n}`));
  }
  assert.equal(phone.conversationList().find((c) => c.peer === b)?.unread, 3);

  // The newest (unread) one, and a key naming nothing: one is deleted.
  assert.deepEqual(await phone.deleteMessages(b, [keys[2] as string, '1_2_3']), [keys[2]]);
  for (const [who, r] of [['the phone', rphone], ['the PC', rpc]] as const) {
    await r.until(`${who} told`, (x) => x.of('deleted').length === 1);
    assert.deepEqual(r.of('deleted'), [{ peer: b, msgKey: keys[2] }], who);
    await r.until(`${who}: unread 2, last m2`, (x) => x.of('conversation').some((c) => c.peer === b && c.unread === 2 && c.last !== null && textOf(c.last) === 'm2'));
  }
  assert.deepEqual(texts((await historyOf(phone, b)).messages), ['m2', 'm1']);
  assert.deepEqual(texts((await historyOf(bob, a)).messages), ['m3', 'm2', 'm1'], 'the peer keeps it');
  const listed = (await phone.conversations()).find((c) => c.peer === b);
  assert.deepEqual([listed?.unread, listed?.last && textOf(listed.last)], [2, 'm2'], 'the server agrees');
  await pc.logout();

  // An older, read one, while the PC is away; then at most 50 at once.
  await phone.markRead(b);
  assert.deepEqual(await phone.deleteMessages(b, [keys[0] as string]), [keys[0]]);
  await rphone.until('told again', (x) => x.of('deleted').length === 2);
  const many = Array.from({ length: 51 }, (_, n) => `${n}_1_1`);
  await assert.rejects(phone.deleteMessages(b, many), code(Code.INVALID_PARAMS));

  // The PC comes back: the delete reaches it, its local history loses the message, and what it shows
  // agrees with the server (and stays so in its store).
  const { pc: pc2, rpc: rpc2 } = await comeBack(a, pcStore);
  assert.deepEqual(rpc2.of('deleted'), [{ peer: b, msgKey: keys[0] }]);
  assert.deepEqual(texts((await historyOf(pc2, b)).messages), ['m2']);
  assert.equal(await pcStore.message(b, keys[0] as string), undefined);
  const conv = pc2.conversationList().find((c) => c.peer === b);
  assert.deepEqual([conv?.unread, conv?.last && textOf(conv.last)], [0, 'm2']);
});

test('deletes applied together (a lost push pulled with the next) count each unread once; the last message follows', async () => {
  const [a, b] = [newUser('alice'), newUser('bob')];
  const phone = client(server, a, { device: `phone-${a}`, platform: 'iPhone' });
  let dropped = 0;
  // The PC loses the push of the first delete: it pulls it with the second, and applies both at once.
  const pcStore = new MemoryStore();
  const pc = client(server, a, {
    store: pcStore, device: `pc-${a}`, platform: 'PC', dropLiveEntry: (e) => e.kind === 'deleted' && dropped++ === 0,
  });
  const bob = client(server, b);
  const rpc = new Recorder(pc);
  for (const c of [phone, pc, bob]) await c.login();
  await rpc.until('synced', (r) => r.of('syncComplete').length === 1);
  const keys: string[] = [];
  // u1 and u2 read, then u3 and u4 (a second later): two unread.
  for (const n of [1, 2]) keys.push((await bob.send(a, [elems.text(`u${n}`)])).msgKey);
  await rpc.until('two', (r) => r.texts().length === 2);
  await phone.markRead(b);
  await rpc.until('read', (r) => r.of('conversation').some((c) => c.peer === b && c.unread === 0));
  await sleep(1_100);
  for (const n of [3, 4]) keys.push((await bob.send(a, [elems.text(`u${n}`)])).msgKey);
  await rpc.until('four, two unread', (r) => r.texts().length === 4 && pc.conversationList()[0]?.unread === 2);
  // The two unread, newest first: each counts once, although the second is no longer among the newest
  // `unread` messages once the first is gone.
  await phone.deleteMessages(b, [keys[3] as string]);
  await phone.deleteMessages(b, [keys[2] as string]);
  await rpc.until('both deleted', (r) => r.of('deleted').length === 2);
  assert.equal(dropped, 2, 'the first push was lost');
  assert.deepEqual(rpc.of('deleted').map((d) => d.msgKey), [keys[3], keys[2]]);
  const conv = pc.conversationList().find((c) => c.peer === b);
  assert.deepEqual([conv?.unread, conv?.last && textOf(conv.last)], [0, 'u2'], 'worked out here, not read from the server');
  const snap = (await pcStore.load()).conversations.find((c) => c.peer === b);
  assert.deepEqual([snap?.unread, snap?.last && textOf(snap.last)], [0, 'u2'], 'as stored');
  const listed = (await phone.conversations()).find((c) => c.peer === b);
  assert.deepEqual([listed?.unread, listed?.last && textOf(listed.last)], [0, 'u2'], 'as the server has it');
  assert.deepEqual(texts((await historyOf(pc, b)).messages), ['u2', 'u1']);
});

test('clearing history and deleting a conversation reach the user’s devices; the peer keeps its history', async () => {
  const { a, b, phone, pc, pcStore, bob, rphone, rpc } = await trio();
  const c = newUser('carol');
  const carol = client(server, c);
  await carol.login();
  for (const n of [1, 2]) await bob.send(a, [elems.text(`b${n}`)]);
  await carol.send(a, [elems.text('from carol')]);
  await rphone.until('three', (r) => r.texts().length === 3);
  await rpc.until('three', (r) => r.texts().length === 3);
  await pc.logout();

  // Clear bob's history: the conversation stays, empty and read; bob keeps his.
  await phone.clearHistory(b);
  await rphone.until('cleared', (r) => r.of('historyCleared').length === 1);
  assert.deepEqual(rphone.of('historyCleared'), [{ peer: b }]);
  assert.deepEqual((await historyOf(phone, b)).messages, []);
  assert.deepEqual(texts((await historyOf(bob, a)).messages), ['b2', 'b1']);
  const local = phone.conversationList().find((x) => x.peer === b);
  assert.deepEqual([local?.unread, local?.last], [0, null]);
  const listed = (await phone.conversations()).find((x) => x.peer === b);
  assert.deepEqual([listed?.unread, listed?.last ?? null], [0, null], 'still listed, empty and read');
  // A message after the clear is history again.
  await bob.send(a, [elems.text('b3')]);
  await rphone.until('b3', (r) => r.texts().includes('b3'));
  assert.deepEqual(texts((await historyOf(phone, b)).messages), ['b3']);

  // Delete carol's conversation (its messages stay); then bob's with its history, through REST.
  await phone.deleteConversation(c);
  const r = await rest(server, 'recentcontact/delete', { From_Account: a, Type: 1, To_Account: b, ClearRamble: 1 });
  assert.equal(r.ErrorCode, 0, JSON.stringify(r));
  await rphone.until('both deleted', (x) => x.of('conversationDeleted').length === 2);
  assert.deepEqual(rphone.of('conversationDeleted'), [{ peer: c }, { peer: b }]);
  assert.deepEqual(phone.conversationList(), []);
  assert.deepEqual(await phone.conversations(), []);
  assert.deepEqual(texts((await historyOf(phone, c)).messages), ['from carol']);
  assert.deepEqual((await historyOf(phone, b)).messages, []);

  // The PC catches up on all of it, and keeps it in its store.
  const { pc: pc2, rpc: rpc2 } = await comeBack(a, pcStore);
  assert.deepEqual(rpc2.of('historyCleared'), [{ peer: b }, { peer: b }]);
  assert.deepEqual(rpc2.of('conversationDeleted'), [{ peer: c }, { peer: b }]);
  assert.deepEqual(pc2.conversationList(), []);
  assert.deepEqual((await pcStore.load()).conversations, []);
  assert.deepEqual((await historyOf(pc2, b)).messages, []);
  assert.deepEqual(texts((await historyOf(pc2, c)).messages), ['from carol']);

  // The next message brings a deleted conversation back.
  await carol.send(a, [elems.text('hello again')]);
  await rpc2.until('back', (x) => x.of('conversation').some((cv) => cv.peer === c && cv.unread === 1));
  assert.deepEqual(pc2.conversationList().map((cv) => cv.peer), [c]);
});
