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
  recalled: boolean;
  /** The sender's nickname and avatar when it was sent ('' when unset). */
  nick: string;
  faceUrl: string;
  /** Sent by an app admin as itself (a "system" message). */
  system: boolean;
}

export interface Conversation {
  peer: string;
  last: Message | null;
  unread: number;
  /** The last message's time, unix seconds. */
  time: number;
  /** The conversation's highest `conv_seq` known. */
  convSeq: number;
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
    nick: m.nick ?? '',
    faceUrl: m.face_url ?? '',
    system: m.system ?? false,
  };
}

export function conversationFromWire(c: WireConversation): Conversation {
  return {
    peer: c.peer,
    last: c.last ? messageFromWire(c.last) : null,
    unread: c.unread,
    time: c.time,
    convSeq: c.conv_seq,
  };
}

/** The other side of a message for user `me`. */
export function peerOf(m: Message, me: string): string {
  return m.from === me ? m.to : m.from;
}

/** The text of a message's text elements, joined. */
export function textOf(m: Message): string {
  return m.body.map((e) => (e.MsgType === 'TIMTextElem' ? e.MsgContent.Text : '')).join('');
}
