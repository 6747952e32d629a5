/**
 * The benchmark's method, fixed before anything runs: sizes, rounds, the order of the sides in
 * each round (ABBA), the warm-up, and the loads of the latency path. `deno task bench` prints it
 * first; the report restates it from the results. Pure.
 *
 * @module
 */

import { GRID, type Knob, UNLIMITED } from "./_settings.ts";

/** What a run of the benchmark is held to, decided before it starts. */
export interface Method {
  /** Messages per timed run, and per run of the sweep (as long as the timed ones). */
  readonly messages: number;
  /** Timed rounds per path: even, so each side goes first as often as the other. */
  readonly rounds: number;
  /** Messages of the untimed warm-up run each side's process makes before its timed runs. */
  readonly warmup: number;
  /** Runs of each setting the sweep tries. */
  readonly sweepRuns: number;
  /** Passes of the sweep over the knobs at most (it stops once a pass changes nothing). */
  readonly sweepPasses: number;
  /** The latency path's loads, as fractions of raw's end-to-end rate. */
  readonly loads: readonly number[];
  /** How long each latency run publishes, in seconds. */
  readonly latencySeconds: number;
  /** Resamples of the bootstrap interval of each ratio. */
  readonly resamples: number;
}

/** The movement-lag part's load, in movements a second: issue 29's. */
export const MOVEMENT_RATE = 2_000;

/**
 * The untimed movements a movement-lag run takes at its rate before its schedule (half a second),
 * so that its fresh store has opened its pool's connections and prepared its statements on them.
 */
export const STORE_WARMUP = 1_000;

/** The p99 the movement lag of each stock store is held under, in milliseconds. */
export const MOVEMENT_LAG_TARGET_MS = 50;

/** The method of a full run. */
export const FULL: Method = {
  messages: 60_000,
  rounds: 10,
  warmup: 10_000,
  sweepRuns: 1,
  sweepPasses: 3,
  loads: [0.25, 0.5, 0.8],
  latencySeconds: 5,
  resamples: 10_000,
};

/** `--quick`: the same method at small sizes, to see it work (its numbers are noise). */
export const QUICK: Method = {
  messages: 2_000,
  rounds: 2,
  warmup: 500,
  sweepRuns: 1,
  sweepPasses: 1,
  loads: [0.25, 0.5, 0.8],
  latencySeconds: 1,
  resamples: 2_000,
};

/**
 * The order of the sides in round `round` (0-based): as given in even rounds, reversed in odd
 * ones, so over an even number of rounds each side runs in each place equally often (A B, B A,
 * A B, …: ABBA). With a third side between them (the control) it stays in the middle.
 */
export function sideOrder<T>(round: number, sides: readonly T[]): readonly T[] {
  return round % 2 === 0 ? sides : sides.toReversed();
}

/** Every round's order of `sides`, for `rounds` rounds. */
export function schedule<T>(rounds: number, sides: readonly T[]): (readonly T[])[] {
  return Array.from({ length: rounds }, (_, round) => sideOrder(round, sides));
}

/**
 * The order of more than two variants in round `round`: rotated by one each round and reversed
 * every other round, so over `2 × variants` rounds each variant runs in each place equally often
 * (bench/tracing.ts's four variants).
 */
export function rotatedOrder<T>(round: number, variants: readonly T[]): readonly T[] {
  const shift = Math.floor(round / 2) % variants.length;
  const rotated = [...variants.slice(shift), ...variants.slice(0, shift)];
  return round % 2 === 0 ? rotated : rotated.toReversed();
}

const count = (n: number) => Math.round(n).toLocaleString("en-US");
const grid = (knob: Knob) =>
  GRID[knob].map((v) => v === UNLIMITED ? "unlimited" : typeof v === "number" ? count(v) : v)
    .join(", ");

/** The method in a few sentences: what `deno task bench` prints first, and the report restates. */
export function methodText(method: Method): string {
  const percents = method.loads.map((l) => `${Math.round(l * 100)} %`).join(", ");
  return [
    `Every timed run moves ${count(method.messages)} persistent messages. Each path runs ` +
    `${method.rounds} rounds; in each round every side runs once, in ABBA order (raw first in ` +
    "odd rounds, ours first in even ones, the control between them), so each side runs first " +
    `as often as the other. Each side runs in a process of its own, which first makes an ` +
    `untimed warm-up run of ${count(method.warmup)} messages on the path; before each timed ` +
    "run the process collects its garbage and the broker is let go idle. Ours runs with the " +
    "services' defaults. Raw amqplib is tuned first: on each path it runs " +
    `${method.sweepRuns === 1 ? "once" : `${method.sweepRuns} times`} per setting, runs as ` +
    "long as the timed ones, one knob at a time around the best so far " +
    `(at most ${method.sweepPasses} pass${method.sweepPasses === 1 ? "" : "es"}, until one ` +
    "changes nothing), over prefetch " +
    `${grid("prefetch")}; publish window ${grid("window")}; the copies on 1 or 2 connections; ` +
    "writes as amqplib does or coalesced; it keeps the fastest.",
    `A path's ratio is the median of the ${method.rounds} paired ratios (ours over raw in the ` +
    "same round), with a 95 % bootstrap interval " +
    `(${count(method.resamples)} resamples of the pairs, percentile method).`,
    `Latency is timed from each message's scheduled send time to the consumer's ack after the ` +
    `effect is durable (ours: the ledger's commit), at ${percents} of raw's end-to-end rate, ` +
    `${method.latencySeconds} s of publishing a run, in the same ABBA rounds.`,
    `Movement lag is timed from each stock movement's scheduled time to its request's arrival ` +
    `in the work queue, at ${count(MOVEMENT_RATE)} movements a second, each one crossing its ` +
    `colour's reorder point, ${method.latencySeconds} s of movements a run, on SQLite and on ` +
    `PostgreSQL, each in a process of its own with the relay beside the movements, ` +
    `${method.rounds} ABBA rounds after a warm-up run, each run's fresh store first warmed by ` +
    `${count(STORE_WARMUP)} untimed movements at that rate; its p99 is held under ` +
    `${MOVEMENT_LAG_TARGET_MS} ms.`,
  ].join("\n\n");
}
