/**
 * The shared stock store: PostgreSQL, for several Estoque instances and several relays. A movement
 * is one statement that updates its item's row (taking its row lock), so concurrent movements of
 * one colour see each other's quantities and a crossing of the reorder point is found exactly once;
 * the outbox row it makes is written by the same statement and commits with it, and so does its
 * `pg_notify`, which wakes every listening relay once the transaction commits. Movements taken at
 * once share a transaction (_postgres_stock_mover.ts): a commit's WAL flush is paid once a group. Relays claim rows with `FOR UPDATE SKIP LOCKED` in a transaction they hold
 * until the broker confirmed them: two relays never take the same row, and a relay that dies
 * releases its rows unsent (its connection ends, its transaction rolls back).
 *
 * The client is node-postgres (`pg`), as for the PostgreSQL ledger (postgres_ledger.ts).
 *
 * @module
 */

import pg from "pg";
import {
  inTransaction,
  type InTransactionOptions,
  isPostgresOutage,
  outageText,
  postgresPool,
  postgresTarget,
} from "./_postgres.ts";
import { listenChannel } from "./_postgres_listener.ts";
import { MAX_WRITERS, PostgresStockMover } from "./_postgres_stock_mover.ts";
import { itemOf, outboxChannel, outboxRowOf, schemaSql } from "./_postgres_stock_schema.ts";
import { describeError } from "./errors.ts";
import { redactUrl } from "./redact.ts";
import {
  checkItem,
  checkMovement,
  type Movement,
  type MovementResult,
  type OutboxClaim,
  type OutboxFailure,
  type OutboxListener,
  type OutboxRow,
  type OutboxStats,
  StockCommitUnknownError,
  StockError,
  type StockItem,
  type StockItemSettings,
  type StockStore,
  StockStoreUnavailableError,
  wakeOnRequest,
} from "./stock_store.ts";

/** Options for {@linkcode PostgresStockStore.open}. */
export interface PostgresStockStoreOptions {
  /**
   * The schema the tables live in (created if missing); tests use a schema of their own.
   * @default {the URL's `search_path` parameter, else "public"}
   */
  schema?: string;
  /**
   * The clock movements and outbox rows are stamped with.
   * @default {() => new Date()}
   */
  now?: () => Date;
  /**
   * Connections in the pool: movements are committed on at most two at once (on all but one
   * when there are fewer than three), a relay holds one while a claim is out, two when the pool
   * has a connection left for the rest beside them (five and more: see
   * {@linkcode PostgresStockStore.outboxClaimsAtOnce}).
   * @default {5}
   */
  maxConnections?: number;
  /**
   * How long one statement may take, in milliseconds, before it fails as an outage (server and
   * client side, as for the ledger).
   * @default {15000}
   */
  statementTimeoutMs?: number;
}

/** A stock store in PostgreSQL; see the module doc. Open it with {@linkcode open}. */
export class PostgresStockStore implements StockStore {
  readonly name: string;
  /**
   * Two when the pool has room for two claims beside the movements' writers and one connection
   * for the rest (reads, the API, the relay's purge), one otherwise.
   */
  readonly outboxClaimsAtOnce: number;
  readonly #pool: pg.Pool;
  readonly #connectionString: string;
  readonly #channel: string;
  readonly #now: () => Date;
  readonly #listeners = new Set<() => Promise<void>>();
  /** The wake-ups of this process's listeners, called when a movement here commits a request. */
  readonly #wakes = new Set<() => void>();
  /** The claims out, each by its abandon: closing the store rolls them back first. */
  readonly #claims = new Set<() => Promise<void>>();
  /** Movements, committed in groups (_postgres_stock_mover.ts). */
  readonly #mover: PostgresStockMover;
  #closed = false;

