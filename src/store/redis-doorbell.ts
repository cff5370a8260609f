/**
 * The doorbell shared by every instance (REDIS_URL set): rings are published on one Redis pub/sub
 * channel, `${keyPrefix}doorbell`, as `${contextId} ${revision}`, and every instance's subscriber
 * hands them to its listeners.
 *
 * Redis is only a hint here (Postgres is the truth, and the hub reconciles with it), so Redis being
 * down must never fail or slow a write: ring() neither throws nor waits, and publishes with the
 * offline queue off, so a ring while disconnected is dropped at once instead of piling up. ioredis
 * reconnects both connections by itself and re-subscribes the subscriber (autoResubscribe); an
 * outage is logged once when it starts and once when it ends.
 */
import { Redis, type RedisOptions } from "ioredis";
import type { Logger } from "../logger.js";
import type { Doorbell } from "../service/ports.js";

type Listener = (contextId: string, revision: number) => void;

export interface RedisDoorbellOptions {
  readonly url: string;
  /** Prefix of the channel (config.redisKeyPrefix). */
  readonly keyPrefix: string;
  readonly logger: Logger;
}

/** `${contextId} ${revision}` → its parts; null for anything else on the channel. */
export function parseRing(message: string): { contextId: string; revision: number } | null {
  const space = message.indexOf(" ");
  if (space <= 0) return null;
  const revision = Number(message.slice(space + 1));
  if (!Number.isSafeInteger(revision) || revision < 0) return null;
  return { contextId: message.slice(0, space), revision };
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
  private readonly logger: Logger;
  /** Connections currently failing, so each outage is logged once, not at every retry. */
  private readonly failing = new Set<string>();
  private closed = false;

  constructor(options: RedisDoorbellOptions) {
    this.logger = options.logger;
    this.channel = `${options.keyPrefix}doorbell`;
    const tag = `${options.keyPrefix}doorbell:${process.pid}`.replace(/\s/g, "_");
    this.publisherName = `${tag}:pub`;
    this.subscriberName = `${tag}:sub`;
    const common: RedisOptions = { lazyConnect: false };
    // Publishing: fail fast while disconnected (the ring is lost, reconcile covers it).
    this.publisher = new Redis(options.url, { ...common, connectionName: this.publisherName, enableOfflineQueue: false });
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

  ring(contextId: string, revision: number): void {
    if (this.closed) return;
    try {
      this.publisher.publish(this.channel, `${contextId} ${revision}`).catch((error: unknown) => this.failed("publisher", error));
    } catch (error) {
      this.failed("publisher", error);
    }
  }

  subscribe(listener: Listener): () => void {
    const entry: Listener = (id, rev) => listener(id, rev);
    this.listeners.add(entry);
    return () => void this.listeners.delete(entry);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.listeners.clear();
    // quit() waits for a reply that never comes while disconnected: disconnect() those.
    await Promise.all([this.publisher, this.subscriber].map((c) => (c.status === "ready" ? c.quit().then(() => undefined, () => c.disconnect()) : c.disconnect())));
  }

  private heard(channel: string, message: string): void {
    if (channel !== this.channel) return;
    const ring = parseRing(message);
    if (ring === null) return;
    for (const listener of this.listeners) {
      try {
        listener(ring.contextId, ring.revision);
      } catch (error) {
        this.logger.error({ err: error }, "doorbell listener failed");
      }
    }
  }

  private watchHealth(connection: Redis, role: string): void {
    connection.on("error", (error: unknown) => this.failed(role, error));
    connection.on("ready", () => {
      if (this.failing.delete(role)) this.logger.info({ role }, "redis doorbell connection recovered");
    });
  }

  private failed(role: string, error: unknown): void {
    if (this.closed || this.failing.has(role)) return;
    this.failing.add(role);
    this.logger.warn(
      { err: error, role },
      "redis doorbell is unreachable: watchers fall back to the database heads check until it is back",
    );
  }
}
