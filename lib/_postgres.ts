/**
 * What the PostgreSQL ledger and the PostgreSQL stock store share: where a URL points (its
 * schema), a pool with a statement timeout the client enforces too, one transaction on one
 * connection, and which errors are outages rather than the work's fault.
 *
 * @module
 */

import pg from "pg";
import { describeError, errorCode } from "./errors.ts";
import { redactUrl } from "./redact.ts";

const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

/**
 * SQLSTATEs that mean the database cannot take work now, not that the work is wrong: a lost
 * connection, and a server that is shutting down, starting, read-only, or out of disk, memory or
 * connections, or one that cancelled a statement past its `statement_timeout` (57014: the database
 * too slow or a table locked, not the work's fault).
 */
const UNAVAILABLE = new Set([
  "57014",
  "08000",
  "08001",
  "08003",
  "08004",
  "08006",
  "57P01",
  "57P02",
  "57P03",
  "53100",
  "53200",
  "53300",
  "25006",
]);

/**
 * Whether `error` means the database cannot take work now: a server error with one of the
 * outage SQLSTATEs, or any error that is not the server's own (no SQLSTATE: a refused, reset or
 * timed out connection), short of a programming error (`TypeError`, `RangeError`).
 */
export function isPostgresOutage(error: unknown): boolean {
  if (error instanceof pg.DatabaseError) return UNAVAILABLE.has(errorCode(error) ?? "");
  return error instanceof Error && !(error instanceof TypeError) && !(error instanceof RangeError);
}

/** The sentence an outage error says: which database, the code, and why (no password). */
export function outageText(what: string, error: unknown): { text: string; code: string } {
  const code = errorCode(error) ?? "connection";
  return {
    text: `${what} is unavailable (${code}): ${redactUrl(describeError(error))}`,
    code,
  };
}

/** Where a `postgres://` URL points: the URL without `search_path`, and the schema. */
export interface PostgresTarget {
  readonly connectionString: string;
  readonly schema: string;
}

/**
 * The connection string and schema of `url`: `schema`, else the URL's `search_path`, else
 * `public`.
 *
 * @throws {RangeError} for a schema that is not a lower-case SQL identifier.
 */
export function postgresTarget(url: string, schema: string | undefined): PostgresTarget {
  let target: URL | undefined;
  try {
    target = new URL(url);
  } catch {
    // Not a URL: pg names the problem when it connects.
  }
  const chosen = schema ?? target?.searchParams.get("search_path") ?? "public";
  if (!SCHEMA_NAME.test(chosen)) {
    throw new RangeError(
      `schema must be a lower-case SQL identifier, got ${JSON.stringify(chosen)}`,
    );
  }
  target?.searchParams.delete("search_path");
  return { connectionString: target?.href ?? url, schema: chosen };
}

/** Options for {@linkcode postgresPool}. */
export interface PostgresPoolOptions {
  readonly applicationName: string;
  /** Connections at most. */
  readonly max: number;
  /** The server's statement timeout; the client's is 1 s later (only a silent server meets it). */
  readonly statementTimeoutMs: number;
  /** Sessions that write nothing (`default_transaction_read_only`). @default {false} */
  readonly readOnly?: boolean;
}

/**
 * A pool on `target` with its schema as the search path, the statement timeout on both sides,
 * and TCP keepalives (a half-open connection fails instead of waiting for good).
 */
export function postgresPool(target: PostgresTarget, options: PostgresPoolOptions): pg.Pool {
  const timeoutMs = options.statementTimeoutMs;
  const pool = new pg.Pool({
    connectionString: target.connectionString,
    max: options.max,
    application_name: options.applicationName,
    options: `-c search_path=${target.schema} -c statement_timeout=${timeoutMs}` +
      (options.readOnly ? " -c default_transaction_read_only=on" : ""),
    connectionTimeoutMillis: Math.min(10_000, timeoutMs + 1_000),
    query_timeout: timeoutMs + 1_000,
    keepAlive: true,
    keepAliveInitialDelayMillis: 10_000,
  });
  // An idle connection that dies (the database restarting) is reported here, not thrown: the
  // next query on the pool opens a new one, or fails as an outage.
  pool.on("error", () => {});
  // A connection the server ends while it is checked out between queries emits "error" with no
  // pool listener on it, and an "error" nobody hears is thrown from the socket's callback,
  // ending the process (brianc/node-postgres#2762; once in about ten ledger outages under load).
  // Every connection is heard from its start: the query under way, or the next one, fails as an
  // outage all the same, and a client that failed is released as broken (inTransaction).
  pool.on("connect", (client: pg.PoolClient) => client.on("error", () => {}));
  return pool;
}

/**
 * Whether a failed COMMIT says for sure that nothing was committed: the server answered it with
 * an error that is not about the connection (a serialization failure, a deferred constraint).
 * Anything else (the connection lost, a timeout, a server going down) leaves the outcome unknown:
 * the server may have committed before its answer was lost.
 */
export function commitSurelyFailed(error: unknown): boolean {
  return error instanceof pg.DatabaseError && !isPostgresOutage(error);
}

/** Options for {@linkcode inTransaction}. */
export interface InTransactionOptions {
  /**
   * What a COMMIT whose outcome is unknown ({@linkcode commitSurelyFailed} false) throws. Without
   * it, such a failure goes through `classify` as any other (for work that is idempotent anyway,
   * as the ledger's orders are by RefCode).
   */
  readonly commitUnknown?: (error: unknown) => unknown;
}

/**
 * Runs `work` in one transaction on one connection of `pool`; what it throws (or the connect,
 * BEGIN or COMMIT) goes through `classify`, except a COMMIT of unknown outcome when
 * `options.commitUnknown` is given. A connection that failed or could not roll back is dropped,
 * not given to the next query.
 */
export async function inTransaction(
  pool: pg.Pool,
  work: (client: pg.PoolClient) => Promise<void>,
  classify: (error: unknown) => unknown,
  options: InTransactionOptions = {},
): Promise<void> {
  let client: pg.PoolClient;
  try {
    client = await pool.connect();
  } catch (error) {
    throw classify(error);
  }
  // A checked-out client whose connection the server ends (a shutdown) emits "error"; the
  // query under way rejects with it as well, so here it only must not go unheard.
  let broken: Error | undefined;
  const onError = (error: Error) => (broken = error);
  client.on("error", onError);
  let committing = false;
  try {
    await client.query("BEGIN");
    await work(client);
    committing = true;
    await client.query("COMMIT");
  } catch (error) {
    await client.query("ROLLBACK").catch((rollbackError: Error) => (broken = rollbackError));
    if (committing && options.commitUnknown && !commitSurelyFailed(error)) {
      broken ??= error as Error; // a connection whose COMMIT was not answered is not reused
      throw options.commitUnknown(error);
    }
    throw classify(error);
  } finally {
    client.off("error", onError);
    client.release(broken);
  }
}
