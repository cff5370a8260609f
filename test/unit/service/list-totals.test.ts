import { describe, expect, it } from "vitest";
import { ListTotals } from "../../../src/service/list-totals.js";

describe("ListTotals", () => {
  it("keeps a total until a revision is heard", () => {
    const totals = new ListTotals(() => 0);
    totals.keep("alice", 3, totals.begin());
    expect(totals.get("alice")).toBe(3);
    totals.revised();
    expect(totals.get("alice")).toBeUndefined();
  });

  it("does not keep a total counted while a revision happened", () => {
    const totals = new ListTotals(() => 0);
    const begun = totals.begin();
    totals.revised();
    totals.keep("alice", 3, begun);
    expect(totals.get("alice")).toBeUndefined();
  });

  it("forgets a total after its TTL (a doorbell ring may have been lost)", () => {
    let now = 0;
    const totals = new ListTotals(() => now);
    totals.keep("alice", 3, totals.begin());
    now = 999;
    expect(totals.get("alice")).toBe(3);
    now = 1_001;
    expect(totals.get("alice")).toBeUndefined();
  });
});
