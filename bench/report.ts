/**
 * The benchmark's report: the results it writes to bench/results/latest.json, and the markdown it
 * renders from them (bench/results/latest.md, and with `--docs` the table in docs/performance.md).
 * Pure: the same results render the same text.
 *
 * @module
 */

/** One side's settings, as a path's sweep kept them. */
export interface Settings {
  /** The consumer's prefetch. */
  readonly prefetch: number;
  /** How many publishes may await their confirm. */
  readonly window: number;
}

/** The rates of one side's timed runs, in messages a second. */
export interface SideStats {
  /** Each run's rate, in the order the rounds ran. */
  readonly rates: readonly number[];
  readonly median: number;
  readonly min: number;
  readonly max: number;
}

/** The median and range of ratios taken run by run. */
export interface PairedRatio {
  readonly median: number;
  readonly min: number;
  readonly max: number;
}

/** One throughput path's line of the report. */
export interface PathRow {
  /** The path's name (`publish`, `consume`, …). */
  readonly path: string;
  /** What the path does. */
  readonly what: string;
  readonly raw: SideStats;
  readonly ours: SideStats;
  /** Ours / raw: the median of the paired runs' ratios. */
  readonly ratio: number;
  /** The lowest and the highest of the paired runs' ratios. */
  readonly ratioRange: readonly number[];
  /** Raw publishing ours' copy, where the path has that control. */
  readonly control?:
    | SideStats & { readonly oursToControl: PairedRatio; readonly controlToRaw: PairedRatio }
    | undefined;
  /** The ratio ours / raw should reach. */
  readonly target: number;
  /** Whether the ratio reached it. */
  readonly met: boolean;
  /** The settings each side's sweep kept, described. */
  readonly picked: { readonly raw: string; readonly ours: string };
}

/** A 50th and a 99th percentile, in milliseconds. */
export interface Tail {
  readonly p50: number;
  readonly p99: number;
}

/** What a whole run of the benchmark measured (bench/results/latest.json). */
export interface BenchResults {
  /** When it ran, an ISO 8601 time. */
  readonly date: string;
  /** The command line that ran it (`deno task bench …`). */
  readonly command: string;
  /** The broker's version. */
  readonly broker: string;
  /** Deno's version. */
  readonly deno: string;
  /** The machine's logical cores. */
  readonly cores: number;
  /** Messages per timed run. */
  readonly messages: number;
  /** Messages per run of the sweep and the scale case. */
  readonly shortRunMessages: number;
  /** Runs of each setting the sweep tried. */
  readonly sweepRuns: number;
  /** The values the sweep tried for each setting. */
  readonly sweep: { readonly prefetch: readonly number[]; readonly window: readonly number[] };
  /** Timed runs per side and path. */
  readonly rounds: number;
  /** Messages parked in a retry tier for the scale case. */
  readonly parked: number;
  /** One per throughput path. */
  readonly rows: readonly PathRow[];
  /** The steady rate of the latency path, in messages a second. */
  readonly latencyRate: number;
  /** End-to-end latency per side, in milliseconds. */
  readonly latency: { readonly raw: Tail; readonly ours: Tail };
  /** The event loop's delay during each side's latency runs, in milliseconds. */
  readonly loopDelay: {
    readonly raw: { readonly p99: number; readonly max: number };
    readonly ours: { readonly p99: number; readonly max: number };
  };
  /** The disk's fsync time, and how many times it was measured. */
  readonly fsync: Tail & { readonly count: number };
  /** One more profiled latency run of ours: its p99, its ledger commits and GC pauses. */
  readonly diagnostics: {
    readonly latencyP99: number;
    readonly commit: Tail & { readonly count: number; readonly max: number };
    readonly gc: Tail & { readonly pauses: number; readonly max: number; readonly totalMs: number };
  };
  /** How late a retried message came back, in milliseconds. */
  readonly lateness: Tail;
  /** End-to-end without and with messages parked: the median slowdown and each round's. */
  readonly scale: {
    readonly slowdown: number;
    readonly slowdowns: readonly number[];
    readonly without: SideStats;
    readonly with: SideStats;
  };
  /** OrdemDeProducao's peak RSS in bytes (0 without /proc) and its rate draining a queue. */
  readonly service: { readonly peakRss: number; readonly rate: number };
  /** The settings each path's sweep kept for each side. */
  readonly chosen: Readonly<Record<string, { readonly raw: Settings; readonly ours: Settings }>>;
}

