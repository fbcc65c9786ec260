/**
 * Tencent's `Message` and `Conversation` objects (field names of `@tencentcloud/chat`), made from Duet's,
 * and the conversion between Tencent's web payloads and the protocol's elements.
 */

import * as elems from '../elems.js';
import { type Conversation as DuetConversation, isPeerRead, type Message as DuetMessage } from '../model.js';
import type { MsgElem } from '../protocol.js';
import { TYPES } from './constants.js';

/** Turns a media URL of the server into one the browser can load (credentials added). */
export type UrlMapper = (url: string) => string;

export interface ImageInfo {
  /** 0 original, 1 large, 2 thumbnail (Tencent web's order of `imageInfoArray`). */
  type: number;
  /** 1 original, 2 large, 3 thumbnail (the protocol's `Type`). */
  sizeType: number;
  size: number;
  width: number;
  height: number;
  url: string;
  imageUrl: string;
}

export type Payload =
  | { text: string }
  | { index: number; data: string }
  | { description: string; longitude: number; latitude: number }
  | { data: string; description: string; extension: string }
  | { uuid: string; imageFormat: number; imageInfoArray: ImageInfo[] }
  | { uuid: string; url: string; remoteAudioUrl: string; size: number; second: number; downloadFlag: number }
  | {
      uuid: string; fileName: string; fileUrl: string; remoteFileUrl: string; fileSize: number;
      downloadFlag: number;
    }
  | {
      videoUUID: string; videoUrl: string; remoteVideoUrl: string; videoSize: number; videoSecond: number;
      videoFormat: string; videoDownloadFlag: number; thumbUUID: string; thumbUrl: string; thumbSize: number;
      thumbWidth: number; thumbHeight: number; thumbDownloadFlag: number;
    };

/** Tencent's payload of one element. */
export function payloadOf(e: MsgElem, url: UrlMapper): Payload {
  switch (e.MsgType) {
    case 'TIMTextElem':
      return { text: e.MsgContent.Text };
    case 'TIMFaceElem':
      return { index: e.MsgContent.Index, data: e.MsgContent.Data };
    case 'TIMLocationElem':
      return { description: e.MsgContent.Desc, longitude: e.MsgContent.Longitude, latitude: e.MsgContent.Latitude };
    case 'TIMCustomElem':
      return { data: e.MsgContent.Data, description: e.MsgContent.Desc, extension: e.MsgContent.Ext };
    case 'TIMImageElem':
      return {
        uuid: e.MsgContent.UUID,
        imageFormat: e.MsgContent.ImageFormat,
        imageInfoArray: e.MsgContent.ImageInfoArray.map((i, n) => ({
          type: n, sizeType: i.Type, size: i.Size, width: i.Width, height: i.Height, url: url(i.URL),
          imageUrl: url(i.URL),
        })),
      };
    case 'TIMSoundElem':
      return {
        uuid: e.MsgContent.UUID, url: url(e.MsgContent.Url), remoteAudioUrl: e.MsgContent.Url,
        size: e.MsgContent.Size, second: e.MsgContent.Second, downloadFlag: e.MsgContent.Download_Flag,
      };
    case 'TIMFileElem':
      return {
        uuid: e.MsgContent.UUID, fileName: e.MsgContent.FileName, fileUrl: url(e.MsgContent.Url),
        remoteFileUrl: e.MsgContent.Url, fileSize: e.MsgContent.FileSize, downloadFlag: e.MsgContent.Download_Flag,
      };
    case 'TIMVideoFileElem': {
      const v = e.MsgContent;
      return {
        videoUUID: v.VideoUUID, videoUrl: url(v.VideoUrl), remoteVideoUrl: v.VideoUrl, videoSize: v.VideoSize,
        videoSecond: v.VideoSecond, videoFormat: v.VideoFormat, videoDownloadFlag: v.VideoDownloadFlag,
        thumbUUID: v.ThumbUUID, thumbUrl: url(v.ThumbUrl), thumbSize: v.ThumbSize, thumbWidth: v.ThumbWidth,
        thumbHeight: v.ThumbHeight, thumbDownloadFlag: v.ThumbDownloadFlag,
      };
    }
  }
}

