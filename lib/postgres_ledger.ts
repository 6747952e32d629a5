/**
 * The shared ledger: PostgreSQL, for several OrdemDeProducao instances on several hosts. The
 * database enforces one production order per RefCode (its primary key), so an order redelivered
 * to another instance becomes a duplicate, never a second production order. A batch of writes
 * commits in one transaction, with one multi-row statement per table.
 *
 * The client is node-postgres (`pg`). postgres.js, used before, threw an uncaught TypeError from
 * inside its connection code when the database went away under load
 * (`Cannot read properties of null (reading 'write')`, porsager/postgres#1066), ending the
 * process in 2 of 6 runs of tests/ledger_outage_test.ts; `pg` came through the same test.
 *
 * @module
 */

import pg from "pg";
import {
  inTransaction,
  isPostgresOutage,
  outageText,
  postgresPool,
  postgresTarget,
} from "./_postgres.ts";
import { describeError, LedgerUnavailableError } from "./errors.ts";
import type {
  Ledger,
  LedgerJourney,
  LedgerResult,
  LedgerWrite,
  ProductionOrder,
} from "./ledger.ts";
import { defaultInstanceId, extraJson, parseExtra } from "./ledger.ts";
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
  /**
   * How long one statement may take, in milliseconds, before it fails as an outage: enforced by
   * the server (`statement_timeout`) and by the client (a half-open connection, whose server no
   * longer answers, would otherwise stall a commit for good and never trip the breaker).
   * Connections also send TCP keepalives, so a dead peer is found while idle.
   * @default {15000}
   */
  statementTimeoutMs?: number;
  /**
   * Create the schema and tables where missing (the services), or only read (a reader: the
   * console): every session read-only, and a clear error when there are no tables to read.
   * @default {true}
   */
  migrate?: boolean;
}

/** The bytes a probe writes: as much as a batch of a few hundred orders. */
const PROBE_BYTES = 64 * 1024;

/** The tables, created if missing (an idempotent migration). */
function schemaSql(schema: string): string {
  return `
    CREATE SCHEMA IF NOT EXISTS ${schema};
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
    );
    -- In the order a commit takes the tables (production orders, then hops): an ALTER locks its
    -- table even with nothing to add, and the opposite order deadlocked a starting instance with
    -- a running one's commit.
    ALTER TABLE ${schema}.production_orders ADD COLUMN IF NOT EXISTS extra text;
    ALTER TABLE ${schema}.forwarded_messages
      ADD COLUMN IF NOT EXISTS error text,
      ADD COLUMN IF NOT EXISTS delay_ms integer;
    CREATE TABLE IF NOT EXISTS ${schema}.ledger_probes (
      instance_id text PRIMARY KEY,
      at          timestamptz NOT NULL,
      payload     bytea
    );`;
}

/** A ledger in PostgreSQL. Open it with {@linkcode PostgresLedger.open}. */
export class PostgresLedger implements Ledger {
  readonly #pool: pg.Pool;
  readonly #safeUrl: string;
  readonly #instanceId: string;
  readonly #now: () => Date;

  private constructor(pool: pg.Pool, safeUrl: string, instanceId: string, now: () => Date) {
    this.#pool = pool;
    this.#safeUrl = safeUrl;
    this.#instanceId = instanceId;
    this.#now = now;
  }

