/**
 * Server reflection (grpc.reflection.v1 and v1alpha) and the standard health service. Reflection
 * needs a proto-loader package definition, which we build from the descriptors protoc-gen-es
 * embedded in gen/ (so it can never drift from what we serve) plus grpc-health-check's proto.
 */
import { create, toBinary } from "@bufbuild/protobuf";
import type { DescFile } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema, FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import type * as grpc from "@grpc/grpc-js";
import { loadFileDescriptorSetFromBuffer, loadSync, type PackageDefinition } from "@grpc/proto-loader";
import { ReflectionService } from "@grpc/reflection";
import { HealthImplementation, protoPath as healthProtoPath, type ServingStatus } from "grpc-health-check";
import { file_google_rpc_error_details } from "../../gen/google/rpc/error_details_pb.js";
import { file_google_rpc_status } from "../../gen/google/rpc/status_pb.js";
import { file_mplp_context_v1_context_service } from "../../gen/mplp/context/v1/context_service_pb.js";
import { file_mplp_context_v1_participant_service } from "../../gen/mplp/context/v1/participant_service_pb.js";

/** The proto files a client needs to call us: both services and the error details they send. */
const SERVED_FILES: readonly DescFile[] = [
  file_mplp_context_v1_context_service,
  file_mplp_context_v1_participant_service,
  file_google_rpc_status,
  file_google_rpc_error_details,
];

/** Every file the roots need, each once, dependencies before their dependents (as a FileDescriptorSet must list them). */
export function filesWithDependencies(roots: readonly DescFile[]): DescFile[] {
  const ordered: DescFile[] = [];
  const seen = new Set<string>();
  const visit = (file: DescFile): void => {
    if (seen.has(file.name)) return;
    seen.add(file.name);
    file.dependencies.forEach(visit);
    ordered.push(file);
  };
  roots.forEach(visit);
  return ordered;
}

/** The served protos as a serialized google.protobuf.FileDescriptorSet (also usable as a protoset for ghz or grpcurl). */
export function fileDescriptorSet(roots: readonly DescFile[] = SERVED_FILES): Uint8Array {
  const set = create(FileDescriptorSetSchema, { file: filesWithDependencies(roots).map((f) => f.proto) });
  return toBinary(FileDescriptorSetSchema, set);
}

/** Options matching grpc-health-check's own loading, so reflection describes it consistently. */
const LOADER_OPTIONS = { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true } as const;

/**
 * A package definition of everything served: our services (from gen/) and grpc.health.v1.
 * proto-loader merges all files of one package into a single descriptor named after one of them
 * (so reflection would answer "mplp.context.v1.ContextService is in participant_service.proto");
 * reflection reads only `fileDescriptorProtos`, so we hand it the original files instead.
 */
export function servedPackageDefinition(): PackageDefinition {
  const files = filesWithDependencies(SERVED_FILES);
  const set = create(FileDescriptorSetSchema, { file: files.map((f) => f.proto) });
  const ours = loadFileDescriptorSetFromBuffer(Buffer.from(toBinary(FileDescriptorSetSchema, set)), LOADER_OPTIONS);
  const originals = files.map((f) => Buffer.from(toBinary(FileDescriptorProtoSchema, f.proto)));
  for (const definition of Object.values(ours)) {
    if ("fileDescriptorProtos" in definition && Array.isArray(definition.fileDescriptorProtos)) {
      definition.fileDescriptorProtos = originals;
    }
  }
  const health = loadSync(healthProtoPath, LOADER_OPTIONS);
  return { ...health, ...ours };
}

/** Adds reflection v1 and v1alpha, describing every served service, to the server. */
export function addReflection(server: grpc.Server): void {
  new ReflectionService(servedPackageDefinition()).addToServer(server);
}

/** The health service's name for the whole server. */
export const WHOLE_SERVER = "";

/** grpc.health.v1.Health for the server ("") and each named service; NOT_SERVING until told otherwise. */
export class Health {
  private readonly implementation: HealthImplementation;
  private readonly services: readonly string[];

  constructor(serviceNames: readonly string[]) {
    this.services = [WHOLE_SERVER, ...serviceNames];
    this.implementation = new HealthImplementation(
      Object.fromEntries(this.services.map((name) => [name, "NOT_SERVING" satisfies ServingStatus])),
    );
  }

  addToServer(server: grpc.Server): void {
    this.implementation.addToServer(server);
  }

  /** Sets every service (and the server as a whole) SERVING or NOT_SERVING; watchers are told at once. */
  setServing(serving: boolean): void {
    const status: ServingStatus = serving ? "SERVING" : "NOT_SERVING";
    for (const name of this.services) this.implementation.setStatus(name, status);
  }
}
