/**
 * {@link DuetClient}: one user's session with a Duet server over the client protocol
 * (`docs/protocol.md`), behaving as the Rust SDK (`crates/duet-client`) does:
 *
 * - after every login (the first and each reconnect) it catches up: `syncStarted`, each missed entry
 *   (messages raised as `message`, in log order), the conversation list (`conversation` for each), then
 *   `syncComplete`;
 * - live entries are applied exactly once, in log order, whatever duplicates or gaps the connection
 *   produces: a gap (an entry beyond `cursor + 1`, or a `pong` whose `latest` is past the cursor) makes it
 *   pull `sync` from the cursor before applying anything newer ({@link Sequencer});
 * - messages sent from this client are not raised back as `message`;
 * - recalls, the peer's reading of a conversation and message read receipts update the stored messages
 *   and conversations before they are raised (`recalled`, `peerRead`, `readReceipt`); so do edits, one-sided
 *   deletes, cleared histories and deleted conversations (`modified`, `deleted`, `historyCleared`,
 *   `conversationDeleted`);
 * - it pings, reconnects with backoff after a dropped connection (and after close codes 1001, 4000,
 *   4003), and stops on logout, `kicked`, `sigExpired` or a refused login;
 * - a local store ({@link LocalStore}) answers history when it holds the whole page ({@link localPage}).
 *
 * Frames are handled one at a time, in arrival order, through a promise chain, so the store's
 * asynchronous calls never interleave two frames.
 */

import { Backoff } from './backoff.js';
import {
  type Coverage, emptyCoverage, extend, heardOf, localPage, type Position, positionOf, positionOfKey,
  serverPage, stored,
} from './coverage.js';
import { DuetError, EditConflictError, LocalCode } from './errors.js';
import { authorizedUrl, type UploadBody, type UploadOptions, upload } from './media.js';
import {
  type Conversation, conversationFromWire, emptyConversation, isPeerRead, type Message, messageFromWire, peerOf,
  recall, takeEdit,
} from './model.js';
import {
  Code, type ClientFrame, type Entry, MAX_KEYS_PER_REQUEST, type MediaType, type MsgElem, type Platform,
  PROTOCOL_VERSION, type RelationEvent, type Request, type ServerFrame, type Uploaded, type WireBlocked,
  type WireFriend, type WireFriendRequest,
} from './protocol.js';
import { Sequencer } from './sequencer.js';
import { type Batch, emptyBatch, IndexedDbStore, type LocalStore, MemoryStore } from './store.js';
import { openSocket, type Socket, type SocketFactory } from './transport.js';

export type ConnectionState =
  | { state: 'connecting' }
  | { state: 'connected' }
  /** The connection is gone; the client reconnects unless `stopped` is raised after this. */
  | { state: 'disconnected'; reason: string };

/** The events of a client and what each carries. */
export interface ClientEvents {
  connection: ConnectionState;
  syncStarted: undefined;
  /** A message this client has not shown yet: live, or missed while offline (raised during the sync). */
  message: Message;
  syncComplete: undefined;
  /** A conversation's last message, unread count or time changed (and, after each sync, every one). */
  conversation: Conversation;
  /**
   * A message of the conversation with `peer` was recalled, by `by` (its sender, or an app admin). It
   * stays in history, flagged `recalled`, without content; an unread count it was part of went down.
   */
  recalled: { peer: string; msgKey: string; by: string };
  /**
   * `peer` read what this user sent up to `time` (unix seconds): the conversation's read receipt
   * (Tencent's `onRecvC2CReadReceipt`). This user's messages to `peer` dated at or before it are read
   * ({@link DuetClient.isPeerRead}); the conversation's `peerReadTime` follows.
   */
  peerRead: { peer: string; time: number };
  /**
   * `peer` acknowledged this user's message `msgKey` (sent with `needReadReceipt`) with a read receipt
   * at `time` (Tencent's `onRecvMessageReadReceipts`); the stored message's `receiptTime` follows.
   */
  readReceipt: { peer: string; msgKey: string; time: number };
  /**
   * A message was edited, by its sender (on any of its devices) or an app admin: the message as it is now
   * (its `version` counts the edits; Tencent's `onRecvMessageModified`). Raised on both sides, the editing
   * device included. A stored copy, and the conversation's last message, were updated first; a message
   * never held here is not stored.
   */
  modified: Message;
  /**
   * This user deleted the message `msgKey` of the conversation with `peer` from its side (on this device
   * or another); the peer keeps it. The stored copy is gone, an unread count it was part of went down, and
   * the conversation's last message is the newest one left here.
   */
  deleted: { peer: string; msgKey: string };
  /**
   * This user cleared its history with `peer` (on this device or another): the messages stored so far are
   * gone and nothing is unread; the conversation stays, its last message gone.
   */
  historyCleared: { peer: string };
  /**
   * This user deleted the conversation with `peer` from its list (on this device or another). It comes back
   * with the next message. Its history stays unless it was cleared too (then `historyCleared` follows).
   */
  conversationDeleted: { peer: string };
  /**
   * Logged out: by another device or the admin (code 6208), by a kick that invalidated the UserSig
   * (70052, at a reconnect), or replaced by a newer connection of the same device (4001, no frame but
   * the close). The client stopped.
   */
  kicked: { code: number; info: string };
  /** The UserSig expired; the client stopped. Log in again with a new one. */
  sigExpired: { code: number; info: string };
  /** Friends, friend requests or the blacklist changed. */
  relation: RelationEvent;
  /** The client stopped for good (after logout, a kick, an expired UserSig or a refused login). */
  stopped: { reason: string };
}

export interface ClientOptions {
  /** The server's base URL, as for the REST API: `http://host:7080`. */
  server: string;
  user: string;
  usersig: string;
  /** Default `Web`. */
  platform?: Platform;
  /** A stable id of this installation; default: one kept in `localStorage` in browsers, else random. */
  device?: string;
  /** Default: IndexedDB in browsers (one database per server and user), memory elsewhere. */
  store?: LocalStore;
  /** A transient session (a tool beside the user's devices: `docs/protocol.md`, *Transient sessions*). */
  transient?: boolean;
  /** Milliseconds between pings (default 30 000; the server wants one at least every 60 s). */
  heartbeatMs?: number;
  /** How long a request may wait for its answer (default 15 000 ms). */
  requestTimeoutMs?: number;
  /** Reconnect delays (default 500 ms doubling to 30 s, with jitter). */
  backoff?: { minMs: number; maxMs: number };
  /** Entries per `sync` page (default 200, at most 500). */
  syncLimit?: number;
  /** The WebSocket to use; default the global one, or the `ws` package under Node. */
  webSocket?: SocketFactory;
  /**
   * For tests only: called with every live `entry` event; returning `true` drops it as if the push had
   * been lost (the client must notice the gap and pull it).
   */
  dropLiveEntry?: (entry: Entry) => boolean;
}

