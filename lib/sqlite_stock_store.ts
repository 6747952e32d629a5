/**
 * The embedded stock store: one SQLite file (WAL, `synchronous=FULL`: a committed movement and
 * its outbox row survive a crash of the process or the machine). Writes go to a worker thread,
 * grouped: movements that arrive while a commit is under way share the next one (each in a
 * savepoint of its own). Reads run on the main thread beside them. Several processes may move
 * stock in one file (SQLite serializes their writes); one relays it: the first to claim the outbox
 * holds `<path>.relay.lock` until it closes the store.
 *
 * @module
 */

import type { DatabaseSync, StatementSync } from "node:sqlite";
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { openDatabase, unavailableCode } from "./_sqlite_writer.ts";
import {
  itemOf,
  migrateStock,
  type MoveRecord,
  SqliteStockWriter,
  STOCK_SCHEMA,
  type StockOp,
  type StockOpResult,
  type StockWorkerRequest,
} from "./_sqlite_stock_writer.ts";
import { lockRelay } from "./_stock_relay_lock.ts";
import { SqliteWorkerClient } from "./_sqlite_worker_client.ts";
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
  StockError,
  type StockItem,
  type StockItemSettings,
  type StockStore,
  StockStoreUnavailableError,
  wakeOnRequest,
} from "./stock_store.ts";

/** Options for {@linkcode SqliteStockStore.open}. */
export interface SqliteStockStoreOptions {
  /**
   * The clock movements and outbox rows are stamped with.
   * @default {() => new Date()}
   */
  now?: () => Date;
}

/** The most operations one commit takes. */
const MAX_BATCH = 1_000;

interface Waiting {
  readonly op: StockOp;
  readonly resolve: (result: StockOpResult) => void;
  readonly reject: (error: unknown) => void;
}

interface OutboxDbRow {
  id: number;
  ref_code: string;
  color_code: string;
  quantity: number;
  created_at: string;
  attempts: number;
  sent_at?: string | null;
}

function outboxRowOf(row: OutboxDbRow): OutboxRow {
  return {
    id: Number(row.id),
    refCode: String(row.ref_code),
    colorCode: String(row.color_code),
    quantity: Number(row.quantity),
    createdAt: new Date(String(row.created_at)),
    attempts: Number(row.attempts),
  };
}

