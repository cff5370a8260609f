/** Where the store's queries run, typed once for the files that build them. */
import type { AppDatabase } from "./database.js";

/** A drizzle transaction on either driver. */
export type AppTransaction = Parameters<Parameters<AppDatabase["transaction"]>[0]>[0];

/** Where a query runs: the database (outside transactions) or a transaction. */
export type Executor = AppDatabase | AppTransaction;

