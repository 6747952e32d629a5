import { strict as assert } from "node:assert";
import { ByteBudget, LARGEST_BODY } from "../lib/byte_budget.ts";

const MB = 1024 * 1024;

Deno.test("ByteBudget starts with a prefetch that fits the largest body and doubles it after each full window of small ones", () => {
  const budget = new ByteBudget({ limitBytes: 64 * MB, prefetch: 500 });
  assert.equal(budget.prefetchNow, 1, "64 MiB holds no 128 MiB body: one at a time");
  const grown: number[] = [];
  for (let i = 0; i < 600; i++) {
    if (budget.take(100) === "grow") grown.push(budget.prefetchNow);
    budget.give(100);
  }
  assert.deepEqual(grown, [2, 4, 8, 16, 32, 64, 128, 256, 500]);
  assert.equal(new ByteBudget({ limitBytes: 4 * LARGEST_BODY, prefetch: 500 }).prefetchNow, 4);
});

Deno.test("ByteBudget stops past the limit, resumes at half, with a prefetch that fits the largest body seen", () => {
  const budget = new ByteBudget({ limitBytes: 16 * MB, prefetch: 500 });
  for (let i = 0; i < 40; i++) budget.take(10), budget.give(10); // grown to 32
  assert.equal(budget.prefetchNow, 32);
  const verdicts = Array.from({ length: 5 }, () => budget.take(4 * MB));
  assert.deepEqual(verdicts, ["ok", "ok", "ok", "ok", "over"]);
  assert.deepEqual(
    Array.from({ length: 3 }, () => budget.give(4 * MB)),
    [false, false, true],
    "resumes once 8 MiB (half) is held",
  );
  assert.equal(budget.resume(), 2, "two 4 MiB bodies fit in half the budget");
  assert.equal(budget.take(4 * MB), "ok", "a large body does not grow the prefetch");
  assert.equal(budget.prefetchNow, 2);
});
