/**
 * Test support: a real `duet serve` per test file (on a free port, a temporary data directory, a known
 * secret key), UserSig v2 made here with that key, and waiting for events with a timeout.
 */

import { type ChildProcess, spawn } from 'node:child_process';
import { createHmac, randomFillSync } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { deflateSync } from 'node:zlib';

import { type ClientEvents, type ClientOptions, DuetClient, MemoryStore } from '../src/index.js';

export const SECRET_KEY = 'duet-web-sdk-test-key';
export const SDKAPPID = 1400000000;

/** The package's directory (build-test/test/ → web/sdk). */
const SDK_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

function duetBin(): string {
  const candidates = [
    process.env.DUET_BIN,
    resolve(SDK_DIR, '../../target/debug/duet'),
    '/work/target-web/debug/duet',
  ].filter((p): p is string => !!p);
  const found = candidates.find((p) => existsSync(p));
  if (!found) throw new Error(`no duet binary: set DUET_BIN (tried ${candidates.join(', ')})`);
  return found;
}

export interface Server {
  url: string;
  port: number;
  data: string;
  /** Kills the process (SIGKILL: a crash) and waits for it to exit. */
  kill(): Promise<void>;
  /** Starts the server again on the same port and data. */
  restart(): Promise<void>;
  /** Stops the server and removes its data. */
  stop(): Promise<void>;
}

function launch(data: string, listen: string, config?: string): Promise<{ proc: ChildProcess; port: number }> {
  const proc = spawn(duetBin(), [
    'serve', '--listen', listen, '--data', data, '--secret-key', SECRET_KEY, '--durability', 'relaxed',
    '--sends-per-sec', '0', ...(config ? ['--config', config] : []),
  ], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, RUST_LOG: 'info', NO_COLOR: '1' } });
  return new Promise((resolvePort, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`duet serve did not start:\n${out}`)), 15_000);
    const onData = (chunk: Buffer) => {
      out += chunk.toString();
      const m = /duet is serving addr=\S+:(\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        proc.stdout?.off('data', onData);
        proc.stdout?.resume();
        resolvePort({ proc, port: Number(m[1]) });
      }
    };
    proc.stdout?.on('data', onData);
    proc.stderr?.on('data', (c: Buffer) => (out += c.toString()));
    proc.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`duet serve exited (${code}):\n${out}`));
    });
  });
}

function exited(proc: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve();
  return new Promise((r) => {
    proc.once('exit', () => r());
    proc.kill(signal);
  });
}

/**
 * Starts `duet serve`; `toml`: the text of a configuration file to start it with (e.g.
 * `recall_window_secs = 1`).
 */
export async function startServer(toml?: string): Promise<Server> {
  const data = mkdtempSync(join(tmpdir(), 'duet-web-sdk-'));
  let config: string | undefined;
  if (toml !== undefined) {
    config = join(data, 'duet.toml');
    writeFileSync(config, toml);
  }
  let { proc, port } = await launch(data, '127.0.0.1:0', config);
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    data,
    kill: () => exited(proc, 'SIGKILL'),
    async restart() {
      ({ proc } = await launch(data, `127.0.0.1:${port}`, config));
    },
    async stop() {
      await exited(proc, 'SIGTERM');
      rmSync(data, { recursive: true, force: true });
    },
  };
}

