import { strict as assert } from "node:assert";
import { AckWindow } from "../bench/_ack_window.ts";

Deno.test("AckWindow acks with multiple only up to the first delivery not yet settled", () => {
  const w = new AckWindow();
  assert.equal(w.take(), undefined);
  w.settle(2);
  w.settle(3);
  assert.equal(w.take(), undefined, "1 is still being processed");
  w.settle(1);
  assert.equal(w.waiting, 3);
  assert.equal(w.take(), 3);
  assert.equal(w.take(), undefined);
  w.settle(5);
  w.settle(4);
  w.settle(4); // settled twice: no harm
  assert.equal(w.take(), 5);
});
