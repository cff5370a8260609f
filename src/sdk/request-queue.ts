/**
 * The requests of a client-streaming or bidirectional call, sent as they are pushed: the
 * AsyncIterable the typed client takes, fed from outside. `end()` half-closes the call's request
 * side once what was pushed has gone out.
 */
export class RequestQueue<T> implements AsyncIterable<T> {
  private readonly queue: T[] = [];
  private wake: (() => void) | undefined;
  private ended = false;

  push(request: T): void {
    this.queue.push(request);
    this.wake?.();
  }

  end(): void {
    this.ended = true;
    this.wake?.();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    for (;;) {
      const next = this.queue.shift();
      if (next !== undefined) {
        yield next;
        continue;
      }
      if (this.ended) return;
      await new Promise<void>((resolve) => (this.wake = resolve));
      this.wake = undefined;
    }
  }
}
