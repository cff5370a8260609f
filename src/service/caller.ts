/** Who is calling and until when: what every use case receives from the transport. */
import type { StoreCall } from "./ports.js";

export interface Caller {
  /** The authenticated principal (the token's `sub`, or `x-principal-id` without auth). */
  readonly principal: string;
  /** Absolute deadline (epoch ms) of the call, if the client set one. */
  readonly deadline?: number;
}

export function storeCall(caller: Caller): StoreCall {
  return caller.deadline === undefined ? {} : { deadline: caller.deadline };
}

/**
 * The StoreCall of a read a read replica may serve (slightly stale): only reads that decide
 * nothing, never a permission check, an expected_revision or a capacity, nor what fills the cache.
 */
export function replicaCall(caller: Caller): StoreCall {
  return { ...storeCall(caller), replicaOk: true };
}
