/**
 * The write side of the SQLite ledger: one connection, one transaction per batch. Runs on the
 * main thread for an in-memory ledger, and in the ledger's worker for a file, so that the fsync
 * of a commit never blocks the event loop.
 *
 * @module
 */

import { DatabaseSync, type StatementSync } from "node:sqlite";
import type { SqliteWorkerReply } from "./_sqlite_worker_client.ts";
import { extraJson, type LedgerResult, type LedgerWrite } from "./ledger.ts";

/** The tables of the ledger. */
export const SCHEMA = `
  CREATE TABLE IF NOT EXISTS production_orders (
    ref_code    TEXT PRIMARY KEY,
    color_code  TEXT NOT NULL,
    quantity    INTEGER NOT NULL,
    created_at  TEXT NOT NULL,
    attempt     INTEGER NOT NULL,
    instance_id TEXT NOT NULL,
    extra       TEXT
  ) STRICT;
  CREATE TABLE IF NOT EXISTS forwarded_messages (
    message_key TEXT NOT NULL,
    hop         TEXT NOT NULL,
    outcome     TEXT NOT NULL,
    at          TEXT NOT NULL,
    error       TEXT,
    delay_ms    INTEGER,
    instance_id TEXT,
    PRIMARY KEY (message_key, hop)
  ) STRICT;
  CREATE TABLE IF NOT EXISTS ledger_probes (
    instance_id TEXT PRIMARY KEY,
    at          TEXT NOT NULL,
    payload     BLOB
  ) STRICT;
`;

/**
 * The bytes a probe writes: as much as a batch of a few hundred orders, so that a disk with room
 * for the probe has room for a commit.
 */
export const PROBE_BYTES = 64 * 1024;

/** Columns added to a table after its first release, with their types: added where missing. */
const ADDED_COLUMNS = [
  ["production_orders", "extra", "TEXT"],
  ["forwarded_messages", "error", "TEXT"],
  ["forwarded_messages", "delay_ms", "INTEGER"],
  ["forwarded_messages", "instance_id", "TEXT"],
] as const;

/** Creates the tables, and adds the columns a ledger written by an older release lacks. */
export function migrate(db: DatabaseSync): void {
  db.exec(SCHEMA);
  for (const [table, column, type] of ADDED_COLUMNS) {
    const columns = db.prepare(`PRAGMA table_info(${table})`).all() as Array<{ name: string }>;
    if (!columns.some((c) => c.name === column)) {
      db.exec(`ALTER TABLE ${table} ADD COLUMN ${column} ${type}`);
    }
  }
}

/**
 * SQLite's own texts (`sqlite3_errstr()`) for the result codes that mean the file cannot take
 * writes now: BUSY and LOCKED (another process holds the lock), READONLY, IOERR, FULL, CANTOPEN.
 * Deno's node:sqlite hands over the text only, so this is where an outage is told apart.
 */
const UNAVAILABLE = [
  ["busy", /database is locked|database table is locked/],
  ["readonly", /attempt to write a readonly database/],
  ["ioerr", /disk I\/O error/],
  ["full", /database or disk is full/],
  ["cantopen", /unable to open database file/],
] as const;

/** The outage code of a SQLite error (`busy`, `readonly`, …), or undefined for another error. */
export function unavailableCode(error: unknown): string | undefined {
  const message = error instanceof Error ? error.message : String(error);
  return UNAVAILABLE.find(([, pattern]) => pattern.test(message))?.[0];
}

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
  readonly #probeWrite: StatementSync;

  /** Closes the connection, releasing its locks. */
  close(): void {
    if (this.#db.isOpen) this.#db.close();
  }

  /** Prepares the statements on `db` (whose schema must exist). */
  constructor(db: DatabaseSync) {
    this.#db = db;
    this.#insertOrder = db.prepare(
      `INSERT INTO production_orders
         (ref_code, color_code, quantity, created_at, attempt, instance_id, extra)
       VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (ref_code) DO NOTHING`,
    );
    this.#insertForward = db.prepare(
      `INSERT INTO forwarded_messages (message_key, hop, outcome, at, error, delay_ms, instance_id)
       VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
    );
    this.#probeWrite = db.prepare(
      `INSERT INTO ledger_probes (instance_id, at, payload) VALUES (?, ?, randomblob(?))
       ON CONFLICT (instance_id) DO UPDATE SET at = excluded.at, payload = excluded.payload`,
    );
  }

  /** Commits `writes` in one transaction, stamped `at` by `instanceId`; one result per write. */
  commit(writes: readonly LedgerWrite[], at: string, instanceId: string): LedgerResult[] {
    const results: LedgerResult[] = [];
    this.#transaction(() => {
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
            extraJson(write.extra) ?? null,
          );
          results.push(changes === 1 ? "created" : "duplicate");
        } else {
          this.#insertForward.run(
            write.messageKey,
            write.hop,
            write.outcome,
            at,
            write.error ?? null,
            write.delayMs ?? null,
            instanceId,
          );
          results.push("recorded");
        }
      }
    });
    return results;
  }

  /** Runs `work` in one write transaction, committed, or rolled back when anything throws. */
  #transaction(work: () => void): void {
    this.#db.exec("BEGIN IMMEDIATE");
    try {
      work();
      this.#db.exec("COMMIT");
    } catch (error) {
      // A failed COMMIT may have ended the transaction already: keep the error that matters.
      try {
        this.#db.exec("ROLLBACK");
      } catch { /* no transaction left to roll back */ }
      throw error;
    }
  }

  /**
   * Commits a write as a batch would (the write lock, pages, the WAL, an fsync): throws while the
   * file cannot take commits, locked, read-only or full. Taking the lock and letting it go is not
   * enough: it passes on a read-only or full disk. Waits at most 100 ms for a lock another process
   * holds (commits wait 5 s): the breaker does the waiting.
   */
  probe(at: string, instanceId: string): void {
    this.#db.exec("PRAGMA busy_timeout = 100");
    try {
      this.#transaction(() => this.#probeWrite.run(instanceId, at, PROBE_BYTES));
    } finally {
      this.#db.exec("PRAGMA busy_timeout = 5000");
    }
  }
}

/** A request to the ledger worker. */
export type WorkerRequest =
  | { readonly kind: "open"; readonly id: number; readonly path: string }
  | { readonly kind: "close"; readonly id: number }
  | {
    readonly kind: "probe";
    readonly id: number;
    readonly at: string;
    readonly instanceId: string;
  }
  | {
    readonly kind: "commit";
    readonly id: number;
    readonly writes: readonly LedgerWrite[];
    readonly at: string;
    readonly instanceId: string;
  };

/** The ledger worker's answer. */
export type WorkerReply = SqliteWorkerReply<LedgerResult>;
