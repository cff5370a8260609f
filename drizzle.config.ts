/**
 * drizzle-kit configuration: `npm run db:generate` diffs src/store/schema.ts against the snapshots
 * in migrations/meta and writes the next SQL migration there. Generation needs no database.
 */
import { defineConfig } from "drizzle-kit";

export default defineConfig({
  dialect: "postgresql",
  schema: "./src/store/schema.ts",
  out: "./migrations",
  // One statement per breakpoint, so the migrators run them one at a time.
  breakpoints: true,
  strict: true,
  verbose: true,
});