export interface SendOptions {
  cloudCustomData?: string;
  /** Delivered to live devices only, never stored (Tencent's `onlineUserOnly`). */
  onlineOnly?: boolean;
  /** Tencent's `OfflinePushInfo`. */
  push?: Record<string, unknown>;
  /** Tencent's `MsgRandom`; default random. */
  random?: number;
  /**
   * Ask the recipient for a message-level read receipt (Tencent's `needReadReceipt`): the recipient's
   * {@link DuetClient.sendReadReceipts} raises `readReceipt` here.
   */
  needReadReceipt?: boolean;
}

/** What {@link DuetClient.modify} changes: the body, the custom data, or both. */
export interface ModifyOptions {
  /** The new body: text and custom elements only (others: the server answers 6017). */
  body?: MsgElem[];
  cloudCustomData?: string;
  /**
   * The version the app showed (the message's `version`). When someone edited it since, the edit is
   * refused with an {@link EditConflictError} carrying the latest. Omitted: the latest is edited.
   */
  version?: number;
}

export interface SentMessage {
  msgKey: string;
  seq: number;
  random: number;
  time: number;
  convSeq: number;
  /** The message's place in the sender's own log (0: stored nowhere). */
  logSeq: number;
  /** The message as stored here. */
  message: Message;
}

export interface HistoryPage {
  /** Newest first. */
  messages: Message[];
  /** Nothing older exists (as far as the server's retention goes). */
  complete: boolean;
  /** Answered from the local store. */
  fromCache: boolean;
}

export interface Friend {
  peer: string;
  remark: string;
  groups: string[];
  source: string;
  wording: string;
  addTime: number;
}

export interface FriendRequest {
  from: string;
  to: string;
  wording: string;
  source: string;
  time: number;
}

export interface Blocked {
  peer: string;
  time: number;
}

type Handler<T> = (value: T) => void;

type Pending =
  | { kind: 'login' }
  | { kind: 'sync' }
  | { kind: 'ping' }
  | { kind: 'syncConversations' }
  | { kind: 'user'; req: Request; resolve: (f: ServerFrame) => void; reject: (e: DuetError) => void };

interface InFlight {
  what: Pending;
  timer: ReturnType<typeof setTimeout>;
}

interface Queued {
  req: Request;
  resolve: (f: ServerFrame) => void;
  reject: (e: DuetError) => void;
}

interface Session {
  ws: Socket;
  inflight: Map<number, InFlight>;
  loggedIn: boolean;
  /** A `sync` is in flight. */
  pulling: boolean;
  /** Catching up after login: the log, then the conversation list, then done. */
  catchup: 'log' | 'conversations' | 'done';
  ping?: ReturnType<typeof setInterval>;
  /** Why the session ends, decided on this side (a frame, a timeout) before the socket closes. */
  end?: End;
}

interface End {
  reconnect: boolean;
  reason: string;
}

/** Close codes after which the client needs the user (`docs/protocol.md`, *Closing*). */
const FINAL_CLOSE_CODES = new Set([1000, 1008, 4001, 4002]);

function randomU32(): number {
  return crypto.getRandomValues(new Uint32Array(1))[0] as number;
}

