/**
 * Opening the ledger a URL names: `sqlite:PATH` or `postgres://…`.
 *
 * @module
 */

import { backoffDelay } from "./backoff.ts";
import type { Ledger } from "./ledger.ts";
import { PostgresLedger } from "./postgres_ledger.ts";
import { SqliteLedger } from "./sqlite_ledger.ts";

/**
 * Opens the ledger a `sqlite:PATH` or `postgres://` URL names. A PostgreSQL that is not up yet
 * (refused connections, still starting) is tried again with backoff for `retryForMs`.
 *
 * @throws {Error} naming the ledger (without a password) when it cannot be opened.
 */
export async function openLedger(
  url: string,
  options: { instanceId?: string; retryForMs?: number; signal?: AbortSignal } = {},
): Promise<Ledger> {
  const { instanceId } = options;
  const ledgerOptions = instanceId === undefined ? {} : { instanceId };
  if (url.startsWith("sqlite:")) {
    return await SqliteLedger.open(url.slice("sqlite:".length), ledgerOptions);
  }
  const started = performance.now();
  for (let round = 1;; round++) {
    try {
      return await PostgresLedger.open(url, ledgerOptions);
    } catch (error) {
      const transient = /ECONNREFUSED|ENOTFOUND|EAI_AGAIN|starting up|CONNECT_TIMEOUT/.test(
        String((error as Error).message),
      );
      const elapsed = performance.now() - started;
      if (!transient || elapsed > (options.retryForMs ?? 0) || options.signal?.aborted) {
        throw error;
      }
      await new Promise((resolve) => setTimeout(resolve, backoffDelay(round)));
    }
  }
}
