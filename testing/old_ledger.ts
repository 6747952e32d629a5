/**
 * A SQLite ledger file as an early release wrote it (no hop columns, no `extra`), for tests of the
 * migrations that bring it up to date.
 *
 * @module
 */

import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { tempDir } from "./broker.ts";

/**
 * Writes the early release's two tables in a file of a temporary directory, then runs `rows`
 * (INSERTs) in it; disposing of the result removes the directory.
 */
export async function oldSqliteLedger(
  rows: string,
): Promise<{ readonly path: string } & AsyncDisposable> {
  const dir = await tempDir();
  const path = join(dir.path, "old.sqlite");
  try {
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
  } catch (error) {
    await dir[Symbol.asyncDispose]();
    throw error;
  }
  return { path, [Symbol.asyncDispose]: () => dir[Symbol.asyncDispose]() };
}
