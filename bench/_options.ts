/**
 * The benchmark's flags, and the one record they are read into before anything runs.
 *
 * @module
 */

import { DEFAULT_RABBITMQ_URL } from "../lib/broker.ts";
import {
  booleanOption,
  integerOption,
  type ParsedCommandLine,
  stringOption,
  UsageError,
} from "../lib/cli.ts";
import { type Knob, PATHS, type PathSpec, type SideName } from "./_paths.ts";
import type { Settings } from "./report.ts";

/** The flags of `deno task bench`. */
export const BENCH_OPTIONS = {
  url: {
    type: "string",
    env: "RABBITMQ_URL",
    default: DEFAULT_RABBITMQ_URL,
    description: "The broker.",
  },
  quick: { type: "boolean", description: "Small sizes: done in under a minute." },
  messages: {
    type: "string",
    placeholder: "N",
    description:
      "Messages per timed run (default 60000; quick 3000); the sweep's runs and the scale case take at most 20000.",
  },
  rounds: {
    type: "string",
    placeholder: "R",
    description: "Runs per side and path (default 5; quick 3).",
  },
  parked: {
    type: "string",
    placeholder: "P",
    description: "Messages parked for the scale case (default 100000; quick 10000).",
  },
  prefetch: {
    type: "string",
    placeholder: "N",
    description: "Our consumer's prefetch (default: swept over 100, 500, 1000).",
  },
  "raw-prefetch": {
    type: "string",
    placeholder: "N",
    description: "The raw baseline's prefetch (default: swept over 100, 500, 1000).",
  },
  window: {
    type: "string",
    placeholder: "N",
    description: "Our publishers' confirm window (default: swept; Estoque's default is 20000).",
  },
  "raw-window": {
    type: "string",
    placeholder: "N",
    description:
      "How many publishes the raw baseline's publisher keeps awaiting their confirm (default: swept).",
  },
  docs: { type: "boolean", description: "Also write the table into docs/performance.md." },
  profile: {
    type: "boolean",
    description:
      "With --only: after the rounds, one more run of each side (and of the control, for retry and dead-letter) under the CPU profiler, and where each one's time went, in microseconds a message (--docs: into docs/performance.md).",
  },
  "profile-out": {
    type: "string",
    placeholder: "DIR",
    description:
      "With --profile: also write each side's whole profile to DIR as <path>-raw.cpuprofile, <path>-ours.cpuprofile and, for retry and dead-letter, <path>-control.cpuprofile (open them in Chrome DevTools or read them by function).",
  },
  only: {
    type: "string",
    placeholder: "path",
    description:
      "Run one throughput path alone (publish, consume, end-to-end, retry, dead-letter, dlq replay) and print its ratio.",
  },
} as const;

/** What one run of the benchmark is to do. */
export interface BenchOptions {
  /** The broker. */
  readonly url: string;
  /** Small sizes. */
  readonly quick: boolean;
  /** Messages per timed run. */
  readonly messages: number;
  /**
   * The size of the runs that need not average as long: the sweep's, which only pick settings,
   * and the scale case's, which compares ours with itself.
   */
  readonly shortRunMessages: number;
  /** Timed runs per side and path. */
  readonly rounds: number;
  /** Messages parked for the scale case. */
  readonly parked: number;
  /** Runs per value the sweep tries. */
  readonly sweepRuns: number;
  /** Each side's settings where they are not swept (and the sweep's first candidate). */
  readonly defaults: Readonly<Record<SideName, Settings>>;
  /** The settings given on the command line, which are not swept. */
  readonly pins: Readonly<Record<SideName, Readonly<Record<Knob, boolean>>>>;
  /** With `--only`, the one path to run. */
  readonly only: string | undefined;
  /** The paths to run: all, or the one `--only` names. */
  readonly paths: readonly PathSpec[];
  /** With `--only`: profile one more run of each side. */
  readonly profile: boolean;
  /** With `--profile`: where to write each side's whole profile. */
  readonly profileOut: string | undefined;
  /** Also write the tables into docs/performance.md. */
  readonly docs: boolean;
}

/**
 * Reads the command line into {@linkcode BenchOptions}.
 *
 * @throws {UsageError} for a bad number, an unknown `--only` path, or `--profile-out` without
 * `--only` and `--profile`.
 */
export function benchOptions(cl: ParsedCommandLine): BenchOptions {
  const quick = booleanOption(cl.options.quick!);
  const url = stringOption(cl.options.url!);
  const opt = (name: string, fallback: number, max: number) =>
    cl.options[name]!.value === undefined ? fallback : integerOption(cl.options[name]!, 1, max);
  // A timed run long enough to average over the broker's hiccups: at 20,000 messages (about two
  // seconds) one run of a side moved by up to half either way, at 60,000 by a tenth.
  const messages = opt("messages", quick ? 3_000 : 60_000, 1_000_000);
  const rounds = opt("rounds", quick ? 3 : 5, 100);
  const parked = opt("parked", quick ? 10_000 : 100_000, 10_000_000);
  const prefetch = opt("prefetch", 500, 65_535);
  const rawPrefetch = opt("raw-prefetch", 100, 65_535);
  const rawWindow = opt("raw-window", 256, 1_000_000);
  const window = opt("window", 20_000, 1_000_000);
  // A knob given on the command line is pinned; the others are swept per path and side.
  const pinned = (flag: string) => cl.options[flag]!.value !== undefined;
  const only = cl.options.only!.value === undefined ? undefined : stringOption(cl.options.only!);
  const paths = only === undefined ? PATHS : PATHS.filter((p) => p.name === only);
  if (paths.length === 0) {
    throw new UsageError(
      `--only must be one of ${PATHS.map((p) => p.name).join(", ")}, got ${JSON.stringify(only)}`,
    );
  }
  const profile = booleanOption(cl.options.profile!);
  const profileOut = cl.options["profile-out"]!.value === undefined
    ? undefined
    : stringOption(cl.options["profile-out"]!);
  if (profileOut !== undefined && (only === undefined || !profile)) {
    throw new UsageError("--profile-out needs --only and --profile");
  }
  return {
    url,
    quick,
    messages,
    shortRunMessages: Math.min(messages, 20_000),
    rounds,
    parked,
    sweepRuns: quick ? 1 : 2,
    defaults: {
      raw: { prefetch: rawPrefetch, window: rawWindow },
      ours: { prefetch, window },
    },
    pins: {
      raw: { prefetch: pinned("raw-prefetch"), window: pinned("raw-window") },
      ours: { prefetch: pinned("prefetch"), window: pinned("window") },
    },
    only,
    paths,
    profile,
    profileOut,
    docs: booleanOption(cl.options.docs!),
  };
}
