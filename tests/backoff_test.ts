// The default table (250-500 ms doubling to 15 s, the 250 ms floor) is in reconnect_test.ts.
import { strict as assert } from "node:assert";
import { backoffDelay, DoublingTimeout, MIN_RECONNECT_DELAY_MS } from "../lib/backoff.ts";

const low = () => 0;
const middle = () => 0.5;

Deno.test("backoffDelay() doubles initialMs per round and stops growing at maxMs", () => {
  const options = { initialMs: 1_000, maxMs: 3_000 };
  assert.deepEqual(
    [1, 2, 3, 4, 5].map((round) => backoffDelay(round, options, low)),
    [500, 1_000, 1_500, 1_500, 1_500],
  );
  assert.deepEqual(
    [1, 2, 3, 4, 5].map((round) => backoffDelay(round, options, middle)),
    [750, 1_500, 2_250, 2_250, 2_250],
  );
});

Deno.test("backoffDelay() keeps half of each base fixed and draws the other half at random", () => {
  const options = { initialMs: 2_000 };
  assert.equal(backoffDelay(1, options, () => 0), 1_000);
  assert.equal(backoffDelay(1, options, () => 0.25), 1_250);
  assert.equal(backoffDelay(1, options, () => 0.75), 1_750);
  assert.equal(backoffDelay(1, options, () => 0.999_999), 2_000);
});

Deno.test("backoffDelay() rounds to whole milliseconds", () => {
  // Base 1001: half of it is 500.5.
  assert.equal(backoffDelay(1, { initialMs: 1_001 }, low), 501);
  assert.equal(backoffDelay(1, { initialMs: 1_001, maxMs: 1_001 }, () => 0.1), 551);
});

Deno.test("backoffDelay() takes a round of 0 or below as the first", () => {
  for (const round of [0, -1, -1_000]) {
    assert.equal(backoffDelay(round, {}, low), backoffDelay(1, {}, low), `round ${round}`);
    assert.equal(backoffDelay(round, {}, middle), 375, `round ${round}`);
  }
});

Deno.test("backoffDelay() stays finite for a round far past the largest base", () => {
  const huge = { initialMs: 1, maxMs: Number.MAX_SAFE_INTEGER };
  // The exponent stops at 30: 2^30 ms at most, however many rounds.
  assert.equal(backoffDelay(31, huge, low), 2 ** 29);
  assert.equal(backoffDelay(1_000_000, huge, low), 2 ** 29);
  assert.equal(backoffDelay(Number.MAX_SAFE_INTEGER, {}, low), 7_500);
});

Deno.test("backoffDelay() never goes below the reconnect floor, whatever the options", () => {
  assert.equal(backoffDelay(1, { initialMs: 0 }, middle), MIN_RECONNECT_DELAY_MS);
  assert.equal(backoffDelay(3, { initialMs: 100 }, low), MIN_RECONNECT_DELAY_MS);
  assert.equal(backoffDelay(4, { initialMs: 100 }, low), 400);
  assert.equal(backoffDelay(9, { initialMs: 500, maxMs: 200 }, low), MIN_RECONNECT_DELAY_MS);
});

Deno.test("DoublingTimeout doubles each time it was too short, up to its maximum (or its base, if larger), and goes back to its base once it sufficed", () => {
  const timeout = new DoublingTimeout(400, 1_000);
  assert.equal(timeout.ms, 400);
  timeout.tooShort();
  assert.equal(timeout.ms, 800);
  timeout.tooShort();
  assert.equal(timeout.ms, 1_000);
  timeout.tooShort();
  assert.equal(timeout.ms, 1_000);
  timeout.sufficed();
  assert.equal(timeout.ms, 400);
  const large = new DoublingTimeout(90_000, 60_000);
  large.tooShort();
  assert.equal(large.ms, 90_000, "a base above the maximum is never lowered");
  const off = new DoublingTimeout(0, 60_000);
  off.tooShort();
  assert.equal(off.ms, 0, "0 (off) stays off");
});
