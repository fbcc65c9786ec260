/**
 * When the local store can answer a history page by itself (a port of the Rust SDK's `history` module).
 *
 * A conversation's messages are ordered by (time, `MsgSeq`, `MsgRandom`), a message's {@link Position},
 * and numbered by `conv_seq` (from 1, no gaps, in the order the server stored them). What the client knows
 * it holds of a conversation is its {@link Coverage}: every message numbered up to `through` positioned at
 * or after `held`. A history page establishes it, the first message (`conv_seq` 1) starts one that reaches
 * back to the beginning, and each stored message with the next `conv_seq` extends it. A page is answered
 * locally only when nothing numbered above `through` is known to exist and the page lies within `held`.
 */

/** (time, seq, random). */
export type Position = readonly [number, number, number];

export function comparePositions(a: Position, b: Position): number {
  return a[0] - b[0] || a[1] - b[1] || a[2] - b[2];
}

/** Which positions a coverage speaks for: none, those at or after one, or all. */
export type Held = { kind: 'nothing' } | { kind: 'from'; from: Position } | { kind: 'all' };

export interface Coverage {
  held: Held;
  /** Every message positioned within `held` and numbered up to this is held. */
  through: number;
  /** The highest `conv_seq` known to exist. */
  known: number;
}

/** What a position needs of a message. */
export interface Positioned {
  time: number;
  seq: number;
  random: number;
  convSeq: number;
}

export function positionOf(m: Positioned): Position {
  return [m.time, m.seq, m.random];
}

/** The position a `msg_key` (`<seq>_<random>_<time>`) names. */
export function positionOfKey(msgKey: string): Position | undefined {
  const parts = msgKey.split('_');
  if (parts.length !== 3) return undefined;
  const [seq, random, time] = parts.map(Number) as [number, number, number];
  if (![seq, random, time].every(Number.isSafeInteger)) return undefined;
  return [time, seq, random];
}

export function emptyCoverage(): Coverage {
  return { held: { kind: 'nothing' }, through: 0, known: 0 };
}

function includes(held: Held, at: Position): boolean {
  switch (held.kind) {
    case 'nothing': return false;
    case 'from': return comparePositions(at, held.from) >= 0;
    case 'all': return true;
  }
}

/** Whether `a` speaks for every position `b` speaks for. */
function reaches(a: Held, b: Held): boolean {
  if (b.kind === 'nothing' || a.kind === 'all') return true;
  if (a.kind === 'from' && b.kind === 'from') return comparePositions(a.from, b.from) <= 0;
  return false;
}

export function heardOf(cov: Coverage, convSeq: number): void {
  cov.known = Math.max(cov.known, convSeq);
}

/**
 * The server answered the page before `before` (`null`: the newest page) with `page` (newest first, now
 * stored); `complete`: nothing older exists; `convSeq`: the conversation's highest when read.
 */
export function serverPage(
  cov: Coverage, before: Position | null, page: Positioned[], complete: boolean, convSeq: number,
): void {
  heardOf(cov, convSeq);
  const oldest = page[page.length - 1];
  let reached: Held;
  if (complete) reached = { kind: 'all' };
  else if (oldest !== undefined) reached = { kind: 'from', from: positionOf(oldest) };
  else return;
  if (before === null) {
    if (!(cov.through >= convSeq && reaches(cov.held, reached))) {
      cov.held = reached;
      cov.through = convSeq;
    }
  } else if (includes(cov.held, before)) {
    if (reaches(reached, cov.held)) cov.held = reached;
    cov.through = Math.min(cov.through, convSeq);
  }
}

/** A message numbered `convSeq` was stored. */
export function stored(cov: Coverage, convSeq: number): void {
  heardOf(cov, convSeq);
  if (cov.held.kind === 'nothing' && convSeq === 1) {
    cov.held = { kind: 'all' };
    cov.through = 0;
  }
}

/** Moves `through` up over the stored `conv_seq`s that follow it (`heldAbove`: ascending, above `through`). */
export function extend(cov: Coverage, heldAbove: Iterable<number>): void {
  if (cov.held.kind === 'nothing') return;
  for (const c of heldAbove) {
    if (c === cov.through + 1) cov.through = c;
    else if (c > cov.through) break;
  }
}

/**
 * The page of `count` messages before some cursor, if `local` (the stored messages before it, newest
 * first, at most `count`) is all of it.
 */
export function localPage<M extends Positioned>(cov: Coverage, count: number, local: M[]): M[] | undefined {
  if (cov.held.kind === 'nothing' || cov.through < cov.known) return undefined;
  let whole: boolean;
  if (count === 0) whole = true;
  else {
    const oldest = local[count - 1];
    whole = oldest !== undefined ? includes(cov.held, positionOf(oldest)) : cov.held.kind === 'all';
  }
  return whole ? local.slice(0, count) : undefined;
}
