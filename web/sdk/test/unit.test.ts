/** The sync and history rules alone (ports of the Rust SDK's unit tests), and the backoff. */

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { Backoff } from '../src/backoff.js';
import {
  type Coverage, emptyCoverage, extend, heardOf, localPage, type Positioned, serverPage, stored,
} from '../src/coverage.js';
import type { Entry } from '../src/protocol.js';
import { Sequencer } from '../src/sequencer.js';

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
