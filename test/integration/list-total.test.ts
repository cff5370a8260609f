/**
 * ListContexts' total_size: counted only for the first page and only up to a cap (the store's
 * `count` option), then carried in the page token — on PGlite and on Postgres.
 */
import { describe, expect, it } from "vitest";
import { encodePageToken, TOTAL_SIZE_CAP } from "../../src/domain/page-token.js";
import { ContextService } from "../../src/service/context-service.js";
import type { ContextListQuery, ContextStore } from "../../src/service/ports.js";
import { PgContextStore } from "../../src/store/context-store.js";
import { caught } from "../support/app-error-assertions.js";
import { at, makeContext, type NewContext } from "../support/context-fixtures.js";
import { describeOnStores } from "../support/databases.js";
import { seed } from "../support/store-seeding.js";

const alice = { principal: "alice" };
const clock = { now: () => new Date() };

await describeOnStores("ListContexts total_size", (under) => {
  const store = () => new PgContextStore(under.database());
  const insert = (...all: NewContext[]) => seed(store(), ...all);
  const contexts = (n: number, from = 0) => Array.from({ length: n }, (_, i) => makeContext({ createdAt: at((from + i) * 10) }));

  /** The store, noting the `count` of every listContexts call. */
  const recording = () => {
    const counts: Array<ContextListQuery["count"]> = [];
    const inner = store();
    const wrapped = new Proxy(inner, {
      get(target, property) {
        if (property === "listContexts") {
          return (call: Parameters<ContextStore["listContexts"]>[0], query: ContextListQuery) => {
            counts.push(query.count);
            return target.listContexts(call, query);
          };
        }
        const value: unknown = Reflect.get(target, property, target);
        return typeof value === "function" ? (value as (...args: unknown[]) => unknown).bind(target) : value;
      },
    });
    return { store: wrapped as ContextStore, counts };
  };

  describe("the store's count option", () => {
    it("counts every match when unset, up to upTo + 1 when capped, and nothing when false", async () => {
      await insert(...contexts(5), makeContext({ owner: "bob" }));
      const list = (count: ContextListQuery["count"]) =>
        store().listContexts({}, { principal: "alice", filter: {}, limit: 2, ...(count === undefined ? {} : { count }) });
      expect((await list(undefined)).totalSize).toBe(5);
      expect((await list({ upTo: 5 })).totalSize).toBe(5);
      expect((await list({ upTo: 10 })).totalSize).toBe(5);
      // More than upTo match: the count stops at upTo + 1, "more than upTo".
      expect((await list({ upTo: 3 })).totalSize).toBe(4);
      expect((await list({ upTo: 0 })).totalSize).toBe(1);
      const uncounted = await list(false);
      expect(uncounted.totalSize).toBeUndefined();
      expect(uncounted.contexts).toHaveLength(2);
    });

    it("caps the count under the principal and filter, not the table", async () => {
      await insert(...contexts(3), ...Array.from({ length: 4 }, () => makeContext({ owner: "bob" })), makeContext({ type: "PIPELINE" }));
      const result = await store().listContexts({}, { principal: "alice", filter: { type: "COLLABORATIVE" }, limit: 1, count: { upTo: 3 } });
      expect(result.totalSize).toBe(3);
    });
  });

  describe(ContextService.name, () => {
    it("counts on the first page only and carries that total through the later pages' tokens", async () => {
      await insert(...contexts(7));
      const { store: counting, counts } = recording();
      const service = new ContextService(counting, clock);
      const totals: number[] = [];
      let token = "";
      let pages = 0;
      do {
        const page = await service.list(alice, { pageSize: 3, pageToken: token, filter: {} });
        totals.push(page.totalSize);
        token = page.nextPageToken;
        // A context created between pages is newer than every page after the first: the carried total stays.
        await insert(makeContext({ createdAt: at(1_000_000 + pages++) }));
      } while (token !== "");
      expect(totals).toEqual([7, 7, 7]);
      expect(counts).toEqual([{ upTo: TOTAL_SIZE_CAP }, false, false]);
      // A new first page counts again, and sees them.
      expect((await service.list(alice, { pageSize: 3, pageToken: "", filter: {} })).totalSize).toBe(10);
    });

    it(`reports ${TOTAL_SIZE_CAP + 1} ("more than ${TOTAL_SIZE_CAP}") when more match, on every page`, async () => {
      await insert(...contexts(TOTAL_SIZE_CAP + 5));
      const service = new ContextService(store(), clock);
      const first = await service.list(alice, { pageSize: 1000, pageToken: "", filter: {} });
      expect(first.totalSize).toBe(TOTAL_SIZE_CAP + 1);
      const second = await service.list(alice, { pageSize: 1000, pageToken: first.nextPageToken, filter: {} });
      expect(second.contexts).toHaveLength(5);
      expect(second.totalSize).toBe(TOTAL_SIZE_CAP + 1);
      // Exact again once the filter narrows the matches below the cap.
      expect((await service.list(alice, { pageSize: 1, pageToken: "", filter: { namePrefix: first.contexts[0]!.name } })).totalSize).toBe(1);
    });

    it("counts again for a token that carries no total, and refuses a carried total that is not a count", async () => {
      const all = contexts(4);
      await insert(...all);
      const { store: counting, counts } = recording();
      const service = new ContextService(counting, clock);
      const query = { principal: "alice", filter: {} };
      const newest = all[3]!;
      const old = encodePageToken({ t: newest.createdAt.toISOString(), id: newest.contextId }, query);
      const page = await service.list(alice, { pageSize: 10, pageToken: old, filter: {} });
      expect(page.contexts).toHaveLength(3);
      expect(page.totalSize).toBe(4);
      expect(counts).toEqual([{ upTo: TOTAL_SIZE_CAP }]);

      for (const n of [-1, 1.5, "7"]) {
        const forged = encodePageToken({ t: newest.createdAt.toISOString(), id: newest.contextId, n }, query);
        const error = await caught(service.list(alice, { pageSize: 10, pageToken: forged, filter: {} }));
        expect(error.reason).toBe("VALIDATION_ERROR");
      }
    });

    it("keeps the token bound to its filter and principal", async () => {
      await insert(...contexts(3));
      const service = new ContextService(store(), clock);
      const first = await service.list(alice, { pageSize: 1, pageToken: "", filter: {} });
      expect(first.nextPageToken).not.toBe("");
      expect((await caught(service.list(alice, { pageSize: 1, pageToken: first.nextPageToken, filter: { type: "PIPELINE" } }))).reason).toBe(
        "VALIDATION_ERROR",
      );
      expect((await caught(service.list({ principal: "bob" }, { pageSize: 1, pageToken: first.nextPageToken, filter: {} }))).reason).toBe(
        "VALIDATION_ERROR",
      );
    });
  });
});
