import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // PGlite takes seconds to start and e2e tests start real servers: generous, never a timing assertion.
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Two cores: more workers only fight over them.
    pool: "forks",
    maxWorkers: 2,
    reporters: ["default"],
  },
});
