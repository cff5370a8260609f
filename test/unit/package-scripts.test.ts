/**
 * npm runs a script as `sh -c "<script>"` and, on SIGTERM, signals that shell, which does not pass
 * it on: a script that starts a long-lived node without `exec` leaves node running when its pid is
 * killed (`kill <pid of npm run cli -- watch>`), and `npm start` would never drain gracefully.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";

const { scripts } = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { scripts: Record<string, string> };

/** Scripts that run a process until it is stopped: the server, the CLI (watch, keepalive), the benchmarks. */
const LONG_LIVED = ["start", "cli", "bench", "bench:fanout", "bench:ghz"];

describe("package.json scripts", () => {
  it.each(LONG_LIVED)("%s replaces the shell with node (exec), so a signal to npm's child reaches node", (name) => {
    const script = scripts[name];
    expect(script, `script ${name}`).toBeDefined();
    // The last command of the script (after any `&&` build step) is `exec node …`.
    expect(script!.split("&&").at(-1)!.trim()).toMatch(/^exec node /);
  });
});
