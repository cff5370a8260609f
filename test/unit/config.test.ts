import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../../src/config.js";

function problem(env: Record<string, string>): string {
  try {
    loadConfig(env);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as Error).message;
  }
  throw new Error("expected a ConfigError");
}

describe("loadConfig", () => {
  it("defaults to loopback, port 50051 and embedded PGlite", () => {
    const config = loadConfig({});
    expect(config).toMatchObject({ grpcHost: "127.0.0.1", grpcPort: 50051, databaseUrl: undefined, pgliteDataDir: "./data/pglite" });
    expect(Object.isFrozen(config)).toBe(true);
  });

  it.each([
    [{ GRPC_PORT: "70000" }, "GRPC_PORT"],
    [{ GRPC_PORT: "50x" }, "GRPC_PORT"],
    [{ DATABASE_URL: "mysql://x" }, "DATABASE_URL"],
    [{ DATABASE_URL: "not a url" }, "DATABASE_URL"],
    [{ LOG_LEVEL: "loud" }, "LOG_LEVEL"],
    [{ SHUTDOWN_GRACE_MS: "-1" }, "SHUTDOWN_GRACE_MS"],
    [{ ALLOW_UNAUTHENTICATED: "maybe" }, "ALLOW_UNAUTHENTICATED"],
  ])("names the bad variable (%o)", (env, name) => {
    expect(problem(env)).toContain(name);
  });

  it("reads DATABASE_READ_URL as a comma-separated list of postgres:// URLs, and READ_REPLICA_MAX_LAG_MS", () => {
    expect(loadConfig({})).toMatchObject({ databaseReadUrls: [], readReplicaMaxLagMs: 1000 });
    expect(loadConfig({ DATABASE_READ_URL: " " }).databaseReadUrls).toEqual([]);
    expect(loadConfig({ DATABASE_READ_URL: "postgres://r1:5432/db" }).databaseReadUrls).toEqual(["postgres://r1:5432/db"]);
    const two = loadConfig({ DATABASE_READ_URL: "postgres://u:p@r1:5432/db, postgresql://r2/db", READ_REPLICA_MAX_LAG_MS: "250" });
    expect(two.databaseReadUrls).toEqual(["postgres://u:p@r1:5432/db", "postgresql://r2/db"]);
    expect(two.readReplicaMaxLagMs).toBe(250);
    expect(Object.isFrozen(two)).toBe(true);
  });

  it.each([
    [{ DATABASE_READ_URL: "not a url" }, "entry 1 is not a URL"],
    [{ DATABASE_READ_URL: "postgres://r1/db,mysql://r2/db" }, "entry 2 must be a postgres:// URL"],
    [{ DATABASE_READ_URL: "postgres://r1/db,,postgres://r3/db" }, "entry 2 is not a URL"],
    [{ READ_REPLICA_MAX_LAG_MS: "soon" }, "READ_REPLICA_MAX_LAG_MS"],
  ])("names DATABASE_READ_URL's bad entry (%o)", (env, message) => {
    const text = problem(env);
    expect(text).toContain(Object.keys(env)[0]);
    expect(text).toContain(message);
    // A replica URL may hold a password: the message never repeats the URL.
    expect(text).not.toContain("r2/db");
  });

  it("refuses a non-loopback address without authentication unless told it may", () => {
    expect(problem({ GRPC_HOST: "0.0.0.0" })).toContain("ALLOW_UNAUTHENTICATED=true");
    expect(loadConfig({ GRPC_HOST: "0.0.0.0", ALLOW_UNAUTHENTICATED: "true" }).grpcHost).toBe("0.0.0.0");
    expect(loadConfig({ GRPC_HOST: "::1" }).grpcHost).toBe("::1");
  });

  it("serves metrics on 127.0.0.1:9464 by default, on a free port when gRPC takes one, and checks METRICS_PORT", () => {
    expect(loadConfig({})).toMatchObject({ metricsHost: "127.0.0.1", metricsPort: 9464 });
    expect(loadConfig({ GRPC_PORT: "0" }).metricsPort).toBe(0);
    expect(loadConfig({ GRPC_PORT: "0", METRICS_PORT: "9100", METRICS_HOST: "0.0.0.0" })).toMatchObject({ metricsHost: "0.0.0.0", metricsPort: 9100 });
    expect(problem({ METRICS_PORT: "70000" })).toContain("METRICS_PORT");
  });
});
