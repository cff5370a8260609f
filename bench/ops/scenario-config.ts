/**
 * The ghz configs in bench/ghz/ as the driver reads them: the method named by `call`, the request
 * template in `data`, the metadata, and the open-loop rate. The same files feed ghz itself
 * (`npm run bench:ghz`), so the driver and ghz send the same requests.
 *
 * Templates: ghz's `{{.RequestNumber}}`, `{{.WorkerID}}`, `{{.TimestampUnix}}` and `{{newUUID}}`,
 * plus two of ours — `{{.ContextID}}` and `{{.ParticipantID}}` — for ids that only exist once the
 * run has seeded them. ghz cannot know those, so before ghz sees a config its runner expands `data`
 * into an array with one element per seeded id (ghz round-robins over a data array).
 */
import { fromJson, toBinary, type DescMessage, type JsonValue } from "@bufbuild/protobuf";
import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { ContextService } from "../../gen/mplp/context/v1/context_service_pb.js";
import { ParticipantService } from "../../gen/mplp/context/v1/participant_service_pb.js";

/** The fields of a ghz JSON config that the driver uses (ghz's long flag names). */
export interface GhzConfig {
  readonly call: string;
  readonly host?: string;
  readonly rps?: number;
  readonly duration?: string;
  readonly concurrency?: number;
  readonly connections?: number;
  readonly metadata?: Record<string, string>;
  readonly data: JsonValue;
}

/** A unary method as the driver calls it: the grpc-js path and the request schema. */
export interface UnaryMethod {
  /** `/mplp.context.v1.ContextService/GetContext` */
  readonly path: string;
  readonly input: DescMessage;
}

/** Every unary method of both services by ghz `call` name (`package.Service.Method`). */
function methodTable(): Map<string, UnaryMethod> {
  const table = new Map<string, UnaryMethod>();
  for (const service of [ContextService, ParticipantService]) {
    for (const method of service.methods) {
      if (method.methodKind !== "unary") continue;
      table.set(`${service.typeName}.${method.name}`, { path: `/${service.typeName}/${method.name}`, input: method.input });
    }
  }
  return table;
}

const METHODS = methodTable();

/** Looks up a ghz `call` (also accepting ghz's `Service/Method` form). */
export function methodOf(call: string): UnaryMethod {
  const method = METHODS.get(call.replace("/", "."));
  if (method === undefined) throw new Error(`unknown or non-unary call "${call}"`);
  return method;
}

/** Reads bench/ghz/<operation>.json. */
export function readConfig(operation: string): GhzConfig {
  const url = new URL(`../ghz/${operation}.json`, import.meta.url);
  const config = JSON.parse(readFileSync(url, "utf8")) as GhzConfig;
  methodOf(config.call);
  return config;
}

/** What a template may refer to for one request. */
export interface TemplateInput {
  readonly requestNumber: number;
  readonly workerId: number;
  readonly contextId?: string | undefined;
  readonly participantId?: string | undefined;
}

/** Placeholders in `data`: ghz's (with its spacing variants) and ours. */
const PLACEHOLDER = /\{\{\s*(\.RequestNumber|\.WorkerID|\.TimestampUnix|newUUID|\.ContextID|\.ParticipantID)\s*\}\}/g;

/** Does the template need a seeded id of this kind? */
export function needs(config: GhzConfig, field: "ContextID" | "ParticipantID"): boolean {
  return JSON.stringify(config.data).includes(`.${field}`);
}

/**
 * A request encoder for one config: renders the template (as JSON text, so placeholders inside any
 * string work) and encodes it with protobuf-es's JSON mapping, as ghz encodes its `data`.
 */
export function requestEncoder(config: GhzConfig): (input: TemplateInput) => Buffer {
  const { input: schema } = methodOf(config.call);
  const text = JSON.stringify(config.data);
  const dynamic = PLACEHOLDER.test(text);
  PLACEHOLDER.lastIndex = 0;
  const encode = (json: string): Buffer => {
    const bytes = toBinary(schema, fromJson(schema, JSON.parse(json) as JsonValue));
    return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  };
  if (!dynamic) {
    // No placeholder: encode once, send the same bytes every time.
    const fixed = encode(text);
    return () => fixed;
  }
  return (input) =>
    encode(
      text.replace(PLACEHOLDER, (_, name: string) => {
        switch (name) {
          case ".RequestNumber":
            return String(input.requestNumber);
          case ".WorkerID":
            return String(input.workerId);
          case ".TimestampUnix":
            return String(Math.floor(Date.now() / 1000));
          case "newUUID":
            return randomUUID();
          case ".ContextID":
            return input.contextId ?? "";
          default:
            return input.participantId ?? "";
        }
      }),
    );
}
