/**
 * The CLI's command line and its lines: flags and their environment defaults, values of
 * `state set`, enum names, and event lines without colour when colour is off.
 */
import { create } from "@bufbuild/protobuf";
import { ValueSchema } from "@bufbuild/protobuf/wkt";
import { describe, expect, it } from "vitest";
import { ContextEventSchema, ContextEventType, ContextType, StateOperation } from "../../../src/sdk/index.js";
import { eventLine } from "../../../src/cli/event-line.js";
import { enumValue, parseCommandLine, UsageError } from "../../../src/cli/options.js";
import { Output } from "../../../src/cli/output.js";
import { assignmentOf } from "../../../src/cli/state-commands.js";

describe("parseCommandLine", () => {
  it("takes flags over the environment, and the environment over defaults", () => {
    expect(parseCommandLine(["contexts", "list"], {})).toMatchObject({ address: "127.0.0.1:50051", token: undefined, principal: undefined, timeoutMs: 30_000 });
    const env = { MPLP_ADDR: "10.0.0.1:1", MPLP_TOKEN: "t", MPLP_PRINCIPAL: "p" };
    expect(parseCommandLine(["watch", "x"], env)).toMatchObject({ address: "10.0.0.1:1", token: "t", principal: "p" });
    expect(parseCommandLine(["watch", "x", "--addr", "h:2", "--token", "u", "--principal", "q"], env)).toMatchObject({ address: "h:2", token: "u", principal: "q" });
  });

  it("refuses unknown flags and bad numbers as usage errors", () => {
    expect(() => parseCommandLine(["contexts", "list", "--bogus"], {})).toThrow(UsageError);
    expect(() => parseCommandLine(["contexts", "list", "--timeout", "soon"], {})).toThrow(/--timeout must be a whole number/);
  });
});

describe("enumValue", () => {
  it("reads short names in any case and lists the choices otherwise", () => {
    expect(enumValue(ContextType, "--type", "peer-to-peer")).toBe(ContextType.PEER_TO_PEER);
    expect(() => enumValue(ContextType, "--type", "mesh")).toThrow(/--type must be one of collaborative, .*pipeline; got "mesh"/);
  });
});

describe("assignmentOf", () => {
  it("parses JSON values and keeps other text as a string", () => {
    expect(assignmentOf("plan.step=2")).toMatchObject({ operation: StateOperation.SET, path: "plan.step", value: { kind: { case: "numberValue", value: 2 } } });
    expect(assignmentOf("owner=bob")).toMatchObject({ value: { kind: { case: "stringValue", value: "bob" } } });
    expect(() => assignmentOf("=1")).toThrow(UsageError);
  });
});

describe("eventLine", () => {
  const event = create(ContextEventSchema, {
    revision: 7n,
    type: ContextEventType.STATE_CHANGED,
    name: "context.state.changed",
    actor: "alice",
    occurredAt: { seconds: 1_700_000_000n, nanos: 0 },
    payload: { case: "stateChange", value: { changes: [{ operation: StateOperation.SET, path: "a.b", value: create(ValueSchema, { kind: { case: "numberValue", value: 2 } }) }, { operation: StateOperation.DELETE, path: "c" }] } },
  });

  it("is one plain line when colours are off", () => {
    const out = new Output({ json: false, color: false });
    expect(eventLine(event, out)).toBe("#7 2023-11-14T22:13:20.000Z context.state.changed by alice: set a.b=2, delete c");
  });

  it("has colours only when asked (a terminal)", () => {
    expect(eventLine(event, new Output({ json: false, color: true }))).toContain("\u001b[");
  });
});
