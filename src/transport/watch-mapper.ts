/** WatchMessage (the hub's) → WatchContextResponse (the wire's). */
import { create } from "@bufbuild/protobuf";
import { WatchContextResponseSchema, type WatchContextResponse } from "../../gen/mplp/context/v1/context_service_pb.js";
import type { ContextEvent } from "../domain/event.js";
import type { WatchMessage } from "../service/watch-types.js";
import { contextOut } from "./context-mapper.js";
import { eventOut } from "./event-mapper.js";
import { participantOut } from "./participant-mapper.js";
import { int64Out } from "./proto-values.js";

/**
 * The hub hands the same events array of a revision to every watcher of the context, so its proto
 * form is built once per revision, not once per stream; entries go with the array.
 */
const eventsCache = new WeakMap<readonly ContextEvent[], WatchContextResponse>();

export function watchResponseOut(message: WatchMessage): WatchContextResponse {
  switch (message.kind) {
    case "snapshot":
      return create(WatchContextResponseSchema, {
        response: {
          case: "snapshot",
          value: {
            context: contextOut(message.context),
            participants: message.participants.map(participantOut),
            revision: int64Out(message.revision),
          },
        },
      });
    case "events": {
      let response = eventsCache.get(message.events);
      if (response === undefined) {
        response = create(WatchContextResponseSchema, {
          response: { case: "events", value: { revision: int64Out(message.revision), events: message.events.map(eventOut) } },
        });
        eventsCache.set(message.events, response);
      }
      return response;
    }
    case "progress":
      return create(WatchContextResponseSchema, { response: { case: "progress", value: { revision: int64Out(message.revision) } } });
  }
}