/** A count or rate, rounded, with thousands separators: `12,345`. */
export const fmt = (n: number): string => Math.round(n).toLocaleString("en-US");

/** A ratio to two places, or to four where two would put it on the other side of its target. */
export function ratioText(ratio: number, target: number): string {
  const short = ratio.toFixed(2);
  return (Number(short) >= target) === (ratio >= target) ? short : ratio.toFixed(4);
}

const ms = (n: number) => n.toFixed(1);
const verdict = (ok: boolean) => (ok ? "met" : "MISSED");
const pct = (n: number) => `${(n * 100).toFixed(1)} %`;
const mb = (bytes: number) => (bytes / 1_048_576).toFixed(0);
const range = (p: PairedRatio) => `${p.min.toFixed(2)}–${p.max.toFixed(2)}`;

/**
 * The report in markdown: how it was measured, the throughput table (ours against raw amqplib per
 * path), what the copies carry (the controls), and the table of the other measures, each with its
 * target.
 */
export function renderReport(results: BenchResults): string {
  return [
    ...method(results),
    "",
    ...throughputTable(results.rows),
    "",
    ...controlTable(results.rows),
    "",
    ...measuresTable(results),
  ].join("\n");
}

/** The paragraph on how the numbers were measured. */
function method(r: BenchResults): string[] {
  return [
    `Measured ${r.date.slice(0, 10)} with \`${r.command}\`: RabbitMQ ${r.broker}, ` +
    `Deno ${r.deno}, ${r.cores} cores; ${fmt(r.messages)} ` +
    `persistent messages per timed run, ${r.rounds} interleaved runs per side, which side goes ` +
    "first alternating from round to round. Before its timed runs, " +
    `each side of each path ran ${r.sweepRuns === 1 ? "once" : `${r.sweepRuns} times`} ` +
    `(${fmt(r.shortRunMessages)} messages a run) per value ` +
    "of the settings that change it (prefetch " +
    `${r.sweep.prefetch.join(", ")}; publish window ${
      r.sweep.window.join(", ")
    }; a setting given ` +
    "as a flag is not swept) and kept the fastest; the table names what was kept. Where a path " +
    "publishes while it consumes, both sides publish on a connection of their own. Raw's " +
    "connections write as amqplib does, a socket write a frame; ours send each turn's frames " +
    "in one write.",
  ];
}

/** Ours against raw, path by path. */
function throughputTable(rows: readonly PathRow[]): string[] {
  return [
    "| path | raw amqplib msg/s (median, range) | ours msg/s (median, range) | ours / raw (median, range of paired runs) | target | settings kept (raw; ours) |",
    "| --- | --- | --- | --- | --- | --- |",
    ...rows.map((r) => {
      const raw = `${fmt(r.raw.median)} (${fmt(r.raw.min)}–${fmt(r.raw.max)})`;
      const ours = `${fmt(r.ours.median)} (${fmt(r.ours.min)}–${fmt(r.ours.max)})`;
      const range = `${r.ratioRange[0]!.toFixed(2)}–${r.ratioRange[1]!.toFixed(2)}`;
      return `| ${r.path} | ${raw} | ${ours} | **${
        ratioText(r.ratio, r.target)
      }** (${range}) | ≥ ${r.target} ${verdict(r.met)} | ${r.picked.raw}; ${r.picked.ours} |`;
    }),
  ];
}

