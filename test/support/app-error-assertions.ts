/** Assertions on AppErrors coming out of the store. */
import { expect } from "vitest";
import { AppError } from "../../src/domain/app-error.js";

/** The SQLSTATE somewhere down an error's cause chain. */
export function sqlStateOf(error: unknown): string | undefined {
  for (let e: unknown = error, i = 0; e !== null && typeof e === "object" && i < 10; e = (e as { cause?: unknown }).cause, i++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string" && /^[0-9A-Z]{5}$/.test(code)) return code;
  }
  return undefined;
}

/** The AppError a promise rejects with (failing the test if it resolves or rejects otherwise). */
export async function caught(promise: Promise<unknown>): Promise<AppError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(AppError);
    return error as AppError;
  }
  throw new Error("expected the promise to reject");
}

/** Whether a client-visible message leaks SQL or driver text. */
export function expectClientSafe(error: AppError): void {
  expect(error.message).not.toMatch(/select|insert|update|delete|from|where|duplicate|constraint|syntax|uuid|context_events|contexts|failed query|params/i);
}
