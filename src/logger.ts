/** The process's one logger: JSON lines from pino, one per call and per notable event. */
import { pino, type Logger } from "pino";

export type { Logger };

export interface LoggerOptions {
  readonly level: string;
}

/** Secrets never reach a log line, whatever a caller passes in. */
const REDACT = ["authorization", "*.authorization", "password", "*.password", "token", "*.token"];

export function createLogger(options: LoggerOptions): Logger {
  return pino({
    level: options.level,
    base: { service: "mplp-context" },
    redact: { paths: REDACT, censor: "[redacted]" },
    timestamp: pino.stdTimeFunctions.isoTime,
  });
}

/** A logger that writes nothing, for tests. */
export function silentLogger(): Logger {
  return pino({ level: "silent" });
}
