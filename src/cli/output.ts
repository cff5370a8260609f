/**
 * Where the CLI's answers go and how they look: text for people (aligned columns, colours only
 * on a terminal), or JSON for scripts (the proto3 JSON mapping, so int64 fields are strings and
 * enums their full names — the same shape grpcurl prints).
 */
import { toJson, type DescMessage, type MessageShape } from "@bufbuild/protobuf";
import type { Writable } from "node:stream";

const CODES = { bold: 1, dim: 2, red: 31, green: 32, yellow: 33, blue: 34, magenta: 35, cyan: 36 } as const;
export type Colour = keyof typeof CODES;

export interface OutputOptions {
  readonly json: boolean;
  /** From --color/--no-color; undefined: colours only when stdout is a terminal and NO_COLOR is unset. */
  readonly color: boolean | undefined;
  readonly stdout?: Writable & { isTTY?: boolean };
  readonly stderr?: Writable;
  readonly env?: NodeJS.ProcessEnv;
}

export class Output {
  readonly json: boolean;
  readonly colours: boolean;
  private readonly stdout: Writable;
  private readonly stderr: Writable;

  constructor(options: OutputOptions) {
    this.json = options.json;
    this.stdout = options.stdout ?? process.stdout;
    this.stderr = options.stderr ?? process.stderr;
    const env = options.env ?? process.env;
    const tty = (options.stdout ?? process.stdout).isTTY === true;
    // Escape codes in a file or a pipe are noise for the next program: only a terminal gets them.
    this.colours = !this.json && (options.color ?? (tty && (env["NO_COLOR"] ?? "") === "" && env["TERM"] !== "dumb"));
  }

  /** `text` in `colour`, when colours are on. */
  paint(colour: Colour, text: string): string {
    return this.colours ? `\u001b[${CODES[colour]}m${text}\u001b[0m` : text;
  }

  /** One line on stdout. */
  line(text = ""): void {
    this.stdout.write(`${text}\n`);
  }

  /** One line on stderr: notices that are not the answer (reconnects), and errors. */
  notice(text: string): void {
    this.stderr.write(`${text}\n`);
  }

  /** A message as proto3 JSON: pretty for a single answer, one line each for a stream. */
  message<D extends DescMessage>(schema: D, message: MessageShape<D>, oneLine = false): void {
    this.line(JSON.stringify(toJson(schema, message), null, oneLine ? undefined : 2));
  }

  /** Rows as aligned columns under a header; `(none)` when empty. */
  table(header: readonly string[], rows: ReadonlyArray<readonly string[]>): void {
    if (rows.length === 0) {
      this.line("(none)");
      return;
    }
    const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
    const pad = (cells: readonly string[]): string => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join("  ");
    this.line(this.paint("bold", pad(header)));
    for (const row of rows) this.line(pad(row));
  }

  /** `key: value` lines, keys aligned. */
  fields(pairs: ReadonlyArray<readonly [string, string]>): void {
    const width = Math.max(...pairs.map(([k]) => k.length));
    for (const [key, value] of pairs) this.line(`${this.paint("dim", `${key}:`.padEnd(width + 1))} ${value}`);
  }
}

/** The short name of an enum value (`ContextStatus`, 2 → `PAUSED`); `-` for UNSPECIFIED. */
export function enumName(enumObject: Record<number, string>, value: number): string {
  return value === 0 ? "-" : (enumObject[value] ?? String(value));
}

/** A protobuf Timestamp as ISO-8601, `-` when unset. */
export function timeOf(timestamp: { seconds: bigint; nanos: number } | undefined): string {
  if (timestamp === undefined) return "-";
  return new Date(Number(timestamp.seconds) * 1000 + Math.floor(timestamp.nanos / 1e6)).toISOString();
}
