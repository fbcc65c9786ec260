/**
 * The sync and history rules alone (ports of the Rust SDK's unit tests), the backoff, and how entries are
 * applied and stored (against a server the test plays).
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { Backoff } from '../src/backoff.js';
import {
  type Coverage, emptyCoverage, extend, heardOf, localPage, type Positioned, serverPage, stored,
} from '../src/coverage.js';
import { DuetClient, type Entry, type Message, MemoryStore, type Socket, type SocketFactory } from '../src/index.js';
import { messageFromWire, textOf } from '../src/model.js';
import type { WireConversation, WireMessage } from '../src/protocol.js';
import { Sequencer } from '../src/sequencer.js';
import { emptyBatch } from '../src/store.js';

const e = (seq: number): Entry => ({ kind: 'read', seq, peer: 'alice', time: seq });
const seqs = (es: Entry[]) => es.map((x) => x.seq);
const applied = (s: Sequencer, seq: number) => {
  const r = s.live(e(seq));
  return r.kind === 'apply' ? seqs(r.entries) : r.kind;
};

test('sequencer: in-order entries apply, duplicates drop', () => {
  const s = new Sequencer(4);
  assert.deepEqual(applied(s, 5), [5]);
  assert.deepEqual(applied(s, 6), [6]);
  assert.equal(applied(s, 6), 'duplicate');
  assert.equal(applied(s, 2), 'duplicate');
  assert.equal(s.cursor, 6);
});

test('sequencer: a gap buffers until sync fills it', () => {
  const s = new Sequencer(10);
  assert.equal(applied(s, 13), 'gap');
  assert.equal(applied(s, 14), 'gap');
  assert.equal(applied(s, 13), 'gap');
  assert.equal(s.cursor, 10, 'nothing newer is applied before the gap is filled');
  assert.deepEqual(seqs(s.synced([e(11), e(12), e(13)])), [11, 12, 13, 14]);
  assert.equal(s.cursor, 14);
  assert.equal(s.hasGap, false);
  const f = s.finish(14);
  assert.deepEqual([f.ready, f.again], [[], false]);
});

test('sequencer: a live entry that fills the gap releases the buffer', () => {
  const s = new Sequencer(0);
  assert.equal(applied(s, 3), 'gap');
  assert.equal(applied(s, 2), 'gap');
  assert.deepEqual(applied(s, 1), [1, 2, 3]);
  assert.deepEqual(s.synced([e(1), e(2), e(3)]), []);
});

test('sequencer: sync pages jump over expired seqs; finish releases covered entries and pulls again for newer', () => {
  const s = new Sequencer(0);
  assert.deepEqual(seqs(s.synced([e(58), e(57)])), [57, 58]);
  assert.deepEqual(seqs(s.synced([e(58), e(59)])), [59]);

  const t = new Sequencer(10);
  assert.equal(applied(t, 12), 'gap');
  assert.deepEqual(t.synced([]), []);
  assert.deepEqual(seqs(t.finish(12).ready), [12]);

  const u = new Sequencer(19);
  assert.equal(applied(u, 22), 'gap');
  assert.deepEqual(seqs(u.synced([e(20)])), [20]);
  const f = u.finish(20);
  assert.deepEqual([f.ready, f.again], [[], true]);
  assert.deepEqual(seqs(u.synced([e(21), e(22)])), [21, 22]);
});

test('sequencer: every entry once, in order, whatever the arrival order', () => {
  const order = Array.from({ length: 30 }, (_, k) => k + 1).flatMap((i) => {
    const j = ((i * 7) % 30) + 1;
    return [j, i, j];
  });
  const s = new Sequencer(0);
  const out: number[] = [];
  for (const seq of order) {
    const r = s.live(e(seq));
    if (r.kind === 'apply') out.push(...seqs(r.entries));
  }
  out.push(...seqs(s.synced(Array.from({ length: 30 }, (_, k) => e(k + 1)))));
  out.push(...seqs(s.finish(30).ready));
  assert.deepEqual(out, Array.from({ length: 30 }, (_, k) => k + 1));
});

const msg = (convSeq: number, time: number): Positioned => ({ convSeq, time, seq: convSeq, random: 0 });
const page = (cov: Coverage, count: number, local: Array<[number, number]>) =>
  localPage(cov, count, local.map(([c, t]) => msg(c, t)))?.map((m) => m.convSeq);
function store(cov: Coverage, convSeq: number, all: number[]) {
  stored(cov, convSeq);
  const through = cov.through;
  extend(cov, all.filter((c) => c > through));
}

test('coverage: the first message starts a coverage that grows with the next', () => {
  const cov = emptyCoverage();
  assert.equal(page(cov, 10, []), undefined);
  store(cov, 1, [1]);
  store(cov, 2, [1, 2]);
  assert.deepEqual(cov, { held: { kind: 'all' }, through: 2, known: 2 });
  assert.deepEqual(page(cov, 10, [[2, 101], [1, 100]]), [2, 1]);
  store(cov, 4, [1, 2, 4]);
  assert.equal(cov.through, 2);
  assert.equal(page(cov, 10, [[4, 103], [2, 101], [1, 100]]), undefined, '3 exists somewhere');
  store(cov, 3, [1, 2, 3, 4]);
  assert.deepEqual(page(cov, 10, [[4, 103], [3, 102], [2, 101], [1, 100]]), [4, 3, 2, 1]);
});

test('coverage: server pages extend it back only from within it', () => {
  const cov = emptyCoverage();
  const newest = [msg(10, 110), msg(9, 109)];
  serverPage(cov, null, newest, false, 10);
  assert.deepEqual(page(cov, 2, [[10, 110], [9, 109]]), [10, 9]);
  assert.equal(page(cov, 3, [[10, 110], [9, 109], [5, 105]]), undefined, '8..6 may exist');
  const other = structuredClone(cov);
  serverPage(other, [103, 3, 0], [msg(2, 102), msg(1, 101)], true, 10);
  assert.deepEqual(other, cov, 'a page from outside the coverage proves nothing');
  serverPage(cov, [109, 9, 0], [msg(8, 108), msg(7, 107), msg(6, 106), msg(5, 105)], true, 11);
  assert.deepEqual(cov.held, { kind: 'all' });
  assert.equal(cov.through, 10);
  heardOf(cov, 11);
  assert.equal(page(cov, 3, [[10, 110], [9, 109], [8, 108]]), undefined, '11 is known and not held');
});

test('backoff: doubles to the maximum with jitter, resets', () => {
  const b = new Backoff(100, 10_000);
  for (const step of [100, 200, 400, 800, 1600, 3200, 6400, 10_000, 10_000]) {
    const d = b.nextDelay();
    assert.ok(d >= step / 2 && d <= step, `${d} for a ${step} ms step`);
  }
  b.reset();
  assert.ok(b.nextDelay() <= 100);
});

/**
 * A server played by the test over a fake socket: answers `login` with `latest`, `sync` with the given
 * entries (pages of the client's `limit`) and `conversations` with `items`.
 */
