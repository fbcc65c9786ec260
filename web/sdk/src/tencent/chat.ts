/**
 * The chat instance of the Tencent-compatible facade: Tencent Cloud Chat's web method names, argument
 * shapes, `{code, data}` results and `{name, data}` events, for one-to-one (C2C) chat, over
 * {@link DuetClient}. Methods Duet does not serve reject with {@link TencentError} naming the method
 * (code {@link LocalCode.UNSUPPORTED}).
 */

import { type ClientOptions, DuetClient, type Friend as DuetFriend } from '../client.js';
import * as elems from '../elems.js';
import { DuetError, EditConflictError, LocalCode } from '../errors.js';
import { type Conversation as DuetConversation, emptyConversation, type Message as DuetMessage } from '../model.js';
import type { MediaType, MsgElem } from '../protocol.js';
import { EVENT, TYPES } from './constants.js';
import {
  type Conversation, conversationOf, elemOf, Message, messageID, type MessageReadReceipt, msgKeyOfID, type Profile,
  profileOf, readReceiptInfoOf,
} from './message.js';

/** Tencent's web SDK codes the facade raises itself (`TencentCloudChat`'s error codes, 3.6). */
export const TENCENT_CODE = {
  /** `modifyMessage`: someone edited the message since this instance saw it; `data.message` is the latest. */
  MSG_MODIFY_CONFLICT: 2480,
  /** `clearHistoryMessage`, `deleteConversation`: no such conversation in the list. */
  CONV_NOT_FOUND: 2500,
} as const;

/** Messages one `deleteMessage` deletes (Tencent's web SDK deletes the first 30 of a longer list). */
const MAX_DELETE = 30;
/** Conversations one `deleteConversation` deletes (Tencent's web SDK takes the first 100). */
const MAX_DELETE_CONVERSATIONS = 100;

export interface CreateOptions {
  /** The app's SDKAppID (checked by the server through the UserSig). */
  SDKAppID: number;
  /** Duet's base URL, as for the REST API: `https://chat.example.com`. Required: Duet has no default cloud. */
  server: string;
  /** Passed to {@link DuetClient}: platform, device, store, heartbeat, backoff, WebSocket, … */
  client?: Omit<ClientOptions, 'server' | 'user' | 'usersig'>;
}

/** What `on` handlers receive: Tencent's `{name, data}`. */
export interface ChatEvent<T = unknown> {
  name: EVENT;
  data: T;
}

/** Tencent's promise results. */
export interface Response<T> {
  code: number;
  data: T;
}

/** Tencent's rejection: `{code, message, data?}`. */
export class TencentError extends Error {
  constructor(readonly code: number, message: string, readonly data?: unknown) {
    super(message);
    this.name = 'TencentError';
  }
}

/** A file to upload: a `File`/`Blob`, an `<input type="file">` (its first file), or bytes (Node). */
export type FileSource = Blob | Uint8Array | ArrayBuffer | { files: ArrayLike<Blob> | null };

export interface MessageOptions<P> {
  to: string;
  conversationType: TYPES;
  payload: P;
  cloudCustomData?: string;
  priority?: TYPES;
  /** Ask the recipient for a message-level read receipt (`sendMessageReadReceipt` on their side). */
  needReadReceipt?: boolean;
  /** Upload progress, 0 to 1 (media messages). */
  onProgress?: (percent: number) => void;
}

export interface SendMessageOptions {
  /** Delivered to online devices only, never stored (Duet's `online_only`). */
  onlineUserOnly?: boolean;
  /** Tencent's `offlinePushInfo` (`title`, `description`, `extension`, …). */
  offlinePushInfo?: Record<string, unknown>;
}

/**
 * An event handler. `data` is `any` for it, so that handlers typed by the app for each event, as code
 * written against Tencent's types (whose handlers are `Function`s) has them, are accepted.
 */
type Handler = (event: ChatEvent<any>) => void;

interface PendingFile {
  kind: MediaType;
  file: FileSource;
  name: string;
  seconds: number;
  onProgress?: (percent: number) => void;
}

function fail(code: number, message: string, data?: unknown): never {
  throw new TencentError(code, message, data);
}

function asTencentError(e: unknown, data?: unknown): TencentError {
  if (e instanceof TencentError) return e;
  if (e instanceof DuetError) return new TencentError(e.code, e.message, data);
  return new TencentError(LocalCode.DISCONNECTED, (e as Error)?.message ?? String(e), data);
}

function peerOfConversation(conversationID: string, method: string): string {
  if (!conversationID.startsWith(TYPES.CONV_C2C)) {
    fail(LocalCode.UNSUPPORTED, `${method}: only C2C conversations are served by Duet (got ${conversationID})`);
  }
  return conversationID.slice(TYPES.CONV_C2C.length);
}

function fileOf(source: FileSource): Blob | Uint8Array | ArrayBuffer {
  if (typeof source === 'object' && source !== null && 'files' in source) {
    const f = source.files?.[0];
    if (f === undefined) fail(LocalCode.INVALID_ARGUMENT, 'no file was chosen');
    return f;
  }
  return source;
}

function nameOf(source: FileSource, fallback: string): string {
  const f = typeof source === 'object' && source !== null && 'files' in source ? source.files?.[0] : source;
  const name = (f as { name?: unknown } | undefined)?.name;
  return typeof name === 'string' && name ? name : fallback;
}

