/**
 * The PostgreSQL stock store's movements, committed in groups. The movements that arrive while a
 * commit is under way share the next transaction (at most {@linkcode MAX_BATCH}, at most
 * {@linkcode MAX_WRITERS} transactions at once), and the movements of a group are written by one
 * statement per round (a round: at most one movement of each colour; a colour's next movement
 * goes in the next round, so it sees the one before): each movement's item, the outbox row when
 * it crosses the reorder point (with its `pg_notify`) and its history row. A group costs a few
 * round trips and one commit's WAL flush, not six round trips and a flush for each movement.
 *
 * Each movement keeps the guarantee it had alone: its item, outbox row and history row commit
 * together or not at all, and a refused movement (unknown colour, below zero, a key used for
 * another movement) writes nothing and leaves the others of its group alone: a refusal is found
 * by the statement writing nothing for it, not by an error. A statement that fails (a trigger, a
 * key taken by a movement committing at the same time) aborts its group's transaction: then each
 * movement of the group is run again alone, and the one that fails, fails alone. An outage fails
 * the group (nothing written); a COMMIT whose answer is lost leaves each of its movements unknown
 * (`commit_unknown`), as one movement's was. A round takes its items' row locks in the order of
 * their colours, so two groups (of this store or another instance's) never wait for each other in
 * a circle.
 *
 * @module
 */

import type pg from "pg";
import { inTransaction } from "./_postgres.ts";
import {
  IDEMPOTENCY_KEY_INDEX,
  itemOf,
  RECORDED_MOVEMENT_SQL,
  recordedOf,
} from "./_postgres_stock_schema.ts";
import { errorCode } from "./errors.ts";
import { replayedResult } from "./movement_replay.ts";
import {
  applyMovement,
  isStoreUnavailable,
  type Movement,
  type MovementResult,
  StockCommitUnknownError,
  StockError,
  unknownColor,
} from "./stock_store.ts";

/** The most movements one transaction takes. */
export const MAX_BATCH = 100;

/** The most transactions of movements at once (each on a connection of the pool). */
export const MAX_WRITERS = 2;

/**
 * One round of movements, one statement, at most one movement of each colour: their items locked
 * in the order of their colours, each one's quantity moved (unless it would leave the range of a
 * quantity, or its idempotency key is recorded already: then nothing is written for it), its
 * request when it crosses the reorder point from at or above it to below it (applyMovement()'s
 * rule), its history row. Arrays, one element a movement: $1 its index, $2 colour, $3 delta, $4
 * time, $5 RefCode (used if it crosses), $6 reason, $7 idempotency key; $8 the NOTIFY channel.
 * Answers a row for each movement written.
 */
const MOVE_SQL = `
  WITH input AS (
    SELECT * FROM unnest($1::int[], $2::text[], $3::bigint[], $4::timestamptz[], $5::text[],
                         $6::text[], $7::text[])
      AS m(i, color, delta, at, ref_code, reason, key)
  ), locked AS (
    SELECT color FROM stock_items WHERE color IN (SELECT color FROM input)
    ORDER BY color FOR UPDATE
  ), moved AS (
    UPDATE stock_items s SET quantity = s.quantity + m.delta, updated_at = m.at
    FROM input m JOIN locked l ON l.color = m.color
    WHERE s.color = m.color
      AND s.quantity + m.delta BETWEEN 0 AND ${Number.MAX_SAFE_INTEGER}
      AND (m.key IS NULL OR NOT EXISTS (
        SELECT 1 FROM stock_movements h WHERE h.idempotency_key = m.key))
    RETURNING m.i, m.color, m.delta, m.at, m.ref_code, m.reason, m.key,
              s.quantity - m.delta AS before, s.quantity AS after,
              s.reorder_point, s.reorder_quantity
  ), request AS (
    INSERT INTO stock_outbox (ref_code, color_code, quantity, created_at)
    SELECT ref_code, color, reorder_quantity, at FROM moved
    WHERE before >= reorder_point AND after < reorder_point
    ORDER BY i
    RETURNING id, ref_code, pg_notify($8::text, '')
  ), history AS (
    INSERT INTO stock_movements
      (color, delta, quantity_after, at, reason, ref_code, idempotency_key)
    SELECT moved.color, moved.delta, moved.after, moved.at, moved.reason, request.ref_code,
           moved.key
    FROM moved LEFT JOIN request ON request.ref_code = moved.ref_code
    ORDER BY moved.i
    RETURNING id, color
  )
  SELECT moved.i, moved.before, moved.after, moved.reorder_point, moved.reorder_quantity,
         history.id AS movement_id, request.id AS request_id
  FROM moved JOIN history ON history.color = moved.color
  LEFT JOIN request ON request.ref_code = moved.ref_code`;

