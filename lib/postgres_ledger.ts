/**
 * The shared ledger: PostgreSQL, for several OrdemDeProducao instances on several hosts. The
 * database enforces one production order per RefCode (its primary key), so an order redelivered
 * to another instance becomes a duplicate, never a second production order. A batch of writes
 * commits in one transaction, with one multi-row statement per table.
 *
 * @module
 */

import postgres from "postgres";
import { describeError, errorCode, LedgerUnavailableError } from "./errors.ts";
import type { Ledger, LedgerResult, LedgerWrite, ProductionOrder } from "./ledger.ts";
import { defaultInstanceId } from "./ledger.ts";
import { redactUrl } from "./redact.ts";

/** Options for {@linkcode PostgresLedger.open}. */
export interface PostgresLedgerOptions {
  /**
   * Written into every production order this process creates.
   * @default {"<hostname>:<pid>"}
   */
  instanceId?: string;
  /**
   * The schema the tables live in (created if missing); tests use a schema of their own.
   * @default {the URL's `search_path` parameter, else "public"}
   */
  schema?: string;
  /**
   * A clock, for tests.
   * @default {() => new Date()}
   */
  now?: () => Date;
  /**
   * Connections in the pool.
   * @default {4}
   */
  maxConnections?: number;
}

const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

/**
 * Error codes that mean the database cannot take work now, not that the work is wrong: the
 * connection (refused, reset, timed out, closed) and the SQLSTATEs of a server that is shutting
 * down, starting, read-only, or out of disk, memory or connections.
 */
const UNAVAILABLE = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "EPIPE",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENOTFOUND",
  "EAI_AGAIN",
  "CONNECTION_CLOSED",
  "CONNECTION_ENDED",
  "CONNECTION_DESTROYED",
  "CONNECT_TIMEOUT",
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

/** A ledger in PostgreSQL. Open it with {@linkcode PostgresLedger.open}. */
export class PostgresLedger implements Ledger {
  readonly #sql: postgres.Sql;
  readonly #safeUrl: string;
  readonly #instanceId: string;
  readonly #now: () => Date;

  private constructor(
    sql: postgres.Sql,
    safeUrl: string,
    instanceId: string,
    now: () => Date,
  ) {
    this.#sql = sql;
    this.#safeUrl = safeUrl;
    this.#instanceId = instanceId;
    this.#now = now;
  }

