/**
 * The console's view of the dead-letter queue: a snapshot taken by one walk of the queue (which
 * puts every message back in its place), kept in the console process, and answered from in pages
 * and groups, so a browser never loads the whole queue. A snapshot older than `maxAgeMs` (and
 * than four times the last walk took) is replaced by a new walk when a page asks and the queue's
 * depth changed (at the latest after `fullWalkMs`); while that runs, the old one answers and the
 * walk's progress shows. Walks and the operations that change the queue (replay, purge) take turns.
 * The index keeps each dead letter's metadata, its size and a preview of its body (at most
 * {@linkcode INDEX_PREVIEW_BYTES}), never a large body whole: a body too large for the preview is
 * shown cut, and said to be (`dlq show REF` prints it whole).
 *
 * @module
 */

import type { Broker } from "../broker.ts";
import { inspectDeadLetters } from "../dead_letter_ops.ts";
import {
  type DeadLetter,
  type DeadLetterFilter,
  errorGroupOf,
  matchesFilter,
} from "../dead_letters.ts";
import type { Topology } from "../topology.ts";

/**
 * The most bytes of a dead letter's body the index keeps (a preview; the letter's `size` is the
 * whole body's). An option for it would be `--body-preview-bytes` / `CONSOLE_BODY_PREVIEW_BYTES`.
 */
export const INDEX_PREVIEW_BYTES = 4096;

/** One walk's result. */
export interface Snapshot {
  /** When the walk ended. */
  readonly at: Date;
  /** The dead letters, in queue order, with at most {@linkcode INDEX_PREVIEW_BYTES} of each body. */
  readonly letters: readonly DeadLetter[];
}

/** A failure group: dead letters of one reason whose errors read the same once normalised. */
export interface FailureGroup {
  readonly reason: string;
  /** The normalised error text (the group's key with the reason). */
  readonly error: string;
  /** One of the group's errors as it was written. */
  readonly example: string;
  readonly count: number;
  /** The earliest and latest dead-lettering time in the group (ISO 8601), if known. */
  readonly firstSeen: string | undefined;
  readonly lastSeen: string | undefined;
}

/** A walk in progress. */
export interface WalkProgress {
  readonly seen: number;
  readonly total: number;
}

/** Runs one thing at a time, in the order asked. */
export class TakeTurns {
  #last: Promise<unknown> = Promise.resolve();

  /** Runs `work` once everything asked before it has ended. */
  run<T>(work: () => Promise<T>): Promise<T> {
    const next = this.#last.then(work, work);
    this.#last = next.catch(() => {});
    return next;
  }
}

/** Options for {@linkcode DeadLetterIndex}. */
export interface DeadLetterIndexOptions {
  /** A broker to walk the queue with (asked each time: it may have reconnected). */
  readonly broker: () => Promise<Broker>;
  readonly topology: Topology;
  /** How old a snapshot may be before a page asks for a new one (0: walk for every page). */
  readonly maxAgeMs: number;
  /** How long an unchanged depth keeps a snapshot current. @default {60000} */
  readonly fullWalkMs?: number;
  /** Walks and queue operations take turns through this. */
  readonly turns: TakeTurns;
}

/** The snapshot of the dead-letter queue, refreshed as pages ask. */
export class DeadLetterIndex {
  readonly #options: DeadLetterIndexOptions;
  #snapshot: Snapshot | undefined;
  #walking: Promise<Snapshot> | undefined;
  #progress: WalkProgress | undefined;
  /** When the snapshot was last found current (a walk, or an unchanged depth). */
  #checkedAt = 0;
  /** How long the last walk took. */
  #lastWalkMs = 0;
  /** The queue was changed by this console since the last walk: walk before trusting the depth. */
  #changed = false;
  #byRef: { snapshot: Snapshot; letters: Map<string, DeadLetter[]> } | undefined;
  #groups: { snapshot: Snapshot; groups: FailureGroup[] } | undefined;

  constructor(options: DeadLetterIndexOptions) {
    this.#options = options;
  }

  /** The walk in progress, if any. */
  get progress(): WalkProgress | undefined {
    return this.#progress;
  }

  /** Marks the snapshot stale (the queue was changed): the next page walks again. */
  invalidate(): void {
    this.#changed = true;
  }

