/** The process's one logger: JSON lines from pino, one per call and per notable event. */
import { pino, type DestinationStream, type Logger } from "pino";

export type { Logger };

export interface LoggerOptions {
  readonly level: string;
  /** Where lines go (tests capture them); stdout by default. */
  readonly destination?: DestinationStream;
}

/**
 * Secrets never reach a log line, whatever a caller passes in: bearer tokens (the `authorization`
 * metadata, also inside logged metadata or headers objects), passwords, JWT secrets and TLS keys.
 * The call log never writes metadata at all; this is the net under that rule.
 */
export const REDACT = [
  "authorization",
  "*.authorization",
  "metadata.authorization",
  "*.metadata.authorization",
  "headers.authorization",
  "*.headers.authorization",
  "password",
  "*.password",
  "token",
  "*.token",
  "secret",
  "*.secret",
  "jwt",
  "*.jwt",
  "tls",
  "*.tls",
];

/** Log bytes queued for stdout at most (see createLogger). */
const MAX_QUEUED_BYTES = 16 * 1024 * 1024;
/** Lines are written once this many bytes are queued, or FLUSH_MS after the first of them. */
const WRITE_BYTES = 8 * 1024;
const FLUSH_MS = 100;

export function createLogger(options: LoggerOptions): Logger {
  // Asynchronous: a line is queued, and lines queued while a write is in flight go out together in
  // the next one, so a busy server does not pay a write(2) per call. pino flushes the queue
  // synchronously when the process exits. A reader that stops reading costs at most MAX_QUEUED_BYTES
  // of memory: lines past it are dropped, not queued.
  // Lines are gathered up to WRITE_BYTES (a write(2) per call was 4 % of a busy server's CPU) and
  // written at the latest FLUSH_MS later, so a quiet server's last line is never held back for long.
  const destination = options.destination ?? stdoutDestination();
  return pino(
    {
      level: options.level,
      base: { service: "mplp-context" },
      redact: { paths: REDACT, censor: "[redacted]" },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    destination,
  );
}

function stdoutDestination(): DestinationStream {
  return pino.destination({ dest: 1, sync: false, minLength: WRITE_BYTES, maxLength: MAX_QUEUED_BYTES, periodicFlush: FLUSH_MS });
}

/** A logger that writes nothing, for tests. */
export function silentLogger(): Logger {
  return pino({ level: "silent" });
}