/**
 * The element of a payload of `type` (text, face, location, custom: what a message can be edited or
 * resent from); `undefined` for media, whose element comes from an upload.
 */
export function elemOf(type: TYPES, p: unknown): MsgElem | undefined {
  const x = (p ?? {}) as Record<string, unknown>;
  const s = (k: string) => (typeof x[k] === 'string' ? (x[k] as string) : '');
  const n = (k: string) => (typeof x[k] === 'number' ? (x[k] as number) : 0);
  switch (type) {
    case TYPES.MSG_TEXT: return elems.text(s('text'));
    case TYPES.MSG_FACE: return elems.face(n('index'), s('data'));
    case TYPES.MSG_LOCATION: return elems.location(s('description'), n('latitude'), n('longitude'));
    case TYPES.MSG_CUSTOM: return elems.custom(s('data'), s('description'), s('extension'));
    default: return undefined;
  }
}

/** JSON with object keys sorted: equal for equal payloads whatever order their fields were written in. */
function canonical(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) => (x && typeof x === 'object' && !Array.isArray(x)
    ? Object.fromEntries(Object.entries(x as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
    : x));
}

const ELEM_TYPES: Record<MsgElem['MsgType'], TYPES> = {
  TIMTextElem: TYPES.MSG_TEXT,
  TIMFaceElem: TYPES.MSG_FACE,
  TIMLocationElem: TYPES.MSG_LOCATION,
  TIMCustomElem: TYPES.MSG_CUSTOM,
  TIMImageElem: TYPES.MSG_IMAGE,
  TIMSoundElem: TYPES.MSG_AUDIO,
  TIMFileElem: TYPES.MSG_FILE,
  TIMVideoFileElem: TYPES.MSG_VIDEO,
};

export interface UserInfo {
  userID: string;
  nick: string;
  avatar: string;
}

/**
 * A message's `readReceiptInfo` (Tencent's web SDK: `isPeerRead` for one-to-one messages, `readCount` and
 * `unreadCount` for group messages): the message-level read receipt, given by the recipient's
 * `sendMessageReadReceipt`. One-to-one, `readCount` is 1 once the peer acknowledged it (and `unreadCount`
 * 0); `timestamp` is when (unix seconds, 0: not yet), as in Tencent's native `V2TIMMessageReceipt`.
 */
export interface ReadReceiptInfo {
  isPeerRead: boolean;
  timestamp: number;
  readCount: number;
  unreadCount: number;
}

export function readReceiptInfoOf(receiptTime: number): ReadReceiptInfo {
  const read = receiptTime > 0;
  return { isPeerRead: read, timestamp: receiptTime, readCount: read ? 1 : 0, unreadCount: read ? 0 : 1 };
}

/** What `MESSAGE_READ_RECEIPT_RECEIVED` carries for each acknowledged message (one-to-one). */
export interface MessageReadReceipt {
  conversationID: string;
  /** Who read it: the peer. */
  userID: string;
  messageID: string;
  isPeerRead: boolean;
  /** When (unix seconds). */
  timestamp: number;
  readCount: number;
  unreadCount: number;
}

/** Tencent's `Profile`, with what Duet knows of a user (its UserID, and nick and avatar from messages). */
export interface Profile {
  userID: string;
  nick: string;
  gender: TYPES;
  birthday: number;
  location: string;
  selfSignature: string;
  allowType: TYPES;
  language: number;
  avatar: string;
  messageSettings: number;
  adminForbidType: TYPES;
  level: number;
  role: number;
  lastUpdatedNumber: number;
  profileCustomField: unknown[];
}

