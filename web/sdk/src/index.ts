/**
 * Duet's web SDK: {@link DuetClient} speaks Duet's client protocol (`docs/protocol.md`) in browsers and
 * Node. The Tencent Cloud Chat compatible facade is in `./tencent`.
 */

export {
  DuetClient, type Blocked, type ClientEvents, type ClientOptions, type ConnectionState, type Friend,
  type FriendRequest, type HistoryPage, type ModifyOptions, type SendOptions, type SentMessage,
} from './client.js';
export { DuetError, EditConflictError, LocalCode } from './errors.js';
export * as elems from './elems.js';
export { authorizedUrl, type Progress, type UploadBody, type UploadOptions } from './media.js';
export { type Conversation, isPeerRead, type Message, peerOf, textOf } from './model.js';
export type * from './protocol.js';
export { Code, PROTOCOL_VERSION } from './protocol.js';
export { IndexedDbStore, type LocalStore, MemoryStore } from './store.js';
export type { Socket, SocketFactory } from './transport.js';