export class Chat {
  readonly #opts: CreateOptions;
  #client: DuetClient | undefined;
  #ready = false;
  readonly #handlers = new Map<string, Array<{ fn: Handler; ctx: unknown }>>();
  readonly #messages = new Map<string, Message>();
  readonly #pending = new WeakMap<Message, PendingFile>();
  /** Event data gathered in this turn, raised together at its end (Tencent raises lists). */
  readonly #batches = new Map<EVENT, unknown[]>();
  #conversationsDirty = false;
  #lastUnread = -1;

  constructor(opts: CreateOptions) {
    if (!opts.server) fail(LocalCode.INVALID_ARGUMENT, 'TencentCloudChat.create: `server` (Duet\'s URL) is required');
    this.#opts = opts;
  }

  // ---- events ------------------------------------------------------------------------------------

  on(eventName: string, handler: Handler, context?: unknown): void {
    const list = this.#handlers.get(eventName) ?? [];
    list.push({ fn: handler, ctx: context });
    this.#handlers.set(eventName, list);
  }

  off(eventName: string, handler: Handler, context?: unknown): void {
    const list = this.#handlers.get(eventName);
    if (!list) return;
    this.#handlers.set(eventName, list.filter((h) => !(h.fn === handler && (context === undefined || h.ctx === context))));
  }

