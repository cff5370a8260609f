/**
 * ParticipantService over the wire, on PGlite and on Postgres: every method, the error codes and
 * reasons of the contract, and what each change leaves behind (participant_count, revision, events).
 * Each error case checks that nothing was written.
 */
import { timestampMs } from "@bufbuild/protobuf/wkt";
import { status } from "@grpc/grpc-js";
import { describe, expect, it } from "vitest";
import { ContextStatus, ContextView, JoinPolicy } from "../../gen/mplp/context/v1/context_pb.js";
import { ContextService } from "../../gen/mplp/context/v1/context_service_pb.js";
import { ContextEventType } from "../../gen/mplp/context/v1/event_pb.js";
import { ParticipantStatus, ParticipantType, Permission } from "../../gen/mplp/context/v1/participant_pb.js";
import { ParticipantService } from "../../gen/mplp/context/v1/participant_service_pb.js";
import { describeOnApps } from "./support/app.js";
import { failure } from "./support/failure.js";
import { allEvents, as, createContext, holdKeepAlive, participantOf, type ContextInit } from "./support/participants.js";

const alice = as("alice");
const UNKNOWN_ID = "6f1c2b8e-52c4-4a8e-9a39-3a4f7b1f0c11";

await describeOnApps("ParticipantService over gRPC", (under) => {
  const contexts = () => under.client(ContextService);
  const participants = () => under.client(ParticipantService);
  const create = (name: string, extra: Partial<ContextInit> = {}) => createContext(contexts(), "alice", name, extra);
  const context = async (contextId: string) => (await contexts().getContext({ contextId }, alice)).context!;
  const add = async (contextId: string, agentId: string, extra: Record<string, unknown> = {}, principal = "alice") =>
    (await participants().addParticipant({ contextId, participant: { agentId, ...extra } }, as(principal))).participant!;
  const events = (contextId: string) => allEvents(contexts(), contextId, "alice");

  describe("AddParticipant", () => {
    it("adds an ACTIVE AGENT with the default role and its permissions, bumping count and revision with a PARTICIPANT_JOINED event", async () => {
      const c = await create("team");
      const p = await add(c.contextId, "bot-1", { displayName: "Bot one", capabilities: ["search"] });
      expect(p).toMatchObject({
        contextId: c.contextId,
        agentId: "bot-1",
        displayName: "Bot one",
        participantType: ParticipantType.AGENT,
        status: ParticipantStatus.ACTIVE,
        roles: ["contributor"],
        capabilities: ["search"],
        permissions: [Permission.READ, Permission.WRITE],
      });
      expect(p.participantId).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      expect(p.joinedAt).toBeDefined();
      expect(p.leaseExpiresAt).toBeDefined();
      expect(await context(c.contextId)).toMatchObject({ participantCount: 1, revision: 2n });
      const joined = (await events(c.contextId)).at(-1)!;
      expect(joined).toMatchObject({ type: ContextEventType.PARTICIPANT_JOINED, name: "context.participant.joined", revision: 2n, actor: "alice" });
      expect(participantOf(joined)).toBe(p.participantId);
    });

    it("derives the permissions of each built-in role, and READ for any other role name", async () => {
      const c = await create("roles", { configuration: { maxParticipants: 20 } });
      const P = Permission;
      const cases: Array<[string[], Permission[]]> = [
        [["viewer"], [P.READ]],
        [["reviewer"], [P.READ]],
        [["contributor"], [P.READ, P.WRITE]],
        [["admin"], [P.READ, P.WRITE, P.MANAGE_PARTICIPANTS, P.DELETE, P.ADMIN]],
        [["planner"], [P.READ]],
        [["viewer", "contributor"], [P.READ, P.WRITE]],
      ];
      for (const [i, [roles, expected]] of cases.entries()) {
        const p = await add(c.contextId, `agent-${i}`, { roles });
        expect([...p.permissions].sort(), roles.join("+")).toEqual([...expected].sort());
      }
    });

    it("returns FAILED_PRECONDITION/INVALID_STATE_TRANSITION unless the context is ACTIVE, adding nobody", async () => {
      const c = await create("paused");
      await contexts().transitionContext({ contextId: c.contextId, target: { case: "status", value: ContextStatus.PAUSED } }, alice);
      const err = await failure(add(c.contextId, "bot-1"));
      expect([err.code, err.reason]).toEqual([status.FAILED_PRECONDITION, "INVALID_STATE_TRANSITION"]);
      expect(await context(c.contextId)).toMatchObject({ participantCount: 0, revision: 2n });
    });

    it("returns FAILED_PRECONDITION/MISSING_CAPABILITY without a required capability, and adds one that has it", async () => {
      const c = await create("caps", { accessControl: { requiredCapabilities: ["code", "review"] } });
      const err = await failure(add(c.contextId, "bot-1", { capabilities: ["code"] }));
      expect([err.code, err.reason]).toEqual([status.FAILED_PRECONDITION, "MISSING_CAPABILITY"]);
      expect((await context(c.contextId)).participantCount).toBe(0);
      await expect(add(c.contextId, "bot-1", { capabilities: ["review", "code", "extra"] })).resolves.toMatchObject({ agentId: "bot-1" });
    });

    it("returns FAILED_PRECONDITION/MISSING_ROLE without a required role (the default role counts), and adds one that has it", async () => {
      const c = await create("roles", { accessControl: { requiredRoles: ["reviewer"] } });
      const err = await failure(add(c.contextId, "bot-1"));
      expect([err.code, err.reason]).toEqual([status.FAILED_PRECONDITION, "MISSING_ROLE"]);
      expect((await context(c.contextId)).participantCount).toBe(0);
      await expect(add(c.contextId, "bot-1", { roles: ["reviewer"] })).resolves.toMatchObject({ roles: ["reviewer"] });
    });

    it("returns ALREADY_EXISTS/PARTICIPANT_ALREADY_EXISTS for the same agent twice, keeping one membership", async () => {
      const c = await create("twice");
      await add(c.contextId, "bot-1");
      const err = await failure(add(c.contextId, "bot-1", { displayName: "again" }));
      expect([err.code, err.reason]).toEqual([status.ALREADY_EXISTS, "PARTICIPANT_ALREADY_EXISTS"]);
      expect(await context(c.contextId)).toMatchObject({ participantCount: 1, revision: 2n });
    });

    it("returns RESOURCE_EXHAUSTED/CONTEXT_FULL beyond max_participants", async () => {
      const c = await create("small", { configuration: { maxParticipants: 2 } });
      await add(c.contextId, "bot-1");
      await add(c.contextId, "bot-2");
      const err = await failure(add(c.contextId, "bot-3"));
      expect([err.code, err.reason]).toEqual([status.RESOURCE_EXHAUSTED, "CONTEXT_FULL"]);
      expect(await context(c.contextId)).toMatchObject({ participantCount: 2, revision: 3n });
    });

    it("returns NOT_FOUND/CONTEXT_NOT_FOUND for an unknown context and INVALID_ARGUMENT without an agent_id", async () => {
      const missing = await failure(add(UNKNOWN_ID, "bot-1"));
      expect([missing.code, missing.reason]).toEqual([status.NOT_FOUND, "CONTEXT_NOT_FOUND"]);
      const c = await create("bad");
      const invalid = await failure(add(c.contextId, ""));
      expect([invalid.code, invalid.reason]).toEqual([status.INVALID_ARGUMENT, "VALIDATION_ERROR"]);
      expect(invalid.violations.map((v) => v.field)).toEqual([expect.stringContaining("agent_id")]);
      expect((await context(c.contextId)).participantCount).toBe(0);
    });

    it("returns the first participant for a retried request_id and adds nothing twice", async () => {
      const c = await create("retry");
      const request = { contextId: c.contextId, participant: { agentId: "bot-1" }, requestId: "join-1" };
      const first = await participants().addParticipant(request, alice);
      const again = await participants().addParticipant(request, alice);
      expect(again.participant).toEqual(first.participant);
      expect(await context(c.contextId)).toMatchObject({ participantCount: 1, revision: 2n });
      expect((await events(c.contextId)).filter((e) => e.type === ContextEventType.PARTICIPANT_JOINED)).toHaveLength(1);
    });

    it("lets a principal add itself to an OPEN context with the default role, but not with more, and not others", async () => {
      const c = await create("open", { accessControl: { joinPolicy: JoinPolicy.OPEN } });
      await expect(add(c.contextId, "bob", {}, "bob")).resolves.toMatchObject({ agentId: "bob", roles: ["contributor"] });
      await expect(add(c.contextId, "carol", { roles: ["contributor"] }, "carol")).resolves.toMatchObject({ roles: ["contributor"] });
      const greedy = await failure(add(c.contextId, "dave", { roles: ["admin"] }, "dave"));
      expect([greedy.code, greedy.reason]).toEqual([status.PERMISSION_DENIED, "FORBIDDEN"]);
      const other = await failure(add(c.contextId, "erin", {}, "bob"));
      expect([other.code, other.reason]).toEqual([status.PERMISSION_DENIED, "FORBIDDEN"]);
      expect((await context(c.contextId)).participantCount).toBe(2);
    });

    it("returns PERMISSION_DENIED/FORBIDDEN to a principal adding itself to an INVITATION_ONLY context", async () => {
      const c = await create("closed");
      const err = await failure(add(c.contextId, "bob", {}, "bob"));
      expect([err.code, err.reason]).toEqual([status.PERMISSION_DENIED, "FORBIDDEN"]);
      expect((await context(c.contextId)).participantCount).toBe(0);
    });
  });

  describe("BatchAddParticipants", () => {
    it("adds them all in request order in one revision, one PARTICIPANT_JOINED event each", async () => {
      const c = await create("batch");
      const res = await participants().batchAddParticipants(
        { contextId: c.contextId, participants: [{ agentId: "a" }, { agentId: "b", roles: ["viewer"] }, { agentId: "c" }] },
        alice,
      );
      expect(res.participants.map((p) => [p.agentId, p.roles])).toEqual([["a", ["contributor"]], ["b", ["viewer"]], ["c", ["contributor"]]]);
      expect(await context(c.contextId)).toMatchObject({ participantCount: 3, revision: 2n });
      const joined = (await events(c.contextId)).filter((e) => e.type === ContextEventType.PARTICIPANT_JOINED);
      expect(joined.map((e) => [e.revision, participantOf(e)])).toEqual(res.participants.map((p) => [2n, p.participantId]));
    });

    it("adds nobody when one of them is already a member, or repeats another", async () => {
      const c = await create("batch");
      await add(c.contextId, "b");
      const existing = await failure(participants().batchAddParticipants({ contextId: c.contextId, participants: [{ agentId: "a" }, { agentId: "b" }] }, alice));
      expect([existing.code, existing.reason]).toEqual([status.ALREADY_EXISTS, "PARTICIPANT_ALREADY_EXISTS"]);
      const repeated = await failure(participants().batchAddParticipants({ contextId: c.contextId, participants: [{ agentId: "x" }, { agentId: "x" }] }, alice));
      expect([repeated.code, repeated.violations.map((v) => v.field)]).toEqual([status.INVALID_ARGUMENT, ["participants[1].agent_id"]]);
      expect(await context(c.contextId)).toMatchObject({ participantCount: 1, revision: 2n });
      const listed = await participants().listParticipants({ contextId: c.contextId }, alice);
      expect(listed.participants.map((p) => p.agentId)).toEqual(["b"]);
    });

    it("adds nobody when one of them lacks a required capability", async () => {
      const c = await create("batch", { accessControl: { requiredCapabilities: ["code"] } });
      const err = await failure(
        participants().batchAddParticipants({ contextId: c.contextId, participants: [{ agentId: "a", capabilities: ["code"] }, { agentId: "b" }] }, alice),
      );
      expect([err.code, err.reason]).toEqual([status.FAILED_PRECONDITION, "MISSING_CAPABILITY"]);
      expect(await context(c.contextId)).toMatchObject({ participantCount: 0, revision: 1n });
    });
  });

  describe("GetParticipant", () => {
    it("returns the participant as added", async () => {
      const c = await create("get");
      const p = await add(c.contextId, "bot-1", { participantType: ParticipantType.HUMAN, metadata: { tz: "UTC" } });
      const got = await participants().getParticipant({ contextId: c.contextId, participantId: p.participantId }, alice);
      expect(got.participant).toEqual(p);
      expect(got.participant?.metadata).toEqual({ tz: "UTC" });
    });

    it("returns NOT_FOUND/PARTICIPANT_NOT_FOUND for an unknown id, and for a participant of another context", async () => {
      const c = await create("one");
      const d = await create("two");
      const p = await add(d.contextId, "bot-1");
      for (const participantId of [UNKNOWN_ID, p.participantId]) {
        const err = await failure(participants().getParticipant({ contextId: c.contextId, participantId }, alice));
        expect([err.code, err.reason]).toEqual([status.NOT_FOUND, "PARTICIPANT_NOT_FOUND"]);
      }
    });
  });

  describe("UpdateParticipant", () => {
    it("changes the masked fields only, re-derives permissions, and writes PARTICIPANT_UPDATED at the next revision", async () => {
      const c = await create("upd");
      const p = await add(c.contextId, "bot-1", { displayName: "old", capabilities: ["a"] });
      const res = await participants().updateParticipant(
        {
          participant: { contextId: c.contextId, participantId: p.participantId, displayName: "new", roles: ["admin"], capabilities: ["ignored"] },
          updateMask: { paths: ["display_name", "roles"] },
          expectedRevision: 2n,
        },
        alice,
      );
      expect(res.participant).toMatchObject({ displayName: "new", roles: ["admin"], capabilities: ["a"], agentId: "bot-1" });
      expect([...res.participant!.permissions].sort()).toEqual(
        [Permission.READ, Permission.WRITE, Permission.MANAGE_PARTICIPANTS, Permission.DELETE, Permission.ADMIN].sort(),
      );
      expect((await context(c.contextId)).revision).toBe(3n);
      const updated = (await events(c.contextId)).at(-1)!;
      expect(updated).toMatchObject({ type: ContextEventType.PARTICIPANT_UPDATED, revision: 3n, actor: "alice" });
      expect(participantOf(updated)).toBe(p.participantId);
    });

    it("returns ABORTED/SYNC_CONFLICT with current_revision for a stale expected_revision, changing nothing", async () => {
      const c = await create("upd");
      const p = await add(c.contextId, "bot-1", { displayName: "old" });
      await add(c.contextId, "bot-2");
      const err = await failure(
        participants().updateParticipant(
          { participant: { contextId: c.contextId, participantId: p.participantId, displayName: "new" }, updateMask: { paths: ["display_name"] }, expectedRevision: 2n },
          alice,
        ),
      );
      expect([err.code, err.reason, err.metadata["current_revision"]]).toEqual([status.ABORTED, "SYNC_CONFLICT", "3"]);
      const got = await participants().getParticipant({ contextId: c.contextId, participantId: p.participantId }, alice);
      expect(got.participant?.displayName).toBe("old");
      expect((await context(c.contextId)).revision).toBe(3n);
    });

    it("lets a participant change its own display_name, capabilities and metadata, but not its roles", async () => {
      const c = await create("self");
      const p = await add(c.contextId, "bob", { roles: ["viewer"] });
      const res = await participants().updateParticipant(
        {
          participant: { contextId: c.contextId, participantId: p.participantId, displayName: "Bob", capabilities: ["x"], metadata: { k: 1 } },
          updateMask: { paths: ["display_name", "capabilities", "metadata"] },
        },
        as("bob"),
      );
      expect(res.participant).toMatchObject({ displayName: "Bob", capabilities: ["x"], metadata: { k: 1 }, roles: ["viewer"] });
      const err = await failure(
        participants().updateParticipant(
          { participant: { contextId: c.contextId, participantId: p.participantId, roles: ["admin"] }, updateMask: { paths: ["roles"] } },
          as("bob"),
        ),
      );
      expect([err.code, err.reason]).toEqual([status.PERMISSION_DENIED, "FORBIDDEN"]);
      const got = await participants().getParticipant({ contextId: c.contextId, participantId: p.participantId }, alice);
      expect(got.participant?.roles).toEqual(["viewer"]);
    });

    it("returns NOT_FOUND/PARTICIPANT_NOT_FOUND for an unknown participant and INVALID_ARGUMENT for an unknown mask path", async () => {
      const c = await create("upd");
      const missing = await failure(
        participants().updateParticipant({ participant: { contextId: c.contextId, participantId: UNKNOWN_ID, displayName: "x" }, updateMask: { paths: ["display_name"] } }, alice),
      );
      expect([missing.code, missing.reason]).toEqual([status.NOT_FOUND, "PARTICIPANT_NOT_FOUND"]);
      const p = await add(c.contextId, "bot-1");
      const bad = await failure(
        participants().updateParticipant({ participant: { contextId: c.contextId, participantId: p.participantId }, updateMask: { paths: ["colour"] } }, alice),
      );
      expect([bad.code, bad.reason]).toEqual([status.INVALID_ARGUMENT, "VALIDATION_ERROR"]);
      expect((await context(c.contextId)).revision).toBe(2n);
    });
  });

  describe("RemoveParticipant", () => {
    it("removes it with PARTICIPANT_LEFT carrying the reason, and decrements participant_count", async () => {
      const c = await create("rm");
      const p = await add(c.contextId, "bot-1");
      await add(c.contextId, "bot-2");
      await participants().removeParticipant({ contextId: c.contextId, participantId: p.participantId, reason: "done here" }, alice);
      expect(await context(c.contextId)).toMatchObject({ participantCount: 1, revision: 4n });
      const left = (await events(c.contextId)).at(-1)!;
      expect(left).toMatchObject({ type: ContextEventType.PARTICIPANT_LEFT, name: "context.participant.left", revision: 4n, reason: "done here", actor: "alice" });
      expect(participantOf(left)).toBe(p.participantId);
      const gone = await failure(participants().getParticipant({ contextId: c.contextId, participantId: p.participantId }, alice));
      expect([gone.code, gone.reason]).toEqual([status.NOT_FOUND, "PARTICIPANT_NOT_FOUND"]);
      const again = await failure(participants().removeParticipant({ contextId: c.contextId, participantId: p.participantId }, alice));
      expect([again.code, again.reason]).toEqual([status.NOT_FOUND, "PARTICIPANT_NOT_FOUND"]);
      expect((await context(c.contextId)).revision).toBe(4n);
    });

    it("lets the same agent join again after it was removed, as a new participant", async () => {
      const c = await create("rejoin");
      const first = await add(c.contextId, "bot-1");
      await participants().removeParticipant({ contextId: c.contextId, participantId: first.participantId }, alice);
      const again = await add(c.contextId, "bot-1");
      expect(again.participantId).not.toBe(first.participantId);
      expect(await context(c.contextId)).toMatchObject({ participantCount: 1, revision: 4n });
    });

    it("lets a participant remove itself, but not another", async () => {
      const c = await create("rm");
      const bob = await add(c.contextId, "bob");
      const carol = await add(c.contextId, "carol");
      const err = await failure(participants().removeParticipant({ contextId: c.contextId, participantId: carol.participantId }, as("bob")));
      expect([err.code, err.reason]).toEqual([status.PERMISSION_DENIED, "FORBIDDEN"]);
      await participants().removeParticipant({ contextId: c.contextId, participantId: bob.participantId, reason: "bye" }, as("bob"));
      const listed = await participants().listParticipants({ contextId: c.contextId }, alice);
      expect(listed.participants.map((p) => p.agentId)).toEqual(["carol"]);
      expect((await context(c.contextId)).participantCount).toBe(1);
    });
  });

  describe("ListParticipants", () => {
    it("pages with total_size; participants added between pages cause no skip and no repeat", async () => {
      const c = await create("list", { configuration: { maxParticipants: 50 } });
      for (let i = 0; i < 7; i++) await add(c.contextId, `p${i}`);
      const seen: string[] = [];
      let pageToken = "";
      let pages = 0;
      do {
        const page = await participants().listParticipants({ contextId: c.contextId, pageSize: 3, pageToken }, alice);
        expect(page.participants.length).toBeLessThanOrEqual(3);
        expect(page.totalSize).toBe(7 + pages);
        seen.push(...page.participants.map((p) => p.agentId));
        pageToken = page.nextPageToken;
        await add(c.contextId, `late${pages++}`);
      } while (pageToken !== "" && pages < 20);
      expect(pages).toBeGreaterThanOrEqual(3);
      // Every participant there from the start is seen exactly once; late joiners may or may not be reached.
      expect(seen.filter((a) => a.startsWith("p")).sort()).toEqual(["p0", "p1", "p2", "p3", "p4", "p5", "p6"]);
      expect(new Set(seen).size).toBe(seen.length);
    });

    it("filters by role, capability, participant_type and status, counting the filter in total_size", async () => {
      const c = await create("filter", { configuration: { maxParticipants: 50 } });
      await add(c.contextId, "a", { roles: ["viewer"], capabilities: ["code"] });
      await add(c.contextId, "b", { roles: ["viewer", "planner"], participantType: ParticipantType.HUMAN });
      await add(c.contextId, "c", { capabilities: ["code", "test"], participantType: ParticipantType.HUMAN });
      await add(c.contextId, "d", { participantType: ParticipantType.SERVICE });
      const list = async (filter: Record<string, unknown>) => {
        const page = await participants().listParticipants({ contextId: c.contextId, pageSize: 10, filter }, alice);
        return { first: page.participants.map((p) => p.agentId).sort(), total: page.totalSize };
      };
      const firstPage = await participants().listParticipants({ contextId: c.contextId, pageSize: 1, filter: { role: "viewer" } }, alice);
      expect([firstPage.participants.length, firstPage.totalSize, firstPage.nextPageToken !== ""]).toEqual([1, 2, true]);
      expect(await list({ role: "viewer" })).toEqual({ first: ["a", "b"], total: 2 });
      expect(await list({ role: "contributor" })).toEqual({ first: ["c", "d"], total: 2 });
      expect(await list({ capability: "code" })).toEqual({ first: ["a", "c"], total: 2 });
      expect(await list({ participantType: ParticipantType.HUMAN })).toEqual({ first: ["b", "c"], total: 2 });
      expect(await list({ participantType: ParticipantType.HUMAN, capability: "test" })).toEqual({ first: ["c"], total: 1 });
      expect(await list({ status: ParticipantStatus.ACTIVE })).toEqual({ first: ["a", "b", "c", "d"], total: 4 });
      expect(await list({ status: ParticipantStatus.INACTIVE })).toEqual({ first: [], total: 0 });
    });

    it("returns 20 per page by default", async () => {
      const c = await create("default-page", { configuration: { maxParticipants: 25 } });
      await participants().batchAddParticipants({ contextId: c.contextId, participants: Array.from({ length: 25 }, (_, i) => ({ agentId: `a${i}` })) }, alice);
      const first = await participants().listParticipants({ contextId: c.contextId }, alice);
      expect([first.participants.length, first.totalSize, first.nextPageToken !== ""]).toEqual([20, 25, true]);
      const rest = await participants().listParticipants({ contextId: c.contextId, pageToken: first.nextPageToken }, alice);
      expect([rest.participants.length, rest.nextPageToken]).toEqual([5, ""]);
    });

    it("returns INVALID_ARGUMENT for a page token that does not decode, and NOT_FOUND for an unknown context", async () => {
      const c = await create("list");
      const bad = await failure(participants().listParticipants({ contextId: c.contextId, pageToken: "definitely-not-a-token" }, alice));
      expect([bad.code, bad.violations[0]?.field]).toEqual([status.INVALID_ARGUMENT, "page_token"]);
      const missing = await failure(participants().listParticipants({ contextId: UNKNOWN_ID }, alice));
      expect([missing.code, missing.reason]).toEqual([status.NOT_FOUND, "CONTEXT_NOT_FOUND"]);
    });
  });

  describe("Heartbeat", () => {
    it("renews an ACTIVE participant's lease without a new revision or event", async () => {
      const c = await create("hb");
      const p = await add(c.contextId, "bot-1");
      const before = await context(c.contextId);
      const beat = await participants().heartbeat({ contextId: c.contextId, participantId: p.participantId }, as("bot-1"));
      expect(beat.status).toBe(ParticipantStatus.ACTIVE);
      expect(beat.leaseExpiresAt).toBeDefined();
      expect(timestampMs(beat.leaseExpiresAt!)).toBeGreaterThanOrEqual(timestampMs(p.leaseExpiresAt!));
      expect((await context(c.contextId)).revision).toBe(before.revision);
      expect((await events(c.contextId)).map((e) => e.revision).at(-1)).toBe(before.revision);
    });

    it("returns NOT_FOUND/PARTICIPANT_NOT_FOUND for an unknown participant", async () => {
      const c = await create("hb");
      const err = await failure(participants().heartbeat({ contextId: c.contextId, participantId: UNKNOWN_ID }, alice));
      expect([err.code, err.reason]).toEqual([status.NOT_FOUND, "PARTICIPANT_NOT_FOUND"]);
    });
  });

  describe("KeepAlive", () => {
    it("answers each message with the participant's status and lease, and ends when the client half-closes", async () => {
      const c = await create("ka");
      const p = await add(c.contextId, "bot-1");
      const stream = holdKeepAlive(participants(), { contextId: c.contextId, participantId: p.participantId }, "bot-1", 20);
      const deadline = Date.now() + 10_000;
      while (stream.responses.length < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      await stream.close();
      expect(stream.responses.length).toBeGreaterThanOrEqual(3);
      for (const r of stream.responses) expect(r).toMatchObject({ participantId: p.participantId, status: ParticipantStatus.ACTIVE });
      expect((await context(c.contextId)).revision).toBe(2n);
    });

    it("ends the stream with NOT_FOUND/PARTICIPANT_NOT_FOUND for an unknown participant", async () => {
      const c = await create("ka");
      const stream = holdKeepAlive(participants(), { contextId: c.contextId, participantId: UNKNOWN_ID }, "alice", 20);
      const err = await failure(stream.ended);
      expect([err.code, err.reason]).toEqual([status.NOT_FOUND, "PARTICIPANT_NOT_FOUND"]);
    });
  });

  describe("GetContext and participant_count", () => {
    it("lists the participants in the FULL view only, and participant_count equals the members", async () => {
      const c = await create("full");
      const a = await add(c.contextId, "a");
      const b = await add(c.contextId, "b");
      await add(c.contextId, "c");
      await participants().removeParticipant({ contextId: c.contextId, participantId: b.participantId }, alice);
      const full = await contexts().getContext({ contextId: c.contextId, view: ContextView.FULL }, alice);
      expect(full.participants.map((p) => p.agentId).sort()).toEqual(["a", "c"]);
      expect(full.participants.find((p) => p.agentId === "a")).toEqual(a);
      expect(full.context?.participantCount).toBe(2);
      const basic = await contexts().getContext({ contextId: c.contextId }, alice);
      expect(basic.participants).toEqual([]);
      expect(basic.context?.participantCount).toBe(2);
      const listed = await participants().listParticipants({ contextId: c.contextId }, alice);
      expect(listed.totalSize).toBe(2);
    });

    it("counts participants in GetContextStatistics", async () => {
      const c = await create("stats");
      await create("empty");
      await participants().batchAddParticipants({ contextId: c.contextId, participants: [{ agentId: "a" }, { agentId: "b" }, { agentId: "c" }] }, alice);
      const stats = await contexts().getContextStatistics({}, alice);
      expect(stats.totalParticipants).toBe(3n);
      expect(stats.maxParticipants).toBe(3);
      expect(stats.avgParticipants).toBeCloseTo(1.5);
    });
  });
});
