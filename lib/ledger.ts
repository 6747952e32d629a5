/**
 * The production-order ledger: where a processed order becomes a production order, at most once
 * per RefCode, and where the consumer remembers which messages it has already passed on (retried
 * or dead-lettered), so that a redelivered copy is not passed on twice.
 *
 * @module
 */

import type { DatabaseSync, StatementSync } from "node:sqlite";
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import type { Order } from "./order.ts";
import { reconnectDelay } from "./reconnect.ts";
import {
  openDatabase,
  SCHEMA,
  SqliteWriter,
  type WorkerReply,
  type WorkerRequest,
} from "./_sqlite_writer.ts";

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

/** The default instance id: host name and process id. */
export function defaultInstanceId(): string {
  return `${Deno.hostname()}:${Deno.pid}`;
}

/**
 * The embedded ledger: one SQLite file in WAL mode with `synchronous=FULL`, so a committed batch
 * survives a crash of the process or of the machine. Commits run in a worker, so their fsync
 * never blocks the event loop; lookups read the file on the main thread (WAL lets them run beside
 * a commit). An in-memory ledger (`":memory:"`) commits on the main thread.
 */
export class SqliteLedger implements Ledger {
  readonly #db: DatabaseSync;
  readonly #instanceId: string;
  readonly #now: () => Date;
  readonly #inline: SqliteWriter | undefined;
  readonly #worker: Worker | undefined;
  readonly #replies = new Map<number, PromiseWithResolvers<LedgerResult[]>>();
  #closed: PromiseWithResolvers<void> | undefined;
  /** Settles once the worker has opened the file (at once for an in-memory ledger). */
  readonly #ready: Promise<unknown>;
  #nextId = 0;
  readonly #findForward: StatementSync;
  readonly #findOrder: StatementSync;
  readonly #countOrders: StatementSync;

  private constructor(db: DatabaseSync, path: string, options: SqliteLedgerOptions) {
    this.#db = db;
    this.#instanceId = options.instanceId ?? defaultInstanceId();
    this.#now = options.now ?? (() => new Date());
    if (path === ":memory:") {
      this.#inline = new SqliteWriter(db);
    } else {
      this.#worker = new Worker(new URL("./_ledger_worker.ts", import.meta.url).href, {
        type: "module",
        name: "ledger",
      });
      this.#worker.onmessage = (event: MessageEvent<WorkerReply>) => {
        const reply = event.data;
        if ("closed" in reply) {
          this.#closed?.resolve();
          return;
        }
        const waiting = this.#replies.get(reply.id);
        if (!waiting) return;
        this.#replies.delete(reply.id);
        if ("error" in reply) waiting.reject(new Error(reply.error));
        else waiting.resolve(reply.results);
      };
      this.#worker.onerror = (event) => {
        event.preventDefault();
        for (const waiting of this.#replies.values()) {
          waiting.reject(new Error(`the ledger worker failed: ${event.message}`));
        }
        this.#replies.clear();
        this.#closed?.resolve();
      };
      this.#ready = this.#request({ kind: "open", id: this.#nextId++, path });
    }
    this.#ready ??= Promise.resolve();
    this.#findForward = db.prepare(
      "SELECT 1 AS found FROM forwarded_messages WHERE message_key = ? AND hop = ?",
    );
    this.#findOrder = db.prepare(
      `SELECT ref_code, color_code, quantity, created_at, attempt, instance_id
       FROM production_orders WHERE ref_code = ?`,
    );
    this.#countOrders = db.prepare("SELECT count(*) AS n FROM production_orders");
  }

  /**
   * Opens (creating if needed) the ledger at `path`, resolving once it can take commits;
   * `":memory:"` makes a throwaway one.
   *
   * @throws {Error} naming the path when the file cannot be opened or created.
   */
  static async open(path: string, options: SqliteLedgerOptions = {}): Promise<SqliteLedger> {
    let ledger: SqliteLedger;
    try {
      if (path !== ":memory:") mkdirSync(dirname(path), { recursive: true });
      const db = openDatabase(path);
      db.exec(SCHEMA);
      ledger = new SqliteLedger(db, path, options);
    } catch (error) {
      throw new Error(`cannot open the ledger at ${path}: ${(error as Error).message}`, {
        cause: error,
      });
    }
    try {
      await ledger.#ready;
    } catch (error) {
      await ledger.close();
      throw new Error(`cannot open the ledger at ${path}: ${(error as Error).message}`, {
        cause: error,
      });
    }
    return ledger;
  }

  /** Sends a request to the worker and resolves with its reply. */
  #request(request: WorkerRequest & { readonly id: number }): Promise<LedgerResult[]> {
    const waiting = Promise.withResolvers<LedgerResult[]>();
    this.#replies.set(request.id, waiting);
    this.#worker!.postMessage(request);
    return waiting.promise;
  }

  commit(writes: readonly LedgerWrite[]): Promise<LedgerResult[]> {
    if (writes.length === 0) return Promise.resolve([]);
    const at = this.#now().toISOString();
    if (this.#inline) {
      try {
        return Promise.resolve(this.#inline.commit(writes, at, this.#instanceId));
      } catch (error) {
        return Promise.reject(error);
      }
    }
    return this.#request({
      kind: "commit",
      id: this.#nextId++,
      writes,
      at,
      instanceId: this.#instanceId,
    }).catch((error: Error) => {
      throw new Error(`ledger commit failed: ${error.message}`, { cause: error });
    });
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

  async close(): Promise<void> {
    if (!this.#db.isOpen) return;
    await Promise.allSettled([...this.#replies.values()].map((waiting) => waiting.promise));
    if (this.#worker) {
      this.#closed = Promise.withResolvers<void>();
      this.#worker.postMessage({ kind: "close", id: this.#nextId++ } satisfies WorkerRequest);
      const timer = setTimeout(() => this.#closed?.resolve(), 5_000); // a worker that died
      await this.#closed.promise;
      clearTimeout(timer);
      this.#worker.terminate();
    }
    this.#db.close();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/**
 * Opens the ledger a `sqlite:PATH` or `postgres://` URL names. A PostgreSQL that is not up yet
 * (refused connections, still starting) is tried again with backoff for `retryForMs`.
 *
 * @throws {Error} naming the ledger (without a password) when it cannot be opened.
 */
export async function openLedger(
  url: string,
  options: { instanceId?: string; retryForMs?: number; signal?: AbortSignal } = {},
): Promise<Ledger> {
  const { instanceId } = options;
  const ledgerOptions = instanceId === undefined ? {} : { instanceId };
  if (url.startsWith("sqlite:")) {
    return await SqliteLedger.open(url.slice("sqlite:".length), ledgerOptions);
  }
  const { PostgresLedger } = await import("./postgres_ledger.ts");
  const started = performance.now();
  for (let round = 1;; round++) {
    try {
      return await PostgresLedger.open(url, ledgerOptions);
    } catch (error) {
      const transient = /ECONNREFUSED|ENOTFOUND|EAI_AGAIN|starting up|CONNECT_TIMEOUT/.test(
        String((error as Error).message),
      );
      const elapsed = performance.now() - started;
      if (!transient || elapsed > (options.retryForMs ?? 0) || options.signal?.aborted) {
        throw error;
      }
      await new Promise((resolve) => setTimeout(resolve, reconnectDelay(round)));
    }
  }
}
