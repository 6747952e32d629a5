import { strict as assert } from "node:assert";
import {
  bootstrapInterval,
  median,
  pairedRatio,
  pairedRatios,
  seededRandom,
} from "../bench/_bootstrap.ts";

Deno.test("seededRandom() gives the same numbers in [0, 1) for the same seed, others for another", () => {
  const a = Array.from({ length: 5 }, seededRandom(42));
  const b = Array.from({ length: 5 }, seededRandom(42));
  const c = Array.from({ length: 5 }, seededRandom(43));
  assert.deepEqual(a, b);
  assert.notDeepEqual(a, c);
  for (const x of a) assert.ok(x >= 0 && x < 1, String(x));
});

Deno.test("median() is the middle value, or the mean of the two middle ones for an even count", () => {
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 3, 2]), 2.5);
  assert.ok(Number.isNaN(median([])));
});

Deno.test("pairedRatios() divides round by round, and refuses sides of different lengths", () => {
  assert.deepEqual(pairedRatios([10, 30], [20, 30]), [0.5, 1]);
  assert.throws(() => pairedRatios([1, 2], [1]), RangeError);
});

Deno.test("bootstrapInterval() of the median is the same for the same seed and brackets the median", () => {
  const ratios = [0.91, 0.95, 0.97, 1.02, 0.88, 0.99, 1.05, 0.93, 0.96, 1.0];
  const once = bootstrapInterval(ratios, { random: seededRandom(7), resamples: 2_000 });
  const again = bootstrapInterval(ratios, { random: seededRandom(7), resamples: 2_000 });
  assert.deepEqual(once, again);
  assert.ok(once.low <= median(ratios) && median(ratios) <= once.high, JSON.stringify(once));
  assert.ok(once.low >= Math.min(...ratios) && once.high <= Math.max(...ratios));
  // Fixed seed, fixed numbers: a change to the resampling shows here.
  assert.deepEqual([once.low.toFixed(4), once.high.toFixed(4)], ["0.9300", "1.0050"]);
});

Deno.test("bootstrapInterval() of identical values is that value, and narrows with more values", () => {
  assert.deepEqual(bootstrapInterval([1.1, 1.1, 1.1], { random: seededRandom(1) }), {
    low: 1.1,
    high: 1.1,
  });
  const random = seededRandom(3);
  const few = [0.8, 1.2, 0.9, 1.1];
  const many = Array.from({ length: 40 }, (_, i) => few[i % 4]!);
  const width = (i: { low: number; high: number }) => i.high - i.low;
  assert.ok(
    width(bootstrapInterval(many, { random })) <= width(bootstrapInterval(few, { random })),
  );
});

Deno.test("bootstrapInterval() refuses no values, a confidence outside (0, 1) and no resamples", () => {
  const random = seededRandom(1);
  assert.throws(() => bootstrapInterval([], { random }), RangeError);
  assert.throws(() => bootstrapInterval([1], { random, confidence: 1 }), /between 0 and 1, got 1/);
  assert.throws(() => bootstrapInterval([1], { random, resamples: 0 }), /got 0/);
});

Deno.test("pairedRatio() gives the median of the paired ratios, its interval and their range", () => {
  const ours = [90, 100, 110, 95];
  const raw = [100, 100, 100, 100];
  const r = pairedRatio(ours, raw, 1_000);
  assert.equal(r.median, 0.975);
  assert.equal(r.min, 0.9);
  assert.equal(r.max, 1.1);
  assert.ok(r.low <= r.median && r.median <= r.high);
  assert.deepEqual(pairedRatio(ours, raw, 1_000), r);
});
