// The relay sleeping on them (woken by a commit, never in a loop) is in outbox_relay_test.ts; here
// the waiting itself. A wait that should end early is given 60 s: it would show as elapsed time.
import { strict as assert } from "node:assert";
import { pause, Wakeup } from "../lib/_wakeup.ts";

/** How long `promise` took to settle, in milliseconds. */
async function timed(promise: () => Promise<unknown>): Promise<number> {
  const start = performance.now();
  await promise();
  return performance.now() - start;
}

Deno.test("Wakeup.wait() ends at once for a wake-up that came while nobody waited", async () => {
  const wakeup = new Wakeup();
  wakeup.wake();
  assert.ok(await timed(() => wakeup.wait(60_000, new AbortController().signal)) < 1_000);
});

Deno.test("Wakeup.wait() ends at a wake-up during the wait, which is kept for the next until clear()", async () => {
  const wakeup = new Wakeup();
  const { signal } = new AbortController();
  const waiting = wakeup.wait(60_000, signal);
  wakeup.wake();
  assert.ok(await timed(() => waiting) < 1_000);
  assert.ok(await timed(() => wakeup.wait(60_000, signal)) < 1_000);
  wakeup.clear();
  assert.ok(await timed(() => wakeup.wait(30, signal)) >= 25);
});

Deno.test("Wakeup.clear() forgets earlier wake-ups: the wait runs to its timeout", async () => {
  const wakeup = new Wakeup();
  wakeup.wake();
  wakeup.clear();
  assert.ok(await timed(() => wakeup.wait(30, new AbortController().signal)) >= 25);
});

Deno.test("pause() ends at once on an aborted signal, and when the signal aborts or `also` settles", async () => {
  const aborted = new AbortController();
  aborted.abort();
  assert.ok(await timed(() => pause(60_000, aborted.signal)) < 1_000);

  const controller = new AbortController();
  const aborting = pause(60_000, controller.signal);
  controller.abort();
  assert.ok(await timed(() => aborting) < 1_000);

  const { signal } = new AbortController();
  assert.ok(await timed(() => pause(60_000, signal, Promise.resolve())) < 1_000);
  assert.ok(await timed(() => pause(60_000, signal, Promise.reject(new Error("gone")))) < 1_000);
});

Deno.test("pause() ends when its hook calls done, and cleans the hook up once", async () => {
  const { signal } = new AbortController();
  let cleanups = 0;
  let finish: (() => void) | undefined;
  const pausing = pause(60_000, signal, undefined, (done) => {
    finish = done;
    return () => cleanups++;
  });
  finish!();
  finish!();
  assert.ok(await timed(() => pausing) < 1_000);
  assert.equal(cleanups, 1);

  // Ended by its timeout: cleaned up all the same.
  await pause(10, signal, undefined, () => () => cleanups++);
  assert.equal(cleanups, 2);
});