export function profileOf(userID: string, nick = '', avatar = ''): Profile {
  return {
    userID, nick, avatar, gender: TYPES.GENDER_UNKNOWN, birthday: 0, location: '', selfSignature: '',
    allowType: TYPES.ALLOW_TYPE_NEED_CONFIRM, language: 0, messageSettings: 0, adminForbidType: TYPES.FORBID_TYPE_NONE,
    level: 0, role: 0, lastUpdatedNumber: 0, profileCustomField: [],
  };
}

/** The message ID: `<from>-<msgKey>` (Tencent's is `<sender>-<clientTime>-<random>`); stable across devices. */
export function messageID(from: string, msgKey: string): string {
  return `${from}-${msgKey}`;
}

/** The `msgKey` in a message ID (after its last `-`). */
export function msgKeyOfID(id: string): string {
  return id.slice(id.lastIndexOf('-') + 1);
}

/** A message with Tencent's field names. */
export class Message {
  ID: string;
  type: TYPES;
  /**
   * The content, one of the {@link Payload} shapes by `type`. Typed `any`, as in Tencent's types, so that
   * code written against them (`message.payload.text` after checking `type`) compiles unchanged.
   */
  payload: any;
  conversationID: string;
  conversationType: TYPES = TYPES.CONV_C2C;
  to: string;
  from: string;
  flow: 'in' | 'out';
  /** Unix seconds. */
  time: number;
  /** `unSend`, `success` or `fail`. */
  status: 'unSend' | 'success' | 'fail';
  /**
   * Recalled (by `revoker`). The object keeps the `payload` it had, as Tencent's does; a recalled message
   * read from history afterwards has none.
   */
  isRevoked = false;
  priority: TYPES = TYPES.MSG_PRIORITY_NORMAL;
  nick = '';
  avatar = '';
  /**
   * For a message sent by this user: the peer has read it (the peer's `setMessageRead` covered it; Tencent
   * raises `MESSAGE_READ_BY_PEER` when it becomes true).
   */
  isPeerRead = false;
  nameCard = '';
  atUserList: string[] = [];
  cloudCustomData = '';
  /**
   * Deleted from this user's side (`deleteMessage`, here or on another device of the user, or with its
   * conversation's history); the peer keeps it.
   */
  isDeleted = false;
  /** Edited since it was sent (`modifyMessage`, or the admin's REST `modify_c2c_msg`): `version` > 0. */
  isModified = false;
  /**
   * How many times it was edited (Tencent's web SDK keeps the same `version` on its messages, unlisted in
   * its types). `modifyMessage` sends it: an edit of a message someone edited since conflicts (2480).
   */
  version = 0;
  /** The sender asked for a message-level read receipt (`needReadReceipt` when the message was created). */
  needReadReceipt = false;
  /** The message-level read receipt: `isPeerRead` once the peer acknowledged it (`sendMessageReadReceipt`). */
  readReceiptInfo: ReadReceiptInfo = readReceiptInfoOf(0);
  isBroadcastMessage = false;
  isSupportExtension = false;
  /** Who recalled it (deprecated by Tencent for `revokerInfo`, kept). */
  revoker = '';
  /** Who recalled it: its sender, or an app admin (the UserID; Duet has no profiles for nick and avatar yet). */
  revokerInfo: UserInfo = { userID: '', nick: '', avatar: '' };
  revokeReason = '';
  /** Tencent's `MsgSeq`. */
  sequence = 0;
  /** Tencent's `MsgRandom`. */
  random: number;
  clientSequence = 0;
  clientTime: number;
  isSystemMessage = false;
  protocol = 'JSON';
  hasRiskContent = false;
  /** Every element of the message (Tencent's web SDK shows the first as `type` and `payload`). */
  elements: Array<{ type: TYPES; payload: Payload }> = [];
  /** Duet: the message's key in its conversation, `<MsgSeq>_<MsgRandom>_<MsgTime>` ('' until sent). */
  msgKey = '';
  /** The body as last known from the server (or as created): what an edit of the payload is measured against. */
  #body: MsgElem[];

