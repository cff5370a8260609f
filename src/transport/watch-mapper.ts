/** WatchMessage (the hub's) → WatchContextResponse and WatchResponse (the wire's). */
import { create } from "@bufbuild/protobuf";
import {
  WatchContextResponseSchema,
  WatchEventsSchema,
  WatchProgressSchema,
  WatchResponseSchema,
  WatchSnapshotSchema,
  type WatchContextResponse,
  type WatchEvents,
  type WatchResponse,
} from "../../gen/mplp/context/v1/context_service_pb.js";
import type { ContextEvent } from "../domain/event.js";
import type { WatchMessage } from "../service/watch-types.js";
import { contextOut } from "./context-mapper.js";
import { failureFieldsOf } from "./error-status.js";
import { eventOut } from "./event-mapper.js";
import { participantOut } from "./participant-mapper.js";
import { int64Out } from "./proto-values.js";

/**
 * The hub hands the same events array of a revision to every watcher of the context, so its proto
 * form is built once per revision, not once per stream or watch; entries go with the array.
 */
const eventsCache = new WeakMap<readonly ContextEvent[], { events: WatchEvents; response: WatchContextResponse }>();

function eventsOut(events: readonly ContextEvent[], revision: number): { events: WatchEvents; response: WatchContextResponse } {
  let entry = eventsCache.get(events);
  if (entry === undefined) {
    const value = create(WatchEventsSchema, { revision: int64Out(revision), events: events.map(eventOut) });
    entry = { events: value, response: create(WatchContextResponseSchema, { response: { case: "events", value } }) };
    eventsCache.set(events, entry);
  }
  return entry;
}

/** The oneof both responses share (snapshot, events, progress), built as WatchContextResponse's. */
function payloadOut(message: WatchMessage): WatchContextResponse["response"] {
  switch (message.kind) {
    case "snapshot":
      return {
        case: "snapshot",
        value: create(WatchSnapshotSchema, {
          context: contextOut(message.context),
          participants: message.participants.map(participantOut),
          revision: int64Out(message.revision),
        }),
      };
    case "events":
      return { case: "events", value: eventsOut(message.events, message.revision).events };
    case "progress":
      return { case: "progress", value: create(WatchProgressSchema, { revision: int64Out(message.revision) }) };
  }
}

export function watchResponseOut(message: WatchMessage): WatchContextResponse {
  if (message.kind === "events") return eventsOut(message.events, message.revision).response;
  return create(WatchContextResponseSchema, { response: payloadOut(message) });
}

/**
 * One watch's message on a Watch stream; the payload (an events message above all) is shared by every
 * watch of it. A message literal, not create(): this runs once per delivery (1,000 times a revision
 * with 1,000 watches of a context), and create()'s reflective walk was 7 % of the server's busy time.
 */
export function watchStreamResponseOut(watchId: bigint, message: WatchMessage): WatchResponse {
  return { $typeName: "mplp.context.v1.WatchResponse", watchId, response: payloadOut(message) };
}

/** The watch exists (sent before its first message). */
export function watchCreatedOut(watchId: bigint): WatchResponse {
  return create(WatchResponseSchema, { watchId, response: { case: "created", value: {} } });
}

/**
 * The watch ended: `error` undefined for an end the client expects (code OK with `reason`:
 * CANCELLED when it asked, CONTEXT_DELETED after that event), otherwise the code, reason, message
 * and metadata WatchContext would have ended with.
 */
export function watchCanceledOut(watchId: bigint, end: { readonly error: unknown } | { readonly reason: string; readonly message: string }): WatchResponse {
  const value = "error" in end ? failureFieldsOf(end.error) : { code: 0, reason: end.reason, message: end.message, metadata: {} };
  return create(WatchResponseSchema, { watchId, response: { case: "canceled", value } });
}
