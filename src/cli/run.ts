/**
 * The `mplp-context` command (main.ts is its entry): look inside a running mplp-context service without writing code.
 * Parses the command line, connects through the SDK, runs one command, and turns any failure into
 * one line on stderr — `mplp-context: NOT_FOUND CONTEXT_NOT_FOUND: context … not found` — with a
 * non-zero exit code (1: the call failed, 2: the command line was wrong).
 */
import { readFileSync } from "node:fs";
import { connect, describeError, grpcErrorOf, GrpcStatus } from "../sdk/index.js";
import { contextsCommand } from "./context-commands.js";
import { parseCommandLine, UsageError, USAGE, type CommandLine } from "./options.js";
import { Output } from "./output.js";
import { participantsCommand } from "./participant-commands.js";
import type { Command } from "./session.js";
import { stateCommand } from "./state-commands.js";
import { eventsCommand, watchCommand } from "./watch-commands.js";

const COMMANDS: Record<string, Command> = {
  contexts: contextsCommand,
  participants: participantsCommand,
  state: stateCommand,
  events: eventsCommand,
  watch: watchCommand,
};

/**
 * A refusal while naming no one means the server took us for `anonymous`: the usual cause is a
 * forgotten identity (a context created with --principal alice, then read without it), so say how to keep one.
 */
function identityHint(cli: CommandLine, error: unknown): string | undefined {
  if (cli.principal !== undefined || cli.token !== undefined) return undefined;
  const code = grpcErrorOf(error)?.code;
  if (code === GrpcStatus.PERMISSION_DENIED) {
    return "this call named no one, so the server took it as \"anonymous\": export MPLP_PRINCIPAL=<you> once (or pass --principal), or MPLP_TOKEN with authentication";
  }
  if (code === GrpcStatus.UNAUTHENTICATED) return "this server wants a token: export MPLP_TOKEN=<JWT> once (or pass --token)";
  return undefined;
}

/** Runs the CLI with `argv` (without node and the script); resolves with the exit code. */
export async function run(argv: readonly string[]): Promise<number> {
  let cli: CommandLine;
  try {
    cli = parseCommandLine(argv);
  } catch (error) {
    process.stderr.write(`mplp-context: ${error instanceof Error ? error.message : String(error)}\nTry 'mplp-context --help'.\n`);
    return 2;
  }
  const [name, ...args] = cli.positionals;
  if (cli.flags.help || name === undefined || name === "help") {
    process.stdout.write(USAGE);
    return name === undefined && !cli.flags.help ? 2 : 0;
  }
  const command = COMMANDS[name];
  if (command === undefined) {
    process.stderr.write(`mplp-context: unknown command "${name}"\nTry 'mplp-context --help'.\n`);
    return 2;
  }
  const out = new Output({ json: cli.flags.json, color: cli.flags.color });
  const stop = new AbortController();
  const onSignal = (): void => stop.abort();
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  let client;
  try {
    const tls = cli.flags.ca !== undefined ? { ca: readFileSync(cli.flags.ca) } : cli.flags.tls;
    client = connect({
      address: cli.address,
      tls,
      ...(cli.token === undefined ? {} : { token: cli.token }),
      ...(cli.principal === undefined ? {} : { principal: cli.principal }),
      // A person waits for the answer: a few quick retries, then say what is wrong.
      retry: { maxAttempts: 3, initialMs: 200, maxMs: 1_000 },
    });
    await command({ client, out, cli, signal: stop.signal }, args);
    return 0;
  } catch (error) {
    if (stop.signal.aborted) return 0;
    if (error instanceof UsageError) {
      process.stderr.write(`mplp-context: ${error.message}\nTry 'mplp-context --help'.\n`);
      return 2;
    }
    process.stderr.write(`mplp-context: ${describeError(error)}\n`);
    const hint = identityHint(cli, error);
    if (hint !== undefined) process.stderr.write(`mplp-context: ${hint}\n`);
    return 1;
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    await client?.close();
  }
}

