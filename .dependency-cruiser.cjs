/**
 * The layering of ARCHITECTURE.md, checked on every CI run:
 * transport → service → domain, store → domain; service sees stores only through ports.ts;
 * nothing imports transport; domain imports nothing outside itself.
 * The client layer (sdk/, and cli/ on top of it) sits beside the server, not in it: the SDK may
 * use transport's typed client (grpc-client.ts) and gen/, the CLI only the SDK, and no server code
 * imports either.
 */
module.exports = {
  forbidden: [
    {
      name: "domain-is-pure",
      comment: "domain/ is plain TypeScript: no other layer, no gen/, no packages.",
      severity: "error",
      from: { path: "^src/domain/" },
      to: { pathNot: ["^src/domain/", "^node:", "^(buffer)$"], dependencyTypesNot: ["core"] },
    },
    {
      name: "nothing-imports-transport",
      comment: "transport/ is the outer edge; only the composition root wires it in.",
      severity: "error",
      from: { path: "^src/", pathNot: ["^src/transport/", "^src/(main|app)\\.ts$", "^src/sdk/"] },
      to: { path: "^src/transport/" },
    },
    {
      name: "sdk-uses-only-the-transport-client",
      comment: "The SDK builds on transport's typed client and nothing else of the server's transport.",
      severity: "error",
      from: { path: "^src/sdk/" },
      to: { path: "^src/transport/", pathNot: ["^src/transport/grpc-client\\.ts$"] },
    },
    {
      name: "clients-stay-clients",
      comment: "sdk/ and cli/ talk to a server over the wire; they never reach into its layers.",
      severity: "error",
      from: { path: "^src/(sdk|cli)/" },
      to: { path: ["^src/(service|store|domain)/", "^src/(main|app|config|logger)\\.ts$"] },
    },
    {
      name: "nothing-imports-clients",
      comment: "The server does not depend on its clients; the SDK does not depend on the CLI.",
      severity: "error",
      from: { path: "^src/", pathNot: ["^src/cli/"] },
      to: { path: "^src/cli/" },
    },
    {
      name: "server-does-not-import-sdk",
      severity: "error",
      from: { path: "^src/", pathNot: ["^src/(sdk|cli)/"] },
      to: { path: "^src/sdk/" },
    },
    {
      name: "service-sees-ports-only",
      comment: "service/ knows storage only through ports.ts, never store/ itself.",
      severity: "error",
      from: { path: "^src/service/" },
      to: { path: ["^src/store/", "^src/transport/", "^gen/"] },
    },
    {
      name: "store-below-service",
      comment: "store/ implements ports; it depends on domain (and ports' types), not on use cases or transport.",
      severity: "error",
      from: { path: "^src/store/" },
      to: { path: ["^src/transport/", "^gen/", "^src/service/(?!ports\\.ts$)"] },
    },
    {
      name: "grpc-and-gen-only-in-transport",
      comment: "Proto types and grpc-js stop at the transport edge.",
      severity: "error",
      from: { path: "^src/", pathNot: ["^src/transport/", "^src/(sdk|cli)/"] },
      to: { path: ["^gen/", "node_modules/@grpc/", "node_modules/@bufbuild/", "node_modules/grpc-health-check/"] },
    },
    {
      name: "prom-client-only-in-metrics",
      comment: "Transport and services report through their metrics ports; only src/metrics/ knows prom-client.",
      severity: "error",
      from: { path: "^src/", pathNot: ["^src/metrics/"] },
      to: { path: ["node_modules/prom-client/"] },
    },
    {
      name: "otel-sdk-only-in-tracing",
      comment: "The transport traces through @opentelemetry/api alone; the SDK and exporter are wired in src/tracing/.",
      severity: "error",
      from: { path: "^src/", pathNot: ["^src/tracing/"] },
      to: { path: ["node_modules/@opentelemetry/(?!api/)"] },
    },
    {
      name: "metrics-stays-below",
      comment: "src/metrics/ implements the ports by shape; it imports no layer of the server (the composition root wires it).",
      severity: "error",
      from: { path: "^src/metrics/" },
      to: { path: ["^src/(transport|service|store|domain)/"] },
    },
    {
      name: "drivers-only-in-store",
      comment: "SQL drivers, drizzle and redis clients live in store/.",
      severity: "error",
      from: { path: "^src/", pathNot: ["^src/store/", "^src/(main|app)\\.ts$"] },
      to: { path: ["node_modules/drizzle-orm/", "node_modules/postgres/", "node_modules/@electric-sql/", "node_modules/ioredis/"] },
    },
    {
      name: "no-circular",
      severity: "error",
      from: {},
      to: { circular: true },
    },
  ],
  options: {
    doNotFollow: { path: "node_modules" },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: "tsconfig.json" },
    enhancedResolveOptions: { exportsFields: ["exports"], conditionNames: ["import", "require", "node", "default"] },
  },
};
