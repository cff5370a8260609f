/**
 * The Context message of a read, mapped and encoded once per version of the context instead of
 * once per call. A cached GetContext and every ListContexts page send contexts that were mostly
 * sent before; protobuf-es maps and encodes reflectively, which cost most of such a call's CPU.
 *
 * A context's version is its id, revision and the bookkeeping that moves without a revision (last
 * activity and expiry: the sweeper keeps a context alive): every other field changes only with a
 * revision. Views with the shared state (FULL) are not kept: the state may be large.
 */
import {
  AccessControlSchema,
  ContextConfigurationSchema,
  ContextMetadataSchema,
  ContextSchema,
  type Context as ProtoContext,
} from "../../gen/mplp/context/v1/context_pb.js";
import {
  CreateContextResponseSchema,
  GetContextResponseSchema,
  ListContextsResponseSchema,
  type CreateContextResponse,
  type GetContextResponse,
  type ListContextsResponse,
} from "../../gen/mplp/context/v1/context_service_pb.js";
import { encodeSharedState } from "./shared-state-encoding.js";
import { oncePerObject } from "./once-per-object.js";
import { participantsField } from "./participant-encoding.js";
import { BinaryWriter, LD, structField, textField, textsField, timestampField, varintField, WireType } from "./message-writer.js";
import type { Context } from "../domain/context.js";
import type { ContextPage } from "../service/context-service.js";
import { contextOut } from "./context-mapper.js";

/** Mapped contexts kept at most (oldest dropped first); each is a few KB with its encoding. */
const MAX_KEPT = 5_000;

const mapped = new Map<string, ProtoContext>();
/** The encoding of each kept message (and of any other Context message a read encodes). */
const encodeContext = oncePerObject(encodeContextMessage);

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

/**
 * ListContexts' answer, one message per page object: a kept first page is the same object call
 * after call (service/page-once.ts), so its answer is too, and response-encoders.ts keeps that
 * answer's bytes beside it.
 */
export const listContextsOut = oncePerObject(
  (page: ContextPage): ListContextsResponse => ({
    // A literal, as listParticipantsOut's: create() walks the schema reflectively to build the same object.
    $typeName: "mplp.context.v1.ListContextsResponse",
    contexts: page.contexts.map(sharedContextOut),
    nextPageToken: page.nextPageToken,
    totalSize: page.totalSize,
  }),
);

const CONTEXT = ContextSchema.field;
const CONFIGURATION = ContextConfigurationSchema.field;
const ACCESS = AccessControlSchema.field;
const METADATA = ContextMetadataSchema.field;

/**
 * toBinary(ContextSchema, m), byte for byte (fields in number order, proto3 defaults left out,
 * `optional` fields written when set), by hand: the reflective encoder was a tenth of a write's
 * CPU. The shared state and custom_data (open JSON) go through their own encoders
 * (shared-state-encoding.ts, struct-encoding.ts).
 */
