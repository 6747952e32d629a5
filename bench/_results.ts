/**
 * What a run of the benchmark measured, as bench/results/<run id>.json holds it: the facts of the
 * run, its method, and each part's statistics. The report (bench/report.ts) is rendered from this
 * alone.
 *
 * @module
 */

import type { PairedRatio } from "./_bootstrap.ts";
import type { Histogram, LatencyTail } from "./_histogram.ts";
import type { Method } from "./_method.ts";
import type { Knob, Settings } from "./_settings.ts";
import type { GridPoint } from "./_sweep.ts";

export type { PairedRatio } from "./_bootstrap.ts";

/** The rates of one side's timed runs, in messages a second. */
export interface SideStats {
  /** Each run's rate, in the order the rounds ran. */
  readonly rates: readonly number[];
  readonly median: number;
  readonly min: number;
  readonly max: number;
}

/** How raw's settings on a path were found. */
export interface SweepReport {
  /** For each knob swept, each value's rate with the other knobs as kept. */
  readonly around: Readonly<Partial<Record<Knob, readonly GridPoint[]>>>;
  /** Knobs whose kept value is at an edge of its grid. */
  readonly atEdge: readonly Knob[];
  /** Settings run. */
  readonly tried: number;
  /** Passes over the knobs. */
  readonly passes: number;
}

/** One throughput path's line of the report. */
export interface PathRow {
  /** The path's name (`publish`, `consume`, …). */
  readonly path: string;
  /** What the path does. */
  readonly what: string;
  /** The ratio ours / raw should reach. */
  readonly target: number;
  readonly raw: SideStats;
  readonly ours: SideStats;
  /** Ours / raw: the median of the paired ratios, its interval and range. */
  readonly ratio: PairedRatio;
  /** Whether the median reached the target. */
  readonly met: boolean;
  /**
   * Raw with the bare copy (retry, dead-letter): its rates, ours against it, and raw with ours'
   * copy against it (what the explaining headers cost raw).
   */
  readonly bare?: SideStats & { readonly oursToBare: PairedRatio; readonly rawToBare: PairedRatio };
  /** Raw's settings, kept by the sweep or pinned. */
  readonly rawSettings: Settings;
  /** The knobs that change raw on this path. */
  readonly rawKnobs: readonly Knob[];
  /** Ours' settings: the services' defaults. */
  readonly oursSettings: Settings;
  /** How raw's settings were found; absent when every knob was pinned. */
  readonly sweep?: SweepReport;
}

/** The services as users run them, against raw in processes likewise. */
export interface ServicesRow {
  readonly raw: SideStats;
  readonly ours: SideStats;
  readonly ratio: PairedRatio;
  readonly target: number;
  readonly met: boolean;
  /** The raw processes' settings (raw's end-to-end ones). */
  readonly rawSettings: Settings;
  /** The command lines ours ran, as a user types them. */
  readonly commands: readonly string[];
}

/** Latency at one load. */
export interface LatencyRow {
  /** The fraction of raw's end-to-end rate. */
  readonly load: number;
  /** Messages a second. */
  readonly rate: number;
  readonly raw: LatencyTail;
  readonly ours: LatencyTail;
  /** Whether ours' p99 is to be within raw's plus 10 ms here. */
  readonly held: boolean;
  readonly met: boolean;
  /** The event loop's delay (a 10 ms timer's lateness) in each side's process meanwhile. */
  readonly loopDelay: { readonly raw: LatencyTail; readonly ours: LatencyTail };
}

/** The latency path. */
export interface LatencyResults {
  /** Raw's end-to-end rate the loads are fractions of. */
  readonly baseRate: number;
  readonly rows: readonly LatencyRow[];
  /** Each load's histograms, for the plot. */
  readonly histograms: readonly {
    readonly load: number;
    readonly raw: Histogram;
    readonly ours: Histogram;
  }[];
}

/** Movement-to-broker lag on one stock store, over the rounds; or why it was not measured. */
export type MovementLagRow =
  | {
    /** `sqlite` or `postgres`. */
    readonly store: string;
    /** From each movement's scheduled time to its request's arrival in the work queue. */
    readonly lag: LatencyTail;
    /** Movements committed a second in each round (all of them over the time to the last). */
    readonly committed: SideStats;
    /** The p99 it is held under, in milliseconds. */
    readonly target: number;
    readonly met: boolean;
  }
  | { readonly store: string; readonly error: string };

/** The movement-lag part: movements at a steady rate, each one making a request. */
export interface MovementLagResults {
  /** Movements a second. */
  readonly rate: number;
  /** Movements in each run. */
  readonly movements: number;
  /** Timed runs of each store, in ABBA rounds. */
  readonly rounds: number;
  readonly rows: readonly MovementLagRow[];
}

/** One measured rate of the Go services, or why it was not measured. */
export type GoRate =
  | {
    readonly orders: number;
    readonly rate: number;
    /** Orders the Go topology's `x-max-length` dropped (dead-lettered) instead. */
    readonly dropped: number;
  }
  | { readonly error: string };

/** The Go services as peers, on the same broker in the same run. */
export interface GoResults {
  /** The Go Estoque run once per order (as it runs), into the Go OrdemDeProducao. */
  readonly goEstoque: GoRate;
  /** Our Estoque publishing N orders into the Go topology, the Go OrdemDeProducao consuming. */
  readonly goOrdem: GoRate;
}

/** The measures besides throughput and latency. */
export interface OtherMeasures {
  /** The disk's fsync time. */
  readonly fsync: { readonly p50: number; readonly p99: number; readonly count: number };
  /** One profiled latency run of ours: its p99, ledger commits and GC pauses. */
  readonly diagnostics: {
    readonly rate: number;
    readonly latencyP99: number;
    readonly commit: {
      readonly count: number;
      readonly p50: number;
      readonly p99: number;
      readonly max: number;
    };
    readonly gc: {
      readonly pauses: number;
      readonly p50: number;
      readonly p99: number;
      readonly max: number;
      readonly totalMs: number;
    };
  };
  /** How late a 200 ms retry comes back. */
  readonly lateness: { readonly p50: number; readonly p99: number };
  /** End-to-end with and without messages parked, paired in ABBA rounds. */
  readonly scale: {
    readonly slowdown: number;
    readonly slowdowns: readonly number[];
    readonly without: SideStats;
    readonly with: SideStats;
  };
  /** OrdemDeProducao's peak RSS in bytes (0 without /proc), its rate, and the count drained. */
  readonly service: { readonly peakRss: number; readonly rate: number; readonly messages: number };
}

/** What a whole run of the benchmark measured. */
export interface BenchResults {
  /** The run's id: its start time and commit, `20261128T093000Z-30d4f10`. */
  readonly runId: string;
  /** When it ran, an ISO 8601 time. */
  readonly date: string;
  /** The commit it ran on, `-dirty` added when the work tree had changes. */
  readonly commit: string;
  /** The command line that ran it. */
  readonly command: string;
  /** The broker's version. */
  readonly broker: string;
  /** Deno's version. */
  readonly deno: string;
  /** The machine's logical cores. */
  readonly cores: number;
  /** The method it ran with. */
  readonly method: Method;
  /** Messages parked for the scale case. */
  readonly parked: number;
  /** One per throughput path run. */
  readonly rows: readonly PathRow[];
  readonly services?: ServicesRow;
  readonly latency?: LatencyResults;
  readonly movementLag?: MovementLagResults;
  readonly go?: GoResults;
  readonly measures?: OtherMeasures;
}
