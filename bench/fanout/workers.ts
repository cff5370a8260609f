/**
 * Load workers seen from the main thread: start one, send it commands, await the replies.
 *
 * tsx's `--import` hooks do not reach worker threads on Node 20, so each worker starts from a
 * few lines of plain JavaScript that load load-worker.ts through `tsx/esm/api`'s `tsImport`.
 */
import { Worker } from "node:worker_threads";
import type { OpenResults, WatchResults, WorkerCommand, WorkerReply, WriteResults } from "./protocol.js";

const WORKER_URL = new URL("./load-worker.ts", import.meta.url).href;
const TSX_API_URL = import.meta.resolve("tsx/esm/api");

/** A worker's code: CommonJS (eval), so it reaches the ESM loader through dynamic import(). */
const BOOTSTRAP = `import(${JSON.stringify(TSX_API_URL)}).then(({ tsImport }) => tsImport(${JSON.stringify(WORKER_URL)}, ${JSON.stringify(WORKER_URL)}));`;

type ReplyOf<C extends WorkerCommand> = C["kind"] extends "open-watchers"
  ? OpenResults
  : C["kind"] extends "write"
    ? WriteResults
    : C["kind"] extends "collect"
      ? WatchResults
      : null;

export class LoadWorker {
  private readonly worker: Worker;
  private readonly pending = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();
  private nextId = 1;
  private exited = false;

  constructor(readonly name: string) {
    this.worker = new Worker(BOOTSTRAP, { eval: true, name });
    this.worker.on("message", (reply: WorkerReply) => {
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

  /** Sends a command and resolves with the worker's reply. */
  send<C extends WorkerCommand>(command: C): Promise<ReplyOf<C>> {
    if (this.exited) return Promise.reject(new Error(`${this.name} has exited`));
    const id = this.nextId++;
    return new Promise<ReplyOf<C>>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (value: unknown) => void, reject });
      this.worker.postMessage({ ...command, id });
    });
  }

  /** Closes its streams and channels (bounded), then ends the thread. */
  async stop(): Promise<void> {
    if (this.exited) return;
    await Promise.race([this.send({ kind: "close" }).catch(() => null), new Promise((resolve) => setTimeout(resolve, 5_000))]);
    await this.worker.terminate();
  }
}
