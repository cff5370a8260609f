/**
 * request_id idempotency, the same for every mutation: a retry from the same principal within
 * 24 h gets the first call's stored result and applies nothing twice (the store claims the key in
 * the statement that writes the change; writes.ts answers replays).
 */
import type { Caller } from "./caller.js";
import type { RequestKey } from "./ports.js";

/** The call's idempotency key; undefined when it sent no request_id. */
export function requestKeyOf(caller: Caller, requestId: string, method: string): RequestKey | undefined {
  return requestId === "" ? undefined : { principal: caller.principal, requestId, method };
}
