/**
 * A real gRPC server on a free loopback port, for tests that call it over the wire with a real
 * client. Health is SERVING once started; close() shuts it down and closes the clients made here.
 */
import type { GenService, GenServiceMethods } from "@bufbuild/protobuf/codegenv2";
import { loadConfig, type Config } from "../../../src/config.js";
import { silentLogger, type Logger } from "../../../src/logger.js";
import { createClient, type PromiseClient } from "../../../src/transport/grpc-client.js";
import { createGrpcServer, type GrpcServer, type GrpcServerOptions } from "../../../src/transport/server.js";

export interface TestServerOptions {
  readonly handlers: GrpcServerOptions["handlers"];
  /** Environment overrides, as the process would read them (e.g. SHUTDOWN_GRACE_MS). */
  readonly env?: Readonly<Record<string, string>>;
  readonly logger?: Logger;
  /** Leave health NOT_SERVING after start. */
  readonly notServing?: boolean;
}

export interface TestServer {
  readonly server: GrpcServer;
  readonly config: Config;
  readonly port: number;
  /** `127.0.0.1:<port>` */
  readonly address: string;
  /** A client of one of the served services; closed by close(). */
  client<S extends GenServiceMethods>(service: GenService<S>): PromiseClient<S>;
  /** Closes the clients, then shuts the server down. */
  close(): Promise<void>;
}

export async function startTestServer(options: TestServerOptions): Promise<TestServer> {
  const config = loadConfig({ GRPC_HOST: "127.0.0.1", GRPC_PORT: "0", SHUTDOWN_GRACE_MS: "5000", ...options.env });
  const server = createGrpcServer({ config, logger: options.logger ?? silentLogger(), handlers: options.handlers });
  const port = await server.start();
  if (!options.notServing) server.setServing(true);
  const address = `127.0.0.1:${port}`;
  const clients: Array<{ close(): void }> = [];
  return {
    server,
    config,
    port,
    address,
    client(service) {
      const client = createClient(service, address);
      clients.push(client);
      return client;
    },
    async close() {
      for (const client of clients) client.close();
      await server.shutdown();
    },
  };
}
