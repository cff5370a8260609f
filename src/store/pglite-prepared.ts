/**
 * Named prepared statements on PGlite, as postgres.js gives them on Postgres. PGlite's own `query`
 * parses, analyzes and plans its text on every call, in six protocol exchanges with the WASM
 * Postgres; that was about half of an embedded write's CPU on this thread. Here a statement's text
 * is parsed once per PGlite (and planned once Postgres settles on a generic plan), and each call
 * is one exchange: Bind, Describe, Execute and Sync in one buffer.
 *
 * The caller holds PGlite's query lock (`_runExclusiveQuery`), as PGlite's own query does: these
 * protocol calls do not take it themselves.
 */
import { parse, protocol, type PGlite } from "@electric-sql/pglite";

/** A row keyed by column name (sql-client.ts's Row; not imported, which would make a cycle). */
type Row = Record<string, unknown>;

/** What a prepared statement needs at each call: its name and how to write each parameter. */
interface Prepared {
  readonly name: string;
  /** Each parameter's type, as Postgres inferred it at Parse. */
  readonly types: readonly number[];
}

/** Statements prepared on one PGlite, by text: a fixed set (the store's constants), so no bound is needed. */
export class PglitePrepared {
  private readonly prepared = new Map<string, Prepared>();

  constructor(private readonly pglite: PGlite) {}

  /** Runs `text` with `params` (the caller holds the query lock) and returns its rows. */
  async run(text: string, params: readonly unknown[]): Promise<Row[]> {
    const statement = this.prepared.get(text) ?? (await this.prepare(text));
    const values = params.map((value, i) => this.serialized(value, statement.types[i]));
    const message = Buffer.concat([
      protocol.serialize.bind({ statement: statement.name, values }),
      protocol.serialize.describe({ type: "P" }),
      protocol.serialize.execute({}),
      protocol.serialize.sync(),
    ]);
    const { messages } = await this.pglite.execProtocol(message, { syncToFs: false });
    const [result] = parse.parseResults(messages, this.pglite.parsers);
    return (result?.rows ?? []) as Row[];
  }

  private async prepare(text: string): Promise<Prepared> {
    const name = `mplp_${this.prepared.size + 1}`;
    const message = Buffer.concat([
      protocol.serialize.parse({ name, text }),
      protocol.serialize.describe({ type: "S", name }),
      protocol.serialize.sync(),
    ]);
    const { messages } = await this.pglite.execProtocol(message, { syncToFs: false });
    const description = messages.find((m) => m instanceof protocol.messages.ParameterDescriptionMessage);
    const prepared = { name, types: description?.dataTypeIDs ?? [] };
    this.prepared.set(text, prepared);
    return prepared;
  }

  /** A parameter as PGlite's own query writes it: its type's serializer, or its text. */
  private serialized(value: unknown, type: number | undefined): string | null {
    if (value === null || value === undefined) return null;
    const serializer = type === undefined ? undefined : this.pglite.serializers[type];
    return serializer ? serializer(value) : String(value);
  }
}

