import { strict as assert } from "node:assert";
import { Breaker } from "../lib/breaker.ts";
import { fakeTime } from "../testing/fake_time.ts";

/** A probe that fails `failures` times, then answers. */
function probeFailing(failures: number): { probe: () => Promise<void>; readonly calls: number } {
  let calls = 0;
  return {
    probe: () => ++calls <= failures ? Promise.reject(new Error("still down")) : Promise.resolve(),
    get calls() {
      return calls;
    },
  };
}

Deno.test("Breaker opens once, probes until the ledger answers, then closes and says for how long", async () => {
  // The breaker's own backoff (no delay given), on a fake clock with the least jitter.
  using time = fakeTime({ random: 0 });
  const events: string[] = [];
  const ledger = probeFailing(2);
  const breaker = new Breaker({
    probe: ledger.probe,
    onOpen: (error) => {
      events.push(`open: ${(error as Error).message}`);
    },
    onClose: (openMs) => {
      events.push(`closed after ${openMs} ms`);
    },
    onProbeFailed: (_error, attempt) => events.push(`probe ${attempt} failed`),
  });
  assert.equal(breaker.isOpen, false);
  breaker.trip(new Error("ECONNREFUSED"));
  breaker.trip(new Error("a second error while open changes nothing"));
  assert.equal(breaker.isOpen, true);
  await breaker.whenClosed();
  assert.equal(breaker.isOpen, false);
  assert.equal(ledger.calls, 3);
  assert.deepEqual(time.delays, [250, 500, 600], "the waits before probes 1, 2 and 3");
  assert.deepEqual(events, [
    "open: ECONNREFUSED",
    "probe 1 failed",
    "probe 2 failed",
    "closed after 1350 ms",
  ]);
  assert.equal(breaker.openMs, 1_350);
});

Deno.test("the first probe comes within 250-500 ms, and no probe waits longer than 1.2 s", async () => {
  for (
    const [random, expected] of [
      [0, [250, 500, 600, 600, 600, 600]],
      [0.999_999, [500, 1_000, 1_200, 1_200, 1_200, 1_200]],
    ] as const
  ) {
    using time = fakeTime({ random });
    const closes: number[] = [];
    const breaker = new Breaker({
      probe: probeFailing(5).probe,
      onOpen: () => {},
      onClose: (openMs) => {
        closes.push(openMs);
      },
    });
    breaker.trip(new Error("down"));
    await breaker.whenClosed();
    assert.deepEqual(time.delays, expected, `random() = ${random}`);
    const sum = expected.reduce((a, b) => a + b, 0);
    assert.deepEqual(closes, [sum], "open for the sum of the waits");
  }
});
