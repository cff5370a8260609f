/**
 * The per-principal rate limit (RATE_LIMIT_RPS, RATE_LIMIT_BURST): a token bucket per principal,
 * refilled continuously at `rps` up to `burst`. A call takes one token; with none left it fails
 * RESOURCE_EXHAUSTED / RATE_LIMITED carrying how long until the next token (google.rpc.RetryInfo).
 * One principal's burst never costs another principal anything.
 *
 * The buckets live in a bounded map, least recently used first out: a flood of distinct principals
 * (possible without authentication) costs at most `maxPrincipals` entries. A forgotten principal
 * comes back with a full bucket, which is the state an idle one would have reached anyway.
 * Per instance: behind a load balancer each instance enforces its own share.
 */
import { AppError } from "../domain/app-error.js";

export interface RateLimitOptions {
  /** Tokens added per second; 0 turns the limit off. */
  readonly rps: number;
  /** Bucket size: calls a rested principal may make at once. */
  readonly burst: number;
  /** Principals remembered at most (default 100 000). */
  readonly maxPrincipals?: number;
  /** Now, in epoch ms (tests). */
  readonly now?: () => number;
}

interface Bucket {
  tokens: number;
  updatedAt: number;
}

const DEFAULT_MAX_PRINCIPALS = 100_000;

export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>();
  private readonly maxPrincipals: number;
  private readonly now: () => number;

  constructor(private readonly options: RateLimitOptions) {
    this.maxPrincipals = options.maxPrincipals ?? DEFAULT_MAX_PRINCIPALS;
    this.now = options.now ?? Date.now;
  }

  /** Whether any limit applies. */
  get enabled(): boolean {
    return this.options.rps > 0;
  }

  /** Principals with a bucket now (tests). */
  get size(): number {
    return this.buckets.size;
  }

  /** Takes one token for `principal`, or throws RATE_LIMITED with the delay until one is available. */
  take(principal: string): void {
    if (!this.enabled) return;
    const { rps, burst } = this.options;
    const now = this.now();
    let bucket = this.buckets.get(principal);
    if (bucket === undefined) {
      bucket = { tokens: burst, updatedAt: now };
      if (this.buckets.size >= this.maxPrincipals) {
        const oldest = this.buckets.keys().next();
        if (oldest.done !== true) this.buckets.delete(oldest.value);
      }
    } else {
      // Re-inserting keeps the map ordered by last use, so eviction takes the least recently used.
      this.buckets.delete(principal);
      bucket.tokens = Math.min(burst, bucket.tokens + ((now - bucket.updatedAt) / 1000) * rps);
      bucket.updatedAt = now;
    }
    this.buckets.set(principal, bucket);
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return;
    }
    const retryDelayMs = Math.max(1, Math.ceil(((1 - bucket.tokens) / rps) * 1000));
    throw new AppError("RATE_LIMITED", `rate limit exceeded: at most ${rps} calls per second (burst ${burst}); retry in ${retryDelayMs} ms`, {
      retryDelayMs,
      metadata: { retry_delay_ms: String(retryDelayMs), limit_rps: String(rps), burst: String(burst) },
    });
  }
}