/** Raw publishing ours' copy, for the paths that have that control. */
function controlTable(rows: readonly PathRow[]): string[] {
  return [
    "What the copies carry, measured in the same rounds: raw publishing the very copy ours " +
    "publishes (every property of the message and the headers that explain the failure, made " +
    "by ours' own functions), at raw's settings.",
    "",
    "| path | raw publishing ours' copy msg/s (median, range) | that / raw (median, range) | ours / that (median, range) |",
    "| --- | --- | --- | --- |",
    ...rows.flatMap((r) => {
      if (r.control === undefined) return [];
      const c = r.control;
      return [
        `| ${r.path} | ${fmt(c.median)} (${fmt(c.min)}–${fmt(c.max)}) | ` +
        `${c.controlToRaw.median.toFixed(2)} (${range(c.controlToRaw)}) | ` +
        `**${c.oursToControl.median.toFixed(2)}** (${range(c.oursToControl)}) |`,
      ];
    }),
  ];
}

/** Latency, the event loop, the disk, the ledger, GC, retry lateness, scale and memory. */
function measuresTable(r: BenchResults): string[] {
  const { latency, loopDelay, fsync, diagnostics, lateness: late, scale, service } = r;
  // The tail target: ours within raw's p99 plus 10 ms.
  const tailBound = latency.raw.p99 + 10;
  return [
    "| measure | raw | ours | target |",
    "| --- | --- | --- | --- |",
    `| end-to-end latency p50 / p99 at ${fmt(r.latencyRate)} msg/s | ` +
    `${ms(latency.raw.p50)} / ${ms(latency.raw.p99)} ms | ` +
    `${ms(latency.ours.p50)} / ${ms(latency.ours.p99)} ms | ` +
    `p99 ≤ raw p99 + 10 ms ${verdict(latency.ours.p99 <= tailBound)} |`,
    `| event-loop delay p99 / max during that latency path (10 ms timer) | ` +
    `${ms(loopDelay.raw.p99)} / ${ms(loopDelay.raw.max)} ms | ` +
    `${ms(loopDelay.ours.p99)} / ${ms(loopDelay.ours.max)} ms | |`,
    `| the disk's fsync p50 / p99 (4 KiB append + fdatasync, ${fmt(fsync.count)} times): ` +
    `the floor of a durable commit | ${ms(fsync.p50)} / ${ms(fsync.p99)} ms | | |`,
    `| ledger commit time p50 / p99 / max (${fmt(diagnostics.commit.count)} commits; one more ` +
    `profiled run of ours, whose latency p99 was ${ms(diagnostics.latencyP99)} ms) | | ` +
    `${ms(diagnostics.commit.p50)} / ${ms(diagnostics.commit.p99)} / ${
      ms(diagnostics.commit.max)
    } ms | |`,
    `| GC pauses p50 / p99 / max in that run (${fmt(diagnostics.gc.pauses)} pauses, ` +
    `${ms(diagnostics.gc.totalMs)} ms in all; runs of GC samples at 0.1 ms) | | ` +
    (diagnostics.gc.pauses === 0
      ? "none sampled | |"
      : `${ms(diagnostics.gc.p50)} / ${ms(diagnostics.gc.p99)} / ${ms(diagnostics.gc.max)} ms | |`),
    `| retry lateness p50 / p99 (ttl backend, 200 ms delay, 1,000 msg/s) | | ` +
    `${ms(late.p50)} / ${ms(late.p99)} ms | p99 < 100 ms ${verdict(late.p99 < 100)} |`,
    `| end-to-end slowdown with ${fmt(r.parked)} messages parked in a retry tier | | ` +
    `${pct(scale.slowdown)} (median of paired runs; from ${pct(Math.min(...scale.slowdowns))} to ` +
    `${pct(Math.max(...scale.slowdowns))}) | < 10 % ${verdict(scale.slowdown < 0.1)} |`,
    `| peak RSS of OrdemDeProducao draining a full queue (${fmt(service.rate)} msg/s) | | ` +
    (service.peakRss > 0
      ? `${mb(service.peakRss)} MB | < 150 MB ${verdict(service.peakRss < 150 * 1_048_576)} |`
      : "n/a (no /proc here) | < 150 MB |"),
  ];
}
