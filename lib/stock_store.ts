/**
 * Estoque's stock store: a stock item per colour (quantity, reorder point, reorder quantity), the
 * movements that change it, and the outbox of production-order requests. A movement that takes a
 * colour's stock from at or above its reorder point to below it writes the request for the
 * reorder quantity into the outbox in the same transaction as the movement itself, its RefCode
 * made there: committed together or not at all. The relay (outbox_relay.ts) publishes the outbox.
 *
 * This module is the contract and the pure rules; the SQLite store is in sqlite_stock_store.ts,
 * the PostgreSQL one in postgres_stock_store.ts, and openStockStore() (open_stock_store.ts) picks
 * one from a URL. Both stores answer a movement sent again under its idempotency key as
 * movement_replay.ts says.
 *
 * @module
 */

import { EVENT_TYPE_CREATE, type Order } from "./order.ts";

/** The default stock store, relative to the working directory. */
export const DEFAULT_STOCK_URL = "sqlite:data/stock.sqlite";

/** A colour code as the wire carries it: a UUID (OrdemDeProducao refuses anything else). */
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The longest reason a movement may carry. */
export const MAX_REASON_LENGTH = 200;

/** The longest idempotency key a movement may carry. */
export const MAX_IDEMPOTENCY_KEY_LENGTH = 200;

/** An idempotency key: 1 to 200 visible ASCII characters (as an HTTP header carries it). */
const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,200}$/;

/** A colour's stock. */
export interface StockItem {
  /** The colour code, a UUID in lower case: the ColorCode of its production-order requests. */
  readonly color: string;
  /** Units in stock, never below 0. */
  readonly quantity: number;
  /** Below this, production is asked for. */
  readonly reorderPoint: number;
  /** How many units a production-order request asks for. */
  readonly reorderQuantity: number;
  /** When it last changed (ISO 8601). */
  readonly updatedAt: string;
}

/** What `stock set` writes: a new item, or new values for one. */
export type StockItemSettings = Omit<StockItem, "updatedAt">;

/** A change of a colour's stock. */
export interface Movement {
  /** The colour code. */
  readonly color: string;
  /** Units in (positive) or out (negative); never 0. */
  readonly delta: number;
  /** Why, for the history (an order number, "count"); at most 200 characters. */
  readonly reason?: string | undefined;
  /**
   * Names the movement for its retries: a movement with a key already recorded is not applied
   * again; the store answers the first one's result (`replayed`). 1 to 200 visible ASCII
   * characters, unique in the history.
   */
  readonly idempotencyKey?: string | undefined;
}

/** A production-order request waiting in the outbox, or sent from it. */
export interface OutboxRow {
  /**
   * Its place in the outbox: committed rows are published in this order. Taken at insert, not at
   * commit: across colours a row may commit after one with a larger id (see docs/outbox.md).
   */
  readonly id: number;
  /** The request's RefCode, made in the movement's transaction (the message id). */
  readonly refCode: string;
  /** The colour code. */
  readonly colorCode: string;
  /** The reorder quantity. */
  readonly quantity: number;
  /**
   * When the movement that made it was taken, by the clock of the Estoque that made it: read just
   * before the movement's transaction began (not its commit). The message's timestamp.
   */
  readonly createdAt: Date;
  /** Publishes that failed so far (the row stays until one is confirmed). */
  readonly attempts: number;
}

/** What a committed movement did. */
export interface MovementResult {
  /** The movement's id in the history. */
  readonly movementId: number;
  /** The item as the movement left it. */
  readonly item: StockItem;
  /** The quantity before the movement. */
  readonly before: number;
  /** The request the movement put in the outbox, when it crossed the reorder point. */
  readonly request: OutboxRow | undefined;
  /**
   * True when this is the result of an earlier movement with the same idempotency key: nothing
   * was written now. `item` is then as that movement left it (its quantity and time).
   */
  readonly replayed?: true;
}

