#!/usr/bin/env node
/**
 * The `mplp-context` bin (package.json "bin"): runs the CLI of run.ts with the process's arguments.
 * The exit code is set, not forced, so a piped `--json` answer is flushed whole before the process ends.
 */
import { run } from "./run.js";

run(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`mplp-context: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  },
);
