// Duet's demo chat page: Tencent's web SDK API (Duet's TypeScript SDK, web/sdk) over the server that
// serves the page. Demo mode hands out UserSigs (POST /demo/usersig); the page says so on the login
// screen. Everything on screen is written with textContent, never as HTML.
import TencentCloudChat from '../../sdk/src/tencent/index.ts';
import { FACES, avatarFor, chatMessage, initials } from './view';
import './style.css';
import type { Conversation, Message } from './view';

const TYPES = TencentCloudChat.TYPES;
const EVENT = TencentCloudChat.EVENT;
const USER_KEY = 'duet-demo-user';
/// How long after sending a message the page offers to recall it: the server's default recall window
/// (Tencent's 2 minutes). A server configured otherwise answers 20016, which the page shows.
const RECALL_WINDOW_SECS = 120;

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;

// The SDK's instance: typed loosely here, its shapes are Tencent's (view.ts names the fields used).
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Chat = any;

let chat: Chat | null = null;
let me = '';
let peer = '';
let shown: Message[] = [];
let nextReqMessageID = '';
let completed = true;

async function askUserSig(userID: string): Promise<{ SDKAppID: number; userSig: string }> {
  const res = await fetch('/demo/usersig', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ userID }),
  });
  const body = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(body.error || `the server answered ${res.status}`);
  return body;
}

/// The SDK's last network state: what the banner shows again when the browser is back online (a
/// WebSocket that lived through the outage never changes state).
let netState: string = TYPES.NET_STATE_CONNECTED;

function showNet(state: string) {
  const net = $('net');
  const text =
    state === TYPES.NET_STATE_CONNECTED
      ? ''
      : state === TYPES.NET_STATE_CONNECTING
        ? 'Reconnecting…'
        : 'Offline: reconnecting when the network is back…';
  net.textContent = text;
  net.hidden = !text;
  net.dataset.state = state;
}

async function logIn(userID: string, nick: string) {
  $('login-error').textContent = '';
  const { SDKAppID, userSig } = await askUserSig(userID);
  const c: Chat = TencentCloudChat.create({ SDKAppID, server: location.origin });
  chat = c;
  me = userID;
  const ready = new Promise<void>((resolve) => c.on(EVENT.SDK_READY, () => resolve()));
  c.on(EVENT.MESSAGE_RECEIVED, (e: { data: Message[] }) => received(e.data));
  c.on(EVENT.CONVERSATION_LIST_UPDATED, (e: { data: Conversation[] }) => renderConversations(e.data));
  c.on(EVENT.MESSAGE_READ_BY_PEER, (e: { data: Message[] }) => readByPeer(e.data));
  c.on(EVENT.MESSAGE_REVOKED, (e: { data: Message[] }) => revoked(e.data));
  c.on(EVENT.MESSAGE_MODIFIED, (e: { data: Message[] }) => modified(e.data));
  c.on(EVENT.NET_STATE_CHANGE, (e: { data: { state: string } }) => {
    netState = e.data.state;
    showNet(netState);
  });
  c.on(EVENT.KICKED_OUT, () => loggedOut('You were logged out: this user logged in elsewhere.'));
  c.on(EVENT.SDK_NOT_READY, () => showNet(TYPES.NET_STATE_CONNECTING));
  await c.login({ userID, userSig });
  await ready;
  localStorage.setItem(USER_KEY, userID);
  if (nick) {
    // Best effort: the nickname and a generated avatar travel with each message sent.
    c.updateMyProfile({ nick, avatar: avatarFor(userID) }).catch(() => {});
  }
  $('me').textContent = userID;
  $('login').hidden = true;
  $('app').hidden = false;
  document.body.classList.remove('in-chat');
  const list = await c.getConversationList();
  renderConversations(list.data.conversationList);
  const wanted = new URLSearchParams(location.hash.slice(1)).get('peer');
  if (wanted) await openConversation(wanted);
}

function loggedOut(why: string) {
  chat = null;
  localStorage.removeItem(USER_KEY);
  $('app').hidden = true;
  $('login').hidden = false;
  $('net').hidden = true;
  $('login-error').textContent = why;
}

