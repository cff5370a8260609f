/** A real pino logger (the app's, redaction included) whose JSON lines a test can read back. */
import { Writable } from "node:stream";
import { createLogger, type Logger } from "../../../src/logger.js";

export interface CapturedLog {
  readonly logger: Logger;
  /** Raw lines, as they would reach stdout. */
  readonly lines: string[];
  /** Parsed lines. */
  entries(): Array<Record<string, unknown>>;
}

export function captureLog(level = "info"): CapturedLog {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(...chunk.toString().split("\n").filter((l) => l !== ""));
      done();
    },
  });
  return {
    logger: createLogger({ level, destination }),
    lines,
    entries: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}
