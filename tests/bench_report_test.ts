import { strict as assert } from "node:assert";
import { type BenchResults, ratioText, renderReport } from "../bench/report.ts";
import fixture from "../bench/testdata/bench_results.json" with { type: "json" };

/**
 * A run's results as bench/results/<run id>/results.json holds them: a `--quick` run, every part.
 * (JSON types `connections` as a number; the results say 1 or 2.)
 */
const RESULTS = fixture as unknown as BenchResults;

/** The report of that run, read and checked by eye once: a change to it shows in the diff. */
const REPORT = await Deno.readTextFile(
  new URL("../bench/testdata/bench_report.txt", import.meta.url),
);

Deno.test("renderReport() renders a results file as the markdown the benchmark writes to docs/performance.md", () => {
  assert.equal(renderReport(RESULTS, { plot: "performance-latency.svg" }) + "\n", REPORT);
});

Deno.test("renderReport() renders the same text from results read back from their JSON", () => {
  assert.equal(renderReport(JSON.parse(JSON.stringify(RESULTS))), renderReport(RESULTS));
});

Deno.test("renderReport() gives each ratio as its median, its 95 % interval and the range of the pairs", () => {
  const md = renderReport(RESULTS);
  assert.match(
    md,
    /^\| publish \| 19,113 \(18,381–19,845\) \| 19,724 \(17,968–21,480\) \| \*\*1\.03\*\* \[0\.98–1\.08\] \(0\.98–1\.08\) \| ≥ 0\.95 met \|/m,
  );
  assert.match(md, /^\| retry \| 18,181 \(14,450–21,913\) \| \*\*0\.81\*\* \[0\.72–0\.89\]/m);
  assert.match(md, /^\| services as processes \| .* \| ≥ 0\.9 MISSED \|$/m);
});

Deno.test("ratioText() gives two places, or four where two would round across the target", () => {
  assert.equal(ratioText(0.9512, 0.95), "0.95");
  assert.equal(ratioText(0.8969, 0.9), "0.8969");
  assert.equal(ratioText(0.8949, 0.9), "0.89");
  assert.equal(ratioText(1.2345, 0.9), "1.23");
});

Deno.test("renderReport() of one path leaves out the parts that did not run, and the plot without one", () => {
  const { services: _s, latency: _l, go: _g, measures: _m, ...rest } = RESULTS;
  const md = renderReport({ ...rest, rows: RESULTS.rows.slice(0, 1) });
  for (
    const part of [
      "services as processes",
      "End-to-end latency",
      "Go original",
      "| measure |",
      "bare copy",
    ]
  ) {
    assert.ok(!md.includes(part), part);
  }
  assert.match(md, /^\| publish \| window \|/m);
  assert.ok(!renderReport(RESULTS).includes("!["));
});

Deno.test("renderReport() says where a kept value sits at the grid's edge, and when raw was pinned", () => {
  const [first, second, ...others] = RESULTS.rows;
  const md = renderReport({
    ...RESULTS,
    rows: [
      { ...first!, sweep: { ...first!.sweep!, atEdge: ["window"] } },
      (({ sweep: _, ...row }) => row)(second!),
      ...others,
    ],
  });
  assert.match(md, /^\| publish \| window \| .* \| kept at the grid's edge \|$/m);
  assert.match(md, /^\| consume \| \| pinned: prefetch 250, writes coalesced \| \|$/m);
});

Deno.test("renderReport() marks a missed tail MISSED, and says what was not measured or not sampled", () => {
  const measures = RESULTS.measures!;
  const md = renderReport({
    ...RESULTS,
    go: {
      goEstoque: { error: "cannot build the Go services: go not found" },
      goOrdem: RESULTS.go!.goOrdem,
    },
    measures: {
      ...measures,
      lateness: { p50: 80, p99: 140 },
      diagnostics: { ...measures.diagnostics, gc: { ...measures.diagnostics.gc, pauses: 0 } },
      service: { ...measures.service, peakRss: 0 },
    },
  });
  assert.match(
    md,
    /\| retry lateness p50 \/ p99 .* \| 80\.0 \/ 140\.0 ms \| p99 < 100 ms MISSED \|$/m,
  );
  assert.match(
    md,
    /\| GC pauses p50 \/ p99 \/ max in that run \(0 pauses, .*\| none sampled \| \|$/m,
  );
  assert.match(md, /\| n\/a \(no \/proc here\) \| < 150 MB \|$/m);
  assert.match(md, /\| not measured: cannot build the Go services: go not found \|$/m);
  assert.match(md, /^\| 50 % \(9,887 msg\/s\) \| .* \| p99 ≤ raw p99 \+ 10 ms MISSED \|/m);
  assert.match(md, /^\| 80 % \(15,820 msg\/s\) \| .* \| {2}\| /m);
});

Deno.test("renderReport() gives each store's movement lag with its target, and why a store was not measured", () => {
  const lag = RESULTS.movementLag!;
  const md = renderReport({
    ...RESULTS,
    movementLag: { ...lag, rows: [lag.rows[0]!, { store: "postgres", error: "ECONNREFUSED" }] },
  });
  assert.match(
    md,
    /^\| sqlite \| 4\.2 \/ 17\.0 \/ 25\.7 \/ 27\.3 \| 1,997 \(1,996–1,997\) \| p99 < 50 ms met \|$/m,
  );
  assert.match(md, /^\| postgres \| not measured: ECONNREFUSED \| \| p99 < 50 ms \|$/m);
  assert.match(md, /^Movement lag: 2,000 movements a second, 2,000 a run/m);
});
