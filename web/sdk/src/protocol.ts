/**
 * The wire: the JSON frames of Duet's client protocol (`docs/protocol.md`), version 1, and Tencent's
 * message elements as the protocol carries them. Field names are the wire's; nothing here has behaviour.
 */

/** The protocol version this SDK speaks. */
export const PROTOCOL_VERSION = 1;

/** A login's platform. */
export type Platform = 'iPhone' | 'Android' | 'iPad' | 'PC' | 'Windows' | 'Mac' | 'Linux' | 'Web';

export interface TextElem { MsgType: 'TIMTextElem'; MsgContent: { Text: string } }
export interface FaceElem { MsgType: 'TIMFaceElem'; MsgContent: { Index: number; Data: string } }
export interface LocationElem {
  MsgType: 'TIMLocationElem';
  MsgContent: { Desc: string; Latitude: number; Longitude: number };
}
export interface CustomElem {
  MsgType: 'TIMCustomElem';
  MsgContent: { Data: string; Desc: string; Ext: string; Sound?: string };
}
/** One rendition of an image: `Type` 1 original, 2 large, 3 thumbnail. */
export interface ImageInfo { Type: number; Size: number; Width: number; Height: number; URL: string }
export interface ImageElem {
  MsgType: 'TIMImageElem';
  MsgContent: { UUID: string; ImageFormat: number; ImageInfoArray: ImageInfo[] };
}
export interface SoundElem {
  MsgType: 'TIMSoundElem';
  MsgContent: { Url: string; UUID: string; Size: number; Second: number; Download_Flag: number };
}
export interface FileElem {
  MsgType: 'TIMFileElem';
  MsgContent: { Url: string; UUID: string; FileSize: number; FileName: string; Download_Flag: number };
}
export interface VideoFileElem {
  MsgType: 'TIMVideoFileElem';
  MsgContent: {
    VideoUrl: string; VideoUUID: string; VideoSize: number; VideoSecond: number; VideoFormat: string;
    VideoDownloadFlag: number;
    ThumbUrl: string; ThumbUUID: string; ThumbSize: number; ThumbWidth: number; ThumbHeight: number;
    ThumbFormat: string; ThumbDownloadFlag: number;
  };
}
/** One element of Tencent's `MsgBody`. */
export type MsgElem =
  | TextElem | FaceElem | LocationElem | CustomElem | ImageElem | SoundElem | FileElem | VideoFileElem;

/** A message as the server sends it (protocol *Message*). */
export interface WireMessage {
  from: string;
  to: string;
  msg_key: string;
  seq: number;
  random: number;
  time: number;
  conv_seq: number;
  body: MsgElem[];
  cloud_custom_data?: string;
  /** Recalled: `body` is then `[]` and `cloud_custom_data` empty; `revoker` names who recalled it. */
  recalled?: boolean;
  revoker?: string;
  /** `history` and `find` only: the recipient has read it (omitted when false). */
  peer_read?: boolean;
  /** The sender asked for a message-level read receipt. */
  need_read_receipt?: boolean;
  /** When the recipient acknowledged it with a read receipt (unix seconds; omitted until then). */
  receipt_time?: number;
  nick?: string;
  face_url?: string;
  system?: boolean;
  /** How many times the message was edited (omitted while 0); `modify` names the version seen. */
  version?: number;
}

/**
 * A sync-log entry. New kinds may come within version 1: a client skips a kind it does not know, its
 * `seq` still counting.
 */
export type Entry =
  | { kind: 'msg'; seq: number; msg: WireMessage }
  /** The user read what `peer` sent up to `time` (on some device). */
  | { kind: 'read'; seq: number; peer: string; time: number }
  /** A message of the conversation with `peer` was recalled, by `by` (its sender, or an app admin). */
  | { kind: 'recall'; seq: number; peer: string; msg_key: string; by?: string }
  /** `peer` read what the user sent up to `time`: the conversation's read receipt. */
  | { kind: 'peer_read'; seq: number; peer: string; time: number }
  /** `peer` acknowledged the user's message `msg_key` (sent with `need_read_receipt`) at `time`. */
  | { kind: 'receipt'; seq: number; peer: string; msg_key: string; time: number }
  /**
   * A message of one of the user's conversations was edited (by its sender, or an app admin): `msg` is the
   * message as it is now. Both sides get it; a client updates the copy it holds, if any.
   */
  | { kind: 'modified'; seq: number; msg: WireMessage }
  /** The user deleted `msg_key` of the conversation with `peer` from its side; the peer keeps it. */
  | { kind: 'deleted'; seq: number; peer: string; msg_key: string }
  /**
   * The user cleared its history with `peer`: its messages numbered (`conv_seq`) up to `upto` are gone
   * from its side (0: none were); with `conversation`, the conversation left its list too.
   */
  | { kind: 'cleared'; seq: number; peer: string; upto: number; conversation: boolean };

export interface WireConversation {
  peer: string;
  last?: WireMessage | null;
  unread: number;
  time: number;
  conv_seq: number;
  /** Up to when `peer` has read what the user sent (unix seconds; 0: nothing yet). */
  peer_read_time?: number;
}

export interface WireFriend {
  peer: string;
  remark?: string;
  groups?: string[];
  source?: string;
  wording?: string;
  add_time: number;
}

export interface WireFriendRequest {
  from: string;
  to: string;
  wording?: string;
  source?: string;
  time: number;
}

export interface WireBlocked { peer: string; time: number }

