/**
 * The write side of the SQLite ledger: one connection, one transaction per batch. Runs on the
 * main thread for an in-memory ledger, and in the ledger's worker for a file, so that the fsync
 * of a commit never blocks the event loop.
 *
 * @module
 */

import { DatabaseSync, type StatementSync } from "node:sqlite";
import type { LedgerResult, LedgerWrite } from "./ledger.ts";

/** The tables of the ledger. */
export const SCHEMA = `
  CREATE TABLE IF NOT EXISTS production_orders (
    ref_code    TEXT PRIMARY KEY,
    color_code  TEXT NOT NULL,
    quantity    INTEGER NOT NULL,
    created_at  TEXT NOT NULL,
    attempt     INTEGER NOT NULL,
    instance_id TEXT NOT NULL
  ) STRICT;
  CREATE TABLE IF NOT EXISTS forwarded_messages (
    message_key TEXT NOT NULL,
    hop         TEXT NOT NULL,
    outcome     TEXT NOT NULL,
    at          TEXT NOT NULL,
    PRIMARY KEY (message_key, hop)
  ) STRICT;
`;

/** Opens a connection with the ledger's settings: WAL, and a commit is durable when it returns. */
export function openDatabase(path: string): DatabaseSync {
  const db = new DatabaseSync(path);
  // busy_timeout first: opening a file another connection holds (a reader, or WAL recovery after a
  // crash) waits instead of failing with "database is locked".
  db.exec("PRAGMA busy_timeout = 5000; PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;");
  return db;
}

/** Commits batches of ledger writes on one connection. */
export class SqliteWriter {
  readonly #db: DatabaseSync;
  readonly #insertOrder: StatementSync;
  readonly #insertForward: StatementSync;

  /** Closes the connection, releasing its locks. */
  close(): void {
    if (this.#db.isOpen) this.#db.close();
  }

  /** Prepares the statements on `db` (whose schema must exist). */
  constructor(db: DatabaseSync) {
    this.#db = db;
    this.#insertOrder = db.prepare(
      `INSERT INTO production_orders
         (ref_code, color_code, quantity, created_at, attempt, instance_id)
       VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (ref_code) DO NOTHING`,
    );
    this.#insertForward = db.prepare(
      `INSERT INTO forwarded_messages (message_key, hop, outcome, at) VALUES (?, ?, ?, ?)
       ON CONFLICT DO NOTHING`,
    );
  }

  /** Commits `writes` in one transaction, stamped `at` by `instanceId`; one result per write. */
  commit(writes: readonly LedgerWrite[], at: string, instanceId: string): LedgerResult[] {
    const results: LedgerResult[] = [];
    this.#db.exec("BEGIN IMMEDIATE");
    try {
      for (const write of writes) {
        if (write.kind === "order") {
          const { order } = write;
          const { changes } = this.#insertOrder.run(
            order.refCode,
            order.colorCode,
            order.quantity,
            at,
            write.attempt,
            instanceId,
          );
          results.push(changes === 1 ? "created" : "duplicate");
        } else {
          this.#insertForward.run(write.messageKey, write.hop, write.outcome, at);
          results.push("recorded");
        }
      }
      this.#db.exec("COMMIT");
    } catch (error) {
      this.#db.exec("ROLLBACK");
      throw error;
    }
    return results;
  }
}

/** A request to the ledger worker. */
export type WorkerRequest =
  | { readonly kind: "open"; readonly id: number; readonly path: string }
  | { readonly kind: "close"; readonly id: number }
  | {
    readonly kind: "commit";
    readonly id: number;
    readonly writes: readonly LedgerWrite[];
    readonly at: string;
    readonly instanceId: string;
  };

/** The worker's answer to a commit. */
export type WorkerReply =
  | { readonly id: number; readonly results: LedgerResult[] }
  | { readonly id: number; readonly closed: true }
  | { readonly id: number; readonly error: string };
