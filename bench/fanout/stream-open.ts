/**
 * Opening a server stream in the benchmarks: a stream that answers nothing within OPEN_TIMEOUT_MS
 * failed to open, and every failure to open carries the status name it failed with, for counting.
 */

/** A stream that sent nothing (not even its first message) for this long failed to open. */
export const OPEN_TIMEOUT_MS = 60_000;

export class OpenFailure extends Error {
  constructor(readonly code: string) {
    super(`stream failed to open: ${code}`);
  }
}

/** Rejects the open with OPEN_TIMEOUT and cancels the call unless cleared first (on its first message). */
export function openTimer(call: { cancel(): void }, reject: (error: OpenFailure) => void): NodeJS.Timeout {
  return setTimeout(() => {
    reject(new OpenFailure("OPEN_TIMEOUT"));
    call.cancel();
  }, OPEN_TIMEOUT_MS);
}