/** The outbox at a glance, for metrics and the doctor. */
export interface OutboxStats {
  /** Rows not sent yet. */
  readonly depth: number;
  /** When the oldest unsent row was made; undefined when none waits. */
  readonly oldestUnsentAt: Date | undefined;
  /** The most failed publishes of any unsent row (a stuck row has many). */
  readonly maxAttempts: number;
}

/** A publish that failed for one row, recorded on it. */
export interface OutboxFailure {
  /** The row's id. */
  readonly id: number;
  /** What went wrong (`returned`, `nacked`, …), kept as the row's last error. */
  readonly error: string;
}

/**
 * Rows the relay took to publish. Until it is finished nobody else publishes them (a row lock on
 * PostgreSQL, the one relay of the file on SQLite); when the relay dies first they are released
 * unsent, and published again.
 */
export interface OutboxClaim {
  /** The rows, oldest first; empty when none waits. */
  readonly rows: readonly OutboxRow[];
  /**
   * Marks `sent` sent at `at` (only rows the broker confirmed) and records the failed publishes;
   * every other row of the claim stays unsent. Releases the claim.
   */
  finish(sent: readonly number[], failed: readonly OutboxFailure[], at: Date): Promise<void>;
  /** Releases the claim with nothing marked: every row stays unsent. */
  abandon(): Promise<void>;
}

/** Wakes a relay when a row may have been added to the outbox; see {@linkcode StockStore.listen}. */
export interface OutboxListener extends AsyncDisposable {
  /** Stops listening. */
  close(): Promise<void>;
}

/** Why a movement or a stock item was refused. */
export type StockErrorCode =
  | "unknown_color"
  | "bad_color"
  | "bad_delta"
  | "below_zero"
  | "too_large"
  | "bad_item"
  | "bad_reason"
  | "bad_key"
  | "key_reused"
  | "bad_movement";

/**
 * A movement or item refused for what it says (unknown colour, a delta that is not a whole number,
 * stock that would fall below zero): nothing was written. Decided by `code`.
 */
export class StockError extends Error {
  /** Why. */
  readonly code: StockErrorCode;

  /** Creates the error. */
  constructor(code: StockErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "StockError";
    this.code = code;
  }
}

/**
 * The stock store cannot take work now (unreachable, restarting, locked, read-only, full): an
 * outage, not a fault of the movement. A relay pauses for it; a movement may be tried again.
 */
export class StockStoreUnavailableError extends Error {
  /** What the driver said: `ECONNREFUSED`, `57P01`, `busy` for a locked SQLite file, … */
  readonly code: string | undefined;

  /** Creates the error. */
  constructor(message: string, options: ErrorOptions & { code?: string | undefined } = {}) {
    super(message, options);
    this.name = "StockStoreUnavailableError";
    this.code = options.code;
  }
}

/**
 * The store stopped answering while a movement's transaction was committing: it may have been
 * applied or not, nobody here can tell. Not an outage to retry blindly (a retry could apply it
 * twice): look at the stock, or send it again with the same idempotency key. Code
 * `commit_unknown`.
 */
export class StockCommitUnknownError extends Error {
  /** Always `commit_unknown`. */
  readonly code = "commit_unknown";

