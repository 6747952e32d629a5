/**
 * The benchmark's report: the markdown rendered from a run's results (bench/results/<run id>.json)
 * for bench/results/latest.md and, with `--docs`, the generated block of docs/performance.md.
 * Pure: the same results render the same text.
 *
 * @module
 */

import type { LatencyTail } from "./_histogram.ts";
import { methodText } from "./_method.ts";
import type {
  BenchResults,
  GoRate,
  LatencyResults,
  MovementLagResults,
  OtherMeasures,
  PairedRatio,
  PathRow,
  ServicesRow,
} from "./_results.ts";
import { describe, describeValue, type Knob } from "./_settings.ts";

export type { BenchResults, PathRow } from "./_results.ts";

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
const rates = (s: { median: number; min: number; max: number }) =>
  `${fmt(s.median)} (${fmt(s.min)}–${fmt(s.max)})`;

/** A paired ratio: `**0.97** [0.93–1.01] (0.88–1.05)`: median, 95 % interval, range. */
function ratioCell(r: PairedRatio, target?: number): string {
  const median = target === undefined ? r.median.toFixed(2) : ratioText(r.median, target);
  return `**${median}** [${r.low.toFixed(2)}–${r.high.toFixed(2)}] (${r.min.toFixed(2)}–${
    r.max.toFixed(2)
  })`;
}

/** Options for {@linkcode renderReport}. */
export interface ReportOptions {
  /** Where the latency plot is, relative to the report; no image without it. */
  readonly plot?: string;
}

/**
 * The report in markdown: the run and its method, then each part the run measured (throughput
 * against raw at its best, the copies, the services as processes, raw's sweep, latency, the Go
 * peers, the other measures), each with its target.
 */
export function renderReport(results: BenchResults, options: ReportOptions = {}): string {
  const parts: string[][] = [facts(results), [methodText(results.method)]];
  if (results.rows.length > 0) parts.push(throughputTable(results.rows));
  if (results.rows.some((r) => r.bare !== undefined)) parts.push(bareTable(results.rows));
  if (results.services) parts.push(servicesTable(results.services));
  if (results.rows.length > 0) parts.push(sweepTable(results.rows));
  if (results.latency) parts.push(latencyTable(results.latency, options.plot));
  if (results.movementLag) parts.push(movementLagTable(results.movementLag));
  if (results.go) parts.push(goTable(results.go));
  if (results.measures) parts.push(measuresTable(results.measures, results.parked));
  return parts.map((lines) => lines.join("\n")).join("\n\n");
}

/** What ran, where and when. */
function facts(r: BenchResults): string[] {
  return [
    `Run \`${r.runId}\` (${r.date.slice(0, 10)}, commit ${r.commit}), \`${r.command}\`: ` +
    `RabbitMQ ${r.broker}, Deno ${r.deno}, ${r.cores} cores.`,
  ];
}

/** Ours against raw at its best, path by path. */
function throughputTable(rows: readonly PathRow[]): string[] {
  return [
    "Ours runs with the services' defaults; raw amqplib with what its sweep kept (below). The " +
    "ratio is the median of the paired ratios, then its 95 % bootstrap interval in brackets and " +
    "the range of the pairs. On retry and dead-letter raw publishes ours' very copy.",
    "",
    "| path | raw amqplib msg/s (median, range) | ours msg/s (median, range) | ours / raw | target | raw's settings; ours' |",
    "| --- | --- | --- | --- | --- | --- |",
    ...rows.map((r) =>
      `| ${r.path} | ${rates(r.raw)} | ${rates(r.ours)} | ${ratioCell(r.ratio, r.target)} | ` +
      `≥ ${r.target} ${verdict(r.met)} | ${describe(r.rawSettings, r.rawKnobs)}; ${
        describe(r.oursSettings, oursKnobs(r.path))
      } |`
    ),
  ];
}

/** The settings that change ours on a path, as the report names them. */
function oursKnobs(path: string): Knob[] {
  if (path === "relay") return []; // the relay's own defaults (batch size), none of these
  if (path === "publish" || path === "dlq replay") return ["window"];
  if (path === "end-to-end") return ["prefetch", "window"];
  return ["prefetch"];
}

