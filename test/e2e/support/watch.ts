/**
 * A WatchContext stream as a test client sees it: every message recorded in the form the watch
 * validator reads, how the stream ended (OK or the decoded error), a reader that can stop reading
 * (a slow consumer) and start again, and bounded waits that fail with what they waited for.
 */
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { WatchContextRequest, WatchContextRequestSchema } from "../../../gen/mplp/context/v1/context_service_pb.js";
import { errorDetails, type ErrorDetails } from "../../../src/transport/grpc-client.js";
import type { LoggedEvent, RecordedMessage, RecordedStream } from "../../support/watch-validator.js";
import { as, type ContextClient } from "./participants.js";

export type WatchRequestInit = Exclude<MessageInitShape<typeof WatchContextRequestSchema>, WatchContextRequest>;

/** How a stream ended: OK, cancelled by the test, or failed with a status. */
export type WatchEnd = { readonly kind: "ok" } | { readonly kind: "cancelled" } | { readonly kind: "failed"; readonly error: ErrorDetails };

export class WatchRecording {
  readonly messages: RecordedMessage[] = [];
  /** Revisions of the progress messages received. */
  readonly progress: number[] = [];
  snapshotRevision: number | undefined;
  /** The end, once the stream has ended. */
  end: WatchEnd | undefined;
  readonly ended: Promise<WatchEnd>;
  private readonly controller = new AbortController();
  private gate: Promise<void> | undefined;
  private openGate: (() => void) | undefined;

  constructor(
    client: ContextClient,
    readonly request: WatchRequestInit,
    principal: string,
    /** Names the stream in failures and in the validator's report. */
    readonly label = `watch ${request.contextId ?? ""}@${String(request.startRevision ?? 0)}`,
  ) {
    const responses = client.watchContext(request, { ...as(principal), signal: this.controller.signal });
    this.ended = this.read(responses).then((end) => (this.end = end));
  }

  private async read(responses: AsyncIterable<{ response: { case: string | undefined; value?: unknown } }>): Promise<WatchEnd> {
    try {
      for await (const { response } of responses) {
        if (response.case === "events") {
          const value = response.value as { revision: bigint; events: Array<{ eventId: string }> };
          this.messages.push({ revision: Number(value.revision), eventIds: value.events.map((e) => e.eventId) });
        } else if (response.case === "snapshot") {
          this.snapshotRevision = Number((response.value as { revision: bigint }).revision);
        } else if (response.case === "progress") {
          this.progress.push(Number((response.value as { revision: bigint }).revision));
        }
        if (this.gate) await this.gate;
      }
      return { kind: "ok" };
    } catch (error) {
      if (this.controller.signal.aborted) return { kind: "cancelled" };
      return { kind: "failed", error: errorDetails(error) };
    }
  }

  /** The last events revision received (0: none yet). */
  lastRevision(): number {
    return this.messages.at(-1)?.revision ?? 0;
  }

  /** Stops reading: the transport buffers fill and the server sees back-pressure. */
  pause(): void {
    this.gate ??= new Promise<void>((resolve) => (this.openGate = resolve));
  }

  resume(): void {
    this.openGate?.();
    this.gate = undefined;
    this.openGate = undefined;
  }

  /** Cancels the call and waits for the reader to stop. */
  async cancel(): Promise<WatchEnd> {
    this.resume();
    this.controller.abort();
    return this.ended;
  }

  /** Waits until `condition` holds for this stream; fails when the stream ends first or after the bound. */
  async until(what: string, condition: (w: WatchRecording) => boolean, timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!condition(this)) {
      if (this.end !== undefined) throw new Error(`${this.label} ended (${describeEnd(this.end)}) before ${what}; last revision ${this.lastRevision()}`);
      if (Date.now() > deadline) throw new Error(`${this.label}: timed out after ${timeoutMs} ms waiting for ${what}; last revision ${this.lastRevision()}`);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  }

  untilRevision(revision: number, timeoutMs?: number): Promise<void> {
    return this.until(`revision ${revision}`, (w) => w.lastRevision() >= revision, timeoutMs);
  }

  /** This stream for the validator. */
  recorded(from: number | undefined, extra: Partial<RecordedStream> = {}): RecordedStream {
    return { label: this.label, from, messages: this.messages, ...extra };
  }
}

export function describeEnd(end: WatchEnd): string {
  return end.kind === "failed" ? `${end.error.code} ${end.error.reason ?? ""} ${end.error.message}` : end.kind;
}

/** Opens a recorded WatchContext stream as `principal`. */
export function watchAs(client: ContextClient, principal: string, request: WatchRequestInit, label?: string): WatchRecording {
  return new WatchRecording(client, request, principal, label);
}

/** The whole event log of a context (ListContextEvents, every page) as the validator reads it. */
export async function eventLog(client: ContextClient, contextId: string, principal: string): Promise<LoggedEvent[]> {
  const log: LoggedEvent[] = [];
  let pageToken = "";
  do {
    const page = await client.listContextEvents({ contextId, pageSize: 1000, pageToken }, as(principal));
    for (const e of page.events) log.push({ revision: Number(e.revision), eventId: e.eventId });
    pageToken = page.nextPageToken;
  } while (pageToken !== "");
  return log;
}
