import { strict as assert } from "node:assert";
import { Batcher } from "../lib/batcher.ts";

Deno.test("Batcher groups the items of one burst into one flush", async () => {
  const flushes: number[][] = [];
  const batcher = new Batcher((items: number[]) => {
    flushes.push(items);
    return Promise.resolve(items.map((n) => n * 10));
  });
  const results = await Promise.all([1, 2, 3].map((n) => batcher.add(n)));
  assert.deepEqual(results, [10, 20, 30]);
  assert.deepEqual(flushes, [[1, 2, 3]]);
});

Deno.test("Batcher flushes at maxSize and runs one flush at a time", async () => {
  const flushes: number[][] = [];
  let running = 0;
  const batcher = new Batcher(async (items: number[]) => {
    running++;
    assert.equal(running, 1);
    flushes.push(items);
    await Promise.resolve();
    running--;
    return items;
  }, { maxSize: 2 });
  await Promise.all([1, 2, 3, 4, 5].map((n) => batcher.add(n)));
  assert.deepEqual(flushes, [[1, 2], [3, 4], [5]]);
});

Deno.test("Batcher rejects every item of a failed flush, and goes on", async () => {
  let fail = true;
  const batcher = new Batcher((items: string[]) =>
    fail ? Promise.reject(new Error("disk full")) : Promise.resolve(items)
  );
  const failed = await Promise.allSettled([batcher.add("a"), batcher.add("b")]);
  assert.deepEqual(failed.map((r) => r.status), ["rejected", "rejected"]);
  fail = false;
  assert.equal(await batcher.add("c"), "c");
  await batcher.flush();
  assert.equal(batcher.pending, 0);
});
