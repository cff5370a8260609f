import { describe, expect, it } from "vitest";
import type { AppError } from "../../../src/domain/app-error.js";
import { validateBatchCreate, validateCreate, validateUpdate, type CreateContextInput } from "../../../src/domain/context-validation.js";
import type { Context } from "../../../src/domain/context.js";

function fieldsOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (e) {
    const err = e as AppError;
    expect(err.reason).toBe("VALIDATION_ERROR");
    return err.violations.map((v) => v.field);
  }
  throw new Error("expected a VALIDATION_ERROR");
}

const minimal: CreateContextInput = { context: { name: "plan", type: "COLLABORATIVE" }, requestId: "" };

describe("validateCreate", () => {
  it("applies the contract's defaults", () => {
    const { spec } = validateCreate(minimal);
    expect(spec.configuration).toEqual({
      maxParticipants: 10,
      maxSessions: 5,
      timeoutMs: 3_600_000,
      persistenceLevel: "PERSISTENT",
      isolationLevel: "SHARED",
      autoCleanup: true,
      cleanupDelayMs: 300_000,
    });
    expect(spec.accessControl).toMatchObject({ visibility: "PRIVATE", joinPolicy: "INVITATION_ONLY", defaultRole: "contributor" });
    expect(spec.metadata.priority).toBe("NORMAL");
  });

  it("keeps an explicit timeout of 0 (never expires)", () => {
    expect(validateCreate({ ...minimal, context: { ...minimal.context, configuration: { timeoutMs: 0 } } }).spec.configuration.timeoutMs).toBe(0);
  });

  it("names every bad field at once", () => {
    const fields = fieldsOf(() =>
      validateCreate({
        context: {
          name: "",
          description: "d".repeat(1001),
          type: "UNKNOWN(42)",
          configuration: { maxParticipants: 0, maxSessions: 1001, timeoutMs: -1, persistenceLevel: "UNKNOWN(9)" },
          accessControl: { requiredRoles: Array.from({ length: 11 }, (_, i) => `r${i}`) },
          metadata: { tags: ["ok", "ok"], customData: { bad: "a\u0000b" } },
        },
        requestId: "x".repeat(129),
      }),
    );
    expect(fields).toEqual(
      expect.arrayContaining([
        "context.name",
        "context.description",
        "context.type",
        "context.configuration.max_participants",
        "context.configuration.max_sessions",
        "context.configuration.timeout_ms",
        "context.configuration.persistence_level",
        "context.access_control.required_roles",
        "context.metadata.tags[1]",
        "context.metadata.custom_data",
        "request_id",
      ]),
    );
  });

  it("requires a type", () => {
    expect(fieldsOf(() => validateCreate({ context: { name: "x" }, requestId: "" }))).toEqual(["context.type"]);
  });

  it("refuses names over 255 characters, counting characters, not bytes", () => {
    expect(() => validateCreate({ ...minimal, context: { ...minimal.context, name: "é".repeat(255) } })).not.toThrow();
    expect(fieldsOf(() => validateCreate({ ...minimal, context: { ...minimal.context, name: "é".repeat(256) } }))).toEqual(["context.name"]);
  });

  it("refuses control characters in a name and blank names", () => {
    expect(fieldsOf(() => validateCreate({ ...minimal, context: { ...minimal.context, name: "a\nb" } }))).toEqual(["context.name"]);
    expect(fieldsOf(() => validateCreate({ ...minimal, context: { ...minimal.context, name: "   " } }))).toEqual(["context.name"]);
  });

  it("refuses JSON nested too deep and non-finite numbers", () => {
    let deep: Record<string, unknown> = {};
    for (let i = 0; i < 40; i++) deep = { d: deep };
    const input = { ...minimal, context: { ...minimal.context, metadata: { customData: deep as never } } };
    expect(fieldsOf(() => validateCreate(input))).toEqual(["context.metadata.custom_data"]);
    const nan = { ...minimal, context: { ...minimal.context, sharedState: { variables: { x: Number.NaN } } } };
    expect(fieldsOf(() => validateCreate(nan))).toEqual(["context.shared_state.variables"]);
  });
});

describe("validateBatchCreate", () => {
  it("names the repeated name of a later item", () => {
    expect(fieldsOf(() => validateBatchCreate([minimal, minimal]))).toEqual(["requests[1].context.name"]);
  });

  it("prefixes each item's fields with its index", () => {
    expect(fieldsOf(() => validateBatchCreate([minimal, { context: { name: "b" }, requestId: "" }]))).toEqual(["requests[1].context.type"]);
  });

  it("refuses an empty batch and one over 100", () => {
    expect(fieldsOf(() => validateBatchCreate([]))).toEqual(["requests"]);
    const many = Array.from({ length: 101 }, (_, i) => ({ ...minimal, context: { ...minimal.context, name: `n${i}` } }));
    expect(fieldsOf(() => validateBatchCreate(many))).toEqual(["requests"]);
  });
});

describe("validateUpdate", () => {
  const { spec } = validateCreate({ ...minimal, context: { ...minimal.context, description: "old", metadata: { tags: ["a"] } } });
  const now = new Date();
  const current: Context = {
    ...spec,
    accessControl: { ...spec.accessControl, owner: "alice" },
    contextId: "00000000-0000-4000-8000-000000000000",
    status: "ACTIVE",
    lifecycleStage: "PLANNING",
    participantCount: 3,
    sessionCount: 0,
    revision: 4,
    createdAt: now,
    updatedAt: now,
    lastActivityAt: now,
    expiresAt: null,
    terminatedAt: null,
    compactRevision: 0,
    stateSnapshotRevision: 1,
  };

  it("changes only the masked fields", () => {
    const { spec: next, touchesAccessControl } = validateUpdate(current, { name: "new", description: "ignored" }, ["name"]);
    expect(next.name).toBe("new");
    expect(next.description).toBe("old");
    expect(touchesAccessControl).toBe(false);
  });

  it("resets a masked subfield left unset to its default", () => {
    const changed = validateUpdate(current, { configuration: { maxSessions: 9 } }, ["configuration.max_sessions", "configuration.max_participants"]);
    expect(changed.spec.configuration.maxSessions).toBe(9);
    expect(changed.spec.configuration.maxParticipants).toBe(10);
  });

  it("reports access_control changes so ADMIN can be required", () => {
    expect(validateUpdate(current, { accessControl: { visibility: "PUBLIC" } }, ["access_control.visibility"]).touchesAccessControl).toBe(true);
  });

  it("refuses unknown, output-only and immutable paths, and an empty mask", () => {
    expect(fieldsOf(() => validateUpdate(current, {}, []))).toEqual(["update_mask"]);
    expect(fieldsOf(() => validateUpdate(current, {}, ["nope", "status", "type", "access_control.owner"]))).toEqual([
      "update_mask",
      "update_mask",
      "update_mask",
      "update_mask",
    ]);
  });

  it("refuses max_participants below the current participant count", () => {
    expect(fieldsOf(() => validateUpdate(current, { configuration: { maxParticipants: 2 } }, ["configuration.max_participants"]))).toEqual([
      "context.configuration.max_participants",
    ]);
  });
});
