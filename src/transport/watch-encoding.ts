/**
 * WatchResponse (a Watch stream's message for one watch), encoded with its revision's events
 * encoded once. The hub hands every watch of a context the same events message (watch-mapper.ts),
 * but each watch wraps it in a response of its own watch_id, so the adapter's per-object
 * encoding cache does not reach it: without this, a revision watched N times on a stream is
 * encoded N times. An events response — every delivery — is written straight into one buffer of
 * its size (a BinaryWriter's chunks, and its copy on finish, were a tenth of the server's CPU with
 * 1,000 watches of one context). Equal to toBinary byte for byte
 * (test/unit/transport/watch-encoding.test.ts).
 */
import { toBinary } from "@bufbuild/protobuf";
import { BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import { WatchEventsSchema, WatchResponseSchema, type WatchEvents, type WatchResponse } from "../../gen/mplp/context/v1/context_service_pb.js";
import { oncePerObject } from "./once-per-object.js";

const FIELD = WatchResponseSchema.field;

const eventsBytes = oncePerObject((events: WatchEvents): Uint8Array => toBinary(WatchEventsSchema, events));

const WATCH_ID_TAG = (FIELD.watchId.number << 3) | WireType.Varint;
const EVENTS_TAG = (FIELD.events.number << 3) | WireType.LengthDelimited;
/** Watch ids up to here are written as numbers; larger (and negative) ones by protobuf-es's writer. */
const MAX_NUMBER_ID = BigInt(Number.MAX_SAFE_INTEGER);
// Both tags are one byte (field numbers below 16), which the offsets below count on.
if (WATCH_ID_TAG > 0x7f || EVENTS_TAG > 0x7f) throw new Error("WatchResponse's field numbers no longer fit a one-byte tag");

/** Bytes of `value` (0 ≤ value < 2^53) as a varint. */
function varintSize(value: number): number {
  let size = 1;
  while (value >= 0x80) {
    value = Math.floor(value / 0x80);
    size++;
  }
  return size;
}

function writeVarint(out: Uint8Array, at: number, value: number): number {
  while (value >= 0x80) {
    out[at++] = (value % 0x80) | 0x80;
    value = Math.floor(value / 0x80);
  }
  out[at++] = value;
  return at;
}

/** toBinary(WatchResponseSchema, m), byte for byte, with an events payload's encoding reused. */
export function encodeWatchResponse(m: WatchResponse): Uint8Array {
  if (m.response.case !== "events") return toBinary(WatchResponseSchema, m);
  const events = eventsBytes(m.response.value);
  if (m.watchId < 0n || m.watchId > MAX_NUMBER_ID) {
    const w = new BinaryWriter();
    if (m.watchId !== 0n) w.tag(FIELD.watchId.number, WireType.Varint).int64(m.watchId);
    return w.tag(FIELD.events.number, WireType.LengthDelimited).bytes(events).finish();
  }
  const watchId = Number(m.watchId);
  const idSize = watchId === 0 ? 0 : 1 + varintSize(watchId);
  // From Node's buffer pool, as a plain Uint8Array like toBinary's (the adapter views it as a Buffer again).
  const pooled = Buffer.allocUnsafe(idSize + 1 + varintSize(events.length) + events.length);
  const out = new Uint8Array(pooled.buffer, pooled.byteOffset, pooled.length);
  let at = 0;
  if (watchId !== 0) {
    out[at++] = WATCH_ID_TAG;
    at = writeVarint(out, at, watchId);
  }
  out[at++] = EVENTS_TAG;
  at = writeVarint(out, at, events.length);
  out.set(events, at);
  return out;
}