/** A movement waiting for its group's commit. */
interface Waiting {
  /** Checked (checkMovement). */
  readonly movement: Movement;
  /** Its time: Estoque's clock when it was taken, before its transaction. */
  readonly at: Date;
  readonly resolve: (result: MovementResult) => void;
  readonly reject: (error: unknown) => void;
}

/** How a movement of a group ends: its result, or its refusal. */
type Outcome = { readonly ok: MovementResult } | { readonly refused: StockError };

/** Colour-ordered movements in rounds: the k-th movement of each colour in the k-th round. */
function roundsOf(ordered: readonly Waiting[]): Waiting[][] {
  const rounds: Waiting[][] = [];
  let k = 0;
  let previous: string | undefined;
  for (const waiting of ordered) {
    k = waiting.movement.color === previous ? k + 1 : 0;
    previous = waiting.movement.color;
    (rounds[k] ??= []).push(waiting);
  }
  return rounds;
}

/** A movement's result from its row of {@linkcode MOVE_SQL}. */
function resultOf(
  waiting: Waiting,
  row: Record<string, unknown>,
  refCode: string,
): MovementResult {
  const { movement: { color }, at } = waiting;
  const reorderQuantity = Number(row.reorder_quantity);
  return {
    movementId: Number(row.movement_id),
    item: {
      color,
      quantity: Number(row.after),
      reorderPoint: Number(row.reorder_point),
      reorderQuantity,
      updatedAt: at.toISOString(),
    },
    before: Number(row.before),
    request: row.request_id === null ? undefined : {
      id: Number(row.request_id),
      refCode,
      colorCode: color,
      quantity: reorderQuantity,
      createdAt: at,
      attempts: 0,
    },
  };
}

/** What {@linkcode PostgresStockMover} needs of its store. */
export interface PostgresStockMoverOptions {
  readonly pool: pg.Pool;
  /** The outbox's NOTIFY channel. */
  readonly channel: string;
  /** Turns a driver's error into the store's (an outage into StockStoreUnavailableError). */
  readonly classify: (error: unknown) => unknown;
  /** What a COMMIT of unknown outcome throws, for each movement of the group. */
  readonly commitUnknown: (error: unknown) => StockCommitUnknownError;
  /**
   * Transactions of movements at once, at most.
   * @default {MAX_WRITERS}
   */
  readonly writers?: number;
}

/** Commits movements in groups; see the module doc. */
export class PostgresStockMover {
  readonly #options: PostgresStockMoverOptions;
  readonly #queue: Waiting[] = [];
  readonly #writers = new Set<Promise<void>>();

  /** A mover on the store's pool. */
  constructor(options: PostgresStockMoverOptions) {
    this.#options = options;
  }

  /** Applies a checked movement taken at `at`, in the next group; resolves once committed. */
  move(movement: Movement, at: Date): Promise<MovementResult> {
    const { promise, resolve, reject } = Promise.withResolvers<MovementResult>();
    this.#queue.push({ movement, at, resolve, reject });
    this.#startWriter();
    return promise;
  }

