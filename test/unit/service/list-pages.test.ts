import { describe, expect, it } from "vitest";
import { ListPages } from "../../../src/service/list-pages.js";
import type { Context } from "../../../src/domain/context.js";
import type { ContextListResult } from "../../../src/service/ports.js";

/** A page of `n` contexts: ListPages only counts them. */
const page = (n: number, totalSize = n): ContextListResult => ({ contexts: Array.from({ length: n }, () => ({}) as Context), totalSize });

describe("ListPages", () => {
  it("keeps a page until a revision is heard", () => {
    const pages = new ListPages(() => 0);
    const kept = page(3);
    pages.keep("alice", kept, pages.begin());
    expect(pages.get("alice")).toBe(kept);
    pages.revised();
    expect(pages.get("alice")).toBeUndefined();
  });

  it("does not keep a page read while a revision happened", () => {
    const pages = new ListPages(() => 0);
    const begun = pages.begin();
    pages.revised();
    pages.keep("alice", page(3), begun);
    expect(pages.get("alice")).toBeUndefined();
  });

  it("forgets a page after its TTL (a doorbell ring may have been lost)", () => {
    let now = 0;
    const pages = new ListPages(() => now);
    pages.keep("alice", page(3), pages.begin());
    now = 999;
    expect(pages.get("alice")?.totalSize).toBe(3);
    now = 1_001;
    expect(pages.get("alice")).toBeUndefined();
  });

  it("drops every page when the contexts they hold pass the bound", () => {
    const pages = new ListPages(() => 0);
    for (let i = 0; i < 500; i++) pages.keep(`p${i}`, page(20), pages.begin());
    expect(pages.get("p0")).toBeDefined();
    expect(pages.get("p499")).toBeDefined();
    // 10,000 contexts held: one more page goes past the bound, so it is kept alone.
    pages.keep("p500", page(20), pages.begin());
    expect(pages.get("p0")).toBeUndefined();
    expect(pages.get("p500")).toBeDefined();
  });

  it("counts a page kept again under the same key once", () => {
    const pages = new ListPages(() => 0);
    for (let i = 0; i < 1_000; i++) pages.keep("alice", page(20), pages.begin());
    pages.keep("bob", page(20), pages.begin());
    expect(pages.get("alice")).toBeDefined();
    expect(pages.get("bob")).toBeDefined();
  });
});
