// A one-to-one chat page written against Tencent Cloud Chat's web SDK (@tencentcloud/chat), with only
// its documented C2C calls. It runs on Duet with two lines changed: the import and the options of
// `create`. Each ends with `// on Tencent IM:` and the line as it is for Tencent; `npm run check:tencent`
// puts those lines back and compiles the result against Tencent's published types.
import TencentCloudChat, { type Conversation, type Message } from '@duet/chat/tencent'; // on Tencent IM: import TencentCloudChat, { type Conversation, type Message } from '@tencentcloud/chat';

const C2C = TencentCloudChat.TYPES.CONV_C2C;
const EVENT = TencentCloudChat.EVENT;

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;
const statusLine = $('status');
const conversationList = $<HTMLUListElement>('conversations');
const messageList = $<HTMLOListElement>('messages');
const olderButton = $<HTMLButtonElement>('older');
const textInput = $<HTMLInputElement>('text');
const imagePicker = $<HTMLInputElement>('image-picker');

function setStatus(state: 'connecting' | 'ready' | 'offline' | 'kicked' | 'logged-out' | 'error', text: string) {
  statusLine.dataset.state = state;
  statusLine.textContent = text;
}

// The app's settings. A real app gets its UserSig from its own backend, which signs it with the app's
// secret key; this example takes them from the page's address: ?SDKAppID=…&server=…&userID=…&userSig=…
const params = new URLSearchParams(location.search);
const config = {
  SDKAppID: Number(params.get('SDKAppID')),
  server: params.get('server') ?? '', // where the chat server is: Duet's URL
  userID: params.get('userID') ?? '',
  userSig: params.get('userSig') ?? '',
};
if (!config.SDKAppID || !config.server || !config.userID || !config.userSig) {
  setStatus('error', 'Open this page as index.html?SDKAppID=…&server=…&userID=…&userSig=… (see README.md)');
  throw new Error('missing settings in the page address');
}

const chat = TencentCloudChat.create({ SDKAppID: config.SDKAppID, server: config.server }); // on Tencent IM: const chat = TencentCloudChat.create({ SDKAppID: config.SDKAppID });

let conversations: Conversation[] = [];
let openID = ''; // the conversation on screen, `C2C<userID>`; '' for none
let shown: Message[] = []; // its messages, oldest first
let nextReqMessageID = '';
let isCompleted = true;
let loggedOut = false; // logged out or kicked out: the page stays as it is

const peerOf = (conversationID: string) => conversationID.replace(/^C2C/, '');

function report(error: unknown) {
  setStatus('error', `Error: ${(error as { message?: string })?.message ?? String(error)}`);
}

// ---- events (listened to before login, as Tencent's docs ask) ----------------------------------------

chat.on(EVENT.SDK_READY, onReady);
chat.on(EVENT.MESSAGE_RECEIVED, onMessageReceived);
chat.on(EVENT.CONVERSATION_LIST_UPDATED, onConversationListUpdated);
chat.on(EVENT.KICKED_OUT, onKickedOut);
chat.on(EVENT.NET_STATE_CHANGE, onNetStateChange);

async function onReady() {
  setStatus('ready', 'Online');
  try {
    const { data } = await chat.getConversationList();
    showConversations(data.conversationList);
  } catch (error) {
    report(error);
  }
}

function onMessageReceived(event: { data: Message[] }) {
  const here = event.data.filter((message) => message.conversationID === openID);
  if (here.length === 0) return;
  for (const message of here) {
    if (!shown.some((m) => m.ID === message.ID)) shown.push(message);
  }
  renderMessages(true);
  // The conversation is on screen: its messages are read.
  chat.setMessageRead({ conversationID: openID }).catch(report);
}

function onConversationListUpdated(event: { data: Conversation[] }) {
  showConversations(event.data);
}

function onKickedOut(event: { data: { type: string } }) {
  loggedOut = true;
  const why: Record<string, string> = {
    [TencentCloudChat.TYPES.KICKED_OUT_MULT_ACCOUNT]: 'you logged in on another page',
    [TencentCloudChat.TYPES.KICKED_OUT_MULT_DEVICE]: 'you logged in on another device',
    [TencentCloudChat.TYPES.KICKED_OUT_USERSIG_EXPIRED]: 'your UserSig expired',
    [TencentCloudChat.TYPES.KICKED_OUT_REST_API]: 'the app logged you out',
  };
  setStatus('kicked', `Logged out: ${why[event.data.type] ?? event.data.type}`);
  endSession();
}

function onNetStateChange(event: { data: { state: string } }) {
  if (loggedOut || !chat.isReady()) return;
  if (event.data.state === TencentCloudChat.TYPES.NET_STATE_CONNECTED) setStatus('ready', 'Online');
  else setStatus('offline', 'Connection lost: reconnecting…');
}

// ---- conversations ------------------------------------------------------------------------------------

