/**
 * Operating the dead-letter queue: look at dead letters without losing them, send them back for
 * processing (dead_letter_replay.ts), purge them, archiving them first (dead_letter_purge.ts), or
 * send back an archive. Every operation walks the queue once and keeps what it does not take
 * unacknowledged until it is done, then gives it back, and returns only once the broker applied
 * what it removed and gave back: an operation right after it counts every letter, and none it
 * removed comes back. A dead letter is removed only once what replaces it is confirmed (a replay)
 * or written and synced (an archive). Counts are exact: the walk sees every message that was in
 * the queue when it began. A look (a listing, a dry run) leaves the queue's order as it was; an
 * operation that removes letters keeps the order of those it leaves (on a quorum queue of
 * RabbitMQ before 4.3, behind the letters that arrived meanwhile). A walk that acts holds at most
 * `maxHeldBytes` of bodies at once; every walk ends with an error when its channel closes (see
 * _dead_letter_walk.ts).
 *
 * @module
 */

import { walkDeadLetters } from "./_dead_letter_walk.ts";
import type { DeadLetterCounts, DeadLetterScan } from "./_dead_letter_pass.ts";
import type { Broker } from "./broker.ts";
import { type DeadLetter, matchesFilter, toDeadLetter } from "./dead_letters.ts";
import type { Topology } from "./topology.ts";

export {
  type DeadLetterCounts,
  DeadLetterPassError,
  type DeadLetterScan,
  DEFAULT_MAX_HELD_BYTES,
  type PassFailure,
} from "./_dead_letter_pass.ts";
export {
  type ArchiveReplayOptions,
  MAX_REPORTED_FAILURES,
  replayArchive,
  type ReplayCounts,
  replayDeadLetters,
  type ReplayFailure,
  type ReplayOptions,
} from "./dead_letter_replay.ts";
export {
  type ArchivedDeadLetter,
  archivePath,
  purgeDeadLetters,
  PurgeError,
  type PurgeOptions,
} from "./dead_letter_purge.ts";

/** Options for {@linkcode inspectDeadLetters}. */
export interface InspectOptions extends DeadLetterScan {
  /**
   * Keep at most this many bytes of each listed dead letter's body (a preview; its `size` says
   * how large it is); whole bodies when not given.
   */
  readonly previewBytes?: number;
}

/** What {@linkcode inspectDeadLetters} found. */
export interface Inspection extends DeadLetterCounts {
  /** The matching dead letters, at most `limit`, in queue order. */
  readonly letters: DeadLetter[];
}

/**
 * Lists dead letters without consuming them: every one looked at goes back to its place, and the
 * queue's order is kept. Each body is let go once read, so what the listing keeps is `limit`
 * letters of at most `previewBytes` each.
 *
 * @throws {DeadLetterPassError} when the channel closes under the walk (nothing is lost), or
 * (`would_reorder`, before it began) on more than 2,097,120 letters before RabbitMQ 4.3.
 */
export async function inspectDeadLetters(
  broker: Broker,
  topo: Topology,
  options: InspectOptions = {},
): Promise<Inspection> {
  const letters: DeadLetter[] = [];
  const limit = options.limit ?? Number.POSITIVE_INFINITY;
  const filter = options.filter ?? {};
  let matched = 0;
  const total = await walkDeadLetters(broker, topo, options, {
    looksOnly: true,
    visit: (message) => {
      // Read without the body first: most letters of a large queue are only counted.
      const letter = toDeadLetter(message, { previewBytes: 0 });
      if (!matchesFilter(letter, filter)) return;
      matched++;
      if (letters.length >= limit) return;
      letters.push(
        options.previewBytes === 0
          ? letter
          : toDeadLetter(message, { previewBytes: options.previewBytes }),
      );
    },
  });
  return { total, matched, done: letters.length, failed: 0, left: total, letters };
}
