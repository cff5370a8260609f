/**
 * One readable line per event, for `events` and `watch`:
 *   `#7 2025-05-01T10:00:00.000Z context.state.changed by alice: set plan.step=2, delete draft`
 * The revision leads so a person (or grep) can see at a glance that none is missing or repeated.
 */
import { toJson } from "@bufbuild/protobuf";
import { ValueSchema } from "@bufbuild/protobuf/wkt";
import { ContextStatus, ContextType, LifecycleStage } from "../../gen/mplp/context/v1/context_pb.js";
import { ContextEventType, type ContextEvent } from "../../gen/mplp/context/v1/event_pb.js";
import { ParticipantStatus } from "../../gen/mplp/context/v1/participant_pb.js";
import { StateOperation } from "../../gen/mplp/context/v1/shared_state_pb.js";
import { enumName, timeOf, type Colour, type Output } from "./output.js";

/** Green for arrivals, red for departures, yellow for changes, cyan for status. */
const COLOURS: Partial<Record<ContextEventType, Colour>> = {
  [ContextEventType.CONTEXT_CREATED]: "green",
  [ContextEventType.PARTICIPANT_JOINED]: "green",
  [ContextEventType.CONTEXT_DELETED]: "red",
  [ContextEventType.PARTICIPANT_LEFT]: "red",
  [ContextEventType.CONTEXT_UPDATED]: "yellow",
  [ContextEventType.STATE_CHANGED]: "yellow",
  [ContextEventType.PARTICIPANT_UPDATED]: "yellow",
  [ContextEventType.CONTEXT_STATUS_CHANGED]: "cyan",
};

/** What changed, in a few words: the payload's gist. */
export function summaryOf(event: ContextEvent): string {
  const payload = event.payload;
  switch (payload.case) {
    case "stateChange": {
      const parts = payload.value.changes.map((c) =>
        c.operation === StateOperation.DELETE ? `delete ${c.path}` : `set ${c.path}=${c.value === undefined ? "null" : JSON.stringify(toJson(ValueSchema, c.value))}`,
      );
      for (const path of payload.value.updateMask?.paths ?? []) parts.push(`replace ${path}`);
      return parts.join(", ");
    }
    case "participant": {
      const p = payload.value;
      return `agent=${p.agentId} participant=${p.participantId} status=${enumName(ParticipantStatus, p.status)}${p.roles.length > 0 ? ` roles=${p.roles.join(",")}` : ""}`;
    }
    case "context": {
      const c = payload.value;
      if (event.type === ContextEventType.CONTEXT_STATUS_CHANGED) return `status=${enumName(ContextStatus, c.status)} stage=${enumName(LifecycleStage, c.lifecycleStage)}`;
      if (event.type === ContextEventType.CONTEXT_DELETED) return `"${c.name}"`;
      return `"${c.name}" type=${enumName(ContextType, c.type)} status=${enumName(ContextStatus, c.status)}`;
    }
    default:
      return "";
  }
}

/** The line for one event. */
export function eventLine(event: ContextEvent, out: Output): string {
  const name = event.name !== "" ? event.name : enumName(ContextEventType, event.type);
  const colour = COLOURS[event.type];
  const summary = summaryOf(event);
  const reason = event.reason === "" ? "" : ` (reason: ${event.reason})`;
  return [
    out.paint("bold", `#${event.revision}`),
    out.paint("dim", timeOf(event.occurredAt)),
    colour === undefined ? name : out.paint(colour, name),
    `by ${event.actor === "" ? "-" : event.actor}${summary === "" ? "" : `: ${summary}`}${reason}`,
  ].join(" ");
}
