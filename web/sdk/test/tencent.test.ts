/** The Tencent-compatible facade against a real server: Tencent's names, shapes and events. */

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { MemoryStore } from '../src/index.js';
import TencentCloudChat, {
  type Chat, type ChatEvent, type Conversation, type Message, type MessageReadReceipt, TencentError,
} from '../src/tencent/index.js';
import { newUser, png, rest, type Server, startServer, usersig } from './helpers.js';

let server: Server;
const chats: Chat[] = [];
before(async () => {
  server = await startServer();
});
after(async () => {
  await Promise.all(chats.map((c) => c.destroy()));
  await server.stop();
});

function create(on: Server = server): Chat {
  const chat = TencentCloudChat.create({
    SDKAppID: 1400000000, server: on.url,
    client: { store: new MemoryStore(), backoff: { minMs: 100, maxMs: 1000 }, heartbeatMs: 5000 },
  });
  chats.push(chat);
  return chat;
}

/** Resolves with the data of the next `name` event that `pred` accepts. */
function next<T>(chat: Chat, name: string, pred: (data: T) => boolean = () => true, ms = 10_000): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${name} in ${ms} ms`)), ms);
    const h = (e: ChatEvent) => {
      assert.equal(e.name, name, 'handlers get {name, data} with the event name');
      if (!pred(e.data as T)) return;
      clearTimeout(timer);
      chat.off(name, h);
      resolve(e.data as T);
    };
    chat.on(name, h);
  });
}

test('TYPES and EVENT have Tencent’s names and values', () => {
  assert.equal(TencentCloudChat.TYPES.CONV_C2C, 'C2C');
  assert.equal(TencentCloudChat.TYPES.MSG_TEXT, 'TIMTextElem');
  assert.equal(TencentCloudChat.TYPES.MSG_AUDIO, 'TIMSoundElem');
  assert.equal(TencentCloudChat.TYPES.KICKED_OUT_USERSIG_EXPIRED, 'userSigExpired');
  assert.equal(TencentCloudChat.EVENT.SDK_READY, 'sdkStateReady');
  assert.equal(TencentCloudChat.EVENT.MESSAGE_RECEIVED, 'onMessageReceived');
  assert.equal(TencentCloudChat.EVENT.CONVERSATION_LIST_UPDATED, 'onConversationListUpdated');
  assert.equal(TencentCloudChat.EVENT.KICKED_OUT, 'kickedOut');
});

test('a Tencent-style app chats: messages, conversations, history and read state in Tencent’s shapes', async () => {
  const [a, b] = [newUser('alice'), newUser('bob')];
  const alice = create();
  const bob = create();
  const bobReady = next(bob, TencentCloudChat.EVENT.SDK_READY);
  const loginA = await alice.login({ userID: a, userSig: usersig(a) });
  assert.deepEqual(loginA, { code: 0, data: { repeatLogin: false } });
  await bob.login({ userID: b, userSig: usersig(b) });
  await bobReady;
  assert.equal(bob.isReady(), true);
  assert.equal(bob.getLoginUser(), b);

  const all: Message[] = [];
  bob.on(TencentCloudChat.EVENT.MESSAGE_RECEIVED, (e: ChatEvent) => all.push(...(e.data as Message[])));
  const received = next<Message[]>(bob, TencentCloudChat.EVENT.MESSAGE_RECEIVED);
  const convUpdated = next<Conversation[]>(bob, TencentCloudChat.EVENT.CONVERSATION_LIST_UPDATED,
    (list) => list.some((c) => c.unreadCount === 1));
  const msg = alice.createTextMessage({ to: b, conversationType: TencentCloudChat.TYPES.CONV_C2C, payload: { text: 'hi bob' } });
  assert.equal(msg.status, 'unSend');
  assert.equal(msg.flow, 'out');
  const res = await alice.sendMessage(msg);
  assert.equal(res.code, 0);
  assert.equal(res.data.message, msg);
  assert.equal(msg.status, 'success');
  assert.equal(msg.conversationID, `C2C${b}`);
  assert.ok(msg.sequence > 0 && msg.time > 0);

  const [got] = await received;
  assert.ok(got);
  assert.equal(got.ID, msg.ID, 'the same message has the same ID on both sides');
  assert.equal(got.conversationID, `C2C${a}`);
  assert.equal(got.conversationType, 'C2C');
  assert.equal(got.type, 'TIMTextElem');
  assert.deepEqual(got.payload, { text: 'hi bob' });
  assert.equal(got.flow, 'in');
  assert.equal(got.from, a);
  assert.equal(got.to, b);
  assert.equal(got.isRevoked, false);
  assert.equal(got.isPeerRead, false);
  assert.equal(got.status, 'success');

  const [conv] = await convUpdated;
  assert.equal(conv?.conversationID, `C2C${a}`);
  assert.equal(conv?.type, 'C2C');
  assert.equal(conv?.unreadCount, 1);
  assert.equal(conv?.lastMessage.messageForShow, 'hi bob');
  assert.equal(conv?.lastMessage.fromAccount, a);
  assert.equal(conv?.userProfile.userID, a);
  assert.equal(bob.getTotalUnreadMessageCount(), 1);

  // Every other element kind.
  const C2C = TencentCloudChat.TYPES.CONV_C2C;
  const more = [
    alice.createFaceMessage({ to: b, conversationType: C2C, payload: { index: 1, data: 'smile' } }),
    alice.createLocationMessage({ to: b, conversationType: C2C, payload: { description: 'here', longitude: 113.9, latitude: 22.5 } }),
    alice.createCustomMessage({ to: b, conversationType: C2C, payload: { data: 'd', description: 'desc', extension: 'ext' } }),
  ];
  for (const m of more) await alice.sendMessage(m);
  const percents: number[] = [];
  const image = alice.createImageMessage({
    to: b, conversationType: C2C, payload: { file: new Blob([png(300, 200) as Uint8Array<ArrayBuffer>]), fileName: 'pic.png' },
    onProgress: (p) => percents.push(p),
  });
  assert.equal(image.type, 'TIMImageElem');
  await alice.sendMessage(image);
  assert.equal(percents.at(-1), 1);
  const imgPayload = image.payload as { imageInfoArray: Array<{ url: string; width: number; sizeType: number; type: number }> };
  assert.deepEqual(imgPayload.imageInfoArray.map((i) => [i.type, i.sizeType]), [[0, 1], [1, 2], [2, 3]]);
  assert.equal(imgPayload.imageInfoArray[0]?.width, 300);
  const thumb = imgPayload.imageInfoArray[2]?.url ?? '';
  assert.equal((await fetch(thumb)).status, 200, 'payload URLs load as they are (credentials included)');
  const file = alice.createFileMessage({
    to: b, conversationType: C2C, payload: { file: new Blob(['%PDF-1.4 hello']), fileName: 'doc.pdf' },
  });
  await alice.sendMessage(file);
  assert.deepEqual(
    [(file.payload as { fileName: string }).fileName, (file.payload as { fileSize: number }).fileSize], ['doc.pdf', 14]);

  // History: oldest first, paged by nextReqMessageID (once bob has all six, so that the cache has them).
  for (let i = 0; all.length < 6 && i < 100; i++) await new Promise((r) => setTimeout(r, 50));
  assert.equal(all.length, 6);
  const p1 = await bob.getMessageList({ conversationID: `C2C${a}`, count: 3 });
  assert.equal(p1.code, 0);
  assert.deepEqual(p1.data.messageList.map((m) => m.type), ['TIMCustomElem', 'TIMImageElem', 'TIMFileElem']);
  assert.equal(p1.data.isCompleted, false);
  assert.equal(p1.data.nextReqMessageID, p1.data.messageList[0]?.ID);
  const p2 = await bob.getMessageList({ conversationID: `C2C${a}`, nextReqMessageID: p1.data.nextReqMessageID });
  assert.deepEqual(p2.data.messageList.map((m) => m.type), ['TIMTextElem', 'TIMFaceElem', 'TIMLocationElem']);
  assert.deepEqual(p2.data.messageList[2]?.payload, { description: 'here', longitude: 113.9, latitude: 22.5 });
  assert.equal(p2.data.isCompleted, true);
  assert.equal(bob.findMessage(got.ID)?.ID, got.ID);

  // Conversations and read state.
  const list = await bob.getConversationList();
  assert.equal(list.data.conversationList[0]?.unreadCount, 6);
  assert.equal(list.data.conversationList[0]?.lastMessage.messageForShow, '[File]');
  const cleared = next<Conversation[]>(bob, TencentCloudChat.EVENT.CONVERSATION_LIST_UPDATED, (l) => l[0]?.unreadCount === 0);
  const unread = next<number>(bob, TencentCloudChat.EVENT.TOTAL_UNREAD_MESSAGE_COUNT_UPDATED, (n) => n === 0);
  assert.equal((await bob.setMessageRead({ conversationID: `C2C${a}` })).code, 0);
  await cleared;
  await unread;
  const profile = await bob.getConversationProfile(`C2C${a}`);
  assert.equal(profile.data.conversation.unreadCount, 0);

  // Blacklist and friends.
  assert.deepEqual((await bob.addToBlacklist({ userIDList: [a] })).data, [a]);
  assert.deepEqual((await bob.getBlacklist()).data, [a]);
  assert.deepEqual((await bob.removeFromBlacklist({ userIDList: [a] })).data, [a]);
  const friends = next<unknown[]>(alice, TencentCloudChat.EVENT.FRIEND_LIST_UPDATED, (l) => l.length === 1);
  await alice.addFriend({ to: b, source: 'AddSource_Type_Web', wording: 'hi' });
  const apps = await bob.getFriendApplicationList();
  assert.equal(apps.data.friendApplicationList[0]?.userID, a);
  await bob.acceptFriendApplication({ userID: a, type: TencentCloudChat.TYPES.SNS_APPLICATION_AGREE_AND_ADD });
  await friends;
  assert.deepEqual((await alice.getFriendList()).data.map((f) => f.userID), [b]);
});

test('an <input type="file"> as payload.file, read as code written against Tencent\'s types reads it', async () => {
  const [a, b] = [newUser('alice'), newUser('bob')];
  const alice = create();
  const bob = create();
  await alice.login({ userID: a, userSig: usersig(a) });
  await bob.login({ userID: b, userSig: usersig(b) });
  const C2C = TencentCloudChat.TYPES.CONV_C2C;
  // What the facade reads of an input element: `files`, a FileList, or null when there is none.
  const input: { files: Blob[] | null } = { files: null };
  const none = alice.createImageMessage({ to: b, conversationType: C2C, payload: { file: input } });
  await assert.rejects(alice.sendMessage(none), (e: unknown) => e instanceof TencentError && /no file was chosen/.test(e.message));
  assert.equal(none.status, 'fail');

  input.files = [new File([png(40, 30) as Uint8Array<ArrayBuffer>], 'chosen.png', { type: 'image/png' })];
  const received = next<Message[]>(bob, TencentCloudChat.EVENT.MESSAGE_RECEIVED);
  await alice.sendMessage(alice.createImageMessage({ to: b, conversationType: C2C, payload: { file: input } }));
  const [got] = await received;
  assert.equal(got?.type, TencentCloudChat.TYPES.MSG_IMAGE);
  // No casts: `payload` is `any`, as in Tencent's types.
  assert.equal(got?.payload.imageInfoArray[0].width, 40);
  assert.equal((await fetch(got?.payload.imageInfoArray[0].url)).status, 200);
});

test('methods Duet does not serve reject naming the method; groups are refused', async () => {
  const u = newUser('carol');
  const chat = create();
  await chat.login({ userID: u, userSig: usersig(u) });
  await assert.rejects(chat.getMessageListHopping({}), /getMessageListHopping is not supported by Duet yet/);
  await assert.rejects(chat.deleteMessage([]), /deleteMessage: messageList is empty/);
  await assert.rejects(chat.getUserProfile({ userIDList: [u] }), /getUserProfile is not supported/);
  await assert.rejects(chat.getMessageList({ conversationID: 'GROUPabc' }), /only C2C conversations/);
  assert.throws(
    () => chat.createTextMessage({ to: 'g', conversationType: TencentCloudChat.TYPES.CONV_GROUP, payload: { text: 'x' } }),
    /only conversationType TYPES.CONV_C2C/);
});

test('a kick and an expired UserSig raise KICKED_OUT with Tencent’s types', async () => {
  const u = newUser('dave');
  const first = create();
  // SDK_NOT_READY marks leaving the ready state, so wait until `first` is in it.
  const ready = next(first, TencentCloudChat.EVENT.SDK_READY);
  await first.login({ userID: u, userSig: usersig(u) });
  await ready;
  const kicked = next<{ type: string }>(first, TencentCloudChat.EVENT.KICKED_OUT);
  const notReady = next(first, TencentCloudChat.EVENT.SDK_NOT_READY);
  // The same platform and another device: the newer login logs the older out.
  const second = TencentCloudChat.create({
    SDKAppID: 1400000000, server: server.url, client: { store: new MemoryStore(), device: 'another' },
  });
  chats.push(second);
  await second.login({ userID: u, userSig: usersig(u) });
  assert.equal((await kicked).type, TencentCloudChat.TYPES.KICKED_OUT_MULT_DEVICE);
  await notReady;
  // The same device again (another tab sharing its device id): the older connection is replaced.
  const replaced = next<{ type: string }>(second, TencentCloudChat.EVENT.KICKED_OUT);
  const third = TencentCloudChat.create({
    SDKAppID: 1400000000, server: server.url, client: { store: new MemoryStore(), device: 'another' },
  });
  chats.push(third);
  await third.login({ userID: u, userSig: usersig(u) });
  assert.equal((await replaced).type, TencentCloudChat.TYPES.KICKED_OUT_MULT_ACCOUNT);

  const e = newUser('erin');
  const short = create();
  const expired = next<{ type: string }>(short, TencentCloudChat.EVENT.KICKED_OUT, () => true, 8_000);
  await short.login({ userID: e, userSig: usersig(e, 2) });
  assert.equal((await expired).type, TencentCloudChat.TYPES.KICKED_OUT_USERSIG_EXPIRED);
});

test('a recall through the REST API raises MESSAGE_REVOKED with the message marked revoked', async () => {
  const [a, b] = [newUser('alice'), newUser('bob')];
  const alice = create();
  const bob = create();
  await alice.login({ userID: a, userSig: usersig(a) });
  await bob.login({ userID: b, userSig: usersig(b) });
  const received = next<Message[]>(bob, TencentCloudChat.EVENT.MESSAGE_RECEIVED);
  const m = alice.createTextMessage({ to: b, conversationType: TencentCloudChat.TYPES.CONV_C2C, payload: { text: 'oops' } });
  await alice.sendMessage(m);
  const [got] = await received;
  const revoked = next<Message[]>(bob, TencentCloudChat.EVENT.MESSAGE_REVOKED);
  const r = await rest(server, 'openim/admin_msgwithdraw', { From_Account: a, To_Account: b, MsgKey: m.msgKey });
  assert.equal(r.ActionStatus, 'OK');
  const [gone] = await revoked;
  assert.equal(gone, got, 'the same object the app holds');
  assert.equal(gone?.isRevoked, true);
});

test('recall and read receipts in Tencent’s shapes: revokeMessage, isPeerRead, needReadReceipt and their events', async () => {
  const [a, b] = [newUser('alice'), newUser('bob')];
  const alice = create();
  const bob = create();
  await alice.login({ userID: a, userSig: usersig(a) });
  await bob.login({ userID: b, userSig: usersig(b) });
  const C2C = TencentCloudChat.TYPES.CONV_C2C;
  const EVENT = TencentCloudChat.EVENT;

  // A message asking for a read receipt, and one that does not.
  const receivedBoth = next<Message[]>(bob, EVENT.MESSAGE_RECEIVED, (l) => l.some((m) => m.payload.text === 'plain'));
  const asked = alice.createTextMessage({ to: b, conversationType: C2C, payload: { text: 'confirm?' }, needReadReceipt: true });
  assert.equal(asked.needReadReceipt, true);
  await alice.sendMessage(asked);
  const plain = alice.createTextMessage({ to: b, conversationType: C2C, payload: { text: 'plain' } });
  await alice.sendMessage(plain);
  await receivedBoth;
  const gotAsked = bob.findMessage(asked.ID) as Message;
  const gotPlain = bob.findMessage(plain.ID) as Message;
  assert.deepEqual([gotAsked.needReadReceipt, gotPlain.needReadReceipt], [true, false]);
  assert.deepEqual([asked.isPeerRead, asked.readReceiptInfo.isPeerRead], [false, false]);

  // The peer reads the conversation: MESSAGE_READ_BY_PEER with the sender's own objects, now isPeerRead.
  const readByPeer = next<Message[]>(alice, EVENT.MESSAGE_READ_BY_PEER);
  const lastRead = next<Conversation[]>(alice, EVENT.CONVERSATION_LIST_UPDATED, (l) => l[0]?.lastMessage.isPeerRead === true);
  await bob.setMessageRead({ conversationID: `C2C${a}` });
  const read = await readByPeer;
  assert.deepEqual(read.map((m) => m.ID).sort(), [asked.ID, plain.ID].sort());
  assert.ok(read.includes(asked) && read.every((m) => m.isPeerRead), 'the same objects, marked read');
  await lastRead;
  assert.equal(asked.readReceiptInfo.isPeerRead, false, 'reading the conversation is not a message receipt');

  // The message-level receipt: MESSAGE_READ_RECEIPT_RECEIVED, readReceiptInfo.isPeerRead.
  const receipt = next<MessageReadReceipt[]>(alice, EVENT.MESSAGE_READ_RECEIPT_RECEIVED);
  assert.deepEqual(await bob.sendMessageReadReceipt([gotAsked, gotPlain]), { code: 0, data: {} });
  const [r] = await receipt;
  assert.deepEqual({ ...r, timestamp: 0 }, {
    conversationID: `C2C${b}`, userID: b, messageID: asked.ID, isPeerRead: true, timestamp: 0, readCount: 1, unreadCount: 0,
  });
  assert.ok((r?.timestamp ?? 0) >= asked.time);
  assert.equal(alice.findMessage(asked.ID)?.readReceiptInfo.isPeerRead, true);
  const list = await alice.getMessageReadReceiptList([asked, plain]);
  assert.deepEqual(list.data.messageList.map((m) => [m.ID, m.readReceiptInfo.isPeerRead, m.isPeerRead]), [
    [asked.ID, true, true], [plain.ID, false, true],
  ]);
  await assert.rejects(alice.getMessageReadReceiptList([asked, { conversationID: 'C2Cother' } as Message]), /one conversation/);

  // The sender recalls: both instances raise MESSAGE_REVOKED, with the revoker.
  const oops = alice.createTextMessage({ to: b, conversationType: C2C, payload: { text: 'oops' } });
  const gotOops = next<Message[]>(bob, EVENT.MESSAGE_RECEIVED);
  await assert.rejects(alice.revokeMessage(oops), (e: unknown) => e instanceof TencentError && /only a message that was sent/.test(e.message));
  await alice.sendMessage(oops);
  const [bobsOops] = await gotOops;
  const bobRevoked = next<Message[]>(bob, EVENT.MESSAGE_REVOKED);
  const aliceRevoked = next<Message[]>(alice, EVENT.MESSAGE_REVOKED);
  const shown = next<Conversation[]>(bob, EVENT.CONVERSATION_LIST_UPDATED, (l) => l[0]?.lastMessage.isRevoked === true);
  const res = await alice.revokeMessage(oops);
  assert.equal(res.code, 0);
  assert.equal(res.data.message, oops);
  assert.deepEqual([oops.isRevoked, oops.revoker, oops.revokerInfo.userID], [true, a, a]);
  const [gone] = await bobRevoked;
  assert.equal(gone, bobsOops, 'the object bob holds');
  assert.deepEqual([gone?.isRevoked, gone?.revoker, gone?.revokerInfo.userID], [true, a, a]);
  assert.deepEqual(await aliceRevoked, [oops]);
  const [conv] = await shown;
  assert.equal(conv?.lastMessage.messageForShow, '[Recalled]');
  const page = await bob.getMessageList({ conversationID: `C2C${a}` });
  assert.deepEqual(page.data.messageList.map((m) => m.isRevoked), [false, false, true]);

  // What cannot be recalled: the peer's message (the server's 20022), or one recalled already (20023).
  const fromBob = next<Message[]>(alice, EVENT.MESSAGE_RECEIVED);
  await bob.sendMessage(bob.createTextMessage({ to: a, conversationType: C2C, payload: { text: 'mine' } }));
  const [bobs] = await fromBob;
  await assert.rejects(alice.revokeMessage(bobs as Message), (e: unknown) => e instanceof TencentError && e.code === 20022);
  await assert.rejects(alice.revokeMessage(oops), (e: unknown) => e instanceof TencentError && e.code === 20023);
});

test('revokeMessage after the recall window rejects with Tencent’s code 20016', async () => {
  const short = await startServer('recall_window_secs = 1\n');
  try {
    const [a, b] = [newUser('alice'), newUser('bob')];
    const alice = create(short);
    const bob = create(short);
    await bob.login({ userID: b, userSig: usersig(b) });
    await alice.login({ userID: a, userSig: usersig(a) });
    const m = alice.createTextMessage({ to: b, conversationType: TencentCloudChat.TYPES.CONV_C2C, payload: { text: 'late' } });
    await alice.sendMessage(m);
    await new Promise((r) => setTimeout(r, 2_100));
    await assert.rejects(alice.revokeMessage(m), (e: unknown) => {
      assert.ok(e instanceof TencentError);
      assert.equal(e.code, 20016);
      assert.match(e.message, /can no longer be recalled/);
      return true;
    });
    assert.equal(m.isRevoked, false);
    await alice.logout();
    await bob.logout();
  } finally {
    await short.stop();
  }
});

test('edit, delete and clear in Tencent’s shapes: modifyMessage (2480 with the latest), deleteMessage, clearHistoryMessage, deleteConversation', async () => {
  const [a, b, c] = [newUser('alice'), newUser('bob'), newUser('carol')];
  const C2C = TencentCloudChat.TYPES.CONV_C2C;
  const EVENT = TencentCloudChat.EVENT;
  const alice = create();
  const bob = create();
  const carol = create();
  // alice's PC loses the push of the first edit (and pings rarely): it holds a stale copy to edit.
  let dropped = 0;
  const pc = TencentCloudChat.create({
    SDKAppID: 1400000000, server: server.url,
    client: {
      store: new MemoryStore(), platform: 'PC', heartbeatMs: 60_000, backoff: { minMs: 100, maxMs: 1000 },
      dropLiveEntry: (e) => e.kind === 'modified' && dropped++ === 0,
    },
  });
  chats.push(pc);
  for (const [chat, u] of [[alice, a], [bob, b], [carol, c], [pc, a]] as const) {
    const ready = next(chat, EVENT.SDK_READY);
    await chat.login({ userID: u, userSig: usersig(u) });
    await ready;
  }

  const bobGets = next<Message[]>(bob, EVENT.MESSAGE_RECEIVED);
  const pcGets = next<Message[]>(pc, EVENT.MESSAGE_RECEIVED);
  const m = alice.createTextMessage({ to: b, conversationType: C2C, payload: { text: 'teh' } });
  await alice.sendMessage(m);
  const [got] = (await bobGets) as [Message];
  const [pcCopy] = (await pcGets) as [Message];
  assert.deepEqual([m.version, m.isModified, got.isModified], [0, false, false]);

  // The sender edits its message object in place, as with Tencent, and both sides raise MESSAGE_MODIFIED.
  const aliceModified = next<Message[]>(alice, EVENT.MESSAGE_MODIFIED);
  const bobModified = next<Message[]>(bob, EVENT.MESSAGE_MODIFIED);
  const bobList = next<Conversation[]>(bob, EVENT.CONVERSATION_LIST_UPDATED, (l) => l[0]?.lastMessage.messageForShow === 'the');
  m.payload.text = 'the';
  m.cloudCustomData = 'fixed';
  const res = await alice.modifyMessage(m);
  assert.equal(res.code, 0);
  assert.equal(res.data.message, m);
  assert.deepEqual([m.payload.text, m.cloudCustomData, m.isModified, m.version], ['the', 'fixed', true, 1]);
  assert.deepEqual(await aliceModified, [m]);
  const [edited] = await bobModified;
  assert.equal(edited, got, 'the object bob holds');
  assert.deepEqual([got.payload.text, got.cloudCustomData, got.isModified, got.version], ['the', 'fixed', true, 1]);
  await bobList;

  // The PC's copy is stale: editing it conflicts with code 2480, and data.message is the object brought
  // up to the latest (as Tencent's web SDK does); the PC raises MESSAGE_MODIFIED for it.
  for (const deadline = Date.now() + 10_000; dropped === 0 && Date.now() < deadline;) await new Promise((r) => setTimeout(r, 20));
  assert.equal(dropped, 1, 'the PC lost the push');
  assert.deepEqual([pcCopy.payload.text, pcCopy.version], ['teh', 0]);
  const pcModified = next<Message[]>(pc, EVENT.MESSAGE_MODIFIED);
  pcCopy.payload.text = 'teh!';
  await assert.rejects(pc.modifyMessage(pcCopy), (e: unknown) => {
    assert.ok(e instanceof TencentError);
    assert.equal(e.code, 2480);
    const latest = (e.data as { message: Message }).message;
    assert.equal(latest, pcCopy);
    assert.deepEqual([latest.payload.text, latest.cloudCustomData, latest.version, latest.isModified], ['the', 'fixed', 1, true]);
    return true;
  });
  assert.deepEqual(await pcModified, [pcCopy]);
  // Edited again from the PC, at the latest version: the phone (the user's other device) and bob follow.
  const phoneModified = next<Message[]>(alice, EVENT.MESSAGE_MODIFIED);
  const bobAgain = next<Message[]>(bob, EVENT.MESSAGE_MODIFIED);
  pcCopy.payload.text = 'the end';
  await pc.modifyMessage(pcCopy);
  assert.deepEqual(await phoneModified, [m]);
  assert.deepEqual([m.payload.text, m.version, m.cloudCustomData], ['the end', 2, 'fixed']);
  assert.deepEqual((await bobAgain).map((x) => [x.payload.text, x.version]), [['the end', 2]]);
  // Only one's own message; a message not sent yet is refused before the server.
  await assert.rejects(bob.modifyMessage(got), (e: unknown) => e instanceof TencentError && e.code === 20022);
  const unsent = alice.createTextMessage({ to: b, conversationType: C2C, payload: { text: 'x' } });
  await assert.rejects(alice.modifyMessage(unsent), /only a message that was sent/);
  // A custom message's data is edited as its payload.
  const card = alice.createCustomMessage({ to: b, conversationType: C2C, payload: { data: 'v1', description: 'card' } });
  await alice.sendMessage(card);
  card.payload.data = 'v2';
  await alice.modifyMessage(card);
  assert.deepEqual([card.payload.data, card.payload.description, card.version], ['v2', 'card', 1]);

  // bob writes twice: two unread on alice's side. alice deletes the newest (and, ignored, a message of
  // another conversation): the PC follows, the unread count and the last message too; bob keeps it.
  const pcTwo = next<Message[]>(pc, EVENT.MESSAGE_RECEIVED, (l) => l.some((x) => x.payload.text === 'b2'));
  const aliceTwo = next<Message[]>(alice, EVENT.MESSAGE_RECEIVED, (l) => l.some((x) => x.payload.text === 'b2'));
  await bob.sendMessage(bob.createTextMessage({ to: a, conversationType: C2C, payload: { text: 'b1' } }));
  await bob.sendMessage(bob.createTextMessage({ to: a, conversationType: C2C, payload: { text: 'b2' } }));
  const pcB2 = (await pcTwo).find((x) => x.payload.text === 'b2') as Message;
  const b2 = (await aliceTwo).find((x) => x.payload.text === 'b2') as Message;
  const carolGets = next<Message[]>(alice, EVENT.MESSAGE_RECEIVED);
  await carol.sendMessage(carol.createTextMessage({ to: a, conversationType: C2C, payload: { text: 'from carol' } }));
  const [fromCarol] = (await carolGets) as [Message];
  const pcAfterDelete = next<Conversation[]>(pc, EVENT.CONVERSATION_LIST_UPDATED, (l) => {
    const conv = l.find((x) => x.conversationID === `C2C${b}`);
    return conv?.unreadCount === 1 && conv.lastMessage.messageForShow === 'b1';
  });
  const deleted = await alice.deleteMessage([b2, fromCarol]);
  assert.equal(deleted.code, 0);
  assert.deepEqual(deleted.data.messageList, [b2], 'the messages of the first one’s conversation');
  assert.deepEqual([b2.isDeleted, fromCarol.isDeleted], [true, false]);
  await pcAfterDelete;
  assert.equal(pcB2.isDeleted, true, 'the PC’s object is flagged too');
  assert.equal(pc.findMessage(pcB2.ID), null);
  const aliceView = await alice.getMessageList({ conversationID: `C2C${b}` });
  assert.deepEqual(aliceView.data.messageList.map((x) => x.payload.text ?? x.payload.data), ['the end', 'v2', 'b1']);
  const bobView = await bob.getMessageList({ conversationID: `C2C${a}` });
  assert.deepEqual(bobView.data.messageList.map((x) => x.payload.text ?? x.payload.data), ['the end', 'v2', 'b1', 'b2'], 'bob keeps it');
  await assert.rejects(alice.deleteMessage([]), /empty/);

  // Clearing the history: the conversation stays, read and empty, on both of alice's instances.
  const pcCleared = next<Conversation[]>(pc, EVENT.CONVERSATION_LIST_UPDATED, (l) => {
    const conv = l.find((x) => x.conversationID === `C2C${b}`);
    return conv?.unreadCount === 0 && conv.lastMessage.messageForShow === '';
  });
  assert.deepEqual(await alice.clearHistoryMessage(`C2C${b}`), { code: 0, data: { conversationID: `C2C${b}` } });
  await pcCleared;
  assert.deepEqual((await alice.getMessageList({ conversationID: `C2C${b}` })).data.messageList, []);
  assert.equal(m.isDeleted, true, 'a held message of a cleared conversation is flagged');
  assert.equal((await bob.getMessageList({ conversationID: `C2C${a}` })).data.messageList.length, 4, 'bob keeps his');
  assert.equal(alice.getTotalUnreadMessageCount(), 1, 'carol’s');
  await assert.rejects(alice.clearHistoryMessage(`C2C${newUser('nobody')}`), (e: unknown) => e instanceof TencentError && e.code === 2500);

  // Deleting conversations: by ID (history cleared, Tencent's default), and by Tencent's options object
  // keeping the history.
  const pcGone = next<Conversation[]>(pc, EVENT.CONVERSATION_LIST_UPDATED, (l) => l.length === 0);
  assert.deepEqual(await alice.deleteConversation(`C2C${b}`), { code: 0, data: { conversationID: `C2C${b}` } });
  const both = await alice.deleteConversation({ conversationIDList: [`C2C${c}`, `C2C${newUser('nobody')}`], clearHistoryMessage: false });
  assert.deepEqual(both, { code: 0, data: { conversationIDList: [`C2C${c}`] } }, 'those in the list');
  await pcGone;
  assert.deepEqual((await alice.getConversationList()).data.conversationList, []);
  assert.equal(alice.getTotalUnreadMessageCount(), 0);
  assert.deepEqual((await alice.getMessageList({ conversationID: `C2C${c}` })).data.messageList.map((x) => x.payload.text), ['from carol']);
  await assert.rejects(alice.deleteConversation(`C2C${c}`), (e: unknown) => e instanceof TencentError && e.code === 2500);
  await assert.rejects(alice.deleteConversation('GROUPx'), /only C2C conversations/);
});
