/**
 * What a shared state's size costs a write: UpdateSharedState of one variable, one call at a time,
 * on a context whose state holds `kb` KB of other variables (300 keys per 30 KB, each a small
 * object), against a server already running. Prints the latency (p50 / p95) and, given the
 * server's pid, its CPU per call from /proc over the measured calls (user and system).
 *   node --import tsx bench/ops/state-size.ts <host:port> [server pid] [calls] [kb]
 * Start the server as the bench does (`node dist/src/main.js`, GRPC_PORT, DATABASE_URL, REDIS_URL)
 * and run the same command against two builds in turn for an A/B: one call in flight is where
 * every fixed cost per call shows, and the machine's noise moves the two alike.
 */
import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { create } from "@bufbuild/protobuf";
import { ValueSchema, type Value } from "@bufbuild/protobuf/wkt";
import { ContextType } from "../../gen/mplp/context/v1/context_pb.js";
import { StateOperation } from "../../gen/mplp/context/v1/shared_state_pb.js";
import { connect } from "../../src/sdk/index.js";
import type { JsonValue } from "../../src/domain/json.js";
import { valueOut } from "../../src/transport/proto-values.js";

const [address = "127.0.0.1:50051", pidArg = "0", callsArg = "1500", kbArg = "30"] = process.argv.slice(2);
const pid = Number(pidArg);
const calls = Number(callsArg);
const kb = Number(kbArg);

/** The server's user and system CPU so far, in ms (clock ticks of 10 ms). */
function serverCpu(): { user: number; system: number } | undefined {
  if (!(pid > 0)) return undefined;
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return { user: Number(fields[11]) * 10, system: Number(fields[12]) * 10 };
}

const client = connect({ address, principal: "bench" });
const made = await client.contexts.createContext({ context: { name: `state-size-${randomUUID()}`, type: ContextType.COLLABORATIVE } });
const contextId = made.context!.contextId;
if (kb > 0) {
  const blob: Record<string, JsonValue> = {};
  for (let i = 0; i < Math.round((kb * 300) / 30); i++) blob[`key-${i}`] = { text: `${"x".repeat(60)}${i}`, n: i, flag: i % 2 === 0 };
  await client.contexts.updateSharedState({ contextId, changes: [{ operation: StateOperation.SET, path: "blob", value: valueOut(blob) }] });
}
const step = (i: number): Value => create(ValueSchema, { kind: { case: "numberValue", value: i } });

// A warm-up round, then the measured one.
for (const round of ["warm-up", "measured"]) {
  const latencies: number[] = [];
  const before = serverCpu();
  const started = performance.now();
  for (let i = 0; i < calls; i++) {
    const sent = performance.now();
    await client.contexts.updateSharedState({ contextId, changes: [{ operation: StateOperation.SET, path: "plan.step", value: step(i) }] });
    latencies.push(performance.now() - sent);
  }
  const seconds = (performance.now() - started) / 1000;
  const after = serverCpu();
  latencies.sort((a, b) => a - b);
  const at = (p: number): string => latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))]!.toFixed(2);
  const cpu =
    before === undefined || after === undefined
      ? ""
      : `; server CPU per call ${((after.user + after.system - before.user - before.system) / calls).toFixed(3)} ms (system ${((after.system - before.system) / calls).toFixed(3)})`;
  console.log(`${round}: ${kb} KB state, ${calls} calls, ${(calls / seconds).toFixed(0)}/s, p50 ${at(0.5)} / p95 ${at(0.95)} ms${cpu}`);
}
await client.close();
