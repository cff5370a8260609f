/**
 * `npm run bench:ghz`: runs every bench/ghz/<operation>.json with ghz against a server that is
 * already running (BENCH_HOST, default each config's `host`). ghz is a Go binary with no npm
 * package; where it is not installed this says so and points to `npm run bench`, the Node driver
 * that reads the same configs.
 *
 * Before ghz sees a config, the ids it needs are seeded through the API and its `{{.ContextID}}` /
 * `{{.ParticipantID}}` placeholders (ours, not ghz's) are expanded into a `data` array — one element
 * per seeded id, which ghz round-robins over; ghz's own templates ({{newUUID}}, {{.RequestNumber}})
 * stay for ghz. Operations that use up their ids (delete, remove) get `total` = the ids seeded.
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { REPO_ROOT } from "../fanout/processes.js";
import { OPERATIONS } from "../ops/operations.js";
import { readConfig } from "../ops/scenario-config.js";
import { Seeder } from "../ops/seed-data.js";

function ghzInstalled(): boolean {
  return spawnSync("ghz", ["--version"], { stdio: "ignore" }).status === 0;
}

async function main(): Promise<number> {
  if (!ghzInstalled()) {
    console.error("ghz is not installed (https://ghz.sh; a Go binary, no npm package).\nRun `npm run bench` instead: the Node driver reads the same configs in bench/ghz/ and writes ghz's JSON report format.");
    return 1;
  }
  // The protoset ghz loads (`protoset` in every config), built from proto/ as it is now.
  const buf = spawnSync(join(REPO_ROOT, "node_modules", ".bin", "buf"), ["build", "proto", "--as-file-descriptor-set", "-o", "bench/ghz/mplp.protoset"], { cwd: REPO_ROOT, stdio: "inherit" });
  if (buf.status !== 0) return 1;
  const out = join(REPO_ROOT, "bench", "results", `ghz-${new Date().toISOString().replace(/[:.]/g, "-")}`);
  mkdirSync(out, { recursive: true });
  const scratch = mkdtempSync(join(tmpdir(), "mplp-ghz-"));
  const names = readdirSync(join(REPO_ROOT, "bench", "ghz")).filter((f) => f.endsWith(".json")).map((f) => f.slice(0, -5));
  let failures = 0;
  for (const name of names) {
    const config = readConfig(name);
    const host = process.env["BENCH_HOST"] ?? config.host ?? "127.0.0.1:50051";
    const operation = OPERATIONS.find((o) => o.name === name);
    const seeder = new Seeder(host);
    const durationS = Number.parseFloat(config.duration ?? "30");
    const members = await seeder.addMembers(await seeder.createContexts(200, 100), 10);
    const pool = { contexts: [...new Set(members.map((m) => m.contextId))].map((contextId) => ({ contextId })), members };
    const { items, consume } = await seeder.itemsFor(operation?.seedKind ?? "none", Math.ceil((config.rps ?? 500) * durationS * 1.1), pool);
    seeder.close();
    const template = JSON.stringify(config.data);
    const data = items.length === 0 ? config.data : items.map((item) => JSON.parse(template.replaceAll("{{.ContextID}}", item.contextId).replaceAll("{{.ParticipantID}}", item.participantId ?? "")) as unknown);
    const resolved: Record<string, unknown> = { ...config, host, data, protoset: join(REPO_ROOT, "bench", "ghz", "mplp.protoset"), output: join(out, `${name}.json`), format: "json" };
    if (consume) {
      delete resolved["duration"];
      resolved["total"] = items.length;
    }
    const file = join(scratch, `${name}.json`);
    writeFileSync(file, JSON.stringify(resolved));
    console.log(`ghz ${name} → ${join(out, `${name}.json`)}`);
    if (spawnSync("ghz", ["--config", file], { stdio: "inherit" }).status !== 0) failures++;
  }
  return failures === 0 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
