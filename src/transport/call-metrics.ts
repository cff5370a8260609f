/**
 * What the transport reports about the calls it serves, as a port: the composition root plugs in
 * the Prometheus implementation (src/metrics/), tests and callers that want none leave it out.
 * Kept to plain strings and numbers so no metrics library leaks into the transport.
 */

/** Counters of every call the gRPC adapter serves. */
export interface CallMetrics {
  /** A call arrived (in-flight + 1). `method` is the full path, e.g. `/mplp.context.v1.ContextService/GetContext`. */
  callStarted(method: string): void;
  /** The call ended with `code` (a grpc status name such as `OK`) after `seconds` (in-flight − 1). */
  callFinished(method: string, code: string, seconds: number): void;
}

/** Counters of watches: WatchContext streams, and the watches of Watch streams. */
export interface WatchMetrics {
  /** A watch was admitted and handed to the hub. */
  watchOpened(): void;
  /** That watch ended, however it ended. */
  watchClosed(): void;
  /** A revision was written to a stream `seconds` after its events occurred (commit → send). */
  revisionSent(lagSeconds: number): void;
}
