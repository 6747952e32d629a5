/**
 * The embedded ledger: one SQLite file, for one OrdemDeProducao process.
 *
 * @module
 */

import { DatabaseSync, type StatementSync } from "node:sqlite";
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import {
  migrate,
  openDatabase,
  SqliteWriter,
  unavailableCode,
  type WorkerRequest,
} from "./_sqlite_writer.ts";
import { SqliteWorkerClient } from "./_sqlite_worker_client.ts";

import type {
  Ledger,
  LedgerJourney,
  LedgerResult,
  LedgerWrite,
  ProductionOrder,
} from "./ledger.ts";
import { LedgerUnavailableError } from "./errors.ts";
import { lockLedgerFile } from "./_ledger_file_lock.ts";
import { OrderQueries } from "./sqlite_ledger_reader.ts";
import { defaultInstanceId, hopKey } from "./ledger.ts";

/** How long the hop lookups' read transaction is held, in milliseconds (see `#beginRead`). */
const SNAPSHOT_MS = 1_000;

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

/**
 * The embedded ledger: one SQLite file in WAL mode with `synchronous=FULL`, so a committed batch
 * survives a crash of the process or of the machine. Commits run in a worker, so their fsync
 * never blocks the event loop; lookups read the file on the main thread (WAL lets them run beside
 * a commit). An in-memory ledger (`":memory:"`) commits on the main thread.
 */
export class SqliteLedger implements Ledger {
  readonly #db: DatabaseSync;
  readonly #path: string;
  readonly #unlock: () => void;
  readonly #instanceId: string;
  readonly #now: () => Date;
  readonly #inline: SqliteWriter | undefined;
  readonly #worker: SqliteWorkerClient<WorkerRequest, LedgerResult> | undefined;
  /** Settles once the worker has opened the file (at once for an in-memory ledger). */
  readonly #ready: Promise<unknown>;
  readonly #findForward: StatementSync;
  readonly #orders: OrderQueries;
  /** The read transaction the hop lookups share, if one is open (see `#beginRead`). */
  #snapshot: ReturnType<typeof setTimeout> | undefined;
  /** The hops recorded since that transaction began: the snapshot may not show them. */
  readonly #recordedSince = new Set<string>();

