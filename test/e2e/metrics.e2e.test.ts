/**
 * The operator's view over plain HTTP: after a few real gRPC calls and a watch, /metrics shows the
 * call, latency, in-flight, watch, fan-out and sweep series moving; /healthz and /readyz answer.
 * The app runs with METRICS_PORT=0 (a free port) on PGlite and on Postgres.
 */
import { status } from "@grpc/grpc-js";
import { expect, it } from "vitest";
import { ContextService } from "../../gen/mplp/context/v1/context_service_pb.js";
import { errorDetails } from "../../src/transport/grpc-client.js";
import { describeOnApps } from "./support/app.js";
import { getHttp, sample } from "./support/metrics.js";
import { as, createContext, eventually } from "./support/participants.js";
import { watchAs } from "./support/watch.js";

const CONTEXT = "/mplp.context.v1.ContextService";

const get = getHttp;

await describeOnApps(
  "metrics, /healthz and /readyz",
  (under) => {
    it("answers /healthz and /readyz with 200 while serving, and 404 elsewhere", async () => {
      const port = under.app().metricsPort;
      expect(port).toBeGreaterThan(0);
      expect(await get(port, "/healthz")).toEqual({ status: 200, body: "ok\n" });
      expect(await get(port, "/readyz")).toEqual({ status: 200, body: "ready\n" });
      expect((await get(port, "/nope")).status).toBe(404);
    });

    it("counts calls by method and code, their latency, watch streams, fan-out lag and sweeps", async () => {
      const port = under.app().metricsPort;
      const client = under.client(ContextService);
      const before = (await get(port, "/metrics")).body;
      const calls = (text: string, method: string, code: string) => sample(text, "mplp_context_grpc_calls_total", { method: `${CONTEXT}/${method}`, code });

      const { contextId } = await createContext(client, "alice", "metered");
      await client.getContext({ contextId }, as("alice"));
      const missing = await client.getContext({ contextId: "00000000-0000-4000-8000-000000000000" }, as("alice")).catch((e: unknown) => e);
      expect(errorDetails(missing).code).toBe(status.NOT_FOUND);

      const watch = watchAs(client, "alice", { contextId, startRevision: 1n });
      await watch.untilRevision(1);
      await client.updateContext({ context: { contextId, description: "changed" }, updateMask: { paths: ["description"] } }, as("alice"));
      await watch.untilRevision(2);

      const during = (await get(port, "/metrics")).body;
      expect(calls(during, "CreateContext", "OK") - calls(before, "CreateContext", "OK")).toBe(1);
      expect(calls(during, "GetContext", "OK") - calls(before, "GetContext", "OK")).toBe(1);
      expect(calls(during, "GetContext", "NOT_FOUND") - calls(before, "GetContext", "NOT_FOUND")).toBe(1);
      expect(calls(during, "UpdateContext", "OK") - calls(before, "UpdateContext", "OK")).toBe(1);
      const latency = (text: string) => sample(text, "mplp_context_grpc_call_duration_seconds_count", { method: `${CONTEXT}/GetContext` });
      expect(latency(during) - latency(before)).toBe(2);
      expect(sample(during, "mplp_context_watch_streams_open")).toBe(1);
      expect(sample(during, "mplp_context_grpc_calls_in_flight", { method: `${CONTEXT}/WatchContext` })).toBe(1);
      expect(sample(during, "mplp_context_watch_fanout_lag_seconds_count")).toBeGreaterThanOrEqual(2);
      // Pool use and the event backlog: idle now, so nothing in flight and nothing waiting.
      expect(sample(during, "mplp_context_database_pool_max")).toBe(under.kind === "pglite" ? 1 : 4);
      expect(during).toMatch(/^mplp_context_database_operations_in_flight 0$/m);
      expect(during).toMatch(/^mplp_context_watch_backlog_revisions 0$/m);
      // Default process metrics are there too (the HPA's CPU and memory targets are judged on them).
      expect(sample(during, "mplp_context_process_resident_memory_bytes")).toBeGreaterThan(0);

      await watch.cancel();
      const after = await eventually("the cancelled watch to be counted closed", async () => {
        const text = (await get(port, "/metrics")).body;
        return sample(text, "mplp_context_watch_streams_open") === 0 ? text : undefined;
      });
      expect(sample(after, "mplp_context_grpc_calls_in_flight", { method: `${CONTEXT}/WatchContext` })).toBe(0);
      expect(calls(after, "WatchContext", "CANCELLED") - calls(before, "WatchContext", "CANCELLED")).toBe(1);
      // SWEEP_INTERVAL_MS is short here: passes happen whether or not they find anything.
      await eventually("a sweep pass to be counted", async () =>
        sample((await get(port, "/metrics")).body, "mplp_context_presence_sweeps_total") > 0 ? true : undefined,
      );
    });
  },
  { env: { METRICS_PORT: "0", SWEEP_INTERVAL_MS: "50" } },
);
