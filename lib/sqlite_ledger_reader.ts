/**
 * Reading a SQLite ledger: the queries of production orders and their journeys, shared by the
 * ledger and by a read-only reader that a service may be writing beside.
 *
 * @module
 */

import { DatabaseSync, type StatementSync } from "node:sqlite";
import {
  type ForwardRecord,
  type LedgerJourney,
  type LedgerReader,
  parseExtra,
  type ProductionOrder,
} from "./ledger.ts";

/** The read queries of production orders, shared by the ledger and its reader. */
export class OrderQueries {
  readonly #find: StatementSync;
  readonly #count: StatementSync;
  readonly #forwards: StatementSync;

  /** Prepares the queries on `db`. @throws when the ledger's tables do not exist yet. */
  constructor(db: DatabaseSync) {
    // Every column: a ledger from an older release, read without migrating, lacks the newer ones.
    this.#forwards = db.prepare(
      "SELECT * FROM forwarded_messages WHERE message_key = ? ORDER BY at, hop",
    );
    // Every column here too: `extra` is newer than the table.
    this.#find = db.prepare("SELECT * FROM production_orders WHERE ref_code = ?");
    this.#count = db.prepare("SELECT count(*) AS n FROM production_orders");
  }

  /** The production order of `refCode`, if any. */
  find(refCode: string): ProductionOrder | undefined {
    const row = this.#find.get(refCode) as Record<string, string | number | null> | undefined;
    if (!row) return undefined;
    const extra = parseExtra(row.extra);
    return {
      refCode: String(row.ref_code),
      colorCode: String(row.color_code),
      quantity: Number(row.quantity),
      createdAt: String(row.created_at),
      attempt: Number(row.attempt),
      instanceId: String(row.instance_id),
      ...(extra === undefined ? {} : { extra }),
    };
  }

  /** How many production orders there are. */
  count(): number {
    return Number((this.#count.get() as { n: number }).n);
  }

  /** The order of `refCode` and every hop it was passed on. */
  journey(refCode: string): LedgerJourney {
    const rows = this.#forwards.all(refCode) as Array<Record<string, string | number | null>>;
    const text = (value: string | number | null | undefined) =>
      value === null || value === undefined ? undefined : String(value);
    const forwards: ForwardRecord[] = rows.map((row) => ({
      hop: String(row.hop),
      outcome: String(row.outcome),
      at: String(row.at),
      error: text(row.error),
      delayMs: row.delay_ms === null || row.delay_ms === undefined
        ? undefined
        : Number(row.delay_ms),
      instanceId: text(row.instance_id),
    }));
    return { order: this.find(refCode), forwards };
  }
}

/**
 * A read-only view of a SQLite ledger that a service may be writing: takes no lock, creates
 * nothing; before the service has created its tables it finds no order.
 */
export class SqliteLedgerReader implements LedgerReader {
  readonly #db: DatabaseSync;
  #queries: OrderQueries | undefined;

  private constructor(db: DatabaseSync) {
    this.#db = db;
  }

  /** Opens the ledger file at `path` read-only. @throws {Error} when there is no such file. */
  static open(path: string): SqliteLedgerReader {
    const db = new DatabaseSync(path, { readOnly: true });
    db.exec("PRAGMA busy_timeout = 5000");
    return new SqliteLedgerReader(db);
  }

  #read(): OrderQueries | undefined {
    try {
      return this.#queries ??= new OrderQueries(this.#db);
    } catch {
      return undefined; // the service has not created its tables yet
    }
  }

  findOrder(refCode: string): Promise<ProductionOrder | undefined> {
    return Promise.resolve(this.#read()?.find(refCode));
  }

  countOrders(): Promise<number> {
    return Promise.resolve(this.#read()?.count() ?? 0);
  }

  journey(refCode: string): Promise<LedgerJourney> {
    return Promise.resolve(this.#read()?.journey(refCode) ?? { order: undefined, forwards: [] });
  }

  close(): Promise<void> {
    if (this.#db.isOpen) this.#db.close();
    return Promise.resolve();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
