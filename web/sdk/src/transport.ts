/**
 * The WebSocket: the browser's, or the `ws` package under Node (an optional peer dependency, loaded
 * only when no global `WebSocket` exists).
 */

/** The part of the WebSocket API the client uses (the browser's and `ws`'s both have it). */
export interface Socket {
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
}

/** Makes a socket for a URL (for tests, proxies, or another implementation). */
export type SocketFactory = (url: string) => Socket;

let wsModule: Promise<SocketFactory> | undefined;

async function defaultFactory(): Promise<SocketFactory> {
  const Global = (globalThis as { WebSocket?: new (url: string) => Socket }).WebSocket;
  if (Global !== undefined) return (url) => new Global(url);
  wsModule ??= (async () => {
    // A variable module name keeps bundlers from pulling `ws` into browser builds.
    const name = 'ws';
    const mod = (await import(/* @vite-ignore */ /* webpackIgnore: true */ name)) as {
      WebSocket?: new (url: string) => Socket;
      default?: new (url: string) => Socket;
    };
    const Ctor = mod.WebSocket ?? mod.default;
    if (Ctor === undefined) throw new Error('no WebSocket: install the `ws` package under Node');
    return (url: string) => new Ctor(url);
  })();
  return wsModule;
}

/** Opens a socket; resolves once open, rejects if it closes or fails first. */
export async function openSocket(url: string, factory?: SocketFactory): Promise<Socket> {
  const make = factory ?? (await defaultFactory());
  const ws = make(url);
  return new Promise((resolve, reject) => {
    ws.onopen = () => {
      ws.onerror = null;
      resolve(ws);
    };
    ws.onerror = () => reject(new Error(`cannot connect to ${url}`));
    ws.onclose = (ev) => reject(new Error(`closed while connecting to ${url}: ${ev.code}`));
  });
}
