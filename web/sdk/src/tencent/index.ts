/**
 * A drop-in for `@tencentcloud/chat` (one-to-one chat) on Duet:
 *
 * ```ts
 * import TencentCloudChat from '@duet/chat/tencent'; // was: from '@tencentcloud/chat'
 * const chat = TencentCloudChat.create({ SDKAppID: 1400000000, server: 'https://chat.example.com' });
 * ```
 */

import { Chat, type CreateOptions } from './chat.js';
import { EVENT, TYPES } from './constants.js';

export { Chat, type ChatEvent, type CreateOptions, type FileSource, type FriendApplication, type FriendInfo,
  type MessageOptions, type Response, type SendMessageOptions, TENCENT_CODE, TencentError } from './chat.js';
export { EVENT, TYPES } from './constants.js';
export {
  type Conversation, type ImageInfo, type LastMessage, Message, type MessageReadReceipt, type Payload, type Profile,
  type ReadReceiptInfo, type UserInfo,
} from './message.js';

/** `TencentCloudChat`: `create`, `TYPES` and `EVENT`, as Tencent's default export. */
const TencentCloudChat = {
  create(options: CreateOptions): Chat {
    return new Chat(options);
  },
  TYPES,
  EVENT,
};

export default TencentCloudChat;