/** UserSig v2 (Tencent's TLSSigAPIv2): HMAC-SHA256 keyed by the secret key as text, in zlib'd base64. */
export function usersig(user: string, expireSecs = 86_400, key = SECRET_KEY): string {
  const time = Math.floor(Date.now() / 1000);
  const signed =
    `TLS.identifier:${user}\nTLS.sdkappid:${SDKAPPID}\nTLS.time:${time}\nTLS.expire:${expireSecs}\n`;
  const sig = createHmac('sha256', key).update(signed).digest('base64');
  const doc = JSON.stringify({
    'TLS.ver': '2.0', 'TLS.identifier': user, 'TLS.sdkappid': SDKAPPID, 'TLS.expire': expireSecs,
    'TLS.time': time, 'TLS.sig': sig,
  });
  return deflateSync(Buffer.from(doc)).toString('base64').replace(/\+/g, '*').replace(/\//g, '-').replace(/=/g, '_');
}

let users = 0;
/** A fresh UserID for each test, so tests share a server without seeing each other. */
export function newUser(name: string): string {
  return `${name}${++users}_${process.pid}`;
}

/** A client for `user` on `server` (memory store, fast heartbeat and backoff unless overridden). */
const clients: DuetClient[] = [];

/** Logs out every client the file made (for `after`, so a failed test leaves nothing running). */
export async function stopClients(): Promise<void> {
  await Promise.all(clients.splice(0).map((c) => c.logout().catch(() => undefined)));
}

export function client(server: Server, user: string, opts: Partial<ClientOptions> = {}): DuetClient {
  const c = new DuetClient({
    server: server.url, user, usersig: usersig(user), store: new MemoryStore(), device: `dev-${user}`,
    heartbeatMs: 5_000, backoff: { minMs: 100, maxMs: 1_000 }, requestTimeoutMs: 5_000, ...opts,
  });
  clients.push(c);
  return c;
}

/** Records a client's events so tests can wait for them. */
export class Recorder {
  readonly events: Array<{ name: keyof ClientEvents; value: unknown }> = [];
  #waiters: Array<() => void> = [];

  constructor(c: DuetClient) {
    const names: Array<keyof ClientEvents> = [
      'connection', 'syncStarted', 'message', 'syncComplete', 'conversation', 'recalled', 'peerRead',
      'readReceipt', 'modified', 'deleted', 'historyCleared', 'conversationDeleted', 'kicked', 'sigExpired', 'relation',
      'stopped',
    ];
    for (const name of names) {
      c.on(name, (value: unknown) => {
        this.events.push({ name, value });
        for (const w of this.#waiters.splice(0)) w();
      });
    }
  }

  of<K extends keyof ClientEvents>(name: K): Array<ClientEvents[K]> {
    return this.events.filter((e) => e.name === name).map((e) => e.value as ClientEvents[K]);
  }

  /** Waits until `pred` holds over what was recorded (checked after each event). */
  async until(what: string, pred: (r: Recorder) => boolean, timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!pred(this)) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}; events: ${JSON.stringify(this.events.map((e) => e.name))}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        this.#waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }

  /** Texts of the `message` events, in order. */
  texts(): string[] {
    return this.of('message').map((m) => m.body.map((e) => (e.MsgType === 'TIMTextElem' ? e.MsgContent.Text : '')).join(''));
  }
}

/** A PNG image `width`×`height` of one colour, made here (no fixture files). */
export function png(width: number, height: number): Uint8Array {
  const crcTable = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc = (buf: Buffer) => {
    let c = 0xffffffff;
    for (const b of buf) c = (crcTable[(c ^ b) & 0xff] as number) ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type: string, data: Buffer) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const td = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const c = Buffer.alloc(4);
    c.writeUInt32BE(crc(td));
    return Buffer.concat([len, td, c]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.writeUInt8(8, 8); // bit depth
  ihdr.writeUInt8(2, 9); // RGB
  const row = Buffer.alloc(1 + width * 3);
  const raw = Buffer.concat(Array.from({ length: height }, () => {
    // Noise, so that the file does not compress to nothing.
    const r = Buffer.from(row);
    randomFillSync(r, 1);
    r[0] = 0;
    return r;
  }));
  return new Uint8Array(Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(raw)),
    chunk('IEND', Buffer.alloc(0)),
  ]));
}

/** Calls the REST API as the admin (`/v4/<path>`); resolves with the JSON answer. */
export async function rest(server: Server, path: string, body: unknown): Promise<Record<string, unknown>> {
  const q = new URLSearchParams({
    sdkappid: String(SDKAPPID), identifier: 'administrator', usersig: usersig('administrator'),
    random: String(Math.floor(Math.random() * 2 ** 31)), contenttype: 'json',
  });
  const res = await fetch(`${server.url}/v4/${path}?${q}`, { method: 'POST', body: JSON.stringify(body) });
  return (await res.json()) as Record<string, unknown>;
}

/**
 * Imports a message (REST `openim/importmsg`): `history` (`SyncFromOldSystem` 2) reaches no sync log,
 * `realtime` (1) is delivered as a message is.
 */
export async function importMsg(
  server: Server, from: string, to: string, text: string, time: number, mode: 'history' | 'realtime' = 'realtime',
): Promise<void> {
  const r = await rest(server, 'openim/importmsg', {
    SyncFromOldSystem: mode === 'history' ? 2 : 1, From_Account: from, To_Account: to, MsgRandom: Math.floor(Math.random() * 2 ** 31),
    MsgTimeStamp: time, MsgBody: [{ MsgType: 'TIMTextElem', MsgContent: { Text: text } }],
  });
  if (r.ActionStatus !== 'OK') throw new Error(`importmsg: ${JSON.stringify(r)}`);
}
