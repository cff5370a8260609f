/**
 * OpenTelemetry tracing: one SERVER span per gRPC call, exported over OTLP/HTTP when
 * OTEL_EXPORTER_OTLP_ENDPOINT is set, and the caller's W3C `traceparent` (gRPC metadata) taken as
 * the parent either way, so a call's log line carries the trace id its caller started even when
 * this instance exports nothing.
 *
 * No global provider: the provider is this app's own (not registered globally), handed to the
 * transport as a Tracer and a propagator. Tests start several apps in one process, and a global
 * provider can be set only once per process. (The one process-wide piece is the context manager
 * below, which holds no app's state.)
 *
 * Spans per database query: the store wraps its client (src/store/query-tracing.ts) with
 * `queryTracer`, set only while exporting, and each statement's span finds the call's span as the
 * active context; for the active context to survive the handler's awaits, exporting also makes
 * AsyncLocalStorage the context manager (context-manager.ts; the API's default forgets it at the
 * first await).
 */
import { trace, type TextMapPropagator, type Tracer } from "@opentelemetry/api";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { BasicTracerProvider, BatchSpanProcessor } from "@opentelemetry/sdk-trace-base";
import { useAsyncLocalStorageContext } from "./context-manager.js";

/** What the transport needs to trace calls. */
export interface Tracing {
  readonly tracer: Tracer;
  /** Reads `traceparent` / `tracestate` from request metadata. */
  readonly propagator: TextMapPropagator;
  /**
   * The tracer of the per-statement database spans (traceQueries in src/store/query-tracing.ts);
   * undefined when nothing is exported, so the database client is not wrapped at all.
   */
  readonly queryTracer: Tracer | undefined;
  /** Exports what is buffered and stops; a no-op without an exporter. */
  shutdown(): Promise<void>;
}

export interface TracingOptions {
  /** OTEL_EXPORTER_OTLP_ENDPOINT, e.g. http://otel-collector:4318; undefined exports nothing. */
  readonly endpoint: string | undefined;
  readonly serviceName: string;
  readonly serviceVersion?: string;
}

/** The tracer of the app: exporting to `endpoint` when set, else a no-op that still follows the caller's trace. */
export function startTracing(options: TracingOptions): Tracing {
  const propagator = new W3CTraceContextPropagator();
  if (options.endpoint === undefined) {
    // The API's tracer without a registered provider: spans record nothing, but one started under
    // a remote parent keeps the parent's trace id, which the call's log line then shows.
    return { tracer: trace.getTracer(options.serviceName), propagator, queryTracer: undefined, shutdown: async () => {} };
  }
  // A database span finds its call's span through the active context, across the handler's awaits.
  useAsyncLocalStorageContext();
  const exporter = new OTLPTraceExporter({ url: `${options.endpoint.replace(/\/+$/, "")}/v1/traces` });
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({
      "service.name": options.serviceName,
      ...(options.serviceVersion === undefined ? {} : { "service.version": options.serviceVersion }),
    }),
    // Batched off the call path: a slow or absent collector never slows a call.
    spanProcessors: [new BatchSpanProcessor(exporter)],
  });
  const tracer = provider.getTracer(options.serviceName, options.serviceVersion);
  return {
    tracer,
    propagator,
    queryTracer: tracer,
    shutdown: () => provider.shutdown(),
  };
}