function showConversations(list: Conversation[]) {
  conversations = list.filter((conversation) => conversation.type === C2C);
  conversationList.replaceChildren(...conversations.map((conversation) => {
    const li = document.createElement('li');
    li.dataset.conversationId = conversation.conversationID;
    li.classList.toggle('open', conversation.conversationID === openID);
    const peer = document.createElement('span');
    peer.className = 'peer';
    peer.textContent = conversation.userProfile?.nick || peerOf(conversation.conversationID);
    const last = document.createElement('span');
    last.className = 'last';
    last.textContent = conversation.lastMessage?.messageForShow ?? '';
    li.append(peer, last);
    if (conversation.unreadCount > 0) {
      const unread = document.createElement('span');
      unread.className = 'unread';
      unread.textContent = String(conversation.unreadCount);
      li.append(unread);
    }
    li.addEventListener('click', () => void openConversation(conversation.conversationID));
    return li;
  }));
}

async function openConversation(conversationID: string) {
  openID = conversationID;
  shown = [];
  nextReqMessageID = '';
  isCompleted = true;
  $('chat').hidden = false;
  $('peer').textContent = peerOf(conversationID);
  showConversations(conversations);
  renderMessages(true);
  try {
    const { data } = await chat.getMessageList({ conversationID });
    if (openID !== conversationID) return; // another conversation was opened meanwhile
    // Messages that arrived while the page loaded are in `shown` already.
    const loaded = new Set(data.messageList.map((m: Message) => m.ID));
    shown = [...data.messageList, ...shown.filter((m) => !loaded.has(m.ID))];
    nextReqMessageID = data.nextReqMessageID;
    isCompleted = data.isCompleted;
    renderMessages(true);
    await chat.setMessageRead({ conversationID });
  } catch (error) {
    report(error);
  }
}

async function loadOlder() {
  const conversationID = openID;
  try {
    const { data } = await chat.getMessageList({ conversationID, nextReqMessageID });
    if (openID !== conversationID) return;
    shown = [...data.messageList, ...shown];
    nextReqMessageID = data.nextReqMessageID;
    isCompleted = data.isCompleted;
    renderMessages(false);
  } catch (error) {
    report(error);
  }
}

// ---- messages -----------------------------------------------------------------------------------------

function renderMessages(scrollToEnd: boolean) {
  olderButton.hidden = isCompleted;
  messageList.replaceChildren(...shown.map(messageItem));
  if (scrollToEnd) messageList.scrollTop = messageList.scrollHeight;
}

function messageItem(message: Message): HTMLLIElement {
  const li = document.createElement('li');
  li.className = message.flow; // 'in' or 'out'
  li.dataset.id = message.ID;
  li.dataset.status = message.status; // unSend, success or fail
  if (message.type === TencentCloudChat.TYPES.MSG_TEXT) {
    const text = document.createElement('div');
    text.className = 'text';
    text.textContent = message.payload.text;
    li.append(text);
  } else if (message.type === TencentCloudChat.TYPES.MSG_IMAGE) {
    const [original] = message.payload.imageInfoArray; // the original, then the large image and the thumbnail
    if (original?.url) {
      const img = document.createElement('img');
      img.src = original.url;
      img.alt = 'image';
      li.append(img);
    } else {
      li.append('Sending an image…');
    }
  } else {
    li.append(`[${message.type}]`);
  }
  const meta = document.createElement('div');
  meta.className = 'meta';
  const time = new Date(message.time * 1000).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  const state = message.status === 'unSend' ? ' · sending…' : message.status === 'fail' ? ' · not sent' : '';
  meta.textContent = `${message.from} · ${time}${state}`;
  li.append(meta);
  return li;
}

async function send(message: Message) {
  shown.push(message);
  renderMessages(true);
  try {
    const { data } = await chat.sendMessage(message);
    const at = shown.indexOf(message);
    if (at >= 0) shown[at] = data.message;
  } catch (error) {
    report(error); // the message's status is 'fail' now
  }
  renderMessages(true);
}

// ---- the page's controls ------------------------------------------------------------------------------

$('new-chat').addEventListener('submit', (event) => {
  event.preventDefault();
  const input = $<HTMLInputElement>('new-peer');
  const userID = input.value.trim();
  if (!userID) return;
  input.value = '';
  void openConversation(`C2C${userID}`);
});

$('composer').addEventListener('submit', (event) => {
  event.preventDefault();
  const text = textInput.value.trim();
  if (!text || !openID) return;
  textInput.value = '';
  const message = chat.createTextMessage({ to: peerOf(openID), conversationType: C2C, payload: { text } });
  void send(message);
});

imagePicker.addEventListener('change', () => {
  if (!imagePicker.files?.length || !openID) return;
  // Tencent's documented form: the <input type="file"> itself as the payload's file.
  const message = chat.createImageMessage({ to: peerOf(openID), conversationType: C2C, payload: { file: imagePicker } });
  void send(message).finally(() => (imagePicker.value = ''));
});

olderButton.addEventListener('click', () => void loadOlder());

$('logout').addEventListener('click', async () => {
  loggedOut = true;
  try {
    await chat.logout();
    setStatus('logged-out', 'Logged out');
  } catch (error) {
    report(error);
  }
  endSession();
});

function endSession() {
  for (const control of document.querySelectorAll<HTMLInputElement | HTMLButtonElement>('input, button')) {
    control.disabled = true;
  }
}

// ---- log in -------------------------------------------------------------------------------------------

$('me').textContent = config.userID;
chat.login({ userID: config.userID, userSig: config.userSig }).catch((error: unknown) => {
  setStatus('error', `Login failed: ${(error as { message?: string })?.message ?? String(error)}`);
});
