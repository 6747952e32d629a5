/**
 * The write side of the SQLite stock store: one connection, one transaction per batch of
 * operations, each operation in a savepoint of its own, so that a refused movement leaves the
 * others of its batch alone and a batch costs one fsync. Runs in the store's worker for a file
 * (the fsync never blocks the event loop) and on the main thread for an in-memory store, as the
 * ledger's writer does (_sqlite_writer.ts, whose connection settings and outage codes it shares).
 *
 * @module
 */

import type { SqliteWorkerReply } from "./_sqlite_worker_client.ts";
import type { DatabaseSync, StatementSync } from "node:sqlite";
import { unavailableCode } from "./_sqlite_writer.ts";
import { replayedResult } from "./movement_replay.ts";
import {
  applyMovement,
  type Movement,
  type MovementResult,
  type OutboxFailure,
  StockError,
  type StockErrorCode,
  type StockItem,
  type StockItemSettings,
  unknownColor,
} from "./stock_store.ts";

/** The tables of the stock store. */
export const STOCK_SCHEMA = `
  CREATE TABLE IF NOT EXISTS stock_items (
    color            TEXT PRIMARY KEY,
    quantity         INTEGER NOT NULL CHECK (quantity >= 0),
    reorder_point    INTEGER NOT NULL CHECK (reorder_point >= 0),
    reorder_quantity INTEGER NOT NULL CHECK (reorder_quantity >= 1),
    updated_at       TEXT NOT NULL
  ) STRICT;
  CREATE TABLE IF NOT EXISTS stock_movements (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    color          TEXT NOT NULL,
    delta          INTEGER NOT NULL,
    quantity_after INTEGER NOT NULL,
    at             TEXT NOT NULL,
    reason         TEXT,
    ref_code       TEXT,
    idempotency_key TEXT
  ) STRICT;
  CREATE TABLE IF NOT EXISTS stock_outbox (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    ref_code   TEXT NOT NULL UNIQUE,
    color_code TEXT NOT NULL,
    quantity   INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    sent_at    TEXT,
    attempts   INTEGER NOT NULL DEFAULT 0,
    last_error TEXT
  ) STRICT;
  CREATE INDEX IF NOT EXISTS stock_outbox_unsent ON stock_outbox (id) WHERE sent_at IS NULL;
  CREATE INDEX IF NOT EXISTS stock_outbox_sent ON stock_outbox (sent_at) WHERE sent_at IS NOT NULL;
`;

/**
 * Brings a stock file made before idempotency keys up to date: the `idempotency_key` column and
 * its unique index. Safe when several processes open the file at once (one migrates at a time).
 */
export function migrateStock(db: DatabaseSync): void {
  db.exec("BEGIN IMMEDIATE");
  try {
    const columns = db.prepare("PRAGMA table_info(stock_movements)").all() as Array<
      { name: string }
    >;
    if (!columns.some((c) => c.name === "idempotency_key")) {
      db.exec("ALTER TABLE stock_movements ADD COLUMN idempotency_key TEXT");
    }
    db.exec(
      `CREATE UNIQUE INDEX IF NOT EXISTS stock_movements_idempotency_key
       ON stock_movements (idempotency_key)`,
    );
    db.exec("COMMIT");
  } catch (error) {
    try {
      db.exec("ROLLBACK");
    } catch { /* ended already */ }
    throw error;
  }
}

/** One write of a batch. */
export type StockOp =
  | { readonly kind: "set"; readonly settings: StockItemSettings; readonly at: string }
  | { readonly kind: "move"; readonly movement: Movement; readonly at: string }
  | {
    readonly kind: "finish";
    readonly sent: readonly number[];
    readonly failed: readonly OutboxFailure[];
    readonly at: string;
  }
  | { readonly kind: "delete-sent"; readonly before: string }
  | { readonly kind: "probe"; readonly at: string };

/**
 * What a committed movement did (it crosses from the worker: plain data and dates), or, for a
 * repeated idempotency key, what the first one did.
 */
export type MoveRecord = MovementResult;

/** One operation's result: its value, or why it was refused (the rest of its batch committed). */
export type StockOpResult =
  | { readonly value: StockItem | MoveRecord | number | null }
  | { readonly refused: { readonly code: StockErrorCode; readonly message: string } }
  | { readonly failed: string };

