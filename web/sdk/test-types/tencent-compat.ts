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
  | 'revokeMessage' | 'sendMessageReadReceipt' | 'getMessageReadReceiptList'
  | 'modifyMessage' | 'deleteMessage' | 'clearHistoryMessage' | 'deleteConversation'
  | 'getMessageList' | 'setMessageRead' | 'setAllMessageRead'
  | 'getConversationList' | 'getConversationProfile' | 'getTotalUnreadMessageCount'
  | 'getFriendList' | 'addFriend' | 'deleteFriend' | 'getFriendApplicationList' | 'acceptFriendApplication'
  | 'refuseFriendApplication'
  | 'getBlacklist' | 'addToBlacklist' | 'removeFromBlacklist'
>;

/** Methods that exist and reject, naming themselves, until Duet serves them. */
type NotYet = Pick<
  ChatSDK,
  | 'getMessageListHopping' | 'pinConversation'
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
export const revokedEvent: TencentCloudChat.EVENT = DuetChat.EVENT.MESSAGE_REVOKED;
export const readByPeerEvent: TencentCloudChat.EVENT = DuetChat.EVENT.MESSAGE_READ_BY_PEER;
export const receiptEvent: TencentCloudChat.EVENT = DuetChat.EVENT.MESSAGE_READ_RECEIPT_RECEIVED;

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

// Recall and read receipts as Tencent's apps write them: `needReadReceipt` when creating the message, the
// message's read state under Tencent's names, the three events with handlers typed for their data, and the
// methods taking Tencent-typed messages.
export const asked: TencentMessage = chat.createTextMessage({
  to: 'bob', conversationType: TencentCloudChat.TYPES.CONV_C2C, payload: { text: 'hi' }, needReadReceipt: true,
});
const tencentTyped: TencentMessage = duetMessage;
export const readState: [boolean, boolean, boolean, string, string, boolean] = [
  tencentTyped.isPeerRead, tencentTyped.isRevoked, tencentTyped.needReadReceipt, tencentTyped.revoker,
  tencentTyped.revokerInfo.userID, duetMessage.readReceiptInfo.isPeerRead,
];
chat.on(DuetChat.EVENT.MESSAGE_REVOKED, (event: { data: TencentMessage[] }) => event.data.map((m) => m.revokerInfo.userID));
chat.on(DuetChat.EVENT.MESSAGE_READ_BY_PEER, (event: { data: TencentMessage[] }) => event.data.every((m) => m.isPeerRead));
chat.on(DuetChat.EVENT.MESSAGE_READ_RECEIPT_RECEIVED, (event: { data: Array<{ messageID: string; isPeerRead: boolean }> }) =>
  event.data.map((r) => chat.findMessage(r.messageID)?.readReceiptInfo.isPeerRead === r.isPeerRead));
declare const duetMessages: Message[];
export const revoked: Promise<{ data: { message: TencentMessage } }> = chat.revokeMessage(duetMessage);
export const receipts: Promise<{ code: number }> = chat.sendMessageReadReceipt(duetMessages);
export const receiptList: Promise<{ data: { messageList: TencentMessage[] } }> = chat.getMessageReadReceiptList(duetMessages);

// Edit, delete and clear as Tencent's apps write them: the payload changed in place, then modifyMessage; a
// conflict's latest in `data.message`; the deleted messages' `isDeleted`; deleteConversation with a
// conversation ID or Tencent's options object; MESSAGE_MODIFIED with a handler typed for its data.
export const editedEvent: TencentCloudChat.EVENT = DuetChat.EVENT.MESSAGE_MODIFIED;
chat.on(DuetChat.EVENT.MESSAGE_MODIFIED, (event: { data: TencentMessage[] }) => event.data.map((m) => m.isModified));
tencentTyped.payload.text = 'edited';
export const modified: Promise<{ data: { message: TencentMessage } }> = chat.modifyMessage(duetMessage);
modified.catch((imError: { code: number; data?: { message: TencentMessage } }) => imError.code === 2480 && imError.data?.message.payload.text);
export const deleted: Promise<{ data: { messageList: TencentMessage[] } }> = chat.deleteMessage(duetMessages);
export const deletedFlag: boolean = tencentTyped.isDeleted;
export const cleared: Promise<{ code: number }> = chat.clearHistoryMessage('C2Cbob');
export const convDeleted: Promise<{ data: { conversationID: string } }> = chat.deleteConversation('C2Cbob');
export const convsDeleted: Promise<{ data: { conversationIDList: string[] } }> = chat.deleteConversation({
  conversationIDList: ['C2Cbob', 'C2Ccarol'], clearHistoryMessage: false,
});
declare const tencentOptions: Parameters<ChatSDK['deleteConversation']>[0];
export const fromTencentOptions: Promise<unknown> = chat.deleteConversation(tencentOptions);
