/**
 * A SQLite ledger file as an early release wrote it (no hop columns, no `extra`), for tests of the
 * migrations that bring it up to date.
 *
 * @module
 */

import { DatabaseSync } from "node:sqlite";

/** Writes the early release's two tables at `path`, then runs `rows` (INSERTs) in it. */
export function writeOldSqliteLedger(path: string, rows: string): void {
  const old = new DatabaseSync(path);
  try {
    old.exec(`
      CREATE TABLE production_orders (ref_code TEXT PRIMARY KEY, color_code TEXT NOT NULL,
        quantity INTEGER NOT NULL, created_at TEXT NOT NULL, attempt INTEGER NOT NULL,
        instance_id TEXT NOT NULL) STRICT;
      CREATE TABLE forwarded_messages (message_key TEXT NOT NULL, hop TEXT NOT NULL,
        outcome TEXT NOT NULL, at TEXT NOT NULL, PRIMARY KEY (message_key, hop)) STRICT;
      ${rows}
    `);
  } finally {
    old.close();
  }
}
