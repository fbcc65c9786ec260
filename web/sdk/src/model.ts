/** Messages and conversations as the SDK hands them to the app (camelCase), and their conversion from the wire. */

import type { MsgElem, WireConversation, WireMessage } from './protocol.js';

export interface Message {
  from: string;
  to: string;
  /** Tencent's `<MsgSeq>_<MsgRandom>_<MsgTime>`: the message's id within its conversation. */
  msgKey: string;
  seq: number;
  random: number;
  /** Server time, unix seconds. */
  time: number;
  /** The message's number in its conversation (0: stored nowhere, e.g. online-only). */
  convSeq: number;
  body: MsgElem[];
  cloudCustomData: string;
  /** Recalled: it stays in history, flagged, its `body` empty and its `cloudCustomData` ''. */
  recalled: boolean;
  /** Who recalled it (its sender, or an app admin); '' while not recalled. */
  revoker: string;
  /**
   * For a message this user sent: the peer has read it (by the conversation's read receipt), as known
   * when the message was handed over; {@link Conversation.peerReadTime} is the live value
   * ({@link isPeerRead}).
   */
  peerRead: boolean;
  /** The sender asked for a message-level read receipt. */
  needReadReceipt: boolean;
  /** When the recipient acknowledged it with a read receipt (unix seconds; 0: not yet). */
  receiptTime: number;
  /** The sender's nickname and avatar when it was sent ('' when unset). */
  nick: string;
  faceUrl: string;
  /** Sent by an app admin as itself (a "system" message). */
  system: boolean;
  /** How many times it was edited (0: never); {@link DuetClient.modify} names the version the app saw. */
  version: number;
}

export interface Conversation {
  peer: string;
  last: Message | null;
  unread: number;
  /** The last message's time, unix seconds. */
  time: number;
  /** The conversation's highest `conv_seq` known. */
  convSeq: number;
  /**
   * Up to when `peer` has read what this user sent (the conversation's read receipt; unix seconds, 0:
   * nothing yet). This user's messages dated at or before it are read.
   */
  peerReadTime: number;
}

export function messageFromWire(m: WireMessage): Message {
  return {
    from: m.from,
    to: m.to,
    msgKey: m.msg_key,
    seq: m.seq,
    random: m.random,
    time: m.time,
    convSeq: m.conv_seq,
    body: m.body,
    cloudCustomData: m.cloud_custom_data ?? '',
    recalled: m.recalled ?? false,
    revoker: m.revoker ?? '',
    peerRead: m.peer_read ?? false,
    needReadReceipt: m.need_read_receipt ?? false,
    receiptTime: m.receipt_time ?? 0,
    nick: m.nick ?? '',
    faceUrl: m.face_url ?? '',
    system: m.system ?? false,
    version: m.version ?? 0,
  };
}

export function conversationFromWire(c: WireConversation): Conversation {
  return {
    peer: c.peer,
    last: c.last ? messageFromWire(c.last) : null,
    unread: c.unread,
    time: c.time,
    convSeq: c.conv_seq,
    peerReadTime: c.peer_read_time ?? 0,
  };
}

/** An empty conversation with `peer`. */
export function emptyConversation(peer: string): Conversation {
  return { peer, last: null, unread: 0, time: 0, convSeq: 0, peerReadTime: 0 };
}

/** Whether `c`'s peer has read `m`, a message this user sent in `c`. */
export function isPeerRead(c: Conversation, m: Message): boolean {
  return m.to === c.peer && (m.peerRead || m.time <= c.peerReadTime);
}

/** Marks `m` recalled by `by`: flagged, its body and custom data dropped (as the server shows it). */
export function recall(m: Message, by: string): void {
  m.recalled = true;
  m.revoker = by;
  m.body = [];
  m.cloudCustomData = '';
}

/**
 * A message as a store wrote it, with the fields an older version of this SDK did not keep filled in
 * (IndexedDB keeps what was written).
 */
export function upgradeMessage(m: Message): Message {
  m.revoker ??= '';
  m.peerRead ??= false;
  m.needReadReceipt ??= false;
  m.receiptTime ??= 0;
  m.version ??= 0;
  return m;
}

/** A conversation as a store wrote it, with the fields an older version did not keep filled in. */
export function upgradeConversation(c: Conversation): Conversation {
  c.peerReadTime ??= 0;
  if (c.last) upgradeMessage(c.last);
  return c;
}

/** Takes `edited`'s content (body, custom data, version) into `m` when it is not older. */
export function takeEdit(m: Message, edited: Message): boolean {
  if (m.recalled || edited.version < m.version) return false;
  m.body = edited.body;
  m.cloudCustomData = edited.cloudCustomData;
  m.version = edited.version;
  return true;
}

/** The other side of a message for user `me`. */
export function peerOf(m: Message, me: string): string {
  return m.from === me ? m.to : m.from;
}

/** The text of a message's text elements, joined. */
export function textOf(m: Message): string {
  return m.body.map((e) => (e.MsgType === 'TIMTextElem' ? e.MsgContent.Text : '')).join('');
}
