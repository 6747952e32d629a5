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

Deno.test("Batcher with isolate splits a failed batch until the bad item fails alone and the rest succeed", async () => {
  const flushes: number[][] = [];
  const batcher = new Batcher((items: number[]) => {
    flushes.push(items);
    return items.includes(5) ? Promise.reject(new Error("22021")) : Promise.resolve(items);
  }, { maxSize: 8, isolate: (error) => (error as Error).message === "22021" });
  const settled = await Promise.allSettled([1, 2, 3, 4, 5, 6, 7, 8].map((n) => batcher.add(n)));
  assert.deepEqual(
    settled.map((r) => r.status === "fulfilled" ? r.value : "rejected"),
    [1, 2, 3, 4, "rejected", 6, 7, 8],
  );
  assert.ok(flushes.length <= 7, `${flushes.length} flushes for one bad item in eight`);
  // An outage (isolate says no) fails the batch whole, with one flush.
  const outage = new Batcher(
    (_items: number[]) => Promise.reject(new Error("down")),
    { isolate: (error) => (error as Error).message === "22021" },
  );
  const down = await Promise.allSettled([1, 2].map((n) => outage.add(n)));
  assert.deepEqual(down.map((r) => r.status), ["rejected", "rejected"]);
});
