import { describe, expect, it } from "vitest";
import { ListPages } from "../../../src/service/list-pages.js";
import type { Context } from "../../../src/domain/context.js";
import type { ContextListResult } from "../../../src/service/ports.js";

/** A page of `n` contexts: ListPages only counts them. */
const page = (n: number, totalSize = n): ContextListResult => ({ contexts: Array.from({ length: n }, () => ({}) as Context), totalSize });

describe("ListPages", () => {
  const keep = (pages: ListPages, key: string, result: ContextListResult) => pages.load(key, async () => result);

  it("keeps a page until a revision is heard", async () => {
    const pages = new ListPages(() => 0);
    const kept = page(3);
    await keep(pages, "alice", kept);
    expect(pages.get("alice")).toBe(kept);
    pages.revised();
    expect(pages.get("alice")).toBeUndefined();
  });

  it("forgets a page after its TTL (a doorbell ring may have been lost)", async () => {
    let now = 0;
    const pages = new ListPages(() => now);
    await keep(pages, "alice", page(3));
    now = 999;
    expect(pages.get("alice")?.totalSize).toBe(3);
    now = 1_001;
    expect(pages.get("alice")).toBeUndefined();
  });

  it("drops every page when the contexts they hold pass the bound", async () => {
    const pages = new ListPages(() => 0);
    for (let i = 0; i < 500; i++) await keep(pages, `p${i}`, page(20));
    expect(pages.get("p0")).toBeDefined();
    expect(pages.get("p499")).toBeDefined();
    // 10,000 contexts held: one more page goes past the bound, so it is kept alone.
    await keep(pages, "p500", page(20));
    expect(pages.get("p0")).toBeUndefined();
    expect(pages.get("p500")).toBeDefined();
  });
});

describe("ListPages.load", () => {
  it("reads a page once for concurrent misses, then serves it kept", async () => {
    const pages = new ListPages(() => 0);
    let reads = 0;
    const read = async () => {
      reads += 1;
      await new Promise((resolve) => setTimeout(resolve, 5));
      return page(2);
    };
    const all = await Promise.all(Array.from({ length: 10 }, () => pages.load("alice", read)));
    expect(reads).toBe(1);
    expect(new Set(all).size).toBe(1);
    await pages.load("alice", read);
    expect(reads).toBe(1);
  });

  it("does not hand a read begun before a revision to a caller after it", async () => {
    const pages = new ListPages(() => 0);
    let release!: () => void;
    const slow = pages.load("alice", () => new Promise((resolve) => (release = () => resolve(page(1)))));
    pages.revised();
    const fresh = await pages.load("alice", async () => page(2));
    expect(fresh.contexts).toHaveLength(2);
    release();
    expect((await slow).contexts).toHaveLength(1);
    // The read begun before the revision was not kept.
    expect(pages.get("alice")?.contexts).toHaveLength(2);
  });

  it("reads on its own terms when the shared read fails", async () => {
    const pages = new ListPages(() => 0);
    let fail!: (error: Error) => void;
    const first = pages.load("alice", () => new Promise((_, reject) => (fail = reject)));
    const second = pages.load("alice", async () => page(3));
    fail(new Error("the first caller's deadline"));
    await expect(first).rejects.toThrow("deadline");
    expect((await second).contexts).toHaveLength(3);
  });
});