function scriptedServer(entries: Entry[], items: WireConversation[]): SocketFactory {
  return () => {
    const socket: Socket = {
      onopen: null, onmessage: null, onclose: null, onerror: null,
      send(data: string) {
        const f = JSON.parse(data) as { op: string; id: number; after?: number; limit?: number };
        const page = entries.filter((e) => e.seq > (f.after ?? 0));
        const answer =
          f.op === 'login' ? { op: 'logged_in', id: f.id, user: 'alice', server_time: Date.now(), latest: entries.length }
            : f.op === 'sync' ? {
              op: 'synced', id: f.id, entries: page.slice(0, f.limit), latest: entries.length,
              more: page.length > (f.limit ?? Infinity),
            }
              : f.op === 'conversations' ? { op: 'conversations', id: f.id, items }
                : { op: 'ok', id: f.id };
        setTimeout(() => socket.onmessage?.({ data: JSON.stringify(answer) }), 0);
      },
      close() {
        setTimeout(() => socket.onclose?.({ code: 1000, reason: '' }), 0);
      },
    };
    setTimeout(() => socket.onopen?.({}), 0);
    return socket;
  };
}

const wire = (from: string, to: string, n: number, time: number, extra: Partial<WireMessage> = {}): WireMessage => ({
  from, to, msg_key: `${n}_${n}_${time}`, seq: n, random: n, time, conv_seq: n,
  body: [{ MsgType: 'TIMTextElem', MsgContent: { Text: `m${n}` } }], ...extra,
});