  /** Starts a writer, unless as many as allowed are at work. */
  #startWriter(): void {
    if (this.#writers.size >= (this.#options.writers ?? MAX_WRITERS)) return;
    const writer: Promise<void> = this.#write().finally(() => {
      this.#writers.delete(writer);
      // A movement taken after the writer's last look at the queue, while it still counted as
      // at work, found no writer free: it is taken now.
      if (this.#queue.length > 0) this.#startWriter();
    });
    this.#writers.add(writer);
  }

  /** Resolves once every movement taken so far has settled. */
  async drain(): Promise<void> {
    while (this.#writers.size > 0) await Promise.all(this.#writers);
  }

  /** Commits what is queued, a group at a time, until the queue is empty. */
  async #write(): Promise<void> {
    // What is taken in the same tick shares the first transaction.
    await Promise.resolve();
    while (this.#queue.length > 0) {
      await this.#commit(this.#queue.splice(0, MAX_BATCH));
    }
  }

  /**
   * Commits one group and settles each of its movements; a group that fails with an error that is
   * neither an outage nor a lost COMMIT answer goes again one movement at a time.
   */
  async #commit(group: Waiting[]): Promise<void> {
    // In the order of their colours (a stable sort: one colour's movements keep theirs).
    const ordered = group.toSorted((a, b) =>
      a.movement.color < b.movement.color ? -1 : a.movement.color > b.movement.color ? 1 : 0
    );
    const outcomes = new Map<Waiting, Outcome>();
    try {
      await inTransaction(
        this.#options.pool,
        async (client) => {
          for (const round of roundsOf(ordered)) await this.#round(client, round, outcomes);
        },
        this.#options.classify,
        { commitUnknown: this.#options.commitUnknown },
      );
    } catch (error) {
      const unknown = error instanceof StockCommitUnknownError;
      if (ordered.length > 1 && !isStoreUnavailable(error) && !unknown) {
        // One movement's statement failed: each goes again alone, and fails alone.
        for (const waiting of ordered) await this.#commit([waiting]);
        return;
      }
      for (const waiting of ordered) {
        if (ordered.length === 1) this.#settleAlone(waiting, error);
        else waiting.reject(error);
      }
      return;
    }
    for (const waiting of ordered) {
      const outcome = outcomes.get(waiting)!;
      if ("ok" in outcome) waiting.resolve(outcome.ok);
      else waiting.reject(outcome.refused);
    }
  }

  /**
   * One round in the group's transaction: its statement, then, for each movement it wrote nothing
   * for, why (the key's first result, or the refusal applyMovement() gives, the item locked to read
   * it). One that would apply after all (its item changed between the two) goes again, once.
   */
  async #round(
    client: pg.PoolClient,
    round: readonly Waiting[],
    outcomes: Map<Waiting, Outcome>,
    attempt = 1,
  ): Promise<void> {
    // The RefCodes are made for the movements' transaction: a row published twice is one request.
    const refCodes = round.map(() => crypto.randomUUID());
    // A named statement: parsed and planned once a connection.
    const { rows } = await client.query({ name: "stock_move", text: MOVE_SQL }, [
      round.map((_, i) => i),
      round.map((w) => w.movement.color),
      round.map((w) => w.movement.delta),
      round.map((w) => w.at),
      refCodes,
      round.map((w) => w.movement.reason ?? null),
      round.map((w) => w.movement.idempotencyKey ?? null),
      this.#options.channel,
    ]);
    const written = new Map<number, Record<string, unknown>>(
      rows.map((row: Record<string, unknown>) => [Number(row.i), row]),
    );
    const again: Waiting[] = [];
    for (const [i, waiting] of round.entries()) {
      const row = written.get(i);
      if (row !== undefined) {
        outcomes.set(waiting, { ok: resultOf(waiting, row, refCodes[i]!) });
        continue;
      }
      const why = await this.#whyNot(client, waiting);
      if (why !== undefined) outcomes.set(waiting, why);
      else if (attempt === 1) again.push(waiting);
      else {
        const { color } = waiting.movement;
        throw new Error(`the movement of colour ${color} was not written, nor refused`);
      }
    }
    if (again.length > 0) await this.#round(client, again, outcomes, attempt + 1);
  }

  /**
   * Why a movement was not written: its idempotency key's first result, or its refusal; undefined
   * when neither (it would apply now).
   */
  async #whyNot(client: pg.PoolClient, waiting: Waiting): Promise<Outcome | undefined> {
    const { movement } = waiting;
    try {
      const key = movement.idempotencyKey;
      if (key !== undefined) {
        const { rows: [recorded] } = await client.query(RECORDED_MOVEMENT_SQL, [key]);
        if (recorded !== undefined) return { ok: replayedResult(recordedOf(recorded), movement) };
      }
      const { rows: [item] } = await client.query(
        "SELECT * FROM stock_items WHERE color = $1 FOR UPDATE",
        [movement.color],
      );
      if (item === undefined) throw unknownColor(movement.color);
      applyMovement(itemOf(item), movement.delta); // throws the refusal
      return undefined;
    } catch (error) {
      if (error instanceof StockError) return { refused: error };
      throw error;
    }
  }

  /**
   * A movement alone that failed: the same idempotency key, at once, for two colours (no row lock
   * in common) fails the second's insert on the key the first committed meanwhile: it answers the
   * first's result.
   */
  #settleAlone(waiting: Waiting, error: unknown): void {
    const key = waiting.movement.idempotencyKey;
    if (
      key === undefined || errorCode(error) !== "23505" ||
      (error as { constraint?: unknown }).constraint !== IDEMPOTENCY_KEY_INDEX
    ) {
      return waiting.reject(error);
    }
    this.#options.pool.query(RECORDED_MOVEMENT_SQL, [key]).then(
      ({ rows: [recorded] }: pg.QueryResult) => {
        if (recorded === undefined) return waiting.reject(error);
        waiting.resolve(replayedResult(recordedOf(recorded), waiting.movement));
      },
      () => waiting.reject(error),
    ).catch(waiting.reject); // replayedResult's key_reused
  }
}
