/**
 * The local store: messages, the sync cursor, each conversation's coverage and the conversation list,
 * kept so that history pages the store holds whole are answered without the server and a reload or
 * reconnect resumes from the cursor. {@link MemoryStore} (Node, tests) and {@link IndexedDbStore}
 * (browsers) implement {@link LocalStore}; one store holds one user on one server.
 */

import { comparePositions, type Coverage, type Position, positionOf } from './coverage.js';
import {
  type Conversation, type Message, recall, upgradeConversation, upgradeMessage,
} from './model.js';

export interface StoredMessage {
  peer: string;
  message: Message;
  /** Sent from this device (its copy coming back through the log is not raised again). */
  sentHere: boolean;
}

/** Everything one step of the client changes, written at once. */
export interface Batch {
  /**
   * Messages to insert or update (by peer and `msgKey`). An update keeps `recalled` (with its `revoker`
   * and no content), `sentHere`, `needReadReceipt` and `receiptTime` once set, and the content of a later
   * `version` than its own. Applied after `deletions`, `clears` and `removedConversations`.
   */
  messages: StoredMessage[];
  /** Messages to remove (deleted from this user's side). */
  deletions: Array<{ peer: string; msgKey: string }>;
  /** Conversations whose history was cleared: every stored message of `peer` numbered up to `upto` goes. */
  clears: Array<{ peer: string; upto: number }>;
  /** Conversations to remove from the list (their messages stay unless cleared too). */
  removedConversations: string[];
  /** Messages to flag as recalled by `by`, their body and custom data dropped. */
  recalls: Array<{ peer: string; msgKey: string; by: string }>;
  /** Read receipts of messages this user sent: `peer` acknowledged `msgKey` at `time`. */
  receipts: Array<{ peer: string; msgKey: string; time: number }>;
  /** The new cursor, when the step applied logged entries. */
  cursor?: number;
  conversations: Conversation[];
  /** `conversations` is the whole list: forget the others. */
  allConversations?: boolean;
  coverage: Array<{ peer: string; coverage: Coverage }>;
}

export function emptyBatch(): Batch {
  return {
    messages: [], deletions: [], clears: [], removedConversations: [], recalls: [], receipts: [], conversations: [],
    coverage: [],
  };
}

export interface Snapshot {
  cursor: number;
  coverage: Map<string, Coverage>;
  conversations: Conversation[];
}

export interface LocalStore {
  load(): Promise<Snapshot>;
  /**
   * Writes a batch, at once: deletions, clears and removed conversations first, then messages, recalls,
   * receipts, the cursor, conversations and coverage. A message stored again keeps `sentHere`, `recalled`
   * (with `revoker`, and without content), `needReadReceipt` and `receiptTime` if either copy has them,
   * and the content of whichever copy has the later `version`.
   */
  commit(batch: Batch): Promise<void>;
  message(peer: string, msgKey: string): Promise<StoredMessage | undefined>;
  /** Stored messages of the conversation positioned before `before` (`null`: all), newest first, at most `count`. */
  messagesBefore(peer: string, before: Position | null, count: number): Promise<Message[]>;
  /** Stored `conv_seq`s above `after`, ascending. */
  convSeqsAbove(peer: string, after: number): Promise<number[]>;
  /** How many stored messages `peer` sent after `time`, not recalled. */
  countFromAfter(peer: string, time: number): Promise<number>;
  close(): void;
}

function merge(old: StoredMessage | undefined, next: StoredMessage): StoredMessage {
  if (old === undefined) return next;
  const o = upgradeMessage(old.message);
  const message = { ...next.message };
  if (o.version > message.version) {
    message.body = o.body;
    message.cloudCustomData = o.cloudCustomData;
    message.version = o.version;
  }
  if (o.recalled && !message.recalled) recall(message, o.revoker);
  message.needReadReceipt = o.needReadReceipt || message.needReadReceipt;
  message.receiptTime = message.receiptTime || o.receiptTime;
  return { peer: next.peer, sentHere: old.sentHere || next.sentHere, message };
}

/** `batch.messages` with the copies of one message folded into one (in order, as {@link merge} does). */
function folded(messages: StoredMessage[]): StoredMessage[] {
  const byKey = new Map<string, StoredMessage>();
  for (const r of messages) {
    const key = `${r.peer}\u0000${r.message.msgKey}`;
    byKey.set(key, merge(byKey.get(key), r));
  }
  return [...byKey.values()];
}

/** Applies a read receipt to a stored message (the first one counts). */
function receiptStored(r: { message: Message }, time: number): void {
  r.message.receiptTime ||= time;
}

/** A store in memory: gone with the process. Pass the same instance to a new client to resume. */
export class MemoryStore implements LocalStore {
  #cursor = 0;
  readonly #coverage = new Map<string, Coverage>();
  readonly #conversations = new Map<string, Conversation>();
  readonly #messages = new Map<string, Map<string, StoredMessage>>();

