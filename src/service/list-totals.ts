/**
 * ListContexts' total_size, kept per principal and filter between first pages: counting up to
 * TOTAL_SIZE_CAP + 1 readable rows is most of a first page's work, while the page itself is 20
 * rows of an index walk. Any revision of any context — this instance's commit or another's heard
 * on the doorbell — may change who reads what, so it drops every kept total; a total that was
 * counted while one happened is not kept. TTL_MS bounds what a lost doorbell ring can cost: a
 * total at most that old (total_size is an estimate in the contract, AIP-158, and later pages
 * already repeat the first page's figure).
 */
const TTL_MS = 1_000;
/** Kept totals at most; past it they are all dropped (a burst of distinct filters). */
const MAX_ENTRIES = 10_000;

interface Kept {
  readonly total: number;
  readonly at: number;
}

export class ListTotals {
  private readonly kept = new Map<string, Kept>();
  /** Moves on with every revision heard: a count started before it is not kept. */
  private generation = 0;

  constructor(private readonly now: () => number = Date.now) {}

  /** The kept total for `key`, if it is fresh. */
  get(key: string): number | undefined {
    const kept = this.kept.get(key);
    if (kept === undefined) return undefined;
    if (this.now() - kept.at > TTL_MS) {
      this.kept.delete(key);
      return undefined;
    }
    return kept.total;
  }

  /** Where counting starts: hand it to keep(). */
  begin(): number {
    return this.generation;
  }

  /** Keeps a total counted since `begin`, unless a revision was heard meanwhile. */
  keep(key: string, total: number, begun: number): void {
    if (begun !== this.generation) return;
    if (this.kept.size >= MAX_ENTRIES) this.kept.clear();
    this.kept.set(key, { total, at: this.now() });
  }

  /** A revision of some context: every kept total may be wrong now. */
  revised(): void {
    this.generation += 1;
    this.kept.clear();
  }
}
