/**
 * The contract from another language: examples/python/agent.py (stubs generated from proto/ at
 * test time with Debian's protoc and grpc_python_plugin) runs against a live server process and
 * prints what it did; this checks those lines. Without python3-grpcio and the compilers a
 * developer's run skips with a warning; under CI=true (where .ci/run installs them) it fails.
 */
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startServerProcess, type ServerProcess } from "./support/process.js";

/** Debian's python3 first: python3-grpcio installs for it, not for a pyenv or venv python3 on PATH. */
function findPython(): { python: string | undefined; missing: string[] } {
  const missing: string[] = [];
  for (const tool of ["protoc", "grpc_python_plugin"]) {
    if (spawnSync("sh", ["-c", `command -v ${tool}`]).status !== 0) missing.push(tool);
  }
  if (!existsSync("/usr/include/google/protobuf/timestamp.proto")) missing.push("libprotobuf-dev (google/protobuf/*.proto)");
  const python = ["/usr/bin/python3", "python3"].find((candidate) => spawnSync(candidate, ["-c", "import grpc, google.protobuf"]).status === 0);
  if (python === undefined) missing.push("python3 with grpcio and protobuf");
  return { python, missing };
}

const { python, missing } = findPython();
if (missing.length > 0) {
  const message = `Python agent test: missing ${missing.join(", ")} (apt-get install python3-grpcio python3-protobuf protobuf-compiler protobuf-compiler-grpc libprotobuf-dev)`;
  if (process.env["CI"] === "true") throw new Error(message);
  console.warn(`${message}: skipped`);
}

describe.skipIf(missing.length > 0)("the Python agent (examples/python)", () => {
  let server: ServerProcess;
  let stubs: string;

  beforeAll(async () => {
    stubs = await mkdtemp(join(tmpdir(), "mplp-py-stubs-"));
    const generated = spawnSync("bash", ["examples/python/generate_stubs.sh", stubs], { encoding: "utf8" });
    if (generated.status !== 0) throw new Error(`generate_stubs.sh failed:\n${generated.stderr}`);
    server = await startServerProcess({ PGLITE_DATA_DIR: "memory://" });
  });

  afterAll(async () => {
    await server?.stop();
    if (stubs) await rm(stubs, { recursive: true, force: true });
  });

  it("creates, joins, keeps alive, resolves a conflict, and watches without gap across a resume", () => {
    const run = spawnSync(python!, ["examples/python/agent.py", "--addr", server.address, "--principal", "py-agent", "--updates", "5"], {
      encoding: "utf8",
      env: { PATH: process.env["PATH"] ?? "", PYTHONPATH: stubs },
      timeout: 90_000,
    });
    const output = `${run.stdout}\n${run.stderr}`;
    expect(run.status, output).toBe(0);
    const lines = run.stdout.trim().split("\n");
    expect(lines[0], output).toMatch(/^created context [0-9a-f-]{36} at revision 1$/);
    expect(lines).toContainEqual(expect.stringMatching(/^joined context as participant [0-9a-f-]{36} with roles contributor$/));
    expect(lines).toContainEqual(expect.stringMatching(/^keepalive: participant [0-9a-f-]{36} is PARTICIPANT_STATUS_ACTIVE, lease until /));
    expect(lines).toContainEqual(expect.stringMatching(/^conflict: ABORTED SYNC_CONFLICT current_revision=\d+; re-reading and retrying$/));
    expect(lines.filter((l) => l.startsWith("update: counter="))).toHaveLength(5);
    expect(lines).toContainEqual(expect.stringMatching(/^watch: cancelling the stream after revision 3 to test resuming$/));
    expect(lines).toContain("watch: resuming from revision 4");
    // 1 created, 2 joined, 5 increments and 1 rival write: 8 revisions, each seen once, in order.
    expect(lines).toContain("watch: saw revisions 1..8 in order, no gap, no repeat, across 1 reconnect(s)");
    expect(lines).toContain("state: counter=5 at revision 8");
    expect(lines.at(-1)).toBe("done");
  }, 120_000);
});
