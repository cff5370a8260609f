import { readFileSync } from "node:fs";
import { connect } from "../src/sdk/index.js";
const [address, pidArg, callsArg] = process.argv.slice(2);
const pid = Number(pidArg); const calls = Number(callsArg);
const cpu = () => { const f = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" "); return (Number(f[11]) + Number(f[12])) * 10; };
const client = connect({ address: address!, principal: "bench" });
for (const phase of ["warm-up", "measured"]) {
  const c0 = cpu(); const t0 = performance.now(); const lat: number[] = [];
  for (let i = 0; i < calls; i++) { const s = performance.now(); await client.contexts.getContext({ contextId: "00000000-0000-4000-8000-000000000000" }); lat.push(performance.now() - s); }
  lat.sort((a, b) => a - b);
  console.log(`${phase}: ${(calls / ((performance.now() - t0) / 1000)).toFixed(0)}/s p50 ${lat[calls >> 1]!.toFixed(2)} ms; server CPU/call ${((cpu() - c0) / calls).toFixed(3)} ms`);
}
client.close();