/** A random UUID (v4) from `getRandomValues`, which, unlike `randomUUID`, pages served over plain HTTP have. */
function uuid(): string {
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = ((b[6] as number) & 0x0f) | 0x40;
  b[8] = ((b[8] as number) & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

function defaultDevice(): string {
  const key = 'duet.device';
  try {
    const stored = globalThis.localStorage?.getItem(key);
    if (stored) return stored;
    const id = uuid();
    globalThis.localStorage?.setItem(key, id);
    return id;
  } catch {
    // Storage refused (private mode, sandboxed frame): a device for this page's life.
    return uuid();
  }
}

export class DuetClient {
  readonly server: string;
  readonly user: string;
  #usersig: string;
  readonly #opts: ClientOptions;
  readonly #device: string;
  readonly #handlers = new Map<keyof ClientEvents, Set<Handler<never>>>();
  #store: LocalStore | undefined;
  #seq = new Sequencer(0);
  #conversations = new Map<string, Conversation>();
  #recency = new Map<string, number>();
  #nextRecency = 0;
  #coverage = new Map<string, Coverage>();
  #session: Session | undefined;
  #queue: Queued[] = [];
  #nextId = 1;
  #serial: Promise<void> = Promise.resolve();
  #started = false;
  #stopped = false;
  #serverOffsetMs = 0;
  #backoff: Backoff;
  #wake: (() => void) | undefined;
  #firstLogin: { resolve: () => void; reject: (e: DuetError) => void } | undefined;
  /**
   * `(to, random)` of sends made in the last 10 minutes, answered or not: a send whose connection
   * dropped before its answer may still have been stored, and its copy then arrives through the sync.
   */
  readonly #recentSends = new Map<string, number>();

  constructor(opts: ClientOptions) {
    this.#opts = opts;
    this.server = opts.server.replace(/\/+$/, '');
    this.user = opts.user;
    this.#usersig = opts.usersig;
    this.#device = opts.device ?? defaultDevice();
    this.#backoff = new Backoff(opts.backoff?.minMs ?? 500, opts.backoff?.maxMs ?? 30_000);
  }

  // ---- events ----------------------------------------------------------------------------------

  /** Subscribes to an event; returns a function that unsubscribes. */
  on<K extends keyof ClientEvents>(event: K, handler: Handler<ClientEvents[K]>): () => void {
    let set = this.#handlers.get(event);
    if (set === undefined) this.#handlers.set(event, (set = new Set()));
    set.add(handler as Handler<never>);
    return () => this.off(event, handler);
  }

  off<K extends keyof ClientEvents>(event: K, handler: Handler<ClientEvents[K]>): void {
    this.#handlers.get(event)?.delete(handler as Handler<never>);
  }

  #emit<K extends keyof ClientEvents>(event: K, value: ClientEvents[K]): void {
    for (const h of [...(this.#handlers.get(event) ?? [])]) {
      try {
        (h as Handler<ClientEvents[K]>)(value);
      } catch (e) {
        console.error(`duet: a '${String(event)}' handler threw`, e);
      }
    }
  }

  // ---- lifecycle -------------------------------------------------------------------------------

  /** Whether the session is logged in right now. */
  get connected(): boolean {
    return this.#session?.loggedIn === true;
  }

  /** Whether the client stopped for good. */
  get stopped(): boolean {
    return this.#stopped;
  }

  /** The highest log entry applied. */
  get cursor(): number {
    return this.#seq.cursor;
  }

  /** The server's clock (ms), as of the last login or pong. */
  serverTime(): number {
    return Date.now() + this.#serverOffsetMs;
  }

  /**
   * Connects and logs in; resolves once logged in (the catch-up follows as events). Rejects with the
   * server's code when the login is refused, or {@link LocalCode.CONNECT_FAILED} when the first
   * connection cannot be opened. Later drops reconnect by themselves.
   */
  async login(): Promise<void> {
    if (this.#started) throw new DuetError(LocalCode.INVALID_ARGUMENT, 'login was called already');
    this.#started = true;
    this.#store = this.#opts.store ?? (await this.#defaultStore());
    const snap = await this.#store.load();
    this.#seq = new Sequencer(snap.cursor);
    this.#coverage = snap.coverage;
    for (const c of snap.conversations) this.#conversations.set(c.peer, c);
    const first = new Promise<void>((resolve, reject) => {
      this.#firstLogin = { resolve, reject };
    });
    void this.#run();
    return first;
  }

  async #defaultStore(): Promise<LocalStore> {
    if (typeof indexedDB !== 'undefined') {
      try {
        return await IndexedDbStore.open(`duet:${this.server}:${this.user}`);
      } catch (e) {
        console.warn('duet: IndexedDB unavailable, keeping history in memory', e);
      }
    }
    return new MemoryStore();
  }

  /** Logs out (the server closes the connection) and stops. */
  async logout(): Promise<void> {
    const s = this.#session;
    if (s?.loggedIn && !this.#stopped) {
      try {
        await this.#request({ op: 'logout' });
      } catch {
        // Stopping anyway.
      }
    }
    this.#stop('logged out');
  }

  /** Closes the connection as if the network dropped it; the client reconnects with backoff. */
  dropConnection(reason = 'dropped by the app'): void {
    const s = this.#session;
    if (s === undefined) return;
    s.end = { reconnect: true, reason };
    s.ws.close();
  }

  #stop(reason: string): void {
    if (this.#stopped) return;
    this.#stopped = true;
    const s = this.#session;
    if (s) {
      s.end ??= { reconnect: false, reason };
      try {
        s.ws.close(1000, reason);
      } catch {
        // Already closing.
      }
    }
    for (const q of this.#queue.splice(0)) q.reject(new DuetError(LocalCode.STOPPED, `client stopped: ${reason}`));
    this.#wake?.();
    this.#firstLogin?.reject(new DuetError(LocalCode.STOPPED, `client stopped: ${reason}`));
    this.#firstLogin = undefined;
    this.#emit('stopped', { reason });
  }

  async #run(): Promise<void> {
    const url = this.server.replace(/^http/, 'ws') + '/v1/connect';
    while (!this.#stopped) {
      this.#emit('connection', { state: 'connecting' });
      let end: End;
      try {
        const ws = await openSocket(url, this.#opts.webSocket);
        end = await this.#runSession(ws);
      } catch (e) {
        end = { reconnect: true, reason: `connect failed: ${(e as Error).message}` };
        if (this.#firstLogin) {
          this.#firstLogin.reject(new DuetError(LocalCode.CONNECT_FAILED, end.reason));
          this.#firstLogin = undefined;
          this.#stop(end.reason);
        }
      }
      if (this.#stopped) break;
      this.#emit('connection', { state: 'disconnected', reason: end.reason });
      if (!end.reconnect) {
        this.#stop(end.reason);
        break;
      }
      const delay = this.#backoff.nextDelay();
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, delay);
        this.#wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
      this.#wake = undefined;
    }
  }

  #runSession(ws: Socket): Promise<End> {
    const s: Session = { ws, inflight: new Map(), loggedIn: false, pulling: false, catchup: 'log' };
    this.#session = s;
    return new Promise<End>((resolve) => {
      ws.onmessage = (ev) => {
        if (typeof ev.data !== 'string') return;
        let frame: ServerFrame;
        try {
          frame = JSON.parse(ev.data) as ServerFrame;
        } catch {
          console.warn('duet: a frame that is not JSON; ignored');
          return;
        }
        this.#serial = this.#serial
          .then(() => (this.#session === s && s.end === undefined ? this.#onFrame(s, frame) : undefined))
          .catch((e: unknown) => {
            console.error('duet: handling a frame failed; reconnecting', e);
            this.#drop(s, `internal error: ${(e as Error).message}`);
          });
      };
      ws.onclose = (ev) => {
        clearInterval(s.ping);
        if (ev.code === 4001 && s.end === undefined) {
          // Replaced by a newer connection of the same device (another tab, say): no `kicked` frame
          // comes first, but for the app it is a kick.
          s.end = { reconnect: false, reason: `replaced: ${ev.reason}` };
          this.#emit('kicked', { code: 4001, info: ev.reason || 'replaced by a newer connection' });
        }
        const end = s.end ?? {
          reconnect: !FINAL_CLOSE_CODES.has(ev.code),
          reason: `closed by the server: ${ev.code}${ev.reason ? ` ${ev.reason}` : ''}`,
        };
        s.end = end;
        for (const [, f] of s.inflight) {
          clearTimeout(f.timer);
          if (f.what.kind === 'user') {
            f.what.reject(new DuetError(LocalCode.DISCONNECTED, `connection lost before an answer (${end.reason})`));
          }
        }
        s.inflight.clear();
        if (this.#session === s) this.#session = undefined;
        // Let frames already queued be handled (they check `s.end`) before reporting the end.
        void this.#serial.then(() => resolve(end));
      };
      const id = this.#id();
      this.#track(s, id, { kind: 'login' });
      this.#sendFrame(s, {
        op: 'login', id, protocol: PROTOCOL_VERSION, user: this.user, usersig: this.#usersig,
        platform: this.#opts.platform ?? 'Web', device: this.#device,
        ...(this.#opts.transient ? { transient: true } : {}),
      });
    });
  }

  /** Ends the session from this side; the client reconnects. */
  #drop(s: Session, reason: string): void {
    if (s.end) return;
    s.end = { reconnect: true, reason };
    s.ws.close();
  }

  #id(): number {
    return this.#nextId++;
  }

  #sendFrame(s: Session, frame: ClientFrame): void {
    try {
      s.ws.send(JSON.stringify(frame));
    } catch (e) {
      this.#drop(s, `send failed: ${(e as Error).message}`);
    }
  }

  #track(s: Session, id: number, what: Pending): void {
    const timer = setTimeout(() => {
      if (!s.inflight.delete(id)) return;
      if (what.kind === 'user') {
        what.reject(new DuetError(LocalCode.TIMEOUT, `no answer to '${what.req.op}' in time`));
      } else {
        // An internal request unanswered: the connection is stuck.
        this.#drop(s, `no answer to '${what.kind}' in time`);
      }
    }, this.#opts.requestTimeoutMs ?? 15_000);
    s.inflight.set(id, { what, timer });
  }

  /** Sends a request now when logged in, else once logged in; resolves with its answer. */
  #request(req: Request): Promise<ServerFrame> {
    if (this.#stopped || !this.#started) {
      return Promise.reject(new DuetError(LocalCode.STOPPED, this.#stopped ? 'client stopped' : 'not logged in'));
    }
    return new Promise((resolve, reject) => {
      const s = this.#session;
      if (s?.loggedIn && s.end === undefined) this.#sendRequest(s, { req, resolve, reject });
      else this.#queue.push({ req, resolve, reject });
    });
  }

  #sendRequest(s: Session, q: Queued): void {
    const id = this.#id();
    this.#track(s, id, { kind: 'user', ...q });
    this.#sendFrame(s, { ...q.req, id } as ClientFrame);
  }

  // ---- frames ----------------------------------------------------------------------------------

  async #onFrame(s: Session, frame: ServerFrame): Promise<void> {
    switch (frame.op) {
      case 'entry':
        return this.#onEntry(s, frame.entry);
      case 'relation':
        this.#emit('relation', frame.event);
        return;
      case 'relations_changed':
        this.#emit('relation', { kind: 'relations_changed' });
        return;
      case 'kicked':
        s.end = { reconnect: false, reason: `kicked: ${frame.info}` };
        this.#emit('kicked', { code: frame.code, info: frame.info });
        this.#stop(s.end.reason);
        return;
      case 'sig_expired':
        s.end = { reconnect: false, reason: `usersig expired: ${frame.info}` };
        this.#emit('sigExpired', { code: frame.code, info: frame.info });
        this.#stop(s.end.reason);
        return;
      case 'error':
        return this.#onError(s, frame.id, frame.code, frame.info);
      default:
        break;
    }
    const found = s.inflight.get(frame.id);
    if (found === undefined) {
      console.warn(`duet: an answer '${frame.op}' to no request (${frame.id}); ignored`);
      return;
    }
    s.inflight.delete(frame.id);
    clearTimeout(found.timer);
    const what = found.what;
    switch (what.kind) {
      case 'login':
        if (frame.op !== 'logged_in') return this.#drop(s, `'${frame.op}' answered login`);
        return this.#onLoggedIn(s, frame.latest, frame.server_time);
      case 'sync':
        if (frame.op !== 'synced') return this.#drop(s, `'${frame.op}' answered sync`);
        return this.#onSynced(s, frame.entries, frame.latest, frame.more);
      case 'ping':
        if (frame.op === 'pong') {
          this.#serverOffsetMs = frame.server_time - Date.now();
          if (frame.latest > this.#seq.cursor && !s.pulling) this.#requestSync(s);
        }
        return;
      case 'syncConversations':
        if (frame.op !== 'conversations') return this.#drop(s, `'${frame.op}' answered conversations`);
        for (const c of await this.#replaceConversations(frame.items)) this.#emit('conversation', c);
        s.catchup = 'done';
        this.#emit('syncComplete', undefined);
        return;
      case 'user':
        return this.#onAnswer(what.req, frame, what.resolve);
    }
  }

  #onError(s: Session, id: number, code: number, info: string): void {
    const found = s.inflight.get(id);
    if (found === undefined) {
      console.warn(`duet: server error ${code} (${info}) for no request`);
      return;
    }
    s.inflight.delete(id);
    clearTimeout(found.timer);
    const what = found.what;
    if (what.kind === 'user') {
      what.reject(new DuetError(code, info));
    } else if (what.kind === 'login') {
      // The server closes after a refused login: the user must act (a new UserSig, …).
      const reason = `login refused: ${code} ${info}`;
      s.end = { reconnect: false, reason };
      if (code === Code.KICK_INVALIDATED) this.#emit('kicked', { code, info });
      if (this.#firstLogin) {
        this.#firstLogin.reject(new DuetError(code, info));
        this.#firstLogin = undefined;
      }
      this.#stop(reason);
    } else {
      this.#drop(s, `'${what.kind}' refused: ${code} ${info}`);
    }
  }

  async #onLoggedIn(s: Session, latest: number, serverTime: number): Promise<void> {
    s.loggedIn = true;
    s.catchup = 'log';
    this.#serverOffsetMs = serverTime - Date.now();
    this.#backoff.reset();
    if (latest < this.#seq.cursor) {
      // The server's log restarted (a new server, or data lost): the cursor means nothing there.
      console.warn(`duet: the server's log (${latest}) is behind the local cursor (${this.#seq.cursor}); syncing from 0`);
      this.#seq = new Sequencer(0);
    }
    s.ping = setInterval(() => {
      if (s.end !== undefined) return;
      const id = this.#id();
      this.#track(s, id, { kind: 'ping' });
      this.#sendFrame(s, { op: 'ping', id });
    }, this.#opts.heartbeatMs ?? 30_000);
    this.#emit('connection', { state: 'connected' });
    if (this.#firstLogin) {
      this.#firstLogin.resolve();
      this.#firstLogin = undefined;
    }
    this.#emit('syncStarted', undefined);
    if (latest > this.#seq.cursor) this.#requestSync(s);
    else this.#requestConversations(s);
    for (const q of this.#queue.splice(0)) this.#sendRequest(s, q);
  }

  #requestSync(s: Session): void {
    s.pulling = true;
    const id = this.#id();
    this.#track(s, id, { kind: 'sync' });
    this.#sendFrame(s, { op: 'sync', id, after: this.#seq.cursor, limit: this.#opts.syncLimit ?? 200 });
  }

  #requestConversations(s: Session): void {
    s.catchup = 'conversations';
    const id = this.#id();
    this.#track(s, id, { kind: 'syncConversations' });
    this.#sendFrame(s, { op: 'conversations', id });
  }

  async #onSynced(s: Session, entries: Entry[], latest: number, more: boolean): Promise<void> {
    s.pulling = false;
    const live = s.catchup === 'done';
    const before = this.#seq.cursor;
    await this.#apply(s, this.#seq.synced(entries), live);
    if (more) {
      if (this.#seq.cursor > before) return this.#requestSync(s);
      console.warn('duet: sync answered more=true without entries past the cursor; treating the round as over');
    }
    const finish = this.#seq.finish(latest);
    await this.#apply(s, finish.ready, live);
    if (finish.again) return this.#requestSync(s);
    if (s.catchup === 'log') this.#requestConversations(s);
  }

  async #onEntry(s: Session, entry: Entry): Promise<void> {
    if (!s.loggedIn) return;
    if (this.#opts.dropLiveEntry?.(entry)) return;
    const live = s.catchup === 'done';
    if (entry.seq === 0) {
      // Online-only: never logged, shown once, no gap logic.
      return this.#apply(s, [entry], live);
    }
    const r = this.#seq.live(entry);
    if (r.kind === 'apply') return this.#apply(s, r.entries, live);
    if (r.kind === 'gap' && !s.pulling) this.#requestSync(s);
  }

  async #onAnswer(req: Request, frame: ServerFrame, resolve: (f: ServerFrame) => void): Promise<void> {
    if (req.op === 'send' && frame.op === 'sent') {
      // Stored as sent here before anything else is handled, so its copy in the log is not raised.
      await this.#onSent(this.#sentMessage(req, frame));
    } else if (req.op === 'history' && frame.op === 'history') {
      await this.#onHistory(req.peer, req.before, frame.messages.map(messageFromWire), frame.complete, frame.conv_seq);
    } else if (req.op === 'conversations' && frame.op === 'conversations') {
      await this.#replaceConversations(frame.items);
    } else if (req.op === 'mark_read' && frame.op === 'ok') {
      await this.#onMarkedRead(req.peer, req.time);
    } else if (req.op === 'modify' && frame.op === 'modified') {
      // The log's `modified` entry follows (and raises `modified`); the copy here is brought up to date now,
      // so that history read once `modify` resolves shows the edit.
      await this.#onEdited(messageFromWire(frame.msg));
    }
    resolve(frame);
  }

  // ---- applying ----------------------------------------------------------------------------------

  /** `(to, random)` of every send not yet answered: their copies coming back through the log are ours. */
  #ownSends(s: Session): Array<[string, number]> {
    const reqs = [...this.#queue.map((q) => q.req)];
    for (const f of s.inflight.values()) if (f.what.kind === 'user') reqs.push(f.what.req);
    const own = reqs.flatMap((r) => (r.op === 'send' ? [[r.to, r.random] as [string, number]] : []));
    for (const key of this.#recentSends.keys()) {
      const at = key.lastIndexOf('\u0000');
      own.push([key.slice(0, at), Number(key.slice(at + 1))]);
    }
    return own;
  }

  #noteSend(to: string, random: number): void {
    const now = Date.now();
    for (const [key, at] of this.#recentSends) {
      if (now - at < 10 * 60_000) break;
      this.#recentSends.delete(key);
    }
    this.#recentSends.set(`${to}\u0000${random}`, now);
  }

  #conversation(peer: string): Conversation {
    let c = this.#conversations.get(peer);
    if (c === undefined) {
      c = emptyConversation(peer);
      this.#conversations.set(peer, c);
    }
    return c;
  }

  /** Makes `m` the conversation's last message if it is the latest in history's order. */
  #touch(c: Conversation, m: Message): void {
    if (c.last === null || comparePos(positionOf(m), positionOf(c.last)) >= 0) {
      c.last = m;
      c.time = Math.max(c.time, m.time);
      this.#recency.set(c.peer, ++this.#nextRecency);
    }
    c.convSeq = Math.max(c.convSeq, m.convSeq);
  }

  /**
   * Applies entries in order: stores messages, read marks, recalls, read receipts, edits, deletes and
   * clears with the new cursor in one batch, then raises the events. `live`: also report conversation
   * changes (during the catch-up the full list follows instead).
   */
  async #apply(s: Session, entries: Entry[], live: boolean): Promise<void> {
    if (entries.length === 0) return;
    const store = this.#store as LocalStore;
    const me = this.user;
    const own = this.#ownSends(s);
    const batch = emptyBatch();
    const events: Array<() => void> = [];
    const changed = new Set<string>();
    for (const entry of entries) {
      if (entry.kind === 'msg') {
        const m = messageFromWire(entry.msg);
        const mine = m.from === me;
        const pendingSend = mine && own.some(([to, r]) => to === m.to && r === m.random);
        if (entry.seq === 0 || m.convSeq === 0) {
          if (!pendingSend) events.push(() => this.#emit('message', m));
          continue;
        }
        const peer = peerOf(m, me);
        const sentHere = pendingSend || (mine && (await store.message(peer, m.msgKey))?.sentHere === true);
        const c = this.#conversation(peer);
        this.#touch(c, m);
        if (!mine && !m.recalled) c.unread++;
        changed.add(peer);
        batch.messages.push({ peer, message: m, sentHere });
        if (!sentHere) events.push(() => this.#emit('message', m));
      } else if (entry.kind === 'read') {
        const c = this.#conversations.get(entry.peer);
        if (c === undefined) continue;
        const old = c.unread;
        const allRead = c.last === null || c.last.time <= entry.time;
        let unread = 0;
        if (!allRead && old > 0) {
          const storedCount = await store.countFromAfter(entry.peer, entry.time);
          const inBatch = batch.messages.filter(
            (r) => r.peer === entry.peer && r.message.from === entry.peer && r.message.time > entry.time
              && !r.message.recalled,
          ).length;
          unread = Math.min(old, storedCount + inBatch);
        }
        if (unread !== old) {
          c.unread = unread;
          changed.add(entry.peer);
        }
      } else if (entry.kind === 'recall') {
        const { peer, msg_key: msgKey } = entry;
        const by = entry.by ?? '';
        const c = this.#conversations.get(peer);
        if (c && (await this.#recalledUnread(batch, peer, msgKey))) {
          c.unread--;
          changed.add(peer);
        }
        for (const r of batch.messages) if (r.peer === peer && r.message.msgKey === msgKey) recall(r.message, by);
        const last = c?.last;
        if (last && last.msgKey === msgKey && !last.recalled) {
          recall(last, by);
          changed.add(peer);
        }
        batch.recalls.push({ peer, msgKey, by });
        events.push(() => this.#emit('recalled', { peer, msgKey, by }));
      } else if (entry.kind === 'peer_read') {
        const { peer, time } = entry;
        const c = this.#conversation(peer);
        if (time > c.peerReadTime) {
          c.peerReadTime = time;
          changed.add(peer);
        }
        events.push(() => this.#emit('peerRead', { peer, time }));
      } else if (entry.kind === 'receipt') {
        const { peer, msg_key: msgKey, time } = entry;
        for (const r of batch.messages) {
          if (r.peer === peer && r.message.msgKey === msgKey) r.message.receiptTime ||= time;
        }
        batch.receipts.push({ peer, msgKey, time });
        events.push(() => this.#emit('readReceipt', { peer, msgKey, time }));
      } else if (entry.kind === 'modified') {
        const m = messageFromWire(entry.msg);
        const peer = peerOf(m, me);
        if (await this.#edit(batch, peer, m)) changed.add(peer);
        events.push(() => this.#emit('modified', m));
      } else if (entry.kind === 'deleted') {
        const { peer, msg_key: msgKey } = entry;
        const c = this.#conversations.get(peer);
        if (c && (await this.#recalledUnread(batch, peer, msgKey))) {
          c.unread--;
          changed.add(peer);
        }
        batch.messages = batch.messages.filter((r) => !(r.peer === peer && r.message.msgKey === msgKey));
        batch.deletions.push({ peer, msgKey });
        if (c?.last?.msgKey === msgKey) {
          c.last = await this.#latestLeft(batch, peer);
          changed.add(peer);
        }
        events.push(() => this.#emit('deleted', { peer, msgKey }));
      } else if (entry.kind === 'cleared') {
        const { peer, upto, conversation } = entry;
        if (upto > 0) {
          batch.messages = batch.messages.filter((r) => !(r.peer === peer && r.message.convSeq <= upto));
          batch.clears.push({ peer, upto });
          const c = this.#conversations.get(peer);
          if (c) {
            c.unread = 0;
            if (c.last && c.last.convSeq <= upto) c.last = null;
            changed.add(peer);
          }
        }
        if (conversation) {
          this.#conversations.delete(peer);
          this.#recency.delete(peer);
          changed.delete(peer);
          batch.removedConversations.push(peer);
          events.push(() => this.#emit('conversationDeleted', { peer }));
        }
        if (upto > 0) events.push(() => this.#emit('historyCleared', { peer }));
      }
      // Any other kind is one this build does not know (docs/protocol.md: skip it, its seq still counts).
    }
    if (entries.some((e) => e.seq > 0)) batch.cursor = this.#seq.cursor;
    batch.conversations = [...changed].flatMap((p) => {
      const c = this.#conversations.get(p);
      return c ? [c] : [];
    });
    await this.#cover(batch);
    // Persist first, so that the app never hears of something the store would forget.
    await store.commit(batch);
    for (const e of events) e();
    if (live) for (const p of changed) this.#emitConversation(p);
  }

  /**
   * Whether the message `msgKey` that `peer` sent, about to be recalled, counts in the conversation's
   * unread count: it is one of the newest `unread` messages received from `peer` not recalled (the unread
   * ones are the newest, since a read covers everything up to a time), in `batch` (applied before it in
   * this batch) or else in the local store.
   */
  async #recalledUnread(batch: Batch, peer: string, msgKey: string): Promise<boolean> {
    const unread = this.#conversations.get(peer)?.unread ?? 0;
    if (unread === 0) return false;
    const received = (m: Message) => m.from === peer && !m.recalled && m.convSeq > 0;
    const newest = batch.messages.filter((r) => r.peer === peer && received(r.message)).map((r) => r.message);
    const stored = await (this.#store as LocalStore).messagesBefore(peer, null, unread + 64 + batch.deletions.length);
    // Messages this batch deleted or cleared before are not there any more.
    newest.push(...stored.filter((m) => received(m) && !gone(batch, peer, m)));
    newest.sort((a, b) => comparePos(positionOf(b), positionOf(a)));
    const keys: string[] = [];
    for (const m of newest) if (keys.at(-1) !== m.msgKey) keys.push(m.msgKey);
    return keys.slice(0, unread).includes(msgKey);
  }

  /**
   * The newest message of the conversation with `peer` left once `batch`'s deletions and clears are
   * applied: the conversation's last message after its last one was deleted (`null` when none is held).
   */
  async #latestLeft(batch: Batch, peer: string): Promise<Message | null> {
    const cleared = batch.clears.some((c) => c.peer === peer);
    const limit = batch.deletions.length + 1 + (cleared ? 500 : 0);
    const stored = await (this.#store as LocalStore).messagesBefore(peer, null, limit);
    const left = stored.concat(batch.messages.filter((r) => r.peer === peer).map((r) => r.message))
      .filter((m) => !gone(batch, peer, m));
    let latest: Message | null = null;
    for (const m of left) if (latest === null || comparePos(positionOf(m), positionOf(latest)) > 0) latest = m;
    return latest;
  }

  /**
   * Takes an edited message `m` (of the conversation with `peer`) into `batch` when a copy is held (in the
   * batch or the store, and not deleted by the batch), and into the conversation's last message. Returns
   * whether the conversation changed.
   */
  async #edit(batch: Batch, peer: string, m: Message): Promise<boolean> {
    const inBatch = batch.messages.some((r) => r.peer === peer && r.message.msgKey === m.msgKey);
    // Only a message held here is updated: one never seen stays for history to bring.
    const held = inBatch
      || (!gone(batch, peer, m) && (await (this.#store as LocalStore).message(peer, m.msgKey)) !== undefined);
    if (held) batch.messages.push({ peer, message: m, sentHere: false });
    const c = this.#conversations.get(peer);
    if (c?.last?.msgKey !== m.msgKey) return false;
    // A copy: the object the conversation had may be one the app was handed.
    const last = { ...c.last };
    if (!takeEdit(last, m)) return false;
    c.last = last;
    return true;
  }

  /** The answer to this device's `modify`: the held copy and the conversation take the edit. */
  async #onEdited(m: Message): Promise<void> {
    const peer = peerOf(m, this.user);
    const batch = emptyBatch();
    const changed = await this.#edit(batch, peer, m);
    const c = this.#conversations.get(peer);
    if (changed && c) batch.conversations = [c];
    if (batch.messages.length === 0 && !changed) return;
    await (this.#store as LocalStore).commit(batch);
    if (changed) this.#emitConversation(peer);
  }

  #emitConversation(peer: string): void {
    const c = this.#conversations.get(peer);
    if (c) this.#emit('conversation', { ...c });
  }

  /** Brings the coverage of the conversations whose messages `batch` stores up to date (see coverage.ts). */
  async #cover(batch: Batch): Promise<void> {
    const store = this.#store as LocalStore;
    const seqs = new Map<string, number[]>();
    const all: Array<[string, Message]> = batch.messages.map((r) => [r.peer, r.message]);
    for (const c of batch.conversations) if (c.last) all.push([c.peer, c.last]);
    for (const [peer, m] of all) {
      if (m.convSeq > 0) {
        let list = seqs.get(peer);
        if (list === undefined) seqs.set(peer, (list = []));
        list.push(m.convSeq);
      }
    }
    for (const [peer, list] of seqs) {
      const cov = structuredClone(this.#coverage.get(peer) ?? emptyCoverage());
      const before = JSON.stringify(cov);
      // Nothing held lies above `through` when nothing above it is known to exist.
      const quiet = cov.through >= cov.known;
      for (const c of list) stored(cov, c);
      let above = list.filter((c) => c > cov.through);
      if (!quiet && cov.held.kind !== 'nothing') above = above.concat(await store.convSeqsAbove(peer, cov.through));
      above = [...new Set(above)].sort((a, b) => a - b);
      extend(cov, above);
      if (JSON.stringify(cov) !== before) {
        this.#coverage.set(peer, cov);
        batch.coverage.push({ peer, coverage: cov });
      }
    }
  }

  async #replaceConversations(items: Parameters<typeof conversationFromWire>[0][]): Promise<Conversation[]> {
    const batch = emptyBatch();
    const next = new Map<string, Conversation>();
    // The server lists the latest first: the first is the most recent.
    items.forEach((item, i) => {
      const c = conversationFromWire(item);
      next.set(c.peer, c);
      this.#recency.set(c.peer, this.#nextRecency + items.length - i);
      const cov = structuredClone(this.#coverage.get(c.peer) ?? emptyCoverage());
      heardOf(cov, c.convSeq);
      this.#coverage.set(c.peer, cov);
      batch.coverage.push({ peer: c.peer, coverage: cov });
      if (c.last && c.last.convSeq > 0) batch.messages.push({ peer: c.peer, message: c.last, sentHere: false });
    });
    this.#nextRecency += items.length;
    this.#conversations = next;
    batch.conversations = [...next.values()];
    batch.allConversations = true;
    await this.#cover(batch);
    await (this.#store as LocalStore).commit(batch);
    return this.conversationList();
  }

  async #onHistory(
    peer: string, before: string | undefined, messages: Message[], complete: boolean, convSeq: number,
  ): Promise<void> {
    const batch = emptyBatch();
    const storedMsgs = messages.filter((m) => m.convSeq > 0);
    batch.messages = storedMsgs.map((message) => ({ peer, message, sentHere: false }));
    const cursor: Position | null | undefined = before ? positionOfKey(before) : null;
    if (cursor !== undefined) {
      const cov = structuredClone(this.#coverage.get(peer) ?? emptyCoverage());
      serverPage(cov, cursor, storedMsgs, complete, convSeq);
      this.#coverage.set(peer, cov);
      batch.coverage.push({ peer, coverage: cov });
    }
    await this.#cover(batch);
    await (this.#store as LocalStore).commit(batch);
  }

  async #onMarkedRead(peer: string, time: number | undefined): Promise<void> {
    const c = this.#conversations.get(peer);
    if (c === undefined || c.unread === 0) return;
    if (time !== undefined && c.last !== null && c.last.time > time) return;
    c.unread = 0;
    await (this.#store as LocalStore).commit({ ...emptyBatch(), conversations: [c] });
    this.#emitConversation(peer);
  }

  // ---- requests ----------------------------------------------------------------------------------

  /** Sends a message of `body` (Tencent elements) to `to`. */
  async send(to: string, body: MsgElem[], opts: SendOptions = {}): Promise<SentMessage> {
    const random = opts.random ?? randomU32();
    this.#noteSend(to, random);
    const req: Request = {
      op: 'send', to, random, body,
      ...(opts.cloudCustomData ? { cloud_custom_data: opts.cloudCustomData } : {}),
      ...(opts.onlineOnly ? { online_only: true } : {}),
      ...(opts.push ? { push: opts.push } : {}),
      ...(opts.needReadReceipt ? { need_read_receipt: true } : {}),
    };
    const f = await this.#request(req);
    if (f.op !== 'sent' || req.op !== 'send') throw new DuetError(LocalCode.DISCONNECTED, `'${f.op}' answered send`);
    const message = this.#sentMessage(req, f);
    return {
      msgKey: f.msg_key, seq: f.seq, random: f.random, time: f.time, convSeq: f.conv_seq, logSeq: f.log_seq,
      message,
    };
  }

  /** The message a `send` stored, as the server answered it. */
  #sentMessage(
    req: Extract<Request, { op: 'send' }>, f: Extract<ServerFrame, { op: 'sent' }>,
  ): Message {
    return {
      from: this.user, to: req.to, msgKey: f.msg_key, seq: f.seq, random: f.random, time: f.time,
      convSeq: f.conv_seq, body: req.body, cloudCustomData: req.cloud_custom_data ?? '', recalled: false,
      revoker: '', peerRead: false, needReadReceipt: req.need_read_receipt ?? false, receiptTime: 0, nick: '',
      faceUrl: '', system: false, version: 0,
    };
  }

  /** Runs `fn` in turn with the frame handlers. */
  #serialized<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#serial.then(fn);
    this.#serial = run.then(() => undefined, () => undefined);
    return run;
  }

  async #onSent(m: Message): Promise<void> {
    if (m.convSeq === 0) return;
    const store = this.#store as LocalStore;
    const existing = await store.message(m.to, m.msgKey);
    // The log's copy may have come first, carrying the nickname and avatar.
    const message = existing ? { ...existing.message } : m;
    const c = this.#conversation(m.to);
    this.#touch(c, message);
    const batch: Batch = { ...emptyBatch(), messages: [{ peer: m.to, message, sentHere: true }], conversations: [c] };
    await this.#cover(batch);
    await store.commit(batch);
    this.#emitConversation(m.to);
  }

  /**
   * A page of history with `peer`, newest first, older than the message `before` (a `msgKey`; omit for
   * the newest page). Answered from the local store when it holds the whole page, else by the server.
   */
  async history(peer: string, opts: { count?: number; before?: string } = {}): Promise<HistoryPage> {
    const count = Math.min(Math.max(opts.count ?? 20, 1), 100);
    const local = await this.#serialized(() => this.#localPage(peer, count, opts.before));
    if (local) {
      return { messages: local.map((m) => this.#withPeerRead(m)), complete: local.length < count, fromCache: true };
    }
    const f = await this.#request({ op: 'history', peer, count, ...(opts.before ? { before: opts.before } : {}) });
    if (f.op !== 'history') throw new DuetError(LocalCode.DISCONNECTED, `'${f.op}' answered history`);
    return {
      messages: f.messages.map((m) => this.#withPeerRead(messageFromWire(m))), complete: f.complete,
      fromCache: false,
    };
  }

  /** `m` with `peerRead` set when it is this user's and its conversation's read receipt covers it. */
  #withPeerRead(m: Message): Message {
    if (m.from === this.user) m.peerRead = this.isPeerRead(m);
    return m;
  }

  /**
   * Whether the peer has read `m`, a message this user sent: the conversation's read receipt covers it
   * (its time is at or before the conversation's `peerReadTime`), or `m` says so.
   */
  isPeerRead(m: Message): boolean {
    if (m.from !== this.user) return false;
    const c = this.#conversations.get(m.to);
    return c ? isPeerRead(c, m) : m.peerRead;
  }

  async #localPage(peer: string, count: number, before: string | undefined): Promise<Message[] | undefined> {
    const cov = this.#coverage.get(peer);
    if (cov === undefined || this.#store === undefined) return undefined;
    let at: Position | null = null;
    if (before) {
      // The cursor must be a message held here.
      const r = await this.#store.message(peer, before);
      if (r === undefined || r.message.convSeq === 0) return undefined;
      at = positionOf(r.message);
    }
    return localPage(cov, count, await this.#store.messagesBefore(peer, at, count));
  }

  /** The conversation list as this client knows it, latest first. */
  conversationList(): Conversation[] {
    const recency = (p: string): number => this.#recency.get(p) ?? 0;
    return [...this.#conversations.values()]
      .sort((a, b) => b.time - a.time || recency(b.peer) - recency(a.peer) || (a.peer < b.peer ? -1 : 1))
      .map((c) => ({ ...c }));
  }

  /** The user's recent contacts from the server (also refreshes the local list), latest first. */
  async conversations(): Promise<Conversation[]> {
    await this.#request({ op: 'conversations' });
    return this.conversationList();
  }

  /** Marks what `peer` sent up to `time` (unix seconds; default now) as read. */
  async markRead(peer: string, time?: number): Promise<void> {
    await this.#request({ op: 'mark_read', peer, ...(time !== undefined ? { time } : {}) });
  }

  /**
   * Recalls `msgKey`, a message this user sent `peer`, within the server's recall window (2 minutes by
   * default; after it the server answers {@link Code.RECALL_TOO_LATE}, 20016). Every device of both users,
   * this one included, then gets the recall through its log: the `recalled` event, naming this user.
   */
  async recall(peer: string, msgKey: string): Promise<void> {
    await this.#request({ op: 'recall', peer, msg_key: msgKey });
  }

  /**
   * Acknowledges messages `peer` sent with `needReadReceipt`: message-level read receipts (Tencent's
   * `sendMessageReadReceipts`; unread counts stay, that is {@link markRead}). Resolves with the keys that
   * carry a receipt now; a message that asked for none, was recalled, or is not `peer`'s is left out.
   * `peer` gets `readReceipt` once per message.
   */
  async sendReadReceipts(peer: string, msgKeys: string[]): Promise<string[]> {
    const acknowledged: string[] = [];
    for (let i = 0; i < msgKeys.length; i += MAX_KEYS_PER_REQUEST) {
      const f = await this.#request({ op: 'read_receipt', peer, msg_keys: msgKeys.slice(i, i + MAX_KEYS_PER_REQUEST) });
      if (f.op !== 'receipts') throw new DuetError(LocalCode.DISCONNECTED, `'${f.op}' answered read_receipt`);
      acknowledged.push(...f.acknowledged);
    }
    return acknowledged;
  }

  /**
   * The messages of the conversation with `peer` named by `msgKeys`, as the server holds them now (with
   * `recalled`, `peerRead` and `receiptTime`: Tencent's `getMessageReadReceiptList`); `null` for a key
   * that names no message within the roaming retention.
   */
  async findMessages(peer: string, msgKeys: string[]): Promise<Array<Message | null>> {
    const found: Array<Message | null> = [];
    for (let i = 0; i < msgKeys.length; i += MAX_KEYS_PER_REQUEST) {
      const f = await this.#request({ op: 'find', peer, msg_keys: msgKeys.slice(i, i + MAX_KEYS_PER_REQUEST) });
      if (f.op !== 'found') throw new DuetError(LocalCode.DISCONNECTED, `'${f.op}' answered find`);
      found.push(...f.messages.map((m) => (m ? this.#withPeerRead(messageFromWire(m)) : null)));
    }
    return found;
  }

  /**
   * Edits `msgKey`, a message this user sent `peer` (Tencent's `modifyMessage`): `body` (text and custom
   * elements only) and/or `cloudCustomData` replace the message's. With `version` (the version the app
   * showed), an edit of a message someone edited since is refused with an {@link EditConflictError}
   * carrying the message as it is now (code 20028). Both users' devices, this one included, raise
   * `modified`. Resolves with the message as edited.
   */
  async modify(peer: string, msgKey: string, opts: ModifyOptions): Promise<Message> {
    let f: ServerFrame;
    try {
      f = await this.#request({
        op: 'modify', peer, msg_key: msgKey,
        ...(opts.body !== undefined ? { body: opts.body } : {}),
        ...(opts.cloudCustomData !== undefined ? { cloud_custom_data: opts.cloudCustomData } : {}),
        ...(opts.version !== undefined ? { version: opts.version } : {}),
      });
    } catch (e) {
      if (!(e instanceof DuetError) || e.code !== Code.EDIT_CONFLICT) throw e;
      let latest: Message | null = null;
      try {
        [latest = null] = await this.findMessages(peer, [msgKey]);
      } catch {
        // The conflict stands; the latest is unknown.
      }
      if (latest) await this.#serialized(() => this.#onEdited(latest as Message));
      throw new EditConflictError(e.message, latest);
    }
    if (f.op !== 'modified') throw new DuetError(LocalCode.DISCONNECTED, `'${f.op}' answered modify`);
    return this.#withPeerRead(messageFromWire(f.msg));
  }

  /**
   * Deletes messages of the conversation with `peer` (1 to 50 keys; otherwise the server answers 6017)
   * from this user's side, on every device of this user (`deleted`); the peer keeps them. Resolves with
   * the keys deleted now (a key naming no message this user still has is left out).
   */
  async deleteMessages(peer: string, msgKeys: string[]): Promise<string[]> {
    const f = await this.#request({ op: 'delete', peer, msg_keys: msgKeys });
    if (f.op !== 'deleted') throw new DuetError(LocalCode.DISCONNECTED, `'${f.op}' answered delete`);
    return f.deleted;
  }

  /**
   * Clears this user's history of the conversation with `peer`, on every device of this user
   * (`historyCleared`): the conversation stays, empty and read; the peer keeps its history.
   */
  async clearHistory(peer: string): Promise<void> {
    await this.#request({ op: 'clear_history', peer });
  }

  /**
   * Deletes the conversation with `peer` from this user's list, on every device of this user
   * (`conversationDeleted`), and with `clearHistory` its history too (default: the history stays).
   */
  async deleteConversation(peer: string, opts: { clearHistory?: boolean } = {}): Promise<void> {
    await this.#request({ op: 'delete_conversation', peer, ...(opts.clearHistory ? { clear_history: true } : {}) });
  }

  async friendList(): Promise<Friend[]> {
    const f = await this.#request({ op: 'friend_list' });
    return f.op === 'friend_list' ? f.friends.map(friendFromWire) : [];
  }

  async friendRequests(): Promise<{ incoming: FriendRequest[]; outgoing: FriendRequest[] }> {
    const f = await this.#request({ op: 'friend_requests' });
    if (f.op !== 'friend_requests') return { incoming: [], outgoing: [] };
    return { incoming: f.incoming.map(requestFromWire), outgoing: f.outgoing.map(requestFromWire) };
  }

  /** Asks `to` to be friends; `pending` when `to` must confirm. */
  async addFriend(
    to: string, opts: { wording?: string; source?: string; remark?: string; single?: boolean } = {},
  ): Promise<{ pending: boolean }> {
    const f = await this.#request({ op: 'friend_add', to, ...opts });
    return { pending: f.op === 'friend_add_result' ? f.pending : false };
  }

  async acceptFriend(peer: string, single = false): Promise<void> {
    await this.#request({ op: 'friend_accept', peer, single });
  }

  async declineFriend(peer: string): Promise<void> {
    await this.#request({ op: 'friend_decline', peer });
  }

  async deleteFriend(peer: string, single = false): Promise<void> {
    await this.#request({ op: 'friend_delete', peer, single });
  }

  async blacklist(): Promise<Blocked[]> {
    const f = await this.#request({ op: 'black_list' });
    return f.op === 'black_list' ? f.items.map((b: WireBlocked) => ({ peer: b.peer, time: b.time })) : [];
  }

  async addToBlacklist(peer: string): Promise<void> {
    await this.#request({ op: 'black_add', peer });
  }

  async removeFromBlacklist(peer: string): Promise<void> {
    await this.#request({ op: 'black_delete', peer });
  }

  /** Uploads a file over HTTP (with progress); make the element with `elems.image` and the like. */
  upload(type: MediaType, body: UploadBody, opts: UploadOptions = {}): Promise<Uploaded> {
    return upload(this.server, { user: this.user, usersig: this.#usersig }, type, body, opts);
  }

  /** `url` with this user's credentials added when it is a media URL of this server, as is otherwise. */
  authorizedUrl(url: string): string {
    return authorizedUrl(this.server, { user: this.user, usersig: this.#usersig }, url);
  }
}

function comparePos(a: Position, b: Position): number {
  return a[0] - b[0] || a[1] - b[1] || a[2] - b[2];
}

/** Whether `batch` deleted or cleared `m`, a message of the conversation with `peer`. */
function gone(batch: Batch, peer: string, m: Message): boolean {
  return batch.deletions.some((d) => d.peer === peer && d.msgKey === m.msgKey)
    || batch.clears.some((c) => c.peer === peer && m.convSeq <= c.upto);
}

function friendFromWire(f: WireFriend): Friend {
  return {
    peer: f.peer, remark: f.remark ?? '', groups: f.groups ?? [], source: f.source ?? '', wording: f.wording ?? '',
    addTime: f.add_time,
  };
}

function requestFromWire(r: WireFriendRequest): FriendRequest {
  return { from: r.from, to: r.to, wording: r.wording ?? '', source: r.source ?? '', time: r.time };
}
