/**
 * Clients of the services that stay open whatever the authentication: grpc.health.v1.Health and
 * server reflection, loaded from their own protos as any generic tool (grpcurl, a load balancer's
 * health check) would call them.
 */
import { loadSync } from "@grpc/proto-loader";
import * as grpc from "@grpc/grpc-js";
import { protoPath as healthProtoPath } from "grpc-health-check";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";

function clientConstructor(file: string, service: string): grpc.ServiceClientConstructor {
  const definition = loadSync(file, { keepCase: true, enums: String, longs: String, defaults: true, oneofs: true });
  const loaded = grpc.loadPackageDefinition(definition);
  return service.split(".").reduce<unknown>((at, part) => (at as Record<string, unknown>)[part], loaded) as grpc.ServiceClientConstructor;
}

/** Health/Check of the whole server, with no credentials in the metadata. */
export async function healthStatus(
  address: string,
  credentials = grpc.credentials.createInsecure(),
  options: grpc.ChannelOptions = {},
): Promise<string | undefined> {
  const Health = clientConstructor(healthProtoPath, "grpc.health.v1.Health");
  const health = new Health(address, credentials, options) as unknown as grpc.Client & {
    check(req: { service: string }, cb: (err: grpc.ServiceError | null, res?: { status: string }) => void): void;
  };
  try {
    return await new Promise((resolve, reject) => health.check({ service: "" }, (err, res) => (err ? reject(err) : resolve(res?.status))));
  } finally {
    health.close();
  }
}

/** The service names reflection v1 lists, asked with no credentials in the metadata. */
export async function reflectedServices(address: string, credentials = grpc.credentials.createInsecure()): Promise<string[]> {
  const dir = join(dirname(createRequire(import.meta.url).resolve("@grpc/reflection")), "../proto");
  const Reflection = clientConstructor(join(dir, "grpc/reflection/v1/reflection.proto"), "grpc.reflection.v1.ServerReflection");
  const client = new Reflection(address, credentials);
  type Response = { list_services_response?: { service: Array<{ name: string }> } };
  const call = (client as unknown as { ServerReflectionInfo(): grpc.ClientDuplexStream<object, Response> }).ServerReflectionInfo();
  const answers: Response[] = [];
  try {
    await new Promise<void>((resolve, reject) => {
      call.on("data", (r: Response) => answers.push(r));
      call.on("end", resolve);
      call.on("error", reject);
      call.write({ list_services: "*" });
      call.end();
    });
  } finally {
    client.close();
  }
  return answers[0]?.list_services_response?.service.map((s) => s.name) ?? [];
}
