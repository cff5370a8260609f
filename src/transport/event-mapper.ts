/** ContextEvent, domain → proto: the type enum, its MPLP name, and the payload oneof. */
import { create } from "@bufbuild/protobuf";
import {
  ContextEventSchema,
  ContextEventTypeSchema,
  type ContextEvent as ProtoContextEvent,
} from "../../gen/mplp/context/v1/event_pb.js";
import { EVENT_NAMES, type ContextEvent, type ContextEventType, type EventPayload } from "../domain/event.js";
import { contextOut } from "./context-mapper.js";
import { participantOut } from "./participant-mapper.js";
import { stateChangeSetOut } from "./shared-state-mapper.js";
import { enumIn, enumOut, int64Out, timestampOut } from "./proto-values.js";

function payloadOut(payload: EventPayload): ProtoContextEvent["payload"] {
  switch (payload.kind) {
    case "context":
      return { case: "context", value: contextOut(payload.context) };
    case "participant":
      return { case: "participant", value: participantOut(payload.participant) };
    case "state":
      return { case: "stateChange", value: stateChangeSetOut(payload.state) };
  }
}

/** A domain event as the proto message; `name` is the MPLP event name (`context.created`). */
export function eventOut(event: ContextEvent): ProtoContextEvent {
  return create(ContextEventSchema, {
    contextId: event.contextId,
    revision: int64Out(event.revision),
    eventId: event.eventId,
    type: enumOut(ContextEventTypeSchema, event.type),
    name: EVENT_NAMES[event.type],
    actor: event.actor,
    occurredAt: timestampOut(event.occurredAt),
    reason: event.reason,
    payload: payloadOut(event.payload),
  });
}

/** The domain event type of a proto enum value; undefined for UNSPECIFIED, `UNKNOWN(n)` for a number this build does not know. */
export function eventTypeIn(type: ProtoContextEvent["type"]): ContextEventType | `UNKNOWN(${number})` | undefined {
  return enumIn(ContextEventTypeSchema, type) as ContextEventType | `UNKNOWN(${number})` | undefined;
}
