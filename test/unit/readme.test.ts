/**
 * The README's grpcurl examples must stay true: each names a served method and sends JSON that
 * the method's request message accepts (grpcurl itself is not installable here).
 */
import { fromJsonString } from "@bufbuild/protobuf";
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { ContextService } from "../../gen/mplp/context/v1/context_service_pb.js";
import { ParticipantService } from "../../gen/mplp/context/v1/participant_service_pb.js";

const readme = readFileSync(new URL("../../README.md", import.meta.url), "utf8");
const calls = [...readme.matchAll(/-d '([^']*)'\s*\\?\s*\n?\s*127\.0\.0\.1:50051 ([\w.]+)\/(\w+)/g)].map((m) => ({
  json: m[1] ?? "",
  service: m[2] ?? "",
  method: m[3] ?? "",
}));

describe("README", () => {
  it("has grpcurl examples", () => {
    expect(calls.length).toBeGreaterThan(0);
  });

  it.each(calls)("sends JSON that $service/$method accepts", ({ json, service, method }) => {
    const desc = [ContextService, ParticipantService].find((s) => s.typeName === service);
    const rpc = desc?.methods.find((m) => m.name === method);
    expect(rpc, `${service}/${method} is served`).toBeDefined();
    expect(() => fromJsonString(rpc!.input, json)).not.toThrow();
  });
});
