/**
 * The image's HEALTHCHECK: asks the server's own grpc.health.v1.Health/Check (whole server, service
 * "") on 127.0.0.1:$GRPC_PORT and exits 0 only for SERVING. A port that merely accepts connections
 * is not health: during start-up (migrations) and shutdown (draining) the server listens but says
 * NOT_SERVING. Plain JavaScript with @grpc/grpc-js only, so it runs from the runtime image without
 * the build output or a protobuf runtime: the two tiny messages are encoded by hand.
 *
 * Plaintext only, like the kubelet's own gRPC probes: with TLS_CERT_FILE set the image relies on
 * the orchestrator's probes (or an exec of grpc_health_probe with certificates) instead.
 *
 * Usage: node grpc-health-probe.mjs [host:port]; exit 0 SERVING, 1 anything else, within 3 s.
 */
import * as grpc from "@grpc/grpc-js";

const target = process.argv[2] ?? `127.0.0.1:${process.env["GRPC_PORT"] || "50051"}`;
const DEADLINE_MS = 2_500;
/** HealthCheckRequest{service: ""}: an empty message encodes to no bytes at all. */
const REQUEST = Buffer.alloc(0);
/** HealthCheckResponse.status (field 1, varint) = SERVING (1). */
const SERVING = Buffer.from([0x08, 0x01]);

const client = new grpc.Client(target, grpc.credentials.createInsecure());
client.makeUnaryRequest(
  "/grpc.health.v1.Health/Check",
  (request) => request,
  (bytes) => bytes,
  REQUEST,
  new grpc.Metadata(),
  { deadline: Date.now() + DEADLINE_MS },
  (error, response) => {
    client.close();
    if (error) {
      console.error(`unhealthy: ${target}: ${error.message}`);
      process.exit(1);
    }
    if (response === undefined || !SERVING.equals(response)) {
      console.error(`unhealthy: ${target} is not SERVING`);
      process.exit(1);
    }
    process.exit(0);
  },
);
