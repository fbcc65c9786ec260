/**
 * Media over HTTP beside the WebSocket (`docs/protocol.md`, *Media*): upload with progress, and adding
 * credentials to URLs on the server.
 *
 * Progress: in a browser (where `XMLHttpRequest` exists) from `xhr.upload.onprogress`; elsewhere (Node)
 * the body is streamed to `fetch` in 64 KiB chunks and progress counts the bytes handed to the
 * connection as the stream is read, so it runs slightly ahead of what the server has received.
 */

import { DuetError, LocalCode } from './errors.js';
import type { MediaType, Uploaded } from './protocol.js';

export interface Progress {
  loaded: number;
  total: number;
}

export interface UploadOptions {
  /** Kept by the server and returned as `FileName`. */
  filename?: string;
  onProgress?: (p: Progress) => void;
}

/** What can be uploaded: a `Blob`/`File` (browsers, Node 20) or bytes. */
export type UploadBody = Blob | ArrayBuffer | Uint8Array;

const CHUNK = 64 * 1024;

export interface Credentials {
  user: string;
  usersig: string;
}

/** `url` with the user's credentials in its query, when it is on `server` (never elsewhere). */
export function authorizedUrl(server: string, creds: Credentials, url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return url;
  }
  if (u.origin !== new URL(server).origin || !u.pathname.startsWith('/v1/media/')) return url;
  u.searchParams.set('identifier', creds.user);
  u.searchParams.set('usersig', creds.usersig);
  return u.toString();
}

function bytesOf(body: UploadBody): Uint8Array | Blob {
  if (body instanceof Uint8Array || (typeof Blob !== 'undefined' && body instanceof Blob)) return body;
  return new Uint8Array(body as ArrayBuffer);
}

function sizeOf(body: Uint8Array | Blob): number {
  return body instanceof Uint8Array ? body.byteLength : body.size;
}

function parseAnswer(status: number, text: string): Uploaded {
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch {
    throw new DuetError(LocalCode.UPLOAD_FAILED, `upload answered HTTP ${status} without JSON`);
  }
  const code = typeof json.ErrorCode === 'number' ? json.ErrorCode : 0;
  if (status !== 200 || json.ActionStatus !== 'OK' || code !== 0) {
    throw new DuetError(code || LocalCode.UPLOAD_FAILED, String(json.ErrorInfo ?? `upload failed: HTTP ${status}`));
  }
  return json as unknown as Uploaded;
}

/** Uploads a file and returns what the server measured. */
export async function upload(
  server: string, creds: Credentials, type: MediaType, body: UploadBody, opts: UploadOptions = {},
): Promise<Uploaded> {
  const url = new URL('/v1/media', server);
  url.searchParams.set('type', type);
  if (opts.filename) url.searchParams.set('filename', opts.filename);
  url.searchParams.set('identifier', creds.user);
  url.searchParams.set('usersig', creds.usersig);
  const data = bytesOf(body);
  const total = sizeOf(data);
  if (typeof XMLHttpRequest !== 'undefined') return uploadXhr(url.toString(), data, total, opts.onProgress);
  return uploadFetch(url.toString(), data, total, opts.onProgress);
}

function uploadXhr(
  url: string, data: Uint8Array | Blob, total: number, onProgress?: (p: Progress) => void,
): Promise<Uploaded> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', url);
    xhr.setRequestHeader('Content-Type', 'application/octet-stream');
    if (onProgress) {
      xhr.upload.onprogress = (e) => onProgress({ loaded: e.loaded, total: e.lengthComputable ? e.total : total });
    }
    xhr.onload = () => {
      try {
        resolve(parseAnswer(xhr.status, xhr.responseText));
      } catch (e) {
        reject(e);
      }
    };
    xhr.onerror = () => reject(new DuetError(LocalCode.UPLOAD_FAILED, 'upload failed: network error'));
    xhr.send(data as XMLHttpRequestBodyInit);
  });
}

async function uploadFetch(
  url: string, data: Uint8Array | Blob, total: number, onProgress?: (p: Progress) => void,
): Promise<Uploaded> {
  const bytes = data instanceof Uint8Array ? data : new Uint8Array(await data.arrayBuffer());
  let offset = 0;
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (offset >= bytes.byteLength) {
        controller.close();
        return;
      }
      const chunk = bytes.subarray(offset, Math.min(offset + CHUNK, bytes.byteLength));
      offset += chunk.byteLength;
      controller.enqueue(chunk);
      onProgress?.({ loaded: offset, total });
    },
  });
  let res: Response;
  try {
    res = await fetch(url, {
      method: 'POST',
      headers: { 'Content-Type': 'application/octet-stream', 'Content-Length': String(total) },
      body: stream,
      duplex: 'half',
    } as RequestInit);
  } catch (e) {
    throw new DuetError(LocalCode.UPLOAD_FAILED, `upload failed: ${(e as Error).message}`);
  }
  return parseAnswer(res.status, await res.text());
}
