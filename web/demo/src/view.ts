// How messages and conversations look: DOM built with textContent only. The field names are those of
// Tencent's web SDK (`Message`, `Conversation`), which Duet's SDK keeps.

export interface ImageInfo { url: string; width: number; height: number; size?: number; type?: number }

export interface Message {
  ID: string;
  type: string;
  payload: any; // eslint-disable-line @typescript-eslint/no-explicit-any
  conversationID: string;
  from: string;
  to: string;
  flow: 'in' | 'out';
  time: number;
  sequence?: number;
  status: string;
  isPeerRead?: boolean;
  isRevoked?: boolean;
  revoker?: string;
  isModified?: boolean;
  isDeleted?: boolean;
  nick?: string;
  avatar?: string;
  progress?: number;
}

export interface Conversation {
  conversationID: string;
  type: string;
  unreadCount: number;
  lastMessage?: { messageForShow?: string; lastTime?: number };
  userProfile?: { userID: string; nick?: string; avatar?: string };
}

/// The face palette: a face message carries its index and the emoji as `data`.
export const FACES = ['😀', '😂', '😍', '😎', '🤔', '😢', '😡', '👍', '👏', '🙏', '🎉', '❤️'];

/// A URL safe to show or link to: http(s), or a local blob/data image.
function safeUrl(url: unknown, image = false): string | null {
  if (typeof url !== 'string') return null;
  try {
    const u = new URL(url, location.href);
    if (u.protocol === 'http:' || u.protocol === 'https:' || u.protocol === 'blob:') return u.href;
    if (image && u.protocol === 'data:' && /^data:image\//.test(url)) return url;
  } catch {
    /* not a URL */
  }
  return null;
}

function el<K extends keyof HTMLElementTagNameMap>(tag: K, className = '', text = ''): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  if (className) e.className = className;
  if (text) e.textContent = text;
  return e;
}

/// An avatar: the profile's image, or the name's initials on a colour of its own.
export function initials(name: string, avatar?: string): HTMLElement {
  const url = safeUrl(avatar, true);
  if (url) {
    const img = el('img', 'avatar');
    img.src = url;
    img.alt = '';
    return img;
  }
  const span = el('span', 'avatar', [...name].slice(0, 2).join('').toUpperCase());
  span.style.background = `hsl(${hue(name)} 55% 45%)`;
  return span;
}

function hue(name: string): number {
  let h = 0;
  for (const c of name) h = (h * 31 + c.codePointAt(0)!) % 360;
  return h;
}

/// A small generated avatar (an SVG data URL) for a user who gives a nickname.
export function avatarFor(userID: string): string {
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 40 40"><circle cx="20" cy="20" r="20" fill="hsl(${hue(userID)},55%,45%)"/></svg>`;
  return `data:image/svg+xml,${encodeURIComponent(svg)}`;
}

/// An image message's thumbnail and full-size URLs: the smallest and the largest of `imageInfoArray`.
function imageUrls(payload: { imageInfoArray?: ImageInfo[] }): { thumb: string | null; full: string | null } {
  const infos = [...(payload?.imageInfoArray ?? [])].filter((i) => i && i.url);
  infos.sort((a, b) => (a.width * a.height || a.size || 0) - (b.width * b.height || b.size || 0));
  return { thumb: safeUrl(infos[0]?.url, true), full: safeUrl(infos[infos.length - 1]?.url, true) };
}

function body(m: Message, view: (url: string) => void): HTMLElement {
  const p = m.payload ?? {};
  switch (m.type) {
    case 'TIMTextElem':
      return el('p', 'text', p.text ?? '');
    case 'TIMFaceElem': {
      const face = typeof p.data === 'string' && p.data.length <= 16 ? p.data : `[face ${p.index}]`;
      return el('p', 'face', face);
    }
    case 'TIMImageElem': {
      const { thumb, full } = imageUrls(p);
      if (!thumb) return el('p', 'text', '[image]');
      const img = el('img', 'thumb');
      img.src = thumb;
      img.alt = 'Image';
      img.dataset.testid = 'image';
      if (full) {
        img.dataset.full = full;
        img.addEventListener('click', () => view(full));
      }
      return img;
    }
    case 'TIMFileElem': {
      const url = safeUrl(p.fileUrl);
      const name = `📎 ${p.fileName || 'file'}${p.fileSize ? ` (${size(p.fileSize)})` : ''}`;
      if (!url) return el('p', 'text', name);
      const a = el('a', 'file', name);
      a.href = url;
      a.download = p.fileName || '';
      a.rel = 'noopener';
      return a;
    }
    case 'TIMLocationElem': {
      const where = `📍 ${p.description || 'Location'} (${(+p.latitude).toFixed(4)}, ${(+p.longitude).toFixed(4)})`;
      const a = el('a', 'location', where);
      a.href = `https://www.openstreetmap.org/?mlat=${+p.latitude}&mlon=${+p.longitude}#map=15/${+p.latitude}/${+p.longitude}`;
      a.target = '_blank';
      a.rel = 'noopener noreferrer';
      return a;
    }
    case 'TIMCustomElem':
      return el('p', 'custom', `{${p.description || 'custom'}} ${p.data ?? ''}`);
    default:
      return el('p', 'text', `[${m.type}]`);
  }
}