  async load(): Promise<Snapshot> {
    return {
      cursor: this.#cursor,
      coverage: new Map([...this.#coverage].map(([k, v]) => [k, structuredClone(v)])),
      conversations: [...this.#conversations.values()].map((c) => structuredClone(c)),
    };
  }

  async commit(batch: Batch): Promise<void> {
    for (const { peer, msgKey } of batch.deletions) this.#messages.get(peer)?.delete(msgKey);
    for (const { peer, upto } of batch.clears) {
      const conv = this.#messages.get(peer);
      for (const [key, r] of conv ?? []) if (r.message.convSeq <= upto) conv?.delete(key);
    }
    for (const peer of batch.removedConversations) this.#conversations.delete(peer);
    for (const r of batch.messages) {
      let conv = this.#messages.get(r.peer);
      if (conv === undefined) this.#messages.set(r.peer, (conv = new Map()));
      conv.set(r.message.msgKey, merge(conv.get(r.message.msgKey), structuredClone(r)));
    }
    for (const { peer, msgKey, by } of batch.recalls) {
      const r = this.#messages.get(peer)?.get(msgKey);
      if (r) recall(r.message, by);
    }
    for (const { peer, msgKey, time } of batch.receipts) {
      const r = this.#messages.get(peer)?.get(msgKey);
      if (r) receiptStored(r, time);
    }
    if (batch.cursor !== undefined) this.#cursor = batch.cursor;
    if (batch.allConversations) this.#conversations.clear();
    for (const c of batch.conversations) this.#conversations.set(c.peer, structuredClone(c));
    for (const { peer, coverage } of batch.coverage) this.#coverage.set(peer, structuredClone(coverage));
  }

  async message(peer: string, msgKey: string): Promise<StoredMessage | undefined> {
    const r = this.#messages.get(peer)?.get(msgKey);
    return r && structuredClone(r);
  }

  async messagesBefore(peer: string, before: Position | null, count: number): Promise<Message[]> {
    const all = [...(this.#messages.get(peer)?.values() ?? [])]
      .map((r) => r.message)
      .filter((m) => before === null || comparePositions(positionOf(m), before) < 0)
      .sort((a, b) => comparePositions(positionOf(b), positionOf(a)));
    return structuredClone(all.slice(0, count));
  }

  async convSeqsAbove(peer: string, after: number): Promise<number[]> {
    return [...(this.#messages.get(peer)?.values() ?? [])]
      .map((r) => r.message.convSeq)
      .filter((c) => c > after)
      .sort((a, b) => a - b);
  }

  async countFromAfter(peer: string, time: number): Promise<number> {
    let n = 0;
    for (const r of this.#messages.get(peer)?.values() ?? []) {
      if (r.message.from === peer && r.message.time > time && !r.message.recalled) n++;
    }
    return n;
  }

  close(): void {}
}

interface MessageRow {
  peer: string;
  msgKey: string;
  time: number;
  seq: number;
  random: number;
  convSeq: number;
  from: string;
  sentHere: boolean;
  message: Message;
}

function promised<T>(req: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

function done(tx: IDBTransaction): Promise<void> {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error ?? new Error('indexeddb transaction aborted'));
  });
}

/** A store in the browser's IndexedDB: history and the cursor survive a reload. */
export class IndexedDbStore implements LocalStore {
  private constructor(readonly db: IDBDatabase) {}

  /** Opens (creating if needed) the database `name`; one database per user and server. */
  static async open(name: string): Promise<IndexedDbStore> {
    const req = indexedDB.open(name, 1);
    req.onupgradeneeded = () => {
      const db = req.result;
      const messages = db.createObjectStore('messages', { keyPath: ['peer', 'msgKey'] });
      messages.createIndex('byPosition', ['peer', 'time', 'seq', 'random']);
      messages.createIndex('byConvSeq', ['peer', 'convSeq']);
      db.createObjectStore('meta');
      db.createObjectStore('conversations', { keyPath: 'peer' });
      db.createObjectStore('coverage');
    };
    return new IndexedDbStore(await promised(req));
  }

  async load(): Promise<Snapshot> {
    const tx = this.db.transaction(['meta', 'conversations', 'coverage'], 'readonly');
    // All requests at once: a transaction closes once none is pending.
    const [cursor, conversations, peers, covs] = (await Promise.all([
      promised(tx.objectStore('meta').get('cursor')),
      promised(tx.objectStore('conversations').getAll()),
      promised(tx.objectStore('coverage').getAllKeys()),
      promised(tx.objectStore('coverage').getAll()),
    ])) as [number | undefined, Conversation[], string[], Coverage[]];
    const coverage = new Map<string, Coverage>();
    peers.forEach((p, i) => {
      const c = covs[i];
      if (c !== undefined) coverage.set(p, c);
    });
    return { cursor: cursor ?? 0, coverage, conversations: conversations.map(upgradeConversation) };
  }

  async commit(batch: Batch): Promise<void> {
    const tx = this.db.transaction(['messages', 'meta', 'conversations', 'coverage'], 'readwrite');
    const finished = done(tx);
    const messages = tx.objectStore('messages');
    // Requests of a transaction run in the order they are made: these go before the messages' writes.
    for (const { peer, msgKey } of batch.deletions) messages.delete([peer, msgKey]);
    for (const { peer, upto } of batch.clears) {
      // The keys are read first; their deletions are requested as soon as they are known, which is before
      // any of the messages' writes (those wait for reads requested after this one).
      const range = IDBKeyRange.bound([peer, -Infinity], [peer, upto]);
      const req = messages.index('byConvSeq').getAllKeys(range);
      req.onsuccess = () => {
        for (const key of req.result) messages.delete(key);
      };
    }
    for (const peer of batch.removedConversations) tx.objectStore('conversations').delete(peer);
    // Two copies of one message are merged here: two reads before either write would lose one.
    for (const r of folded(batch.messages)) {
      const req = messages.get([r.peer, r.message.msgKey]);
      req.onsuccess = () => {
        const old = req.result as MessageRow | undefined;
        const m = merge(old && { peer: old.peer, message: old.message, sentHere: old.sentHere }, r);
        messages.put(IndexedDbStore.#row(m));
      };
    }
    for (const { peer, msgKey, by } of batch.recalls) {
      const req = messages.get([peer, msgKey]);
      req.onsuccess = () => {
        const row = req.result as MessageRow | undefined;
        if (row) {
          recall(row.message, by);
          messages.put(row);
        }
      };
    }
    for (const { peer, msgKey, time } of batch.receipts) {
      const req = messages.get([peer, msgKey]);
      req.onsuccess = () => {
        const row = req.result as MessageRow | undefined;
        if (row && !row.message.receiptTime) {
          receiptStored(row, time);
          messages.put(row);
        }
      };
    }
    if (batch.cursor !== undefined) tx.objectStore('meta').put(batch.cursor, 'cursor');
    if (batch.allConversations) tx.objectStore('conversations').clear();
    for (const c of batch.conversations) tx.objectStore('conversations').put(c);
    for (const { peer, coverage } of batch.coverage) tx.objectStore('coverage').put(coverage, peer);
    await finished;
  }

  static #row(r: StoredMessage): MessageRow {
    const m = r.message;
    return {
      peer: r.peer, msgKey: m.msgKey, time: m.time, seq: m.seq, random: m.random, convSeq: m.convSeq,
      from: m.from, sentHere: r.sentHere, message: m,
    };
  }

  async message(peer: string, msgKey: string): Promise<StoredMessage | undefined> {
    const tx = this.db.transaction('messages', 'readonly');
    const row = (await promised(tx.objectStore('messages').get([peer, msgKey]))) as MessageRow | undefined;
    return row && { peer: row.peer, message: upgradeMessage(row.message), sentHere: row.sentHere };
  }

  #scan(
    index: 'byPosition' | 'byConvSeq', range: IDBKeyRange, direction: IDBCursorDirection,
    take: (row: MessageRow) => boolean,
  ): Promise<void> {
    const tx = this.db.transaction('messages', 'readonly');
    const req = tx.objectStore('messages').index(index).openCursor(range, direction);
    return new Promise((resolve, reject) => {
      req.onerror = () => reject(req.error);
      req.onsuccess = () => {
        const cursor = req.result;
        if (cursor === null || !take(cursor.value as MessageRow)) return resolve();
        cursor.continue();
      };
    });
  }

  async messagesBefore(peer: string, before: Position | null, count: number): Promise<Message[]> {
    const out: Message[] = [];
    if (count <= 0) return out;
    const upper = before === null ? [peer, Infinity, Infinity, Infinity] : [peer, ...before];
    const range = IDBKeyRange.bound([peer, -Infinity, -Infinity, -Infinity], upper, false, before !== null);
    await this.#scan('byPosition', range, 'prev', (row) => {
      out.push(upgradeMessage(row.message));
      return out.length < count;
    });
    return out;
  }

  async convSeqsAbove(peer: string, after: number): Promise<number[]> {
    const out: number[] = [];
    await this.#scan('byConvSeq', IDBKeyRange.bound([peer, after], [peer, Infinity], true, false), 'next', (row) => {
      out.push(row.convSeq);
      return true;
    });
    return out;
  }

  async countFromAfter(peer: string, time: number): Promise<number> {
    let n = 0;
    const range = IDBKeyRange.bound([peer, time, Infinity, Infinity], [peer, Infinity, Infinity, Infinity], true, false);
    await this.#scan('byPosition', range, 'next', (row) => {
      if (row.from === peer && !row.message.recalled) n++;
      return true;
    });
    return n;
  }

  close(): void {
    this.db.close();
  }
}