test('apply: unknown kinds are skipped with their seq counted; recalls, reads and receipts in one page', async () => {
  const m1 = wire('bob', 'alice', 1, 100);
  const m2 = wire('bob', 'alice', 2, 101);
  const m3 = wire('alice', 'bob', 3, 102, { need_read_receipt: true });
  const entries = [
    { kind: 'msg', seq: 1, msg: m1 },
    { kind: 'reaction', seq: 2, peer: 'bob', emoji: '👍' },
    { kind: 'msg', seq: 3, msg: m2 },
    { kind: 'msg', seq: 4, msg: m3 },
    { kind: 'recall', seq: 5, peer: 'bob', msg_key: m1.msg_key, by: 'bob' },
    { kind: 'peer_read', seq: 6, peer: 'bob', time: 102 },
    { kind: 'receipt', seq: 7, peer: 'bob', msg_key: m3.msg_key, time: 103 },
    { kind: 'something_new', seq: 8 },
  ] as unknown as Entry[];
  const store = new MemoryStore();
  const c = new DuetClient({
    server: 'http://duet.invalid', user: 'alice', usersig: 'x', store, device: 'd',
    webSocket: scriptedServer(entries, [
      { peer: 'bob', last: { ...m3, receipt_time: 103 }, unread: 1, time: 102, conv_seq: 3, peer_read_time: 102 },
    ]),
  });
  const events: Array<[string, unknown]> = [];
  for (const name of ['message', 'recalled', 'peerRead', 'readReceipt', 'conversation'] as const) {
    c.on(name, (v: unknown) => events.push([name, v]));
  }
  const done = new Promise<void>((r) => c.on('syncComplete', () => r()));
  await c.login();
  await done;
  assert.equal(c.cursor, 8, 'the unknown kinds’ seqs count');
  assert.equal((await store.load()).cursor, 8);
  assert.deepEqual(events.filter(([n]) => n === 'recalled').map(([, v]) => v), [{ peer: 'bob', msgKey: m1.msg_key, by: 'bob' }]);
  assert.deepEqual(events.filter(([n]) => n === 'peerRead').map(([, v]) => v), [{ peer: 'bob', time: 102 }]);
  assert.deepEqual(events.filter(([n]) => n === 'readReceipt').map(([, v]) => v), [{ peer: 'bob', msgKey: m3.msg_key, time: 103 }]);
  const recalled = (await store.message('bob', m1.msg_key))?.message;
  assert.deepEqual([recalled?.recalled, recalled?.revoker, recalled?.body], [true, 'bob', []]);
  const acked = (await store.message('bob', m3.msg_key))?.message;
  assert.deepEqual([acked?.needReadReceipt, acked?.receiptTime], [true, 103]);
  const conv = c.conversationList()[0];
  assert.deepEqual([conv?.peerReadTime, conv?.unread], [102, 1]);
  assert.equal(c.isPeerRead(acked as Message), true);
  await c.logout();
});

test('store: a message stored again keeps its recall, revoker, receipt and need for one', async () => {
  const s = new MemoryStore();
  const m = messageFromWire(wire('alice', 'bob', 1, 100, { need_read_receipt: true, cloud_custom_data: 'c' }));
  await s.commit({ ...emptyBatch(), messages: [{ peer: 'bob', message: m, sentHere: true }] });
  await s.commit({ ...emptyBatch(), recalls: [{ peer: 'bob', msgKey: m.msgKey, by: 'admin' }] });
  await s.commit({ ...emptyBatch(), receipts: [{ peer: 'bob', msgKey: m.msgKey, time: 105 }] });
  await s.commit({ ...emptyBatch(), receipts: [{ peer: 'bob', msgKey: m.msgKey, time: 109 }] });
  // The same message again as an older copy knew it (say, a conversation's `last` read before the recall).
  const stale = messageFromWire(wire('alice', 'bob', 1, 100));
  await s.commit({ ...emptyBatch(), messages: [{ peer: 'bob', message: stale, sentHere: false }] });
  const r = await s.message('bob', m.msgKey);
  assert.equal(r?.sentHere, true);
  assert.deepEqual(
    [r?.message.recalled, r?.message.revoker, r?.message.body, r?.message.cloudCustomData, r?.message.needReadReceipt, r?.message.receiptTime],
    [true, 'admin', [], '', true, 105],
  );
  // A recalled message is not counted as unread.
  const [b2, b3] = [2, 3].map((n) => messageFromWire(wire('bob', 'alice', n, 100 + n)));
  await s.commit({
    ...emptyBatch(), messages: [b2, b3].map((message) => ({ peer: 'bob', message: message as Message, sentHere: false })),
    recalls: [{ peer: 'bob', msgKey: (b2 as Message).msgKey, by: 'bob' }],
  });
  assert.equal(await s.countFromAfter('bob', 100), 1);
});

