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
    /**
     * The fields of its body this reader does not know (a newer minor version's), kept with the
     * production order as JSON of at most {@linkcode EXTRA_MAX_BYTES} bytes (see
     * {@linkcode extraJson}).
     */
    readonly extra?: Readonly<Record<string, unknown>> | undefined;
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
  /**
   * The fields of its body this reader did not know, as kept (see {@linkcode extraJson}); absent
   * when there were none, or the row was written before they were kept.
   */
  readonly extra?: Readonly<Record<string, unknown>>;
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

/** The most bytes of JSON of an order's extra fields a ledger keeps: 4 KiB. */
export const EXTRA_MAX_BYTES = 4096;

/** The field that marks extra fields cut to {@linkcode EXTRA_MAX_BYTES}. */
export const EXTRA_TRUNCATED = "…truncated";

/**
 * An order's extra fields as the ledger stores them: JSON, or undefined for none. JSON longer than
 * {@linkcode EXTRA_MAX_BYTES} bytes is cut: what is kept is an object whose
 * {@linkcode EXTRA_TRUNCATED} field says how long the whole was, and whose `json` field holds its
 * first bytes as text (no longer JSON), the whole staying within the bound.
 *
 * @example
 * ```ts
 * extraJson({ Priority: 3 }); // '{"Priority":3}'
 * extraJson({ Big: "x".repeat(10_000) });
 * // '{"…truncated":"10012 bytes of JSON, the first 3840 kept","json":"{\"Big\":\"xxx…'
 * ```
 */
export function extraJson(
  extra: Readonly<Record<string, unknown>> | undefined,
): string | undefined {
  if (extra === undefined || Object.keys(extra).length === 0) return undefined;
  const json = JSON.stringify(extra);
  const bytes = new TextEncoder().encode(json);
  if (bytes.byteLength <= EXTRA_MAX_BYTES) return json;
  // Room for the marker, and for the escaping the cut text gets inside a JSON string.
  let keep = EXTRA_MAX_BYTES - 256;
  for (;;) {
    const head = new TextDecoder().decode(bytes.subarray(0, keep)).replace(/\uFFFD$/, "");
    const cut = JSON.stringify({
      [EXTRA_TRUNCATED]: `${bytes.byteLength} bytes of JSON, the first ${keep} kept`,
      json: head,
    });
    if (new TextEncoder().encode(cut).byteLength <= EXTRA_MAX_BYTES) return cut;
    keep = Math.floor(keep / 2);
  }
}

/** Extra fields as stored ({@linkcode extraJson}) back as an object; undefined for none. */
export function parseExtra(
  stored: unknown,
): Readonly<Record<string, unknown>> | undefined {
  if (stored === null || stored === undefined) return undefined;
  if (typeof stored === "object") return stored as Record<string, unknown>; // jsonb, parsed
  try {
    const value = JSON.parse(String(stored));
    return typeof value === "object" && value !== null && !Array.isArray(value) ? value : undefined;
  } catch {
    return undefined;
  }
}

/** The default instance id: host name and process id. */
export function defaultInstanceId(): string {
  return `${Deno.hostname()}:${Deno.pid}`;
}