/** A `relation` event's `event`. */
export type RelationEvent =
  | { kind: 'friend_added'; friend: WireFriend }
  | { kind: 'friend_removed'; peer: string }
  | { kind: 'request_received'; request: WireFriendRequest }
  | { kind: 'request_sent'; request: WireFriendRequest }
  | { kind: 'request_deleted'; from: string; to: string; reason: 'accepted' | 'declined' | 'cancelled' }
  | { kind: 'black_added'; entry: WireBlocked }
  | { kind: 'black_removed'; peer: string }
  | { kind: 'relations_changed' };

/** Frames the client sends. */
export type ClientFrame =
  | {
      op: 'login'; id: number; protocol: number; user: string; usersig: string; platform: Platform;
      device: string; transient?: boolean; live?: boolean;
    }
  | { op: 'sync'; id: number; after: number; limit: number }
  | {
      op: 'send'; id: number; to: string; random: number; seq?: number; body: MsgElem[];
      cloud_custom_data?: string; online_only?: boolean; push?: Record<string, unknown>;
      need_read_receipt?: boolean;
    }
  | { op: 'history'; id: number; peer: string; count: number; before?: string }
  | { op: 'conversations'; id: number }
  | { op: 'mark_read'; id: number; peer: string; time?: number }
  | { op: 'recall'; id: number; peer: string; msg_key: string }
  | { op: 'read_receipt'; id: number; peer: string; msg_keys: string[] }
  | { op: 'find'; id: number; peer: string; msg_keys: string[] }
  | {
      op: 'modify'; id: number; peer: string; msg_key: string; body?: MsgElem[]; cloud_custom_data?: string;
      version?: number;
    }
  | { op: 'delete'; id: number; peer: string; msg_keys: string[] }
  | { op: 'clear_history'; id: number; peer: string }
  | { op: 'delete_conversation'; id: number; peer: string; clear_history?: boolean }
  | { op: 'ping'; id: number }
  | { op: 'logout'; id: number }
  | {
      op: 'friend_add'; id: number; to: string; wording?: string; source?: string; remark?: string;
      single?: boolean;
    }
  | { op: 'friend_accept'; id: number; peer: string; single?: boolean }
  | { op: 'friend_decline'; id: number; peer: string }
  | { op: 'friend_delete'; id: number; peer: string; single?: boolean }
  | { op: 'friend_list'; id: number }
  | { op: 'friend_requests'; id: number }
  | { op: 'black_add'; id: number; peer: string }
  | { op: 'black_delete'; id: number; peer: string }
  | { op: 'black_list'; id: number };

/** A client frame without its `id` (the client numbers requests). */
export type Request = ClientFrame extends infer F ? (F extends { id: number } ? Omit<F, 'id'> : never) : never;

/** Frames the server sends. */
export type ServerFrame =
  | { op: 'logged_in'; id: number; user: string; server_time: number; latest: number }
  | { op: 'synced'; id: number; entries: Entry[]; latest: number; more: boolean }
  | {
      op: 'sent'; id: number; msg_key: string; seq: number; random: number; time: number; conv_seq: number;
      log_seq: number;
    }
  | { op: 'history'; id: number; messages: WireMessage[]; complete: boolean; conv_seq: number }
  | { op: 'conversations'; id: number; items: WireConversation[] }
  | { op: 'ok'; id: number }
  | { op: 'receipts'; id: number; acknowledged: string[] }
  | { op: 'found'; id: number; messages: Array<WireMessage | null> }
  | { op: 'modified'; id: number; msg: WireMessage }
  | { op: 'deleted'; id: number; deleted: string[] }
  | { op: 'pong'; id: number; server_time: number; latest: number }
  | { op: 'friend_add_result'; id: number; pending: boolean }
  | { op: 'friend_list'; id: number; friends: WireFriend[] }
  | { op: 'friend_requests'; id: number; incoming: WireFriendRequest[]; outgoing: WireFriendRequest[] }
  | { op: 'black_list'; id: number; items: WireBlocked[] }
  | { op: 'entry'; entry: Entry }
  | { op: 'relation'; event: RelationEvent }
  | { op: 'relations_changed' }
  | { op: 'kicked'; code: number; info: string }
  | { op: 'sig_expired'; code: number; info: string }
  | { op: 'error'; id: number; code: number; info: string };

/** What `POST /v1/media` answers. */
export interface Uploaded {
  UUID: string;
  URL: string;
  Size: number;
  FileName: string;
  ImageFormat?: number;
  ImageInfoArray?: ImageInfo[];
}

/** The kinds of upload. */
export type MediaType = 'image' | 'sound' | 'file' | 'video';

/** Error codes of the protocol the SDK reacts to. */
export const Code = {
  NOT_LOGGED_IN: 6014,
  INVALID_PARAMS: 6017,
  SIG_EXPIRED: 6206,
  KICKED: 6208,
  KICK_INVALIDATED: 70052,
  /** `recall`: the recall window (2 minutes by default) is over. */
  RECALL_TOO_LATE: 20016,
  /** `recall`, `modify`: no such message of the user in that conversation. */
  NO_SUCH_MESSAGE: 20022,
  /** `recall`, `modify`: recalled already. */
  ALREADY_RECALLED: 20023,
  /** `modify`: someone edited the message since the version named (read the latest with `find`). */
  EDIT_CONFLICT: 20028,
  /** A malformed `msg_key`. */
  INVALID_MSG_KEY: 90054,
} as const;

/** Message keys one `read_receipt` or `find` may name. */
export const MAX_KEYS_PER_REQUEST = 100;
/** Message keys one `delete` may name. */
export const MAX_DELETE_KEYS = 50;
