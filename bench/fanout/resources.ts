/**
 * What a run borrows from the machine and must give back however it ends — server processes,
 * worker threads, throwaway Postgres databases — and the throwaway databases themselves.
 */
import { randomBytes } from "node:crypto";
import postgres from "postgres";

/** Undo actions, run newest first, once, whether the run succeeds, fails or is interrupted. */
export class Cleanup {
  private readonly actions: Array<{ what: string; run: () => Promise<unknown> }> = [];
  private running: Promise<void> | undefined;

  /** True once runAll has begun: the run is over and nothing new may start. */
  get closing(): boolean {
    return this.running !== undefined;
  }

  /**
   * Registers an undo action; returns a function that runs it now (and unregisters it). Once the
   * run is being cleaned up, the action runs at once and this throws, so the caller stops there.
   */
  add(what: string, run: () => Promise<unknown>): () => Promise<void> {
    if (this.closing) {
      void run().catch(() => {});
      throw new Error(`the run is being abandoned (${what} at once)`);
    }
    const action = { what, run };
    this.actions.push(action);
    return async () => {
      const index = this.actions.indexOf(action);
      if (index < 0) return;
      this.actions.splice(index, 1);
      await run();
    };
  }

  /** Runs every action still registered; a failing one is reported and the rest still run. */
  runAll(): Promise<void> {
    this.running ??= (async () => {
      for (let action = this.actions.pop(); action !== undefined; action = this.actions.pop()) {
        try {
          await action.run();
        } catch (error) {
          console.error(`cleanup: could not ${action.what}: ${error instanceof Error ? error.message : String(error)}`);
        }
      }
    })();
    return this.running;
  }
}

/** An empty database on the admin URL's server: its URL, and how to drop it. */
export interface ThrowawayDatabase {
  readonly url: string;
  drop(): Promise<void>;
}

function admin(adminUrl: string): postgres.Sql {
  return postgres(adminUrl, { max: 1, onnotice: () => {}, connect_timeout: 5 });
}

/** Creates `mplp_bench_<random>` next to the admin URL's database (the servers migrate it on start). */
export async function createThrowawayDatabase(adminUrl: string): Promise<ThrowawayDatabase> {
  const name = `mplp_bench_${randomBytes(6).toString("hex")}`;
  const sql = admin(adminUrl);
  try {
    await sql.unsafe(`create database "${name}"`);
  } finally {
    await sql.end({ timeout: 5 });
  }
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    async drop() {
      const dropper = admin(adminUrl);
      try {
        // WITH (FORCE) ends the sessions of a server that was killed rather than stopped.
        await dropper.unsafe(`drop database if exists "${name}" with (force)`);
      } finally {
        await dropper.end({ timeout: 5 });
      }
    },
  };
}