  /**
   * Connects and creates the schema and tables if they do not exist (an idempotent migration,
   * safe when several instances start at once).
   *
   * @throws {Error} naming the database (without its password) when it cannot be reached.
   */
  static async open(url: string, options: PostgresLedgerOptions = {}): Promise<PostgresLedger> {
    let fromUrl: string | null = null;
    try {
      fromUrl = new URL(url).searchParams.get("search_path");
    } catch {
      // Not a URL: postgres() names the problem below.
    }
    const schema = options.schema ?? fromUrl ?? "public";
    if (!SCHEMA_NAME.test(schema)) {
      throw new RangeError(
        `schema must be a lower-case SQL identifier, got ${JSON.stringify(schema)}`,
      );
    }
    const safeUrl = redactUrl(url);
    const sql = postgres(url, {
      max: options.maxConnections ?? 4,
      onnotice: () => {},
      connection: { search_path: schema, application_name: "productionorder" },
      connect_timeout: 10,
      // Reconnect at once when asked: while the database is away the consumer's breaker paces
      // the attempts (the client's own backoff grows to 20 s and would delay the recovery).
      backoff: () => 0,
    });
    try {
      await sql.begin(async (tx) => {
        // One migrating instance at a time: CREATE ... IF NOT EXISTS races with itself.
        await tx`SELECT pg_advisory_xact_lock(hashtext('productionorder ledger schema'))`;
        await tx.unsafe(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
        await tx.unsafe(`
          CREATE TABLE IF NOT EXISTS ${schema}.production_orders (
            ref_code    text PRIMARY KEY,
            color_code  text NOT NULL,
            quantity    bigint NOT NULL,
            created_at  timestamptz NOT NULL DEFAULT now(),
            attempt     integer NOT NULL,
            instance_id text NOT NULL
          );
          CREATE TABLE IF NOT EXISTS ${schema}.forwarded_messages (
            message_key text NOT NULL,
            hop         text NOT NULL,
            outcome     text NOT NULL,
            at          timestamptz NOT NULL DEFAULT now(),
            instance_id text NOT NULL,
            PRIMARY KEY (message_key, hop)
          );`);
      });
    } catch (error) {
      await sql.end({ timeout: 1 }).catch(() => {});
      throw new Error(`cannot open the ledger at ${safeUrl}: ${redactUrl(describeError(error))}`, {
        cause: error,
      });
    }
    return new PostgresLedger(
      sql,
      safeUrl,
      options.instanceId ?? defaultInstanceId(),
      options.now ?? (() => new Date()),
    );
  }

  async commit(writes: readonly LedgerWrite[]): Promise<LedgerResult[]> {
    const at = this.#now();
    const orders = writes.flatMap((w) =>
      w.kind === "order"
        ? [{
          ref_code: w.order.refCode,
          color_code: w.order.colorCode,
          quantity: w.order.quantity,
          attempt: w.attempt,
          created_at: at,
          instance_id: this.#instanceId,
        }]
        : []
    );
    const forwards = writes.flatMap((w) =>
      w.kind === "forward"
        ? [{
          message_key: w.messageKey,
          hop: w.hop,
          outcome: w.outcome,
          at,
          instance_id: this.#instanceId,
        }]
        : []
    );
    // Rows in key order: two instances inserting overlapping RefCodes take their locks in the
    // same order, so they cannot deadlock.
    orders.sort((x, y) => (x.ref_code < y.ref_code ? -1 : x.ref_code > y.ref_code ? 1 : 0));
    forwards.sort((x, y) => {
      const a = `${x.message_key}\u0000${x.hop}`;
      const b = `${y.message_key}\u0000${y.hop}`;
      return a < b ? -1 : a > b ? 1 : 0;
    });
    const created = new Set<string>();
    await this.#unavailableAs(() =>
      this.#sql.begin(async (tx) => {
        if (orders.length > 0) {
          const rows = await tx`
          INSERT INTO production_orders ${
            tx(orders, "ref_code", "color_code", "quantity", "attempt", "created_at", "instance_id")
          }
          ON CONFLICT (ref_code) DO NOTHING RETURNING ref_code`;
          for (const row of rows) created.add(row.ref_code as string);
        }
        if (forwards.length > 0) {
          await tx`
          INSERT INTO forwarded_messages ${
            tx(forwards, "message_key", "hop", "outcome", "at", "instance_id")
          }
          ON CONFLICT DO NOTHING`;
        }
      })
    );
    // The first write of a RefCode the statement inserted is `created`; any other is a duplicate.
    return writes.map((w) => {
      if (w.kind === "forward") return "recorded";
      return created.delete(w.order.refCode) ? "created" : "duplicate";
    });
  }

  async wasForwarded(messageKey: string, hop: string): Promise<boolean> {
    const rows = await this.#unavailableAs(() =>
      this.#sql`
      SELECT 1 FROM forwarded_messages WHERE message_key = ${messageKey} AND hop = ${hop}`
    );
    return rows.length > 0;
  }

  async probe(): Promise<void> {
    await this.#unavailableAs(() => this.#sql`SELECT 1`);
  }

  /** Runs a query; an outage of the database becomes a LedgerUnavailableError. */
  async #unavailableAs<T>(query: () => Promise<T>): Promise<T> {
    try {
      return await query();
    } catch (error) {
      const code = errorCode(error);
      if (code === undefined || !UNAVAILABLE.has(code)) throw error;
      throw new LedgerUnavailableError(
        `the PostgreSQL ledger at ${this.#safeUrl} is unavailable (${code}): ${
          redactUrl(describeError(error))
        }`,
        { code, cause: error },
      );
    }
  }

  async findOrder(refCode: string): Promise<ProductionOrder | undefined> {
    const [row] = await this.#sql`
      SELECT ref_code, color_code, quantity, created_at, attempt, instance_id
      FROM production_orders WHERE ref_code = ${refCode}`;
    if (!row) return undefined;
    return {
      refCode: row.ref_code as string,
      colorCode: row.color_code as string,
      quantity: Number(row.quantity),
      createdAt: (row.created_at as Date).toISOString(),
      attempt: Number(row.attempt),
      instanceId: row.instance_id as string,
    };
  }

  async countOrders(): Promise<number> {
    const [row] = await this.#sql`SELECT count(*)::bigint AS n FROM production_orders`;
    return Number(row?.n ?? 0);
  }

  /** Production orders per instance, for reports on how work spread. */
  async ordersByInstance(): Promise<Record<string, number>> {
    const rows = await this.#sql`
      SELECT instance_id, count(*)::bigint AS n FROM production_orders GROUP BY instance_id`;
    return Object.fromEntries(rows.map((r) => [r.instance_id as string, Number(r.n)]));
  }

  /** Deletes every production order and hop record (the demo starts from an empty ledger). */
  async clear(): Promise<void> {
    await this.#sql`TRUNCATE production_orders, forwarded_messages`;
  }

  async close(): Promise<void> {
    await this.#sql.end({ timeout: 5 });
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