function size(n: number): string {
  return n < 1024 ? `${n} B` : n < 1 << 20 ? `${(n / 1024).toFixed(1)} KB` : `${(n / (1 << 20)).toFixed(1)} MB`;
}

/// What a message row can do: open an image full size, recall one's own message while that is still
/// possible (`canRecall`), edit one's own text message (`canEdit`), and delete a message from one's own
/// view (`canDelete`).
export interface Actions {
  view: (url: string) => void;
  canRecall: (m: Message) => boolean;
  recall: (m: Message) => void;
  canEdit: (m: Message) => boolean;
  edit: (m: Message) => void;
  canDelete: (m: Message) => boolean;
  remove: (m: Message) => void;
}

function action(label: string, testid: string, title: string, run: () => void): HTMLButtonElement {
  const b = el('button', `link action ${testid}`, label);
  b.type = 'button';
  b.dataset.testid = testid;
  b.title = title;
  b.addEventListener('click', run);
  return b;
}

/// One message: avatar and nickname for the peer's, the content (or "message recalled"), "(edited)" once
/// edited, the time and, for one's own, its state ("read" once the peer read it), a Recall action while
/// it can be recalled and an Edit action for text; and a Delete action (from one's own view only).
export function chatMessage(m: Message, actions: Actions): HTMLElement {
  const row = el('div', `msg ${m.flow === 'out' ? 'out' : 'in'}`);
  row.dataset.id = m.ID;
  row.dataset.testid = 'message';
  if (m.flow !== 'out') row.append(initials(m.nick || m.from, m.avatar));
  const bubble = el('div', 'bubble');
  if (m.flow !== 'out') bubble.append(el('span', 'nick', m.nick || m.from));
  if (m.isRevoked) {
    // Recalled by its sender, or by an app admin (REST admin_msgwithdraw), who is named.
    const by = m.revoker && m.revoker !== m.from ? ` by ${m.revoker}` : '';
    const gone = el('p', 'recalled', `Message recalled${by}`);
    gone.dataset.testid = 'recalled';
    bubble.append(gone);
  } else {
    bubble.append(body(m, actions.view));
  }
  const meta = el('span', 'meta', new Date(m.time * 1000).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' }));
  if (m.isModified && !m.isRevoked) {
    const edited = el('span', 'edited', '(edited) ');
    edited.dataset.testid = 'edited';
    meta.prepend(edited);
  }
  if (m.flow === 'out' && !m.isRevoked) {
    const state =
      m.status === 'fail' ? ' ⚠ not sent' : m.status === 'unSend' ? ' …' : m.isPeerRead ? ' ✓✓ Read' : ' ✓';
    const s = el('span', m.status === 'fail' ? 'state fail' : m.isPeerRead ? 'state read' : 'state', state);
    s.dataset.testid = 'state';
    meta.append(s);
    if (m.status === 'unSend' && m.type !== 'TIMTextElem') meta.append(el('span', 'progress', ''));
    if (actions.canRecall(m)) {
      meta.append(action('Recall', 'recall', 'Take this message back (for both of you)', () => actions.recall(m)));
    }
    if (actions.canEdit(m)) {
      meta.append(action('Edit', 'edit', 'Change the text (both of you see the new one)', () => actions.edit(m)));
    }
  }
  if (actions.canDelete(m)) {
    meta.append(action('Delete', 'delete', 'Remove it from your view (the other person keeps it)', () => actions.remove(m)));
  }
  bubble.append(meta);
  row.append(bubble);
  return row;
}