  /**
   * Connects and creates the schema and tables if they do not exist (an idempotent migration,
   * safe when several instances start at once); with `migrate: false`, only checks they do.
   *
   * @throws {Error} naming the database (without its password) when it cannot be reached.
   */
  static async open(url: string, options: PostgresLedgerOptions = {}): Promise<PostgresLedger> {
    const target = postgresTarget(url, options.schema);
    const { schema } = target;
    const safeUrl = redactUrl(url);
    const pool = postgresPool(target, {
      applicationName: "productionorder",
      max: options.maxConnections ?? 4,
      statementTimeoutMs: options.statementTimeoutMs ?? 15_000,
      readOnly: options.migrate === false,
    });
    const ledger = new PostgresLedger(
      pool,
      safeUrl,
      options.instanceId ?? defaultInstanceId(),
      options.now ?? (() => new Date()),
    );
    try {
      if (options.migrate === false) {
        const { rows: [row] } = await ledger.#query(
          "SELECT to_regclass($1) IS NOT NULL AS present",
          [`${schema}.forwarded_messages`],
        );
        if (!row?.present) {
          throw new Error(
            `no ledger in schema ${schema}: OrdemDeProducao creates it when it first starts`,
          );
        }
      } else {
        await ledger.#transaction(async (client) => {
          // One migrating instance at a time: CREATE ... IF NOT EXISTS races with itself.
          await client.query(
            "SELECT pg_advisory_xact_lock(hashtext('productionorder ledger schema'))",
          );
          await client.query(schemaSql(schema));
        });
      }
    } catch (error) {
      await pool.end().catch(() => {});
      // A LedgerUnavailableError's message already says its cause: said once, not twice.
      const why = error instanceof LedgerUnavailableError ? error.message : describeError(error);
      throw new Error(`cannot open the ledger at ${safeUrl}: ${redactUrl(why)}`, { cause: error });
    }
    return ledger;
  }

  async commit(writes: readonly LedgerWrite[]): Promise<LedgerResult[]> {
    const at = this.#now();
    // Rows in key order: two instances inserting overlapping RefCodes take their locks in the
    // same order, so they cannot deadlock.
    const orders = writes.flatMap((w) => w.kind === "order" ? [w] : [])
      .sort((x, y) => compare(x.order.refCode, y.order.refCode));
    const forwards = writes.flatMap((w) => w.kind === "forward" ? [w] : [])
      .sort((x, y) => compare(`${x.messageKey}\u0000${x.hop}`, `${y.messageKey}\u0000${y.hop}`));
    const created = new Set<string>();
    await this.#transaction(async (client) => {
      if (orders.length > 0) {
        const { rows } = await client.query(
          `INSERT INTO production_orders
             (ref_code, color_code, quantity, attempt, created_at, instance_id, extra)
           SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::int[],
                                $5::timestamptz[], $6::text[], $7::text[])
           ON CONFLICT (ref_code) DO NOTHING RETURNING ref_code`,
          [
            orders.map((w) => storable(w.order.refCode)),
            orders.map((w) => storable(w.order.colorCode)),
            orders.map((w) => String(w.order.quantity)),
            orders.map((w) => w.attempt),
            orders.map(() => at),
            orders.map(() => this.#instanceId),
            orders.map((w) => storableOrNull(extraJson(w.extra))),
          ],
        );
        for (const row of rows) created.add(row.ref_code as string);
      }
      if (forwards.length > 0) {
        await client.query(
          `INSERT INTO forwarded_messages
             (message_key, hop, outcome, at, instance_id, error, delay_ms)
           SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::text[],
                                $6::text[], $7::int[])
           ON CONFLICT DO NOTHING`,
          [
            forwards.map((w) => storable(w.messageKey)),
            forwards.map((w) => storable(w.hop)),
            forwards.map((w) => w.outcome),
            forwards.map(() => at),
            forwards.map(() => this.#instanceId),
            forwards.map((w) => storableOrNull(w.error)),
            forwards.map((w) => w.delayMs ?? null),
          ],
        );
      }
    });
    // The first write of a RefCode the statement inserted is `created`; any other is a duplicate.
    return writes.map((w) => {
      if (w.kind === "forward") return "recorded";
      return created.delete(storable(w.order.refCode)) ? "created" : "duplicate";
    });
  }

  async wasForwarded(messageKey: string, hop: string): Promise<boolean> {
    const { rows } = await this.#query(
      "SELECT 1 FROM forwarded_messages WHERE message_key = $1 AND hop = $2",
      [storable(messageKey), storable(hop)],
    );
    return rows.length > 0;
  }

  /**
   * Commits a write as a batch would: a read-only database (a standby, `default_transaction_read_only`)
   * or a full disk fails it as it fails commits, where `SELECT 1` passed. It first takes the lock
   * every commit's inserts take on the ledger's tables, so a table locked against inserts (a
   * migration, an operator's `LOCK TABLE`) keeps the probe waiting into its statement timeout as
   * it keeps commits: the consumer stays paused instead of taking its deliveries back to fail them
   * again (each try spends a quorum queue's delivery).
   */
  async probe(): Promise<void> {
    const payload = new Uint8Array(PROBE_BYTES);
    for (let i = 0; i < PROBE_BYTES; i += 65_536) {
      crypto.getRandomValues(payload.subarray(i, i + 65_536)); // no compression makes it smaller
    }
    await this.#transaction(async (client) => {
      await client.query("LOCK TABLE production_orders, forwarded_messages IN ROW EXCLUSIVE MODE");
      await client.query(
        `INSERT INTO ledger_probes (instance_id, at, payload) VALUES ($1, $2, $3)
         ON CONFLICT (instance_id) DO UPDATE SET at = excluded.at, payload = excluded.payload`,
        [this.#instanceId, this.#now(), payload],
      );
    });
  }

  async findOrder(refCode: string): Promise<ProductionOrder | undefined> {
    // Every column: a reader (`migrate: false`) of a schema made before `extra` finds none.
    const { rows: [row] } = await this.#query(
      "SELECT * FROM production_orders WHERE ref_code = $1",
      [storable(refCode)],
    );
    if (!row) return undefined;
    const extra = parseExtra(row.extra);
    return {
      ...(extra === undefined ? {} : { extra }),
      refCode: row.ref_code as string,
      colorCode: row.color_code as string,
      quantity: Number(row.quantity),
      createdAt: (row.created_at as Date).toISOString(),
      attempt: Number(row.attempt),
      instanceId: row.instance_id as string,
    };
  }

  async journey(refCode: string): Promise<LedgerJourney> {
    const order = await this.findOrder(refCode);
    const { rows } = await this.#query(
      `SELECT hop, outcome, at, error, delay_ms, instance_id FROM forwarded_messages
       WHERE message_key = $1 ORDER BY at, hop`,
      [storable(refCode)],
    );
    return {
      order,
      forwards: rows.map((row: Record<string, unknown>) => ({
        hop: row.hop as string,
        outcome: row.outcome as string,
        at: (row.at as Date).toISOString(),
        error: (row.error as string | null) ?? undefined,
        delayMs: row.delay_ms === null ? undefined : Number(row.delay_ms),
        instanceId: row.instance_id as string,
      })),
    };
  }

  async countOrders(): Promise<number> {
    const { rows: [row] } = await this.#query(
      "SELECT count(*)::bigint AS n FROM production_orders",
    );
    return Number(row?.n ?? 0);
  }

  /** Production orders per instance, for reports on how work spread. */
  async ordersByInstance(): Promise<Record<string, number>> {
    const { rows } = await this.#query(
      "SELECT instance_id, count(*)::bigint AS n FROM production_orders GROUP BY instance_id",
    );
    return Object.fromEntries(
      rows.map((r: Record<string, unknown>) => [r.instance_id as string, Number(r.n)]),
    );
  }

  /** Deletes every production order and hop record (the demo starts from an empty ledger). */
  async clear(): Promise<void> {
    await this.#query("TRUNCATE production_orders, forwarded_messages");
  }

  async close(): Promise<void> {
    await this.#pool.end();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /** One statement on any pooled connection; an outage becomes a LedgerUnavailableError. */
  async #query(text: string, values?: unknown[]): Promise<pg.QueryResult> {
    try {
      return await this.#pool.query(text, values);
    } catch (error) {
      throw this.#classify(error);
    }
  }

  /** Runs `work` in one transaction on one connection; an outage becomes a LedgerUnavailableError. */
  #transaction(work: (client: pg.PoolClient) => Promise<void>): Promise<void> {
    return inTransaction(this.#pool, work, (error) => this.#classify(error));
  }

  #classify(error: unknown): unknown {
    if (!isPostgresOutage(error)) return error;
    const { text, code } = outageText(`the PostgreSQL ledger at ${this.#safeUrl}`, error);
    return new LedgerUnavailableError(text, { code, cause: error });
  }
}

/**
 * Text as PostgreSQL can store it: its `text` refuses NUL (22021), which a message id, a RefCode
 * peeked from a bad body or a parse error can hold; each becomes U+FFFD, for writes and lookups
 * alike.
 */
function storable(text: string): string {
  return text.includes("\u0000") ? text.replaceAll("\u0000", "\uFFFD") : text;
}

function storableOrNull(text: string | undefined): string | null {
  return text === undefined ? null : storable(text);
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
