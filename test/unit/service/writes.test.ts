import { describe, expect, it } from "vitest";
import { LIMITS } from "../../../src/domain/limits.js";
import { ContextService, type Caller } from "../../../src/service/context-service.js";
import type { ApplyOutcome, ContextChange, StoreCall } from "../../../src/service/ports.js";
import { Writes } from "../../../src/service/writes.js";
import { MemoryContextStore } from "../../support/memory-store.js";
import { caught as failure } from "../../support/app-error-assertions.js";

const alice: Caller = { principal: "alice" };

/** A memory store whose applies wait until `release()` while `hold` is set. */
class HeldStore extends MemoryContextStore {
  hold = false;
  private waiting: Array<() => void> = [];

  override async apply(call: StoreCall, change: ContextChange): Promise<ApplyOutcome> {
    if (this.hold) await new Promise<void>((resolve) => this.waiting.push(resolve));
    return super.apply(call, change);
  }

  release(): void {
    this.hold = false;
    for (const resolve of this.waiting.splice(0)) resolve();
  }

  get held(): number {
    return this.waiting.length;
  }
}

async function setup(maxWaitMs: number) {
  const store = new HeldStore(() => Date.now());
  const clock = { now: () => new Date() };
  const service = new ContextService(store, clock, { sharedStateMaxBytes: LIMITS.sharedStateBytes }, new Writes(store, clock, maxWaitMs));
  const { contextId } = await service.create(alice, { context: { name: "hot", type: "COLLABORATIVE" }, requestId: "" });
  const update = (description: string, caller: Caller = alice) =>
    service.update(caller, { contextId, patch: { description }, updateMask: ["description"], expectedRevision: 0 });
  return { store, service, contextId, update };
}

async function until(check: () => boolean): Promise<void> {
  while (!check()) await new Promise((resolve) => setTimeout(resolve, 1));
}

describe(Writes.name, () => {
  it("turns a write away with SERVICE_UNAVAILABLE after waiting maxWaitMs for earlier writes to its context, having written nothing", async () => {
    const { store, update, service, contextId } = await setup(50);
    store.hold = true;
    const first = update("first");
    await until(() => store.held === 1);
    const writesBefore = store.writes;
    const err = await failure(update("second"));
    expect(err.reason).toBe("SERVICE_UNAVAILABLE");
    expect(err.message).toMatch(/earlier writes/);
    expect(store.writes).toBe(writesBefore);
    store.release();
    await first;
    // The chain goes on: a later write waits for the first, not for the one turned away.
    await update("third");
    expect((await service.get(alice, contextId, "BASIC")).context.description).toBe("third");
  });

  it("answers TIMEOUT when the call's deadline comes before its turn", async () => {
    const { store, update } = await setup(10_000);
    store.hold = true;
    const first = update("first");
    await until(() => store.held === 1);
    const err = await failure(update("second", { ...alice, deadline: Date.now() + 30 }));
    expect(err.reason).toBe("TIMEOUT");
    store.release();
    await first;
  });
});
