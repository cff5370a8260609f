/**
 * Helpers for the participant suites: calling as a principal, polling for an observable condition
 * (never a sleep where something can be watched), reading a context's whole event trail, and
 * driving a KeepAlive stream.
 */
import type { MessageInitShape } from "@bufbuild/protobuf";
import { ContextType, type Context, type ContextSchema } from "../../../gen/mplp/context/v1/context_pb.js";
import type { ContextService } from "../../../gen/mplp/context/v1/context_service_pb.js";
import type { ContextEvent } from "../../../gen/mplp/context/v1/event_pb.js";
import type { KeepAliveResponse, ParticipantService } from "../../../gen/mplp/context/v1/participant_service_pb.js";
import type { PromiseClient } from "../../../src/transport/grpc-client.js";

export type ContextClient = PromiseClient<(typeof ContextService)["method"]>;
export type ParticipantClient = PromiseClient<(typeof ParticipantService)["method"]>;
/** What CreateContext takes as `context` (the plain-object form). */
export type ContextInit = Exclude<MessageInitShape<typeof ContextSchema>, Context>;

/** The metadata that names a caller: x-principal-id unless a suite switched to tokens. */
export type Identify = (principal: string) => Readonly<Record<string, string>>;
const byHeader: Identify = (principal) => ({ "x-principal-id": principal });
let identify: Identify = byHeader;

/**
 * Makes `as()` (and every helper built on it) present callers another way, e.g. as bearer tokens
 * for an app with authentication on. Returns the function that restores the previous way.
 */
export function identifyCallersWith(how: Identify): () => void {
  const previous = identify;
  identify = how;
  return () => {
    identify = previous;
  };
}

/** Call options that act as `principal` (x-principal-id, or as identifyCallersWith says). */
export const as = (principal: string): { readonly metadata: Readonly<Record<string, string>> } => ({
  metadata: identify(principal),
});

export const delay = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export interface PollOptions {
  /** Give up after this long (a bound, not an expectation). Default 20 s. */
  readonly timeoutMs?: number;
  /** Pause between probes. Default 25 ms. */
  readonly intervalMs?: number;
}

/**
 * Probes until it returns something other than undefined, and returns that. Fails after the bound
 * with `what` and the last value seen (or the last error the probe threw).
 */
export async function eventually<T>(what: string, probe: () => Promise<T | undefined>, options: PollOptions = {}): Promise<T> {
  const { timeoutMs = 20_000, intervalMs = 25 } = options;
  const deadline = Date.now() + timeoutMs;
  let last: unknown = undefined;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) {
      const detail = last instanceof Error ? `last error: ${last.message}` : "the condition never held";
      throw new Error(`timed out after ${timeoutMs} ms waiting until ${what} (${detail})`);
    }
    await delay(intervalMs);
  }
}

/** Creates a context as `principal` (COLLABORATIVE unless `extra` says otherwise). */
export async function createContext(client: ContextClient, principal: string, name: string, extra: Partial<ContextInit> = {}): Promise<Context> {
  const { context } = await client.createContext({ context: { name, type: ContextType.COLLABORATIVE, ...extra } }, as(principal));
  if (!context) throw new Error("CreateContext returned no context");
  return context;
}

/** Every event of a context, oldest first, paging through ListContextEvents. */
export async function allEvents(client: ContextClient, contextId: string, principal: string): Promise<ContextEvent[]> {
  const events: ContextEvent[] = [];
  let pageToken = "";
  do {
    const page = await client.listContextEvents({ contextId, pageSize: 1000, pageToken }, as(principal));
    events.push(...page.events);
    pageToken = page.nextPageToken;
  } while (pageToken !== "");
  return events;
}

/** The participant id an event is about (participant events only). */
export function participantOf(event: ContextEvent): string | undefined {
  return event.payload.case === "participant" ? event.payload.value.participantId : undefined;
}

/**
 * A KeepAlive stream for one participant that sends a renewal every `everyMs` until close().
 * `responses` collects what the server answered; `ended` settles when the stream ends (rejecting
 * with the call's error when it fails).
 */
export interface KeepAliveStream {
  readonly responses: KeepAliveResponse[];
  readonly ended: Promise<void>;
  /** Stops sending and half-closes; resolves once the server ended the stream. */
  close(): Promise<void>;
}

export function holdKeepAlive(
  client: ParticipantClient,
  request: { readonly contextId: string; readonly participantId: string },
  principal: string,
  everyMs: number,
): KeepAliveStream {
  let open = true;
  let wake: (() => void) | undefined;
  const stop = (): void => {
    open = false;
    wake?.();
  };
  async function* requests(): AsyncGenerator<typeof request> {
    while (open) {
      yield request;
      await new Promise<void>((resolve) => {
        wake = resolve;
        setTimeout(resolve, everyMs);
      });
    }
  }
  const responses: KeepAliveResponse[] = [];
  const ended = (async () => {
    try {
      for await (const response of client.keepAlive(requests(), as(principal))) responses.push(response);
    } finally {
      stop();
    }
  })();
  // The caller decides when to look at the outcome; don't let an early failure go unhandled meanwhile.
  ended.catch(() => {});
  return {
    responses,
    ended,
    async close() {
      stop();
      await ended;
    },
  };
}
