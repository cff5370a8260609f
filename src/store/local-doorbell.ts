/**
 * The doorbell of a single instance (no REDIS_URL): rings go straight to this process's listeners.
 * Listeners run on a later microtask, never inside ring(): ring() is called right after a commit,
 * and a listener's work (or its failure) must not become the committing caller's. A ring's events
 * are not passed on: the only listener is this process's hub, which has them from the commit.
 */
import type { Doorbell } from "../service/ports.js";

type Listener = (contextId: string, revision: number) => void;

export class LocalDoorbell implements Doorbell {
  private readonly listeners = new Set<Listener>();
  private readonly touchListeners = new Set<(contextId: string) => void>();
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

  touch(contextId: string): void {
    if (this.closed) return;
    // Synchronous, unlike ring(): the only listener is this instance's read cache, and the caller
    // that touched must read its own write at once.
    for (const listener of [...this.touchListeners]) {
      try {
        listener(contextId);
      } catch {
        // As for rings.
      }
    }
  }

  subscribeTouches(listener: (contextId: string) => void): () => void {
    const entry = (id: string): void => listener(id);
    this.touchListeners.add(entry);
    return () => void this.touchListeners.delete(entry);
  }

  /** One process hears every ring it makes: it is never cut off. */
  subscribeHealth(): () => void {
    return () => undefined;
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
    this.touchListeners.clear();
  }
}