  constructor(init: {
    from: string; to: string; me: string; body: MsgElem[]; time: number; random: number; url: UrlMapper;
    status: Message['status'];
  }) {
    const first = init.body[0];
    this.from = init.from;
    this.to = init.to;
    this.flow = init.from === init.me ? 'out' : 'in';
    this.conversationID = `C2C${init.from === init.me ? init.to : init.from}`;
    this.time = init.time;
    this.clientTime = init.time;
    this.random = init.random;
    this.status = init.status;
    this.type = first ? ELEM_TYPES[first.MsgType] : TYPES.MSG_CUSTOM;
    this.payload = first ? payloadOf(first, init.url) : { data: '', description: '', extension: '' };
    this.elements = init.body.map((e) => ({ type: ELEM_TYPES[e.MsgType], payload: payloadOf(e, init.url) }));
    this.#body = init.body;
    this.ID = `${init.from}-local-${init.random}`;
  }

  /** Fills in what the server said about the message; `peerRead`: whether the peer has read it. */
  update(m: DuetMessage, url: UrlMapper, peerRead = false): void {
    this.msgKey = m.msgKey;
    this.ID = messageID(m.from, m.msgKey);
    this.time = m.time;
    this.sequence = m.seq;
    this.clientSequence = m.seq;
    this.random = m.random;
    this.nick = m.nick;
    this.avatar = m.faceUrl ? url(m.faceUrl) : '';
    this.isSystemMessage = m.system;
    this.needReadReceipt = m.needReadReceipt;
    this.readReceiptInfo = readReceiptInfoOf(m.receiptTime);
    this.isPeerRead = peerRead;
    if (m.recalled) {
      // A recalled copy has no content: keep what this object shows.
      this.revoke(m.revoker);
    } else {
      this.edit(m, url);
    }
    this.status = 'success';
  }

  /** Takes the content of `m`, a copy of this message as edited (or as sent): payload, custom data, version. */
  edit(m: DuetMessage, url: UrlMapper): void {
    this.cloudCustomData = m.cloudCustomData;
    const first = m.body[0];
    if (first) {
      this.type = ELEM_TYPES[first.MsgType];
      this.payload = payloadOf(first, url);
    }
    this.elements = m.body.map((e) => ({ type: ELEM_TYPES[e.MsgType], payload: payloadOf(e, url) }));
    this.#body = m.body;
    this.version = m.version;
    this.isModified = m.version > 0;
  }