  private constructor(
    db: DatabaseSync,
    path: string,
    options: SqliteLedgerOptions,
    unlock: () => void,
  ) {
    this.#db = db;
    this.#path = path;
    this.#unlock = unlock;
    this.#instanceId = options.instanceId ?? defaultInstanceId();
    this.#now = options.now ?? (() => new Date());
    if (path === ":memory:") {
      this.#inline = new SqliteWriter(db);
    } else {
      this.#worker = new SqliteWorkerClient({
        url: new URL("./_ledger_worker.ts", import.meta.url),
        name: "ledger",
        what: "the ledger worker",
        unavailable: (code, cause) => this.#unavailable(code, cause),
      });
      this.#ready = this.#worker.request((id) => ({ kind: "open", id, path }));
    }
    this.#ready ??= Promise.resolve();
    this.#findForward = db.prepare(
      "SELECT 1 AS found FROM forwarded_messages WHERE message_key = ? AND hop = ?",
    );
    this.#orders = new OrderQueries(db);
  }

  /**
   * Opens (creating if needed) the ledger at `path`, resolving once it can take commits;
   * `":memory:"` makes a throwaway one.
   *
   * @throws {Error} naming the path when the file cannot be opened or created.
   */
  static async open(path: string, options: SqliteLedgerOptions = {}): Promise<SqliteLedger> {
    let ledger: SqliteLedger;
    let unlock = () => {};
    if (path !== ":memory:") {
      try {
        mkdirSync(dirname(path), { recursive: true });
      } catch (error) {
        throw new Error(`cannot open the ledger at ${path}: ${(error as Error).message}`, {
          cause: error,
        });
      }
      unlock = await lockLedgerFile(path, options.instanceId ?? defaultInstanceId());
    }
    try {
      const db = openDatabase(path);
      migrate(db);
      ledger = new SqliteLedger(db, path, options, unlock);
    } catch (error) {
      unlock();
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

  commit(writes: readonly LedgerWrite[]): Promise<LedgerResult[]> {
    if (writes.length === 0) return Promise.resolve([]);
    const at = this.#now().toISOString();
    if (this.#inline) {
      try {
        return Promise.resolve(this.#inline.commit(writes, at, this.#instanceId));
      } catch (error) {
        return Promise.reject(this.#classify(error));
      }
    }
    const instanceId = this.#instanceId;
    return this.#worker!.request((id) => ({ kind: "commit", id, writes, at, instanceId })).then(
      (results) => {
        if (this.#snapshot !== undefined) {
          for (const write of writes) {
            if (write.kind === "forward") {
              this.#recordedSince.add(hopKey(write.messageKey, write.hop));
            }
          }
        }
        return results;
      },
      (error: Error) => {
        if (error instanceof LedgerUnavailableError) throw error;
        throw new Error(`ledger commit failed: ${error.message}`, { cause: error });
      },
    );
  }

  wasForwarded(messageKey: string, hop: string): Promise<boolean> {
    try {
      if (this.#recordedSince.has(hopKey(messageKey, hop))) return Promise.resolve(true);
      this.#beginRead();
      return Promise.resolve(this.#findForward.get(messageKey, hop) !== undefined);
    } catch (error) {
      return Promise.reject(this.#classify(error));
    }
  }

  /**
   * Opens the read transaction the hop lookups share, unless one is open: opened by the first
   * lookup and ended a second later. A new read of a WAL file that changed since the last one
   * starts with an empty page cache, and the worker commits every few milliseconds: a lookup in a
   * fresh read cost 5 µs, in a held one 1 µs. What the held snapshot cannot show, the hops this
   * process recorded since it began, `#recordedSince` holds (this process is the ledger's only
   * writer: it holds the lock). An in-memory ledger reads on the connection it writes on, outside
   * any transaction.
   */
  #beginRead(): void {
    if (this.#snapshot !== undefined || this.#inline !== undefined) return;
    this.#db.exec("BEGIN");
    this.#recordedSince.clear();
    const timer = setTimeout(this.#endRead, SNAPSHOT_MS);
    Deno.unrefTimer(timer);
    this.#snapshot = timer;
  }

  /** Ends the lookups' read transaction, if one is open. */
  readonly #endRead = (): void => {
    if (this.#snapshot === undefined) return;
    clearTimeout(this.#snapshot);
    this.#snapshot = undefined;
    try {
      this.#db.exec("COMMIT");
    } catch {
      // Closed meanwhile: closing ended it.
    }
  };

  async probe(): Promise<void> {
    const at = this.#now().toISOString();
    if (this.#inline) {
      try {
        this.#inline.probe(at, this.#instanceId);
      } catch (error) {
        throw this.#classify(error);
      }
      return;
    }
    const instanceId = this.#instanceId;
    await this.#worker!.request((id) => ({ kind: "probe", id, at, instanceId }));
  }

  /** An outage of the file (locked, read-only, full, …) as a LedgerUnavailableError. */
  #classify(error: unknown): unknown {
    const code = unavailableCode(error);
    return code === undefined ? error : this.#unavailable(code, error);
  }

  #unavailable(code: string, cause: unknown): LedgerUnavailableError {
    return new LedgerUnavailableError(
      `the SQLite ledger ${this.#path} cannot take writes (${code}): ${
        cause instanceof Error ? cause.message : String(cause)
      }`,
      { code, cause },
    );
  }

  /** The order queries, on what is committed now: the lookups' held read is ended first. */
  get #current(): OrderQueries {
    this.#endRead();
    return this.#orders;
  }

  findOrder(refCode: string): Promise<ProductionOrder | undefined> {
    return Promise.resolve(this.#current.find(refCode));
  }

  countOrders(): Promise<number> {
    return Promise.resolve(this.#current.count());
  }

  journey(refCode: string): Promise<LedgerJourney> {
    return Promise.resolve(this.#current.journey(refCode));
  }

  async close(): Promise<void> {
    if (!this.#db.isOpen) return;
    this.#endRead();
    await this.#worker?.close();
    this.#db.close();
    this.#unlock();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
