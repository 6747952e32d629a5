/**
 * What a pass over the dead-letter queue takes and gives (_dead_letter_walk.ts walks it): the
 * operations' shared options and counts, the error a pass ends with, and what a visitor may do.
 *
 * @module
 */

import type { ConsumeMessage, Message } from "amqplib";
import type { DeadLetterFilter } from "./dead_letters.ts";

/**
 * The most bytes of dead letters' bodies a pass holds at once when nothing else is said (64 MiB).
 * An option for it would be `--max-held-mb` / `DLQ_MAX_HELD_MB` (and the console's likewise).
 */
export const DEFAULT_MAX_HELD_BYTES = 64 * 1024 * 1024;

/** Options shared by the operations. */
export interface DeadLetterScan {
  /** Which dead letters. */
  readonly filter?: DeadLetterFilter;
  /** Act on at most this many matching dead letters (the rest are still counted). */
  readonly limit?: number;
  /**
   * Look at no more than the first this many messages of the queue: those a preview counted, so
   * that what arrived since is left alone.
   */
  readonly within?: number;
  /** Stops early when aborted; nothing is lost. */
  readonly signal?: AbortSignal;
  /** Called as the walk goes, with the messages seen so far and the queue's depth when it began. */
  readonly onScan?: (seen: number, total: number) => void;
  /**
   * The most bytes of bodies the pass holds at once (a single larger body is held alone; a look
   * holds what one read delivers: see _dead_letter_walk.ts).
   * @default {DEFAULT_MAX_HELD_BYTES}
   */
  readonly maxHeldBytes?: number;
  /** Called whenever the bytes of bodies the pass holds change, with the new figure. */
  readonly onHeld?: (bytes: number) => void;
}

/** What an operation found and did; every count is exact. */
export interface DeadLetterCounts {
  /** Dead letters in the queue when the operation began. */
  readonly total: number;
  /** Of those, the ones matching the filter. */
  readonly matched: number;
  /** Matching ones acted on (replayed, purged, listed), at most `limit`. */
  readonly done: number;
  /** Matching ones whose replay failed; they stay in the dead-letter queue. */
  readonly failed: number;
  /** Dead letters in the queue afterwards. */
  readonly left: number;
}

/** Why a pass ended before it was done. */
export type PassFailure = "channel_closed" | "cancelled" | "would_reorder";

/** A pass over the dead-letter queue that could not go on; what it had not acked is back in it. */
export class DeadLetterPassError extends Error {
  /**
   * `channel_closed` (its channel or connection closed), `cancelled` (by the broker), or
   * `would_reorder` (a look that would have changed the queue's order refused to begin).
   */
  readonly code: PassFailure;

  /** Creates the error of a pass that ended for `code`. */
  constructor(message: string, options: ErrorOptions & { code: PassFailure }) {
    super(message, options);
    this.name = "DeadLetterPassError";
    this.code = options.code;
  }
}

/** What a visitor may do with the pass. */
export interface Pass {
  /** The messages the pass walks (the queue's depth when it began, at most `within`). */
  readonly total: number;
  /** Whether the pass goes on: false once its channel closed, it failed, or it was aborted. */
  readonly active: boolean;
  /** Removes a message the pass took; false (it stays in the queue) when the channel closed. */
  ack(message: Pick<Message, "fields">): boolean;
}

/** What a pass does with the messages it walks. */
export interface Visitor {
  /**
   * The pass removes nothing (a listing, a dry run) and its visits are quick: it asks for every
   * letter at once and puts none back mid-pass, so as to leave the queue as it found it; it
   * refuses to begin (`would_reorder`) where it could not (module doc).
   */
  readonly looksOnly?: boolean;
  /**
   * Called for each message of the pass, in queue order; the pass holds the message's body until
   * what it returns settles. A visit that throws ends the pass with that error.
   */
  visit(message: ConsumeMessage, pass: Pass): void | Promise<void>;
  /** Runs once every visit settled, before the channel closes; not when the pass failed. */
  finish?(pass: Pass): Promise<void>;
  /** Runs before the channel closes, whether the pass succeeded or not (after every visit). */
  settle?(): Promise<void>;
}
