/**
 * The doorbell of a single instance (no REDIS_URL): rings go straight to this process's listeners.
 * Listeners run on a later microtask, never inside ring(): ring() is called right after a commit,
 * and a listener's work (or its failure) must not become the committing caller's.
 */
import type { Doorbell } from "../service/ports.js";

type Listener = (contextId: string, revision: number) => void;

export class LocalDoorbell implements Doorbell {
  private readonly listeners = new Set<Listener>();
  private closed = false;

  ring(contextId: string, revision: number): void {
    if (this.closed || this.listeners.size === 0) return;
    const listeners = [...this.listeners];
    queueMicrotask(() => {
      for (const listener of listeners) {
        try {
          listener(contextId, revision);
        } catch {
          // A listener's bug must not stop the others; the hub's own reconcile covers its context.
        }
      }
    });
  }

  subscribe(listener: Listener): () => void {
    // A wrapper per subscription, so the same function subscribed twice unsubscribes separately.
    const entry: Listener = (id, rev) => listener(id, rev);
    this.listeners.add(entry);
    return () => void this.listeners.delete(entry);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.listeners.clear();
  }
}