  /** Creates the error. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "StockCommitUnknownError";
  }
}

/**
 * Wakes this process's relays (`wakes`, from {@linkcode StockStore.listen}) when a movement
 * committed a new request: not when it asked for none, nor when it was a replay of one already
 * committed. Both stores call it as a movement's result comes back.
 */
export function wakeOnRequest(
  result: Pick<MovementResult, "request" | "replayed">,
  wakes: Iterable<() => void>,
): void {
  if (result.request && !result.replayed) { for (const wake of wakes) wake(); }
}

/** Whether `error`, or one in its cause chain, is a {@linkcode StockStoreUnavailableError}. */
export function isStoreUnavailable(error: unknown): boolean {
  let current: unknown = error;
  for (let depth = 0; current instanceof Error && depth < 8; depth++) {
    if (current instanceof StockStoreUnavailableError) return true;
    current = current.cause;
  }
  return false;
}

/** The stock store's operations. */
export interface StockStore extends AsyncDisposable {
  /** Where it is, without a password (`sqlite:data/stock.sqlite`, `postgres://u:***@db/x`). */
  readonly name: string;
  /**
   * How many claims of one relay ({@linkcode StockStore.claimOutbox}) the store takes at once
   * without holding up movements: 2 where it can (the relay then claims and publishes the next
   * batch while the broker confirms one), 1 otherwise.
   */
  readonly outboxClaimsAtOnce: number;
  /** Creates a colour's item or replaces its values; no request is made. */
  setItem(settings: StockItemSettings): Promise<StockItem>;
  /** Every item, by colour. */
  listItems(): Promise<StockItem[]>;
  /** One colour's item, if there is one. */
  getItem(color: string): Promise<StockItem | undefined>;
  /**
   * Applies a movement: checked ({@linkcode checkMovement}), then in one transaction the item, the
   * history and, when it crosses the reorder point, the outbox.
   * With an idempotency key already recorded, writes nothing and resolves with the first
   * movement's result (`replayed`); the same key for another movement is refused (`key_reused`).
   * @throws {StockError} when refused (nothing written).
   * @throws {StockStoreUnavailableError} during an outage (nothing written).
   * @throws {StockCommitUnknownError} when the store stopped answering during the commit.
   */
  move(movement: Movement): Promise<MovementResult>;
  /** How many movements the history holds. */
  countMovements(): Promise<number>;
  /** The outbox's rows, sent ones included, in order (for tests and audits). */
  outboxRows(): Promise<Array<OutboxRow & { readonly sentAt: Date | undefined }>>;
  /** The outbox at a glance. */
  outboxStats(): Promise<OutboxStats>;
  /**
   * Takes at most `limit` unsent rows, oldest first, for one relay; see {@linkcode OutboxClaim}.
   * @throws {FatalError} code `relay_in_use` on SQLite when another process relays this file.
   */
  claimOutbox(limit: number): Promise<OutboxClaim>;
  /** Deletes rows sent before `before`; resolves with how many. */
  deleteSent(before: Date): Promise<number>;
  /**
   * Calls `wake` whenever a movement may have added a row to the outbox: at once on SQLite (this
   * process's movements), by LISTEN/NOTIFY on PostgreSQL (every instance's), and after the
   * listening connection was lost and made again (what was missed meanwhile).
   */
  listen(wake: () => void): Promise<OutboxListener>;
  /**
   * Checks that the store can take work now.
   * @throws {StockStoreUnavailableError} while it cannot.
   */
  probe(): Promise<void>;
  /** Closes the store. */
  close(): Promise<void>;
}

/**
 * A colour code, checked and in lower case.
 * @throws {StockError} `bad_color` naming the value.
 */
export function checkColor(color: unknown): string {
  if (typeof color !== "string" || !UUID.test(color)) {
    throw new StockError(
      "bad_color",
      `a colour is given by its code, a UUID (the ColorCode of its orders), got ${
        JSON.stringify(color) ?? String(color)
      }`,
    );
  }
  return color.toLowerCase();
}

function wholeNumber(value: unknown, field: string, min: number, code: StockErrorCode): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < min) {
    throw new StockError(
      code,
      `${field} must be a whole number from ${min} to ${Number.MAX_SAFE_INTEGER}, got ${
        JSON.stringify(value) ?? String(value)
      }`,
    );
  }
  return value;
}

/**
 * An item's settings, checked: a colour code, whole numbers, a reorder quantity of at least 1.
 * @throws {StockError} `bad_color` or `bad_item`, naming the field.
 */
export function checkItem(settings: StockItemSettings): StockItemSettings {
  return {
    color: checkColor(settings.color),
    quantity: wholeNumber(settings.quantity, "quantity", 0, "bad_item"),
    reorderPoint: wholeNumber(settings.reorderPoint, "reorder point", 0, "bad_item"),
    reorderQuantity: wholeNumber(settings.reorderQuantity, "reorder quantity", 1, "bad_item"),
  };
}

