/**
 * The production-order ledger: where a processed order becomes a production order, at most once
 * per RefCode, and where the consumer remembers which messages it has already passed on (retried
 * or dead-lettered), so that a redelivered copy is not passed on twice. This module is the
 * contract; the SQLite ledger is in sqlite_ledger.ts, the PostgreSQL one in postgres_ledger.ts, and
 * openLedger() (open_ledger.ts) picks one from a URL.
 *
 * @module
 */

import type { Order } from "./order.ts";

/** A message's hop as one string: the key of what is remembered as passed on. */
export function hopKey(messageKey: string, hop: string): string {
  return `${messageKey}\u0000${hop}`;
}

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
    /** What was done: `retried` or `dead-lettered`. */
    readonly outcome: string;
    /** Why: the error text of the attempt that failed. */
    readonly error?: string | undefined;
    /** For a retry, how long the copy waits, in milliseconds. */
    readonly delayMs?: number | undefined;
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

/** One hop a message was passed on at, as recorded: an attempt that failed, and what followed. */
export interface ForwardRecord {
  /** `<replays>:<retries>` of the delivery that failed. */
  readonly hop: string;
  /** `retried` or `dead-lettered`. */
  readonly outcome: string;
  /** When it was passed on (ISO 8601). */
  readonly at: string;
  /** The error text, where recorded (rows written before it was kept have none). */
  readonly error: string | undefined;
  /** The retry's delay in milliseconds, where recorded. */
  readonly delayMs: number | undefined;
  /** The consumer instance that passed it on, where recorded. */
  readonly instanceId: string | undefined;
}

/** What the ledger knows of one RefCode: its production order and every hop it was passed on. */
export interface LedgerJourney {
  readonly order: ProductionOrder | undefined;
  /** In the order they happened. */
  readonly forwards: readonly ForwardRecord[];
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
  /** The production order of a RefCode (the message key) and the hops it was passed on. */
  journey(refCode: string): Promise<LedgerJourney>;
  /**
   * Checks that the ledger can take commits now (a connection for PostgreSQL, the write lock for
   * SQLite), for a consumer paused by an outage.
   * @throws {LedgerUnavailableError} while it cannot.
   */
  probe(): Promise<void>;
  /** Closes the ledger. */
  close(): Promise<void>;
}

/**
 * Reading a ledger without writing to it: for tools and tests that look at a ledger a service is
 * writing (no lock taken, no schema created).
 */
export type LedgerReader =
  & Pick<Ledger, "findOrder" | "countOrders" | "journey" | "close">
  & AsyncDisposable;

/** The default instance id: host name and process id. */
export function defaultInstanceId(): string {
  return `${Deno.hostname()}:${Deno.pid}`;
}
