/**
 * The stamp that makes commit→delivery latency measurable: each commit SETs `bench.t` to the
 * writer's wall-clock time (epoch ms with a fraction) just before sending, and each watcher
 * subtracts it from the time the revision reaches it. Writers, watchers, our server and the bare
 * server all run on this machine, so one clock serves all of them.
 */
import { create } from "@bufbuild/protobuf";
import { ValueSchema } from "@bufbuild/protobuf/wkt";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { UpdateSharedStateRequest, UpdateSharedStateRequestSchema, WatchContextResponse, WatchResponse } from "../../gen/mplp/context/v1/context_service_pb.js";
import { StateOperation } from "../../gen/mplp/context/v1/shared_state_pb.js";

/** The variable every benchmark commit sets. */
export const STAMP_PATH = "bench.t";

/**
 * Wall-clock now in epoch milliseconds with a sub-millisecond fraction. `performance.timeOrigin`
 * is per thread but taken from the same wall clock, so values compare across threads and processes.
 */
export function wallClockMs(): number {
  return performance.timeOrigin + performance.now();
}

/** The UpdateSharedState request of one commit: a single SET of the stamp. */
export function stampedUpdate(contextId: string, stampMs: number): MessageInitShape<typeof UpdateSharedStateRequestSchema> {
  return {
    contextId,
    changes: [{ operation: StateOperation.SET, path: STAMP_PATH, value: create(ValueSchema, { kind: { case: "numberValue", value: stampMs } }) }],
  };
}

/** The stamp of a commit request (the bare server echoes it), or undefined when there is none. */
export function stampOfRequest(request: UpdateSharedStateRequest): number | undefined {
  const change = request.changes.find((c) => c.path === STAMP_PATH);
  return change?.value?.kind.case === "numberValue" ? change.value.kind.value : undefined;
}

/** What a watcher learns from one message: the revision and the stamp of a state change. */
export interface Delivery {
  readonly revision: number;
  readonly stampMs: number | undefined;
}

/** The revision and stamp of an `events` message (of either watch RPC); undefined for anything else. */
export function deliveryOf(message: WatchContextResponse | WatchResponse): Delivery | undefined {
  if (message.response.case !== "events") return undefined;
  const { revision, events } = message.response.value;
  let stampMs: number | undefined;
  for (const event of events) {
    if (event.payload.case !== "stateChange") continue;
    for (const change of event.payload.value.changes) {
      if (change.path === STAMP_PATH && change.value?.kind.case === "numberValue") stampMs = change.value.kind.value;
    }
  }
  return { revision: Number(revision), stampMs };
}
