/**
 * The doorbell shared by every instance (REDIS_URL set): rings are published on one Redis pub/sub
 * channel, `${keyPrefix}doorbell`, as `${contextId} ${revision}` or, carrying the revision's events
 * (small ones: CommittedEvents.wire), `${contextId} ${revision} ${events}`; touches as
 * `${contextId} t`; every instance's subscriber hands them to its listeners. An instance of an
 * older version takes a ring with events for none at all, and finds the revision at its next
 * reconcile (WATCH_RECONCILE_MS): mixed versions cost latency during a rolling upgrade, not events. Touches reach the touching instance's
 * own listeners at once, not through Redis: its next read must see its own write.
 *
 * Redis is only a hint here (Postgres is the truth, and the hub reconciles with it), so Redis being
 * down must never fail or slow a write: ring() neither throws nor waits, and publishes with the
 * offline queue off, so a ring while disconnected is dropped at once instead of piling up. ioredis
 * reconnects both connections by itself and re-subscribes the subscriber (autoResubscribe); an
 * outage is logged once when it starts and once when it ends.
 */
import { Redis, type RedisOptions } from "ioredis";
import type { Logger } from "../logger.js";
import { ALL_CONTEXTS, type Doorbell } from "../service/ports.js";

type Listener = (contextId: string, revision: number, events?: string) => void;

/**
 * Something that publishes on Redis along with work it sends anyway: the read cache's per-tick
 * stamp script (RedisCache.carry), so a commit's stamps and its ring are one command. Resolves
 * false when the message may not have gone out.
 */
export interface RingCarrier {
  carry(channel: string, message: string): Promise<boolean>;
}

/** Unsent rings and touches kept at most; beyond, one touch of ALL_CONTEXTS replaces them. */
const MAX_UNSENT = 10_000;

export interface RedisDoorbellOptions {
  readonly url: string;
  /** Prefix of the channel (config.redisKeyPrefix). */
  readonly keyPrefix: string;
  readonly logger: Logger;
}

/** `${contextId} ${revision}[ ${events}]` → its parts; null for anything else on the channel. */
export function parseRing(message: string): { contextId: string; revision: number; events?: string } | null {
  const space = message.indexOf(" ");
  if (space <= 0) return null;
  const second = message.indexOf(" ", space + 1);
  const text = message.slice(space + 1, second < 0 ? undefined : second);
  const revision = Number(text);
  if (text === "" || !Number.isSafeInteger(revision) || revision < 0) return null;
  const contextId = message.slice(0, space);
  return second < 0 ? { contextId, revision } : { contextId, revision, events: message.slice(second + 1) };
}

/** `${contextId} t` → the context id; null for anything else. */
export function parseTouch(message: string): string | null {
  return message.length > 2 && message.endsWith(" t") ? message.slice(0, -2) : null;
}

export class RedisDoorbell implements Doorbell {
  /** The channel rings go on. */
  readonly channel: string;
  /** The names the two connections give themselves (CLIENT SETNAME), so operators and tests can find them. */
  readonly publisherName: string;
  readonly subscriberName: string;
  private readonly publisher: Redis;
  private readonly subscriber: Redis;
  private readonly listeners = new Set<Listener>();
  private readonly touchListeners = new Set<(contextId: string) => void>();
  private readonly healthListeners = new Set<(connected: boolean) => void>();
  private readonly logger: Logger;
  /** Connections currently failing, so each outage is logged once, not at every retry. */
  private readonly failing = new Set<string>();
  private closed = false;
  /** Rings and touches that could not be published, by `${contextId} r|t`, sent again on reconnect. */
  private readonly unsent = new Map<string, string>();
  private overflowed = false;
  private carrier: RingCarrier | undefined;

  constructor(options: RedisDoorbellOptions) {
    this.logger = options.logger;
    this.channel = `${options.keyPrefix}doorbell`;
    const tag = `${options.keyPrefix}doorbell:${process.pid}`.replace(/\s/g, "_");
    this.publisherName = `${tag}:pub`;
    this.subscriberName = `${tag}:sub`;
    const common: RedisOptions = { lazyConnect: false };
    // Publishing: fail fast while disconnected (what could not go out is sent again on reconnect).
    // Rings and touches of one event-loop turn go out in one write (auto-pipelining).
    this.publisher = new Redis(options.url, { ...common, connectionName: this.publisherName, enableOfflineQueue: false, enableAutoPipelining: true });
    // Subscribing: queue SUBSCRIBE until connected and retry forever; re-subscribe after reconnects.
    this.subscriber = new Redis(options.url, {
      ...common,
      connectionName: this.subscriberName,
      enableOfflineQueue: true,
      maxRetriesPerRequest: null,
      autoResubscribe: true,
    });
    this.watchHealth(this.publisher, "publisher");
    this.watchHealth(this.subscriber, "subscriber");
    this.subscriber.on("message", (channel: string, message: string) => this.heard(channel, message));
    this.subscriber.subscribe(this.channel).catch((error: unknown) => {
      if (!this.closed) this.logger.warn({ err: error, channel: this.channel }, "redis doorbell could not subscribe");
    });
  }

  ring(contextId: string, revision: number, events?: string): void {
    const ring = `${contextId} ${revision}`;
    const message = events === undefined ? ring : `${ring} ${events}`;
    const publish = (): void => this.publish(`${contextId} r`, message, ring);
    if (this.carrier === undefined || this.closed) return publish();
    // Carried, it may still have gone out when it reports failure (a timeout): a ring heard twice is harmless.
    void this.carrier.carry(this.channel, message).then((sent) => sent || publish());
  }

