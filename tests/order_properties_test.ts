import { strict as assert } from "node:assert";
import { newOrder } from "../lib/order.ts";
import { ESTOQUE_APP_ID, orderProperties, traceOrder } from "../lib/order_properties.ts";
import { topology } from "../lib/topology.ts";
import { TRACING } from "../lib/tracing.ts";

Deno.test("orderProperties() sets what the Go Estoque sets: JSON, persistent, the RefCode as id, a time in seconds, mandatory", () => {
  const order = newOrder({ quantity: 1 });
  assert.deepEqual(orderProperties(order, 1_700_000_000_999), {
    contentType: "application/json",
    persistent: true,
    messageId: order.refCode,
    timestamp: 1_700_000_000,
    appId: ESTOQUE_APP_ID,
    mandatory: true,
  });
});

Deno.test({
  name: "traceOrder() with tracing off starts no span and adds no headers",
  ignore: TRACING,
}, () => {
  const order = newOrder({ quantity: 1 });
  const properties = orderProperties(order, 0);
  assert.equal(traceOrder(topology(), order, new Uint8Array(), properties), undefined);
  assert.equal(properties.headers, undefined);
});
