import { strict as assert } from "node:assert";
import { type BenchResults, ratioText, renderReport } from "../bench/report.ts";
import fixture from "../bench/testdata/bench_results.json" with { type: "json" };

/** A run's results as bench/results/latest.json holds them: three rounds, every path. */
const RESULTS: BenchResults = fixture;

Deno.test("renderReport() renders a results file as the markdown the benchmark writes to docs/performance.md", () => {
  assert.equal(
    renderReport(RESULTS),
    [
      "Measured 2026-11-28 with `deno task bench`: RabbitMQ 3.10.8, Deno 2.9.6, 2 " +
      "cores; 60,000 persistent messages per timed run, 3 interleaved runs per side, " +
      "which side goes first alternating from round to round. Before its timed runs, " +
      "each side of each path ran 2 times (20,000 messages a run) per value of the " +
      "settings that change it (prefetch 100, 500, 1000; publish window 256, 1024, " +
      "20000; a setting given as a flag is not swept) and kept the fastest; the table " +
      "names what was kept. Where a path publishes while it consumes, both sides " +
      "publish on a connection of their own. Raw's connections write as amqplib does, a " +
      "socket write a frame; ours send each turn's frames in one write.",
      "",
      "| path | raw amqplib msg/s (median, range) | ours msg/s (median, range) | ours / raw (median, range of paired runs) | target | settings kept (raw; ours) |",
      "| --- | --- | --- | --- | --- | --- |",
      "| publish | 18,000 (17,000–19,000) | 18,900 (16,150–19,000) | **1.00** (0.95–1.05) | ≥ 0.95 met | defaults; defaults |",
      "| consume | 33,000 (32,000–36,000) | 28,700 (27,000–30,000) | **0.8969** (0.75–0.91) | ≥ 0.9 MISSED | prefetch 1,000; prefetch 500 |",
      "| end-to-end | 21,000 (20,000–22,000) | 20,000 (19,800–20,790) | **0.99** (0.90–1.00) | ≥ 0.9 met | prefetch 500, window 256; prefetch 1,000, window 1,024 |",
      "| retry | 15,000 (14,000–15,000) | 14,700 (14,000–15,000) | **1.00** (0.93–1.05) | ≥ 0.9 met | prefetch 500; prefetch 1,000 |",
      "| dead-letter | 10,000 (9,000–11,000) | 9,000 (8,800–9,000) | **0.90** (0.80–1.00) | ≥ 0.9 met | prefetch 1,000; prefetch 500 |",
      "| dlq replay | 10,000 (9,800–10,600) | 12,300 (12,000–12,500) | **1.22** (1.18–1.23) | ≥ 0.9 met | prefetch 1,000; window 20,000 |",
      "",
      "What the copies carry, measured in the same rounds: raw publishing the very copy ours publishes (every property of the message and the headers that explain the failure, made by ours' own functions), at raw's settings.",
      "",
      "| path | raw publishing ours' copy msg/s (median, range) | that / raw (median, range) | ours / that (median, range) |",
      "| --- | --- | --- | --- |",
      "| retry | 13,000 (12,000–13,500) | 0.87 (0.86–0.90) | **1.11** (1.08–1.23) |",
      "| dead-letter | 9,300 (9,000–9,600) | 0.93 (0.87–1.00) | **0.97** (0.92–1.00) |",
      "",
      "| measure | raw | ours | target |",
      "| --- | --- | --- | --- |",
      "| end-to-end latency p50 / p99 at 2,000 msg/s | 0.8 / 2.5 ms | 1.8 / 4.3 ms | p99 ≤ raw p99 + 10 ms met |",
      "| event-loop delay p99 / max during that latency path (10 ms timer) | 5.8 / 5.8 ms | 10.8 / 10.8 ms | |",
      "| the disk's fsync p50 / p99 (4 KiB append + fdatasync, 4 times): the floor of a durable commit | 0.3 / 0.4 ms | | |",
      "| ledger commit time p50 / p99 / max (4 commits; one more profiled run of ours, whose latency p99 was 5.5 ms) | | 0.8 / 6.0 / 6.0 ms | |",
      "| GC pauses p50 / p99 / max in that run (3 pauses, 8.8 ms in all; runs of GC samples at 0.1 ms) | | 2.3 / 4.5 / 4.5 ms | |",
      "| retry lateness p50 / p99 (ttl backend, 200 ms delay, 1,000 msg/s) | | 2.5 / 4.3 ms | p99 < 100 ms met |",
      "| end-to-end slowdown with 100,000 messages parked in a retry tier | | 2.0 % (median of paired runs; from -0.5 % to 12.5 %) | < 10 % met |",
      "| peak RSS of OrdemDeProducao draining a full queue (23,415 msg/s) | | 146 MB | < 150 MB met |",
    ].join("\n"),
  );
});

Deno.test("renderReport() renders the same text from results read back from their JSON", () => {
  assert.equal(renderReport(JSON.parse(JSON.stringify(RESULTS))), renderReport(RESULTS));
});

Deno.test("ratioText() gives two places, or four where two would round across the target", () => {
  assert.equal(ratioText(0.9512, 0.95), "0.95");
  assert.equal(ratioText(0.8969, 0.9), "0.8969");
  assert.equal(ratioText(0.8949, 0.9), "0.89");
  assert.equal(ratioText(1.2345, 0.9), "1.23");
});

Deno.test("renderReport() says when the sweep ran once, no GC pause was sampled, and there is no /proc", () => {
  const md = renderReport({
    ...RESULTS,
    sweepRuns: 1,
    diagnostics: { ...RESULTS.diagnostics, gc: { ...RESULTS.diagnostics.gc, pauses: 0 } },
    service: { peakRss: 0, rate: 23_415 },
  });
  assert.match(md, / each side of each path ran once \(20,000 messages a run\) /);
  assert.match(
    md,
    /\| GC pauses p50 \/ p99 \/ max in that run \(0 pauses, .*\| \| none sampled \| \|$/m,
  );
  assert.match(md, /\(23,415 msg\/s\) \| \| n\/a \(no \/proc here\) \| < 150 MB \|$/m);
});

Deno.test("renderReport() marks a missed target MISSED and lists controls only for paths that have one", () => {
  const md = renderReport({
    ...RESULTS,
    rows: RESULTS.rows.map(({ control: _, ...row }) => row),
    lateness: { p50: 80, p99: 140 },
  });
  assert.match(
    md,
    /\| retry lateness p50 \/ p99 .* \| \| 80\.0 \/ 140\.0 ms \| p99 < 100 ms MISSED \|$/m,
  );
  const lines = md.split("\n");
  const header = lines.findIndex((line) => line.startsWith("| path | raw publishing ours' copy"));
  assert.deepEqual(lines.slice(header + 1, header + 3), ["| --- | --- | --- | --- |", ""]);
});