/** Raw with the bare copy, for the paths that have it. */
function bareTable(rows: readonly PathRow[]): string[] {
  return [
    "The second row of retry and dead-letter: raw publishing the bare copy (content type, id, a " +
    "retry count), in the same rounds at raw's settings: what the headers that explain a " +
    "failure cost raw.",
    "",
    "| path | raw, bare copy msg/s (median, range) | raw with ours' copy / bare | ours / bare |",
    "| --- | --- | --- | --- |",
    ...rows.flatMap((r) => {
      if (r.bare === undefined) return [];
      return [
        `| ${r.path} | ${rates(r.bare)} | ${ratioCell(r.bare.rawToBare)} | ${
          ratioCell(r.bare.oursToBare)
        } |`,
      ];
    }),
  ];
}

/** The services as processes, against raw as processes. */
function servicesTable(s: ServicesRow): string[] {
  return [
    `The services as users run them (\`${s.commands.join("` and `")}\`, each its own process), ` +
    "timed from Estoque's first publish to the last production order in the ledger; raw amqplib " +
    `as two processes likewise (${describe(s.rawSettings, ["prefetch", "window", "writes"])}), ` +
    "timed to its consumer's last ack.",
    "",
    "| path | raw processes msg/s (median, range) | ours msg/s (median, range) | ours / raw | target |",
    "| --- | --- | --- | --- | --- |",
    `| services as processes | ${rates(s.raw)} | ${rates(s.ours)} | ${
      ratioCell(s.ratio, s.target)
    } | ≥ ${s.target} ${verdict(s.met)} |`,
  ];
}

/** Raw's kept settings on each path and the grid around them. */
function sweepTable(rows: readonly PathRow[]): string[] {
  const lines = [
    "Raw's sweep: each knob's values with the others as kept (msg/s, one run each as long as a " +
    "timed run); the kept value in bold.",
    "",
    "| path | knob | rate at each value | |",
    "| --- | --- | --- | --- |",
  ];
  for (const r of rows) {
    if (r.sweep === undefined) {
      lines.push(`| ${r.path} | | pinned: ${describe(r.rawSettings, r.rawKnobs)} | |`);
      continue;
    }
    for (
      const [knob, points] of Object.entries(r.sweep.around) as [
        Knob,
        typeof r.sweep.around.prefetch,
      ][]
    ) {
      const cells = points!.map((p) => {
        const text = `${describeValue(knob, p.value).replace(`${knob} `, "")}: ${fmt(p.rate)}`;
        return p.value === r.rawSettings[knob] ? `**${text}**` : text;
      });
      const edge = r.sweep.atEdge.includes(knob) ? "kept at the grid's edge" : "";
      lines.push(`| ${r.path} | ${knob} | ${cells.join(" · ")} | ${edge} |`);
    }
  }
  return lines;
}

const tail = (t: LatencyTail) => `${ms(t.p50)} / ${ms(t.p99)} / ${ms(t.p999)} / ${ms(t.max)}`;

/** Latency at each load. */
function latencyTable(l: LatencyResults, plot: string | undefined): string[] {
  return [
    `End-to-end latency from each message's scheduled send time to the consumer's ack after ` +
    `the effect is durable, at fractions of raw's end-to-end rate (${fmt(l.baseRate)} msg/s).`,
    "",
    "| load | raw p50 / p99 / p99.9 / max ms | ours p50 / p99 / p99.9 / max ms | target | event-loop delay p99 / max, raw; ours |",
    "| --- | --- | --- | --- | --- |",
    ...l.rows.map((r) =>
      `| ${Math.round(r.load * 100)} % (${fmt(r.rate)} msg/s) | ${tail(r.raw)} | ${
        tail(r.ours)
      } | ${r.held ? `p99 ≤ raw p99 + 10 ms ${verdict(r.met)}` : ""} | ${
        ms(r.loopDelay.raw.p99)
      } / ${ms(r.loopDelay.raw.max)}; ${ms(r.loopDelay.ours.p99)} / ${
        ms(r.loopDelay.ours.max)
      } ms |`
    ),
    ...(plot === undefined
      ? []
      : ["", `![Latency histograms at each load, raw and ours](${plot})`]),
  ];
}

