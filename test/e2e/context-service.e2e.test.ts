/**
 * ContextService over the wire: a real server on port 0 and the typed client, on PGlite and on
 * Postgres. Each error case checks the gRPC code, the ErrorInfo reason, and that nothing was written.
 */
import { status } from "@grpc/grpc-js";
import { describe, expect, it } from "vitest";
import { ContextService } from "../../gen/mplp/context/v1/context_service_pb.js";
import { ContextEventType } from "../../gen/mplp/context/v1/event_pb.js";
import { ContextStatus, ContextType, ContextView, LifecycleStage, Visibility } from "../../gen/mplp/context/v1/context_pb.js";
import { describeOnApps } from "./support/app.js";
import { failure } from "./support/failure.js";

const as = (principal: string) => ({ metadata: { "x-principal-id": principal } });
const alice = as("alice");
const bob = as("bob");
const UNKNOWN_ID = "6f1c2b8e-52c4-4a8e-9a39-3a4f7b1f0c11";


await describeOnApps("ContextService over gRPC", (under) => {
  const client = () => under.client(ContextService);
  const create = (name: string, extra: Record<string, unknown> = {}, principal = alice) =>
    client()
      .createContext({ context: { name, type: ContextType.COLLABORATIVE, ...extra } }, principal)
      .then((r) => r.context!);
  const total = async (principal = alice) => (await client().listContexts({}, principal)).totalSize;

  describe("CreateContext", () => {
    it("creates an ACTIVE context in PLANNING at revision 1, owned by the caller", async () => {
      const c = await create("plan", { description: "ship it" });
      expect(c).toMatchObject({ name: "plan", description: "ship it", status: ContextStatus.ACTIVE, lifecycleStage: LifecycleStage.PLANNING, revision: 1n });
      expect(c.contextId).toMatch(/^[0-9a-f-]{36}$/);
      expect(c.accessControl?.owner).toBe("alice");
      expect(c.configuration?.maxParticipants).toBe(10);
      expect(c.expiresAt).toBeDefined();
    });

    it("returns INVALID_ARGUMENT naming every bad field, and writes nothing", async () => {
      const err = await failure(
        client().createContext({ context: { name: "", type: 99 as ContextType, configuration: { maxParticipants: 5000 } } }, alice),
      );
      expect(err.code).toBe(status.INVALID_ARGUMENT);
      expect(err.reason).toBe("VALIDATION_ERROR");
      expect(err.domain).toBe("mplp.context.v1");
      expect(err.violations.map((v) => v.field).sort()).toEqual(["context.configuration.max_participants", "context.name", "context.type"]);
      expect(await total()).toBe(0);
    });

    it("returns ALREADY_EXISTS/CONTEXT_EXISTS for the same owner and name, not for another owner", async () => {
      await create("plan");
      const err = await failure(create("plan"));
      expect([err.code, err.reason]).toEqual([status.ALREADY_EXISTS, "CONTEXT_EXISTS"]);
      await expect(create("plan", {}, bob)).resolves.toMatchObject({ name: "plan" });
    });

    it("returns the first context for a retried request_id and creates nothing twice", async () => {
      const request = { context: { name: "once", type: ContextType.PIPELINE }, requestId: "retry-1" };
      const first = await client().createContext(request, alice);
      const again = await client().createContext(request, alice);
      expect(again.context).toEqual(first.context);
      expect(await total()).toBe(1);
    });

    it("refuses a NUL character inside custom_data instead of failing in the database", async () => {
      const err = await failure(create("nul", { metadata: { customData: { note: "a\u0000b" } } }));
      expect(err.violations.map((v) => v.field)).toEqual(["context.metadata.custom_data"]);
    });
  });

  describe("BatchCreateContexts", () => {
    it("creates them all, in order", async () => {
      const res = await client().batchCreateContexts(
        { requests: [{ context: { name: "a", type: ContextType.PARALLEL } }, { context: { name: "b", type: ContextType.PARALLEL } }] },
        alice,
      );
      expect(res.contexts.map((c) => c.name)).toEqual(["a", "b"]);
    });

    it("creates nothing when one item is bad, naming it", async () => {
      const err = await failure(
        client().batchCreateContexts({ requests: [{ context: { name: "good", type: ContextType.PARALLEL } }, { context: { name: "bad" } }] }, alice),
      );
      expect(err.code).toBe(status.INVALID_ARGUMENT);
      expect(err.violations.map((v) => v.field)).toEqual(["requests[1].context.type"]);
      expect(await total()).toBe(0);
    });

    it("creates nothing when one item clashes with an existing name", async () => {
      await create("taken");
      const err = await failure(
        client().batchCreateContexts({ requests: [{ context: { name: "new", type: ContextType.PARALLEL } }, { context: { name: "taken", type: ContextType.PARALLEL } }] }, alice),
      );
      expect(err.reason).toBe("CONTEXT_EXISTS");
      expect(await total()).toBe(1);
    });
  });

  describe("GetContext", () => {
    it("returns the BASIC view without shared_state and the FULL view with it", async () => {
      const c = await create("state", { sharedState: { variables: { step: 3, plan: { ok: true } } } });
      const basic = await client().getContext({ contextId: c.contextId }, alice);
      expect(basic.context?.sharedState).toBeUndefined();
      const full = await client().getContext({ contextId: c.contextId, view: ContextView.FULL }, alice);
      expect(full.context?.sharedState?.variables).toEqual({ step: 3, plan: { ok: true } });
      expect(full.participants).toEqual([]);
    });

    it("returns NOT_FOUND/CONTEXT_NOT_FOUND for an unknown id and INVALID_ARGUMENT for a malformed one", async () => {
      const missing = await failure(client().getContext({ contextId: UNKNOWN_ID }, alice));
      expect([missing.code, missing.reason]).toEqual([status.NOT_FOUND, "CONTEXT_NOT_FOUND"]);
      const malformed = await failure(client().getContext({ contextId: "not-a-uuid" }, alice));
      expect([malformed.code, malformed.violations[0]?.field]).toEqual([status.INVALID_ARGUMENT, "context_id"]);
    });

    it("returns PERMISSION_DENIED/FORBIDDEN to others for a PRIVATE context, and serves a PUBLIC one", async () => {
      const priv = await create("private");
      const pub = await create("public", { accessControl: { visibility: Visibility.PUBLIC } });
      const denied = await failure(client().getContext({ contextId: priv.contextId }, bob));
      expect([denied.code, denied.reason]).toEqual([status.PERMISSION_DENIED, "FORBIDDEN"]);
      await expect(client().getContext({ contextId: pub.contextId }, bob)).resolves.toBeDefined();
    });
  });

  describe("UpdateContext", () => {
    it("changes the masked fields and bumps the revision", async () => {
      const c = await create("plan");
      const res = await client().updateContext(
        { context: { contextId: c.contextId, description: "new", name: "ignored" }, updateMask: { paths: ["description"] }, expectedRevision: 1n },
        alice,
      );
      expect(res.context).toMatchObject({ name: "plan", description: "new", revision: 2n });
    });

    it("returns ABORTED/SYNC_CONFLICT with current_revision for a stale expected_revision, changing nothing", async () => {
      const c = await create("plan");
      await client().updateContext({ context: { contextId: c.contextId, description: "x" }, updateMask: { paths: ["description"] } }, alice);
      const err = await failure(
        client().updateContext({ context: { contextId: c.contextId, description: "y" }, updateMask: { paths: ["description"] }, expectedRevision: 1n }, alice),
      );
      expect([err.code, err.reason, err.metadata["current_revision"]]).toEqual([status.ABORTED, "SYNC_CONFLICT", "2"]);
      expect((await client().getContext({ contextId: c.contextId }, alice)).context?.description).toBe("x");
    });

    it("returns INVALID_ARGUMENT for an unknown mask path", async () => {
      const c = await create("plan");
      const err = await failure(client().updateContext({ context: { contextId: c.contextId }, updateMask: { paths: ["colour"] } }, alice));
      expect([err.code, err.violations[0]?.field]).toEqual([status.INVALID_ARGUMENT, "update_mask"]);
    });

    it("returns PERMISSION_DENIED to a non-owner", async () => {
      const c = await create("plan", { accessControl: { visibility: Visibility.PUBLIC } });
      const err = await failure(client().updateContext({ context: { contextId: c.contextId, description: "x" }, updateMask: { paths: ["description"] } }, bob));
      expect(err.code).toBe(status.PERMISSION_DENIED);
    });
  });

  describe("TransitionContext", () => {
    it("moves the lifecycle to COMPLETED, which completes the context", async () => {
      const c = await create("plan");
      const move = (lifecycleStage: LifecycleStage) =>
        client().transitionContext({ contextId: c.contextId, target: { case: "lifecycleStage", value: lifecycleStage }, reason: "on track" }, alice);
      await move(LifecycleStage.EXECUTING);
      const done = await move(LifecycleStage.COMPLETED);
      expect(done.context).toMatchObject({ status: ContextStatus.COMPLETED, lifecycleStage: LifecycleStage.COMPLETED, revision: 3n });
    });

    it("returns FAILED_PRECONDITION/INVALID_STATE_TRANSITION for an illegal move", async () => {
      const c = await create("plan");
      const err = await failure(client().transitionContext({ contextId: c.contextId, target: { case: "lifecycleStage", value: LifecycleStage.MONITORING } }, alice));
      expect([err.code, err.reason]).toEqual([status.FAILED_PRECONDITION, "INVALID_STATE_TRANSITION"]);
    });

    it("returns INVALID_ARGUMENT when no target is given", async () => {
      const c = await create("plan");
      const err = await failure(client().transitionContext({ contextId: c.contextId }, alice));
      expect(err.code).toBe(status.INVALID_ARGUMENT);
    });
  });

  describe("DeleteContext", () => {
    it("returns FAILED_PRECONDITION for an ACTIVE context without force", async () => {
      const c = await create("plan");
      const err = await failure(client().deleteContext({ contextId: c.contextId }, alice));
      expect([err.code, err.reason]).toEqual([status.FAILED_PRECONDITION, "INVALID_STATE_TRANSITION"]);
      await expect(client().getContext({ contextId: c.contextId }, alice)).resolves.toBeDefined();
    });

    it("deletes a PAUSED context, and with force an ACTIVE one", async () => {
      const paused = await create("paused");
      await client().transitionContext({ contextId: paused.contextId, target: { case: "status", value: ContextStatus.PAUSED } }, alice);
      await client().deleteContext({ contextId: paused.contextId }, alice);
      const active = await create("active");
      await client().deleteContext({ contextId: active.contextId, force: true }, alice);
      for (const id of [paused.contextId, active.contextId]) {
        expect((await failure(client().getContext({ contextId: id }, alice))).code).toBe(status.NOT_FOUND);
      }
    });

    it("returns NOT_FOUND for an unknown id", async () => {
      expect((await failure(client().deleteContext({ contextId: UNKNOWN_ID, force: true }, alice))).reason).toBe("CONTEXT_NOT_FOUND");
    });
  });

  describe("ListContexts", () => {
    it("pages newest first; contexts added between pages cause no skip and no repeat", async () => {
      for (let i = 0; i < 7; i++) await create(`c${i}`);
      const seen: string[] = [];
      let token = "";
      let pages = 0;
      do {
        const page = await client().listContexts({ pageSize: 3, pageToken: token }, alice);
        // total_size is counted for the first page and carried by the token: contexts created since stay out of it.
        expect(page.totalSize).toBe(7);
        seen.push(...page.contexts.map((c) => c.name));
        token = page.nextPageToken;
        await create(`late${pages++}`);
      } while (token !== "");
      expect(seen).toEqual(["c6", "c5", "c4", "c3", "c2", "c1", "c0"]);
    });

    it("counts the filter in total_size", async () => {
      await create("alpha-1", { metadata: { tags: ["blue"] } });
      await create("alpha-2", { type: ContextType.PIPELINE });
      await create("beta", { metadata: { tags: ["blue"] } });
      const page = await client().listContexts({ pageSize: 1, filter: { namePrefix: "alpha", tag: "blue" } }, alice);
      expect(page.contexts.map((c) => c.name)).toEqual(["alpha-1"]);
      expect(page.totalSize).toBe(1);
      expect((await client().listContexts({ filter: { type: ContextType.PIPELINE } }, alice)).totalSize).toBe(1);
    });

    it("returns INVALID_ARGUMENT for a page token that does not decode", async () => {
      const err = await failure(client().listContexts({ pageToken: "definitely-not-a-token" }, alice));
      expect([err.code, err.violations[0]?.field]).toEqual([status.INVALID_ARGUMENT, "page_token"]);
    });

    it("shows others only PUBLIC contexts", async () => {
      await create("mine");
      await create("shared", { accessControl: { visibility: Visibility.PUBLIC } });
      expect((await client().listContexts({}, bob)).contexts.map((c) => c.name)).toEqual(["shared"]);
    });
  });

  describe("GetContextStatistics", () => {
    it("counts the caller's readable contexts by status, stage and type", async () => {
      const a = await create("a");
      await create("b", { type: ContextType.BROADCAST });
      await client().transitionContext({ contextId: a.contextId, target: { case: "status", value: ContextStatus.PAUSED } }, alice);
      const stats = await client().getContextStatistics({}, alice);
      expect(stats.totalContexts).toBe(2n);
      const byStatus = Object.fromEntries(stats.countsByStatus.map((s) => [ContextStatus[s.status], Number(s.count)]));
      expect(byStatus).toMatchObject({ ACTIVE: 1, PAUSED: 1, COMPLETED: 0, TERMINATED: 0 });
      const byType = Object.fromEntries(stats.countsByType.map((s) => [ContextType[s.type], Number(s.count)]));
      expect(byType).toMatchObject({ COLLABORATIVE: 1, BROADCAST: 1 });
      expect((await client().getContextStatistics({}, bob)).totalContexts).toBe(0n);
    });
  });

  describe("ListContextEvents", () => {
    it("lists every change oldest first, with its MPLP name and revision", async () => {
      const c = await create("plan");
      await client().updateContext({ context: { contextId: c.contextId, description: "d" }, updateMask: { paths: ["description"] } }, alice);
      await client().transitionContext({ contextId: c.contextId, target: { case: "status", value: ContextStatus.PAUSED }, reason: "lunch" }, alice);
      const first = await client().listContextEvents({ contextId: c.contextId, pageSize: 2 }, alice);
      expect(first.events.map((e) => [e.type, e.name, e.revision])).toEqual([
        [ContextEventType.CONTEXT_CREATED, "context.created", 1n],
        [ContextEventType.CONTEXT_UPDATED, "context.updated", 2n],
      ]);
      const rest = await client().listContextEvents({ contextId: c.contextId, pageSize: 2, pageToken: first.nextPageToken }, alice);
      expect(rest.events.map((e) => [e.name, e.reason, e.actor])).toEqual([["context.status.changed", "lunch", "alice"]]);
      expect(rest.nextPageToken).toBe("");
    });
  });
});
