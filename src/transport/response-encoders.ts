/**
 * Responses with an encoder of their own, faster than protobuf-es's reflective toBinary and equal
 * to it byte for byte (test/unit/transport/context-encoding.test.ts): the read paths that answer
 * contexts sent many times before (context-encoding.ts). The adapter's serializer asks here first.
 */
import type { DescMessage } from "@bufbuild/protobuf";
import { GetContextResponseSchema, ListContextsResponseSchema } from "../../gen/mplp/context/v1/context_service_pb.js";
import { encodeGetContextResponse, encodeListContextsResponse } from "./context-encoding.js";

const ENCODERS = new Map<DescMessage, (message: never) => Uint8Array>([
  [ListContextsResponseSchema, encodeListContextsResponse],
  [GetContextResponseSchema, encodeGetContextResponse],
]);

/** The response encoder of `schema`, when it has one. */
export function encoderFor<D extends DescMessage>(schema: D): ((message: never) => Uint8Array) | undefined {
  return ENCODERS.get(schema);
}
