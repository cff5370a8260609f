/**
 * OpenTelemetry over the wire: a call carrying a W3C `traceparent` gets a SERVER span in the
 * caller's trace, exported over OTLP/HTTP to OTEL_EXPORTER_OTLP_ENDPOINT (a local collector stand-in
 * here), and its log line names the trace; each SQL statement the call runs is a CLIENT span under
 * it, with the statement's text and never a parameter value. Without an endpoint nothing is
 * exported, but the log line still follows the caller's trace.
 */
import { once } from "node:events";
import { createServer, type Server } from "node:http";
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ContextService } from "../../gen/mplp/context/v1/context_service_pb.js";
import { createClient } from "../../src/transport/grpc-client.js";
import { startTestApp } from "./support/app.js";
import { captureLog } from "./support/log-capture.js";
import { eventually } from "./support/participants.js";

const CREATE = "mplp.context.v1.ContextService/CreateContext";

/** One span of an OTLP/HTTP JSON export, as far as these tests read it. */
interface OtlpSpan {
  readonly traceId: string;
  readonly spanId: string;
  readonly parentSpanId?: string;
  readonly name: string;
  readonly attributes?: ReadonlyArray<{ readonly key: string; readonly value: { readonly stringValue?: string } }>;
}

/** The spans of the OTLP/HTTP JSON bodies received (the exporter's default encoding). */
function spansIn(bodies: readonly string[]): OtlpSpan[] {
  return bodies.flatMap((body) => {
    const parsed = JSON.parse(body) as { resourceSpans?: Array<{ scopeSpans?: Array<{ spans?: OtlpSpan[] }> }> };
    return (parsed.resourceSpans ?? []).flatMap((r) => (r.scopeSpans ?? []).flatMap((s) => s.spans ?? []));
  });
}

function attribute(span: OtlpSpan, key: string): string | undefined {
  return span.attributes?.find((a) => a.key === key)?.value.stringValue;
}

describe("tracing (OpenTelemetry)", () => {
  let collector: Server;
  let endpoint: string;
  const received: string[] = [];

  beforeAll(async () => {
    // Takes OTLP/HTTP exports as they come (JSON or protobuf) and keeps their bodies.
    collector = createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on("data", (c: Buffer) => chunks.push(c));
      request.on("end", () => {
        if (request.url === "/v1/traces") received.push(Buffer.concat(chunks).toString("latin1"));
        response.writeHead(200, { "content-type": "application/json" }).end("{}");
      });
    });
    collector.listen(0, "127.0.0.1");
    await once(collector, "listening");
    endpoint = `http://127.0.0.1:${(collector.address() as { port: number }).port}`;
  });

  afterAll(() => {
    collector?.close();
  });

  async function callWithTrace(env: Record<string, string>, name = "traced"): Promise<{ traceId: string; entries: Array<Record<string, unknown>> }> {
    const log = captureLog();
    const app = await startTestApp({ PGLITE_DATA_DIR: "memory://", ...env }, log.logger);
    const traceId = randomBytes(16).toString("hex");
    const parentId = randomBytes(8).toString("hex");
    const client = createClient(ContextService, `127.0.0.1:${app.port}`);
    try {
      await client.createContext({ context: { name, type: 1 } }, { metadata: { "x-principal-id": "alice", traceparent: `00-${traceId}-${parentId}-01` } });
    } finally {
      client.close();
      // Shutdown flushes the batched spans to the collector.
      await app.stop();
    }
    return { traceId, entries: log.entries() };
  }

  it("exports a SERVER span in the caller's trace and logs the trace id", async () => {
    const { traceId, entries } = await callWithTrace({ OTEL_EXPORTER_OTLP_ENDPOINT: endpoint });
    const line = entries.find((e) => e["msg"] === "call finished" && e["method"] === `/${CREATE}`);
    expect(line?.["traceId"]).toBe(traceId);
    expect(line?.["spanId"]).toMatch(/^[0-9a-f]{16}$/);
    await eventually("the span at the collector", async () => (received.some((body) => body.includes(CREATE)) ? true : undefined));
    const body = received.find((b) => b.includes(CREATE))!;
    // OTLP JSON spells ids as hex; OTLP protobuf as raw bytes.
    expect(body.includes(traceId) || body.includes(Buffer.from(traceId, "hex").toString("latin1"))).toBe(true);
  });

  it("exports a CLIENT span per SQL statement under the call's span, with its text and no parameter value", async () => {
    // The context's name travels as a query parameter: it must reach no span.
    const name = `secret-${randomBytes(6).toString("hex")}`;
    const { traceId } = await callWithTrace({ OTEL_EXPORTER_OTLP_ENDPOINT: endpoint }, name);
    const inTrace = async () => {
      const spans = spansIn(received).filter((s) => s.traceId === traceId);
      return spans.some((s) => s.name === CREATE) && spans.some((s) => attribute(s, "db.system.name") === "postgresql") ? spans : undefined;
    };
    const spans = await eventually("the call's span and its database spans at the collector", inTrace);
    const call = spans.find((s) => s.name === CREATE)!;
    const queries = spans.filter((s) => attribute(s, "db.system.name") === "postgresql");
    for (const query of queries) {
      expect(query.parentSpanId).toBe(call.spanId);
      expect(attribute(query, "db.query.text")).toMatch(/\S/);
    }
    // A CreateContext is one statement (data-modifying CTEs over several tables: no collection named).
    expect(queries).toHaveLength(1);
    expect(queries[0]!.name).toBe("INSERT");
    expect(attribute(queries[0]!, "db.operation.name")).toBe("INSERT");
    expect(attribute(queries[0]!, "db.query.text")).toMatch(/^with [\s\S]*insert into contexts [\s\S]*\$1/);
    expect(received.some((body) => body.includes(name))).toBe(false);
  });

  it("follows the caller's trace in the log without exporting when no endpoint is set", async () => {
    const before = received.length;
    const { traceId, entries } = await callWithTrace({});
    const line = entries.find((e) => e["msg"] === "call finished" && e["method"] === `/${CREATE}`);
    expect(line?.["traceId"]).toBe(traceId);
    expect(received).toHaveLength(before);
  });
});
