/**
 * PostgreSQL ledgers for the suites of a locked table: a schema of a test's own, and statements
 * that give up after 300 ms, so that a table someone locks turns commits and probes into timeouts
 * (SQLSTATE 57014) at once.
 *
 * @module
 */

import { PostgresLedger } from "../lib/postgres_ledger.ts";
import { POSTGRES_URL } from "./broker.ts";

/** A schema name no other test uses. */
export function uniqueSchema(): string {
  return `test_${crypto.randomUUID().replaceAll("-", "").slice(0, 12)}`;
}

/** A ledger in `schema` at {@linkcode POSTGRES_URL} whose statements time out after 300 ms. */
export function impatientLedger(schema: string, instanceId: string): Promise<PostgresLedger> {
  return PostgresLedger.open(POSTGRES_URL, { schema, instanceId, statementTimeoutMs: 300 });
}
