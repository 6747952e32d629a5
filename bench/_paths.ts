/**
 * The benchmark's throughput paths: each one's raw and our side, the ratio ours should reach, the
 * knobs the sweep tunes raw with, and the settings ours runs with (the services' defaults).
 *
 * @module
 */

import type { RunContext, RunResult } from "./_shared.ts";
import { REPLAY_WINDOW, SERVICES } from "./_services_settings.ts";
import type { Knob, Settings } from "./_settings.ts";
import {
  oursConsume,
  oursDeadLetter,
  oursEndToEnd,
  oursPublish,
  oursReplay,
  oursRetry,
} from "./ours.ts";
import { oursRelay, rawRelay } from "./outbox.ts";
import {
  rawConsume,
  rawDeadLetter,
  rawDeadLetterBare,
  rawEndToEnd,
  rawPublish,
  rawReplay,
  rawRetry,
  rawRetryBare,
} from "./raw.ts";

/** One side of a path: a timed run in the context it is given. */
export type Side = (ctx: RunContext) => Promise<RunResult>;

/**
 * A side's role in a path: raw amqplib (the baseline), ours, or raw with the bare copy (retry and
 * dead-letter's second row).
 */
export type Role = "raw" | "ours" | "bare";

/** A throughput path: its sides and what it is held to. */
export interface PathSpec {
  readonly name: string;
  readonly what: string;
  readonly target: number;
  readonly raw: Side;
  readonly ours: Side;
  /** Raw with the bare copy, run in the same rounds at raw's settings (retry, dead-letter). */
  readonly bare?: Side;
  /** The knobs the sweep tunes raw with on this path. */
  readonly rawKnobs: readonly Knob[];
  /** What ours runs with: the services' defaults. */
  readonly oursSettings: Settings;
}

/** Every throughput path, in the order they run and are reported. */
export const PATHS: readonly PathSpec[] = [
  {
    name: "publish",
    what: "Estoque bulk publish, confirmed",
    target: 0.95,
    raw: rawPublish,
    ours: oursPublish,
    rawKnobs: ["window", "writes"],
    oursSettings: SERVICES,
  },
  {
    name: "consume",
    what: "consume valid orders; ours writes the durable ledger",
    target: 0.9,
    raw: rawConsume,
    ours: oursConsume,
    rawKnobs: ["prefetch", "writes"],
    oursSettings: SERVICES,
  },
  {
    name: "end-to-end",
    what: "publish while consuming",
    target: 0.9,
    raw: rawEndToEnd,
    ours: oursEndToEnd,
    rawKnobs: ["prefetch", "window", "connections", "writes"],
    oursSettings: SERVICES,
  },
  {
    name: "retry",
    what: "republish ours' retry copy to a retry queue with a confirm, then ack",
    target: 0.9,
    raw: rawRetry,
    ours: oursRetry,
    bare: rawRetryBare,
    rawKnobs: ["prefetch", "connections", "writes"],
    oursSettings: SERVICES,
  },
  {
    name: "dead-letter",
    what: "publish ours' dead letter to the DLX with a confirm, then ack",
    target: 0.9,
    raw: rawDeadLetter,
    ours: oursDeadLetter,
    bare: rawDeadLetterBare,
    rawKnobs: ["prefetch", "connections", "writes"],
    oursSettings: SERVICES,
  },
  {
    name: "dlq replay",
    what: "consume the DLQ, republish to the work exchange with a confirm, then ack",
    target: 0.9,
    raw: rawReplay,
    ours: oursReplay,
    rawKnobs: ["prefetch", "connections", "writes"],
    oursSettings: { ...SERVICES, window: REPLAY_WINDOW },
  },
  {
    name: "relay",
    what:
      "Estoque's outbox relay publishing committed outbox rows (SQLite), confirmed, then marked sent",
    target: 0.9,
    raw: rawRelay,
    ours: oursRelay,
    // Raw publishes the same messages as the publish path does, tuned on its knobs.
    rawKnobs: ["window", "writes"],
    oursSettings: SERVICES,
  },
];

/** The path named `name`. */
export function pathNamed(name: string): PathSpec {
  const path = PATHS.find((p) => p.name === name);
  if (path === undefined) throw new RangeError(`no bench path is named ${JSON.stringify(name)}`);
  return path;
}

/** The side of `path` that plays `role`. */
export function sideOf(path: PathSpec, role: Role): Side {
  const side = role === "bare" ? path.bare : path[role];
  if (side === undefined) throw new RangeError(`path ${path.name} has no ${role} side`);
  return side;
}

/** The roles of `path` in a round's first order: raw, the bare copy where there is one, ours. */
export function rolesOf(path: PathSpec): readonly Role[] {
  return path.bare === undefined ? ["raw", "ours"] : ["raw", "bare", "ours"];
}