  /**
   * Rings go out with `carrier`'s own commands from now on (the app passes the read cache's L2,
   * which sends a stamp script for every commit anyway); one that does not falls back to this
   * doorbell's publisher. Touches always go on the publisher.
   */
  carryRingsWith(carrier: RingCarrier): void {
    this.carrier = carrier;
  }

  touch(contextId: string): void {
    if (this.closed) return;
    this.touched(contextId);
    this.publish(`${contextId} t`, `${contextId} t`);
  }

  subscribeTouches(listener: (contextId: string) => void): () => void {
    const entry = (id: string): void => listener(id);
    this.touchListeners.add(entry);
    return () => void this.touchListeners.delete(entry);
  }

  subscribeHealth(listener: (connected: boolean) => void): () => void {
    const entry = (up: boolean): void => listener(up);
    this.healthListeners.add(entry);
    return () => void this.healthListeners.delete(entry);
  }

  subscribe(listener: Listener): () => void {
    const entry: Listener = (id, rev, events) => listener(id, rev, events);
    this.listeners.add(entry);
    return () => void this.listeners.delete(entry);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.listeners.clear();
    this.touchListeners.clear();
    this.healthListeners.clear();
    // quit() waits for a reply that never comes while disconnected: disconnect() those.
    await Promise.all([this.publisher, this.subscriber].map((c) => (c.status === "ready" ? c.quit().then(() => undefined, () => c.disconnect()) : c.disconnect())));
  }

  private heard(channel: string, message: string): void {
    if (channel !== this.channel) return;
    const touched = parseTouch(message);
    // Our own come back too: one more drop of what this instance cached, harmless.
    if (touched !== null) {
      this.touched(touched);
      return;
    }
    const ring = parseRing(message);
    if (ring === null) return;
    for (const listener of this.listeners) {
      try {
        listener(ring.contextId, ring.revision, ring.events);
      } catch (error) {
        this.logger.error({ err: error }, "doorbell listener failed");
      }
    }
  }

  /**
   * Publishes, keeping what could not be sent to send again once the publisher is back: a lost
   * ring costs a watcher only a reconcile tick, but another instance's read cache would serve the
   * old revision until its entry expired. Per context only the newest ring is kept; past
   * MAX_UNSENT the lot is replaced by one "touch everything".
   */
  /** Publishes `message`; if it is lost, `kept` (default: the message) is what is sent again on reconnect. */
  private publish(key: string, message: string, kept = message): void {
    if (this.closed) return;
    const lost = (error: unknown): void => {
      this.failed("publisher", error);
      // A ring is kept without its events: an old revision's events are worth no memory here.
      this.keep(key, kept);
    };
    try {
      this.publisher.publish(this.channel, message).catch(lost);
    } catch (error) {
      lost(error);
    }
  }

  private keep(key: string, message: string): void {
    if (this.closed) return;
    if (this.overflowed) return;
    if (!this.unsent.has(key) && this.unsent.size >= MAX_UNSENT) {
      this.unsent.clear();
      this.overflowed = true;
      return;
    }
    const prior = this.unsent.get(key);
    if (prior !== undefined && key.endsWith(" r") && (parseRing(prior)?.revision ?? 0) >= (parseRing(message)?.revision ?? 0)) return;
    this.unsent.set(key, message);
  }

  private resend(): void {
    const pending = [...this.unsent];
    this.unsent.clear();
    if (this.overflowed) {
      this.overflowed = false;
      this.publish(`${ALL_CONTEXTS} t`, `${ALL_CONTEXTS} t`);
    }
    for (const [key, message] of pending) this.publish(key, message);
  }

  private touched(contextId: string): void {
    for (const listener of this.touchListeners) {
      try {
        listener(contextId);
      } catch (error) {
        this.logger.error({ err: error }, "doorbell touch listener failed");
      }
    }
  }

  private healthChanged(connected: boolean): void {
    for (const listener of this.healthListeners) {
      try {
        listener(connected);
      } catch (error) {
        this.logger.error({ err: error }, "doorbell health listener failed");
      }
    }
  }

  private watchHealth(connection: Redis, role: string): void {
    connection.on("error", (error: unknown) => this.failed(role, error));
    // A killed connection (CLIENT KILL, a Redis restart) may close without an error event.
    connection.on("close", () => this.failed(role, new Error("connection closed")));
    connection.on("ready", () => {
      if (!this.failing.delete(role)) return;
      this.logger.info({ role, resent: this.unsent.size }, "redis doorbell connection recovered");
      // ioredis emits "ready" before its re-SUBSCRIBE is answered: rings published in between would
      // be missed by a cache already back to full TTLs. Healthy once our own SUBSCRIBE, queued after
      // it on the same connection, is answered.
      if (role === "subscriber") {
        this.subscriber.subscribe(this.channel).then(
          () => this.healthChanged(true),
          (error: unknown) => this.failed(role, error),
        );
      }
      if (role === "publisher") this.resend();
    });
  }

  private failed(role: string, error: unknown): void {
    if (this.closed || this.failing.has(role)) return;
    this.failing.add(role);
    if (role === "subscriber") this.healthChanged(false);
    this.logger.warn(
      { err: error, role },
      "redis doorbell is unreachable: watchers fall back to the database heads check until it is back",
    );
  }
}
