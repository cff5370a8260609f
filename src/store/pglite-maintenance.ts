/**
 * Autovacuum for embedded PGlite, which has none. Without it the planner never learns the tables'
 * sizes: on 3,000 contexts a ListContexts page sorted every readable row (15 ms of PGlite's one
 * thread) instead of walking the created_at index, and dead row versions were never reclaimed.
 *
 * Every interval it asks the statistics (pg_stat_user_tables, which PGlite keeps like Postgres)
 * which tables changed enough, by autovacuum's own default thresholds, and vacuums or analyzes
 * just those — so a bulk load is planned for within an interval, and a large table nobody writes
 * costs nothing. The server's one thread waits while a table is processed, which the thresholds
 * keep proportional to what changed, and a small statistics sample keeps short.
 */
import type { PGlite } from "@electric-sql/pglite";
import type { Logger } from "../logger.js";

/** How often the statistics are checked unless configured: a cheap query. */
export const PGLITE_MAINTENANCE_MS = 10_000;

/*
 * Postgres's defaults: autovacuum_{vacuum,analyze}_threshold 50, _scale_factor 0.2 and 0.1, and
 * (Postgres 13+) autovacuum_vacuum_insert_threshold 1000, scale 0.2, so insert-only tables get
 * their visibility map set too. reltuples is -1 before a table's first ANALYZE.
 */
const DUE = `select format('%I.%I', s.schemaname, s.relname) as name,
  s.n_dead_tup > 50 + 0.2 * greatest(c.reltuples, 0)
    or s.n_ins_since_vacuum > 1000 + 0.2 * greatest(c.reltuples, 0) as vacuum,
  s.n_mod_since_analyze > 50 + 0.1 * greatest(c.reltuples, 0) as analyze
from pg_stat_user_tables s join pg_class c on c.oid = s.relid`;

interface Due {
  readonly name: string;
  readonly vacuum: boolean;
  readonly analyze: boolean;
}

/** The statement that brings one table up to date, or none when it needs nothing. */
export function maintenanceOf(table: Due): string | undefined {
  if (table.vacuum && table.analyze) return `vacuum (analyze) ${table.name}`;
  if (table.vacuum) return `vacuum ${table.name}`;
  if (table.analyze) return `analyze ${table.name}`;
  return undefined;
}

/**
 * ANALYZE samples 300 × this many rows a table. Postgres's 100 (30,000 rows) cost 100 ms of this
 * thread on 20,000 contexts and 400–500 ms under load on the bench's 60,000 — a pause in every
 * call; 10 cost 22 ms there, and 3,000 rows tell the planner what it needs here (a table's size,
 * the few values of status and type, how many rows an agent has).
 */
const STATISTICS_TARGET = 10;

export class PgliteMaintenance {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;

  constructor(
    private readonly pglite: Pick<PGlite, "query">,
    private readonly logger: Logger,
    private readonly intervalMs = PGLITE_MAINTENANCE_MS,
  ) {}

  /**
   * Analyzes every table once — statistics for a data directory filled while no server ran, or by
   * an older one; ANALYZE only samples, so start-up waits little — then checks every interval.
   */
  async start(): Promise<void> {
    // A setting of this (PGlite's only) session: it applies to every ANALYZE run here.
    await this.each([`set default_statistics_target = ${STATISTICS_TARGET}`, "analyze"]);
    this.timer = setInterval(() => {
      this.running ??= this.pass().finally(() => (this.running = undefined));
    }, this.intervalMs);
    this.timer.unref();
  }

  /** Stops checking and waits for a pass that is running. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await this.running;
  }

  /** One check: the tables past a threshold, each vacuumed or analyzed. */
  async pass(): Promise<void> {
    try {
      const due = (await this.pglite.query<Due>(DUE)).rows;
      await this.each(due.flatMap((table) => maintenanceOf(table) ?? []));
    } catch (error) {
      if (!this.stopped) this.logger.warn({ err: error }, "pglite maintenance check failed; retrying at the next interval");
    }
  }

  private async each(statements: readonly string[]): Promise<void> {
    for (const statement of statements) {
      if (this.stopped) return;
      try {
        const started = performance.now();
        // PGlite's `query` waits for any open transaction (VACUUM cannot run inside one).
        await this.pglite.query(statement);
        this.logger.debug({ statement, durationMs: Math.round(performance.now() - started) }, "pglite maintenance done");
      } catch (error) {
        if (!this.stopped) this.logger.warn({ err: error, statement }, "pglite maintenance failed; retrying at the next interval");
      }
    }
  }
}