/**
 * A movement, checked on its own (the store checks the rest against the item): a colour code, a
 * whole non-zero delta, a reason of at most 200 characters, an idempotency key of 1 to 200
 * visible ASCII characters.
 * @throws {StockError} `bad_color`, `bad_delta`, `bad_reason` or `bad_key`.
 */
export function checkMovement(movement: Movement): Movement {
  const color = checkColor(movement.color);
  const { delta, reason, idempotencyKey } = movement;
  if (typeof delta !== "number" || !Number.isSafeInteger(delta) || delta === 0) {
    throw new StockError(
      "bad_delta",
      `delta must be a whole number of units other than 0 (negative takes stock out), got ${
        JSON.stringify(delta) ?? String(delta)
      }`,
    );
  }
  if (reason !== undefined && (typeof reason !== "string" || reason.length > MAX_REASON_LENGTH)) {
    throw new StockError(
      "bad_reason",
      `reason must be text of at most ${MAX_REASON_LENGTH} characters`,
    );
  }
  if (
    idempotencyKey !== undefined &&
    (typeof idempotencyKey !== "string" || !IDEMPOTENCY_KEY.test(idempotencyKey))
  ) {
    throw new StockError(
      "bad_key",
      `an idempotency key is 1 to ${MAX_IDEMPOTENCY_KEY_LENGTH} visible ASCII characters, got ${
        JSON.stringify(idempotencyKey)?.slice(0, 60) ?? String(idempotencyKey)
      }`,
    );
  }
  return {
    color,
    delta,
    ...(reason === undefined ? {} : { reason }),
    ...(idempotencyKey === undefined ? {} : { idempotencyKey }),
  };
}

/** What a movement does to an item: the new quantity, and whether production must be asked for. */
export interface MovementEffect {
  /** The quantity after the movement. */
  readonly after: number;
  /** Whether it crossed the reorder point downwards (from at or above it to below it). */
  readonly crossed: boolean;
}

/**
 * The pure rule of a movement: the quantity after it, and whether it crosses the reorder point
 * from at or above it to below it, which asks for production once. Movements below the point ask
 * for nothing more; stock that comes back to the point and falls below it again asks again.
 *
 * @example
 * ```ts
 * // reorder point 10:
 * applyMovement({ quantity: 12, reorderPoint: 10 }, -3); // { after: 9, crossed: true }
 * applyMovement({ quantity: 9, reorderPoint: 10 }, -4);  // { after: 5, crossed: false }
 * applyMovement({ quantity: 5, reorderPoint: 10 }, -6);  // throws StockError below_zero
 * ```
 *
 * @throws {StockError} `below_zero` or `too_large`, naming the colour and the quantities.
 */
export function applyMovement(
  item: Pick<StockItem, "color" | "quantity" | "reorderPoint">,
  delta: number,
): MovementEffect {
  const after = item.quantity + delta;
  if (after < 0) {
    throw new StockError(
      "below_zero",
      `colour ${item.color} has ${item.quantity} in stock: taking ${-delta} would leave ${after}`,
    );
  }
  if (!Number.isSafeInteger(after)) {
    throw new StockError(
      "too_large",
      `colour ${item.color} would hold more than ${Number.MAX_SAFE_INTEGER} units`,
    );
  }
  return { after, crossed: item.quantity >= item.reorderPoint && after < item.reorderPoint };
}

/** The error of a movement of a colour that has no item. */
export function unknownColor(color: string): StockError {
  return new StockError(
    "unknown_color",
    `no stock item for colour ${color}: set it up first (deno task estoque stock set --color ${color} ...)`,
  );
}

/** The production-order request of an outbox row, as publishOrder() sends it. */
export function outboxOrder(row: OutboxRow): Order {
  return {
    refCode: row.refCode,
    colorCode: row.colorCode,
    quantity: row.quantity,
    eventType: EVENT_TYPE_CREATE,
  };
}
