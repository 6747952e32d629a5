/**
 * Opening the ledger a URL names: `sqlite:PATH` or `postgres://…`.
 *
 * @module
 */

import { backoffDelay } from "./backoff.ts";
import { errorCode } from "./errors.ts";
import type { Ledger, LedgerReader } from "./ledger.ts";
import { PostgresLedger } from "./postgres_ledger.ts";
import { SqliteLedger } from "./sqlite_ledger.ts";
import { SqliteLedgerReader } from "./sqlite_ledger_reader.ts";

/**
 * Error codes of a PostgreSQL that is not up yet: refused or unresolved connections, a connect
 * timeout (postgres.js), and SQLSTATE 57P03 "the database system is starting up".
 */
const STARTING = new Set(["ECONNREFUSED", "ENOTFOUND", "EAI_AGAIN", "CONNECT_TIMEOUT", "57P03"]);

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
      const transient = STARTING.has(errorCode(error) ?? "");
      const left = (options.retryForMs ?? 0) - (performance.now() - started);
      if (!transient || left <= 0 || options.signal?.aborted) throw error;
      // At most the time left, and not past an abort: a SIGTERM while the database starts.
      await sleep(Math.min(backoffDelay(round), left), options.signal);
      if (options.signal?.aborted) throw error;
    }
  }
}

/**
 * Opens the ledger a URL names for reading only, beside a service that writes it: a SQLite file
 * read-only without its lock, or PostgreSQL in read-only sessions that change no schema.
 *
 * @throws {Error} when it cannot be opened (a SQLite file that does not exist yet, say).
 */
export async function openLedgerReader(url: string): Promise<LedgerReader> {
  if (url.startsWith("sqlite:")) return SqliteLedgerReader.open(url.slice("sqlite:".length));
  return await PostgresLedger.open(url, { instanceId: "reader", migrate: false });
}

/** Waits `ms`, or less when `signal` aborts meanwhile. */
function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}
