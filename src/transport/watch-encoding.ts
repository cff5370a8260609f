/**
 * WatchResponse (a Watch stream's message for one watch), encoded with its revision's events
 * encoded once. The hub hands every watch of a context the same events message (watch-mapper.ts),
 * but each watch wraps it in a response of its own watch_id, so the adapter's per-object
 * encoding cache does not reach it: without this, a revision watched N times on a stream is
 * encoded N times. Equal to toBinary byte for byte (test/unit/transport/watch-encoding.test.ts).
 */
import { toBinary } from "@bufbuild/protobuf";
import { BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import { WatchEventsSchema, WatchResponseSchema, type WatchEvents, type WatchResponse } from "../../gen/mplp/context/v1/context_service_pb.js";
import { oncePerObject } from "./once-per-object.js";

const FIELD = WatchResponseSchema.field;

const eventsBytes = oncePerObject((events: WatchEvents): Uint8Array => toBinary(WatchEventsSchema, events));

/** toBinary(WatchResponseSchema, m), byte for byte, with an events payload's encoding reused. */
export function encodeWatchResponse(m: WatchResponse): Uint8Array {
  if (m.response.case !== "events") return toBinary(WatchResponseSchema, m);
  const w = new BinaryWriter();
  if (m.watchId !== 0n) w.tag(FIELD.watchId.number, WireType.Varint).int64(m.watchId);
  w.tag(FIELD.events.number, WireType.LengthDelimited).bytes(eventsBytes(m.response.value));
  return w.finish();
}
