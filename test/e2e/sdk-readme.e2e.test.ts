/**
 * The README's SDK example is a program, not prose: this takes the code block after the
 * `sdk-example` marker, points its `import … from "mplp-context"` at the SDK's source (the
 * package's `exports` point at the build of the same file), runs it with tsx against a live server
 * process, and checks what it printed.
 */
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startServerProcess, type ServerProcess } from "./support/process.js";

const root = new URL("../../", import.meta.url);
const readme = readFileSync(new URL("README.md", root), "utf8");
const example = /<!-- sdk-example[^>]*-->\s*```ts\n([\s\S]*?)\n```/.exec(readme)?.[1];
const pkg = JSON.parse(readFileSync(new URL("package.json", root), "utf8")) as { exports: Record<string, { default: string }>; bin: Record<string, string> };

describe("README's SDK example", () => {
  let server: ServerProcess;
  let dir: string;

  beforeAll(async () => {
    server = await startServerProcess({ PGLITE_DATA_DIR: "memory://" });
    dir = await mkdtemp(join(tmpdir(), "mplp-readme-"));
  });

  afterAll(async () => {
    await server?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("is there, about 20 lines, and imports the package by name", () => {
    expect(example, "a ```ts block after <!-- sdk-example --> in README.md").toBeDefined();
    expect(example!.split("\n").length).toBeLessThanOrEqual(30);
    expect(example).toContain('from "mplp-context"');
    // The name resolves to the built SDK and CLI.
    expect(pkg.exports["."]?.default).toBe("./dist/src/sdk/index.js");
    expect(pkg.bin["mplp-context"]).toBe("dist/src/cli/main.js");
  });

  it("runs against a live server and prints every revision and the final state", async () => {
    const sdk = pathToFileURL(join(root.pathname, "src/sdk/index.ts")).href;
    const file = join(dir, "example.mts");
    await writeFile(file, example!.replaceAll('from "mplp-context"', `from ${JSON.stringify(sdk)}`));
    const run = spawnSync(process.execPath, ["--import", "tsx", file], {
      cwd: root.pathname,
      encoding: "utf8",
      env: { PATH: process.env["PATH"] ?? "", MPLP_ADDR: server.address },
      timeout: 60_000,
    });
    expect(run.status, `${run.stdout}\n${run.stderr}`).toBe(0);
    expect(run.stdout.trim().split("\n")).toEqual([
      "#1 context.created",
      "#2 context.participant.joined",
      "#3 context.state.changed",
      "#4 context.state.changed",
      "step = 2 at revision 4",
    ]);
  }, 90_000);
});