test('apply: edits, deletes and clears in one page: only held copies take an edit, nothing deleted comes back', async () => {
  const m1 = wire('bob', 'alice', 1, 100);
  const m2 = wire('bob', 'alice', 2, 101);
  const m3 = wire('alice', 'bob', 3, 102);
  const never = wire('bob', 'alice', 9, 90);
  const c1 = wire('carol', 'alice', 1, 100);
  const c2 = wire('carol', 'alice', 2, 105);
  const edited = (m: WireMessage, text: string, version: number): WireMessage => ({
    ...m, body: [{ MsgType: 'TIMTextElem', MsgContent: { Text: text } }], version,
  });
  const entries = [
    { kind: 'msg', seq: 1, msg: m1 },
    { kind: 'msg', seq: 2, msg: m2 },
    { kind: 'modified', seq: 3, msg: edited(never, 'never held', 1) },
    { kind: 'modified', seq: 4, msg: { ...edited(m1, 'm1 edited', 1), cloud_custom_data: 'cd' } },
    { kind: 'msg', seq: 5, msg: m3 },
    { kind: 'deleted', seq: 6, peer: 'bob', msg_key: m2.msg_key },
    // An edit of a message this page deleted before it (an admin's, say) does not bring it back.
    { kind: 'modified', seq: 7, msg: edited(m2, 'm2 edited', 1) },
    { kind: 'msg', seq: 8, msg: c1 },
    { kind: 'cleared', seq: 9, peer: 'carol', upto: 1, conversation: true },
    { kind: 'msg', seq: 10, msg: c2 },
  ] as Entry[];
  const store = new MemoryStore();
  const c = new DuetClient({
    server: 'http://duet.invalid', user: 'alice', usersig: 'x', store, device: 'd',
    // Two pages, two batches: seqs 1 to 5 (m2 is stored by then), then 6 to 10.
    webSocket: scriptedServer(entries, []), syncLimit: 5,
  });
  const events: Array<[string, unknown]> = [];
  for (const name of ['message', 'modified', 'deleted', 'historyCleared', 'conversationDeleted'] as const) {
    c.on(name, (v: unknown) => events.push([name, name === 'message' || name === 'modified' ? (v as Message).msgKey : v]));
  }
  const done = new Promise<void>((r) => c.on('syncComplete', () => r()));
  await c.login();
  try {
    await done;
    assert.deepEqual(events, [
      ['message', m1.msg_key], ['message', m2.msg_key], ['modified', never.msg_key], ['modified', m1.msg_key],
      ['message', m3.msg_key], ['deleted', { peer: 'bob', msgKey: m2.msg_key }], ['modified', m2.msg_key],
      ['message', c1.msg_key], ['conversationDeleted', { peer: 'carol' }], ['historyCleared', { peer: 'carol' }],
      ['message', c2.msg_key],
    ]);
    assert.equal(await store.message('bob', never.msg_key), undefined, 'an edit of a message never held stores nothing');
    const e1 = (await store.message('bob', m1.msg_key))?.message;
    assert.deepEqual([e1 && textOf(e1), e1?.cloudCustomData, e1?.version], ['m1 edited', 'cd', 1]);
    assert.equal(await store.message('bob', m2.msg_key), undefined);
    assert.ok(await store.message('bob', m3.msg_key));
    assert.equal(await store.message('carol', c1.msg_key), undefined, 'cleared');
    assert.ok(await store.message('carol', c2.msg_key), 'numbered after the clear: kept');
    assert.equal(c.cursor, 10);
  } finally {
    await c.logout();
  }
});

test('store: the later version’s content wins; deletions and clears go before the batch’s messages', async () => {
  const s = new MemoryStore();
  const v0 = messageFromWire(wire('alice', 'bob', 1, 100));
  const v2 = { ...v0, body: [{ MsgType: 'TIMTextElem' as const, MsgContent: { Text: 'v2' } }], cloudCustomData: 'x', version: 2 };
  await s.commit({ ...emptyBatch(), messages: [{ peer: 'bob', message: v0, sentHere: true }, { peer: 'bob', message: v2, sentHere: false }] });
  // An older copy (a conversation's last read before the edit) does not undo it.
  await s.commit({ ...emptyBatch(), messages: [{ peer: 'bob', message: v0, sentHere: false }] });
  const r = await s.message('bob', v0.msgKey);
  assert.deepEqual([r?.message && textOf(r.message), r?.message.cloudCustomData, r?.message.version, r?.sentHere], ['v2', 'x', 2, true]);
  const [m2, m3] = [2, 3].map((n) => messageFromWire(wire('alice', 'bob', n, 100 + n))) as [Message, Message];
  await s.commit({ ...emptyBatch(), messages: [{ peer: 'bob', message: m2, sentHere: false }] });
  await s.commit({
    ...emptyBatch(), clears: [{ peer: 'bob', upto: 2 }], deletions: [{ peer: 'bob', msgKey: m3.msgKey }],
    messages: [{ peer: 'bob', message: m3, sentHere: false }], removedConversations: ['bob'],
  });
  assert.deepEqual((await s.messagesBefore('bob', null, 10)).map((m) => m.msgKey), [m3.msgKey]);
});
