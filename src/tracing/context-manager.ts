/**
 * The active OpenTelemetry context carried across `await` by Node's AsyncLocalStorage, so a span
 * made active for a call (`context.with`) is still the active one when the call's database query
 * runs several awaits later. The API's default manager is a no-op: `context.active()` is always
 * the root context there, and a query could never find the call it belongs to.
 *
 * The same thing as @opentelemetry/context-async-hooks' AsyncLocalStorageContextManager, minus its
 * EventEmitter binding (nothing here binds emitters), so the service needs no further package.
 */
import { AsyncLocalStorage } from "node:async_hooks";
import { context, ROOT_CONTEXT, type Context, type ContextManager } from "@opentelemetry/api";

/** A ContextManager on AsyncLocalStorage. */
export class AsyncLocalStorageContextManager implements ContextManager {
  private storage = new AsyncLocalStorage<Context>();

  active(): Context {
    return this.storage.getStore() ?? ROOT_CONTEXT;
  }

  with<A extends unknown[], F extends (...args: A) => ReturnType<F>>(ctx: Context, fn: F, thisArg?: ThisParameterType<F>, ...args: A): ReturnType<F> {
    return this.storage.run(ctx, () => fn.apply(thisArg, args));
  }

  bind<T>(ctx: Context, target: T): T {
    if (typeof target !== "function") return target;
    // eslint-disable-next-line @typescript-eslint/no-this-alias -- the bound function needs both its own `this` and the manager.
    const manager = this;
    const bound = function (this: unknown, ...args: unknown[]) {
      return manager.with(ctx, () => (target as (...a: unknown[]) => unknown).apply(this, args));
    };
    return bound as T;
  }

  enable(): this {
    return this;
  }

  disable(): this {
    this.storage.disable();
    this.storage = new AsyncLocalStorage<Context>();
    return this;
  }
}

let registered: boolean | undefined;

/**
 * Makes AsyncLocalStorage the process's context manager, once. The manager is process-wide (the
 * API keeps one), but unlike a tracer provider it holds no app's state: every app in the process
 * (tests start several) shares it harmlessly. Returns false when another manager was registered
 * first (then that one carries the context, and spans still nest as long as it propagates).
 */
export function useAsyncLocalStorageContext(): boolean {
  registered ??= context.setGlobalContextManager(new AsyncLocalStorageContextManager());
  return registered;
}
