/**
 * The Context message of a read, mapped and encoded once per version of the context instead of
 * once per call. A cached GetContext and every ListContexts page send contexts that were mostly
 * sent before; protobuf-es maps and encodes reflectively, which cost most of such a call's CPU.
 *
 * A context's version is its id, revision and the bookkeeping that moves without a revision (last
 * activity and expiry: the sweeper keeps a context alive): every other field changes only with a
 * revision. Views with the shared state (FULL) are not kept: the state may be large.
 */
import { create, toBinary } from "@bufbuild/protobuf";
import type { Timestamp } from "@bufbuild/protobuf/wkt";
import { BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
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
import { ParticipantSchema } from "../../gen/mplp/context/v1/participant_pb.js";
import { SharedStateSchema } from "../../gen/mplp/context/v1/shared_state_pb.js";
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
    bytes = encodeContextMessage(message);
    encoded.set(message, bytes);
  }
  return bytes;
}

const CONTEXT = ContextSchema.field;
const CONFIGURATION = ContextConfigurationSchema.field;
const ACCESS = AccessControlSchema.field;
const METADATA = ContextMetadataSchema.field;
const LD = WireType.LengthDelimited;

function timestamp(w: BinaryWriter, field: number, t: Timestamp | undefined): void {
  if (t === undefined) return;
  w.tag(field, LD).fork();
  if (t.seconds !== 0n) w.tag(1, WireType.Varint).int64(t.seconds);
  if (t.nanos !== 0) w.tag(2, WireType.Varint).int32(t.nanos);
  w.join();
}

function varint(w: BinaryWriter, field: number, value: number): void {
  if (value !== 0) w.tag(field, WireType.Varint).int32(value);
}

function text(w: BinaryWriter, field: number, value: string): void {
  if (value !== "") w.tag(field, LD).string(value);
}

/**
 * toBinary(ContextSchema, m), byte for byte (fields in number order, proto3 defaults left out,
 * `optional` fields written when set), by hand: the reflective encoder was a tenth of a write's
 * CPU. The shared state and custom_data (Struct) still go through toBinary: they are open JSON.
 */
export function encodeContextMessage(m: ProtoContext): Uint8Array {
  const w = new BinaryWriter();
  text(w, CONTEXT.contextId.number, m.contextId);
  text(w, CONTEXT.name.number, m.name);
  text(w, CONTEXT.description.number, m.description);
  varint(w, CONTEXT.type.number, m.type);
  varint(w, CONTEXT.status.number, m.status);
  varint(w, CONTEXT.lifecycleStage.number, m.lifecycleStage);
  const c = m.configuration;
  if (c !== undefined) {
    w.tag(CONTEXT.configuration.number, LD).fork();
    if (c.maxParticipants !== undefined) w.tag(CONFIGURATION.maxParticipants.number, WireType.Varint).int32(c.maxParticipants);
    if (c.maxSessions !== undefined) w.tag(CONFIGURATION.maxSessions.number, WireType.Varint).int32(c.maxSessions);
    if (c.timeoutMs !== undefined) w.tag(CONFIGURATION.timeoutMs.number, WireType.Varint).int64(c.timeoutMs);
    varint(w, CONFIGURATION.persistenceLevel.number, c.persistenceLevel);
    varint(w, CONFIGURATION.isolationLevel.number, c.isolationLevel);
    if (c.autoCleanup !== undefined) w.tag(CONFIGURATION.autoCleanup.number, WireType.Varint).bool(c.autoCleanup);
    if (c.cleanupDelayMs !== undefined) w.tag(CONFIGURATION.cleanupDelayMs.number, WireType.Varint).int64(c.cleanupDelayMs);
    w.join();
  }
  const a = m.accessControl;
  if (a !== undefined) {
    w.tag(CONTEXT.accessControl.number, LD).fork();
    text(w, ACCESS.owner.number, a.owner);
    varint(w, ACCESS.visibility.number, a.visibility);
    varint(w, ACCESS.joinPolicy.number, a.joinPolicy);
    text(w, ACCESS.defaultRole.number, a.defaultRole);
    for (const v of a.requiredCapabilities) w.tag(ACCESS.requiredCapabilities.number, LD).string(v);
    for (const v of a.requiredRoles) w.tag(ACCESS.requiredRoles.number, LD).string(v);
    w.join();
  }
  if (m.sharedState !== undefined) w.tag(CONTEXT.sharedState.number, LD).bytes(toBinary(SharedStateSchema, m.sharedState));
  const md = m.metadata;
  if (md !== undefined) {
    w.tag(CONTEXT.metadata.number, LD).fork();
    for (const v of md.tags) w.tag(METADATA.tags.number, LD).string(v);
    text(w, METADATA.category.number, md.category);
    varint(w, METADATA.priority.number, md.priority);
    // custom_data is the last field: its encoding alone is what toBinary writes after the others.
    if (md.customData !== undefined) w.raw(toBinary(ContextMetadataSchema, create(ContextMetadataSchema, { customData: md.customData })));
    w.join();
  }
  varint(w, CONTEXT.participantCount.number, m.participantCount);
  varint(w, CONTEXT.sessionCount.number, m.sessionCount);
  if (m.revision !== 0n) w.tag(CONTEXT.revision.number, WireType.Varint).int64(m.revision);
  timestamp(w, CONTEXT.createdAt.number, m.createdAt);
  timestamp(w, CONTEXT.updatedAt.number, m.updatedAt);
  timestamp(w, CONTEXT.lastActivityAt.number, m.lastActivityAt);
  timestamp(w, CONTEXT.expiresAt.number, m.expiresAt);
  return w.finish();
}

/**
 * toBinary of a write's answer (CreateContext, UpdateContext, TransitionContext: a context as
 * field 1 and nothing else), byte for byte.
 */
export function encodeContextAnswer(m: Pick<CreateContextResponse, "context">): Uint8Array {
  const w = new BinaryWriter();
  const c = m.context;
  // Not kept: an answer's context is new, and mostly not sent again.
  if (c !== undefined) w.tag(CreateContextResponseSchema.field.context.number, LD).bytes(encoded.get(c) ?? encodeContextMessage(c));
  return w.finish();
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