function renderConversations(list: Conversation[]) {
  // A message deleted on another device of this user is flagged `isDeleted` (and the list changes).
  if (shown.some((m) => m.isDeleted)) {
    shown = shown.filter((m) => !m.isDeleted);
    renderMessages(false);
  }
  const ul = $('conversations');
  ul.replaceChildren();
  for (const conv of list) {
    if (conv.type !== TYPES.CONV_C2C) continue;
    const userID = conv.userProfile?.userID || conv.conversationID.replace(/^C2C/, '');
    const li = document.createElement('li');
    li.dataset.peer = userID;
    li.dataset.testid = 'conversation';
    if (userID === peer) li.classList.add('current');
    const avatar = initials(conv.userProfile?.nick || userID, conv.userProfile?.avatar);
    const text = document.createElement('div');
    text.className = 'text';
    const name = document.createElement('strong');
    name.textContent = conv.userProfile?.nick || userID;
    const last = document.createElement('span');
    last.className = 'last';
    last.textContent = conv.lastMessage?.messageForShow ?? '';
    text.append(name, last);
    li.append(avatar, text);
    if (conv.unreadCount > 0) {
      const badge = document.createElement('span');
      badge.className = 'badge';
      badge.dataset.testid = 'unread';
      badge.textContent = String(conv.unreadCount > 99 ? '99+' : conv.unreadCount);
      li.append(badge);
    }
    li.addEventListener('click', () => openConversation(userID));
    ul.append(li);
  }
}

async function openConversation(userID: string) {
  if (!chat) return;
  peer = userID;
  history.replaceState(null, '', `#peer=${encodeURIComponent(userID)}`);
  document.body.classList.add('in-chat');
  for (const li of $('conversations').children) {
    li.classList.toggle('current', (li as HTMLElement).dataset.peer === userID);
  }
  $('peer').textContent = userID;
  $('composer').hidden = false;
  shown = [];
  const res = await chat.getMessageList({ conversationID: `C2C${userID}` });
  if (peer !== userID) return;
  shown = res.data.messageList;
  nextReqMessageID = res.data.nextReqMessageID;
  completed = res.data.isCompleted;
  renderMessages(true);
  markRead();
  $('text').focus();
}

async function loadEarlier() {
  if (!chat || completed) return;
  const at = peer;
  const res = await chat.getMessageList({ conversationID: `C2C${at}`, nextReqMessageID });
  if (peer !== at) return;
  shown = [...res.data.messageList, ...shown];
  nextReqMessageID = res.data.nextReqMessageID;
  completed = res.data.isCompleted;
  renderMessages(false);
}

function markRead() {
  if (chat && peer && document.visibilityState === 'visible') {
    chat.setMessageRead({ conversationID: `C2C${peer}` }).catch(() => {});
  }
}

function renderMessages(toBottom: boolean) {
  const box = $('messages');
  const nearBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 80;
  box.replaceChildren();
  if (!completed) {
    const more = document.createElement('button');
    more.className = 'link more';
    more.textContent = 'Earlier messages';
    more.addEventListener('click', loadEarlier);
    box.append(more);
  }
  const actions = { view: openViewer, canRecall, recall, canEdit, edit, canDelete, remove };
  for (const m of shown) box.append(chatMessage(m, actions));
  if (toBottom || nearBottom) box.scrollTop = box.scrollHeight;
}

function canRecall(m: Message): boolean {
  return !!chat && m.flow === 'out' && m.status === 'success' && !m.isRevoked
    && chat.getServerTime() - m.time < RECALL_WINDOW_SECS;
}

async function recall(m: Message) {
  if (!chat) return;
  try {
    await chat.revokeMessage(m);
    m.isRevoked = true;
  } catch (e) {
    const err = e as { code?: number; message?: string };
    alert(err?.code === 20016 ? 'Too late: a message can be recalled within 2 minutes of sending it.'
      : `Could not recall the message: ${err?.message ?? e}`);
  }
  renderMessages(false);
}

