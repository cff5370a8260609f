/**
 * The whole service (src/app.ts) on port 0, on embedded PGlite and on a throwaway Postgres
 * database, with real gRPC clients: what end-to-end suites run against.
 */
import type { GenService, GenServiceMethods } from "@bufbuild/protobuf/codegenv2";
import { afterAll, afterEach, beforeAll, beforeEach, describe } from "vitest";
import { startApp, type App } from "../../../src/app.js";
import { loadConfig } from "../../../src/config.js";
import { silentLogger, type Logger } from "../../../src/logger.js";
import { createClient, type PromiseClient } from "../../../src/transport/grpc-client.js";
import { createTestPostgresDatabase, postgresAvailable, resetDatabase, type EmptyTestDatabase } from "../../support/databases.js";

/**
 * A loaded CI machine must not turn test calls away as overload (DATABASE_QUEUE_TIMEOUT_MS): the
 * tests burst dozens of calls at a small pool. The queue itself is tested in work-queue tests.
 */
const QUEUE_PATIENCE = { DATABASE_QUEUE_TIMEOUT_MS: "30000" };

export interface AppUnderTest {
  readonly kind: "pglite" | "postgres";
  /** The running app; valid inside tests and hooks. */
  app(): App;
  /** `127.0.0.1:<port>` */
  address(): string;
  /** The Postgres URL of the app's database (Postgres runs only). */
  databaseUrl(): string;
  /** A client of one of the served services, closed after the test. */
  client<S extends GenServiceMethods>(service: GenService<S>): PromiseClient<S>;
}

/** Starts the app with the test defaults (port 0, loopback, quiet unless given a logger) plus `env`. */
export function startTestApp(env: Readonly<Record<string, string>>, logger: Logger = silentLogger()): Promise<App> {
  const config = loadConfig({ GRPC_HOST: "127.0.0.1", GRPC_PORT: "0", SHUTDOWN_GRACE_MS: "2000", ...QUEUE_PATIENCE, ...env });
  return startApp(config, logger);
}

/** Per-suite settings for describeOnApps. */
export interface AppSuiteOptions {
  /** Environment overrides for the app of this suite (e.g. a short PRESENCE_TTL_MS). */
  readonly env?: Readonly<Record<string, string>>;
}

/**
 * Declares `suite` on PGlite and on Postgres (skipped with a warning when Postgres is down on a
 * dev machine, failing under CI). One app per run for the whole file; tables emptied before each test.
 * Call it with `await` at the top level of a test file.
 */
export async function describeOnApps(name: string, suite: (under: AppUnderTest) => void, options: AppSuiteOptions = {}): Promise<void> {
  const postgresUp = await postgresAvailable();
  for (const kind of ["pglite", "postgres"] as const) {
    describe.skipIf(kind === "postgres" && !postgresUp)(`${name} (${kind === "pglite" ? "PGlite" : "Postgres"})`, () => {
      let app: App | undefined;
      let empty: EmptyTestDatabase | undefined;
      let clients: Array<{ close(): void }> = [];
      beforeAll(async () => {
        if (kind === "postgres") empty = await createTestPostgresDatabase();
        const database: Record<string, string> = empty ? { DATABASE_URL: empty.url, DATABASE_POOL_MAX: "4" } : { PGLITE_DATA_DIR: "memory://" };
        app = await startTestApp({ ...database, ...options.env });
      });
      afterAll(async () => {
        await app?.stop();
        await empty?.drop();
      });
      beforeEach(async () => {
        if (app) await resetDatabase(app.database);
      });
      afterEach(() => {
        for (const c of clients) c.close();
        clients = [];
      });
      const running = (): App => {
        if (!app) throw new Error("the app did not start (did beforeAll fail?)");
        return app;
      };
      suite({
        kind,
        app: running,
        address: () => `127.0.0.1:${running().port}`,
        databaseUrl: () => {
          if (!empty) throw new Error("databaseUrl() is for Postgres runs only");
          return empty.url;
        },
        client(service) {
          const client = createClient(service, `127.0.0.1:${running().port}`);
          clients.push(client);
          return client;
        },
      });
    });
  }
}