interface ItemRow {
  color: string;
  quantity: number;
  reorder_point: number;
  reorder_quantity: number;
  updated_at: string;
}

/** A row of `stock_items` as an item. */
export function itemOf(row: ItemRow): StockItem {
  return {
    color: String(row.color),
    quantity: Number(row.quantity),
    reorderPoint: Number(row.reorder_point),
    reorderQuantity: Number(row.reorder_quantity),
    updatedAt: String(row.updated_at),
  };
}

/** Commits batches of stock writes on one connection (whose schema must exist). */
export class SqliteStockWriter {
  readonly #db: DatabaseSync;
  readonly #getItem: StatementSync;
  readonly #setItem: StatementSync;
  readonly #updateQuantity: StatementSync;
  readonly #insertOutbox: StatementSync;
  readonly #insertMovement: StatementSync;
  readonly #recorded: StatementSync;
  readonly #markSent: StatementSync;
  readonly #markFailed: StatementSync;
  readonly #deleteSent: StatementSync;

  /** Prepares the statements on `db`. */
  constructor(db: DatabaseSync) {
    this.#db = db;
    this.#getItem = db.prepare("SELECT * FROM stock_items WHERE color = ?");
    this.#setItem = db.prepare(
      `INSERT INTO stock_items (color, quantity, reorder_point, reorder_quantity, updated_at)
       VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (color) DO UPDATE SET quantity = excluded.quantity,
         reorder_point = excluded.reorder_point, reorder_quantity = excluded.reorder_quantity,
         updated_at = excluded.updated_at`,
    );
    this.#updateQuantity = db.prepare(
      "UPDATE stock_items SET quantity = ?, updated_at = ? WHERE color = ?",
    );
    this.#insertOutbox = db.prepare(
      `INSERT INTO stock_outbox (ref_code, color_code, quantity, created_at) VALUES (?, ?, ?, ?)`,
    );
    this.#insertMovement = db.prepare(
      `INSERT INTO stock_movements
         (color, delta, quantity_after, at, reason, ref_code, idempotency_key)
       VALUES (?, ?, ?, ?, ?, ?, ?)`,
    );
    this.#recorded = db.prepare(
      `SELECT m.id, m.color, m.delta, m.reason, m.quantity_after, m.at, m.ref_code,
              o.id AS outbox_id, o.quantity AS outbox_quantity, o.attempts,
              i.reorder_point, i.reorder_quantity
       FROM stock_movements m
       LEFT JOIN stock_outbox o ON o.ref_code = m.ref_code
       LEFT JOIN stock_items i ON i.color = m.color
       WHERE m.idempotency_key = ?`,
    );
    this.#markSent = db.prepare(
      "UPDATE stock_outbox SET sent_at = ? WHERE id BETWEEN ? AND ? AND sent_at IS NULL",
    );
    this.#markFailed = db.prepare(
      "UPDATE stock_outbox SET attempts = attempts + 1, last_error = ? WHERE id = ?",
    );
    this.#deleteSent = db.prepare(
      "DELETE FROM stock_outbox WHERE sent_at IS NOT NULL AND sent_at < ?",
    );
  }

  /** Closes the connection, releasing its locks. */
  close(): void {
    if (this.#db.isOpen) this.#db.close();
  }

  /**
   * Commits `ops` in one transaction, each in a savepoint: a refused or failed operation is undone
   * alone. An outage (locked, read-only, full) fails the whole batch: thrown, nothing committed.
   */
  run(ops: readonly StockOp[]): StockOpResult[] {
    const results: StockOpResult[] = [];
    this.#db.exec("BEGIN IMMEDIATE");
    try {
      for (const op of ops) {
        this.#db.exec("SAVEPOINT op");
        try {
          results.push({ value: this.#apply(op) });
          this.#db.exec("RELEASE op");
        } catch (error) {
          this.#db.exec("ROLLBACK TO op");
          this.#db.exec("RELEASE op");
          if (unavailableCode(error) !== undefined) throw error;
          results.push(
            error instanceof StockError
              ? { refused: { code: error.code, message: error.message } }
              : { failed: error instanceof Error ? error.message : String(error) },
          );
        }
      }
      this.#db.exec("COMMIT");
    } catch (error) {
      try {
        this.#db.exec("ROLLBACK");
      } catch { /* a failed COMMIT may have ended it already */ }
      throw error;
    }
    return results;
  }

  #apply(op: StockOp): StockItem | MoveRecord | number | null {
    switch (op.kind) {
      case "set": {
        const s = op.settings;
        this.#setItem.run(s.color, s.quantity, s.reorderPoint, s.reorderQuantity, op.at);
        return { ...s, updatedAt: op.at };
      }
      case "move":
        return this.#move(op.movement, op.at);
      case "finish":
        // A statement per run of consecutive ids (a batch is usually one), not per row.
        for (const [first, last] of idRuns(op.sent)) this.#markSent.run(op.at, first, last);
        for (const failure of op.failed) this.#markFailed.run(failure.error, failure.id);
        return null;
      case "delete-sent":
        return Number(this.#deleteSent.run(op.before).changes);
      case "probe":
        return null; // BEGIN IMMEDIATE took the write lock, as a movement's batch does
    }
  }

  /**
   * The movement in order: the item, the outbox row (when it crosses), the history; or, for an
   * idempotency key recorded already, the first movement's result and nothing written.
   */
  #move(movement: Movement, at: string): MoveRecord {
    const key = movement.idempotencyKey;
    if (key !== undefined) {
      const recorded = this.#recorded.get(key) as Record<string, unknown> | undefined;
      if (recorded !== undefined) {
        return replayedResult({
          id: Number(recorded.id),
          color: String(recorded.color),
          delta: Number(recorded.delta),
          reason: recorded.reason === null ? null : String(recorded.reason),
          quantityAfter: Number(recorded.quantity_after),
          at: new Date(String(recorded.at)),
          refCode: recorded.ref_code === null ? null : String(recorded.ref_code),
          outbox: recorded.outbox_id === null ? undefined : {
            id: Number(recorded.outbox_id),
            quantity: Number(recorded.outbox_quantity),
            attempts: Number(recorded.attempts),
          },
          reorderPoint: Number(recorded.reorder_point ?? 0),
          reorderQuantity: Number(recorded.reorder_quantity ?? 0),
        }, movement);
      }
    }
    const row = this.#getItem.get(movement.color) as ItemRow | undefined;
    if (row === undefined) throw unknownColor(movement.color);
    const item = itemOf(row);
    const { after, crossed } = applyMovement(item, movement.delta);
    this.#updateQuantity.run(after, at, item.color);
    let request: MoveRecord["request"];
    if (crossed) {
      // The RefCode is made here, in the movement's transaction: a row published twice is one
      // request, which OrdemDeProducao's ledger takes once.
      const refCode = crypto.randomUUID();
      const { lastInsertRowid } = this.#insertOutbox.run(
        refCode,
        item.color,
        item.reorderQuantity,
        at,
      );
      request = {
        id: Number(lastInsertRowid),
        refCode,
        colorCode: item.color,
        quantity: item.reorderQuantity,
        createdAt: new Date(at),
        attempts: 0,
      };
    }
    const { lastInsertRowid } = this.#insertMovement.run(
      item.color,
      movement.delta,
      after,
      at,
      movement.reason ?? null,
      request?.refCode ?? null,
      key ?? null,
    );
    return {
      movementId: Number(lastInsertRowid),
      item: { ...item, quantity: after, updatedAt: at },
      before: item.quantity,
      request,
    };
  }
}

/** A request to the stock store's worker. */
export type StockWorkerRequest =
  | { readonly kind: "open"; readonly id: number; readonly path: string }
  | { readonly kind: "close"; readonly id: number }
  | { readonly kind: "run"; readonly id: number; readonly ops: readonly StockOp[] };

/** The worker's answer. */
export type StockWorkerReply = SqliteWorkerReply<StockOpResult>;

/**
 * `ids` as runs of consecutive ids, `[first, last]` each, in the order given: every id from
 * `first` to `last` is in `ids`, so a statement over the range touches only those rows.
 *
 * @example
 * ```ts
 * idRuns([4, 5, 6, 9, 10, 2]); // [[4, 6], [9, 10], [2, 2]]
 * ```
 */
function idRuns(ids: readonly number[]): [number, number][] {
  const runs: [number, number][] = [];
  let run: [number, number] | undefined;
  for (const id of ids) {
    if (run !== undefined && id === run[1] + 1) run[1] = id;
    else runs.push(run = [id, id]);
  }
  return runs;
}
