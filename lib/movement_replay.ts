/**
 * A movement sent again under its idempotency key: checked to be the one recorded under that key
 * (same colour, delta and reason), and answered with the first one's result, marked `replayed`;
 * nothing is written again. Both stores answer a repeated movement with it (the SQLite writer,
 * the PostgreSQL mover), from the movement they find in their history (`RecordedMovement`).
 *
 * @module
 */

import { type Movement, type MovementResult, StockError } from "./stock_store.ts";

/**
 * Whether a recorded movement is the one `movement` repeats (same colour, delta and reason), for
 * a movement whose idempotency key is recorded already.
 * @throws {StockError} `key_reused` when it is another movement.
 */
export function checkRepeat(
  recorded: { readonly color: string; readonly delta: number; readonly reason: string | null },
  movement: Movement,
): void {
  if (
    recorded.color !== movement.color || recorded.delta !== movement.delta ||
    (recorded.reason ?? undefined) !== movement.reason
  ) {
    throw new StockError(
      "key_reused",
      `idempotency key ${
        JSON.stringify(movement.idempotencyKey)
      } was used for another movement (colour ${recorded.color}, delta ${recorded.delta}): ` +
        "use a new key for a new movement",
    );
  }
}

/** A movement found in the history by its idempotency key, with its request and its item. */
export interface RecordedMovement {
  /** Its id in the history. */
  readonly id: number;
  readonly color: string;
  readonly delta: number;
  readonly reason: string | null;
  /** The quantity it left. */
  readonly quantityAfter: number;
  /** When it was made. */
  readonly at: Date;
  /** The RefCode of the request it made, if it crossed the reorder point. */
  readonly refCode: string | null;
  /** That request's outbox row, unless deleted after its retention. */
  readonly outbox:
    | { readonly id: number; readonly quantity: number; readonly attempts: number }
    | undefined;
  /** The colour's reorder point and quantity now. */
  readonly reorderPoint: number;
  readonly reorderQuantity: number;
}

/**
 * The result a repeated movement answers: the first one's, marked `replayed`. The item is as the
 * first movement left it (quantity, time), with the colour's reorder settings of now; a request
 * whose outbox row was deleted after its retention has id 0.
 * @throws {StockError} `key_reused` when `movement` is not the one recorded under its key.
 */
export function replayedResult(recorded: RecordedMovement, movement: Movement): MovementResult {
  checkRepeat(recorded, movement);
  const at = recorded.at;
  return {
    movementId: recorded.id,
    item: {
      color: recorded.color,
      quantity: recorded.quantityAfter,
      reorderPoint: recorded.reorderPoint,
      reorderQuantity: recorded.reorderQuantity,
      updatedAt: at.toISOString(),
    },
    before: recorded.quantityAfter - recorded.delta,
    request: recorded.refCode === null ? undefined : {
      id: recorded.outbox?.id ?? 0,
      refCode: recorded.refCode,
      colorCode: recorded.color,
      quantity: recorded.outbox?.quantity ?? recorded.reorderQuantity,
      createdAt: at,
      attempts: recorded.outbox?.attempts ?? 0,
    },
    replayed: true,
  };
}
