/**
 * The benchmark's throughput paths: each one's raw and our side, the ratio ours should reach, and
 * the settings that change it, which the sweep tries before the timed rounds.
 *
 * @module
 */

import type { RunContext, RunResult } from "./_shared.ts";
import {
  oursConsume,
  oursDeadLetter,
  oursEndToEnd,
  oursPublish,
  oursReplay,
  oursRetry,
} from "./ours.ts";
import {
  rawConsume,
  rawDeadLetter,
  rawDeadLetterExplained,
  rawEndToEnd,
  rawPublish,
  rawReplay,
  rawRetry,
  rawRetryExplained,
} from "./raw.ts";
import { fmt, type Settings } from "./report.ts";

/** One side of a path: a timed run in the context it is given. */
export type Side = (ctx: RunContext) => Promise<RunResult>;

/** The two sides compared. */
export type SideName = "raw" | "ours";

/** A setting a side of a path is swept over before its timed rounds. */
export type Knob = "prefetch" | "window";

/** A throughput path: its two sides and what it is held to. */
export interface PathSpec {
  readonly name: string;
  readonly raw: Side;
  readonly ours: Side;
  readonly target: number;
  readonly what: string;
  /** The raw side's settings that change this path (swept unless pinned by a flag). */
  readonly rawKnobs: readonly Knob[];
  /** Our side's settings that change this path. */
  readonly oursKnobs: readonly Knob[];
  /**
   * Raw publishing the very copy ours publishes (every property, the failure headers), at raw's
   * settings: run in the same rounds, it tells what the copy carries from what ours' code costs.
   */
  readonly control?: Side;
}

/** The values the sweep tries. */
export const SWEEP: Readonly<Record<Knob, readonly number[]>> = {
  prefetch: [100, 500, 1_000],
  window: [256, 1_024, 20_000],
};

/** Every throughput path, in the order they run and are reported. */
export const PATHS: readonly PathSpec[] = [
  {
    name: "publish",
    rawKnobs: [],
    oursKnobs: [],
    raw: rawPublish,
    ours: oursPublish,
    target: 0.95,
    what: "Estoque bulk publish, confirmed",
  },
  {
    name: "consume",
    rawKnobs: ["prefetch"],
    oursKnobs: ["prefetch"],
    raw: rawConsume,
    ours: oursConsume,
    target: 0.9,
    what: "consume valid orders; ours writes the durable ledger",
  },
  {
    name: "end-to-end",
    rawKnobs: ["prefetch", "window"],
    oursKnobs: ["prefetch", "window"],
    raw: rawEndToEnd,
    ours: oursEndToEnd,
    target: 0.9,
    what: "publish while consuming",
  },
  {
    name: "retry",
    rawKnobs: ["prefetch"],
    oursKnobs: ["prefetch"],
    raw: rawRetry,
    ours: oursRetry,
    control: rawRetryExplained,
    target: 0.9,
    what: "republish to a retry queue with confirm, then ack",
  },
  {
    name: "dead-letter",
    rawKnobs: ["prefetch"],
    oursKnobs: ["prefetch"],
    raw: rawDeadLetter,
    ours: oursDeadLetter,
    control: rawDeadLetterExplained,
    target: 0.9,
    what: "publish to the DLX with confirm, then ack",
  },
  {
    name: "dlq replay",
    rawKnobs: ["prefetch"],
    oursKnobs: ["window"],
    raw: rawReplay,
    ours: oursReplay,
    target: 0.9,
    what: "consume the DLQ, republish to the work exchange with confirm, then ack",
  },
];

/**
 * The order of the two sides in round `round`: raw first in even rounds, ours first in odd ones
 * (the control, where a path has one, runs between them), so that a place in the round counts for
 * both alike: a run may pay for what the broker still does after the one before it (deleting that
 * run's queues and the messages left in them).
 */
export function inTurn(round: number): readonly [SideName, SideName] {
  return round % 2 === 0 ? ["raw", "ours"] : ["ours", "raw"];
}

/** The settings that change a side, as the report names them: `prefetch 500, window 1,024`. */
export function describe(settings: Settings, knobs: readonly Knob[]): string {
  return knobs.length === 0 ? "defaults" : knobs.map((k) => `${k} ${fmt(settings[k])}`).join(", ");
}
