import { strict as assert } from "node:assert";
import { HopClaims } from "../lib/hop_claims.ts";

Deno.test("HopClaims.claim() claims a free hop at once, without a promise", () => {
  const claims = new HopClaims();
  const release = claims.claim("order-1", "0:1");
  assert.equal(typeof release, "function");
  const other = claims.claim("order-1", "0:2");
  assert.equal(typeof other, "function", "another hop of the same message is free");
});

Deno.test("HopClaims.claim() makes a second delivery of a hop wait until the first lets it go, in turn", async () => {
  const claims = new HopClaims();
  const first = claims.claim("order-1", "0:1");
  assert.equal(typeof first, "function");
  const order: string[] = [];
  const second = Promise.resolve(claims.claim("order-1", "0:1")).then((release) => {
    order.push("second");
    return release;
  });
  const third = Promise.resolve(claims.claim("order-1", "0:1")).then((release) => {
    order.push("third");
    return release;
  });
  await Promise.resolve();
  assert.deepEqual(order, [], "both wait while the first holds the hop");
  (first as () => void)();
  const releaseSecond = await second;
  await Promise.resolve();
  assert.deepEqual(order, ["second"], "one at a time: the third still waits");
  releaseSecond();
  (await third)();
  assert.deepEqual(order, ["second", "third"]);
  assert.equal(typeof claims.claim("order-1", "0:1"), "function", "free again once all let go");
});
