/**
 * The error type the SDK rejects with: the server's code and `info`, or one of the SDK's own codes. An
 * edit that conflicts rejects with its subclass {@link EditConflictError}.
 */

import type { Message } from './model.js';

/** Codes of failures that happen on this side of the wire (the server's codes are positive). */
export const LocalCode = {
  /** The connection dropped before the request was answered. */
  DISCONNECTED: -1,
  /** No answer within the request timeout. */
  TIMEOUT: -2,
  /** The client is stopped (logged out, kicked, UserSig expired) or not logged in. */
  STOPPED: -3,
  /** The connection could not be opened. */
  CONNECT_FAILED: -4,
  /** An upload failed below HTTP (network) or answered something that is not JSON. */
  UPLOAD_FAILED: -5,
  /** A method or argument this server does not serve (the Tencent facade). */
  UNSUPPORTED: -6,
  /** Invalid arguments, caught before reaching the server. */
  INVALID_ARGUMENT: -7,
} as const;

export class DuetError extends Error {
  constructor(readonly code: number, message: string) {
    super(message);
    this.name = 'DuetError';
  }
}

/**
 * `modify` named a version of the message that someone edited since (the server's 20028,
 * `Code.EDIT_CONFLICT`): nothing changed. `latest` is the message as the server holds it now (read with
 * `find`; `null` when the server no longer has it or could not be asked).
 */
export class EditConflictError extends DuetError {
  constructor(message: string, readonly latest: Message | null) {
    super(20028, message);
    this.name = 'EditConflictError';
  }
}
