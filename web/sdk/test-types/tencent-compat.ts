/**
 * Checked by `npm run typecheck`, never run: Duet's facade against the types Tencent publishes in
 * `@tencentcloud/chat` (a devDependency for this check only). A method is marked supported in README.md's
 * table only when it is in `Supported` below and this file compiles.
 */

import type { ChatSDK, Message as TencentMessage } from '@tencentcloud/chat';
import TencentCloudChat from '@tencentcloud/chat';

import DuetChat, { type Chat, type Conversation, type Message } from '../src/tencent/index.js';

/** The C2C methods README.md marks supported or partial. */
type Supported = Pick<
  ChatSDK,
  | 'login' | 'logout' | 'destroy' | 'getLoginUser' | 'getServerTime' | 'isReady' | 'on' | 'off'
  | 'registerPlugin' | 'setLogLevel'
  | 'createTextMessage' | 'createFaceMessage' | 'createLocationMessage' | 'createCustomMessage'
  | 'createImageMessage' | 'createFileMessage' | 'createAudioMessage' | 'createVideoMessage'
  | 'sendMessage' | 'resendMessage' | 'findMessage'
  | 'getMessageList' | 'setMessageRead' | 'setAllMessageRead'
  | 'getConversationList' | 'getConversationProfile' | 'getTotalUnreadMessageCount'
  | 'getFriendList' | 'addFriend' | 'deleteFriend' | 'getFriendApplicationList' | 'acceptFriendApplication'
  | 'refuseFriendApplication'
  | 'getBlacklist' | 'addToBlacklist' | 'removeFromBlacklist'
>;

/** Methods that exist and reject, naming themselves, until Duet serves them. */
type NotYet = Pick<
  ChatSDK,
  | 'revokeMessage' | 'deleteMessage' | 'modifyMessage' | 'getMessageListHopping' | 'sendMessageReadReceipt'
  | 'getMessageReadReceiptList' | 'deleteConversation' | 'clearHistoryMessage' | 'pinConversation'
  | 'setConversationDraft' | 'setConversationCustomData' | 'markConversation'
  | 'getMyProfile' | 'getUserProfile' | 'updateMyProfile'
  | 'getUserStatus' | 'setSelfStatus' | 'subscribeUserStatus' | 'unsubscribeUserStatus'
  | 'checkFriend' | 'getFriendProfile' | 'updateFriend' | 'deleteFriendApplication' | 'setFriendApplicationRead'
  | 'translateText' | 'searchCloudMessages'
>;

declare const chat: Chat;
export const supported: Supported = chat;
export const notYet: NotYet = chat;

// `create` takes Tencent's options plus `server`, and TYPES/EVENT values are Tencent's.
export const created: Supported = DuetChat.create({ SDKAppID: 1400000000, server: 'http://127.0.0.1:7080' });
export const c2c: TencentCloudChat.TYPES = DuetChat.TYPES.CONV_C2C;
export const received: TencentCloudChat.EVENT = DuetChat.EVENT.MESSAGE_RECEIVED;
export const kicked: TencentCloudChat.EVENT = DuetChat.EVENT.KICKED_OUT;

// Duet's messages go where Tencent's are expected: in, and out of, Tencent-typed code.
declare const duetMessage: Message;
export const asTencent: TencentMessage = duetMessage;
export const created2: TencentMessage = chat.createTextMessage({
  to: 'bob', conversationType: TencentCloudChat.TYPES.CONV_C2C, payload: { text: 'hi' },
});
export function takesTencentMessages(list: TencentMessage[]): number {
  return list.length;
}
takesTencentMessages([duetMessage]);

// Code written against Tencent's types compiles against Duet's (web/examples/tencent-c2c is a whole app):
// handlers typed by the app for their event, payload fields read without casts (`payload` is `any` in
// Tencent's types), and an <input type="file"> as an image's file.
chat.on(DuetChat.EVENT.MESSAGE_RECEIVED, (event: { data: TencentMessage[] }) => takesTencentMessages(event.data));
chat.on(DuetChat.EVENT.KICKED_OUT, (event: { name: string; data: { type: string } }) => event.data.type);
export const text: string = duetMessage.payload.text;
export const imageUrl: string = duetMessage.payload.imageInfoArray[0].url;
declare const conversation: Conversation;
export const lastText: string = conversation.lastMessage.payload.text;
declare const imagePicker: HTMLInputElement;
export const image: TencentMessage = chat.createImageMessage({
  to: 'bob', conversationType: TencentCloudChat.TYPES.CONV_C2C, payload: { file: imagePicker },
});