  /**
   * A snapshot no older than `maxAgeMs` if one can be had without waiting, else the last one
   * while a new walk runs; the first call waits for the first walk. `fresh` waits for a new walk.
   * A stale snapshot whose queue still holds as many messages is kept (one passive declare, not a
   * walk) for up to `fullWalkMs`: a full DLQ is walked again when it changes, not every few seconds.
   */
  async snapshot(fresh = false): Promise<Snapshot> {
    const current = this.#snapshot;
    if (current === undefined || fresh) return await this.#walk();
    if (this.#changed && this.#walking === undefined) {
      this.#walk().catch(() => {}); // the next request sees the error
      return current;
    }
    const now = Date.now();
    // A walk of a large queue holds every dead letter unacknowledged while it runs: however often
    // pages ask, the queue is walked for at most a fifth of the time.
    const maxAgeMs = Math.max(this.#options.maxAgeMs, 4 * this.#lastWalkMs);
    if (now - this.#checkedAt <= maxAgeMs || this.#walking !== undefined) return current;
    this.#checkedAt = now;
    const fullWalkMs = this.#options.fullWalkMs ?? 60_000;
    if (now - current.at.getTime() <= fullWalkMs && this.#options.maxAgeMs > 0) {
      const depth = await (await this.#options.broker()).messageCount(
        this.#options.topology.deadLetterQueue,
      )
        .catch(() => undefined);
      if (depth === current.letters.length) return current;
    }
    this.#walk().catch(() => {}); // the next request sees the error
    return current;
  }

  #walk(): Promise<Snapshot> {
    this.#walking ??= this.#options.turns.run(async () => {
      this.#progress = { seen: 0, total: 0 };
      const started = Date.now();
      const found = await inspectDeadLetters(
        await this.#options.broker(),
        this.#options.topology,
        {
          previewBytes: INDEX_PREVIEW_BYTES,
          onScan: (seen, total) => this.#progress = { seen, total },
        },
      );
      this.#changed = false;
      const snapshot = { at: new Date(), letters: found.letters };
      this.#snapshot = snapshot;
      this.#checkedAt = Date.now();
      this.#lastWalkMs = this.#checkedAt - started;
      return snapshot;
    }).finally(() => {
      this.#walking = undefined;
      this.#progress = undefined;
    });
    return this.#walking;
  }

  /** The dead letters of a RefCode (compared without case) in a snapshot; indexed once per snapshot. */
  lettersOf(snapshot: Snapshot, refCode: string): readonly DeadLetter[] {
    if (this.#byRef?.snapshot !== snapshot) {
      const letters = new Map<string, DeadLetter[]>();
      for (const letter of snapshot.letters) {
        if (letter.refCode === undefined) continue;
        const key = letter.refCode.toLowerCase();
        const list = letters.get(key);
        if (list === undefined) letters.set(key, [letter]);
        else list.push(letter);
      }
      this.#byRef = { snapshot, letters };
    }
    return this.#byRef.letters.get(refCode.toLowerCase()) ?? [];
  }

  /** The failure groups of a snapshot, largest first; counted once per snapshot. */
  groups(snapshot: Snapshot): FailureGroup[] {
    if (this.#groups?.snapshot === snapshot) return this.#groups.groups;
    const groups = groupFailures(snapshot.letters);
    this.#groups = { snapshot, groups };
    return groups;
  }
}

/** Groups dead letters by reason and normalised error; largest group first. */
export function groupFailures(letters: readonly DeadLetter[]): FailureGroup[] {
  const byKey = new Map<string, {
    reason: string;
    error: string;
    example: string;
    count: number;
    first: number;
    last: number;
  }>();
  for (const letter of letters) {
    const error = errorGroupOf(letter);
    const key = `${letter.reason}\u0000${error}`;
    const at = letter.deadLetteredAt?.getTime() ?? Number.NaN;
    const group = byKey.get(key);
    if (group === undefined) {
      byKey.set(key, {
        reason: letter.reason,
        error,
        example: letter.lastError,
        count: 1,
        first: at,
        last: at,
      });
    } else {
      group.count++;
      if (!Number.isNaN(at)) {
        if (Number.isNaN(group.first) || at < group.first) group.first = at;
        if (Number.isNaN(group.last) || at > group.last) group.last = at;
      }
    }
  }
  const iso = (ms: number) => Number.isNaN(ms) ? undefined : new Date(ms).toISOString();
  return [...byKey.values()]
    .sort((a, b) => b.count - a.count || a.reason.localeCompare(b.reason))
    .map((g) => ({
      reason: g.reason,
      error: g.error,
      example: g.example,
      count: g.count,
      firstSeen: iso(g.first),
      lastSeen: iso(g.last),
    }));
}

/** One page of the dead letters a filter takes. */
export interface Page {
  /** How many the filter takes in all. */
  readonly matched: number;
  readonly offset: number;
  readonly letters: readonly DeadLetter[];
}

/** The dead letters `filter` takes, from `offset`, at most `limit`. */
export function pageOf(
  letters: readonly DeadLetter[],
  filter: DeadLetterFilter,
  offset: number,
  limit: number,
): Page {
  const page: DeadLetter[] = [];
  let matched = 0;
  for (const letter of letters) {
    if (!matchesFilter(letter, filter)) continue;
    if (matched >= offset && page.length < limit) page.push(letter);
    matched++;
  }
  return { matched, offset, letters: page };
}