function canEdit(m: Message): boolean {
  return !!chat && m.flow === 'out' && m.status === 'success' && !m.isRevoked && m.type === TYPES.MSG_TEXT;
}

/// Edits one's own text message: both sides then show the new text, marked "(edited)".
async function edit(m: Message) {
  if (!chat) return;
  const before = m.payload.text;
  const text = prompt('Edit your message', before);
  if (text === null || !text.trim() || text === before) return;
  m.payload.text = text;
  try {
    await chat.modifyMessage(m);
  } catch (e) {
    const err = e as { code?: number; message?: string };
    // A conflict brings the latest text (the message was edited elsewhere); anything else puts it back.
    if (err?.code !== 2480) m.payload.text = before;
    alert(err?.code === 2480 ? 'The message was edited elsewhere meanwhile: here is the latest.'
      : `Could not edit the message: ${err?.message ?? e}`);
  }
  renderMessages(false);
}

function canDelete(m: Message): boolean {
  return !!chat && m.status === 'success';
}

/// Deletes a message from this user's view (on all its devices); the other person keeps it.
async function remove(m: Message) {
  if (!chat || !confirm('Delete this message for you? The other person keeps it.')) return;
  try {
    await chat.deleteMessage([m]);
    shown = shown.filter((s) => s.ID !== m.ID);
  } catch (e) {
    alert(`Could not delete the message: ${(e as { message?: string })?.message ?? e}`);
  }
  renderMessages(false);
}

/// Messages edited, here, on another device or by the peer: shown with their new text, "(edited)".
function modified(messages: Message[]) {
  let changed = false;
  for (const e of messages) {
    const i = shown.findIndex((s) => s.ID === e.ID);
    if (i >= 0) {
      shown[i] = e;
      changed = true;
    }
  }
  if (changed) renderMessages(false);
}

/// Messages recalled, by their sender here or elsewhere, or by the peer: shown as "message recalled".
function revoked(messages: Message[]) {
  let changed = false;
  for (const r of messages) {
    const m = shown.find((s) => s.ID === r.ID);
    if (m) {
      m.isRevoked = true;
      m.revoker = r.revoker;
      changed = true;
    }
  }
  if (changed) renderMessages(false);
}

function received(messages: Message[]) {
  let mine = false;
  for (const m of messages) {
    if (m.conversationID !== `C2C${peer}`) continue;
    if (!shown.some((s) => s.ID === m.ID)) shown.push(m);
    mine = true;
  }
  if (mine) {
    shown.sort((a, b) => a.time - b.time || (a.sequence ?? 0) - (b.sequence ?? 0));
    renderMessages(false);
    markRead();
  }
}

function readByPeer(messages: Message[]) {
  const ids = new Set(messages.map((m) => m.ID));
  let changed = false;
  for (const m of shown) {
    if (ids.has(m.ID) && !m.isPeerRead) {
      m.isPeerRead = true;
      changed = true;
    }
  }
  if (changed || messages.some((m) => m.conversationID === `C2C${peer}`)) renderMessages(false);
}

async function send(message: Message) {
  if (!chat) return;
  shown.push(message);
  renderMessages(true);
  try {
    const res = await chat.sendMessage(message);
    const sent: Message = res.data.message;
    shown = shown.map((m) => (m === message ? sent : m));
  } catch (e) {
    message.status = 'fail';
    console.warn('send failed', e);
  }
  renderMessages(true);
}

function create(kind: string, payload: object, extra: object = {}): Message | null {
  if (!chat || !peer) return null;
  return chat[kind]({ to: peer, conversationType: TYPES.CONV_C2C, payload, ...extra });
}

function openViewer(url: string) {
  $<HTMLImageElement>('viewer-img').src = url;
  $('viewer').hidden = false;
}

