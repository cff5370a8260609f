/**
 * The Docker image's HEALTHCHECK script (deploy/docker/grpc-health-probe.mjs) asks real gRPC
 * health: exit 0 against a serving app, exit 1 once that app has stopped.
 */
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { startTestApp } from "./support/app.js";

const run = promisify(execFile);
const PROBE = "deploy/docker/grpc-health-probe.mjs";

async function probe(address: string): Promise<{ code: number; stderr: string }> {
  try {
    await run(process.execPath, [PROBE, address], { timeout: 10_000 });
    return { code: 0, stderr: "" };
  } catch (error) {
    const failed = error as { code?: number; stderr?: string };
    return { code: failed.code ?? -1, stderr: failed.stderr ?? "" };
  }
}

describe("grpc-health-probe.mjs (the image's HEALTHCHECK)", () => {
  it("exits 0 for a SERVING server and 1 once it has stopped", async () => {
    const app = await startTestApp({ PGLITE_DATA_DIR: "memory://" });
    const address = `127.0.0.1:${app.port}`;
    try {
      expect(await probe(address)).toEqual({ code: 0, stderr: "" });
    } finally {
      await app.stop();
    }
    const after = await probe(address);
    expect(after.code).toBe(1);
    expect(after.stderr).toContain("unhealthy");
  });
});