/** The outbox's movement lag on each stock store. */
function movementLagTable(m: MovementLagResults): string[] {
  return [
    `Movement lag: ${fmt(m.rate)} movements a second, ${fmt(m.movements)} a run, each one ` +
    "crossing its colour's reorder point (so each makes a request), the relay beside them as " +
    "`estoque serve` runs it; from each movement's scheduled time to its request's arrival in " +
    `the work queue, over ${m.rounds} ABBA rounds per store. No raw side: raw amqplib keeps no ` +
    "stock.",
    "",
    "| store | lag p50 / p99 / p99.9 / max ms | movements committed /s (median, range) | target |",
    "| --- | --- | --- | --- |",
    ...m.rows.map((r) =>
      "error" in r
        ? `| ${r.store} | not measured: ${r.error} | | p99 < 50 ms |`
        : `| ${r.store} | ${tail(r.lag)} | ${rates(r.committed)} | p99 < ${r.target} ms ${
          verdict(r.met)
        } |`
    ),
  ];
}

const goCell = (g: GoRate) =>
  "error" in g
    ? `not measured: ${g.error}`
    : `${fmt(g.rate)} orders/s (${fmt(g.orders)} orders${
      g.dropped > 0 ? `, ${fmt(g.dropped)} dropped` : ""
    })`;

/** The Go services' rates. */
function goTable(g: BenchResults["go"] & object): string[] {
  return [
    "The Go original's services as peers, on the same broker in the same run (their production " +
    "order is a log line: no ledger).",
    "",
    "| peers | end-to-end |",
    "| --- | --- |",
    `| Go Estoque (one order a run, as it runs) into Go OrdemDeProducao | ${goCell(g.goEstoque)} |`,
    `| our Estoque into Go OrdemDeProducao | ${goCell(g.goOrdem)} |`,
  ];
}

/** The disk, the ledger, GC, retry lateness, scale and memory. */
function measuresTable(m: OtherMeasures, parked: number): string[] {
  const { fsync, diagnostics: d, lateness: late, scale, service } = m;
  return [
    "| measure | ours | target |",
    "| --- | --- | --- |",
    `| the disk's fsync p50 / p99 (4 KiB append + fdatasync, ${fmt(fsync.count)} times): ` +
    `the floor of a durable commit | ${ms(fsync.p50)} / ${ms(fsync.p99)} ms | |`,
    `| ledger commit time p50 / p99 / max (${fmt(d.commit.count)} commits; one more profiled ` +
    `latency run of ours at ${fmt(d.rate)} msg/s, p99 ${ms(d.latencyP99)} ms) | ` +
    `${ms(d.commit.p50)} / ${ms(d.commit.p99)} / ${ms(d.commit.max)} ms | |`,
    `| GC pauses p50 / p99 / max in that run (${fmt(d.gc.pauses)} pauses, ` +
    `${ms(d.gc.totalMs)} ms in all; runs of GC samples at 0.1 ms) | ` +
    (d.gc.pauses === 0
      ? "none sampled | |"
      : `${ms(d.gc.p50)} / ${ms(d.gc.p99)} / ${ms(d.gc.max)} ms | |`),
    `| retry lateness p50 / p99 (ttl backend, 200 ms delay, 1,000 msg/s) | ` +
    `${ms(late.p50)} / ${ms(late.p99)} ms | p99 < 100 ms ${verdict(late.p99 < 100)} |`,
    `| end-to-end slowdown with ${fmt(parked)} messages parked in a retry tier | ` +
    `${pct(scale.slowdown)} (median of ${scale.slowdowns.length} ABBA pairs; from ` +
    `${pct(Math.min(...scale.slowdowns))} to ${pct(Math.max(...scale.slowdowns))}) | ` +
    `< 10 % ${verdict(scale.slowdown < 0.1)} |`,
    `| peak RSS of OrdemDeProducao draining ${fmt(service.messages)} orders ` +
    `(${fmt(service.rate)} msg/s) | ` +
    (service.peakRss > 0
      ? `${mb(service.peakRss)} MB | < 150 MB ${verdict(service.peakRss < 150 * 1_048_576)} |`
      : "n/a (no /proc here) | < 150 MB |"),
  ];
}
