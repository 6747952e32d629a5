/**
 * The benchmark's flags, and the one record they are read into before anything runs.
 *
 * @module
 */

import { DEFAULT_RABBITMQ_URL } from "../lib/broker.ts";
import {
  booleanOption,
  choiceOption,
  integerOption,
  type ParsedCommandLine,
  stringOption,
  UsageError,
} from "../lib/cli.ts";
import { FULL, type Method, QUICK } from "./_method.ts";
import { PATHS, type PathSpec } from "./_paths.ts";
import type { Knob, Settings } from "./_settings.ts";

/** The parts of a run besides the throughput paths, each selectable with `--only`. */
export const PARTS = ["latency", "movement lag", "services", "go"] as const;

/** The PostgreSQL of the movement-lag part when none is given: the local one the tests use. */
export const DEFAULT_POSTGRES_URL = "postgres://postgres:postgres@127.0.0.1:5432/test";

/** The flags of `deno task bench`. */
export const BENCH_OPTIONS = {
  url: {
    type: "string",
    env: "RABBITMQ_URL",
    default: DEFAULT_RABBITMQ_URL,
    description: "The broker.",
  },
  "postgres-url": {
    type: "string",
    env: "POSTGRES_URL",
    default: DEFAULT_POSTGRES_URL,
    description:
      "The PostgreSQL of the movement-lag part's PostgreSQL stock store (a schema of its own each run, dropped after).",
  },
  quick: {
    type: "boolean",
    description: "The same method at small sizes (2 rounds of 2,000 messages): to see it work.",
  },
  messages: {
    type: "string",
    placeholder: "N",
    description:
      `Messages per timed run and sweep run (default ${FULL.messages}; quick ${QUICK.messages}).`,
  },
  rounds: {
    type: "string",
    placeholder: "R",
    description: `Rounds per path, an even number (default ${FULL.rounds}; quick ${QUICK.rounds}).`,
  },
  warmup: {
    type: "string",
    placeholder: "N",
    description:
      `Messages of each side's untimed warm-up run (default ${FULL.warmup}; quick ${QUICK.warmup}).`,
  },
  parked: {
    type: "string",
    placeholder: "P",
    description: "Messages parked for the scale case (default 100000; quick 10000).",
  },
  "go-runs": {
    type: "string",
    placeholder: "K",
    description:
      "Runs of the Go Estoque (one order each) timed through the Go OrdemDeProducao (default 100; quick 5).",
  },
  "raw-prefetch": {
    type: "string",
    placeholder: "N",
    description: "Pin raw's prefetch (0: unlimited) instead of sweeping it.",
  },
  "raw-window": {
    type: "string",
    placeholder: "N",
    description: "Pin raw's publish window (0: unlimited) instead of sweeping it.",
  },
  "raw-connections": {
    type: "string",
    placeholder: "1|2",
    description: "Pin whether raw publishes its copies on a second connection.",
  },
  "raw-writes": {
    type: "string",
    placeholder: "as-is|coalesced",
    description: "Pin how raw's connections write.",
  },
  results: {
    type: "string",
    placeholder: "DIR",
    description: "Where the run's folder and latest.json go (default bench/results).",
  },
  docs: {
    type: "boolean",
    description: "Also write the report into docs/performance.md and the latency plot into docs/.",
  },
  profile: {
    type: "boolean",
    description:
      "With --only <path>: after the rounds, one more run of each side under the CPU profiler, and where each one's time went, in microseconds a message (--docs: into docs/performance.md).",
  },
  "profile-out": {
    type: "string",
    placeholder: "DIR",
    description:
      "With --profile: also write each side's whole profile to DIR as <path>-<side>.cpuprofile.",
  },
  only: {
    type: "string",
    placeholder: "part",
    description:
      'Run one part alone: a throughput path (publish, consume, end-to-end, retry, dead-letter, dlq replay, relay), latency (with end-to-end, whose raw rate sets its loads), "movement lag", services or go.',
  },
} as const;

