/**
 * The driver's load workers seen from the main thread: start them, split a scenario over them, and
 * collect what each measured.
 *
 * tsx's `--import` hooks do not reach worker threads on Node 20, so each worker starts from a line
 * of plain JavaScript that loads unary-worker.ts through `tsx/esm/api`'s `tsImport` (as the
 * fan-out benchmark's workers do).
 */
import { Worker } from "node:worker_threads";
import type { UnaryReply, UnaryResults, UnaryRun } from "./unary-protocol.js";

const WORKER_URL = new URL("./unary-worker.ts", import.meta.url).href;
const TSX_API_URL = import.meta.resolve("tsx/esm/api");
const BOOTSTRAP = `import(${JSON.stringify(TSX_API_URL)}).then(({ tsImport }) => tsImport(${JSON.stringify(WORKER_URL)}, ${JSON.stringify(WORKER_URL)}));`;

class UnaryWorker {
  private readonly worker: Worker;
  private readonly pending = new Map<number, { resolve: (value: UnaryResults | null) => void; reject: (error: Error) => void }>();
  private nextId = 1;
  private exited = false;

  constructor(readonly name: string) {
    this.worker = new Worker(BOOTSTRAP, { eval: true, name });
    this.worker.on("message", (reply: UnaryReply) => {
      const waiter = this.pending.get(reply.id);
      if (waiter === undefined) return;
      this.pending.delete(reply.id);
      if (reply.ok) waiter.resolve(reply.value);
      else waiter.reject(new Error(`${name}: ${reply.error}`));
    });
    const failAll = (error: Error): void => {
      for (const waiter of this.pending.values()) waiter.reject(error);
      this.pending.clear();
    };
    this.worker.on("error", (error) => failAll(new Error(`${name} crashed: ${error.stack ?? error.message}`)));
    this.worker.on("exit", (code) => {
      this.exited = true;
      failAll(new Error(`${name} exited with ${code}`));
    });
  }

  send(command: UnaryRun | { kind: "close" }): Promise<UnaryResults | null> {
    if (this.exited) return Promise.reject(new Error(`${this.name} has exited`));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ ...command, id });
    });
  }

  async stop(): Promise<void> {
    if (this.exited) return;
    await Promise.race([this.send({ kind: "close" }).catch(() => null), new Promise((resolve) => setTimeout(resolve, 3_000))]);
    await this.worker.terminate();
  }
}

/** Worker threads kept for the whole run (starting one costs ~1 s of tsx compilation). */
export class UnaryPool {
  private readonly workers: UnaryWorker[];

  constructor(size: number) {
    this.workers = Array.from({ length: size }, (_, i) => new UnaryWorker(`unary-${i}`));
  }

  get size(): number {
    return this.workers.length;
  }

  /**
   * Runs one scenario on every worker: the rate and the seeded items are split between them (item
   * i to worker i mod N, so consumable ids are never used twice).
   */
  async run(base: Omit<UnaryRun, "kind" | "items" | "rate" | "workerId">, rate: number, items: UnaryRun["items"]): Promise<UnaryResults[]> {
    const n = this.workers.length;
    const results = await Promise.all(
      this.workers.map((worker, w) =>
        // Shared ids too few to split (one big context) go to every worker whole.
        worker.send({ ...base, kind: "run", workerId: w, rate: rate / n, items: !base.consume && items.length < n ? items : items.filter((_, i) => i % n === w) }),
      ),
    );
    return results as UnaryResults[];
  }

  stop(): Promise<void[]> {
    return Promise.all(this.workers.map((w) => w.stop()));
  }
}
