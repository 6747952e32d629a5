import { strict as assert } from "node:assert";
import { coarsen, emptyHistogram, merge, quantileOf, record, tailOf } from "../bench/_histogram.ts";
import { dueBy } from "../bench/_latency.ts";
import { latencySvg } from "../bench/_svg.ts";

Deno.test("a histogram's percentiles are within one bin (2.3 %) above the exact ones", () => {
  const h = emptyHistogram();
  const values = Array.from({ length: 10_000 }, (_, i) => 0.5 + i * 0.01); // 0.5 .. 100.49 ms
  for (const v of values) record(h, v);
  const exact = (q: number) => values[Math.ceil(q * values.length) - 1]!;
  for (const q of [0.5, 0.99, 0.999]) {
    const got = quantileOf(h, q);
    assert.ok(got >= exact(q) && got <= exact(q) * 1.024, `${q}: ${got} vs ${exact(q)}`);
  }
  const tail = tailOf(h);
  assert.equal(tail.max, values.at(-1));
  assert.equal(tail.count, 10_000);
});

Deno.test("merge() adds histograms up; coarsen() keeps the count in wider bins", () => {
  const a = emptyHistogram();
  const b = emptyHistogram();
  record(a, 1);
  record(b, 100);
  record(b, 0.001); // below the first bin's edge: counted in it
  const both = merge([a, b]);
  assert.equal(both.total, 3);
  assert.equal(both.max, 100);
  assert.equal(quantileOf(both, 1), 100);
  const wide = coarsen(both, 10);
  assert.equal(wide.counts.reduce((x, y) => x + y, 0), 3);
  assert.throws(() => coarsen(both, 7), RangeError);
  assert.throws(() => merge([a, emptyHistogram(10)]), RangeError);
  assert.ok(Number.isNaN(quantileOf(emptyHistogram(), 0.5)));
});

Deno.test("dueBy() counts the messages due by a time from the schedule, not from what was sent", () => {
  assert.equal(dueBy(0, 1_000, 10), 1);
  assert.equal(dueBy(4.9, 1_000, 10), 5);
  assert.equal(dueBy(5, 1_000, 10), 6);
  // A stall of 50 ms makes every message due meanwhile due at once; their latency counts it.
  assert.equal(dueBy(50, 1_000, 100), 51);
  assert.equal(dueBy(1e6, 1_000, 100), 100);
});

Deno.test("latencySvg() draws one panel per load with both sides and their p99", () => {
  const raw = emptyHistogram();
  const ours = emptyHistogram();
  for (let i = 1; i <= 100; i++) {
    record(raw, i / 10);
    record(ours, i / 5);
  }
  const svg = latencySvg([
    { title: "25 % of raw's rate (5,000 msg/s)", raw, ours },
    { title: "50 % <x>", raw, ours },
  ], "latency");
  assert.match(svg, /^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/);
  assert.match(svg, /<\/svg>\n$/);
  assert.equal(svg.match(/<polyline /g)?.length, 4);
  // p99 as the histogram gives it: its bin's upper edge, capped at the largest latency.
  assert.match(svg, /p99 10\.0 ms/);
  assert.match(svg, /p99 20\.0 ms/);
  assert.match(svg, /50 % &lt;x&gt;/);
  assert.equal(
    latencySvg([{ title: "t", raw, ours }], "c"),
    latencySvg([{ title: "t", raw, ours }], "c"),
  );
});
