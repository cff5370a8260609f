/** Awaits a call that must fail and decodes what the client sees: status, ErrorInfo, BadRequest. */
import { errorDetails, type ErrorDetails } from "../../../src/transport/grpc-client.js";

export async function failure(call: Promise<unknown>): Promise<ErrorDetails> {
  try {
    await call;
  } catch (error) {
    return errorDetails(error);
  }
  throw new Error("expected the call to fail");
}
