import { strict as assert } from "node:assert";
import { settlesWithin } from "../lib/settles_within.ts";
import { fakeTime } from "../testing/fake_time.ts";

Deno.test("settlesWithin() resolves true when the promise fulfils in time, and clears its timer", async () => {
  using time = fakeTime({ random: 0 });
  assert.equal(await settlesWithin(Promise.resolve("close-ok"), 1_000), true);
  assert.deepEqual(time.delays, [1_000]);
  assert.equal(time.elapsedMs, 0, "the timer was cleared, not waited for");
});

Deno.test("settlesWithin() resolves true when the promise rejects in time: its outcome is not passed on", async () => {
  using time = fakeTime({ random: 0 });
  assert.equal(await settlesWithin(Promise.reject(new Error("channel closed")), 1_000), true);
  assert.equal(time.elapsedMs, 0);
});

Deno.test("settlesWithin() resolves false once the time is up for a promise that never settles", async () => {
  using time = fakeTime({ random: 0 });
  assert.equal(await settlesWithin(new Promise(() => {}), 1_000), false);
  assert.deepEqual(time.delays, [1_000]);
  assert.equal(time.elapsedMs, 1_000);
});

Deno.test("settlesWithin() observes a rejection that comes after the deadline: nothing is thrown", async () => {
  const late = Promise.withResolvers<void>();
  {
    using _time = fakeTime({ random: 0 });
    assert.equal(await settlesWithin(late.promise, 50), false);
  }
  late.reject(new Error("no close-ok from the broker"));
  // Unobserved, the rejection would fail this test once the turn's promise jobs have run.
  await new Promise((resolve) => setTimeout(resolve, 0));
});

Deno.test("settlesWithin() takes a negative timeout as none: a pending promise is given up at once", async () => {
  using time = fakeTime({ random: 0 });
  assert.equal(await settlesWithin(new Promise(() => {}), -5), false);
  assert.deepEqual(time.delays, [0]);
  // An already settled promise still wins over a timer of 0.
  assert.equal(await settlesWithin(Promise.resolve(), 0), true);
});

Deno.test("settlesWithin() with a real clock answers false after about its timeout, and true at once for a settled promise", async () => {
  const started = performance.now();
  assert.equal(await settlesWithin(new Promise(() => {}), 30), false);
  assert.ok(performance.now() - started >= 29, `gave up after ${performance.now() - started} ms`);
  const settled = performance.now();
  const slow = new Promise<void>((resolve) => setTimeout(resolve, 10));
  assert.equal(await settlesWithin(slow, 60_000), true);
  assert.ok(performance.now() - settled < 60_000);
});
