import { strict as assert } from "node:assert";
import { backoffDelay } from "../lib/backoff.ts";
import { Breaker, PROBE_BACKOFF } from "../lib/breaker.ts";

Deno.test("Breaker opens once, probes until the ledger answers, then closes and says for how long", async () => {
  const events: string[] = [];
  let probes = 0;
  const breaker = new Breaker({
    probe: () => {
      probes++;
      return probes < 3 ? Promise.reject(new Error("still down")) : Promise.resolve();
    },
    onOpen: (error) => {
      events.push(`open: ${(error as Error).message}`);
    },
    onClose: (openMs) => {
      events.push(`closed after ${openMs >= 0 ? "some" : "no"} time`);
    },
    onProbeFailed: (_error, attempt) => events.push(`probe ${attempt} failed`),
    delay: () => 1,
  });
  assert.equal(breaker.isOpen, false);
  breaker.trip(new Error("ECONNREFUSED"));
  breaker.trip(new Error("a second error while open changes nothing"));
  assert.equal(breaker.isOpen, true);
  await breaker.whenClosed();
  assert.equal(breaker.isOpen, false);
  assert.equal(probes, 3);
  assert.deepEqual(events, [
    "open: ECONNREFUSED",
    "probe 1 failed",
    "probe 2 failed",
    "closed after some time",
  ]);
  assert.ok(breaker.openMs > 0);
});

Deno.test("the first probe comes within 250-500 ms, and no probe waits longer than 1.2 s", () => {
  const low = () => 0;
  const high = () => 0.999_999;
  assert.equal(backoffDelay(1, PROBE_BACKOFF, low), 250);
  assert.equal(backoffDelay(1, PROBE_BACKOFF, high), 500);
  assert.equal(backoffDelay(30, PROBE_BACKOFF, high), 1_200);
  assert.equal(backoffDelay(30, PROBE_BACKOFF, low), 600);
});