/** A stock store in one SQLite file; see the module doc. Open it with {@linkcode open}. */
export class SqliteStockStore implements StockStore {
  readonly name: string;
  /** Two: a claim is a read, its mark a write in the writer's queue beside the movements'. */
  readonly outboxClaimsAtOnce = 2;
  readonly #db: DatabaseSync;
  readonly #path: string;
  readonly #now: () => Date;
  readonly #inline: SqliteStockWriter | undefined;
  readonly #worker: SqliteWorkerClient<StockWorkerRequest, StockOpResult> | undefined;
  readonly #queue: Waiting[] = [];
  #flushing: Promise<void> | undefined;
  readonly #wakes = new Set<() => void>();
  /** Rows claimed by a relay of this process and not finished. */
  readonly #claimed = new Set<number>();
  #relayLock: Deno.FsFile | undefined;
  readonly #read: {
    items: StatementSync;
    item: StatementSync;
    movements: StatementSync;
    rows: StatementSync;
    unsent: StatementSync;
    stats: StatementSync;
  };

  private constructor(db: DatabaseSync, path: string, options: SqliteStockStoreOptions) {
    this.#db = db;
    this.#path = path;
    this.name = `sqlite:${path}`;
    this.#now = options.now ?? (() => new Date());
    if (path === ":memory:") {
      this.#inline = new SqliteStockWriter(db);
    } else {
      this.#worker = new SqliteWorkerClient({
        url: new URL("./_stock_worker.ts", import.meta.url),
        name: "stock",
        what: "the stock store's worker",
        unavailable: (code, cause) => this.#unavailable(code, cause),
      });
    }
    this.#read = {
      items: db.prepare("SELECT * FROM stock_items ORDER BY color"),
      item: db.prepare("SELECT * FROM stock_items WHERE color = ?"),
      movements: db.prepare("SELECT count(*) AS n FROM stock_movements"),
      rows: db.prepare("SELECT * FROM stock_outbox ORDER BY id"),
      unsent: db.prepare(
        `SELECT id, ref_code, color_code, quantity, created_at, attempts FROM stock_outbox
         WHERE sent_at IS NULL ORDER BY id LIMIT ?`,
      ),
      stats: db.prepare(
        `SELECT count(*) AS depth, min(created_at) AS oldest, coalesce(max(attempts), 0) AS attempts
         FROM stock_outbox WHERE sent_at IS NULL`,
      ),
    };
  }

  /**
   * Opens (creating if needed) the store at `path`; `":memory:"` makes a throwaway one.
   * @throws {Error} naming the path when the file cannot be opened or created.
   */
  static async open(
    path: string,
    options: SqliteStockStoreOptions = {},
  ): Promise<SqliteStockStore> {
    let store: SqliteStockStore;
    try {
      if (path !== ":memory:") mkdirSync(dirname(path), { recursive: true });
      const db = openDatabase(path);
      db.exec(STOCK_SCHEMA);
      migrateStock(db);
      store = new SqliteStockStore(db, path, options);
    } catch (error) {
      throw new Error(`cannot open the stock store at ${path}: ${(error as Error).message}`, {
        cause: error,
      });
    }
    if (store.#worker) {
      try {
        await store.#worker.request((id) => ({ kind: "open", id, path }));
      } catch (error) {
        await store.close();
        throw new Error(`cannot open the stock store at ${path}: ${(error as Error).message}`, {
          cause: error,
        });
      }
    }
    return store;
  }

  /** Queues an operation for the next commit; resolves with its result once committed. */
  #submit(op: StockOp): Promise<StockOpResult> {
    if (!this.#db.isOpen) {
      return Promise.reject(new Error(`the stock store ${this.name} is closed`));
    }
    const { promise, resolve, reject } = Promise.withResolvers<StockOpResult>();
    this.#queue.push({ op, resolve, reject });
    this.#flushing ??= this.#flush();
    return promise;
  }

  /** Commits what is queued, a batch at a time, until the queue is empty. */
  async #flush(): Promise<void> {
    // What is queued in the same tick shares the first commit; what comes while a commit is
    // under way shares the next one.
    await Promise.resolve();
    while (this.#queue.length > 0) {
      const batch = this.#queue.splice(0, MAX_BATCH);
      const ops = batch.map((w) => w.op);
      try {
        const results = this.#inline
          ? this.#runInline(ops)
          : await this.#worker!.request((id) => ({ kind: "run", id, ops }));
        batch.forEach((w, i) => w.resolve(results[i]!));
      } catch (error) {
        for (const w of batch) w.reject(error);
      }
    }
    this.#flushing = undefined;
  }

  #runInline(ops: readonly StockOp[]): StockOpResult[] {
    try {
      return this.#inline!.run(ops);
    } catch (error) {
      throw this.#classify(error);
    }
  }

  /** The value of an operation's result. @throws {StockError} when it was refused. */
  async #value(op: StockOp): Promise<unknown> {
    const result = await this.#submit(op);
    if ("refused" in result) throw new StockError(result.refused.code, result.refused.message);
    if ("failed" in result) throw new Error(`stock store write failed: ${result.failed}`);
    return result.value;
  }

  async setItem(settings: StockItemSettings): Promise<StockItem> {
    const checked = checkItem(settings);
    return await this.#value({
      kind: "set",
      settings: checked,
      at: this.#now().toISOString(),
    }) as StockItem;
  }

  listItems(): Promise<StockItem[]> {
    return this.#reading(() => (this.#read.items.all() as never[]).map(itemOf));
  }

  getItem(color: string): Promise<StockItem | undefined> {
    return this.#reading(() => {
      const row = this.#read.item.get(color.toLowerCase()) as never | undefined;
      return row === undefined ? undefined : itemOf(row);
    });
  }

  async move(movement: Movement): Promise<MovementResult> {
    const checked = checkMovement(movement);
    const at = this.#now().toISOString();
    const record = await this.#value({ kind: "move", movement: checked, at }) as MoveRecord;
    wakeOnRequest(record, this.#wakes);
    return record;
  }

  countMovements(): Promise<number> {
    return this.#reading(() => Number((this.#read.movements.get() as { n: number }).n));
  }

  outboxRows(): Promise<Array<OutboxRow & { readonly sentAt: Date | undefined }>> {
    return this.#reading(() =>
      (this.#read.rows.all() as unknown as OutboxDbRow[]).map((row) => ({
        ...outboxRowOf(row),
        sentAt: row.sent_at ? new Date(row.sent_at) : undefined,
      }))
    );
  }

  outboxStats(): Promise<OutboxStats> {
    return this.#reading(() => {
      const row = this.#read.stats.get() as Record<string, number | string | null>;
      return {
        depth: Number(row.depth),
        oldestUnsentAt: row.oldest === null ? undefined : new Date(String(row.oldest)),
        maxAttempts: Number(row.attempts),
      };
    });
  }

  async claimOutbox(limit: number): Promise<OutboxClaim> {
    if (this.#worker && this.#relayLock === undefined) {
      this.#relayLock = await lockRelay(this.#path);
    }
    const rows = await this.#reading(() => {
      // Rows another claim of this store holds (a relay's batch still under way) are skipped.
      const found = this.#read.unsent.all(limit + this.#claimed.size) as unknown as OutboxDbRow[];
      const rows: OutboxRow[] = [];
      for (let i = 0; i < found.length && rows.length < limit; i++) {
        if (!this.#claimed.has(Number(found[i]!.id))) rows.push(outboxRowOf(found[i]!));
      }
      // Held from the read on, so that a claim that starts before this one returns skips them.
      for (const row of rows) this.#claimed.add(row.id);
      return rows;
    });
    let open = rows.length > 0;
    // Once only: a second release (an abandon after a failed finish) would free ids that a newer
    // claim took in between.
    const release = () => {
      if (!open) return;
      open = false;
      for (const row of rows) this.#claimed.delete(row.id);
    };
    return {
      rows,
      finish: async (sent: readonly number[], failed: readonly OutboxFailure[], at: Date) => {
        if (!open) return;
        try {
          if (sent.length > 0 || failed.length > 0) {
            await this.#value({ kind: "finish", sent, failed, at: at.toISOString() });
          }
        } finally {
          release();
        }
      },
      abandon: () => {
        release();
        return Promise.resolve();
      },
    };
  }

  async deleteSent(before: Date): Promise<number> {
    return await this.#value({ kind: "delete-sent", before: before.toISOString() }) as number;
  }

  listen(wake: () => void): Promise<OutboxListener> {
    this.#wakes.add(wake);
    queueMicrotask(wake); // what was committed before it listened
    const close = () => {
      this.#wakes.delete(wake);
      return Promise.resolve();
    };
    return Promise.resolve({ close, [Symbol.asyncDispose]: close });
  }

  async probe(): Promise<void> {
    await this.#value({ kind: "probe", at: this.#now().toISOString() });
  }

  /** A read on the main thread; an outage becomes a StockStoreUnavailableError. */
  #reading<T>(read: () => T): Promise<T> {
    try {
      return Promise.resolve(read());
    } catch (error) {
      return Promise.reject(this.#classify(error));
    }
  }

  #classify(error: unknown): unknown {
    const code = unavailableCode(error);
    return code === undefined ? error : this.#unavailable(code, error);
  }

  #unavailable(code: string, cause: unknown): StockStoreUnavailableError {
    return new StockStoreUnavailableError(
      `the SQLite stock store ${this.#path} cannot take writes (${code}): ${
        cause instanceof Error ? cause.message : String(cause)
      }`,
      { code, cause },
    );
  }

  async close(): Promise<void> {
    if (!this.#db.isOpen) return;
    await this.#flushing;
    await this.#worker?.close();
    this.#db.close();
    this.#wakes.clear();
    this.#relayLock?.close(); // closing the file releases its lock
    this.#relayLock = undefined;
  }

  /** Closes the store. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