function wire() {
  $('login-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const user = $<HTMLInputElement>('login-user').value.trim();
    const nick = $<HTMLInputElement>('login-nick').value.trim();
    $<HTMLButtonElement>('login-button').disabled = true;
    logIn(user, nick)
      .catch((err) => loggedOut(`Could not log in: ${err?.message ?? err}`))
      .finally(() => ($<HTMLButtonElement>('login-button').disabled = false));
  });
  $('logout').addEventListener('click', () => {
    const c = chat;
    loggedOut('');
    c?.logout().catch(() => {});
    c?.destroy?.();
  });
  $('new-chat').addEventListener('submit', (e) => {
    e.preventDefault();
    const input = $<HTMLInputElement>('new-peer');
    const id = input.value.trim();
    if (id) openConversation(id);
    input.value = '';
  });
  $('back').addEventListener('click', () => {
    peer = '';
    document.body.classList.remove('in-chat');
    history.replaceState(null, '', '#');
  });
  $('composer').addEventListener('submit', (e) => {
    e.preventDefault();
    const input = $<HTMLInputElement>('text');
    const text = input.value;
    if (!text.trim()) return;
    const m = create('createTextMessage', { text });
    if (m) {
      input.value = '';
      send(m);
    }
  });
  const faces = $('faces');
  FACES.forEach((face, index) => {
    const b = document.createElement('button');
    b.type = 'button';
    b.textContent = face;
    b.addEventListener('click', () => {
      faces.hidden = true;
      const m = create('createFaceMessage', { index, data: face });
      if (m) send(m);
    });
    faces.append(b);
  });
  $('face-button').addEventListener('click', () => (faces.hidden = !faces.hidden));
  const upload = (input: HTMLInputElement, kind: string) => {
    input.addEventListener('change', () => {
      const file = input.files?.[0];
      input.value = '';
      if (!file) return;
      const m = create(kind, { file }, { onProgress: (p: number) => progress(m, p) });
      if (m) send(m);
    });
  };
  upload($<HTMLInputElement>('image-input'), 'createImageMessage');
  upload($<HTMLInputElement>('file-input'), 'createFileMessage');
  $('location-button').addEventListener('click', () => {
    const sendAt = (latitude: number, longitude: number, description: string) => {
      const m = create('createLocationMessage', { description, latitude, longitude });
      if (m) send(m);
    };
    const ask = () => {
      const answer = prompt('Latitude, longitude (and a description)', '48.8584, 2.2945, Eiffel Tower');
      const [lat, lon, ...rest] = (answer ?? '').split(',').map((s) => s.trim());
      if (lat && lon && !Number.isNaN(+lat) && !Number.isNaN(+lon)) sendAt(+lat, +lon, rest.join(', '));
    };
    if (!navigator.geolocation) return ask();
    navigator.geolocation.getCurrentPosition(
      (p) => sendAt(p.coords.latitude, p.coords.longitude, 'My location'),
      ask,
      { timeout: 5000 },
    );
  });
  $('custom-button').addEventListener('click', () => {
    const data = prompt('Custom message data (any text, JSON for instance)', '{"type":"poke"}');
    if (data) {
      const m = create('createCustomMessage', { data, description: 'custom', extension: '' });
      if (m) send(m);
    }
  });
  $('viewer').addEventListener('click', () => ($('viewer').hidden = true));
  document.addEventListener('visibilitychange', markRead);
  window.addEventListener('offline', () => chat && showNet(TYPES.NET_STATE_DISCONNECTED));
  window.addEventListener('online', () => chat && showNet(netState));
}

/// Upload progress of a message being sent, shown on it.
function progress(message: Message | null, p: number) {
  if (!message) return;
  message.progress = p;
  const el = document.querySelector(`[data-id="${CSS.escape(message.ID)}"] .progress`);
  if (el) el.textContent = `${Math.round(p * 100)} %`;
}

wire();
const saved = localStorage.getItem(USER_KEY);
if (saved) {
  $<HTMLInputElement>('login-user').value = saved;
  $('net').textContent = `Logging in as ${saved}…`;
  $('net').hidden = false;
  logIn(saved, '').catch((err) => loggedOut(`Could not log in: ${err?.message ?? err}`));
} else {
  $('login').hidden = false;
}
