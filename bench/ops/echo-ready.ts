/** What the echo baseline (echo-server.ts) logs once it listens — kept apart so importing it does not start a server. */
export const ECHO_READY_MESSAGE = "echo grpc-js serving";
