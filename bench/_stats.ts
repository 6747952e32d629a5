/**
 * The benchmark's statistics: rates, medians and paired ratios of the runs, and the results the
 * report is rendered from.
 *
 * @module
 */

import { describe, PATHS, type SideName, SWEEP } from "./_paths.ts";
import { quantile, type RunResult } from "./_shared.ts";
import type { BenchResults, PairedRatio, Settings, SideStats } from "./report.ts";

/** Messages a second of one run. */
export const rate = (r: RunResult): number => r.messages / (r.elapsedMs / 1000);

/** The rates of runs, their median and range. */
export function stats(results: readonly RunResult[]): SideStats {
  const rates = results.map(rate);
  return { rates, median: quantile(rates, 0.5), min: Math.min(...rates), max: Math.max(...rates) };
}

/**
 * The median and range of the ratios of `a` to `b` run by run: each round ran them back to back,
 * and the median of those paired ratios cancels the drift between rounds better than a ratio of
 * medians.
 */
export function paired(a: SideStats, b: SideStats): PairedRatio {
  const ratios = a.rates.map((rate, i) => rate / b.rates[i]!);
  return { median: quantile(ratios, 0.5), min: Math.min(...ratios), max: Math.max(...ratios) };
}

/** The timed runs of one path. */
export interface PathRuns {
  readonly raw: RunResult[];
  readonly ours: RunResult[];
  /** Raw publishing ours' copy; empty where the path has no control. */
  readonly control: RunResult[];
}

/** What the benchmark measured, before any statistics. */
export interface Measurements {
  /** Each path's timed runs, by path name. */
  readonly runs: Readonly<Record<string, PathRuns>>;
  /** The settings each path's sweep kept, by path name. */
  readonly chosen: Readonly<Record<string, Readonly<Record<SideName, Settings>>>>;
  /** The steady rate of the latency path, in messages a second. */
  readonly latencyRate: number;
  /** Each side's end-to-end latencies, in milliseconds. */
  readonly latencies: Readonly<Record<SideName, readonly number[]>>;
  /** The event loop's delays during each side's latency runs, in milliseconds. */
  readonly loopDelays: Readonly<Record<SideName, readonly number[]>>;
  /** One more profiled latency run of ours: its latencies, ledger commits and GC pauses. */
  readonly diagnosed: {
    readonly latencies: readonly number[];
    readonly commitTimes: readonly number[];
    readonly gcPauses: readonly number[];
  };
  /** The disk's fsync times, in milliseconds. */
  readonly fsyncs: readonly number[];
  /** How late each retried message came back, in milliseconds. */
  readonly lateness: readonly number[];
  /** OrdemDeProducao's peak RSS and rate. */
  readonly service: { readonly peakRss: number; readonly rate: number };
  /** End-to-end runs of ours without and with messages parked, round by round. */
  readonly scale: { readonly without: readonly RunResult[]; readonly with: readonly RunResult[] };
}

/** What a run was, besides what it measured. */
export type RunFacts = Pick<
  BenchResults,
  | "date"
  | "command"
  | "broker"
  | "deno"
  | "cores"
  | "messages"
  | "shortRunMessages"
  | "sweepRuns"
  | "rounds"
  | "parked"
>;

/** The results of a whole run, every path measured: statistics of what was measured. */
export function benchResults(facts: RunFacts, measured: Measurements): BenchResults {
  const { runs, chosen, latencies, loopDelays, diagnosed, scale } = measured;
  const rows = PATHS.map((path) => {
    const raw = stats(runs[path.name]!.raw);
    const ours = stats(runs[path.name]!.ours);
    const ratios = paired(ours, raw);
    const ratio = ratios.median;
    const control = runs[path.name]!.control.length === 0
      ? undefined
      : stats(runs[path.name]!.control);
    return {
      path: path.name,
      what: path.what,
      raw,
      ours,
      ratio,
      ratioRange: [ratios.min, ratios.max],
      control: control && {
        ...control,
        oursToControl: paired(ours, control),
        controlToRaw: paired(control, raw),
      },
      target: path.target,
      met: ratio >= path.target,
      picked: {
        raw: describe(chosen[path.name]!.raw, path.rawKnobs),
        ours: describe(chosen[path.name]!.ours, path.oursKnobs),
      },
    };
  });
  const { commitTimes, gcPauses: pauses } = diagnosed;
  // Paired like the paths: each round ran without, then with, parked messages.
  const slowdowns = scale.with.map((r, i) => 1 - scale.without[i]!.elapsedMs / r.elapsedMs);
  return {
    date: facts.date,
    broker: facts.broker,
    deno: facts.deno,
    command: facts.command,
    cores: facts.cores,
    messages: facts.messages,
    shortRunMessages: facts.shortRunMessages,
    sweepRuns: facts.sweepRuns,
    sweep: SWEEP,
    rounds: facts.rounds,
    parked: facts.parked,
    rows,
    latencyRate: measured.latencyRate,
    latency: {
      raw: { p50: quantile(latencies.raw, 0.5), p99: quantile(latencies.raw, 0.99) },
      ours: { p50: quantile(latencies.ours, 0.5), p99: quantile(latencies.ours, 0.99) },
    },
    loopDelay: {
      raw: { p99: quantile(loopDelays.raw, 0.99), max: Math.max(...loopDelays.raw) },
      ours: { p99: quantile(loopDelays.ours, 0.99), max: Math.max(...loopDelays.ours) },
    },
    fsync: {
      p50: quantile(measured.fsyncs, 0.5),
      p99: quantile(measured.fsyncs, 0.99),
      count: measured.fsyncs.length,
    },
    diagnostics: {
      latencyP99: quantile(diagnosed.latencies, 0.99),
      commit: {
        count: commitTimes.length,
        p50: quantile(commitTimes, 0.5),
        p99: quantile(commitTimes, 0.99),
        max: Math.max(...commitTimes),
      },
      gc: {
        pauses: pauses.length,
        p50: quantile(pauses, 0.5),
        p99: quantile(pauses, 0.99),
        max: Math.max(0, ...pauses),
        totalMs: pauses.reduce((a, b) => a + b, 0),
      },
    },
    lateness: { p50: quantile(measured.lateness, 0.5), p99: quantile(measured.lateness, 0.99) },
    scale: {
      slowdown: quantile(slowdowns, 0.5),
      slowdowns,
      without: stats(scale.without),
      with: stats(scale.with),
    },
    service: measured.service,
    chosen,
  };
}
