/**
 * The production-order ledger: where a processed order becomes a production order, at most once
 * per RefCode, and where the consumer remembers which messages it has already passed on (retried
 * or dead-lettered), so that a redelivered copy is not passed on twice.
 *
 * @module
 */

import { DatabaseSync, type StatementSync } from "node:sqlite";
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import type { Order } from "./order.ts";

/** The default ledger file, relative to the working directory. */
export const DEFAULT_LEDGER_PATH = "data/ledger.sqlite";

/** A write to the ledger; a batch of them commits in one transaction. */
export type LedgerWrite =
  | {
    /** Create a production order for this order. */
    readonly kind: "order";
    /** The validated order. */
    readonly order: Order;
    /** The attempt that processed it: 0 for the first delivery, n after n retries. */
    readonly attempt: number;
  }
  | {
    /** Remember that a message was passed on (retried or dead-lettered). */
    readonly kind: "forward";
    /** The message's identity (its message id). */
    readonly messageKey: string;
    /** Which hop of its journey was passed on: `<replays>:<retries>`. */
    readonly hop: string;
    /** What was done: `retry` or `dead-letter`. */
    readonly outcome: string;
  };

/** What a write did: `created` a production order, found it already there, or recorded. */
export type LedgerResult = "created" | "duplicate" | "recorded";

/** A production order as stored. */
export interface ProductionOrder {
  /** The order's reference (primary key). */
  readonly refCode: string;
  /** The colour's reference. */
  readonly colorCode: string;
  /** Units to produce. */
  readonly quantity: number;
  /** When the production order was created (ISO 8601). */
  readonly createdAt: string;
  /** The attempt that created it. */
  readonly attempt: number;
  /** The consumer instance that created it. */
  readonly instanceId: string;
}

/** The ledger's operations; every implementation keeps RefCode unique in the database itself. */
export interface Ledger extends AsyncDisposable {
  /** Commits a batch of writes in one durable transaction; one result per write, in order. */
  commit(writes: readonly LedgerWrite[]): Promise<LedgerResult[]>;
  /** Whether a message's hop was already passed on. */
  wasForwarded(messageKey: string, hop: string): Promise<boolean>;
  /** The production order of a RefCode, if there is one. */
  findOrder(refCode: string): Promise<ProductionOrder | undefined>;
  /** How many production orders there are. */
  countOrders(): Promise<number>;
  /** Closes the ledger. */
  close(): Promise<void>;
}

/** Options for {@linkcode SqliteLedger.open}. */
export interface SqliteLedgerOptions {
  /**
   * Written into every production order this process creates.
   * @default {"<hostname>:<pid>"}
   */
  instanceId?: string;
  /**
   * A clock, for tests.
   * @default {() => new Date()}
   */
  now?: () => Date;
}

const SCHEMA = `
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

/** The default instance id: host name and process id. */
export function defaultInstanceId(): string {
  return `${Deno.hostname()}:${Deno.pid}`;
}

/**
 * The embedded ledger: one SQLite file in WAL mode with `synchronous=FULL`, so a committed batch
 * survives a crash of the process or of the machine.
 */
export class SqliteLedger implements Ledger {
  readonly #db: DatabaseSync;
  readonly #instanceId: string;
  readonly #now: () => Date;
  readonly #insertOrder: StatementSync;
  readonly #insertForward: StatementSync;
  readonly #findForward: StatementSync;
  readonly #findOrder: StatementSync;
  readonly #countOrders: StatementSync;

  private constructor(db: DatabaseSync, options: SqliteLedgerOptions) {
    this.#db = db;
    this.#instanceId = options.instanceId ?? defaultInstanceId();
    this.#now = options.now ?? (() => new Date());
    this.#insertOrder = db.prepare(
      `INSERT INTO production_orders
         (ref_code, color_code, quantity, created_at, attempt, instance_id)
       VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (ref_code) DO NOTHING`,
    );
    this.#insertForward = db.prepare(
      `INSERT INTO forwarded_messages (message_key, hop, outcome, at) VALUES (?, ?, ?, ?)
       ON CONFLICT DO NOTHING`,
    );
    this.#findForward = db.prepare(
      "SELECT 1 AS found FROM forwarded_messages WHERE message_key = ? AND hop = ?",
    );
    this.#findOrder = db.prepare(
      `SELECT ref_code, color_code, quantity, created_at, attempt, instance_id
       FROM production_orders WHERE ref_code = ?`,
    );
    this.#countOrders = db.prepare("SELECT count(*) AS n FROM production_orders");
  }

  /** Opens (creating if needed) the ledger at `path`; `":memory:"` makes a throwaway one. */
  static open(path: string, options: SqliteLedgerOptions = {}): SqliteLedger {
    if (path !== ":memory:") mkdirSync(dirname(path), { recursive: true });
    const db = new DatabaseSync(path);
    db.exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA busy_timeout = 5000;");
    db.exec(SCHEMA);
    return new SqliteLedger(db, options);
  }

  commit(writes: readonly LedgerWrite[]): Promise<LedgerResult[]> {
    if (writes.length === 0) return Promise.resolve([]);
    const at = this.#now().toISOString();
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
            this.#instanceId,
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
      return Promise.reject(error);
    }
    return Promise.resolve(results);
  }

  wasForwarded(messageKey: string, hop: string): Promise<boolean> {
    return Promise.resolve(this.#findForward.get(messageKey, hop) !== undefined);
  }

  findOrder(refCode: string): Promise<ProductionOrder | undefined> {
    const row = this.#findOrder.get(refCode) as Record<string, string | number> | undefined;
    if (!row) return Promise.resolve(undefined);
    return Promise.resolve({
      refCode: String(row.ref_code),
      colorCode: String(row.color_code),
      quantity: Number(row.quantity),
      createdAt: String(row.created_at),
      attempt: Number(row.attempt),
      instanceId: String(row.instance_id),
    });
  }

  countOrders(): Promise<number> {
    const row = this.#countOrders.get() as { n: number };
    return Promise.resolve(Number(row.n));
  }

  close(): Promise<void> {
    if (this.#db.isOpen) this.#db.close();
    return Promise.resolve();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