  private constructor(
    pool: pg.Pool,
    connectionString: string,
    name: string,
    schema: string,
    now: () => Date,
    connections: number,
  ) {
    this.#pool = pool;
    this.#connectionString = connectionString;
    this.name = name;
    this.#channel = outboxChannel(schema);
    this.#now = now;
    // A connection left for the rest (a relay's claim, reads) where the pool has more than one.
    const writers = Math.max(1, Math.min(MAX_WRITERS, connections - 1));
    this.outboxClaimsAtOnce = connections - writers >= 3 ? 2 : 1;
    this.#mover = new PostgresStockMover({
      pool,
      channel: this.#channel,
      writers,
      classify: (error) => this.#classify(error),
      commitUnknown: (error) =>
        new StockCommitUnknownError(
          `the PostgreSQL stock store at ${this.name} stopped answering while the movement ` +
            "committed: it may or may not have been applied",
          { cause: error },
        ),
    });
  }

  /**
   * Connects and creates the schema and tables where missing (safe when several instances start
   * at once).
   * @throws {Error} naming the database (without its password) when it cannot be reached.
   */
  static async open(
    url: string,
    options: PostgresStockStoreOptions = {},
  ): Promise<PostgresStockStore> {
    const target = postgresTarget(url, options.schema);
    const { connectionString, schema } = target;
    const connections = options.maxConnections ?? 5;
    const pool = postgresPool(target, {
      applicationName: "estoque",
      max: connections,
      statementTimeoutMs: options.statementTimeoutMs ?? 15_000,
    });
    const store = new PostgresStockStore(
      pool,
      connectionString,
      redactUrl(url),
      schema,
      options.now ?? (() => new Date()),
      connections,
    );
    try {
      await store.#transaction(async (client) => {
        // One migrating instance at a time: CREATE ... IF NOT EXISTS races with itself.
        await client.query("SELECT pg_advisory_xact_lock(hashtext('estoque stock schema'))");
        await client.query(schemaSql(schema));
      });
    } catch (error) {
      await pool.end().catch(() => {});
      throw new Error(
        `cannot open the stock store at ${store.name}: ${
          // An outage's message already says its cause: said once, not twice.
          error instanceof StockStoreUnavailableError
            ? error.message
            : redactUrl(describeError(error))}`,
        { cause: error },
      );
    }
    return store;
  }

  async setItem(settings: StockItemSettings): Promise<StockItem> {
    const s = checkItem(settings);
    const { rows: [row] } = await this.#query(
      `INSERT INTO stock_items (color, quantity, reorder_point, reorder_quantity, updated_at)
       VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (color) DO UPDATE SET quantity = excluded.quantity,
         reorder_point = excluded.reorder_point, reorder_quantity = excluded.reorder_quantity,
         updated_at = excluded.updated_at
       RETURNING *`,
      [s.color, s.quantity, s.reorderPoint, s.reorderQuantity, this.#now()],
    );
    return itemOf(row);
  }

  async listItems(): Promise<StockItem[]> {
    const { rows } = await this.#query("SELECT * FROM stock_items ORDER BY color");
    return rows.map(itemOf);
  }

  async getItem(color: string): Promise<StockItem | undefined> {
    const { rows: [row] } = await this.#query("SELECT * FROM stock_items WHERE color = $1", [
      color.toLowerCase(),
    ]);
    return row === undefined ? undefined : itemOf(row);
  }

  move(movement: Movement): Promise<MovementResult> {
    try {
      const checked = checkMovement(movement);
      if (this.#closed) throw new Error(`the stock store ${this.name} is closed`);
      return this.#mover.move(checked, this.#now()).then((result) => {
        // A relay in this process hears of it at once, as on SQLite, also while its LISTEN
        // connection is being made again (after the database came back); NOTIFY tells the others.
        wakeOnRequest(result, this.#wakes);
        return result;
      });
    } catch (error) {
      return Promise.reject(error);
    }
  }

  async countMovements(): Promise<number> {
    const { rows: [row] } = await this.#query("SELECT count(*)::bigint AS n FROM stock_movements");
    return Number(row.n);
  }

  async outboxRows(): Promise<Array<OutboxRow & { readonly sentAt: Date | undefined }>> {
    const { rows } = await this.#query("SELECT * FROM stock_outbox ORDER BY id");
    return rows.map((row: Record<string, unknown>) => ({
      ...outboxRowOf(row),
      sentAt: (row.sent_at as Date | null) ?? undefined,
    }));
  }

  async outboxStats(): Promise<OutboxStats> {
    const { rows: [row] } = await this.#query(
      `SELECT count(*)::bigint AS depth, min(created_at) AS oldest,
              coalesce(max(attempts), 0) AS attempts
       FROM stock_outbox WHERE sent_at IS NULL`,
    );
    return {
      depth: Number(row.depth),
      oldestUnsentAt: (row.oldest as Date | null) ?? undefined,
      maxAttempts: Number(row.attempts),
    };
  }

  async claimOutbox(limit: number): Promise<OutboxClaim> {
    const client = await this.#connect();
    let broken: Error | undefined;
    const onError = (error: Error) => (broken = error);
    client.on("error", onError);
    let open = true;
    const end = async (statement: "COMMIT" | "ROLLBACK", work?: () => Promise<void>) => {
      if (!open) return;
      open = false;
      this.#claims.delete(abandon);
      try {
        await work?.();
        await client.query(statement);
      } catch (error) {
        await client.query("ROLLBACK").catch((e: Error) => (broken = e));
        throw this.#classify(error);
      } finally {
        client.off("error", onError);
        client.release(broken);
      }
    };
    const abandon = () => end("ROLLBACK");
    this.#claims.add(abandon);
    let rows: OutboxRow[];
    try {
      await client.query("BEGIN");
      // Rows another relay holds are skipped, not waited for: each relay takes its own.
      const result = await client.query(
        `SELECT id, ref_code, color_code, quantity, created_at, attempts FROM stock_outbox
         WHERE sent_at IS NULL ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED`,
        [limit],
      );
      rows = result.rows.map(outboxRowOf);
    } catch (error) {
      broken ??= error as Error;
      await end("ROLLBACK").catch(() => {});
      throw this.#classify(error);
    }
    if (rows.length === 0) await end("COMMIT");
    return {
      rows,
      finish: (sent: readonly number[], failed: readonly OutboxFailure[], at: Date) =>
        end("COMMIT", async () => {
          if (sent.length > 0) {
            await client.query(
              "UPDATE stock_outbox SET sent_at = $2 WHERE id = ANY($1::bigint[])",
              [sent.map(String), at],
            );
          }
          if (failed.length > 0) {
            await client.query(
              `UPDATE stock_outbox AS o SET attempts = o.attempts + 1, last_error = f.error
               FROM unnest($1::bigint[], $2::text[]) AS f(id, error) WHERE o.id = f.id`,
              [failed.map((f) => String(f.id)), failed.map((f) => f.error)],
            );
          }
        }),
      abandon,
    };
  }

  async deleteSent(before: Date): Promise<number> {
    const result = await this.#query(
      "DELETE FROM stock_outbox WHERE sent_at IS NOT NULL AND sent_at < $1",
      [before],
    );
    return result.rowCount ?? 0;
  }

  /**
   * LISTENs on the outbox's channel on a connection of its own, made again (with backoff) when
   * lost; `wake` is called for each notification and after each (re)connection.
   */
  async listen(wake: () => void): Promise<OutboxListener> {
    const listener = await listenChannel(this.#connectionString, this.#channel, wake);
    this.#wakes.add(wake);
    const close = async () => {
      this.#listeners.delete(close);
      this.#wakes.delete(wake);
      await listener.close();
    };
    this.#listeners.add(close);
    return { close, [Symbol.asyncDispose]: close };
  }

  async probe(): Promise<void> {
    await this.#query("SELECT 1 FROM stock_outbox LIMIT 0");
  }

  async close(): Promise<void> {
    this.#closed = true;
    await this.#mover.drain();
    await Promise.all([...this.#claims].map((abandon) => abandon().catch(() => {})));
    await Promise.all([...this.#listeners].map((close) => close()));
    await this.#pool.end().catch(() => {});
  }

  /** Closes the store. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  async #connect(): Promise<pg.PoolClient> {
    try {
      return await this.#pool.connect();
    } catch (error) {
      throw this.#classify(error);
    }
  }

  async #query(text: string, values?: unknown[]): Promise<pg.QueryResult> {
    try {
      return await this.#pool.query(text, values);
    } catch (error) {
      throw this.#classify(error);
    }
  }

  /** Runs `work` in one transaction; a StockError rolls it back and is thrown as it is. */
  #transaction(
    work: (client: pg.PoolClient) => Promise<void>,
    options: InTransactionOptions = {},
  ): Promise<void> {
    return inTransaction(this.#pool, work, (error) => this.#classify(error), options);
  }

  #classify(error: unknown): unknown {
    if (error instanceof StockError || error instanceof StockStoreUnavailableError) return error;
    if (!isPostgresOutage(error)) return error;
    const { text, code } = outageText(`the PostgreSQL stock store at ${this.name}`, error);
    return new StockStoreUnavailableError(text, { code, cause: error });
  }
}
