/**
 * The at-least-once delivery rules of the sync log, with no I/O (a port of the Rust SDK's `Sequencer`).
 *
 * The cursor is the highest `seq` applied. A live entry is applied only when it is `cursor + 1`; one at or
 * below the cursor is a duplicate and dropped; one beyond is a gap: it waits in a buffer while the client
 * pulls `sync` from the cursor, and is released once the entries before it have been applied. Entries of a
 * `sync` answer are authoritative: the cursor may jump over seqs the log no longer holds (retention).
 */

import type { Entry } from './protocol.js';

export type Live =
  | { kind: 'apply'; entries: Entry[] }
  | { kind: 'duplicate' }
  | { kind: 'gap' };

export interface Finish {
  /** Buffered entries to apply now, in order. */
  ready: Entry[];
  /** Buffered entries still wait behind a gap the round could not cover: pull again. */
  again: boolean;
}

export class Sequencer {
  #cursor: number;
  readonly #buffer = new Map<number, Entry>();

  constructor(cursor = 0) {
    this.#cursor = cursor;
  }

  get cursor(): number {
    return this.#cursor;
  }

  get hasGap(): boolean {
    return this.#buffer.size > 0;
  }

  /** A live entry with `seq > 0` (online-only entries bypass the sequencer). */
  live(entry: Entry): Live {
    const seq = entry.seq;
    if (seq <= this.#cursor) return { kind: 'duplicate' };
    if (seq > this.#cursor + 1) {
      this.#buffer.set(seq, entry);
      return { kind: 'gap' };
    }
    this.#cursor = seq;
    const out = [entry];
    this.#drainInto(out);
    return { kind: 'apply', entries: out };
  }

  /** One page of a `sync` answer: the entries newer than the cursor in `seq` order, then buffered ones that follow. */
  synced(entries: Entry[]): Entry[] {
    const sorted = [...entries].sort((a, b) => a.seq - b.seq);
    const out: Entry[] = [];
    for (const e of sorted) {
      if (e.seq <= this.#cursor) continue;
      this.#cursor = e.seq;
      out.push(e);
    }
    this.#drainInto(out);
    return out;
  }

  /**
   * The last page of a round was applied; the log's last seq was `latest` when the server answered.
   * Buffered entries at or below `latest` were covered by the round (any seq missing before them is gone
   * from the log), so they are released; a gap before newer ones means pulling again.
   */
  finish(latest: number): Finish {
    const out: Entry[] = [];
    this.#drainInto(out);
    for (const seq of this.#sortedKeys()) {
      if (seq > latest) break;
      const e = this.#buffer.get(seq);
      this.#buffer.delete(seq);
      if (e === undefined || seq <= this.#cursor) continue;
      this.#cursor = seq;
      out.push(e);
      this.#drainInto(out);
    }
    return { ready: out, again: this.#buffer.size > 0 };
  }

  #sortedKeys(): number[] {
    return [...this.#buffer.keys()].sort((a, b) => a - b);
  }

  #drainInto(out: Entry[]): void {
    for (const seq of this.#sortedKeys()) {
      if (seq <= this.#cursor) {
        this.#buffer.delete(seq);
      } else if (seq === this.#cursor + 1) {
        out.push(this.#buffer.get(seq) as Entry);
        this.#buffer.delete(seq);
        this.#cursor = seq;
      } else {
        break;
      }
    }
  }
}
