/**
 * The Context message of a read, mapped and encoded once per version of the context instead of
 * once per call. A cached GetContext and every ListContexts page send contexts that were mostly
 * sent before; protobuf-es maps and encodes reflectively, which cost most of such a call's CPU.
 *
 * A context's version is its id, revision and the bookkeeping that moves without a revision (last
 * activity and expiry: the sweeper keeps a context alive): every other field changes only with a
 * revision. Views with the shared state (FULL) are not kept: the state may be large.
 */
import { toBinary } from "@bufbuild/protobuf";
import { BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import { ContextSchema, type Context as ProtoContext } from "../../gen/mplp/context/v1/context_pb.js";
import { GetContextResponseSchema, ListContextsResponseSchema, type GetContextResponse, type ListContextsResponse } from "../../gen/mplp/context/v1/context_service_pb.js";
import { ParticipantSchema } from "../../gen/mplp/context/v1/participant_pb.js";
import type { Context } from "../domain/context.js";
import { contextOut } from "./context-mapper.js";

/** Mapped contexts kept at most (oldest dropped first); each is a few KB with its encoding. */
const MAX_KEPT = 5_000;

const mapped = new Map<string, ProtoContext>();
/** The encoding of each kept message (and of any other Context message encoded here). */
const encoded = new WeakMap<ProtoContext, Uint8Array>();

function versionOf(c: Context): string {
  return `${c.contextId}:${c.revision}:${c.lastActivityAt.getTime()}:${c.expiresAt?.getTime() ?? ""}:${c.sessionCount}`;
}

/** contextOut, the same message object for the same version of a context without its state. */
export function sharedContextOut(context: Context): ProtoContext {
  if (context.sharedState !== undefined) return contextOut(context);
  const version = versionOf(context);
  let message = mapped.get(version);
  if (message === undefined) {
    message = contextOut(context);
    if (mapped.size >= MAX_KEPT) mapped.delete(mapped.keys().next().value!);
    mapped.set(version, message);
  }
  return message;
}

function encodeContext(message: ProtoContext): Uint8Array {
  let bytes = encoded.get(message);
  if (bytes === undefined) {
    bytes = toBinary(ContextSchema, message);
    encoded.set(message, bytes);
  }
  return bytes;
}

const LIST = ListContextsResponseSchema.field;
const GET = GetContextResponseSchema.field;

/** toBinary(ListContextsResponseSchema, m), byte for byte, with each context's encoding reused. */
export function encodeListContextsResponse(m: ListContextsResponse): Uint8Array {
  const w = new BinaryWriter();
  for (const c of m.contexts) w.tag(LIST.contexts.number, WireType.LengthDelimited).bytes(encodeContext(c));
  if (m.nextPageToken !== "") w.tag(LIST.nextPageToken.number, WireType.LengthDelimited).string(m.nextPageToken);
  if (m.totalSize !== 0) w.tag(LIST.totalSize.number, WireType.Varint).int32(m.totalSize);
  return w.finish();
}

/** toBinary(GetContextResponseSchema, m), byte for byte, with the context's encoding reused. */
export function encodeGetContextResponse(m: GetContextResponse): Uint8Array {
  const w = new BinaryWriter();
  if (m.context !== undefined) w.tag(GET.context.number, WireType.LengthDelimited).bytes(encodeContext(m.context));
  for (const p of m.participants) w.tag(GET.participants.number, WireType.LengthDelimited).bytes(toBinary(ParticipantSchema, p));
  return w.finish();
}