  /**
   * The body `modifyMessage` sends, as Tencent's web SDK builds it: the first element made from `payload`
   * and the others as they are. Text and custom messages always send it; face and location messages only
   * when the app changed their payload (Duet edits text and custom elements only: the server refuses the
   * others with 6017); media messages never (their `cloudCustomData` alone can change).
   */
  bodyForEdit(): MsgElem[] | undefined {
    const first = elemOf(this.type, this.payload);
    if (first === undefined) return undefined;
    const body = [first, ...this.#body.slice(1)];
    if (this.type === TYPES.MSG_TEXT || this.type === TYPES.MSG_CUSTOM) return body;
    const known = this.#body[0];
    const unchanged = known !== undefined && ELEM_TYPES[known.MsgType] === this.type
      && canonical(payloadOf(known, (u) => u)) === canonical(this.payload);
    return unchanged ? undefined : body;
  }

  /** Marks the message recalled by `by`. */
  revoke(by: string): void {
    this.isRevoked = true;
    this.revoker = by;
    this.revokerInfo = { userID: by, nick: '', avatar: '' };
  }

  /** Takes in what a newer copy of the same message knows: a recall, an edit, the peer's reading, a receipt. */
  absorb(newer: Message): void {
    if (newer.isRevoked && !this.isRevoked) this.revoke(newer.revoker);
    if (newer.version > this.version && !this.isRevoked) {
      this.type = newer.type;
      this.payload = newer.payload;
      this.elements = newer.elements;
      this.cloudCustomData = newer.cloudCustomData;
      this.#body = newer.#body;
      this.version = newer.version;
      this.isModified = newer.isModified;
    }
    this.isPeerRead ||= newer.isPeerRead;
    this.needReadReceipt ||= newer.needReadReceipt;
    if (newer.readReceiptInfo.isPeerRead && !this.readReceiptInfo.isPeerRead) {
      this.readReceiptInfo = { ...newer.readReceiptInfo };
    }
  }

  static fromDuet(m: DuetMessage, me: string, url: UrlMapper, peerRead = false): Message {
    const msg = new Message({
      from: m.from, to: m.to, me, body: m.body, time: m.time, random: m.random, url, status: 'success',
    });
    msg.update(m, url, peerRead);
    return msg;
  }
}

/** Tencent's `lastMessage` of a conversation. */
export interface LastMessage {
  lastTime: number;
  lastSequence: number;
  fromAccount: string;
  type: TYPES;
  /** One of the {@link Payload} shapes by `type`; `any` as for {@link Message.payload}. */
  payload: any;
  messageForShow: string;
  isRevoked: boolean;
  isPeerRead: boolean;
  nick: string;
  nameCard: string;
  cloudCustomData: string;
}

/** A text to show for a message in a list, as Tencent's `messageForShow`. */
export function messageForShow(m: DuetMessage | null): string {
  if (m?.recalled) return '[Recalled]';
  const e = m?.body[0];
  if (!e) return '';
  switch (e.MsgType) {
    case 'TIMTextElem': return e.MsgContent.Text;
    case 'TIMFaceElem': return '[Emoji]';
    case 'TIMLocationElem': return '[Location]';
    case 'TIMCustomElem': return e.MsgContent.Desc || '[Custom Message]';
    case 'TIMImageElem': return '[Image]';
    case 'TIMSoundElem': return '[Voice]';
    case 'TIMFileElem': return '[File]';
    case 'TIMVideoFileElem': return '[Video]';
  }
}

/** A conversation with Tencent's field names (C2C only). */
export interface Conversation {
  conversationID: string;
  type: TYPES;
  unreadCount: number;
  lastMessage: LastMessage;
  userProfile: Profile;
  groupProfile: null;
  groupAtInfoList: unknown[];
  remark: string;
  isPinned: boolean;
  messageRemindType: string;
  markList: number[];
  customData: string;
  conversationGroupList: string[];
  draftText: string;
}

export function conversationOf(c: DuetConversation, me: string, url: UrlMapper): Conversation {
  const last = c.last;
  const first = last?.body[0];
  // The peer's nick and avatar, as of their last message here.
  const fromPeer = last && last.from !== me ? last : null;
  return {
    conversationID: `C2C${c.peer}`,
    type: TYPES.CONV_C2C,
    unreadCount: c.unread,
    lastMessage: {
      lastTime: last?.time ?? c.time,
      lastSequence: last?.seq ?? 0,
      fromAccount: last?.from ?? '',
      type: first ? ELEM_TYPES[first.MsgType] : TYPES.MSG_TEXT,
      payload: first ? payloadOf(first, url) : { text: '' },
      messageForShow: messageForShow(last),
      isRevoked: last?.recalled ?? false,
      isPeerRead: last !== null && last.from === me && isPeerRead(c, last),
      nick: last?.nick ?? '',
      nameCard: '',
      cloudCustomData: last?.cloudCustomData ?? '',
    },
    userProfile: profileOf(c.peer, fromPeer?.nick ?? '', fromPeer?.faceUrl ? url(fromPeer.faceUrl) : ''),
    groupProfile: null,
    groupAtInfoList: [],
    remark: '',
    isPinned: false,
    messageRemindType: '',
    markList: [],
    customData: '',
    conversationGroupList: [],
    draftText: '',
  };
}
