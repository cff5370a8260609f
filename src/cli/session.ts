/**
 * What every command gets: the connected SDK client, the output, the parsed command line, and the
 * per-call options (a deadline, so a command never hangs on a silent server).
 */
import type { MplpClient } from "../sdk/index.js";
import type { CommandLine } from "./options.js";
import type { Output } from "./output.js";

export interface Session {
  readonly client: MplpClient;
  readonly out: Output;
  readonly cli: CommandLine;
  /** Ends long-running commands (watch) on SIGINT/SIGTERM. */
  readonly signal: AbortSignal;
}

/** Options for one unary call: the --timeout deadline. */
export function callOptions(session: Session): { deadline: number; signal: AbortSignal } {
  return { deadline: Date.now() + session.cli.timeoutMs, signal: session.signal };
}

/** A command: resolves when done; throws a UsageError or the call's failure. */
export type Command = (session: Session, args: readonly string[]) => Promise<void>;
