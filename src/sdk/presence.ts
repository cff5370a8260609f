/**
 * Presence in the background: a KeepAlive stream that renews a participant's lease every
 * `intervalMs` and, when the stream breaks, opens a new one with backoff. The lease (PRESENCE_TTL_MS
 * on the server, 30 s by default) outlives a short outage, so a reconnect within it keeps the
 * participant ACTIVE without a single event; after a longer one the first renewal brings it back.
 */
import type { KeepAliveResponse, ParticipantService } from "../../gen/mplp/context/v1/participant_service_pb.js";
import type { ClientCallOptions, PromiseClient } from "../transport/grpc-client.js";
import { backoffDelay, sleep, type BackoffOptions, type RetryNotice } from "./retry.js";
import { isResumable } from "./watch.js";

type ParticipantClient = PromiseClient<(typeof ParticipantService)["method"]>;

export interface PresenceOptions {
  /** How often to renew. Keep it well under the server's PRESENCE_TTL_MS. Default 10 s. */
  readonly intervalMs?: number;
  /** Backoff between reconnects; maxAttempts counts consecutive failures (default: never give up). */
  readonly backoff?: Partial<BackoffOptions>;
  /** Each renewal the server confirmed: status and the new lease_expires_at. */
  readonly onRenewed?: (response: KeepAliveResponse) => void;
  /** Told before each reconnect. */
  readonly onReconnect?: (notice: RetryNotice) => void;
}

const PRESENCE_BACKOFF: BackoffOptions = { initialMs: 200, maxMs: 5_000, multiplier: 2, maxAttempts: Infinity };

/** A participant kept present until `stop()`, or until the server refuses (e.g. it was removed). */
export class Presence {
  /** The last renewal the server confirmed. */
  last: KeepAliveResponse | undefined;
  /** Settles when renewing stops: resolves after stop(), rejects with the refusal that ended it. */
  readonly done: Promise<void>;
  private readonly controller = new AbortController();

  constructor(
    private readonly client: ParticipantClient,
    readonly contextId: string,
    readonly participantId: string,
    private readonly options: PresenceOptions = {},
    private readonly callOptions: () => ClientCallOptions = () => ({}),
  ) {
    this.done = this.run();
    // A refusal is also reported through `done`; do not let it become an unhandled rejection when nobody awaits it.
    this.done.catch(() => {});
  }

  /** Ends the stream (the lease then runs out on its own unless renewed elsewhere). */
  async stop(): Promise<void> {
    this.controller.abort();
    await this.done.catch(() => {});
  }

  private async run(): Promise<void> {
    const backoff: BackoffOptions = { ...PRESENCE_BACKOFF, ...this.options.backoff };
    const stopped = this.controller.signal;
    let failures = 0;
    while (!stopped.aborted) {
      const streamDone = new AbortController();
      try {
        const responses = this.client.keepAlive(this.requests(AbortSignal.any([stopped, streamDone.signal])), { ...this.callOptions(), signal: stopped });
        for await (const response of responses) {
          failures = 0;
          this.last = response;
          this.options.onRenewed?.(response);
        }
        // The server ended the stream OK (e.g. while shutting down): open another.
        failures++;
        if (failures >= backoff.maxAttempts) throw new Error("KeepAlive stream kept ending");
        const delayMs = backoffDelay(failures, backoff);
        this.options.onReconnect?.({ retry: failures, delayMs, error: new Error("KeepAlive stream ended") });
        await sleep(delayMs, stopped).catch(() => {});
      } catch (error) {
        if (stopped.aborted) return;
        failures++;
        if (!isResumable(error) || failures >= backoff.maxAttempts) throw error;
        const delayMs = backoffDelay(failures, backoff);
        this.options.onReconnect?.({ retry: failures, delayMs, error });
        await sleep(delayMs, stopped).catch(() => {});
      } finally {
        streamDone.abort();
      }
    }
  }

  /** One renewal now, then one every intervalMs, until the stream or the presence ends. */
  private async *requests(signal: AbortSignal): AsyncGenerator<{ contextId: string; participantId: string }> {
    const intervalMs = this.options.intervalMs ?? 10_000;
    while (!signal.aborted) {
      yield { contextId: this.contextId, participantId: this.participantId };
      try {
        await sleep(intervalMs, signal);
      } catch {
        return;
      }
    }
  }
}
