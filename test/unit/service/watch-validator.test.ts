/** The watch validator itself: it passes good recordings and catches each kind of violation. */
import { describe, expect, it } from "vitest";
import { checkWatchStreams, type LoggedEvent, type RecordedMessage, type RecordedStream } from "../../support/watch-validator.js";

/** Revisions 1..6; revision 3 holds two events. */
const LOG: LoggedEvent[] = [
  { revision: 1, eventId: "a" },
  { revision: 2, eventId: "b" },
  { revision: 3, eventId: "c1" },
  { revision: 3, eventId: "c2" },
  { revision: 4, eventId: "d" },
  { revision: 5, eventId: "e" },
  { revision: 6, eventId: "f" },
];

const IDS: Record<number, string[]> = { 1: ["a"], 2: ["b"], 3: ["c1", "c2"], 4: ["d"], 5: ["e"], 6: ["f"] };

function messages(...revisions: number[]): RecordedMessage[] {
  return revisions.map((revision) => ({ revision, eventIds: IDS[revision] ?? [] }));
}

function stream(from: number | undefined, ms: RecordedMessage[], extra: Partial<RecordedStream> = {}): RecordedStream {
  return { label: "w", from, messages: ms, ...extra };
}

function properties(streams: RecordedStream[]): string[] {
  return [...new Set(checkWatchStreams(LOG, streams).map((v) => v.property))].sort();
}

describe("the watch validator", () => {
  it("passes complete, ordered streams and exact resumptions", () => {
    const first = stream(1, messages(1, 2, 3), { label: "first" });
    const resumed = stream(4, messages(4, 5, 6), { label: "resumed", resumes: first, through: 6 });
    const fromEarlier = stream(2, messages(2, 3, 4, 5, 6), { label: "earlier", resumes: first, through: 6 });
    const fromNow = stream(undefined, messages(5, 6), { through: 6 });
    expect(checkWatchStreams(LOG, [first, resumed, fromEarlier, fromNow])).toEqual([]);
  });

  it("catches revisions out of order", () => {
    expect(properties([stream(1, messages(1, 2, 4, 3))])).toContain("ordered");
  });

  it("catches a revision delivered twice", () => {
    expect(properties([stream(1, messages(1, 2, 2, 3))])).toEqual(["unique"]);
  });

  it("catches a split revision, a foreign event and a revision that is not in the log", () => {
    expect(properties([stream(3, [{ revision: 3, eventIds: ["c1"] }, { revision: 4, eventIds: ["d"] }])])).toEqual(["atomic"]);
    expect(properties([stream(2, [{ revision: 2, eventIds: ["b", "x"] }])])).toEqual(["atomic"]);
    expect(properties([stream(2, [{ revision: 2, eventIds: ["b"] }, { revision: 3, eventIds: ["c2", "c1"] }])])).toEqual(["atomic"]);
    expect(properties([stream(7, [{ revision: 7, eventIds: ["g"] }])])).toEqual(["atomic"]);
  });

  it("catches a gap in the middle, a late first revision and a stream that stopped short", () => {
    expect(properties([stream(1, messages(1, 2, 4, 5))])).toEqual(["reliable"]);
    expect(properties([stream(2, messages(3, 4))])).toEqual(["reliable"]);
    expect(properties([stream(1, messages(1, 2), { through: 6 })])).toEqual(["reliable"]);
    expect(properties([stream(3, messages(2, 3))])).toEqual(["reliable"]);
  });

  it("catches a resumption that skips revisions or disagrees with the stream it resumed", () => {
    const first = stream(1, messages(1, 2), { label: "first" });
    expect(properties([stream(4, messages(4, 5), { resumes: first })])).toEqual(["resumable"]);
    const lying = stream(1, [{ revision: 1, eventIds: ["a"] }, { revision: 2, eventIds: ["zz"] }], { label: "lying" });
    expect(properties([stream(2, messages(2, 3), { resumes: lying })])).toEqual(["resumable"]);
    expect(properties([stream(undefined, messages(3), { resumes: first })])).toEqual(["resumable"]);
  });
});
