/**
 * Opening the stock store a URL names: `sqlite:PATH` or `postgres://…`.
 *
 * @module
 */

import { backoffDelay } from "./backoff.ts";
import { errorCode } from "./errors.ts";
import { PostgresStockStore } from "./postgres_stock_store.ts";
import { SqliteStockStore } from "./sqlite_stock_store.ts";
import type { StockStore } from "./stock_store.ts";

/** Error codes of a PostgreSQL that is not up yet (refused, unresolved, starting: 57P03). */
const STARTING = new Set(["ECONNREFUSED", "ENOTFOUND", "EAI_AGAIN", "57P03"]);

/** Options for {@linkcode openStockStore}. */
export interface OpenStockStoreOptions {
  /**
   * How long a PostgreSQL that is not up yet is tried again, with backoff, in milliseconds.
   * @default {0}
   */
  readonly retryForMs?: number;
  /** Stops trying. */
  readonly signal?: AbortSignal;
  /** The clock movements are stamped with (tests). */
  readonly now?: () => Date;
}

/**
 * Opens the stock store a `sqlite:PATH` or `postgres://` URL names, creating its tables where
 * missing.
 *
 * @throws {Error} naming the store (without a password) when it cannot be opened.
 */
export async function openStockStore(
  url: string,
  options: OpenStockStoreOptions = {},
): Promise<StockStore> {
  const clock = options.now === undefined ? {} : { now: options.now };
  if (url.startsWith("sqlite:")) {
    return await SqliteStockStore.open(url.slice("sqlite:".length), clock);
  }
  const started = performance.now();
  for (let round = 1;; round++) {
    try {
      return await PostgresStockStore.open(url, clock);
    } catch (error) {
      const starting = STARTING.has(errorCode(error) ?? "");
      if (
        !starting || performance.now() - started > (options.retryForMs ?? 0) ||
        options.signal?.aborted
      ) {
        throw error;
      }
      await new Promise((resolve) => setTimeout(resolve, backoffDelay(round)));
    }
  }
}
