import { strict as assert } from "node:assert";
import { FULL, methodText, QUICK, rotatedOrder, schedule, sideOrder } from "../bench/_method.ts";

Deno.test("sideOrder() runs the sides as given in odd rounds and reversed in even ones: ABBA", () => {
  assert.deepEqual(schedule(4, ["raw", "ours"]), [
    ["raw", "ours"],
    ["ours", "raw"],
    ["raw", "ours"],
    ["ours", "raw"],
  ]);
  // The control stays between the two.
  assert.deepEqual(sideOrder(1, ["raw", "bare", "ours"]), ["ours", "bare", "raw"]);
});

Deno.test("over an even number of rounds each side runs first, and last, as often as the other", () => {
  const rounds = schedule(FULL.rounds, ["raw", "ours"]);
  const first = rounds.filter((r) => r[0] === "raw").length;
  assert.equal(first, FULL.rounds / 2);
  assert.equal(FULL.rounds % 2, 0);
  assert.ok(FULL.rounds >= 10);
  assert.equal(QUICK.rounds % 2, 0);
});

Deno.test("rotatedOrder() puts each of four variants in each place equally often over eight rounds", () => {
  const variants = ["off", "every", "tenth", "none"];
  const places = new Map<string, number[]>(variants.map((v) => [v, [0, 0, 0, 0]]));
  for (let round = 0; round < 8; round++) {
    const order = rotatedOrder(round, variants);
    assert.deepEqual([...order].sort(), [...variants].sort());
    order.forEach((v, i) => places.get(v)![i]!++);
  }
  for (const v of variants) assert.deepEqual(places.get(v), [2, 2, 2, 2], v);
});

Deno.test("methodText() states the sizes, the rounds, the order, the warm-up and the interval", () => {
  const text = methodText(FULL);
  assert.match(text, /60,000 persistent messages/);
  assert.match(text, /10 rounds/);
  assert.match(text, /ABBA order/);
  assert.match(text, /warm-up run of 10,000 messages/);
  assert.match(text, /prefetch 50, 100, 250, 500, 1,000, 2,000, 5,000, unlimited/);
  assert.match(text, /publish window 64, 256, 1,024, 4,096, 16,384, unlimited/);
  assert.match(text, /95 % bootstrap interval \(10,000 resamples/);
  assert.match(text, /25 %, 50 %, 80 % of raw's end-to-end rate/);
});
