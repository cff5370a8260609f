import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { createLogger } from "../../src/logger.js";

function capture(): { lines: string[]; destination: Writable } {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(...chunk.toString().split("\n").filter((l) => l !== ""));
      done();
    },
  });
  return { lines, destination };
}

describe(createLogger.name, () => {
  it("never writes a bearer token, a secret or key material, wherever it sits in a log object", () => {
    const { lines, destination } = capture();
    const logger = createLogger({ level: "info", destination });
    logger.warn(
      {
        authorization: "Bearer top.secret.token",
        metadata: { authorization: "Bearer top.secret.token", "x-request-id": "r1" },
        call: { headers: { authorization: "Bearer top.secret.token" } },
        config: { jwt: { secret: "top-secret" }, tls: { key: "-----BEGIN PRIVATE KEY-----" } },
        token: "top.secret.token",
        secret: "top-secret",
      },
      "denied",
    );
    expect(lines).toHaveLength(1);
    expect(lines[0]).not.toMatch(/top.secret|top-secret|PRIVATE KEY/);
    expect(JSON.parse(lines[0]!)).toMatchObject({ metadata: { authorization: "[redacted]", "x-request-id": "r1" }, msg: "denied" });
  });
});