/** What one run of the benchmark is to do. */
export interface BenchOptions {
  /** The broker. */
  readonly url: string;
  /** The PostgreSQL of the movement-lag part. */
  readonly postgresUrl: string;
  /** Small sizes. */
  readonly quick: boolean;
  /** The method: sizes, rounds, warm-up, sweep, loads. */
  readonly method: Method;
  /** Messages parked for the scale case. */
  readonly parked: number;
  /** Runs of the Go Estoque in the Go peers' part. */
  readonly goRuns: number;
  /** Raw's settings given on the command line, which are not swept. */
  readonly pins: Partial<Settings>;
  /** With `--only`, the one part to run. */
  readonly only: string | undefined;
  /** The throughput paths to run. */
  readonly paths: readonly PathSpec[];
  /**
   * Whether to run the latency path, the movement lag, the services' path, the Go peers, the
   * other measures.
   */
  readonly parts: Readonly<Record<(typeof PARTS)[number] | "measures", boolean>>;
  /** With `--only <path>`: profile one more run of each side. */
  readonly profile: boolean;
  /** With `--profile`: where to write each side's whole profile. */
  readonly profileOut: string | undefined;
  /** Where the run's folder (results.json, report.md, latency.svg) and latest.json go. */
  readonly results: string;
  /** Also write the report into docs/performance.md. */
  readonly docs: boolean;
}

/**
 * Reads the command line into {@linkcode BenchOptions}.
 *
 * @throws {UsageError} for a bad number, an odd number of rounds, an unknown `--only` part, or
 * `--profile-out` without `--only <path>` and `--profile`.
 */
export function benchOptions(cl: ParsedCommandLine): BenchOptions {
  const quick = booleanOption(cl.options.quick!);
  const base = quick ? QUICK : FULL;
  const given = (name: string) => cl.options[name]!.value !== undefined;
  const opt = (name: string, fallback: number, min: number, max: number) =>
    given(name) ? integerOption(cl.options[name]!, min, max) : fallback;
  const rounds = opt("rounds", base.rounds, 2, 100);
  if (rounds % 2 !== 0) {
    throw new UsageError(
      `--rounds must be even (ABBA: each side first as often as the other), got ${rounds}`,
    );
  }
  const method: Method = {
    ...base,
    messages: opt("messages", base.messages, 100, 1_000_000),
    rounds,
    warmup: opt("warmup", base.warmup, 0, 1_000_000),
  };
  const pins: Partial<Record<Knob, number | string>> = {};
  if (given("raw-prefetch")) pins.prefetch = integerOption(cl.options["raw-prefetch"]!, 0, 65_535);
  if (given("raw-window")) pins.window = integerOption(cl.options["raw-window"]!, 0, 1_000_000);
  if (given("raw-connections")) {
    pins.connections = Number(choiceOption(cl.options["raw-connections"]!, ["1", "2"]));
  }
  if (given("raw-writes")) {
    pins.writes = choiceOption(cl.options["raw-writes"]!, ["as-is", "coalesced"]);
  }
  const only = given("only") ? stringOption(cl.options.only!) : undefined;
  const names = [...PATHS.map((p) => p.name), ...PARTS];
  if (only !== undefined && !names.includes(only)) {
    throw new UsageError(`--only must be one of ${names.join(", ")}, got ${JSON.stringify(only)}`);
  }
  // The latency path's loads are fractions of raw's end-to-end rate: it needs that path.
  const paths = only === undefined
    ? PATHS
    : PATHS.filter((p) => p.name === only || (only === "latency" && p.name === "end-to-end"));
  const profile = booleanOption(cl.options.profile!);
  const profileOut = given("profile-out") ? stringOption(cl.options["profile-out"]!) : undefined;
  const onePath = only !== undefined && PATHS.some((p) => p.name === only);
  if (profileOut !== undefined && (!onePath || !profile)) {
    throw new UsageError("--profile-out needs --only <path> and --profile");
  }
  if (profile && !onePath) throw new UsageError("--profile needs --only <path>");
  const part = (name: string) => only === undefined || only === name;
  return {
    url: stringOption(cl.options.url!),
    postgresUrl: stringOption(cl.options["postgres-url"]!),
    quick,
    method,
    parked: opt("parked", quick ? 10_000 : 100_000, 1, 10_000_000),
    goRuns: opt("go-runs", quick ? 5 : 100, 1, 10_000),
    pins: pins as Partial<Settings>,
    only,
    paths,
    parts: {
      latency: part("latency"),
      "movement lag": part("movement lag"),
      services: part("services"),
      go: part("go"),
      measures: only === undefined,
    },
    profile,
    profileOut,
    results: given("results")
      ? stringOption(cl.options.results!)
      : new URL("../bench/results", import.meta.url).pathname,
    docs: booleanOption(cl.options.docs!),
  };
}
