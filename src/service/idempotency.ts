/**
 * request_id idempotency, the same for every mutation: a retry from the same principal within
 * 24 h gets the first call's stored result and applies nothing twice.
 */
import { AppError } from "../domain/app-error.js";
import type { JsonValue } from "../domain/json.js";
import type { Caller } from "./caller.js";
import type { ContextTx, RequestKey } from "./ports.js";

/** The call's idempotency key; undefined when it sent no request_id. */
export function requestKeyOf(caller: Caller, requestId: string, method: string): RequestKey | undefined {
  return requestId === "" ? undefined : { principal: caller.principal, requestId, method };
}

/**
 * Claims `key` inside the transaction. A fresh key → undefined (do the work, then save its result);
 * a retry → what the first call saved; a key first used by another method → VALIDATION_ERROR.
 */
export async function priorResult(tx: ContextTx, key: RequestKey | undefined): Promise<{ readonly result: JsonValue } | undefined> {
  if (key === undefined) return undefined;
  const prior = await tx.claimRequest(key);
  if (prior === null) return undefined;
  if (prior.method !== key.method) {
    throw AppError.validation([{ field: "request_id", description: `was already used for ${prior.method}` }]);
  }
  return { result: prior.result };
}