export function encodeContextMessage(m: ProtoContext): Uint8Array {
  const w = new BinaryWriter();
  textField(w, CONTEXT.contextId.number, m.contextId);
  textField(w, CONTEXT.name.number, m.name);
  textField(w, CONTEXT.description.number, m.description);
  varintField(w, CONTEXT.type.number, m.type);
  varintField(w, CONTEXT.status.number, m.status);
  varintField(w, CONTEXT.lifecycleStage.number, m.lifecycleStage);
  const c = m.configuration;
  if (c !== undefined) {
    w.tag(CONTEXT.configuration.number, LD).fork();
    if (c.maxParticipants !== undefined) w.tag(CONFIGURATION.maxParticipants.number, WireType.Varint).int32(c.maxParticipants);
    if (c.maxSessions !== undefined) w.tag(CONFIGURATION.maxSessions.number, WireType.Varint).int32(c.maxSessions);
    if (c.timeoutMs !== undefined) w.tag(CONFIGURATION.timeoutMs.number, WireType.Varint).int64(c.timeoutMs);
    varintField(w, CONFIGURATION.persistenceLevel.number, c.persistenceLevel);
    varintField(w, CONFIGURATION.isolationLevel.number, c.isolationLevel);
    if (c.autoCleanup !== undefined) w.tag(CONFIGURATION.autoCleanup.number, WireType.Varint).bool(c.autoCleanup);
    if (c.cleanupDelayMs !== undefined) w.tag(CONFIGURATION.cleanupDelayMs.number, WireType.Varint).int64(c.cleanupDelayMs);
    w.join();
  }
  const a = m.accessControl;
  if (a !== undefined) {
    w.tag(CONTEXT.accessControl.number, LD).fork();
    textField(w, ACCESS.owner.number, a.owner);
    varintField(w, ACCESS.visibility.number, a.visibility);
    varintField(w, ACCESS.joinPolicy.number, a.joinPolicy);
    textField(w, ACCESS.defaultRole.number, a.defaultRole);
    textsField(w, ACCESS.requiredCapabilities.number, a.requiredCapabilities);
    textsField(w, ACCESS.requiredRoles.number, a.requiredRoles);
    w.join();
  }
  if (m.sharedState !== undefined) w.tag(CONTEXT.sharedState.number, LD).bytes(encodeSharedState(m.sharedState));
  const md = m.metadata;
  if (md !== undefined) {
    w.tag(CONTEXT.metadata.number, LD).fork();
    textsField(w, METADATA.tags.number, md.tags);
    textField(w, METADATA.category.number, md.category);
    varintField(w, METADATA.priority.number, md.priority);
    structField(w, METADATA.customData.number, md.customData);
    w.join();
  }
  varintField(w, CONTEXT.participantCount.number, m.participantCount);
  varintField(w, CONTEXT.sessionCount.number, m.sessionCount);
  if (m.revision !== 0n) w.tag(CONTEXT.revision.number, WireType.Varint).int64(m.revision);
  timestampField(w, CONTEXT.createdAt.number, m.createdAt);
  timestampField(w, CONTEXT.updatedAt.number, m.updatedAt);
  timestampField(w, CONTEXT.lastActivityAt.number, m.lastActivityAt);
  timestampField(w, CONTEXT.expiresAt.number, m.expiresAt);
  return w.finish();
}

/**
 * toBinary of a write's answer (CreateContext, UpdateContext, TransitionContext: a context as
 * field 1 and nothing else), byte for byte.
 */
export function encodeContextAnswer(m: Pick<CreateContextResponse, "context">): Uint8Array {
  const w = new BinaryWriter();
  // Not kept: an answer's context is a new message, mostly not sent again.
  if (m.context !== undefined) w.tag(CreateContextResponseSchema.field.context.number, LD).bytes(encodeContextMessage(m.context));
  return w.finish();
}

const LIST = ListContextsResponseSchema.field;
const GET = GetContextResponseSchema.field;

/** toBinary(ListContextsResponseSchema, m), byte for byte, with each context's encoding reused. */
export function encodeListContextsResponse(m: ListContextsResponse): Uint8Array {
  const w = new BinaryWriter();
  for (const c of m.contexts) w.tag(LIST.contexts.number, LD).bytes(encodeContext(c));
  if (m.nextPageToken !== "") w.tag(LIST.nextPageToken.number, LD).string(m.nextPageToken);
  if (m.totalSize !== 0) w.tag(LIST.totalSize.number, WireType.Varint).int32(m.totalSize);
  return w.finish();
}

/** toBinary(GetContextResponseSchema, m), byte for byte, with the context's encoding reused. */
export function encodeGetContextResponse(m: GetContextResponse): Uint8Array {
  const w = new BinaryWriter();
  if (m.context !== undefined) w.tag(GET.context.number, LD).bytes(encodeContext(m.context));
  participantsField(w, GET.participants.number, m.participants);
  return w.finish();
}