  /** Raises `name` with `items` and whatever else this turn adds, once, at the turn's end. */
  #emitLater(name: EVENT, items: unknown[]): void {
    if (items.length === 0) return;
    const batch = this.#batches.get(name);
    if (batch) {
      batch.push(...items);
      return;
    }
    this.#batches.set(name, [...items]);
    queueMicrotask(() => {
      const data = this.#batches.get(name) ?? [];
      this.#batches.delete(name);
      this.#emit(name, data);
    });
  }

  #emit(name: EVENT, data: unknown): void {
    for (const h of [...(this.#handlers.get(name) ?? [])]) {
      try {
        h.fn.call(h.ctx, { name, data });
      } catch (e) {
        console.error(`duet: a '${name}' handler threw`, e);
      }
    }
  }

  // ---- login -------------------------------------------------------------------------------------

  async login(options: { userID: string; userSig: string }): Promise<Response<{ repeatLogin: boolean }>> {
    if (this.#client && !this.#client.stopped) {
      if (this.#client.user === options.userID) return { code: 0, data: { repeatLogin: true } };
      fail(LocalCode.INVALID_ARGUMENT, `login: already logged in as ${this.#client.user}; logout first`);
    }
    const client = new DuetClient({
      ...this.#opts.client, server: this.#opts.server, user: options.userID, usersig: options.userSig,
    });
    this.#client = client;
    this.#ready = false;
    this.#wire(client);
    try {
      await client.login();
    } catch (e) {
      this.#client = undefined;
      throw asTencentError(e);
    }
    return { code: 0, data: { repeatLogin: false } };
  }

  #wire(c: DuetClient): void {
    const url = (u: string) => c.authorizedUrl(u);
    c.on('connection', (s) => {
      const state = s.state === 'connected' ? TYPES.NET_STATE_CONNECTED
        : s.state === 'connecting' ? TYPES.NET_STATE_CONNECTING : TYPES.NET_STATE_DISCONNECTED;
      this.#emit(EVENT.NET_STATE_CHANGE, { state });
    });
    c.on('message', (m) => {
      this.#emitLater(EVENT.MESSAGE_RECEIVED, [this.#remember(Message.fromDuet(m, c.user, url, c.isPeerRead(m)))]);
    });
    c.on('conversation', () => this.#conversationsChanged());
    c.on('syncComplete', () => {
      if (!this.#ready) {
        this.#ready = true;
        this.#emit(EVENT.SDK_READY, undefined);
      }
    });
    c.on('recalled', ({ peer, msgKey, by }) => {
      // Either side may have sent it: the ID names the sender.
      const known = this.#messages.get(messageID(peer, msgKey)) ?? this.#messages.get(messageID(c.user, msgKey));
      if (known) {
        known.revoke(by);
        this.#emitLater(EVENT.MESSAGE_REVOKED, [known]);
      }
    });
    c.on('modified', (m) => this.#edited(m));
    c.on('deleted', ({ peer, msgKey }) => {
      // Either side may have sent it: the ID names the sender.
      for (const id of [messageID(peer, msgKey), messageID(c.user, msgKey)]) this.#forget(id);
    });
    c.on('historyCleared', ({ peer }) => {
      const conversationID = `${TYPES.CONV_C2C}${peer}`;
      for (const [id, m] of this.#messages) if (m.conversationID === conversationID) this.#forget(id);
      this.#conversationsChanged();
    });
    c.on('conversationDeleted', () => this.#conversationsChanged());
    c.on('peerRead', ({ peer, time }) => {
      const read: Message[] = [];
      for (const m of this.#messages.values()) {
        if (m.flow === 'out' && m.to === peer && m.status === 'success' && m.time <= time && !m.isPeerRead) {
          m.isPeerRead = true;
          read.push(m);
        }
      }
      this.#emitLater(EVENT.MESSAGE_READ_BY_PEER, read);
    });
    c.on('readReceipt', ({ peer, msgKey, time }) => {
      const id = messageID(c.user, msgKey);
      const known = this.#messages.get(id);
      if (known && !known.readReceiptInfo.isPeerRead) known.readReceiptInfo = readReceiptInfoOf(time);
      const receipt: MessageReadReceipt = {
        conversationID: `${TYPES.CONV_C2C}${peer}`, userID: peer, messageID: id, ...readReceiptInfoOf(time),
      };
      this.#emitLater(EVENT.MESSAGE_READ_RECEIPT_RECEIVED, [receipt]);
    });
    c.on('kicked', ({ code, info }) => {
      const type = code === 4001 ? TYPES.KICKED_OUT_MULT_ACCOUNT
        : /admin/i.test(info) || code === 70052 ? TYPES.KICKED_OUT_REST_API : TYPES.KICKED_OUT_MULT_DEVICE;
      this.#emit(EVENT.KICKED_OUT, { type });
    });
    c.on('sigExpired', () => this.#emit(EVENT.KICKED_OUT, { type: TYPES.KICKED_OUT_USERSIG_EXPIRED }));
    c.on('relation', (ev) => {
      const friends = ['friend_added', 'friend_removed', 'relations_changed'].includes(ev.kind);
      const black = ['black_added', 'black_removed', 'relations_changed'].includes(ev.kind);
      const requests = ev.kind.startsWith('request_') || ev.kind === 'relations_changed';
      if (friends) void this.getFriendList().then((r) => this.#emit(EVENT.FRIEND_LIST_UPDATED, r.data), () => undefined);
      if (black) void this.getBlacklist().then((r) => this.#emit(EVENT.BLACKLIST_UPDATED, r.data), () => undefined);
      if (requests) {
        void this.getFriendApplicationList()
          .then((r) => this.#emit(EVENT.FRIEND_APPLICATION_LIST_UPDATED, r.data), () => undefined);
      }
    });
    c.on('stopped', () => {
      if (this.#ready) this.#emit(EVENT.SDK_NOT_READY, undefined);
      this.#ready = false;
    });
  }

  #conversationsChanged(): void {
    if (this.#conversationsDirty) return;
    this.#conversationsDirty = true;
    queueMicrotask(() => {
      this.#conversationsDirty = false;
      const c = this.#client;
      if (!c) return;
      const list = c.conversationList().map((x) => this.#conversation(x));
      this.#emit(EVENT.CONVERSATION_LIST_UPDATED, list);
      const unread = list.reduce((n, x) => n + x.unreadCount, 0);
      if (unread !== this.#lastUnread) {
        this.#lastUnread = unread;
        this.#emit(EVENT.TOTAL_UNREAD_MESSAGE_COUNT_UPDATED, unread);
      }
    });
  }

  #conversation(c: DuetConversation): Conversation {
    const client = this.#need('getConversationList');
    return conversationOf(c, client.user, (u) => client.authorizedUrl(u));
  }

  /**
   * `m` was edited: the message object this instance holds takes the edit when it is newer, and
   * `MESSAGE_MODIFIED` carries it (as Tencent's web SDK raises it only for a message it holds). `also`: an
   * object the app passed (`modifyMessage`) that takes it too.
   */
  #edited(m: DuetMessage, also?: Message): void {
    const c = this.#client;
    if (!c) return;
    const url = (u: string) => c.authorizedUrl(u);
    const known = this.#messages.get(messageID(m.from, m.msgKey));
    if (known && known.version < m.version && !known.isRevoked) {
      known.edit(m, url);
      this.#emitLater(EVENT.MESSAGE_MODIFIED, [known]);
    }
    if (also && also !== known && also.version <= m.version) also.edit(m, url);
  }

  /** A message gone from this user's side: flagged `isDeleted`, and no longer held. */
  #forget(id: string): void {
    const m = this.#messages.get(id);
    if (m === undefined) return;
    m.isDeleted = true;
    this.#messages.delete(id);
  }

  #remember(m: Message): Message {
    const known = this.#messages.get(m.ID);
    if (known) {
      known.absorb(m);
      return known;
    }
    this.#messages.set(m.ID, m);
    return m;
  }

  #need(method: string): DuetClient {
    const c = this.#client;
    if (!c || c.stopped) fail(LocalCode.STOPPED, `${method}: not logged in`);
    return c;
  }

  async logout(): Promise<void> {
    const c = this.#client;
    this.#client = undefined;
    await c?.logout();
  }

  async destroy(): Promise<void> {
    await this.logout();
    this.#handlers.clear();
  }

  getLoginUser(): string {
    return this.#client?.user ?? '';
  }

  /** The server's time, unix seconds. */
  getServerTime(): number {
    return Math.floor((this.#client?.serverTime() ?? Date.now()) / 1000);
  }

  isReady(): boolean {
    return this.#ready;
  }

  /** Accepted and ignored: Duet uploads media itself (no upload plugin is needed). */
  registerPlugin(_options: Record<string, unknown>): void {}

  /** Accepted and ignored. */
  setLogLevel(_level: number): void {}

  // ---- creating messages -------------------------------------------------------------------------

  #create(options: MessageOptions<unknown>, body: MsgElem[], method: string): Message {
    if (options.conversationType !== TYPES.CONV_C2C) {
      fail(LocalCode.UNSUPPORTED, `${method}: only conversationType TYPES.CONV_C2C is served by Duet`);
    }
    if (!options.to) fail(LocalCode.INVALID_ARGUMENT, `${method}: \`to\` is required`);
    const me = this.#need(method).user;
    const random = crypto.getRandomValues(new Uint32Array(1))[0] as number;
    const m = new Message({
      from: me, to: options.to, me, body, time: this.getServerTime(), random, url: (u) => u, status: 'unSend',
    });
    m.cloudCustomData = options.cloudCustomData ?? '';
    m.needReadReceipt = options.needReadReceipt === true;
    return m;
  }

  createTextMessage(options: MessageOptions<{ text: string }>): Message {
    return this.#create(options, [elems.text(options.payload.text)], 'createTextMessage');
  }

  createFaceMessage(options: MessageOptions<{ index: number; data: string }>): Message {
    return this.#create(options, [elems.face(options.payload.index, options.payload.data)], 'createFaceMessage');
  }

  createLocationMessage(
    options: MessageOptions<{ description: string; longitude: number; latitude: number }>,
  ): Message {
    const p = options.payload;
    return this.#create(options, [elems.location(p.description, p.latitude, p.longitude)], 'createLocationMessage');
  }

  createCustomMessage(options: MessageOptions<{ data?: string; description?: string; extension?: string }>): Message {
    const p = options.payload;
    return this.#create(options, [elems.custom(p.data ?? '', p.description ?? '', p.extension ?? '')], 'createCustomMessage');
  }

  #createMedia(
    options: MessageOptions<{ file: FileSource; fileName?: string; second?: number }>, kind: MediaType,
    method: string,
  ): Message {
    const file = options.payload?.file;
    if (file === undefined || file === null) fail(LocalCode.INVALID_ARGUMENT, `${method}: payload.file is required`);
    const placeholder: Record<MediaType, MsgElem> = {
      image: elems.image({ UUID: '', URL: '', Size: 0, FileName: '' }),
      sound: elems.sound({ UUID: '', URL: '', Size: 0, FileName: '' }, options.payload.second ?? 0),
      file: elems.file({ UUID: '', URL: '', Size: 0, FileName: options.payload.fileName ?? nameOf(file, 'file') }),
      video: elems.video({ UUID: '', URL: '', Size: 0, FileName: '' }, options.payload.second ?? 0, ''),
    };
    const m = this.#create(options, [placeholder[kind]], method);
    this.#pending.set(m, {
      kind, file, name: options.payload.fileName ?? nameOf(file, kind), seconds: options.payload.second ?? 0,
      ...(options.onProgress ? { onProgress: options.onProgress } : {}),
    });
    return m;
  }

  createImageMessage(options: MessageOptions<{ file: FileSource; fileName?: string }>): Message {
    return this.#createMedia(options, 'image', 'createImageMessage');
  }

  createFileMessage(options: MessageOptions<{ file: FileSource; fileName?: string }>): Message {
    return this.#createMedia(options, 'file', 'createFileMessage');
  }

  /** A voice message from an audio file (`payload.second`: its duration, a Duet addition; default 0). */
  createAudioMessage(options: MessageOptions<{ file: FileSource; fileName?: string; second?: number }>): Message {
    return this.#createMedia(options, 'sound', 'createAudioMessage');
  }

  /** A video message from a video file (no thumbnail is made; `payload.second`: its duration). */
  createVideoMessage(options: MessageOptions<{ file: FileSource; fileName?: string; second?: number }>): Message {
    return this.#createMedia(options, 'video', 'createVideoMessage');
  }

  // ---- sending -----------------------------------------------------------------------------------

  async sendMessage(message: Message, options?: SendMessageOptions): Promise<Response<{ message: Message }>> {
    const c = this.#need('sendMessage');
    if (message.status === 'success') fail(LocalCode.INVALID_ARGUMENT, 'sendMessage: the message was sent already');
    message.status = 'unSend';
    try {
      let body: MsgElem[];
      const pending = this.#pending.get(message);
      if (pending) {
        const up = await c.upload(pending.kind, fileOf(pending.file), {
          filename: pending.name,
          onProgress: (p) => pending.onProgress?.(p.total > 0 ? p.loaded / p.total : 1),
        });
        body = [
          pending.kind === 'image' ? elems.image(up)
            : pending.kind === 'sound' ? elems.sound(up, pending.seconds)
              : pending.kind === 'video' ? elems.video(up, pending.seconds, pending.name.split('.').pop() ?? '')
                : elems.file(up, pending.name),
        ];
        this.#pending.delete(message);
      } else {
        body = message.elements.map((e) => bodyOf(e.type, e.payload));
      }
      const push = options?.offlinePushInfo ? offlinePush(options.offlinePushInfo) : undefined;
      const sent = await c.send(message.to, body, {
        random: message.random,
        ...(message.cloudCustomData ? { cloudCustomData: message.cloudCustomData } : {}),
        ...(options?.onlineUserOnly ? { onlineOnly: true } : {}),
        ...(push ? { push } : {}),
        ...(message.needReadReceipt ? { needReadReceipt: true } : {}),
      });
      message.update(sent.message, (u) => c.authorizedUrl(u), c.isPeerRead(sent.message));
      this.#remember(message);
      return { code: 0, data: { message } };
    } catch (e) {
      message.status = 'fail';
      throw asTencentError(e, { message });
    }
  }

  /** Sends a message whose send failed again (same `random`, so a retry the server saw is not stored twice). */
  async resendMessage(message: Message): Promise<Response<{ message: Message }>> {
    if (message.status !== 'fail') fail(LocalCode.INVALID_ARGUMENT, 'resendMessage: only a failed message is resent');
    return this.sendMessage(message);
  }

  // ---- history and conversations ------------------------------------------------------------------

  /** A page of 15 messages (Tencent's page; `count` up to 100 is a Duet addition), oldest first. */
  async getMessageList(options: { conversationID: string; nextReqMessageID?: string; count?: number }): Promise<
    Response<{ messageList: Message[]; nextReqMessageID: string; isCompleted: boolean }>
  > {
    const c = this.#need('getMessageList');
    const peer = peerOfConversation(options.conversationID, 'getMessageList');
    try {
      const page = await c.history(peer, {
        count: options.count ?? 15,
        ...(options.nextReqMessageID ? { before: msgKeyOfID(options.nextReqMessageID) } : {}),
      });
      const url = (u: string) => c.authorizedUrl(u);
      const list = page.messages.map((m) => this.#remember(Message.fromDuet(m, c.user, url, m.peerRead))).reverse();
      return {
        code: 0,
        data: { messageList: list, nextReqMessageID: list[0]?.ID ?? '', isCompleted: page.complete },
      };
    } catch (e) {
      throw asTencentError(e);
    }
  }

  findMessage(messageID: string): Message | null {
    return this.#messages.get(messageID) ?? null;
  }

  async getConversationList(
    options?: string[] | { type?: unknown },
  ): Promise<Response<{ conversationList: Conversation[]; isSyncCompleted: boolean }>> {
    const c = this.#need('getConversationList');
    try {
      let list = (await c.conversations()).map((x) => this.#conversation(x));
      if (Array.isArray(options)) list = list.filter((x) => options.includes(x.conversationID));
      return { code: 0, data: { conversationList: list, isSyncCompleted: this.#ready } };
    } catch (e) {
      throw asTencentError(e);
    }
  }

  async getConversationProfile(conversationID: string): Promise<Response<{ conversation: Conversation }>> {
    const c = this.#need('getConversationProfile');
    const peer = peerOfConversation(conversationID, 'getConversationProfile');
    const known = c.conversationList().find((x) => x.peer === peer);
    const conv: DuetConversation = known ?? emptyConversation(peer);
    return { code: 0, data: { conversation: this.#conversation(conv) } };
  }

  async setMessageRead(options: { conversationID: string }): Promise<Response<Record<string, never>>> {
    const c = this.#need('setMessageRead');
    const peer = peerOfConversation(options.conversationID, 'setMessageRead');
    try {
      await c.markRead(peer);
    } catch (e) {
      throw asTencentError(e);
    }
    return { code: 0, data: {} };
  }

  /** Marks every C2C conversation with unread messages as read (`scope` C2C or all). */
  async setAllMessageRead(options?: { scope?: TYPES | string }): Promise<Response<Record<string, never>>> {
    const c = this.#need('setAllMessageRead');
    if (options?.scope === TYPES.READ_ALL_GROUP_MSG) return { code: 0, data: {} };
    try {
      await Promise.all(c.conversationList().filter((x) => x.unread > 0).map((x) => c.markRead(x.peer)));
    } catch (e) {
      throw asTencentError(e);
    }
    return { code: 0, data: {} };
  }

  getTotalUnreadMessageCount(): number {
    return this.#client?.conversationList().reduce((n, x) => n + x.unread, 0) ?? 0;
  }

  // ---- recall and read receipts -------------------------------------------------------------------

  /**
   * Recalls a message this user sent, within the server's recall window (2 minutes by default; after it,
   * code 20016 as with Tencent). The message object is marked `isRevoked` (with `revoker`), and every
   * device of both users raises `MESSAGE_REVOKED` for it, this one included.
   */
  async revokeMessage(message: Message): Promise<Response<{ message: Message }>> {
    const c = this.#need('revokeMessage');
    if (message.status !== 'success' || !message.msgKey) {
      fail(LocalCode.INVALID_ARGUMENT, 'revokeMessage: only a message that was sent can be recalled', { message });
    }
    const peer = peerOfConversation(message.conversationID, 'revokeMessage');
    try {
      await c.recall(peer, message.msgKey);
    } catch (e) {
      throw asTencentError(e, { message });
    }
    message.revoke(c.user);
    this.#remember(message);
    return { code: 0, data: { message } };
  }

  /**
   * Sends read receipts for messages the peer sent with `needReadReceipt` (of one conversation; the
   * others in the list are skipped). The sender's `readReceiptInfo.isPeerRead` becomes true and it gets
   * `MESSAGE_READ_RECEIPT_RECEIVED`; unread counts stay (that is `setMessageRead`).
   */
  async sendMessageReadReceipt(messageList: Message[]): Promise<Response<Record<string, never>>> {
    const c = this.#need('sendMessageReadReceipt');
    if (messageList.length === 0) return { code: 0, data: {} };
    const peer = this.#peerOfList(messageList, 'sendMessageReadReceipt');
    // The server acknowledges only those that asked for a receipt.
    const keys = messageList.filter((m) => m.flow === 'in' && m.msgKey).map((m) => m.msgKey);
    if (keys.length === 0) return { code: 0, data: {} };
    try {
      await c.sendReadReceipts(peer, keys);
    } catch (e) {
      throw asTencentError(e);
    }
    return { code: 0, data: {} };
  }

  /**
   * The read state of messages of one conversation, from the server: each message's `readReceiptInfo`
   * (the message-level receipt), `isPeerRead` and `isRevoked` are brought up to date; resolves with the
   * same objects.
   */
  async getMessageReadReceiptList(messageList: Message[]): Promise<Response<{ messageList: Message[] }>> {
    const c = this.#need('getMessageReadReceiptList');
    if (messageList.length === 0) return { code: 0, data: { messageList } };
    const peer = this.#peerOfList(messageList, 'getMessageReadReceiptList');
    const sent = messageList.filter((m) => m.msgKey);
    let found: Array<DuetMessage | null>;
    try {
      found = await c.findMessages(peer, sent.map((m) => m.msgKey));
    } catch (e) {
      throw asTencentError(e);
    }
    sent.forEach((m, i) => {
      const f = found[i];
      if (!f) return;
      m.readReceiptInfo = readReceiptInfoOf(f.receiptTime);
      m.needReadReceipt = f.needReadReceipt;
      m.isPeerRead ||= f.peerRead;
      if (f.recalled && !m.isRevoked) m.revoke(f.revoker);
    });
    return { code: 0, data: { messageList } };
  }

  // ---- edit, delete, clear ------------------------------------------------------------------------

  /**
   * Edits a message this user sent, as Tencent's web SDK does: the app changes `message.payload` (text and
   * custom messages; `payload.text`, say) and/or `message.cloudCustomData`, then calls this. Resolves with
   * the same object, edited (`isModified`, its `version` one up). The edit is made against the `version`
   * the object has: when someone edited the message since (another device, or the admin), it rejects with
   * code 2480 and `data.message`, the object brought up to the latest. Every instance of both users that
   * holds the message raises `MESSAGE_MODIFIED` for it, this one included.
   */
  async modifyMessage(message: Message): Promise<Response<{ message: Message }>> {
    const c = this.#need('modifyMessage');
    if (message.status !== 'success' || !message.msgKey) {
      fail(LocalCode.INVALID_ARGUMENT, 'modifyMessage: only a message that was sent can be modified', { message });
    }
    const peer = peerOfConversation(message.conversationID, 'modifyMessage');
    const body = message.bodyForEdit();
    let edited: DuetMessage;
    try {
      edited = await c.modify(peer, message.msgKey, {
        ...(body ? { body } : {}), cloudCustomData: message.cloudCustomData, version: message.version,
      });
    } catch (e) {
      if (e instanceof EditConflictError) {
        if (e.latest) this.#edited(e.latest, message);
        throw new TencentError(TENCENT_CODE.MSG_MODIFY_CONFLICT, e.message, { message });
      }
      throw asTencentError(e, { message });
    }
    this.#edited(edited, message);
    return { code: 0, data: { message } };
  }

  /**
   * Deletes messages from this user's side, on all its devices; the peer keeps them. As Tencent's web SDK:
   * the messages of the first one's conversation that were sent, at most the first 30; each gets
   * `isDeleted`. Resolves with them. The conversation's `lastMessage` and unread count follow
   * (`CONVERSATION_LIST_UPDATED`).
   */
  async deleteMessage(messageList: Message[]): Promise<Response<{ messageList: Message[] }>> {
    const c = this.#need('deleteMessage');
    const first = messageList?.[0];
    if (!first) fail(LocalCode.INVALID_ARGUMENT, 'deleteMessage: messageList is empty');
    const conversationID = first.conversationID;
    const peer = peerOfConversation(conversationID, 'deleteMessage');
    const list = messageList
      .filter((m) => m && m.status === 'success' && m.conversationID === conversationID)
      .slice(0, MAX_DELETE);
    const keys = list.filter((m) => m.msgKey).map((m) => m.msgKey);
    if (keys.length > 0) {
      try {
        await c.deleteMessages(peer, keys);
      } catch (e) {
        throw asTencentError(e);
      }
    }
    for (const m of list) {
      m.isDeleted = true;
      this.#forget(m.ID);
    }
    return { code: 0, data: { messageList: list } };
  }

  /**
   * Clears this user's history of a conversation, on all its devices (the peer keeps its own): the
   * conversation stays, with nothing unread and no last message. As Tencent's web SDK, what is unread is
   * marked read first, and a conversation not in the list rejects with 2500. Resolves with
   * `{conversationID}`.
   */
  async clearHistoryMessage(conversationID: string): Promise<Response<{ conversationID: string }>> {
    const c = this.#need('clearHistoryMessage');
    const peer = peerOfConversation(conversationID, 'clearHistoryMessage');
    const conv = c.conversationList().find((x) => x.peer === peer);
    if (!conv) fail(TENCENT_CODE.CONV_NOT_FOUND, `clearHistoryMessage: no conversation ${conversationID}`);
    try {
      if (conv.unread > 0) await c.markRead(peer);
      await c.clearHistory(peer);
    } catch (e) {
      throw asTencentError(e);
    }
    return { code: 0, data: { conversationID } };
  }

  /**
   * Deletes conversations from this user's list, on all its devices, and by default their history too
   * (Tencent's default: `clearHistoryMessage: false` keeps it). A conversation comes back with its next
   * message. A conversation ID resolves with `{conversationID}`; `{conversationIDList}` (at most 100 are
   * taken) with `{conversationIDList}` of those deleted. Those not in the list are skipped; none at all
   * rejects with 2500.
   */
  deleteConversation(conversationID: string): Promise<Response<{ conversationID: string }>>;
  deleteConversation(options: {
    conversationIDList: string[]; clearHistoryMessage?: boolean;
  }): Promise<Response<{ conversationIDList: string[] }>>;
  deleteConversation(options: string | { conversationIDList: string[]; clearHistoryMessage?: boolean }): Promise<
    Response<{ conversationID: string } | { conversationIDList: string[] }>
  >;
  async deleteConversation(
    options: string | { conversationIDList: string[]; clearHistoryMessage?: boolean },
  ): Promise<Response<{ conversationID: string } | { conversationIDList: string[] }>> {
    const c = this.#need('deleteConversation');
    const single = typeof options === 'string';
    if (!single && !Array.isArray(options?.conversationIDList)) {
      fail(LocalCode.INVALID_ARGUMENT, 'deleteConversation: a conversation ID or {conversationIDList} is required');
    }
    const ids = single ? [options] : options.conversationIDList.slice(0, MAX_DELETE_CONVERSATIONS);
    const clearHistory = single || options.clearHistoryMessage !== false;
    const peers = ids.map((id) => peerOfConversation(id, 'deleteConversation'));
    const listed = new Set(c.conversationList().map((x) => x.peer));
    const deleted: string[] = [];
    let failure: unknown;
    for (const [i, peer] of peers.entries()) {
      if (!listed.has(peer)) continue;
      try {
        await c.deleteConversation(peer, { clearHistory });
        deleted.push(ids[i] as string);
      } catch (e) {
        failure ??= e;
      }
    }
    if (deleted.length === 0) {
      if (failure !== undefined) throw asTencentError(failure);
      fail(TENCENT_CODE.CONV_NOT_FOUND, `deleteConversation: no such conversation (${ids.join(', ')})`);
    }
    return single
      ? { code: 0, data: { conversationID: deleted[0] as string } }
      : { code: 0, data: { conversationIDList: deleted } };
  }

  /** The peer of a list of messages that must all be of one C2C conversation (as Tencent requires). */
  #peerOfList(messageList: Message[], method: string): string {
    const ids = new Set(messageList.map((m) => m.conversationID));
    const [only] = ids;
    if (ids.size !== 1 || only === undefined) {
      fail(LocalCode.INVALID_ARGUMENT, `${method}: the messages must be of one conversation (got ${ids.size})`);
    }
    return peerOfConversation(only, method);
  }

  // ---- relationship chain -------------------------------------------------------------------------

  async getFriendList(): Promise<Response<FriendInfo[]>> {
    const c = this.#need('getFriendList');
    try {
      return { code: 0, data: (await c.friendList()).map(friendOf) };
    } catch (e) {
      throw asTencentError(e);
    }
  }

  async addFriend(options: {
    to: string; source: string; wording?: string; type?: TYPES | string; remark?: string; groupName?: string;
  }): Promise<Response<{ userID: string; code: number; message: string }>> {
    const c = this.#need('addFriend');
    try {
      const { pending } = await c.addFriend(options.to, {
        source: options.source,
        ...(options.wording !== undefined ? { wording: options.wording } : {}),
        ...(options.remark !== undefined ? { remark: options.remark } : {}),
        single: options.type === TYPES.SNS_ADD_TYPE_SINGLE,
      });
      return { code: 0, data: { userID: options.to, code: pending ? 30539 : 0, message: pending ? 'pending' : '' } };
    } catch (e) {
      throw asTencentError(e);
    }
  }

  async deleteFriend(options: { userIDList: string[]; type?: TYPES | string }): Promise<
    Response<{ successUserIDList: Array<{ userID: string }>; failureUserIDList: Array<{ userID: string; code: number; message: string }> }>
  > {
    const c = this.#need('deleteFriend');
    const ok: Array<{ userID: string }> = [];
    const bad: Array<{ userID: string; code: number; message: string }> = [];
    for (const userID of options.userIDList) {
      try {
        await c.deleteFriend(userID, options.type === TYPES.SNS_DELETE_TYPE_SINGLE);
        ok.push({ userID });
      } catch (e) {
        const err = asTencentError(e);
        bad.push({ userID, code: err.code, message: err.message });
      }
    }
    return { code: 0, data: { successUserIDList: ok, failureUserIDList: bad } };
  }

  async getFriendApplicationList(): Promise<
    Response<{ friendApplicationList: FriendApplication[]; unreadCount: number }>
  > {
    const c = this.#need('getFriendApplicationList');
    try {
      const { incoming, outgoing } = await c.friendRequests();
      const list = [
        ...incoming.map((r) => applicationOf(r.from, r, TYPES.SNS_APPLICATION_SENT_TO_ME)),
        ...outgoing.map((r) => applicationOf(r.to, r, TYPES.SNS_APPLICATION_SENT_BY_ME)),
      ];
      return { code: 0, data: { friendApplicationList: list, unreadCount: incoming.length } };
    } catch (e) {
      throw asTencentError(e);
    }
  }

  async acceptFriendApplication(options: { userID: string; remark?: string; type?: TYPES | string }): Promise<Response<Record<string, never>>> {
    const c = this.#need('acceptFriendApplication');
    try {
      await c.acceptFriend(options.userID, options.type === TYPES.SNS_APPLICATION_AGREE);
    } catch (e) {
      throw asTencentError(e);
    }
    return { code: 0, data: {} };
  }

  async refuseFriendApplication(options: { userID: string }): Promise<Response<Record<string, never>>> {
    const c = this.#need('refuseFriendApplication');
    try {
      await c.declineFriend(options.userID);
    } catch (e) {
      throw asTencentError(e);
    }
    return { code: 0, data: {} };
  }

  async getBlacklist(): Promise<Response<string[]>> {
    const c = this.#need('getBlacklist');
    try {
      return { code: 0, data: (await c.blacklist()).map((b) => b.peer) };
    } catch (e) {
      throw asTencentError(e);
    }
  }

  /** Adds each user; resolves with those added, rejects when none could be. */
  async addToBlacklist(options: { userIDList: string[] }): Promise<Response<string[]>> {
    const c = this.#need('addToBlacklist');
    return this.#each(options.userIDList, (u) => c.addToBlacklist(u));
  }

  async removeFromBlacklist(options: { userIDList: string[] }): Promise<Response<string[]>> {
    const c = this.#need('removeFromBlacklist');
    return this.#each(options.userIDList, (u) => c.removeFromBlacklist(u));
  }

  async #each(users: string[], op: (u: string) => Promise<void>): Promise<Response<string[]>> {
    const done: string[] = [];
    let first: unknown;
    for (const u of users) {
      try {
        await op(u);
        done.push(u);
      } catch (e) {
        first ??= e;
      }
    }
    if (done.length === 0 && first !== undefined) throw asTencentError(first);
    return { code: 0, data: done };
  }

  // ---- not served yet ----------------------------------------------------------------------------

  #notYet(method: string): Promise<never> {
    return Promise.reject(new TencentError(LocalCode.UNSUPPORTED, `${method} is not supported by Duet yet`));
  }

  getMessageListHopping(_options: unknown): Promise<never> { return this.#notYet('getMessageListHopping'); }
  pinConversation(_options: unknown): Promise<never> { return this.#notYet('pinConversation'); }
  setConversationDraft(_options: unknown): Promise<never> { return this.#notYet('setConversationDraft'); }
  setConversationCustomData(_options: unknown): Promise<never> { return this.#notYet('setConversationCustomData'); }
  markConversation(_options: unknown): Promise<never> { return this.#notYet('markConversation'); }
  getMyProfile(): Promise<never> { return this.#notYet('getMyProfile'); }
  getUserProfile(_options: unknown): Promise<never> { return this.#notYet('getUserProfile'); }
  updateMyProfile(_options: unknown): Promise<never> { return this.#notYet('updateMyProfile'); }
  getUserStatus(_options: unknown): Promise<never> { return this.#notYet('getUserStatus'); }
  setSelfStatus(_options: unknown): Promise<never> { return this.#notYet('setSelfStatus'); }
  subscribeUserStatus(_options: unknown): Promise<never> { return this.#notYet('subscribeUserStatus'); }
  unsubscribeUserStatus(_options: unknown): Promise<never> { return this.#notYet('unsubscribeUserStatus'); }
  checkFriend(_options: unknown): Promise<never> { return this.#notYet('checkFriend'); }
  getFriendProfile(_options: unknown): Promise<never> { return this.#notYet('getFriendProfile'); }
  updateFriend(_options: unknown): Promise<never> { return this.#notYet('updateFriend'); }
  deleteFriendApplication(_options: unknown): Promise<never> { return this.#notYet('deleteFriendApplication'); }
  setFriendApplicationRead(): Promise<never> { return this.#notYet('setFriendApplicationRead'); }
  translateText(_options: unknown): Promise<never> { return this.#notYet('translateText'); }
  searchCloudMessages(_options: unknown): Promise<never> { return this.#notYet('searchCloudMessages'); }
}

/** Tencent's `Friend`. */
export interface FriendInfo {
  userID: string;
  remark: string;
  groupList: string[];
  source: string;
  wording: string;
  profile: Profile;
  friendCustomField: unknown[];
}

/** Tencent's `FriendApplication`. */
export interface FriendApplication {
  userID: string;
  avatar: string;
  nick: string;
  time: number;
  source: string;
  wording: string;
  type: TYPES;
}

function friendOf(f: DuetFriend): FriendInfo {
  return {
    userID: f.peer, remark: f.remark, groupList: f.groups, source: f.source, wording: f.wording,
    profile: profileOf(f.peer), friendCustomField: [],
  };
}

function applicationOf(
  userID: string, r: { time: number; source: string; wording: string }, type: TYPES,
): FriendApplication {
  return { userID, avatar: '', nick: '', time: r.time, source: r.source, wording: r.wording, type };
}

/** Tencent's `offlinePushInfo` (camelCase) as the protocol's `OfflinePushInfo`. */
function offlinePush(info: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (typeof info.title === 'string') out.Title = info.title;
  if (typeof info.description === 'string') out.Desc = info.description;
  if (typeof info.extension === 'string') out.Ext = info.extension;
  if (info.disablePush === true) out.PushFlag = 1;
  return out;
}

/** The element of a payload made by a `create…Message` (text, face, location, custom). */
function bodyOf(type: TYPES, p: unknown): MsgElem {
  const e = elemOf(type, p);
  if (e === undefined) {
    throw new TencentError(LocalCode.INVALID_ARGUMENT, `sendMessage: a ${type} message needs its file: create it again`);
  }
  return e;
}

export { messageID };
export type { DuetMessage };
