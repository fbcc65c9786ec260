/** Reconnect delays that double from a minimum to a maximum, with jitter (half to all of the step). */
export class Backoff {
  #next: number;

  constructor(readonly minMs: number, readonly maxMs: number) {
    this.#next = minMs;
  }

  /** Back to the minimum (after a successful login). */
  reset(): void {
    this.#next = this.minMs;
  }

  /** The next delay in milliseconds; the step then doubles up to the maximum. */
  nextDelay(): number {
    const step = this.#next;
    this.#next = Math.min(step * 2, this.maxMs);
    const half = step / 2;
    return Math.round(half + Math.random() * half);
  }
}
