/**
 * Preloaded into our server by the benchmark only (`node --expose-gc --import ./bench/ops/gc-on-signal.ts
 * dist/src/main.js`): SIGUSR2 runs a full garbage collection, so the driver can read the server's RSS
 * before and after opening the active contexts with the garbage of the seeding gone from both.
 * SIGUSR1 belongs to Node's inspector; the service itself handles neither.
 */
const gc = (globalThis as { gc?: () => void }).gc;

process.on("SIGUSR2", () => {
  gc?.();
});
