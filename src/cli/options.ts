/**
 * The command line, parsed once: global flags (where the server is, who you are, how to print)
 * and each command's own flags, with `node:util` parseArgs. Flags fall back to environment
 * variables so a shell session can set them once: MPLP_ADDR, MPLP_TOKEN, MPLP_PRINCIPAL.
 */
import { parseArgs } from "node:util";

/** A mistake in the command line: printed with a hint to --help, exit code 2. */
export class UsageError extends Error {
  override readonly name = "UsageError";
}

const FLAGS = {
  addr: { type: "string" },
  token: { type: "string" },
  principal: { type: "string" },
  json: { type: "boolean", default: false },
  tls: { type: "boolean", default: false },
  ca: { type: "string" },
  timeout: { type: "string" },
  color: { type: "boolean" },
  help: { type: "boolean", short: "h", default: false },
  // command flags
  type: { type: "string" },
  description: { type: "string" },
  public: { type: "boolean", default: false },
  open: { type: "boolean", default: false },
  "request-id": { type: "string" },
  status: { type: "string" },
  "name-prefix": { type: "string" },
  "page-size": { type: "string" },
  full: { type: "boolean", default: false },
  force: { type: "boolean", default: false },
  "expected-revision": { type: "string" },
  reason: { type: "string" },
  role: { type: "string", multiple: true },
  capability: { type: "string", multiple: true },
  "display-name": { type: "string" },
  revision: { type: "string" },
  delete: { type: "string", multiple: true },
  from: { type: "string" },
  snapshot: { type: "boolean", default: false },
  interval: { type: "string" },
} as const;

export type Flags = ReturnType<typeof parseArgs<{ options: typeof FLAGS; allowPositionals: true; strict: true; allowNegative: true }>>["values"];

/** A parsed command line. */
export interface CommandLine {
  readonly positionals: readonly string[];
  readonly flags: Flags;
  readonly address: string;
  readonly token: string | undefined;
  readonly principal: string | undefined;
  readonly timeoutMs: number;
}

/** Parses `argv` (without node and the script); `env` supplies the defaults of the connection flags. */
export function parseCommandLine(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): CommandLine {
  let parsed;
  try {
    parsed = parseArgs({ args: [...argv], options: FLAGS, allowPositionals: true, strict: true, allowNegative: true });
  } catch (error) {
    throw new UsageError(error instanceof Error ? error.message.split("\n")[0]! : String(error));
  }
  const flags = parsed.values;
  const timeoutMs = flags.timeout === undefined ? 30_000 : wholeNumber("--timeout", flags.timeout);
  return {
    positionals: parsed.positionals,
    flags,
    address: flags.addr ?? env["MPLP_ADDR"] ?? "127.0.0.1:50051",
    token: flags.token ?? nonEmpty(env["MPLP_TOKEN"]),
    principal: flags.principal ?? nonEmpty(env["MPLP_PRINCIPAL"]),
    timeoutMs,
  };
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === "" ? undefined : value;
}

/** A flag or argument that must be a whole number ≥ 0. */
export function wholeNumber(name: string, value: string): number {
  if (!/^\d+$/.test(value)) throw new UsageError(`${name} must be a whole number, got "${value}"`);
  return Number(value);
}

/** The same, as the bigint an int64 field wants. */
export function revisionOf(name: string, value: string | undefined): bigint {
  return value === undefined ? 0n : BigInt(wholeNumber(name, value));
}

/** The positional at `index`, or a usage error naming it. */
export function required(positionals: readonly string[], index: number, what: string): string {
  const value = positionals[index];
  if (value === undefined || value === "") throw new UsageError(`missing ${what}`);
  return value;
}

/** An enum value by its short name, any case (`collaborative` → ContextType.COLLABORATIVE). */
export function enumValue<E extends Record<string, string | number>>(enumObject: E, flag: string, name: string): E[keyof E] {
  const key = name.toUpperCase().replace(/-/g, "_");
  const value = enumObject[key];
  if (typeof value !== "number" || value === 0) {
    const names = Object.keys(enumObject).filter((k) => Number.isNaN(Number(k)) && enumObject[k] !== 0);
    throw new UsageError(`${flag} must be one of ${names.map((n) => n.toLowerCase()).join(", ")}; got "${name}"`);
  }
  return value as E[keyof E];
}

export const USAGE = `mplp-context — a command-line client of the mplp-context gRPC service

usage: mplp-context <command> [arguments] [flags]

commands:
  contexts list [--status S] [--type T] [--name-prefix P] [--page-size N]
  contexts get <context-id> [--full]
  contexts create <name> [--type collaborative] [--description D] [--public] [--open] [--request-id R]
  contexts pause <context-id> [--reason R] [--expected-revision N]
  contexts resume <context-id> [--reason R] [--expected-revision N]
  contexts delete <context-id> [--force] [--expected-revision N]
  participants list <context-id> [--status S]
  participants add <context-id> <agent-id> [--type agent] [--role R]... [--capability C]... [--display-name D]
  participants remove <context-id> <participant-id> [--reason R]
  participants heartbeat <context-id> <participant-id>      (renews its presence lease once)
  participants keepalive <context-id> <participant-id> [--interval ms]
                        (keeps it present: renews every 10 s until Ctrl-C; without it, a lease lapses
                        PRESENCE_TTL_MS, 30 s by default, after joining and the participant turns INACTIVE)
  state get <context-id> [--revision N]
  state set <context-id> <path>=<json>... [--delete <path>]... [--expected-revision N]
  events <context-id> [--from N]
  watch <context-id>... [--from N] [--snapshot]   (one line per event; resumes after a disconnect;
                        several ids share one stream, each line led by its context id)

flags:
  --addr host:port      server (default 127.0.0.1:50051, or $MPLP_ADDR)
  --token JWT           sent as "authorization: Bearer <JWT>" (or $MPLP_TOKEN)
  --principal ID        who you are, sent as x-principal-id to servers without authentication
                        (or $MPLP_PRINCIPAL: export it once; without either you are "anonymous")
  --tls [--ca file]     TLS, with the system's roots or a PEM CA file
  --json                machine-readable output (JSON; one JSON object per line for events/watch)
  --timeout ms          deadline of each call (default 30000)
  --color/--no-color    colours (default: only on a terminal, and not when NO_COLOR is set)

exit codes: 0 ok, 1 the server refused or could not be reached (one line: code, reason, message), 2 bad command line
`;
