/**
 * A side's settings: what raw amqplib may be tuned with (swept over a grid before the timed runs),
 * and how the report names them. Pure. What ours runs with is bench/_services_settings.ts.
 *
 * @module
 */

/** How a connection writes its frames: a socket write a frame, or a turn's frames in one write. */
export type Writes = "as-is" | "coalesced";

/** One side's settings for one path. */
export interface Settings {
  /** The consumer's prefetch; 0 is unlimited. */
  readonly prefetch: number;
  /** How many publishes may await their confirm; 0 is unlimited. */
  readonly window: number;
  /** 1: the copies are published on the consumer's connection; 2: on a second connection. */
  readonly connections: 1 | 2;
  /** How the connections write (`coalesced`: our `lib/_coalesced_writes.ts`). */
  readonly writes: Writes;
}

/** A setting the sweep tries the values of. */
export type Knob = keyof Settings;

/** Unlimited, for a prefetch or a window (what AMQP's `basic.qos` means by 0 too). */
export const UNLIMITED = 0;

/**
 * The values the sweep tries, each knob's in increasing order, unlimited last: wide enough that a
 * kept value at the low end (or a finite high end) says the grid should grow.
 */
export const GRID: { readonly [K in Knob]: readonly Settings[K][] } = {
  prefetch: [50, 100, 250, 500, 1_000, 2_000, 5_000, UNLIMITED],
  window: [64, 256, 1_024, 4_096, 16_384, UNLIMITED],
  connections: [1, 2],
  writes: ["as-is", "coalesced"],
};

/** Where raw's sweep starts: amqplib as it comes, settings a careful user would start from. */
export const RAW_START: Settings = {
  prefetch: 1_000,
  window: 1_024,
  connections: 2,
  writes: "as-is",
};

/** A count, rounded, with thousands separators: `12,345`. */
const count = (n: number) => Math.round(n).toLocaleString("en-US");

/** One knob's value as the report names it: `prefetch 1,000`, `window unlimited`, `2 connections`. */
export function describeValue<K extends Knob>(knob: K, value: Settings[K]): string {
  switch (knob) {
    case "prefetch":
    case "window":
      return `${knob} ${value === UNLIMITED ? "unlimited" : count(value as number)}`;
    case "connections":
      return value === 1 ? "1 connection" : "2 connections";
    default:
      return value === "coalesced" ? "writes coalesced" : "writes as amqplib does";
  }
}

/** The knobs of `settings` that change a path, described: `prefetch 500, window 1,024`. */
export function describe(settings: Settings, knobs: readonly Knob[]): string {
  return knobs.length === 0
    ? "defaults"
    : knobs.map((k) => describeValue(k, settings[k])).join(", ");
}

/** The same settings make the same key: the sweep's cache of what it measured. */
export function settingsKey(settings: Settings): string {
  return `${settings.prefetch}/${settings.window}/${settings.connections}/${settings.writes}`;
}
