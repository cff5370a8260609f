/**
 * Fakes for the watch hub's unit tests: a memory store that rings a doorbell after each commit
 * (as PgContextStore's onCommit does in the app), a recording sink, and bounded waits.
 */
import type { ApplyOutcome, ContextChange, ContextTx, StoreCall } from "../../../src/service/ports.js";
import type { WatchMessage, WatchSink } from "../../../src/service/watch-types.js";
import { LocalDoorbell } from "../../../src/store/local-doorbell.js";
import { MemoryContextStore } from "../../support/memory-store.js";
import type { RecordedMessage } from "../../support/watch-validator.js";

/** The memory store, ringing `doorbell` after each commit unless `ringing` is off (a lost doorbell). */
export class RingingStore extends MemoryContextStore {
  ringing = true;
  readonly doorbell = new LocalDoorbell();

  override async apply(call: StoreCall, change: ContextChange): Promise<ApplyOutcome> {
    const outcome = await super.apply(call, change);
    if (outcome.applied) this.rang([change]);
    return outcome;
  }

  override async applyAll(call: StoreCall, changes: readonly ContextChange[]): Promise<ApplyOutcome[]> {
    const outcomes = await super.applyAll(call, changes);
    this.rang(changes.filter((_, i) => outcomes[i]!.applied));
    return outcomes;
  }

  override async transaction<T>(call: StoreCall, work: (tx: ContextTx) => Promise<T>): Promise<T> {
    const finished: ContextChange[] = [];
    const result = await super.transaction(call, (tx) =>
      work({
        ...tx,
        finish: async (change) => {
          const outcome = await tx.finish(change);
          if (outcome.applied) finished.push(change);
          return outcome;
        },
      }),
    );
    this.rang(finished);
    return result;
  }

  private rang(changes: readonly ContextChange[]): void {
    if (!this.ringing) return;
    const heads = new Map<string, number>();
    for (const e of changes.flatMap((c) => c.events)) heads.set(e.contextId, Math.max(heads.get(e.contextId) ?? 0, e.revision));
    for (const [id, revision] of heads) this.doorbell.ring(id, revision);
  }
}

/** A sink that records what it is sent; `pause()` makes send() hang, as a client that stops reading. */
export class RecordingSink implements WatchSink {
  readonly messages: WatchMessage[] = [];
  private readonly controller = new AbortController();
  private paused = false;
  private waiting: Array<() => void> = [];

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  send = async (message: WatchMessage): Promise<void> => {
    this.signal.throwIfAborted();
    this.messages.push(message);
    if (this.paused) await new Promise<void>((resolve) => this.waiting.push(resolve));
  };

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
    for (const w of this.waiting.splice(0)) w();
  }

  cancel(): void {
    this.controller.abort(new DOMException("the client cancelled the call", "AbortError"));
  }

  /** The events messages as the validator reads them. */
  recorded(): RecordedMessage[] {
    return this.messages.flatMap((m) => (m.kind === "events" ? [{ revision: m.revision, eventIds: m.events.map((e) => e.eventId) }] : []));
  }

  lastRevision(): number {
    return this.recorded().at(-1)?.revision ?? 0;
  }
}

/**
 * Polls `condition` until it holds; fails naming `what` after `timeoutMs` — generous, because a
 * loaded 2-core machine running the whole suite can stall a test for seconds.
 */
export async function waitUntil(condition: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

/** The rejection of `promise` (fails if it resolves). */
export async function rejectionOf(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error("expected a rejection");
}
