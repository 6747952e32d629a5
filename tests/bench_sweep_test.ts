import { strict as assert } from "node:assert";
import { coordinateSweep } from "../bench/_sweep.ts";
import { GRID, RAW_START, type Settings, settingsKey } from "../bench/_settings.ts";

/** A rate that peaks at prefetch 2,000, window 4,096, two connections, coalesced writes. */
function peaked(s: Settings): number {
  const distance = (x: number, best: number) => Math.abs(Math.log2((x || 100_000) / best));
  return 10_000 - 300 * distance(s.prefetch, 2_000) - 200 * distance(s.window, 4_096) +
    (s.connections === 2 ? 500 : 0) + (s.writes === "coalesced" ? 700 : 0);
}

Deno.test("coordinateSweep() finds the peak, runs each setting once, and knows the grid around it", async () => {
  const runs: string[] = [];
  const outcome = await coordinateSweep(
    { start: RAW_START, knobs: ["prefetch", "window", "connections", "writes"], passes: 3 },
    (s) => {
      runs.push(settingsKey(s));
      return Promise.resolve(peaked(s));
    },
  );
  assert.deepEqual(outcome.kept, {
    prefetch: 2_000,
    window: 4_096,
    connections: 2,
    writes: "coalesced",
  });
  assert.equal(new Set(runs).size, runs.length, "no setting run twice");
  assert.equal(outcome.tried, runs.length);
  assert.deepEqual(outcome.atEdge, []);
  assert.deepEqual(outcome.around.prefetch!.map((p) => p.value), GRID.prefetch);
  for (const [knob, points] of Object.entries(outcome.around)) {
    const best = points!.reduce((a, b) => (b.rate > a.rate ? b : a));
    assert.equal(best.value, outcome.kept[knob as keyof Settings], knob);
  }
});

Deno.test("coordinateSweep() flags a kept value at the low edge of its grid, and leaves pinned knobs", async () => {
  const outcome = await coordinateSweep(
    { start: { ...RAW_START, window: 256 }, knobs: ["prefetch"], passes: 2 },
    (s) => Promise.resolve(s.prefetch === 0 ? 1 : 1_000_000 / s.prefetch),
  );
  assert.equal(outcome.kept.prefetch, 50);
  assert.equal(outcome.kept.window, 256);
  assert.deepEqual(outcome.atEdge, ["prefetch"]);
  assert.deepEqual(Object.keys(outcome.around), ["prefetch"]);
});

Deno.test("coordinateSweep() keeps unlimited at the top of a grid without calling it an edge", async () => {
  const outcome = await coordinateSweep(
    { start: RAW_START, knobs: ["prefetch"], passes: 1 },
    (s) => Promise.resolve(s.prefetch === 0 ? 1e9 : s.prefetch),
  );
  assert.equal(outcome.kept.prefetch, 0);
  assert.deepEqual(outcome.atEdge, []);
});

Deno.test("coordinateSweep() with nothing to sweep runs the start once at most", async () => {
  let calls = 0;
  const outcome = await coordinateSweep({ start: RAW_START, knobs: [], passes: 3 }, () => {
    calls++;
    return Promise.resolve(1);
  });
  assert.deepEqual(outcome.kept, RAW_START);
  assert.ok(calls <= 1);
});
