import { strict as assert } from "node:assert";
import { PermanentError, TransientError } from "../lib/errors.ts";
import { encodeOrder, newOrder, parseOrder } from "../lib/order.ts";
import { KEPT_FAILURES, OrderRule } from "../lib/order_rule.ts";

const read = (quantity: number) => parseOrder(encodeOrder(newOrder({ quantity })));

Deno.test("OrderRule takes an order up to the limit, the limit included", () => {
  const rule = new OrderRule(500);
  for (const quantity of [0, 1, 500]) {
    const parsed = read(quantity);
    assert.ok(parsed.ok);
    assert.equal(rule.check(parsed), parsed.order);
  }
});

Deno.test("OrderRule fails an order over the limit for now, saying the quantity and the limit", () => {
  const failure = new OrderRule(500).check(read(501));
  assert.ok(failure instanceof TransientError, `not transient: ${failure}`);
  assert.equal(failure.message, "maximum quantity exceeded: 501 > 500");
  assert.equal(failure.code, "quantity_exceeded");
});

Deno.test("OrderRule fails a body that is not an order for good, and a newer major version apart", () => {
  const rule = new OrderRule(500);
  const invalid = rule.check(parseOrder(new TextEncoder().encode("[]")));
  assert.ok(invalid instanceof PermanentError);
  assert.equal(invalid.code, "invalid");
  assert.match(invalid.message, /^invalid order: body is a JSON array/);
  const newer = rule.check(
    parseOrder(encodeOrder(newOrder()), { version: { major: 2, minor: 0, text: "2.0" } }),
  );
  assert.ok(newer instanceof PermanentError);
  assert.equal(newer.code, "unsupported-version");
  assert.match(newer.message, /^unsupported version: message version 2\.0/);
});

Deno.test("OrderRule makes a quantity's failure once, and again once it has made as many others as it keeps", () => {
  const rule = new OrderRule(500);
  const first = rule.check(read(900));
  assert.equal(rule.check(read(900)), first, "made again while kept");
  for (let i = 1; i <= KEPT_FAILURES; i++) rule.check(read(900 + i));
  const again = rule.check(read(900));
  assert.notEqual(again, first, "kept past the limit");
  assert.deepEqual([String(again), (again as TransientError).code], [
    String(first),
    "quantity_exceeded",
  ]);
});
