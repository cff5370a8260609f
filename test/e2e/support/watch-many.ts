/**
 * A Watch stream (many watches on one bidirectional call) as a test client sees it: requests sent
 * on demand, every response recorded per watch_id in the form the watch validator reads, how the
 * stream itself ended, and bounded waits that fail with what they waited for.
 */
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { WatchCreateRequestSchema, WatchRequestSchema } from "../../../gen/mplp/context/v1/context_service_pb.js";
import { RequestQueue } from "../../../src/sdk/request-queue.js";
import { errorDetails } from "../../../src/transport/grpc-client.js";
import type { RecordedMessage, RecordedStream } from "../../support/watch-validator.js";
import { as, type ContextClient } from "./participants.js";
import type { WatchEnd } from "./watch.js";

type RequestInit = MessageInitShape<typeof WatchRequestSchema>;
export type WatchCreateInit = MessageInitShape<typeof WatchCreateRequestSchema>;

/** What the stream said about one watch_id, in order. */
export class WatchOfStream {
  created = false;
  /** A response other than `created` arrived before it (must never happen). */
  outOfOrder: string[] = [];
  readonly messages: RecordedMessage[] = [];
  readonly progress: number[] = [];
  snapshotRevision: number | undefined;
  canceled: { code: number; reason: string; message: string; metadata: Record<string, string> } | undefined;

  constructor(readonly id: bigint) {}

  lastRevision(): number {
    return this.messages.at(-1)?.revision ?? 0;
  }

  /** This watch for the validator. */
  recorded(label: string, from: number | undefined, extra: Partial<RecordedStream> = {}): RecordedStream {
    return { label, from, messages: this.messages, ...extra };
  }
}

export class WatchStreamRecording {
  /** Every watch_id the stream answered for; a re-created id gets a fresh record (see create). */
  readonly watches = new Map<bigint, WatchOfStream>();
  /** Records of watches that were ended and whose id was reused since. */
  readonly past: WatchOfStream[] = [];
  /** watch_id of every response, in arrival order. */
  readonly order: bigint[] = [];
  end: WatchEnd | undefined;
  readonly ended: Promise<WatchEnd>;
  private readonly controller = new AbortController();
  private readonly requests = new RequestQueue<RequestInit>();

  constructor(client: ContextClient, principal: string) {
    const responses = client.watch(this.requests, { ...as(principal), signal: this.controller.signal });
    this.ended = this.read(responses).then((end) => (this.end = end));
  }

  /** Sends a create. A client-chosen id starts a fresh record (the old one, if any, moves to `past`). */
  create(request: WatchCreateInit): void {
    const id = request.watchId ?? 0n;
    if (id > 0n) {
      const old = this.watches.get(id);
      if (old?.canceled !== undefined) {
        this.past.push(old);
        this.watches.delete(id);
      }
    }
    this.send({ request: { case: "create", value: request } });
  }

  cancel(watchId: bigint): void {
    this.send({ request: { case: "cancel", value: { watchId } } });
  }

  /** Any request, malformed ones included. */
  send(request: RequestInit): void {
    this.requests.push(request);
  }

  /** The client sends no more requests (the watches go on). */
  halfClose(): void {
    this.requests.end();
  }

  /** Cancels the call and waits for the reader to stop. */
  async cancelStream(): Promise<WatchEnd> {
    this.controller.abort();
    this.halfClose();
    return this.ended;
  }

  of(id: bigint): WatchOfStream {
    let watch = this.watches.get(id);
    if (watch === undefined) {
      watch = new WatchOfStream(id);
      this.watches.set(id, watch);
    }
    return watch;
  }

  /** Waits until `condition` holds; fails when the stream ends first or after the bound. */
  async until(what: string, condition: (s: WatchStreamRecording) => boolean, timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!condition(this)) {
      if (this.end !== undefined) throw new Error(`the Watch stream ended (${this.end.kind === "failed" ? this.end.error.message : this.end.kind}) before ${what}`);
      if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  }

  untilRevision(id: bigint, revision: number, timeoutMs?: number): Promise<void> {
    return this.until(`watch ${id} at revision ${revision}`, (s) => s.of(id).lastRevision() >= revision, timeoutMs);
  }

  untilCanceled(id: bigint, timeoutMs?: number): Promise<NonNullable<WatchOfStream["canceled"]>> {
    return this.until(`watch ${id} canceled`, (s) => s.of(id).canceled !== undefined, timeoutMs).then(() => this.of(id).canceled!);
  }

  /** Waits for `created`; fails at once when the watch is refused (`canceled` first) instead. */
  async untilCreated(id: bigint, timeoutMs?: number): Promise<void> {
    await this.until(`watch ${id} created`, (s) => s.of(id).created || s.of(id).canceled !== undefined, timeoutMs);
    const refused = this.of(id).canceled;
    if (!this.of(id).created && refused !== undefined) throw new Error(`watch ${id} was refused: ${refused.code} ${refused.reason} ${refused.message}`);
  }

  private async read(responses: AsyncIterable<{ watchId: bigint; response: { case: string | undefined; value?: unknown } }>): Promise<WatchEnd> {
    try {
      for await (const { watchId, response } of responses) {
        this.order.push(watchId);
        const watch = this.of(watchId);
        if (response.case !== "created" && response.case !== "canceled" && !watch.created) watch.outOfOrder.push(`${response.case ?? "?"} before created`);
        if (watch.canceled !== undefined) watch.outOfOrder.push(`${response.case ?? "?"} after canceled`);
        switch (response.case) {
          case "created":
            watch.created = true;
            break;
          case "events": {
            const value = response.value as { revision: bigint; events: Array<{ eventId: string }> };
            watch.messages.push({ revision: Number(value.revision), eventIds: value.events.map((e) => e.eventId) });
            break;
          }
          case "snapshot":
            watch.snapshotRevision = Number((response.value as { revision: bigint }).revision);
            break;
          case "progress":
            watch.progress.push(Number((response.value as { revision: bigint }).revision));
            break;
          case "canceled":
            watch.canceled = { ...(response.value as NonNullable<WatchOfStream["canceled"]>) };
            break;
        }
      }
      return { kind: "ok" };
    } catch (error) {
      if (this.controller.signal.aborted) return { kind: "cancelled" };
      return { kind: "failed", error: errorDetails(error) };
    }
  }
}

/** Opens a recorded Watch stream as `principal`. */
export function watchStreamAs(client: ContextClient, principal: string): WatchStreamRecording {
  return new WatchStreamRecording(client, principal);
}
